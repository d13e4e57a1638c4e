"""Hunt for the silent restart stall by hand (not collected by pytest): a bounded loop of
"kill the lone worker mid-stream, start a new one in the same group" under CPU load.

    .venv/bin/python -m tests.streams.restart_loop --runs 10 --load 2

Each run: worker A lands half the traffic; the other half is sent; A is SIGKILLed or
SIGTERMed (alternately) after a random 0-2 s; worker B starts at once, alone in the
group. --mode idle-gap instead stops A (SIGTERM), sends the other half while no worker
runs, then starts B (the sequence of test_status, where the full suite once stalled).
The watchdog runs with stall_seconds = --stall-after: a run stalls when it fires (its log
line names the stalled partitions and those Faust holds paused); B then gets SIGUSR1
(mode dumps every task's stack into the log) within the watchdog's grace, and the log
tail is kept under --out. Every run is bounded (--bound) and so is the load
(--load busy-loop processes, stopped at the end). Prints one line per run and a summary.
"""

from __future__ import annotations

import argparse
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from streams.broker import EmbeddedBroker
from streams.worker import pipeline_lag
from tests.streams.pipeline import Pipeline
from tests.streams.test_pipeline import batch_credits, traffic


def one_run(broker: EmbeddedBroker, index: int, args: argparse.Namespace,
            out: Path) -> str:
    name = f"loop{index}-{random.randrange(1 << 30):x}"
    pipeline = Pipeline(broker.bootstrap, name, out / name,
                        stream_overrides={"stall_seconds": args.stall_after})
    kind = "SIGKILL" if index % 2 == 0 else "SIGTERM"
    delay = random.uniform(0, 2)
    events = traffic(seed=100 + index)
    half = len(events) // 2
    try:
        pipeline.workers.start(1)
        pipeline.send(events[:half])
        pipeline.wait(timeout=args.bound)
        if args.mode == "idle-gap":  # as test_status: stop, traffic while none runs, start
            kind = "SIGTERM"
            pipeline.workers.stop()
            pipeline.send(events[half:])
        else:
            pipeline.send(events[half:])
            time.sleep(delay)
            victim = pipeline.workers.processes.pop(0)
            victim.send_signal(signal.SIGKILL if kind == "SIGKILL" else signal.SIGTERM)
            victim.wait(timeout=60)
        for stale in (pipeline.warehouse / "_ops").glob("*.json"):
            stale.unlink()  # a SIGKILLed worker leaves its announcement behind
        restarted = time.monotonic()
        pipeline.workers.start(1)
        lag = -1
        while time.monotonic() - restarted < args.bound:
            lag = pipeline_lag(broker.bootstrap, pipeline.settings)
            if lag == 0:
                pipeline.wait(timeout=args.bound)  # quiet twice: nothing about to be emitted
                same = pipeline.credits() == batch_credits(events)
                return (f"{kind} after {delay:.1f}s: caught up in "
                        f"{time.monotonic() - restarted:.1f}s, equals replay: {same}")
            fired = [line for line in pipeline.log_text().splitlines()
                     if "worker stalled:" in line]
            if fired:
                pipeline.workers.processes[0].send_signal(signal.SIGUSR1)  # stack dump
                time.sleep(2)
                kept = out / f"{name}-stall.log"
                kept.write_text(pipeline.log_text()[-300_000:])
                return f"{kind} after {delay:.1f}s: STALL {fired[-1][-400:]}; log: {kept}"
            time.sleep(0.5)
        return f"{kind} after {delay:.1f}s: not caught up within {args.bound:.0f}s (lag {lag})"
    finally:
        pipeline.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--load", type=int, default=2, help="busy-loop processes (<= 4)")
    parser.add_argument("--bound", type=float, default=120.0, help="seconds per run, at most")
    parser.add_argument("--stall-after", type=float, default=30.0)
    parser.add_argument("--mode", choices=["mid-stream", "idle-gap"], default="mid-stream",
                        help="mid-stream: kill while traffic is in flight; idle-gap: stop, "
                        "send while no worker runs, then start one")
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "restart-loop")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    load = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
            for _ in range(min(args.load, 4))]
    outcomes = []
    try:
        with EmbeddedBroker() as broker:
            for index in range(args.runs):
                outcome = one_run(broker, index, args, args.out)
                outcomes.append(outcome)
                print(f"run {index + 1}/{args.runs}: {outcome}", flush=True)
    finally:
        for process in load:
            process.kill()
            process.wait()
    stalls = sum("STALL" in o or "not caught up" in o for o in outcomes)
    print(f"{len(outcomes)} runs, {stalls} stalled, load {len(load)} busy processes")


if __name__ == "__main__":
    main()
