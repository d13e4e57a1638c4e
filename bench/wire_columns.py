"""Wire validation throughput: `validate_batch` on 1,000-event batches vs `parse_event`.

    .venv/bin/python -m bench.wire_columns [--events N] [--repeat R] [--no-write]

Generated traffic (the default mix, the touch-heavy mix and the default mix with 2%
invalid lines) is held as one JSON envelope per batch, as on the events topic. Each batch
is decoded with orjson right before it is validated, as the stream does (so the events are
as warm in cache as they will be there); only the validation is timed. Each method runs
R times over the same batches and the best run counts (the cores are shared).
Measured twice: with Python's GC as it is, and with `gc.freeze()` (everything alive
before the run leaves the collector's generations) plus a raised gen-0 threshold, as a
worker could set at start. Then the time per stage of `validate_batch`
(same steps as `schemas.wire_columns._batch`). Target: >= 200,000 events/s (<= 5 us/event).
"""

from __future__ import annotations

import argparse
import gc
import itertools
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from typing import Any

import orjson

from bench.common import load_line, machine, machine_line, say, table
from bench.common import write_section as write
from schemas import wire_columns as wc
from schemas.wire import EventRejected, parse_event
from traffic.generate import TrafficSpec, generate_events

TARGET = 200_000
BATCH = 1_000
NOW = datetime(2026, 11, 1, tzinfo=UTC)  # after every generated event
NOW_US = (NOW - datetime(1970, 1, 1, tzinfo=UTC)) // wc._MICROSECOND
MIXES = {
    "default": TrafficSpec(b2c_visitors=6000, b2b_accounts=60),
    "touch-heavy": TrafficSpec(b2c_visitors=6000, b2b_accounts=20, touch_heavy=True),
    "default, 2% invalid": TrafficSpec(b2c_visitors=6000, b2b_accounts=60, invalid_rate=0.02),
}


def envelopes_of(spec: TrafficSpec, count: int) -> list[bytes]:
    """`count` events as JSON arrays of BATCH events."""
    events = list(itertools.islice(generate_events(spec), count))
    return [orjson.dumps(events[i:i + BATCH]) for i in range(0, len(events), BATCH)]


@contextmanager
def gc_mode(frozen: bool) -> Iterator[None]:
    threshold = gc.get_threshold()
    if frozen:
        gc.collect()
        gc.freeze()
        gc.set_threshold(50_000, 20, 20)
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()
        gc.collect()


def best(validate: Callable[[list[Any]], object], envelopes: list[bytes],
         repeat: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of the fastest of `repeat` runs over all envelopes,
    decoding not counted."""
    results = []
    for _ in range(repeat):
        wall = cpu = 0.0
        for envelope in envelopes:
            raws = orjson.loads(envelope)
            wall_start, cpu_start = time.perf_counter(), time.process_time()
            validate(raws)
            wall += time.perf_counter() - wall_start
            cpu += time.process_time() - cpu_start
        results.append((wall, cpu))
    return min(results)


def per_event(raws: list[Any]) -> None:
    for raw in raws:
        with suppress(EventRejected):
            parse_event(raw, NOW)


def batched(raws: list[Any]) -> None:
    wc.validate_batch(raws, NOW_US)


STEPS = ("pull fields (Python)", "payload bounds (Python)",
         "strings, type, shape (Python, polars)", "times (numpy)", "output frame, slow path")


def stages(envelopes: list[bytes], repeat: int) -> dict[str, float]:
    """Microseconds of CPU per event of each step of validate_batch (best of `repeat`):
    the steps of schemas.wire_columns._batch, called one by one."""
    spent: dict[str, list[float]] = {name: [] for name in STEPS}
    for _ in range(repeat):
        totals = [0.0] * len(STEPS)
        events = 0
        for envelope in envelopes:
            raws = orjson.loads(envelope)
            events += len(raws)
            clocks = [time.process_time()]
            columns, fast, objects = wc._pull(raws)
            clocks.append(time.process_time())
            wc._check_payloads(objects, fast)
            clocks.append(time.process_time())
            series, ok = wc._check_strings(columns, fast)
            clocks.append(time.process_time())
            when = wc._check_times(columns, ok, NOW_US)
            clocks.append(time.process_time())
            wc._decided(raws, series, when, ok, NOW)
            clocks.append(time.process_time())
            for step in range(len(STEPS)):
                totals[step] += clocks[step + 1] - clocks[step]
        for name, seconds in zip(STEPS, totals, strict=True):
            spent[name].append(seconds / events * 1e6)
    return {name: min(values) for name, values in spent.items()}


def measure(count: int, repeat: int) -> tuple[list[tuple[Any, ...]], dict[str, float]]:
    rows: list[tuple[Any, ...]] = []
    breakdown: dict[str, float] = {}
    for name, spec in MIXES.items():
        envelopes = envelopes_of(spec, count)
        events = sum(len(orjson.loads(e)) for e in envelopes)
        for frozen in (False, True):
            with gc_mode(frozen):
                single = best(per_event, envelopes, repeat)
                batch = best(batched, envelopes, repeat)
                if frozen and name == "default":
                    breakdown = stages(envelopes, repeat)
            mode = "freeze + gen-0 threshold 50,000" if frozen else "as is"
            rows.append((name, mode, events, events / single[0], events / single[1],
                         events / batch[0], events / batch[1], batch[1] / events * 1e6,
                         single[1] / batch[1]))
            say(f"{name:>20} gc {mode:<32} parse_event {rows[-1][4]:>9,.0f}/CPU-s  "
                f"validate_batch {rows[-1][6]:>9,.0f}/CPU-s  ({rows[-1][7]:.2f} us/event)")
    return rows, breakdown


def report(rows: list[tuple[Any, ...]], breakdown: dict[str, float], repeat: int) -> str:
    generated = [row for row in rows if row[0] != "default, 2% invalid"]
    meeting = sum(row[6] >= TARGET for row in generated)
    verdict = ("met" if meeting == len(generated) else
               f"met in {meeting} of {len(generated)} runs" if meeting else "NOT met")
    return "\n".join([
        machine_line(machine(), "-") + " " + load_line(),
        f"Decoded events (orjson) in batches of {BATCH:,}; decoding not timed; best of "
        f"{repeat} runs. Rates per wall second and per CPU-second of the process (other "
        "work shares the 2 cores, so CPU-seconds compare better).", "",
        table(("mix", "GC", "events", "parse_event /s", "parse_event /CPU-s",
               "validate_batch /s", "validate_batch /CPU-s", "µs/event (CPU)", "speed-up"),
              rows), "",
        "Where validate_batch's time goes (default mix, GC frozen, µs of CPU per event):", "",
        table(("step", "µs/event"), [(k, round(v, 2)) for k, v in breakdown.items()]
              + [("**total**", round(sum(breakdown.values()), 2))]), "",
        f"Target ≥ {TARGET:,} events per CPU-second (≤ 5 µs/event) on the generated mixes: "
        f"**{verdict}**.",
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    rows, breakdown = measure(args.events, args.repeat)
    body = report(rows, breakdown, args.repeat)
    say(body)
    if not args.no_write:
        write("wire_columns", "Wire validation in columns (`python -m bench.wire_columns`)",
              body)


if __name__ == "__main__":
    main()
