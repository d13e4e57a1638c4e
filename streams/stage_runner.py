"""The loop body every agent shares, one step per concern:

    decode -> stage -> commit state -> emit -> evict

``StageRunner.handle`` takes one Kafka message (partition, offset, bytes) and needs no
Faust: the app feeds it from its agents, ``tests/support`` from plain lists. Outputs go
through ``Emitter``, which only knows how to send bytes to a topic partition.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from schemas.contracts import IdentityUpdate, JourneyDelta, Link
from streams.envelope import EnvelopeError, bounded, decode_body, encode_body, salvage_events
from streams.erase import ERASE, marker_ids
from streams.messages import bounded_rows, encode_deltas, encode_links, encode_updates
from streams.metrics import WorkerMetrics
from streams.routing import group_by_partition
from streams.settings import StreamSettings
from streams.stages import StageOutput, rejected_row
from streams.state.store import PartitionStore
from streams.state.table import StateTable
from streams.topics import TopicNames

log = logging.getLogger("attribution.stream")

_NO_TIME = 1 << 61  # activity values from here up are "no time" markers, not event times
Send = Callable[[str, int, bytes], Awaitable[Any]]  # topic, partition, value -> future


class StateView:
    """A partition's state as the stage sees it: decoded values by key, and the stage's
    event-time clock (the latest activity it has written, None before any)."""

    def __init__(self, store: PartitionStore, decode: Callable[[bytes], Any],
                 watermark: int | None = None) -> None:
        self.store = store
        self._decode = decode
        self.watermark = watermark

    def get(self, key: str) -> Any:
        value = self.store.get(key)
        return None if value is None else self._decode(value)

    def values(self) -> list[Any]:
        return [self._decode(value) for _, value in self.store.items()]

    def __len__(self) -> int:
        return len(self.store)


class Stage(Protocol):
    """One agent's stage: how to read its state and what to do with a message."""

    name: str  # metrics label: devices | identities | journeys
    topic: str  # the topic it consumes

    def run(self, state: StateView, payloads: Sequence[tuple[str, Mapping[str, Any]]],
            partition: int) -> StageOutput: ...  # consecutive (position, body) of one kind

    def encode(self, state: Any) -> tuple[int, bytes]: ...  # (activity time, value)

    def decode(self, value: bytes) -> Any: ...

    def idle_before(self, watermark: int) -> int: ...  # evict keys active before this

    def erase(self, key: str, state: Any, ids: frozenset[str]) -> Any: ...  # None: delete

    # State that shrinks once the clock has moved on (a device's old pages fold away):
    def compactable(self, state: Any) -> bool: ...

    def compact(self, state: Any, watermark: int) -> Any: ...  # None: nothing to do

    def compact_before(self, watermark: int) -> int: ...  # keys active before this


@dataclass
class Emitter:
    """Sends a stage's output to the pipeline's topics, as envelopes per partition that
    stay under the message size limit."""

    send: Send
    names: TopicNames
    settings: StreamSettings

    async def _all(self, topic: str, partition: int, messages: Sequence[bytes]) -> None:
        for data in messages:
            await self.send(topic, partition, data)

    async def emit(self, out: StageOutput, partition: int) -> None:
        limit, count = self.settings.max_message_bytes, self.settings.partitions
        if out.links:
            await self._all(self.names.identity, 0, bounded(out.links, _links, limit))
        if out.deltas:
            for target, chunk in group_by_partition(((key, (key, delta)) for key, delta
                                                     in out.deltas), count,
                                                    self.settings.envelope_max_items):
                await self._all(self.names.journeys, target, bounded(chunk, _deltas, limit))
        if out.updates:
            for target, updates in group_by_partition(((u.id, u) for u in out.updates), count,
                                                      self.settings.envelope_max_items):
                await self._all(self.names.events, target, bounded(updates, _updates, limit))
        if out.dead:
            await self._all(self.names.dead, partition % count,
                            bounded(out.dead, lambda c: encode_body(rejected=list(c)), limit))
        if out.rows:
            await self._all(self.names.landing, partition % count,
                            bounded_rows(out.rows, limit))


def _links(chunk: Sequence[Link]) -> bytes:
    return encode_links(chunk)


def _deltas(chunk: Sequence[tuple[str, JourneyDelta]]) -> bytes:
    return encode_deltas(chunk)


def _updates(chunk: Sequence[IdentityUpdate]) -> bytes:
    return encode_updates(chunk)


class StageRunner:
    """Runs one stage over the messages of the partitions this worker owns."""

    def __init__(self, stage: Stage, table: StateTable, emitter: Emitter,
                 settings: StreamSettings, metrics: WorkerMetrics,
                 on_erase: Callable[[Mapping[str, Any], int], Awaitable[None]] | None = None
                 ) -> None:
        self.stage = stage
        self.table = table
        self.emitter = emitter
        self.settings = settings
        self.metrics = metrics
        self.on_erase = on_erase  # passes an erase marker on to the next stages
        self.watermark: int | None = None  # latest activity (event time) written
        self._last_eviction: dict[int, float] = {}
        self._compactable: dict[int, set[str]] = {}  # keys whose state may shrink later

    async def handle(self, partition: int, offset: int, data: bytes) -> None:
        await self.handle_many(partition, [(offset, data)])

    async def handle_many(self, partition: int, messages: Sequence[tuple[int, bytes]]) -> None:
        """Consecutive messages of one partition. Runs of bodies of the same kind go to the
        stage in one call (one state commit, one set of sends): the per-call costs of the
        columnar stages amortise over more events. An erase marker is a barrier."""
        store = await self.table.ensure(partition)
        run: list[tuple[int, bytes, Mapping[str, Any]]] = []
        kind: tuple[str, ...] = ()
        for offset, data in messages:
            where = self._where(partition, offset)
            try:
                payload = decode_body(data)                                 # decode
            except EnvelopeError as exc:
                salvaged = salvage_events(data)
                if salvaged is None:
                    await self.dead_letter(data, where, str(exc), partition)
                    continue
                payload, unreadable = salvaged
                for index, raw, reason in unreadable:
                    await self.dead_letter(raw, f"{where}#{index}", reason, partition)
            if ERASE in payload:
                await self._run(partition, store, run)
                run, kind = [], ()
                await self._erase(payload, partition)
                continue
            self.metrics.consumed(self.stage.name, self.stage.topic, payload)
            body_kind = tuple(sorted(k for k in payload if k != "v"))
            if run and body_kind != kind:
                await self._run(partition, store, run)
                run = []
            run.append((offset, data, payload))
            kind = body_kind
        await self._run(partition, store, run)

    def _where(self, partition: int, offset: int) -> str:
        return f"{self.stage.topic}:{partition}:{offset}"

    async def _run(self, partition: int, store: PartitionStore,
                   run: Sequence[tuple[int, bytes, Mapping[str, Any]]]) -> None:
        if not run:
            return
        view = StateView(store, self.stage.decode, self.watermark)
        bodies = [(self._where(partition, offset), payload) for offset, _, payload in run]
        try:
            out = self.stage.run(view, bodies, partition)                   # stage
        except Exception as exc:  # a bug must not lose the messages: find the one at fault
            if len(run) > 1:
                for message in run:
                    await self._run(partition, store, [message])
                return
            offset, data, _ = run[0]
            where = self._where(partition, offset)
            log.exception("%s stage failed on %s", self.stage.name, where)
            await self.dead_letter(data, where, f"{self.stage.name} stage failed: {exc!r}",
                                   partition)
            return
        await self.table.commit(partition, self._changes(out.states))       # commit state
        self._track(partition, out.states)
        self.metrics.produced(self.stage.name, self.emitter.names, out)
        await self.emitter.emit(out, partition)                              # emit
        await self.evict(partition)                                          # evict

    def _changes(self, states: Mapping[str, Any]) -> dict[str, tuple[int, bytes | None]]:
        changes: dict[str, tuple[int, bytes | None]] = {}
        for key, state in states.items():
            if state is None:
                changes[key] = (0, None)
                continue
            active, value = self.stage.encode(state)
            changes[key] = (active, value)
            if (self.watermark is None or active > self.watermark) and active < _NO_TIME:
                self.watermark = active
        return changes

    async def evict(self, partition: int, force: bool = False) -> None:
        """Tombstone idle keys of this partition, at most once per eviction interval."""
        clock = time.monotonic()
        last = self._last_eviction.get(partition, 0.0)
        if self.watermark is None or (not force and clock - last <
                                      self.settings.eviction_interval.total_seconds()):
            return
        self._last_eviction[partition] = clock
        evicted = await self.table.evict(partition, self.stage.idle_before(self.watermark))
        await self._compact(partition, self.watermark)
        self.metrics.state_keys.labels(self.table.name).set(self.table.keys())
        self.metrics.evictions.labels(self.table.name).inc(evicted)

    def _track(self, partition: int, states: Mapping[str, Any]) -> None:
        keys = self._compactable.setdefault(partition, set())
        for key, state in states.items():
            if state is not None and self.stage.compactable(state):
                keys.add(key)
            else:
                keys.discard(key)

    async def _compact(self, partition: int, watermark: int) -> None:
        """Rewrite the states of keys idle long enough to shrink (one write each, ever)."""
        store = self.table.store(partition)
        keys = self._compactable.get(partition)
        if store is None or not keys:
            return
        before = self.stage.compact_before(watermark)
        changes: dict[str, Any] = {}
        for key in [k for k in keys if store.active_before(k, before)]:
            value = store.get(key)
            compacted = None if value is None else self.stage.compact(
                self.stage.decode(value), watermark)
            if compacted is not None:
                changes[key] = compacted
            keys.discard(key)
        if changes:
            await self.table.commit(partition, self._changes(changes))
            self._track(partition, changes)

    async def _erase(self, payload: Mapping[str, Any], partition: int) -> None:
        """Scrub this partition's keys for the marker's ids, then pass the marker on."""
        ids = marker_ids(dict(payload))
        store = self.table.store(partition)
        changes: dict[str, Any] = {}
        if store is not None:
            for key, value in store.items():
                state = self.stage.decode(value)
                scrubbed = self.stage.erase(key, state, ids)
                if scrubbed is None:
                    changes[key] = None
                elif scrubbed is not state:
                    changes[key] = scrubbed
        await self.table.commit(partition, self._changes(changes))
        if self.on_erase is not None:
            await self.on_erase(payload, partition)

    async def dead_letter(self, data: bytes, where: str, reason: str, partition: int) -> None:
        """Keep the whole message with its reason: on the dead-letter topic and in the
        warehouse's `rejected` table."""
        row = rejected_row(data[:10_000].decode(errors="replace"), reason, where)
        limit = self.settings.max_message_bytes
        raw = data[: limit // 2].decode(errors="replace")  # fits a message
        out = StageOutput(dead=[row])
        out.land("rejected", {"source": ["stream"], "position": [where], "reason": [reason],
                              "raw": [row["raw"]]})
        await self.emitter.send(self.emitter.names.dead, partition % self.settings.partitions,
                                encode_body(rejected=[row], raw=raw))
        await self.emitter.emit(StageOutput(rows=out.rows), partition)
        kind = "stage_failed" if "stage failed" in reason else "bad_envelope"
        self.metrics.dead_letters.labels(where.split(":")[0], kind).inc()

