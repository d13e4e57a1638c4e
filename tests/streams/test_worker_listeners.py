"""A running worker listens on its ops endpoint only: Faust's web server, which would
serve table contents (personal data) on port 6066, is off."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import orjson
import pytest

from streams.broker import EmbeddedBroker
from tests.streams.pipeline import Pipeline
from tests.test_batch import B2C_JOURNEY

FAUST_WEB_PORT = 6066


@pytest.fixture
def pipeline(broker: EmbeddedBroker, unique_name: str, tmp_path: Path) -> Iterator[Pipeline]:
    running = Pipeline(broker.bootstrap, unique_name, tmp_path)
    yield running
    running.close()


def listening_ports(pid: int) -> set[int]:
    """TCP ports a process listens on: its socket inodes matched against /proc/net/tcp*."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = fd.readlink().name
        except OSError:
            continue  # closed meanwhile
        if target.startswith("socket:["):
            inodes.add(target[len("socket:["):-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def test_running_worker_serves_no_faust_web_views(pipeline: Pipeline) -> None:
    pipeline.workers.start(1)
    pipeline.send(B2C_JOURNEY)
    pipeline.wait()  # the worker is up, in its group and has processed events
    worker = pipeline.workers.processes[0]
    assert worker.poll() is None
    announced = list((pipeline.warehouse / "_ops").glob("*.json"))
    assert len(announced) == 1, announced
    ops_port = urlsplit(orjson.loads(announced[0].read_bytes())["url"]).port
    assert listening_ports(worker.pid) == {ops_port}
    # And a real connect to Faust's default web port finds nothing.
    with socket.socket() as probe:
        probe.settimeout(5)
        assert probe.connect_ex(("127.0.0.1", FAUST_WEB_PORT)) != 0
