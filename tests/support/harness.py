"""The stream's real stages, runners, state tables and sink codec, in one process, with
lists for topics: envelopes in, landed rows out (as Bytewax's TestingSource/TestingSink).

Nothing here re-implements the pipeline: ``StreamHarness`` wires the same
``StageRunner``s, ``StateTable``s (memory stores, changelogs kept in lists) and
``Emitter`` the Faust app wires, and consumes its "topics" in an order the test chooses,
so commit order, redelivery, eviction, erasure and recovery are testable without a broker.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import polars as pl
import pyarrow as pa

from attribution.channels import ChannelRules
from attribution.credit import to_micros
from attribution.device import DeviceState
from attribution.journey import JourneyState
from attribution.policy import Config
from schemas.contracts import CreditRow
from streams.envelope import bounded, decode_body, encode_envelope
from streams.erase import erase_marker
from streams.messages import CREDIT_COLUMNS
from streams.metrics import WorkerMetrics
from streams.routing import group_by_partition, partition_for
from streams.settings import StreamSettings, stream_settings
from streams.sink import arrow_part
from streams.stage_runner import Emitter, StageRunner
from streams.stage_specs import DeviceStage, IdentityStage, JourneyStage
from streams.stages import device_key
from streams.state.store import MemoryStore
from streams.state.table import StateTable
from streams.topics import changelog_names, topic_names


@dataclass(frozen=True)
class Sent:
    offset: int


class MemoryLog:
    """Topic partitions as lists; a send is acknowledged at once with its offset."""

    def __init__(self) -> None:
        self.records: dict[tuple[str, int], list[bytes]] = defaultdict(list)

    async def send(self, topic: str, partition: int, data: bytes) -> asyncio.Future[Sent]:
        log = self.records[(topic, partition)]
        log.append(data)
        future: asyncio.Future[Sent] = asyncio.get_running_loop().create_future()
        future.set_result(Sent(len(log) - 1))
        return future

    async def read(self, topic: str, starts: Mapping[int, int]
                   ) -> AsyncIterator[list[tuple[int, int, bytes]]]:
        for partition, start in starts.items():
            log = self.records[(topic, partition)]
            batch = [(partition, offset, log[offset])
                     for offset in range(max(start, 0), len(log))]
            if batch:
                yield batch


class StreamHarness:
    def __init__(self, config: Config, rules: ChannelRules, partitions: int = 4,
                 now: datetime | None = None, **stream: Any) -> None:
        self.settings: StreamSettings = stream_settings(
            {}, **{"partitions": partitions, "eviction_interval": "0s", **stream})
        self.names = topic_names(self.settings)
        self.changelogs = changelog_names(self.settings)
        self.log = MemoryLog()
        self.metrics = WorkerMetrics()
        self.emitter = Emitter(self.log.send, self.names, self.settings)
        self.config, self.rules = config, rules
        self.now_us = None if now is None else to_micros(now)
        self.committed: dict[tuple[str, int], int] = defaultdict(int)  # next offset to read
        self.identity = IdentityStage(self.names.identity)
        self._start()

    def _table(self, name: str, topic: str) -> StateTable:
        async def send(partition: int, data: bytes) -> asyncio.Future[Sent]:
            return await self.log.send(topic, partition, data)

        return StateTable(name, topic, self.log.read, MemoryStore, send)

    def _start(self) -> None:
        """(Re)build the worker's in-memory side: stores start empty and recover from the
        changelogs on first use, as a restarted worker does."""
        self.devices_table = self._table("devices", self.changelogs.devices)
        self.journeys_table = self._table("journeys", self.changelogs.journeys)
        self.links_table = self._table("identity-links", self.changelogs.links)
        self.identity = IdentityStage(self.names.identity)

        async def forward_erase(payload: Mapping[str, Any], partition: int) -> None:
            marker = erase_marker(payload["erase"]["id"], payload["erase"]["ids"])
            for target in range(self.settings.partitions):
                await self.log.send(self.names.journeys, target, marker)
            await self.log.send(self.names.identity, 0, marker)

        self.runners = {
            self.names.events: StageRunner(DeviceStage(self.names.events, self.config,
                                                       self.rules, now_us=self.now_us),
                                           self.devices_table,
                                           self.emitter, self.settings, self.metrics,
                                           on_erase=forward_erase),
            self.names.journeys: StageRunner(JourneyStage(self.names.journeys, self.config),
                                             self.journeys_table, self.emitter, self.settings,
                                             self.metrics),
            self.names.identity: StageRunner(self.identity, self.links_table, self.emitter,
                                             self.settings, self.metrics),
        }

    # --- input -------------------------------------------------------------------------------

    def send_events(self, events: Iterable[Any], envelope_max: int = 1000) -> None:
        """As the collector and loader do: one envelope per partition per call (anything
        that is not an object goes with the events without a key)."""
        keyed = [((device_key(e) if isinstance(e, dict) else None) or "", e) for e in events]
        for partition, chunk in group_by_partition(keyed, self.settings.partitions,
                                                   envelope_max):
            for data in bounded(chunk, encode_envelope, self.settings.max_message_bytes):
                self.log.records[(self.names.events, partition)].append(data)

    def send_erase(self, erasure_id: str, ids: Sequence[str]) -> None:
        marker = erase_marker(erasure_id, ids)
        for partition in range(self.settings.partitions):
            self.log.records[(self.names.events, partition)].append(marker)

    # --- running -----------------------------------------------------------------------------

    def pending(self, topic: str) -> int:
        return sum(len(log) - self.committed[key] for key, log in self.log.records.items()
                   if key[0] == topic)

    async def consume(self, topic: str, limit: int | None = None, together: int = 1) -> int:
        """Hand the topic's unread messages to its runner (partition by partition, in
        offset order, ``together`` consecutive ones at a time as an agent does within its
        batching window), committing them after they are handled; returns how many."""
        runner = self.runners[topic]
        handled = 0
        for (name, partition), log in sorted(self.log.records.items()):
            if name != topic:
                continue
            while self.committed[(name, partition)] < len(log):
                if limit is not None and handled >= limit:
                    return handled
                start = self.committed[(name, partition)]
                end = min(len(log), start + together)
                if limit is not None:
                    end = min(end, start + limit - handled)
                await runner.handle_many(partition, [(o, log[o]) for o in range(start, end)])
                self.committed[(name, partition)] = end
                handled += end - start
        return handled

    async def drain(self, order: Sequence[str] | None = None, together: int = 1) -> None:
        """Run the stages until no message is left unread."""
        order = order or (self.names.events, self.names.identity, self.names.journeys)
        while any(self.pending(topic) for topic in order):
            for topic in order:
                await self.consume(topic, together=together)

    def run(self, events: Iterable[Any], chunk: int | None = None, together: int = 1) -> None:
        """Send the events (all at once, or ``chunk`` at a time) and drain after each send."""
        listed = list(events)
        step = chunk or max(len(listed), 1)
        for start in range(0, len(listed), step):
            self.send_events(listed[start:start + step])
            asyncio.run(self.drain(together=together))

    def restart(self) -> None:
        """A new worker process: in-memory state gone, rebuilt from the changelogs."""
        self._start()

    def forget_unread(self, topics: Iterable[str]) -> None:
        """Drop what was sent to these topics and not read yet: sends a crash lost."""
        for key, log in self.log.records.items():
            if key[0] in topics:
                del log[self.committed[key]:]

    def rewind(self, topic: str, offsets: Mapping[int, int]) -> None:
        """Uncommit: the consumer reads these partitions again from these offsets."""
        for partition, offset in offsets.items():
            self.committed[(topic, partition)] = offset

    # --- output ------------------------------------------------------------------------------

    def landed(self, table: str) -> pa.Table:
        """Every row sent to the landing topic for ``table`` (duplicates included)."""
        parts = []
        for (topic, _), log in self.log.records.items():
            if topic != self.names.landing:
                continue
            for data in log:
                rows = decode_body(data).get("rows", {})
                if table in rows:
                    parts.append(arrow_part(table, rows[table]))
        if not parts:
            return pa.table({})
        return pa.concat_tables(parts)

    def credits(self) -> list[CreditRow]:
        table = self.landed("credits")
        if table.num_rows == 0:
            return []
        frame = pl.from_arrow(table)
        assert isinstance(frame, pl.DataFrame)
        frame = frame.with_columns(pl.col("touch_time", "conversion_time").dt.epoch("us"))
        return [CreditRow(*row) for row in frame.select(CREDIT_COLUMNS).iter_rows()]

    def latest_credits(self) -> list[CreditRow]:
        rows = self.credits()
        latest: dict[str, int] = {}
        for row in rows:
            latest[row.conversion_id] = max(latest.get(row.conversion_id, 0), row.version)
        unique = {(r.conversion_id, r.version, r.model, r.touch_event_id): r
                  for r in rows if r.version == latest[r.conversion_id]}
        return list(unique.values())

    def rejected(self) -> list[str]:
        table = self.landed("rejected")
        return [] if table.num_rows == 0 else table.column("reason").to_pylist()

    def device(self, key: str) -> DeviceState | None:
        store = self.devices_table.store(partition_for(key, self.settings.partitions))
        value = None if store is None else store.get(key)
        return None if value is None else self.runners[self.names.events].stage.decode(value)

    def journey(self, key: str) -> JourneyState | None:
        store = self.journeys_table.store(partition_for(key, self.settings.partitions))
        value = None if store is None else store.get(key)
        return None if value is None else self.runners[self.names.journeys].stage.decode(value)
