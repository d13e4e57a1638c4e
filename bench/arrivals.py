"""Channel classification throughput: ``classify_arrivals`` against per-row ``classify``.

    .venv/bin/python -m bench.arrivals [--visitors N] [--repeat R] [--write]

Classifies the page views of touch-heavy generated traffic (every B2C page a campaign
landing with its own click id) in batches of 1,000 rows (a stream envelope) and of
100,000 rows (replay), and the same rows one by one with ``classify`` +
``campaign_signature`` (what ``classify_arrivals`` returns) with a cold URL cache, as a
stream meets each click's URL once. Prints rows/s per wall-clock and per CPU second
(the CPU figure stays comparable when other work shares the cores); ``--write`` also
rewrites this benchmark's section of BENCHMARKS.md. Target: well over 500,000 rows/s at
1,000-row batches (the worker's budget is 50,000 events/s).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import polars as pl

from attribution.arrivals import SIGNAL_COLUMNS, classify_arrivals
from attribution.channels import TrafficSignals, _parse_url, campaign_signature, classify
from bench.common import WORK, load_line, machine, say, table, write_section

TARGET = 500_000


def page_signals(visitors: int) -> pl.DataFrame:
    """The traffic signals of every page view of touch-heavy traffic (cached on disk)."""
    path = WORK / f"arrival-signals-{visitors}.parquet"
    if path.exists():
        return pl.read_parquet(path)
    from attribution.normalize import signals_of
    from schemas.wire import parse_event
    from traffic.generate import TrafficSpec, generate_events

    rows = [signals_of(parse_event(raw)[0]) for raw in
            generate_events(TrafficSpec(touch_heavy=True, b2c_visitors=visitors))
            if raw.get("type") == "page"]
    frame = pl.DataFrame([[getattr(s, c) for c in SIGNAL_COLUMNS] for s in rows],
                         schema=dict.fromkeys(SIGNAL_COLUMNS, pl.String), orient="row")
    WORK.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    frame.write_parquet(partial)
    partial.replace(path)
    return frame


def timed(work: Callable[[], object], repeat: int) -> tuple[float, float, float]:
    """(first run, best run) wall seconds and the best run's CPU seconds."""
    first = best = best_cpu = float("inf")
    for i in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        work()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        if i == 0:
            first = wall
        if wall < best:
            best, best_cpu = wall, cpu
    return first, best, best_cpu


def vectorised(frame: pl.DataFrame, size: int) -> Callable[[], object]:
    batches = [frame.slice(start, size) for start in range(0, frame.height, size)]
    return lambda: [classify_arrivals(batch) for batch in batches]


def one_by_one(frame: pl.DataFrame) -> Callable[[], object]:
    signals = [TrafficSignals(*row) for row in frame.iter_rows()]

    def run() -> None:
        _parse_url.cache_clear()  # a stream sees each click's landing URL once
        for s in signals:
            classify(s)
            campaign_signature(s)
    return run


def main(visitors: int, repeat: int, write: bool) -> None:
    began = time.perf_counter()
    frame = page_signals(visitors)
    say(f"{frame.height:,} page views ({frame['page_url'].n_unique():,} distinct landing "
        f"URLs) in {time.perf_counter() - began:.1f}s")
    runs = [("per-row classify + campaign_signature (cold URL cache)", 1, one_by_one(frame)),
            ("classify_arrivals, 1,000-row batches", 1_000, vectorised(frame, 1_000)),
            ("classify_arrivals, 100,000-row batches", 100_000, vectorised(frame, 100_000))]
    rows = []
    for name, _, work in runs:
        first, best, cpu = timed(work, repeat)
        rows.append((name, frame.height / first, frame.height / best, frame.height / cpu))
        say(f"{name}: first {frame.height / first:,.0f}, best {frame.height / best:,.0f} rows/s "
            f"({frame.height / cpu:,.0f} per CPU-second)")
    envelope = rows[1][2]
    verdict = "met" if envelope >= TARGET else "NOT met"
    info = machine()
    body = "\n".join([
        f"Machine: {info['cores']} cores ({info['cpu']}), {info['memory_gb']} GB RAM, "
        f"Python {info['python']}, polars {pl.__version__}. Date: {info['date']}. "
        f"{load_line()}",
        f"{frame.height:,} page views of touch-heavy traffic ({visitors:,} B2C visitors; "
        f"{frame['page_url'].n_unique():,} distinct landing URLs); best of {repeat} runs, the "
        "first run (empty caches) beside it.", "",
        table(("classifier", "first run rows/s", "best rows/s", "rows per CPU-second"), rows),
        "",
        f"Target well over {TARGET:,} rows/s at 1,000-row batches: **{verdict}** "
        f"({envelope:,.0f}, {envelope / rows[0][2]:.1f}x per-row).",
    ])
    if write:
        write_section("arrivals", "Channel classification (`python -m bench.arrivals`)", body)
    say(body)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--visitors", type=int, default=20_000,
                        help="B2C visitors of generated traffic (about 6.5 page views each)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--write", action="store_true", help="rewrite BENCHMARKS.md's section")
    options = parser.parse_args()
    main(options.visitors, options.repeat, options.write)

