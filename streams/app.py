"""The Faust app: four short agents over ``streams.stage_runner``.

    events --devices--> identity --identities--> events (answers, keyed by device)
              |  \\--> journeys --journeys--> landing --sink--> Parquet
              \\--> landing, dead-letters

Each agent hands its messages to a ``StageRunner`` (decode -> stage -> commit state ->
emit -> evict); state lives in ``streams.state`` tables with their own changelogs, not in
Faust tables, so one message's state changes cost one changelog record.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import faust

from attribution.channels import ChannelRules
from attribution.policy import Config
from streams.broker import adapt_faust_to_broker, faust_url
from streams.envelope import encode_body
from streams.erase import ERASE
from streams.health import watch_state
from streams.metrics import WorkerMetrics
from streams.producer import COMPRESSION, LINGER_MS, MAX_BATCH_BYTES, MAX_REQUEST_BYTES
from streams.settings import StreamSettings
from streams.sink_process import LandingProcess
from streams.stage_runner import Emitter, StageRunner
from streams.stage_specs import DeviceStage, IdentityStage, JourneyStage
from streams.state.rocks import RocksStore
from streams.state.store import MemoryStore, PartitionStore
from streams.state.table import StateTable, kafka_reader
from streams.topics import changelog_names, topic_names
from warehouse.landing import ensure_layout
from warehouse.views import create_views

log = logging.getLogger("attribution.stream")
STANDBY_INTERVAL_SECONDS = 5.0


def create_app(settings: StreamSettings, config: Config, rules: ChannelRules,
               bootstrap: str, warehouse: Path,
               metrics: WorkerMetrics | None = None) -> faust.App:
    adapt_faust_to_broker(bootstrap)
    names = topic_names(settings)
    changelogs = changelog_names(settings)
    settings.state_path().mkdir(parents=True, exist_ok=True)
    app = faust.App(
        settings.app_id,
        broker=faust_url(bootstrap),
        datadir=str(settings.state_path()),
        web_enabled=False,
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        topic_allow_declare=False,  # every topic is created from its spec (streams.topics)
        topic_disable_leader=True,  # no leader timers: nor its `__assignor-__leader` topic
        broker_session_timeout=settings.session_timeout.total_seconds(),
        broker_heartbeat_interval=max(settings.session_timeout.total_seconds() / 10, 0.5),
        broker_commit_every=1000,
        broker_commit_interval=1.0,
        producer_acks=-1,
        producer_linger_ms=LINGER_MS,
        producer_max_batch_size=MAX_BATCH_BYTES,
        producer_max_request_size=MAX_REQUEST_BYTES,
        producer_compression_type=COMPRESSION,
        consumer_auto_offset_reset="earliest",
    )
    metrics = metrics or WorkerMetrics()
    app.monitor = metrics.monitor  # Faust's Prometheus sensors, on the worker's registry

    def raw_topic(name: str, count: int) -> faust.TopicT:
        return app.topic(name, key_type=bytes, value_type=bytes, key_serializer="raw",
                         value_serializer="raw", partitions=count)

    topics = {name: raw_topic(name, 1 if name in (names.identity, changelogs.links)
                              else settings.partitions)
              for name in (names.events, names.identity, names.journeys, names.landing,
                           names.dead, changelogs.devices, changelogs.journeys,
                           changelogs.links)}

    async def send(topic: str, partition: int, data: bytes) -> Any:
        return await topics[topic].send(value=data, partition=partition)

    def table(name: str, topic: str) -> StateTable:
        async def send_record(partition: int, data: bytes) -> Any:
            return await send(topic, partition, data)

        return StateTable(name, topic, kafka_reader(bootstrap), _store_opener(settings, name),
                          send_record, standby=settings.standby_replicas > 0)

    emitter = Emitter(send, names, settings)
    devices_table = table("devices", changelogs.devices)
    journeys_table = table("journeys", changelogs.journeys)
    links_table = table("identity-links", changelogs.links)

    async def forward_erase(payload: Mapping[str, Any], partition: int) -> None:
        """Pass the marker on behind anything already sent for those ids (see streams.erase)."""
        marker = encode_body(erase=payload[ERASE])
        for target in range(settings.partitions):
            await send(names.journeys, target, marker)
        await send(names.identity, 0, marker)
        log.info("erasure %s applied to %s:%d", payload[ERASE].get("id"), names.events,
                 partition)

    identity_stage = IdentityStage(names.identity)
    devices = StageRunner(DeviceStage(names.events, config, rules), devices_table, emitter,
                          settings, metrics, on_erase=forward_erase)
    journeys = StageRunner(JourneyStage(names.journeys, config), journeys_table, emitter,
                           settings, metrics)
    identities = StageRunner(identity_stage, links_table, emitter, settings, metrics)

    def agent(name: str, runner: StageRunner) -> None:
        async def consume(stream: faust.StreamT[bytes]) -> None:
            # Whatever arrived within a short window goes to the stage together, per
            # partition in offset order: small envelopes (the collector's) then cost about
            # what one large one does.
            # (take_events is missing from Faust's StreamT stub, not from the stream.)
            async for events in stream.take_events(  # type: ignore[attr-defined]
                    settings.stage_batch_messages, within=settings.stage_batch_seconds):
                by_partition: dict[int, list[tuple[int, bytes]]] = {}
                for event in events:
                    by_partition.setdefault(event.message.partition, []).append(
                        (event.message.offset, event.value))
                for partition, messages in by_partition.items():
                    await runner.handle_many(partition, messages)

        consume.__name__ = name
        app.agent(topics[runner.stage.topic], name=name)(consume)

    watch_state(app, [devices_table, journeys_table, links_table])  # for /readyz
    agent("devices", devices)
    agent("journeys", journeys)
    agent("identities", identities)

    recoveries: set[asyncio.Future[None]] = set()

    @app.on_partitions_assigned.connect
    async def on_assigned(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        assigned: set[Any] = kwargs.get("assigned") or (args[0] if args else set())
        for state, topic in ((devices_table, names.events), (journeys_table, names.journeys),
                             (links_table, names.identity)):
            state.assigned(tp.partition for tp in assigned if tp.topic == topic)
            # Recover now rather than on the first message, so /readyz tells when it is done
            # (a failure is retried by the first message that needs the partition).
            task = asyncio.ensure_future(state.recover())
            recoveries.add(task)
            task.add_done_callback(recoveries.discard)
        mine = sorted(f"{tp.topic}:{tp.partition}" for tp in assigned
                      if tp.topic in (names.events, names.journeys, names.identity))
        log.info("assigned partitions: %s", ", ".join(mine) or "(none)")

    if settings.standby_replicas > 0:
        @app.timer(interval=STANDBY_INTERVAL_SECONDS)  # type: ignore[untyped-decorator]
        async def keep_standbys() -> None:
            """Follow every partition another worker owns: with any number of workers each
            partition then has a warm copy on every worker (at least `standby_replicas`)."""
            for state, count in ((devices_table, settings.partitions),
                                 (journeys_table, settings.partitions), (links_table, 1)):
                await state.follow(range(count))

    ensure_layout(warehouse)
    create_views(warehouse)
    landing = LandingProcess(warehouse)
    landing.start()

    @app.agent(topics[names.landing], name="sink")
    async def sink(stream: faust.StreamT[bytes]) -> None:
        async for batch in stream.take(settings.sink_max_rows // 100 or 1,
                                       within=settings.sink_max_seconds):
            metrics.envelopes_in.labels("sink", names.landing).inc(len(batch))
            started = time.monotonic()
            landed = await _land_with_retry(landing, list(batch),
                                            settings.sink_retry_max_seconds, metrics)
            metrics.landed(landed, time.monotonic() - started)

    return app


def _store_opener(settings: StreamSettings, name: str) -> Any:
    def open_store(partition: int) -> PartitionStore:
        if settings.store.startswith("rocksdb:"):
            return RocksStore(settings.state_path() / f"{name}-{partition}", partition)
        return MemoryStore(partition)

    return open_store


async def _land_with_retry(landing: LandingProcess, batch: list[bytes], max_delay: float,
                           metrics: WorkerMetrics) -> dict[str, int]:
    """Offsets are acked only after this returns, so keep trying: never skip data.
    The failure shows in the log, /metrics and /healthz until a retry succeeds."""
    delay = 0.1
    while True:
        try:
            landed, dropped = await landing.land(batch)
            metrics.sink_state(False)
            for reason in dropped:  # its producer already dead-lettered the input
                log.error("dropping malformed landing message: %s", reason)
            metrics.sink_dropped.inc(len(dropped))
            return landed
        except OSError as exc:
            metrics.landing_errors.inc()
            metrics.sink_state(True)
            log.error("landing failed (%s); retrying in %.1fs", exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_delay)
