"""Stream throughput and conversion-to-landed latency, next to a raw aiokafka consumer.

    .venv/bin/python -m bench stream --scale small|medium|large

One worker process (`attribution worker`, as in production) on an embedded Tansu broker
bound to 127.0.0.1, default settings (4 partitions, memory store):
1. warm-up: start the worker, send the first 1% of the traffic, wait until it landed;
2. throughput: produce the rest as fast as the loader can, time until everything landed
   (every stage's consumer group has committed everything);
3. raw reference, same run, same topic: an aiokafka consumer that reads the whole events
   topic and JSON-decodes every envelope, nothing else;
4. latency: fresh traffic paced at half the measured throughput for a bounded time; each
   conversion's latency is the mtime of the first Parquet file holding it minus the time
   its event was sent.
Targets (issue 7): ≥ 50,000 events/s per worker (ratio to raw ≥ 1/3); p50 < 500 ms,
p99 < 2 s at half load.
"""

from __future__ import annotations

import asyncio
import shutil
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson
import pyarrow.parquet as pq
from aiokafka import AIOKafkaConsumer, TopicPartition

from bench.common import WORK, Scale, cpu_seconds, machine, machine_line, say, table
from bench.common import write_section as write
from streams.broker import EmbeddedBroker, patch_faust_for_tansu
from streams.envelope import encode_envelope
from streams.loader import produce_events
from streams.producer import kafka_producer
from streams.routing import group_by_partition
from streams.runner import Workers
from streams.settings import StreamSettings, stream_settings
from streams.stages import device_key
from streams.worker import prepare, wait_until_landed
from traffic.generate import TrafficSpec, generate_events

TARGET = 50_000
LATENCY_SECONDS = 20.0  # each paced phase is bounded in time
LATENCY_HISTORY_PERCENT = 5
LATENCY_RATES = (500, 1000, 2000)  # events/s, besides half the measured backlog rate
EVENTS_PER_VISITOR = 8  # of generated traffic, to size each paced phase's input
Event = dict[str, Any]


def _events(visitors: int, accounts: int, seed: int) -> list[Event]:
    return list(generate_events(TrafficSpec(seed=seed, b2c_visitors=visitors,
                                            b2b_accounts=accounts)))


def _setup(root: Path, bootstrap: str, **overrides: str
           ) -> tuple[StreamSettings, Workers]:
    name = f"bench-{uuid.uuid4().hex[:8]}"
    stream = {"app_id": name, "topic_prefix": name, **overrides}
    config = root / "config.toml"
    config.write_text("[stream]\n" + "\n".join(f'{k} = "{v}"' for k, v in stream.items()) + "\n")
    settings = stream_settings({}, **stream)
    prepare(bootstrap, settings)
    log = (root / "worker.log").open("ab")
    return settings, Workers(bootstrap, root / "warehouse", config, log=log)


def _send(bootstrap: str, settings: StreamSettings, events: Sequence[Event]) -> int:
    return asyncio.run(produce_events(bootstrap, settings.topic("events"), settings.partitions,
                                      events))


async def _paced(bootstrap: str, settings: StreamSettings, events: Sequence[Event],
                 rate: float, limit: float) -> dict[str, float]:
    """Send at `rate` events/s in 50 ms ticks for at most `limit` seconds; messageId -> sent."""
    producer = kafka_producer(bootstrap, linger_ms=0)
    await producer.start()
    sent: dict[str, float] = {}
    per_tick = max(1, int(rate / 20))
    began = time.monotonic()
    try:
        for tick, start in enumerate(range(0, len(events), per_tick)):
            if time.monotonic() - began > limit:
                break
            await asyncio.sleep(max(0.0, began + tick * 0.05 - time.monotonic()))
            chunk = events[start:start + per_tick]
            keyed = [(device_key(e) or "", e) for e in chunk]
            futures = [await producer.send(settings.topic("events"), value=encode_envelope(part),
                                           partition=partition)
                       for partition, part in group_by_partition(keyed, settings.partitions,
                                                                 settings.envelope_max_items)]
            for future in futures:
                await future
            now = time.time()
            for event in chunk:
                sent.setdefault(str(event.get("messageId")), now)
    finally:
        await producer.stop()
    return sent


async def _raw_consume(bootstrap: str, topic: str, partitions: int) -> tuple[int, float]:
    """Read the whole topic and decode every envelope: the reference rate."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                fetch_max_bytes=16 * 1024 * 1024,
                                max_partition_fetch_bytes=8 * 1024 * 1024)
    await consumer.start()
    try:
        assigned = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        ends = await consumer.end_offsets(assigned)
        remaining = {tp for tp in assigned if ends[tp] > 0}
        events = 0
        began = time.perf_counter()
        while remaining:
            batches = await consumer.getmany(*remaining, timeout_ms=500, max_records=10_000)
            for tp, records in batches.items():
                for record in records:
                    body = orjson.loads(record.value or b"{}")
                    events += len(body.get("events", ()))
                    if record.offset + 1 >= ends[tp]:
                        remaining.discard(tp)
        return events, time.perf_counter() - began
    finally:
        await consumer.stop()


def _landed_times(warehouse: Path, table_name: str, column: str) -> dict[str, float]:
    first: dict[str, float] = {}
    for path in (warehouse / table_name).glob("*/*.parquet"):  # <table>/<column>=<day>/
        landed = path.stat().st_mtime
        for value in pq.read_table(path, columns=[column]).column(column).to_pylist():
            if value is not None and landed < first.get(value, float("inf")):
                first[value] = landed
    return first


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def _throughput(bootstrap: str, root: Path, events: Sequence[Event], workers: int,
                timeout: float) -> dict[str, Any]:
    """A fresh app: warm up on the first 1%, then time the rest produce -> landed; the raw
    consumer reads the same topic afterwards."""
    settings, pool = _setup(root, bootstrap)
    warm, main = events[: len(events) // 100], events[len(events) // 100:]
    pool.start(workers)
    try:
        _send(bootstrap, settings, warm)
        wait_until_landed(bootstrap, settings, timeout=timeout, poll=0.2)
        pids = [p.pid for p in pool.processes]
        cpu_before = sum(cpu_seconds(pid) for pid in pids)
        began = time.perf_counter()
        _send(bootstrap, settings, main)
        produced = time.perf_counter() - began
        wait_until_landed(bootstrap, settings, timeout=timeout, poll=0.2)
        seconds = time.perf_counter() - began
        worker_cpu = sum(cpu_seconds(pid) for pid in pids) - cpu_before
    finally:
        pool.stop()
    raw_events, raw_seconds = asyncio.run(_raw_consume(bootstrap, settings.topic("events"),
                                                       settings.partitions))
    return {"events": len(main), "seconds": seconds, "rate": len(main) / seconds,
            "produce_seconds": produced, "worker_cpu": worker_cpu, "workers": workers,
            "per_cpu": len(main) / worker_cpu, "raw_rate": raw_events / raw_seconds,
            "ratio": len(main) / seconds / (raw_events / raw_seconds), "settings": settings}


def _latency(bootstrap: str, root: Path, rates: Sequence[int], timeout: float,
             **overrides: str) -> list[dict[str, Any]]:
    root.mkdir(parents=True, exist_ok=True)
    settings, pool = _setup(root, bootstrap, **overrides)
    pool.start(1)
    runs = []
    try:
        for seed, paced_rate in enumerate(rates):
            visitors = max(200, int(paced_rate * LATENCY_SECONDS / EVENTS_PER_VISITOR))
            events = _events(visitors, max(2, visitors // 100), seed=4242 + seed)
            # The generator front-loads months of B2B account history: sent as a backlog
            # and landed before the clock runs, so the paced part is live-shaped traffic.
            history = len(events) * LATENCY_HISTORY_PERCENT // 100
            _send(bootstrap, settings, events[:history])
            wait_until_landed(bootstrap, settings, timeout=timeout, poll=0.2)
            paced = events[history:]
            sent = asyncio.run(_paced(bootstrap, settings, paced, paced_rate, LATENCY_SECONDS))
            wait_until_landed(bootstrap, settings, timeout=timeout, poll=0.2)
            runs.append((paced_rate, sent))
    finally:
        pool.stop()
    landed = _landed_times(root / "warehouse", "conversions", "event_id")
    rows = []
    for paced_rate, sent in runs:
        latencies = [landed[mid] - at for mid, at in sent.items() if mid in landed]
        rows.append({"rate": paced_rate, "events": len(sent), "conversions": len(latencies),
                     "p50": _percentile(latencies, 0.5), "p99": _percentile(latencies, 0.99)})
    return rows


MIXES = {"generator's mix": False, "touch-heavy": True}
LOW_LATENCY_FLUSH = "0.25"  # s; the documented low-latency sink setting, measured beside


def first_flush(results: Mapping[str, Any]) -> float:
    settings: StreamSettings = results["throughput"][0]["settings"]
    return settings.sink_max_seconds


def run(scale: Scale) -> dict[str, Any]:
    patch_faust_for_tansu()
    base = WORK / f"stream-{scale.name}"
    shutil.rmtree(base, ignore_errors=True)
    results: dict[str, Any] = {"throughput": [], "latency": []}
    with EmbeddedBroker() as broker:
        for mix, touch_heavy in MIXES.items():
            events = list(generate_events(TrafficSpec(
                seed=42, b2c_visitors=scale.stream_visitors, b2b_accounts=scale.stream_accounts,
                touch_heavy=touch_heavy)))
            for workers in (1, 2):
                root = base / f"{'th' if touch_heavy else 'site'}-{workers}"
                root.mkdir(parents=True)
                found = _throughput(broker.bootstrap, root, events, workers, scale.timeout)
                results["throughput"].append({"mix": mix, **found})
                say(f"{mix}, {workers} worker(s): {found['rate']:,.0f} events/s, "
                    f"{found['per_cpu']:,.0f} per worker CPU-second, ratio {found['ratio']:.3f}")
                shutil.rmtree(root / "warehouse", ignore_errors=True)
        one = next(r for r in results["throughput"] if r["workers"] == 1)
        half = max(100, round(one["rate"] / 2))
        for flush, rates in ((None, sorted({*LATENCY_RATES, half})),
                             (LOW_LATENCY_FLUSH, sorted({1000, half}))):
            overrides = {} if flush is None else {"sink_max_seconds": flush}
            found = _latency(broker.bootstrap, base / f"latency-{flush or 'default'}", rates,
                             scale.timeout, **overrides)
            results["latency"] += [{**row, "half_load": row["rate"] == half,
                                    "flush": flush or f"{first_flush(results)} (default)"}
                                   for row in found]
    report(scale, results)
    return results


def report(scale: Scale, n: Mapping[str, Any]) -> None:
    first = n["throughput"][0]
    settings: StreamSettings = first["settings"]
    rows = []
    for r in n["throughput"]:
        rows.append((r["mix"], r["workers"], r["events"], f"{r['seconds']:.2f}", r["rate"],
                     r["per_cpu"], r["raw_rate"], f"{r['ratio']:.3f}"))
    scaling = []
    for mix in MIXES:
        one = next(r for r in n["throughput"] if r["mix"] == mix and r["workers"] == 1)
        two = next(r for r in n["throughput"] if r["mix"] == mix and r["workers"] == 2)
        scaling.append((mix, f"{two['rate'] / one['rate']:.2f}",
                        f"{two['per_cpu'] / one['per_cpu']:.2f}",
                        "met" if two["per_cpu"] >= 0.9 * one["per_cpu"] else "NOT met"))
    best = max(r["rate"] for r in n["throughput"] if r["workers"] == 1)
    worst = min(r["rate"] for r in n["throughput"] if r["workers"] == 1)
    throughput = "met" if worst >= TARGET else "NOT met"
    latency_rows = [
        (r["flush"],
         f"{r['rate']:,}" + (" (half the 1-worker rate above)" if r["half_load"] else ""),
         f"{r['events']:,}", f"{r['conversions']:,}", f"{r['p50'] * 1000:,.0f}",
         f"{r['p99'] * 1000:,.0f}",
         "met" if r["p50"] < 0.5 and r["p99"] < 2.0 else "NOT met")
        for r in n["latency"]]
    body = "\n".join([
        machine_line(machine(), scale.name)
        + f" Worker processes (`attribution worker`), {settings.partitions} partitions, "
        f"store `{settings.store}`, sink flush {settings.sink_max_seconds}s, embedded Tansu on "
        "127.0.0.1; broker, loader and workers share the 2 cores. Each row is a fresh app: "
        "1% warm-up, then the rest produced as fast as the loader can and timed until every "
        "stage has committed everything (landed in Parquet). The raw reference reads and "
        "JSON-decodes the same events topic afterwards, in the same run.", "",
        table(("traffic", "workers", "events", "seconds", "events/s end to end",
               "events per worker CPU-second", "raw consumer events/s", "ratio to raw"), rows),
        "",
        "Two workers against one (the cores are shared with the broker and the loader, so "
        "scaling is judged per CPU-second; target: within 10%):", "",
        table(("traffic", "events/s, 2 / 1", "per worker CPU-second, 2 / 1", "within 10%"),
              scaling), "",
        f"Throughput target ≥ {TARGET:,} events/s with one worker (ratio ≥ 0.333), both "
        f"mixes: **{throughput}** ({worst:,.0f}–{best:,.0f} events/s).", "",
        f"Conversion → landed latency (produce acked → first Parquet file holding the "
        f"conversion), one worker, generator's mix paced in 50 ms ticks for "
        f"{LATENCY_SECONDS:.0f} s per rate, so envelopes are small, as from the collector "
        "(target: p50 < 500 ms, p99 < 2 s at half the maximum sustained rate). Each rate's "
        f"first {LATENCY_HISTORY_PERCENT}% of events (the generator front-loads months of "
        "B2B account history) is sent as a backlog and landed before the clock runs. The "
        "sink lands a batch every `sink_max_seconds` (waiting half of it on average); "
        f"rows with {LOW_LATENCY_FLUSH} s are the low-latency setting, four times the files "
        "of the default:", "",
        table(("sink flush s", "paced events/s", "events", "conversions", "p50 ms", "p99 ms",
               "p50 < 500 ms and p99 < 2 s"), latency_rows),
    ])
    write("stream", "Stream (`python -m bench stream`)", body)
    say(body)
