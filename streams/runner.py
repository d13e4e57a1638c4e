"""Process supervision for `attribution run` and `attribution demo`: broker, workers.

Workers run as child processes (`attribution worker`), exactly as they would on
other machines, so the embedded default exercises the production path. Under
``Workers.supervise()`` a worker that exits (a crash, or the stall watchdog's exit 75) is
restarted after a backoff that doubles from 1 s to 30 s, back to 1 s once a worker has
run a minute; after 5 exits in a row each within 10 s of its start (a bad config, a
broken install) supervision gives up and ``alive()`` turns false.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from streams.broker import EmbeddedBroker, broker_from_env

BACKOFF_FIRST_S = 1.0
BACKOFF_MAX_S = 30.0
HEALTHY_RUN_S = 60.0  # a worker that ran this long resets the backoff
QUICK_EXIT_S = 10.0
QUICK_EXITS_TO_GIVE_UP = 5


def worker_environment() -> dict[str, str]:
    """A worker is one busy thread per core; polars' own thread pool would only compete
    with the other workers for the cores (measured: 10 % fewer events per CPU-second
    on the stages' small frames)."""
    return {**os.environ, "PYTHONUNBUFFERED": "1",
            "POLARS_MAX_THREADS": os.environ.get("POLARS_MAX_THREADS", "1")}


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
class Restarts:
    """Backoff bookkeeping of one worker slot."""

    started: float
    delay: float
    quick_exits: int = 0
    due: float | None = None  # when the exited worker is to be started again


@dataclass
class Workers:
    bootstrap: str
    warehouse: Path
    config: Path | None
    log: IO[bytes] | None = None
    extra: list[str] = field(default_factory=list)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)  # added to the workers' environment
    backoff_first_s: float = BACKOFF_FIRST_S
    restarts: int = 0  # workers restarted by supervise()
    failure: str | None = None  # why supervision gave up
    _slots: dict[int, Restarts] = field(default_factory=dict)  # by pid
    _supervisor: threading.Thread | None = None
    _stopping: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", "cli.main", "worker", "--broker", self.bootstrap,
               "--warehouse", str(self.warehouse)]
        if self.config is not None:
            cmd += ["--config", str(self.config)]
        return cmd + self.extra

    def _spawn(self, backoff: Restarts | None = None) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            self.command(), stdin=subprocess.DEVNULL,
            stdout=self.log or subprocess.DEVNULL, stderr=subprocess.STDOUT,
            env={**worker_environment(), **self.env},
        )
        self._slots[process.pid] = Restarts(
            time.monotonic(), *((backoff.delay, backoff.quick_exits) if backoff
                                else (self.backoff_first_s,)))
        return process

    def start(self, count: int = 1) -> None:
        with self._lock:
            for _ in range(count):
                self.processes.append(self._spawn())

    def alive(self) -> bool:
        """All workers run; under supervise(): supervision has not given up."""
        if self._supervisor is not None:
            return self.failure is None
        return all(p.poll() is None for p in self.processes)

    def supervise(self, poll: float = 0.5) -> None:
        """Restart workers that exit, with backoff, until stop() (see the module doc)."""
        if self._supervisor is None:
            self._supervisor = threading.Thread(target=self._supervise, args=(poll,),
                                                name="worker-supervisor", daemon=True)
            self._supervisor.start()

    def _supervise(self, poll: float) -> None:
        while not self._stopping.wait(poll):
            with self._lock:
                for index, process in enumerate(self.processes):
                    if self.failure is None and not self._stopping.is_set():
                        self._check(index, process, time.monotonic())

    def _check(self, index: int, process: subprocess.Popen[bytes], now: float) -> None:
        code = process.poll()
        if code is None:
            return
        slot = self._slots.setdefault(process.pid, Restarts(now, self.backoff_first_s))
        if slot.due is None:  # just exited
            ran = now - slot.started
            slot.delay = self.backoff_first_s if ran >= HEALTHY_RUN_S else slot.delay
            slot.quick_exits = slot.quick_exits + 1 if ran < QUICK_EXIT_S else 0
            exited = f"supervisor: worker pid {process.pid} exited with status {code} after " \
                     f"{ran:.1f} s"
            if slot.quick_exits >= QUICK_EXITS_TO_GIVE_UP:
                self.failure = (f"worker exited {slot.quick_exits} times in a row within "
                                f"{QUICK_EXIT_S:.0f} s of starting (last status {code})")
                self._note(f"{exited}; giving up: {self.failure}")
                return
            slot.due = now + slot.delay
            self._note(f"{exited}; restarting it in {slot.delay:.1f} s")
            slot.delay = min(slot.delay * 2, BACKOFF_MAX_S)
        elif now >= slot.due:
            self.processes[index] = self._spawn(backoff=slot)
            del self._slots[process.pid]
            self.restarts += 1
            self._note(f"supervisor: worker restarted as pid {self.processes[index].pid}")

    def _note(self, message: str) -> None:
        line = f"{datetime.now(UTC).isoformat(timespec='seconds')} {message}\n"
        if self.log is not None:
            self.log.write(line.encode())
            self.log.flush()
        else:
            sys.stderr.write(line)

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM: each worker finishes its batch, flushes, commits and leaves the group."""
        self._stopping.set()
        if self._supervisor is not None:
            self._supervisor.join()
            self._supervisor = None
        self._stopping.clear()
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
        self._slots.clear()
