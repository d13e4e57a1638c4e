"""The sink's landing process: lands what the in-process sink lands, reports malformed
messages with their reasons, survives its child being killed, and dies with its parent."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from streams.sink_process import LandingProcess
from tests.test_spend import HEADER
from warehouse.layout import landed, partition_of
from warehouse.spend import landing_messages, parse_spend_csv

STAMP = datetime(2024, 4, 1, tzinfo=UTC)


def spend_messages(days: int) -> list[bytes]:
    parsed = parse_spend_csv(HEADER + "".join(
        f"2024-03-{d:02d},Paid Social,c1,{d},USD,100,3\n" for d in range(1, days + 1)))
    return [value for _partition, value in
            landing_messages(parsed, partitions=1, max_rows=1000, landed_at=STAMP)]


def child_pids(process: LandingProcess) -> list[int]:
    pool = process._pool  # the one place a test needs the child's pid
    assert pool is not None
    return list(pool._processes)


@pytest.fixture
def landing(tmp_path: Path) -> Iterator[LandingProcess]:
    process = LandingProcess(tmp_path)
    yield process
    process.close()


async def test_lands_every_day_and_reports_malformed_messages(
        landing: LandingProcess, tmp_path: Path) -> None:
    rows, dropped = await landing.land([*spend_messages(12), b"\x00not json"])
    assert rows == {"spend": 12}
    assert len(dropped) == 1 and "json" in dropped[0].lower()
    assert len(landed(tmp_path, "spend")) == 12  # a file per day: synced once, not 24 times


async def test_a_killed_child_fails_one_flush_and_the_retry_lands(
        landing: LandingProcess, tmp_path: Path) -> None:
    await landing.land(spend_messages(1))
    [pid] = child_pids(landing)
    os.kill(pid, signal.SIGKILL)
    await asyncio.sleep(0.2)
    with pytest.raises(OSError, match="landing process died"):
        await landing.land(spend_messages(3))
    assert await landing.land(spend_messages(3)) == ({"spend": 3}, [])
    assert child_pids(landing) != [pid]
    days = {partition_of(info.key) for info in landed(tmp_path, "spend")}
    assert days == {date(2024, 3, d) for d in (1, 2, 3)}


PARENT = """
import sys, time
from pathlib import Path
from streams.sink_process import LandingProcess
process = LandingProcess(Path(sys.argv[1]))
process.start()
time.sleep(1)
print(*process._pool._processes, flush=True)
time.sleep(60)
"""


def test_the_child_dies_with_the_worker(tmp_path: Path) -> None:
    parent = subprocess.Popen([sys.executable, "-c", PARENT, str(tmp_path)],
                              stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    os.kill(child, 0)  # alive
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    pytest.fail(f"landing process {child} outlived its parent")
