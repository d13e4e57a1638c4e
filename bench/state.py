"""Stream state size and the pure stages' rate, in process (no broker).

    .venv/bin/python -m bench state --scale small|medium|large

Drives the same stage functions the Faust agents call (`streams.stages`), with dicts as
tables (what Faust's memory store keeps) and each written state encoded as for the
changelog, over B2C-only and B2B-only traffic. Memory per active journey = RSS growth /
journeys held (device states included, as they share the worker), measured with tracemalloc
in a second pass. Target: < 2 KB (B2C).
"""

from __future__ import annotations

import gc
import time
import tracemalloc
from collections import deque
from typing import Any

from attribution.defaults import channel_rules, load_config
from attribution.device import DeviceState
from attribution.identity import IdentityGraph
from attribution.journey import JourneyState
from bench.common import Scale, machine, machine_line, rss_mb, say, table
from bench.common import write_section as write
from streams import codec
from streams.routing import group_by_partition
from streams.stages import device_key, devices_message, identity_message, journeys_message
from traffic.generate import TrafficSpec, generate_events

TARGET_BYTES = 2048
PARTITIONS = 4


def drive(events: list[dict[str, Any]], traced: bool = False) -> dict[str, Any]:
    """One pass; with `traced`, memory is what tracemalloc sees still allocated after it
    (the tables), which RSS cannot resolve at small counts; the rate is then meaningless."""
    config = load_config(None)
    rules = channel_rules(config)
    devices: dict[str, DeviceState] = {}
    journeys: dict[str, JourneyState] = {}
    graph = IdentityGraph()
    pending: deque[tuple[str, Any]] = deque()  # ("events"|"updates"|"deltas"|"links", items)
    changelog = 0  # bytes the table writes would send to the changelog topics
    gc.collect()
    before = rss_mb()
    if traced:
        tracemalloc.start()
    began, cpu = time.perf_counter(), time.process_time()
    for start in range(0, len(events), 5000):
        keyed = [(device_key(e) or "", e) for e in events[start:start + 5000]]
        for _, chunk in group_by_partition(keyed, PARTITIONS, 1000):
            pending.append(("events", chunk))
        while pending:
            kind, items = pending.popleft()
            if kind == "links":
                out = identity_message(graph, items)
                if out.updates:
                    pending.append(("updates", [u for _, u in out.updates]))
                continue
            if kind == "deltas":
                out = journeys_message(journeys.get, items, config)
                for key, journey in out.states.items():
                    journeys[key] = journey
                    changelog += len(codec.dumps(codec.journey_to(journey)))  # changelog write
                continue
            out = devices_message(devices.get, {kind: items}, "bench", config, rules)
            for key, device in out.states.items():
                devices[key] = device
                changelog += len(codec.dumps(codec.device_to(device)))
            if out.links:
                pending.append(("links", out.links))
            if out.deltas:
                pending.append(("deltas", [{"key": k, **d} for k, d in out.deltas]))
    seconds, cpu = time.perf_counter() - began, time.process_time() - cpu
    gc.collect()
    growth = (rss_mb() - before) * 1024 * 1024
    if traced:
        growth = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
    return {"events": len(events), "seconds": seconds, "rate": len(events) / seconds,
            "cpu_rate": len(events) / cpu,
            "journeys": len(journeys), "devices": len(devices),
            "touches": sum(len(j.touches) for j in journeys.values()),
            "bytes_per_journey": growth / max(1, len(journeys)),
            "changelog_per_event": changelog / max(1, len(events))}


def run(scale: Scale) -> dict[str, dict[str, Any]]:
    results = {}
    for label, spec in (("B2C", TrafficSpec(b2c_visitors=scale.state_visitors, b2b_accounts=0)),
                        ("B2B", TrafficSpec(b2c_visitors=0,
                                            b2b_accounts=max(10, scale.state_visitors // 100)))):
        events = list(generate_events(spec))
        results[label] = drive(events)
        results[label]["bytes_per_journey"] = drive(events, traced=True)["bytes_per_journey"]
        del events
    report(scale, results)
    return results


def report(scale: Scale, results: dict[str, dict[str, Any]]) -> None:
    rows = [(label, r["events"], r["rate"], r["cpu_rate"], r["journeys"], r["devices"],
             r["touches"] / max(1, r["journeys"]), r["bytes_per_journey"],
             r["changelog_per_event"])
            for label, r in results.items()]
    b2c = results["B2C"]["bytes_per_journey"]
    body = "\n".join([
                machine_line(machine(), scale.name) + " Stage functions over dict tables, each "
        "written state encoded for the changelog; no broker. Bytes per journey: memory still "
        "allocated after the run (tracemalloc: tables, identity graph) / journeys.", "",
        table(("traffic", "events", "stage events/s", "events per CPU-second", "journeys",
               "devices", "touches/journey", "bytes per journey", "changelog bytes per event"),
              rows), "",
        f"Memory per active B2C journey target < {TARGET_BYTES} bytes: "
        f"**{'met' if b2c < TARGET_BYTES else 'NOT met'}** ({b2c:,.0f} bytes, device state "
        "included).",
    ])
    write("state", "Stream state and in-process stages (`python -m bench state`)", body)
    say(body)
