"""The Faust app: four thin agents over the pure stages.

    events --devices--> identity --identity--> events (answers, keyed by device)
              |  \\--> journeys --journeys--> landing --sink--> Parquet
              \\--> landing, dead-letters

Each agent: decode one envelope, fetch the touched state, call ``streams.stages``,
write each touched key once, send the results as envelopes per target partition.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import faust

from attribution.channels import ChannelRules
from attribution.device import DeviceState
from attribution.device import is_idle as device_is_idle
from attribution.identity import IdentityGraph
from attribution.journey import JourneyState
from attribution.journey import is_idle as journey_is_idle
from attribution.policy import Config
from schemas.records import IdentityLink
from streams import codec, faust_codecs
from streams.broker import faust_url, patch_faust_for_tansu
from streams.envelope import EnvelopeError
from streams.envelope import decode_body as decode
from streams.envelope import encode_body as encode
from streams.routing import group_by_partition, partition_for
from streams.settings import StreamSettings
from streams.sink import land_rows
from streams.stages import StageOutput, devices_message, identity_message, journeys_message
from streams.topics import topic_names
from warehouse.landing import ensure_layout
from warehouse.views import create_views

log = logging.getLogger("attribution.stream")


def create_app(settings: StreamSettings, config: Config, rules: ChannelRules,
               bootstrap: str, warehouse: Path) -> faust.App:
    faust_codecs.register()
    patch_faust_for_tansu()
    names = topic_names(settings)
    partitions = settings.partitions
    app = faust.App(
        settings.app_id,
        broker=faust_url(bootstrap),
        store=settings.store,
        web_enabled=False,
        topic_partitions=partitions,
        topic_replication_factor=settings.replication_factor,
        broker_session_timeout=settings.session_timeout.total_seconds(),
        broker_heartbeat_interval=max(settings.session_timeout.total_seconds() / 10, 0.5),
        broker_commit_every=1000,
        broker_commit_interval=1.0,
        table_standby_replicas=0,
        producer_acks=-1,
        consumer_auto_offset_reset="earliest",
    )

    def raw_topic(name: str, count: int) -> faust.TopicT:
        return app.topic(name, key_type=bytes, value_type=bytes, key_serializer="raw",
                         value_serializer="raw", partitions=count)

    events = raw_topic(names.events, partitions)
    identity = raw_topic(names.identity, 1)
    journeys = raw_topic(names.journeys, partitions)
    landing = raw_topic(names.landing, partitions)
    dead = raw_topic(names.dead, partitions)

    def table(name: str, value_codec: str, count: int) -> Any:
        return app.Table(name, default=None, partitions=count, key_type=str,
                         value_type=faust_codecs.value_type(value_codec))

    devices_table = table("devices", faust_codecs.DEVICE, partitions)
    journeys_table = table("journeys", faust_codecs.JOURNEY, partitions)
    links_table = table("identity-links", faust_codecs.LINK, 1)

    async def send_partitioned(topic: faust.TopicT, items: Iterable[tuple[str, Any]],
                               field: str) -> None:
        for partition, chunk in group_by_partition(items, partitions,
                                                   settings.envelope_max_items):
            await topic.send(value=encode(**{field: chunk}), partition=partition)

    async def emit(out: StageOutput, partition: int) -> None:
        if out.links:
            await identity.send(value=encode(links=[codec.link_to(k) for k in out.links]),
                                partition=0)
        if out.deltas:
            await send_partitioned(journeys, ((k, {"key": k, **d}) for k, d in out.deltas),
                                   "deltas")
        if out.updates:
            await send_partitioned(events, out.updates, "updates")
        if out.dead:
            await dead.send(value=encode(rejected=out.dead), partition=partition % partitions)
        rows = {table: rows for table, rows in out.rows.items() if rows}
        if rows:
            await landing.send(value=encode(rows=rows), partition=partition % partitions)

    async def dead_letter(data: bytes, where: str, reason: str, partition: int) -> None:
        """Keep the whole message with its reason: on the dead-letter topic and in the
        warehouse's `rejected` table."""
        row = {"source": "stream", "position": where, "reason": reason,
               "raw": data[:10_000].decode(errors="replace"), "landed_at": datetime.now(UTC)}
        await dead.send(value=encode(rejected=[row], raw=data.decode(errors="replace")),
                        partition=partition % partitions)
        await landing.send(value=encode(rows={"rejected": [row]}),
                           partition=partition % partitions)

    watermarks: dict[str, datetime] = {}
    last_eviction: dict[str, float] = {}

    def evict(table: Any, partition: int, name: str, idle: Any) -> None:
        """Tombstone idle keys of this partition (changelog goes to the same partition)."""
        now = watermarks.get(name)
        clock = time.monotonic()
        if now is None or clock - last_eviction.get(name, 0.0) < (
                settings.eviction_interval.total_seconds()):
            return
        last_eviction[name] = clock
        for key, state in list(table.items()):
            if state is not None and partition_for(key, partitions) == partition and idle(
                    state, now, config):
                del table[key]

    async def commit(out: StageOutput, table: Any, name: str, partition: int,
                     idle: Any) -> None:
        """Write each touched key once, send the results, evict what went idle."""
        for key, state in out.states.items():
            table[key] = state
            _advance(watermarks, name, state)
        await emit(out, partition)
        evict(table, partition, name, idle)

    @app.agent(events)
    async def devices(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            partition = event.message.partition
            where = f"{names.events}:{partition}:{event.message.offset}"
            try:
                payload = decode(event.value)
            except EnvelopeError as exc:
                await dead_letter(event.value, where, str(exc), partition)
                continue
            try:
                out = devices_message(devices_table.get, payload, where, config, rules)
            except Exception as exc:  # a bug must not lose the message: dead-letter it
                log.exception("device stage failed on %s", where)
                await dead_letter(event.value, where, f"device stage failed: {exc!r}", partition)
                continue
            await commit(out, devices_table, "devices", partition, device_is_idle)

    graph_box: dict[str, IdentityGraph] = {}
    graph_size: dict[str, int] = {}

    def identity_graph() -> IdentityGraph:
        # Rebuilt from the recovered table whenever this worker (re)gains the partition.
        graph = graph_box.get("graph")
        if graph is None or graph_size.get("links") != len(links_table):
            graph = IdentityGraph(v for v in links_table.values() if v is not None)
            graph_box["graph"] = graph
        return graph

    @app.agent(identity)
    async def identities(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            try:
                payload = decode(event.value)
                links = [codec.link_from(item) for item in payload.get("links", [])]
            except (EnvelopeError, ValueError) as exc:
                where = f"{names.identity}:0:{event.message.offset}"
                await dead_letter(event.value, where, f"bad identity envelope: {exc}", 0)
                continue
            graph = identity_graph()
            fresh = [link for link in links if _link_key(link) not in links_table]
            for link in fresh:
                links_table[_link_key(link)] = link
            out = identity_message(graph, fresh) if fresh else StageOutput()
            graph_size["links"] = len(links_table)
            await emit(out, 0)

    @app.agent(journeys)
    async def journey_agent(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            partition = event.message.partition
            where = f"{names.journeys}:{partition}:{event.message.offset}"
            try:
                out = journeys_message(journeys_table.get, decode(event.value).get("deltas", []),
                                       config)
            except Exception as exc:
                log.exception("journey stage failed on %s", where)
                await dead_letter(event.value, where, f"journey stage failed: {exc!r}", partition)
                continue
            await commit(out, journeys_table, "journeys", partition, journey_is_idle)

    @app.on_partitions_assigned.connect
    async def log_assignment(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        assigned: set[Any] = kwargs.get("assigned") or (args[0] if args else set())
        mine = sorted(f"{tp.topic}:{tp.partition}" for tp in assigned
                      if tp.topic in (names.events, names.journeys, names.identity))
        log.info("assigned partitions: %s", ", ".join(mine) or "(none)")

    ensure_layout(warehouse)
    create_views(warehouse)

    @app.agent(landing)
    async def sink(stream: faust.StreamT[bytes]) -> None:
        async for batch in stream.take(settings.sink_max_rows // 100 or 1,
                                       within=settings.sink_max_seconds):
            rows: dict[str, list[dict[str, Any]]] = {}
            for data in batch:
                try:
                    for table, table_rows in decode(data).get("rows", {}).items():
                        rows.setdefault(table, []).extend(table_rows)
                except EnvelopeError as exc:
                    log.error("dropping malformed landing envelope: %s", exc)
            await _land_with_retry(warehouse, rows, settings.sink_retry_max_seconds)

    return app


async def _land_with_retry(root: Path, rows: dict[str, list[dict[str, Any]]],
                           max_delay: float) -> None:
    """Offsets are acked only after this returns, so keep trying: never skip data."""
    delay = 0.1
    while True:
        try:
            await asyncio.to_thread(land_rows, root, rows)
            return
        except OSError as exc:
            log.error("landing failed (%s); retrying in %.1fs", exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_delay)


def _link_key(link: IdentityLink) -> str:
    return f"{link.kind}|{link.from_id}|{link.to_id}"


def _advance(watermarks: dict[str, datetime], name: str,
             state: DeviceState | JourneyState) -> None:
    latest = state.last_time if isinstance(state, DeviceState) else state.watermark
    if latest is not None and (name not in watermarks or latest > watermarks[name]):
        watermarks[name] = latest
