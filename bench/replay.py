"""Batch replay throughput and peak RSS, next to a raw read + JSON-decode of the same file.

    .venv/bin/python -m bench replay --scale small|medium|large

Generates traffic once per scale (cached under $BENCH_WORK), then runs, in a fresh child
process so its peak RSS is its own: the raw reference (read every line, orjson-decode it),
then the replay phases (read + parse + resolve + credit, then land to Parquet).
Target (issue 7): at least 200,000 events/s end to end over 10 million events.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson

from bench.common import SCALES, WORK, Scale, machine, machine_line, peak_rss_mb, say, table
from bench.common import write_section as write
from traffic.generate import TrafficSpec, write_jsonl

TARGET = 200_000


def events_file(visitors: int, accounts: int) -> Path:
    path = WORK / f"events-{visitors}-{accounts}.jsonl"
    if not path.exists():
        WORK.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        began = time.perf_counter()
        count = write_jsonl(TrafficSpec(b2c_visitors=visitors, b2b_accounts=accounts), partial)
        partial.replace(path)
        say(f"generated {count:,} events in {time.perf_counter() - began:.1f}s -> {path}")
    return path


def child(path: Path, warehouse: Path) -> dict[str, Any]:
    """Runs in the child process: the measured work."""
    from attribution.batch import attribute_events
    from attribution.defaults import channel_rules, load_config
    from warehouse.inputs import fingerprint, read_events
    from warehouse.landing import ensure_layout
    from warehouse.replay import land_result
    from warehouse.views import create_views

    began = time.perf_counter()
    raw_count = 0
    for _, line in read_events([path]):
        orjson.loads(line)
        raw_count += 1
    raw_seconds = time.perf_counter() - began

    config = load_config(None)
    began, cpu = time.perf_counter(), time.process_time()
    result = attribute_events(read_events([path]), config, channel_rules(config))
    core_seconds = time.perf_counter() - began
    began = time.perf_counter()
    ensure_layout(warehouse)
    files = land_result(warehouse, result, fingerprint([path]))
    create_views(warehouse)
    land_seconds = time.perf_counter() - began
    cpu = time.process_time() - cpu
    return {"events": result.events_read, "raw_seconds": raw_seconds, "raw_events": raw_count,
            "core_seconds": core_seconds, "land_seconds": land_seconds, "files": files,
            "cpu_seconds": cpu,
            "credits": len(result.credits), "touches": len(result.touches),
            "conversions": len(result.conversions), "peak_rss_mb": peak_rss_mb()}


def run(scale: Scale) -> dict[str, Any]:
    path = events_file(scale.replay_visitors, scale.replay_accounts)
    warehouse = WORK / f"replay-warehouse-{scale.name}"
    shutil.rmtree(warehouse, ignore_errors=True)
    completed = subprocess.run(
        [sys.executable, "-m", "bench.replay", "--child", str(path), str(warehouse)],
        capture_output=True, text=True, timeout=scale.timeout * 4, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"replay child failed:\n{completed.stderr[-4000:]}")
    numbers: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    shutil.rmtree(warehouse, ignore_errors=True)
    events = numbers["events"]
    total = numbers["core_seconds"] + numbers["land_seconds"]
    numbers["raw_rate"] = numbers["raw_events"] / numbers["raw_seconds"]
    numbers["core_rate"] = events / numbers["core_seconds"]
    numbers["rate"] = events / total
    numbers["ratio"] = numbers["rate"] / numbers["raw_rate"]
    report(scale, numbers)
    return numbers


def report(scale: Scale, n: dict[str, Any]) -> None:
    rows = [
        ("raw reference: read lines + orjson.loads", n["raw_events"], n["raw_seconds"],
         n["raw_rate"], "1.00"),
        ("replay core: parse, normalise, sessions, identity, credit", n["events"],
         n["core_seconds"], n["core_rate"], f"{n['core_rate'] / n['raw_rate']:.3f}"),
        ("replay land: Parquet + views", n["events"], n["land_seconds"],
         n["events"] / n["land_seconds"], "-"),
        ("**replay end to end**", n["events"], n["core_seconds"] + n["land_seconds"], n["rate"],
         f"{n['ratio']:.3f}"),
    ]
    met = "met" if n["rate"] >= TARGET else "NOT met"
    body = "\n".join([
                machine_line(machine(), scale.name), "",
        table(("phase", "events", "seconds", "events/s", "ratio to raw"), rows), "",
        f"Replay CPU time (user+sys of the process, core + land): {n['cpu_seconds']:.1f} s, "
        f"{n['events'] / n['cpu_seconds']:,.0f} events per CPU-second.",
        f"Peak RSS of the replay process: **{n['peak_rss_mb']:,.0f} MB** "
        f"({n['touches']:,} touches, {n['conversions']:,} conversions, {n['credits']:,} credits, "
        f"{n['files']} files).",
        f"Target ≥ {TARGET:,} events/s end to end (over 10M events at scale `large`): **{met}**.",
    ])
    write("replay", "Batch replay (`python -m bench replay`)", body)
    say(body)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        print(json.dumps(child(Path(sys.argv[2]), Path(sys.argv[3]))), flush=True)
    else:
        run(SCALES[sys.argv[1] if len(sys.argv) > 1 else "small"])
