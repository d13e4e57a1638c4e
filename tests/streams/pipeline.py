"""Test harness: the real pipeline (worker processes on the session's Tansu broker)."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from streams.loader import produce_events
from streams.runner import Workers
from streams.settings import StreamSettings, stream_settings
from streams.worker import prepare, wait_until_landed
from warehouse.query import run_query
from warehouse.views import create_views

CreditKey = tuple[str, str, str | None]


@dataclass
class Pipeline:
    bootstrap: str
    name: str
    root: Path
    partitions: int = 4
    extra_config: str = ""
    stream_overrides: dict[str, Any] = field(default_factory=dict)  # more [stream] settings
    settings: StreamSettings = field(init=False)
    workers: Workers = field(init=False)
    _log: IO[bytes] = field(init=False)

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        stream = {"app_id": self.name, "topic_prefix": self.name, "partitions": self.partitions,
                  "session_timeout": "3s", "sink_max_seconds": 0.2, **self.stream_overrides}
        config = self.root / "config.toml"
        lines = [f'{k} = "{v}"' if isinstance(v, str) else f"{k} = {v}" for k, v in stream.items()]
        config.write_text(self.extra_config + "\n[stream]\n" + "\n".join(lines) + "\n")
        self.settings = stream_settings({}, **stream)
        prepare(self.bootstrap, self.settings)
        self._log = (self.root / "workers.log").open("ab")
        self.workers = Workers(self.bootstrap, self.root / "warehouse", config, log=self._log,
                               extra=["--loglevel", "INFO", "--log-format", "human"])

    @property
    def warehouse(self) -> Path:
        return self.root / "warehouse"

    def send(self, events: Iterable[Mapping[str, Any]]) -> int:
        return asyncio.run(produce_events(self.bootstrap, self.settings.topic("events"),
                                          self.partitions, events, chunk=500))

    def wait(self, timeout: float = 180.0) -> float:
        """Until everything landed; the bound is for a loaded CI machine, not an expectation.
        On timeout the workers' log tail goes into the error, to tell a hang from slowness."""
        try:
            return wait_until_landed(self.bootstrap, self.settings, timeout=timeout, poll=0.3)
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}; workers' log ends:\n{self.log_text()[-4000:]}") from None

    def kill(self, index: int = 0) -> None:
        """SIGKILL: no flush, no commit, no goodbye."""
        process = self.workers.processes.pop(index)
        process.send_signal(signal.SIGKILL)
        process.wait()

    def close(self) -> None:
        self.workers.stop()
        self._log.close()

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        create_views(self.warehouse)
        return run_query(self.warehouse, sql)[1]

    def credits(self) -> dict[CreditKey, float]:
        rows = self.query("SELECT conversion_id, model, touch_event_id, credit FROM credits")
        return {(r[0], r[1], r[2]): round(r[3], 9) for r in rows}

    def log_text(self) -> str:
        self._log.flush()
        return (self.root / "workers.log").read_text(errors="replace")
