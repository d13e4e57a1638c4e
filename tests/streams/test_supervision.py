"""`attribution run` supervises its workers: one that exits is restarted with backoff, and
supervision gives up (run stops with an error) on a worker that cannot start."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from streams.broker import EmbeddedBroker
from streams.runner import QUICK_EXITS_TO_GIVE_UP, Workers
from tests.streams.test_collector_e2e import assert_credited_journey, landed
from tests.streams.test_collector_run import (
    LANDING_TIMEOUT,
    STOP_TIMEOUT,
    alive,
    announced,
    descendants,
    post_batch,
    run_process,
)

__all__ = ["run_process"]  # the fixture, shared with test_collector_run
BOUND_S = 120.0  # a guard against hangs on a loaded machine


def worker_pids(run_pid: int) -> set[int]:
    found = set()
    for pid in descendants(run_pid):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"worker" in command and alive(pid):
            found.add(pid)
    return found


def test_run_restarts_a_worker_that_dies_and_goes_on_crediting(
    run_process: tuple[subprocess.Popen[str], queue.Queue[str], Path],
) -> None:
    process, lines, root = run_process
    log = root / "run.stderr"
    ready = announced(lines, process, log)
    warehouse = Path(ready["warehouse"])
    deadline = time.monotonic() + BOUND_S
    while not (first := worker_pids(process.pid)) and time.monotonic() < deadline:
        time.sleep(0.2)
    (victim,) = first
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + BOUND_S
    while not (now := worker_pids(process.pid) - {victim}) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(now) == 1, (warehouse / "workers.log").read_text()[-3000:]
    supervisor = (warehouse / "workers.log").read_text()
    assert f"worker pid {victim} exited with status -9" in supervisor
    assert process.poll() is None  # run itself carries on

    stamp = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    batch = [
        {"type": "page", "anonymousId": "sv-visitor", "timestamp": stamp,
         "context": {"page": {"url": "https://shop.example/?utm_source=google&utm_medium=cpc"
                              "&utm_campaign=brand"}}},
        {"type": "track", "anonymousId": "sv-visitor", "event": "Order Completed",
         "timestamp": stamp,
         "properties": {"order_id": "sv-o-1", "revenue": 20, "currency": "EUR"}},
    ]
    assert post_batch(ready["url"], ready["key"], batch)["accepted"] == 2
    deadline = time.monotonic() + LANDING_TIMEOUT
    while True:
        try:
            assert_credited_journey(landed(warehouse, "sv-visitor", "sv-o-1"),
                                    channel="Paid Search", campaign="brand",
                                    order_id="sv-o-1", value=20.0, currency="EUR",
                                    person="sv-visitor")
            break
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=STOP_TIMEOUT) == 0, log.read_text()


def test_supervision_gives_up_on_a_worker_that_cannot_start(
        broker: EmbeddedBroker, tmp_path: Path) -> None:
    config = tmp_path / "broken.toml"
    config.write_text("[stream]\npartitions = 0\n")  # refused by validation: exits at once
    with (tmp_path / "workers.log").open("ab") as log:
        workers = Workers(broker.bootstrap, tmp_path / "warehouse", config, log=log,
                          backoff_first_s=0.05)
        workers.start(1)
        workers.supervise(poll=0.1)
        try:
            deadline = time.monotonic() + BOUND_S
            while workers.alive() and time.monotonic() < deadline:
                time.sleep(0.2)
            assert not workers.alive()
        finally:
            workers.stop()
    text = (tmp_path / "workers.log").read_text()
    assert workers.restarts == QUICK_EXITS_TO_GIVE_UP - 1
    assert text.count("exited with status 1") == QUICK_EXITS_TO_GIVE_UP
    assert workers.failure is not None and "5 times in a row" in workers.failure
    # The backoff doubled between attempts.
    delays = [line.split("restarting it in ")[1] for line in text.splitlines()
              if "restarting it in" in line]
    assert delays == ["0.1 s", "0.1 s", "0.2 s", "0.4 s"]
