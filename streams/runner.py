"""Process supervision for `attribution run` and `attribution demo`: broker, workers.

Workers run as child processes (`attribution worker`), exactly as they would on
other machines, so the embedded default exercises the production path.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from streams.broker import EmbeddedBroker, broker_from_env


def default_workers() -> int:
    """One stream worker per core: each is one Python process (one busy thread)."""
    return os.cpu_count() or 1


@contextlib.contextmanager
def kafka(flag: str | None) -> Iterator[tuple[str, EmbeddedBroker | None]]:
    """The configured broker, or an embedded Tansu on 127.0.0.1 for the duration."""
    configured = broker_from_env(flag)
    if configured is not None:
        yield configured, None
        return
    with EmbeddedBroker() as broker:
        yield broker.bootstrap, broker


@dataclass
class Workers:
    bootstrap: str
    warehouse: Path
    config: Path | None
    log: IO[bytes] | None = None
    extra: list[str] = field(default_factory=list)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", "cli.main", "worker", "--broker", self.bootstrap,
               "--warehouse", str(self.warehouse)]
        if self.config is not None:
            cmd += ["--config", str(self.config)]
        return cmd + self.extra

    def start(self, count: int = 1) -> None:
        for _ in range(count):
            self.processes.append(subprocess.Popen(
                self.command(), stdin=subprocess.DEVNULL,
                stdout=self.log or subprocess.DEVNULL, stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            ))

    def alive(self) -> bool:
        return all(p.poll() is None for p in self.processes)

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM: each worker finishes its batch, flushes, commits and leaves the group."""
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes.clear()
