"""Stream state size and the stages' rate, in process (no broker).

    .venv/bin/python -m bench state --scale small|medium|large

Runs the stream's real runners, stages, state tables (memory stores) and message codecs
in one process (``tests/support/harness.py``, lists for topics) over three kinds of
traffic: the generator's B2C mix, the touch-heavy B2C mix (every page a campaign landing)
and B2B accounts. Memory per active journey: what tracemalloc still sees allocated once
the run is over and the message lists are dropped (the stores: devices, journeys,
identity links, their idleness index) / journeys held, so device state is included.
Changelog: bytes and records the state tables wrote, per event. Target: < 2 KB (B2C).
"""

from __future__ import annotations

import asyncio
import gc
import time
import tracemalloc
from typing import Any

from attribution.defaults import channel_rules, load_config
from bench.common import Scale, machine, machine_line, say, table
from bench.common import write_section as write
from streams.gc_tuning import tune_gc
from tests.support.harness import StreamHarness
from traffic.generate import TrafficSpec, generate_events

TARGET_BYTES = 2048
PARTITIONS = 4
# The per-object pipeline this replaced (Faust tables of pydantic records, whole state per
# key written to the changelog), measured by this benchmark's earlier version on
# 2026-11-23 (BENCHMARKS.md history): B2C 6,236 bytes per journey and 280 changelog bytes
# per event, B2B 16,262 and 1,170; 16,313 / 7,851 stage events per CPU-second.
BEFORE = {"B2C": (6_236, 280, 16_313), "B2B": (16_262, 1_170, 7_851)}


def drive(events: list[dict[str, Any]], traced: bool = False) -> dict[str, Any]:
    """One pass over ``events`` in envelopes of up to 1,000; with ``traced``, memory is
    measured (the rate is then meaningless)."""
    config = load_config(None)
    gc.collect()
    if traced:
        tracemalloc.start()
    baseline = tracemalloc.get_traced_memory()[0] if traced else 0
    sim = StreamHarness(config, channel_rules(config), partitions=PARTITIONS,
                        eviction_interval="30s")
    began, cpu = time.perf_counter(), time.process_time()
    for start in range(0, len(events), 5000):
        sim.send_events(events[start:start + 5000])
        asyncio.run(sim.drain())
    seconds, cpu = time.perf_counter() - began, time.process_time() - cpu
    changelogs = {sim.changelogs.devices, sim.changelogs.journeys, sim.changelogs.links}
    sizes = [len(data) for (topic, _), log in sim.log.records.items() if topic in changelogs
             for data in log]
    journeys, devices = sim.journeys_table.keys(), sim.devices_table.keys()
    touches = sum(len(j.touches) for j in _journeys(sim))
    held = 0
    if traced:
        sim.log.records.clear()  # the topics, not state
        _clear_caches(config)  # bounded lookup caches, not state (see report)
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - baseline
        tracemalloc.stop()
    return {"events": len(events), "rate": len(events) / seconds, "cpu_rate": len(events) / cpu,
            "journeys": journeys, "devices": devices, "touches": touches, "held": held,
            "bytes_per_journey": held / max(1, journeys),
            "changelog_per_event": sum(sizes) / max(1, len(events)),
            "records_per_event": len(sizes) / max(1, len(events))}


def _clear_caches(config: Any) -> None:
    """The bounded lookup caches (URLs parsed, hosts, channel rules, partitions): a few MB
    at most, whatever the state holds, so they are not per-journey memory."""
    from attribution.channels import _parse_url
    from streams.routing import partition_for

    compiled = channel_rules(config)._compiled
    for cache in (_parse_url, partition_for, compiled.channel_of, compiled.source_of_host):
        cache.cache_clear()  # type: ignore[attr-defined]


def _journeys(sim: StreamHarness) -> list[Any]:
    stage = sim.runners[sim.names.journeys].stage
    found = []
    for partition in sim.journeys_table.partitions():
        store = sim.journeys_table.store(partition)
        if store is not None:
            found.extend(stage.decode(value) for _, value in store.items())
    return found


def run(scale: Scale) -> dict[str, dict[str, Any]]:
    tune_gc()  # as the worker does
    results = {}
    mixes = (
        ("B2C", TrafficSpec(b2c_visitors=scale.state_visitors, b2b_accounts=0)),
        ("B2C touch-heavy", TrafficSpec(b2c_visitors=scale.state_visitors, b2b_accounts=0,
                                        touch_heavy=True)),
        ("B2B", TrafficSpec(b2c_visitors=0, b2b_accounts=max(10, scale.state_visitors // 100))),
    )
    for label, spec in mixes:
        events = list(generate_events(spec))
        results[label] = drive(events)
        # Memory per journey as a slope between half the traffic and all of it, so bounded
        # caches (URL parsing, partition lookup) do not count as per-journey state.
        half, full = drive(events[: len(events) // 2], traced=True), drive(events, traced=True)
        results[label]["bytes_per_journey"] = (full["held"] - half["held"]) / max(
            1, full["journeys"] - half["journeys"])
        results[label]["held_per_journey"] = full["bytes_per_journey"]
        del events
    report(scale, results)
    return results


def report(scale: Scale, results: dict[str, dict[str, Any]]) -> None:
    rows = [(label, r["events"], r["rate"], r["cpu_rate"], r["journeys"], r["devices"],
             r["touches"] / max(1, r["journeys"]), r["bytes_per_journey"],
             r["held_per_journey"], r["changelog_per_event"], r["records_per_event"])
            for label, r in results.items()]
    before = [(label, f"{b:,} → {results[label]['bytes_per_journey']:,.0f}",
               f"{c:,} → {results[label]['changelog_per_event']:,.0f}",
               f"{r:,} → {results[label]['cpu_rate']:,.0f}")
              for label, (b, c, r) in BEFORE.items() if label in results]
    b2c = max(results["B2C"]["bytes_per_journey"],
              results["B2C touch-heavy"]["bytes_per_journey"])
    body = "\n".join([
        machine_line(machine(), scale.name) + " The stream's runners, stages and state tables "
        "(memory stores) in one process, lists for topics, envelopes of up to 1,000 events; "
        "no broker. Memory: what tracemalloc still sees allocated after the run (device, "
        "journey and identity stores with their idleness index; the bounded lookup caches of "
        "URLs, hosts and partitions, at most a few MB, are emptied first); *bytes per "
        "journey* is its growth from half the traffic to all of it per journey added (the "
        "state a journey costs), *held per journey* all of it over the journeys.", "",
        table(("traffic", "events", "stage events/s", "events per CPU-second", "journeys",
               "devices", "touches/journey", "bytes per journey", "held per journey",
               "changelog bytes per event", "changelog records per event"), rows), "",
        "Before → after (the per-object pipeline, this benchmark's 2026-11-23 run):", "",
        table(("traffic", "bytes per journey", "changelog bytes per event",
               "events per CPU-second"), before), "",
        f"Memory per active B2C journey target < {TARGET_BYTES} bytes: "
        f"**{'met' if b2c < TARGET_BYTES else 'NOT met'}** ({b2c:,.0f} bytes, the larger of "
        "the two B2C mixes, device state included).",
    ])
    write("state", "Stream state and in-process stages (`python -m bench state`)", body)
    say(body)
