"""Prometheus metrics of a stream worker: Faust's own sensors plus the pipeline's counters.

One ``WorkerMetrics`` per Faust app, each on its own ``CollectorRegistry`` so several
apps (tests) in one process never clash. Faust's ``PrometheusMonitor`` records messages
in/out per topic, table operations, commit and send latency and rebalances (``faust_*``);
the counters here add what only the pipeline knows: events per envelope, conversions
credited and why, rows and Parquet files landed, dead letters by reason, state size.
Rates (envelopes/s, events/s) are PromQL ``rate()`` over these counters.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from faust.sensors.prometheus import FaustMetrics, PrometheusMonitor
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from streams.stages import StageOutput
from streams.topics import TopicNames

#: Seconds; a flush is one batch of Parquet files written, fsynced and renamed.
FLUSH_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_FIELD_LABEL = re.compile(r"[A-Za-z0-9_.()\[\]-]{1,40}")


def dead_letter_reason(reason: str) -> str:
    """A bounded label for a rejection reason: the field the first error names
    ("invalid:properties"), else "other". Free text would explode the label set."""
    field, sep, _ = reason.partition(":")
    field = field.strip()
    if sep and _FIELD_LABEL.fullmatch(field):
        return f"invalid:{field}"
    return "other"


class ConsumerLagCollector(Collector):
    """Per-partition lag as this worker sees it: the high watermark of the last fetch
    minus the offset it last committed (Faust's monitor tracks both)."""

    def __init__(self, monitor: PrometheusMonitor) -> None:
        self.monitor = monitor

    def collect(self) -> Iterable[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "attribution_consumer_lag", "Records fetched-end minus committed, per partition",
            labels=["topic", "partition"])
        ends = dict(self.monitor.tp_end_offsets or {})
        committed = dict(self.monitor.tp_committed_offsets or {})
        for tp, end in sorted(ends.items()):
            done = committed.get(tp, 0)
            family.add_metric([tp.topic, str(tp.partition)], float(max(end - done, 0)))
        yield family


class WorkerMetrics:
    """Everything a worker exposes on /metrics."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        # process_resident_memory_bytes, process_cpu_seconds_total, open fds (Linux /proc).
        ProcessCollector(registry=r)
        self.monitor = PrometheusMonitor(metrics=FaustMetrics.create(r, "faust"))
        r.register(ConsumerLagCollector(self.monitor))
        self.envelopes_in = Counter(
            "attribution_envelopes_in", "Kafka messages (envelopes) consumed",
            ["agent", "topic"], registry=r)
        self.items_in = Counter(
            "attribution_items_in", "Items in consumed envelopes (kind: events, updates, "
            "links, deltas, rows)", ["agent", "topic", "kind"], registry=r)
        self.items_out = Counter(
            "attribution_items_out", "Items sent onward, by target topic",
            ["agent", "topic"], registry=r)
        self.conversions_credited = Counter(
            "attribution_conversions_credited", "Conversions (re-)credited: reason initial, "
            "late_touch (late events) or identity_merge", ["policy", "reason"], registry=r)
        self.rows_landed = Counter(
            "attribution_rows_landed", "Rows landed as Parquet, by table", ["table"], registry=r)
        self.files_written = Counter(
            "attribution_parquet_files_written", "Parquet files landed, by table", ["table"],
            registry=r)
        self.flush_seconds = Histogram(
            "attribution_sink_flush_seconds", "Time to land one sink batch (all its files, "
            "retries included)", buckets=FLUSH_BUCKETS, registry=r)
        self.landing_errors = Counter(
            "attribution_landing_errors", "Failed attempts to land a sink batch (retried)",
            registry=r)
        self.sink_dropped = Counter(
            "attribution_sink_dropped_messages", "Landing messages the sink could not read "
            "(logged with the reason and skipped)", registry=r)
        self.sink_failing = Gauge(
            "attribution_sink_failing", "1 while the sink cannot land (retrying), else 0",
            registry=r)
        self.sink_is_failing = False
        self.dead_letters = Counter(
            "attribution_dead_letters", "Records dead-lettered, by reason", ["agent", "reason"],
            registry=r)
        self.state_keys = Gauge(
            "attribution_state_keys", "Keys held in a table on this worker (journeys in state)",
            ["table"], registry=r)
        self.evictions = Counter(
            "attribution_evictions", "Idle keys evicted (tombstoned), by table", ["table"],
            registry=r)
        self.ready = Gauge(
            "attribution_worker_ready", "1 when partitions are assigned and tables recovered",
            registry=r)
        self.stalls = Counter(
            "attribution_worker_stalls", "Times the watchdog found this worker stalled: "
            "assigned partitions with lag and no commit for [stream] stall_seconds",
            registry=r)
        self.stalled_partitions = Gauge(
            "attribution_stalled_partitions", "Assigned partitions the watchdog found stalled",
            registry=r)
        self.stalled: list[str] = []  # "topic:partition", for /readyz

    def sink_state(self, failing: bool) -> None:
        """For the sink's retry loop: shown on /metrics and in /healthz."""
        self.sink_is_failing = failing
        self.sink_failing.set(1 if failing else 0)

    def stall(self, partitions: list[str]) -> None:
        """For the watchdog: this worker is stalled on these partitions (fails /readyz)."""
        self.stalled = partitions
        self.stalls.inc()
        self.stalled_partitions.set(len(partitions))

    def consumed(self, agent: str, topic: str, payload: Mapping[str, Any]) -> None:
        """One envelope in: count it and the items it carries, per kind."""
        self.envelopes_in.labels(agent, topic).inc()
        for kind, items in payload.items():
            if isinstance(items, list | dict) and kind != "raw":
                self.items_in.labels(agent, topic, kind).inc(_size(items))

    def produced(self, agent: str, names: TopicNames, out: StageOutput) -> None:
        """What a stage sends onward, per target topic; credits counted per conversion."""
        sent = {names.identity: len(out.links), names.journeys: len(out.deltas),
                names.events: len(out.updates), names.dead: len(out.dead),
                names.landing: sum(_height(cols) for cols in out.rows.values())}
        for topic, count in sent.items():
            if count:
                self.items_out.labels(agent, topic).inc(count)
        for row in out.dead:
            self.dead_letters.labels(agent, dead_letter_reason(str(row.get("reason", "")))).inc()
        credits = out.rows.get("credits")
        if credits:
            self.credited(credits)

    def credited(self, credits: Mapping[str, Sequence[Any]]) -> None:
        """Conversions (re-)credited, from the columns of a credits message."""
        versions = {(cid, version): (policy, reason) for cid, version, policy, reason in zip(
            credits["conversion_id"], credits["version"], credits["policy"], credits["reason"],
            strict=True)}
        for policy, reason in versions.values():
            self.conversions_credited.labels(policy, reason).inc()

    def landed(self, rows_by_table: Mapping[str, int], seconds: float) -> None:
        """One sink batch in place: a file per non-empty table (see streams.sink)."""
        self.flush_seconds.observe(seconds)
        for table, rows in rows_by_table.items():
            if rows:
                self.rows_landed.labels(table).inc(rows)
                self.files_written.labels(table).inc()


def _height(cols: Mapping[str, Sequence[Any]]) -> int:
    return len(next(iter(cols.values()))) if cols else 0


def _size(items: list[Any] | dict[str, Any]) -> int:
    """Items of a body: a list's length; columns' height; per-table columns' total."""
    if isinstance(items, list):
        return len(items)
    values = list(items.values())
    if values and all(isinstance(v, list) for v in values):
        return len(values[0])  # columns
    return sum(_size(v) for v in values if isinstance(v, list | dict))
