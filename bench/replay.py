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


def events_file(visitors: int, accounts: int, touch_heavy: bool = False) -> Path:
    mix = "-th" if touch_heavy else ""
    path = WORK / f"events-{visitors}-{accounts}{mix}.jsonl"
    if not path.exists():
        WORK.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        began = time.perf_counter()
        count = write_jsonl(TrafficSpec(b2c_visitors=visitors, b2b_accounts=accounts,
                                        touch_heavy=touch_heavy), partial)
        partial.replace(path)
        say(f"generated {count:,} events in {time.perf_counter() - began:.1f}s -> {path}")
    return path


def child(path: Path, warehouse: Path) -> dict[str, Any]:
    """Runs in the child process: the raw reference, then `attribution replay`'s work."""
    import resource

    from streams.gc_tuning import tune_gc
    from warehouse.inputs import read_events
    from warehouse.replay import replay

    began = time.perf_counter()
    raw_count = 0
    for _, line in read_events([path]):
        orjson.loads(line)
        raw_count += 1
    raw_seconds = time.perf_counter() - began

    tune_gc()  # as the command does
    began = time.perf_counter()
    summary, _ = replay([path], warehouse)
    seconds = time.perf_counter() - began
    own = resource.getrusage(resource.RUSAGE_SELF)
    workers = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"events": summary.events_read, "raw_seconds": raw_seconds, "raw_events": raw_count,
            "seconds": seconds, "files": summary.files,
            "cpu_seconds": own.ru_utime + own.ru_stime + workers.ru_utime + workers.ru_stime,
            "credits": summary.credits, "touches": summary.touches,
            "conversions": summary.conversions, "peak_rss_mb": peak_rss_mb(),
            "worker_peak_rss_mb": workers.ru_maxrss / 1024}


MIXES = {"generator's mix": False, "touch-heavy": True}


def run(scale: Scale) -> dict[str, Any]:
    results = {}
    for mix, touch_heavy in MIXES.items():
        path = events_file(scale.replay_visitors, scale.replay_accounts, touch_heavy)
        warehouse = WORK / f"replay-warehouse-{scale.name}"
        shutil.rmtree(warehouse, ignore_errors=True)
        completed = subprocess.run(
            [sys.executable, "-m", "bench.replay", "--child", str(path), str(warehouse)],
            capture_output=True, text=True, timeout=scale.timeout * 8, check=False)
        if completed.returncode != 0:
            raise RuntimeError(f"replay child failed:\n{completed.stderr[-4000:]}")
        numbers: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
        shutil.rmtree(warehouse, ignore_errors=True)
        numbers["raw_rate"] = numbers["raw_events"] / numbers["raw_seconds"]
        numbers["rate"] = numbers["events"] / numbers["seconds"]
        numbers["ratio"] = numbers["rate"] / numbers["raw_rate"]
        results[mix] = numbers
        say(f"{mix}: {numbers['rate']:,.0f} events/s, peak RSS {numbers['peak_rss_mb']:,.0f} MB")
    report(scale, results)
    return results


def report(scale: Scale, results: dict[str, dict[str, Any]]) -> None:
    rows = []
    for mix, n in results.items():
        rows.append((mix, "raw reference: read lines + orjson.loads (one process)",
                     n["raw_events"], f"{n['raw_seconds']:.1f}", n["raw_rate"], "1.00", "-"))
        rows.append((mix, "**`attribution replay` end to end** (read, validate, sessions, "
                     "identities, credits, Parquet, views)", n["events"], f"{n['seconds']:.1f}",
                     n["rate"], f"{n['ratio']:.3f}",
                     f"{n['peak_rss_mb']:,.0f} / {n['worker_peak_rss_mb']:,.0f}"))
    worst = min(n["rate"] for n in results.values())
    rss = max(max(n["peak_rss_mb"], n["worker_peak_rss_mb"]) for n in results.values())
    slowest = min(results, key=lambda mix: results[mix]["rate"])
    met = "met" if worst >= TARGET else "NOT met"
    details = "; ".join(
        f"{mix}: {n['touches']:,} touches, {n['conversions']:,} conversions, "
        f"{n['credits']:,} credits, {n['files']} files, {n['cpu_seconds']:.0f} CPU s "
        f"({n['events'] / n['cpu_seconds']:,.0f} events per CPU-second)"
        for mix, n in results.items())
    body = "\n".join([
        machine_line(machine(), scale.name) + " `attribution replay` with its defaults (one "
        "worker process per core, 50,000-event chunks, device and journey buckets spilled as "
        "Arrow IPC, one per 128 MB of input), "
        "in a fresh child process; the raw reference reads the same file in that process "
        "first.", "",
        table(("traffic", "phase", "events", "seconds", "events/s", "ratio to raw",
               "peak RSS MB (main / largest worker)"), rows), "",
        details + ".", "",
        f"Target ≥ {TARGET:,} events/s end to end on 10M events (scale `large`) with peak RSS "
        f"< 2 GB: throughput **{met}** (lowest {worst:,.0f} events/s, {slowest}), memory "
        f"**{'met' if rss < 2048 else 'NOT met'}** (largest process {rss:,.0f} MB).",
    ])
    write("replay", "Batch replay (`python -m bench replay`)", body)
    say(body)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        print(json.dumps(child(Path(sys.argv[2]), Path(sys.argv[3]))), flush=True)
    else:
        run(SCALES[sys.argv[1] if len(sys.argv) > 1 else "small"])
