"""Run the benchmarks and record them in BENCHMARKS.md.

    .venv/bin/python -m bench [stream|state|replay|recovery|soak|datadriven|collector|
                               warehouse|all]
                              [--scale small|medium|large] [--minutes M]

`soak` runs `--minutes` (default 10) and joins `all` only when asked for at most
SOAK_IN_ALL_MINUTES, so `make bench` stays bounded.

Every benchmark is bounded in time and count and talks only to 127.0.0.1. `collector`
runs the teammate-owned `bench/collector.py`, which writes its own section.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Callable
from functools import partial
from typing import Any

from bench import recovery, replay, soak, state, stream
from bench import warehouse as warehouse_bench
from bench.common import SCALES, Scale, machine, machine_line, say
from bench.common import write_section as write

DATADRIVEN_JOURNEYS = {"small": 100_000, "medium": 1_000_000, "large": 1_000_000}


def datadriven(scale: Scale) -> None:
    journeys = DATADRIVEN_JOURNEYS[scale.name]
    completed = subprocess.run([sys.executable, "-m", "bench.datadriven", str(journeys), "15"],
                               capture_output=True, text=True, timeout=scale.timeout, check=True)
    say(completed.stdout)
    timings = [line for line in completed.stdout.splitlines()  # drop the printed credit table
               if line.strip() and not line.startswith(("shape", "┌", "│", "╞", "└", "├"))]
    body = "\n".join([
        machine_line(machine(), scale.name) + f" {journeys:,} synthetic journeys, 15 channels "
        "(`bench/datadriven.py`). Targets over 1M journeys: Markov order 1 < 5 s, order 3 "
        "< 30 s, Shapley over 15 channels < 10 s, each with the allocation of its credits to "
        "the converting touches (`allocate` lines).", "",
        "```", *timings, "```", "", _datadriven_verdict(timings, journeys),
    ])
    write("datadriven", "Data-driven models (`python -m bench datadriven`)", body)


DATADRIVEN_TARGETS = {"markov order 1": 5.0, "markov order 3": 30.0, "shapley": 10.0}


def _datadriven_verdict(timings: list[str], journeys: int) -> str:
    """Each target's time, including the shared path aggregation it needs first and the
    allocation of its credits to touches after."""
    seconds = {line.rsplit(maxsplit=2)[0].split("(")[0].strip(): float(line.split()[-2])
               for line in timings if line.rstrip().endswith(" s")}
    shared = seconds.get("aggregate by path", 0.0)
    parts = []
    for name, limit in DATADRIVEN_TARGETS.items():
        total = seconds.get(name, float("nan")) + shared + seconds.get(f"allocate {name}", 0.0)
        verdict = "met" if total < limit else "NOT met"
        parts.append(f"{name}: {total:.2f} s with aggregation and allocation (< {limit:.0f} s: "
                     f"**{verdict}**)")
    scope = "" if journeys >= 1_000_000 else f" (at {journeys:,} journeys, not the 1M target)"
    return "Targets" + scope + ": " + "; ".join(parts) + "."


def collector(scale: Scale) -> None:
    subprocess.run([sys.executable, "-m", "bench.collector"], timeout=scale.timeout * 2,
                   check=True)


RUNNERS = {"stream": stream.run, "state": state.run, "replay": replay.run,
           "recovery": recovery.run, "datadriven": datadriven, "collector": collector,
           "warehouse": warehouse_bench.run}
SOAK_IN_ALL_MINUTES = 2.0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("which", nargs="?", default="all", choices=[*RUNNERS, "soak", "all"])
    parser.add_argument("--scale", default="small", choices=list(SCALES))
    parser.add_argument("--minutes", type=float, default=None,
                        help=f"soak duration (default {soak.MINUTES:g})")
    args = parser.parse_args(argv)
    scale = SCALES[args.scale]
    soak_run = partial(soak.run, minutes=args.minutes or soak.MINUTES)
    runners: dict[str, Callable[[Scale], Any]] = {**RUNNERS, "soak": soak_run}
    say(machine_line(machine(), scale.name))
    if args.which != "all":
        names = [args.which]
    else:
        short_soak = args.minutes is not None and args.minutes <= SOAK_IN_ALL_MINUTES
        names = [*RUNNERS, *(["soak"] if short_soak else [])]
    for name in names:
        say(f"\n== {name} ==")
        runners[name](scale)


if __name__ == "__main__":
    main()
