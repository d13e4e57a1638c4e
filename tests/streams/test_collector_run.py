"""`attribution run` and `attribution collector` as a user runs them: real processes. `run`
brings its own embedded broker, worker processes and the collector; events posted over HTTP
end up credited in the warehouse, and SIGTERM stops everything cleanly."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import orjson
import pytest
from aiokafka import TopicPartition

from streams.broker import EmbeddedBroker, log_end_offsets
from streams.collector.secret import secret_path
from streams.routing import partition_for
from tests.streams.test_collector_e2e import assert_credited_journey, landed

STARTUP_TIMEOUT = 60.0  # bounds, not expectations: a loaded CI machine may be slow
LANDING_TIMEOUT = 90.0
STOP_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                stat = (entry / "stat").read_text()
                ppid = int(stat.rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    """Running (zombies, i.e. exited but not yet reaped, count as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def read_lines(stream: IO[str], into: queue.Queue[str]) -> None:
    for line in stream:
        into.put(line.rstrip("\n"))


@pytest.fixture
def run_process(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], queue.Queue[str], Path]]:
    warehouse = tmp_path / "warehouse"
    config = tmp_path / "run.toml"
    config.write_text('[stream]\nsession_timeout = "3s"\nsink_max_seconds = 0.2\n')
    env = {k: v for k, v in os.environ.items() if k != "KAFKA_BROKER"}
    stderr = (tmp_path / "run.stderr").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "run", "--warehouse", str(warehouse),
         "--config", str(config), "--port", str(free_port()), "--workers", "1"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr, text=True,
        env={**env, "PYTHONUNBUFFERED": "1"}, start_new_session=True,
    )
    assert process.stdout is not None
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=read_lines, args=(process.stdout, lines), daemon=True).start()
    try:
        yield process, lines, tmp_path
    finally:
        if process.poll() is None:  # the test failed early: leave nothing behind
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        stderr.close()


def announced(lines: queue.Queue[str], process: subprocess.Popen[str], log: Path
              ) -> dict[str, str]:
    """The URL, write key and warehouse `attribution run` prints when it is ready."""
    found: dict[str, str] = {}
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while len(found) < 3:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise AssertionError(f"run did not announce itself:\n{log.read_text()}") from None
        if line.startswith("collector listening on "):
            found["url"] = line.split()[-1]
        elif line.startswith("write key: "):
            found["key"] = line.split()[2]
        elif line.startswith("warehouse: "):
            found["warehouse"] = line.removeprefix("warehouse: ")
        assert process.poll() is None, log.read_text()
    return found


def post_batch(url: str, key: str, batch: list[dict[str, Any]]) -> dict[str, Any]:
    token = base64.b64encode(f"{key}:".encode()).decode()
    request = urllib.request.Request(
        f"{url}/v1/batch", data=orjson.dumps({"batch": batch}), method="POST",
        headers={"Authorization": f"Basic {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        answer: dict[str, Any] = orjson.loads(response.read())
        return answer


def test_attribution_run_collects_credits_and_stops_on_sigterm(
    run_process: tuple[subprocess.Popen[str], queue.Queue[str], Path],
) -> None:
    process, lines, root = run_process
    log = root / "run.stderr"
    ready = announced(lines, process, log)
    warehouse = Path(ready["warehouse"])
    assert warehouse == (root / "warehouse").resolve()
    # No secret configured, embedded broker: one generated and kept for the next run.
    assert secret_path(warehouse).is_file()

    now = datetime.now(UTC)

    def stamp(minutes_ago: int) -> str:
        return (now - timedelta(minutes=minutes_ago)).isoformat()

    batch = [
        {"type": "page", "anonymousId": "run-visitor", "timestamp": stamp(20),
         "context": {"page": {"url": "https://shop.example/?utm_source=google&utm_medium=cpc"
                              "&utm_campaign=brand&gclid=g-7"}}},
        {"type": "identify", "anonymousId": "run-visitor", "userId": "run-user",
         "timestamp": stamp(10), "traits": {"email": "run-user@example.com"}},
        {"type": "track", "userId": "run-user", "anonymousId": "run-visitor",
         "event": "Order Completed", "timestamp": stamp(5),
         "properties": {"order_id": "run-o-1", "revenue": 80, "currency": "EUR"}},
    ]
    assert post_batch(ready["url"], ready["key"], batch)["accepted"] == 3

    # Poll until the stream has settled: the order is first credited on the device, then
    # re-credited to the person when the identity answer comes back through Kafka.
    deadline = time.monotonic() + LANDING_TIMEOUT
    while True:
        try:
            assert_credited_journey(landed(warehouse, "run-visitor", "run-o-1"),
                                    channel="Paid Search", campaign="brand", order_id="run-o-1",
                                    value=80.0, currency="EUR", person="run-user")
            break
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)

    children = descendants(process.pid)
    assert len(children) >= 2  # the broker and the worker
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=STOP_TIMEOUT) == 0, log.read_text()
    assert [pid for pid in children if alive(pid)] == []
    assert "stopped" in log.read_text()


def test_attribution_collector_alone_creates_topics_and_routes(
    broker: EmbeddedBroker, unique_name: str, tmp_path: Path
) -> None:
    config = tmp_path / "collector.toml"
    config.write_text(f'[stream]\ntopic_prefix = "{unique_name}"\npartitions = 3\n'
                      '[collector]\nemail_secret = "alone-email-secret-0123"\n')
    process = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "collector", "--broker", broker.bootstrap,
         "--config", str(config), "--port", "0", "--write-key", "wk-alone"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"}, start_new_session=True,
    )
    assert process.stdout is not None
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=read_lines, args=(process.stdout, lines), daemon=True).start()
    try:
        url = key = ""
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not (url and key):
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            if line.startswith("collector listening on "):
                url = line.split()[-1]
            elif line.startswith("write key: "):
                key = line.split()[2]
        assert key == "wk-alone"
        visitors = [f"alone-{i}" for i in range(12)]
        answer = post_batch(url, key, [{"type": "page", "anonymousId": v} for v in visitors])
        assert answer["accepted"] == len(visitors)
        # The stream's topics exist with the configured partitions, and every event went to
        # its device key's partition: per-partition message counts match the routing.
        topic = f"{unique_name}.events"
        ends = asyncio.run(log_end_offsets(broker.bootstrap,
                                           [TopicPartition(topic, p) for p in range(3)]))
        expected = {partition_for(v, 3) for v in visitors}
        assert {tp.partition for tp, end in ends.items() if end > 0} == expected
        assert all(end in (0, 1) for end in ends.values())  # one envelope per partition
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=STOP_TIMEOUT) == 0
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
