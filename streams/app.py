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
from collections.abc import Iterable, Sequence
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
from streams.broker import adapt_faust_to_broker, faust_url
from streams.envelope import EnvelopeError, bounded, bounded_rows
from streams.envelope import decode_body as decode
from streams.envelope import encode_body as encode
from streams.erase import ERASE, marker_ids, scrub_device, scrub_journey, scrub_link
from streams.metrics import WorkerMetrics
from streams.routing import group_by_partition, partition_for
from streams.settings import StreamSettings
from streams.sink import land_rows
from streams.stages import StageOutput, devices_message, identity_message, journeys_message
from streams.topics import topic_names
from warehouse.landing import ensure_layout
from warehouse.views import create_views

log = logging.getLogger("attribution.stream")


def create_app(settings: StreamSettings, config: Config, rules: ChannelRules,
               bootstrap: str, warehouse: Path,
               metrics: WorkerMetrics | None = None) -> faust.App:
    faust_codecs.register()
    adapt_faust_to_broker(bootstrap)
    names = topic_names(settings)
    partitions = settings.partitions
    settings.state_path().mkdir(parents=True, exist_ok=True)  # Faust makes only the last level
    app = faust.App(
        settings.app_id,
        broker=faust_url(bootstrap),
        store=settings.store,
        datadir=str(settings.state_path()),
        web_enabled=False,
        topic_partitions=partitions,
        topic_replication_factor=settings.replication_factor,
        broker_session_timeout=settings.session_timeout.total_seconds(),
        broker_heartbeat_interval=max(settings.session_timeout.total_seconds() / 10, 0.5),
        broker_commit_every=1000,
        broker_commit_interval=1.0,
        table_standby_replicas=settings.standby_replicas,
        producer_acks=-1,
        consumer_auto_offset_reset="earliest",
    )
    metrics = metrics or WorkerMetrics()
    app.monitor = metrics.monitor  # Faust's Prometheus sensors, on the worker's registry

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

    async def send_bounded(topic: faust.TopicT, field: str, items: Sequence[Any],
                           partition: int) -> None:
        """One envelope, or several when it would pass the message size limit."""
        for data in bounded(items, lambda chunk: encode(**{field: list(chunk)}),
                            settings.max_message_bytes):
            await topic.send(value=data, partition=partition)

    async def send_partitioned(topic: faust.TopicT, items: Iterable[tuple[str, Any]],
                               field: str) -> None:
        for partition, chunk in group_by_partition(items, partitions,
                                                   settings.envelope_max_items):
            await send_bounded(topic, field, chunk, partition)

    async def emit(out: StageOutput, partition: int) -> None:
        if out.links:
            await send_bounded(identity, "links", [codec.link_to(k) for k in out.links], 0)
        if out.deltas:
            await send_partitioned(journeys, ((k, {"key": k, **d}) for k, d in out.deltas),
                                   "deltas")
        if out.updates:
            await send_partitioned(events, out.updates, "updates")
        if out.dead:
            await send_bounded(dead, "rejected", out.dead, partition % partitions)
        rows = {table: rows for table, rows in out.rows.items() if rows}
        if rows:
            for data in bounded_rows(rows, settings.max_message_bytes):
                await landing.send(value=data, partition=partition % partitions)

    async def dead_letter(data: bytes, where: str, reason: str, partition: int) -> None:
        """Keep the whole message with its reason: on the dead-letter topic and in the
        warehouse's `rejected` table."""
        row = {"source": "stream", "position": where, "reason": reason,
               "raw": data[:10_000].decode(errors="replace"), "landed_at": datetime.now(UTC)}
        raw = data[: settings.max_message_bytes // 2].decode(errors="replace")  # fits a message
        await dead.send(value=encode(rejected=[row], raw=raw), partition=partition % partitions)
        await landing.send(value=encode(rows={"rejected": [row]}),
                           partition=partition % partitions)
        metrics.dead_letters.labels(where.split(":")[0], "stage_failed" if "stage failed" in
                                    reason else "bad_envelope").inc()

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
        items = list(table.items())
        evicted = 0
        for key, state in items:
            if state is not None and partition_for(key, partitions) == partition and idle(
                    state, now, config):
                del table[key]
                evicted += 1
        metrics.state_keys.labels(name).set(len(items) - evicted)
        metrics.evictions.labels(name).inc(evicted)

    async def commit(out: StageOutput, table: Any, name: str, partition: int,
                     idle: Any) -> None:
        """Write each touched key once, send the results, evict what went idle."""
        for key, state in out.states.items():
            table[key] = state
            _advance(watermarks, name, state)
        metrics.produced(name, names, out)
        await emit(out, partition)
        evict(table, partition, name, idle)

    def scrub_partition(table: Any, partition: int, count: int, ids: frozenset[str],
                        scrub: Any) -> None:
        """Apply an erase marker to this partition's keys: tombstone or rewrite."""
        for key, state in list(table.items()):
            if state is None or partition_for(key, count) != partition:
                continue
            scrubbed = scrub(key, state, ids)
            if scrubbed is None:
                del table[key]
            elif scrubbed is not state:
                table[key] = scrubbed

    async def erase_devices(payload: dict[str, Any], partition: int) -> None:
        """Scrub this partition's devices, then pass the marker on behind anything already
        sent for those ids (see streams.erase)."""
        scrub_partition(devices_table, partition, partitions, marker_ids(payload), scrub_device)
        marker = encode(erase=payload[ERASE])
        for target in range(partitions):
            await journeys.send(value=marker, partition=target)
        await identity.send(value=marker, partition=0)
        log.info("erasure %s applied to %s:%d", payload[ERASE].get("id"), names.events, partition)

    @app.agent(events)
    async def devices(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            partition = event.message.partition
            where = f"{names.events}:{partition}:{event.message.offset}"
            try:
                payload = decode(event.value)
                if ERASE in payload:
                    await erase_devices(payload, partition)
                    continue
            except EnvelopeError as exc:
                await dead_letter(event.value, where, str(exc), partition)
                continue
            metrics.consumed("devices", names.events, payload)
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
                if ERASE in payload:
                    scrub_partition(links_table, 0, 1, marker_ids(payload), scrub_link)
                    graph_box.clear()  # rebuilt from the scrubbed table
                    continue
                links = [codec.link_from(item) for item in payload.get("links", [])]
            except (EnvelopeError, ValueError) as exc:
                where = f"{names.identity}:0:{event.message.offset}"
                await dead_letter(event.value, where, f"bad identity envelope: {exc}", 0)
                continue
            metrics.consumed("identities", names.identity, payload)
            graph = identity_graph()
            fresh = [link for link in links if _link_key(link) not in links_table]
            for link in fresh:
                links_table[_link_key(link)] = link
            out = identity_message(graph, fresh) if fresh else StageOutput()
            graph_size["links"] = len(links_table)
            metrics.produced("identities", names, out)
            await emit(out, 0)

    @app.agent(journeys)
    async def journey_agent(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            partition = event.message.partition
            where = f"{names.journeys}:{partition}:{event.message.offset}"
            try:
                payload = decode(event.value)
                if ERASE in payload:
                    scrub_partition(journeys_table, partition, partitions, marker_ids(payload),
                                    scrub_journey)
                    continue
                metrics.consumed("journeys", names.journeys, payload)
                out = journeys_message(journeys_table.get, payload.get("deltas", []), config)
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
                    payload = decode(data)
                    metrics.consumed("sink", names.landing, payload)
                    for table, table_rows in payload.get("rows", {}).items():
                        rows.setdefault(table, []).extend(table_rows)
                except EnvelopeError as exc:
                    log.error("dropping malformed landing envelope: %s", exc)
            started = time.monotonic()
            await _land_with_retry(warehouse, rows, settings.sink_retry_max_seconds, metrics)
            metrics.landed(rows, time.monotonic() - started)

    return app


async def _land_with_retry(root: Path, rows: dict[str, list[dict[str, Any]]],
                           max_delay: float, metrics: WorkerMetrics) -> None:
    """Offsets are acked only after this returns, so keep trying: never skip data.
    The failure shows in the log, /metrics and /healthz until a retry succeeds."""
    delay = 0.1
    while True:
        try:
            await asyncio.to_thread(land_rows, root, rows)
            metrics.sink_state(False)
            return
        except OSError as exc:
            metrics.landing_errors.inc()
            metrics.sink_state(True)
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
