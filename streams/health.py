"""The worker's operations endpoint: /metrics, /healthz, /readyz on a small aiohttp server.

Faust's own web server stays disabled (its table views would expose state), so the
worker runs this one as a service of the Faust worker: it starts before the app joins
its group (probes answer during recovery) and stops after it has left. It runs on
Faust's event loop, so a /healthz answer also proves the loop is not stuck. The bound
URL is logged and written to ``WAREHOUSE/_ops/<host>-<pid>.json`` (port 0: any free port).
"""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path
from typing import Any, Protocol
from weakref import WeakKeyDictionary

import faust
import orjson
from aiohttp import web
from mode import Service
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from streams.metrics import WorkerMetrics
from warehouse.storage import storage_for

log = logging.getLogger("attribution.ops")
OPS_DIR = "_ops"


class _Pending(Protocol):
    @property
    def pending(self) -> int: ...


_STATE: WeakKeyDictionary[faust.App, list[_Pending]] = WeakKeyDictionary()


def watch_state(app: faust.App, tables: list[_Pending]) -> None:
    """Readiness also waits until these state tables have recovered their partitions."""
    _STATE[app] = tables


def readiness(app: faust.App) -> tuple[bool, str]:
    """Ready = partitions assigned and every table recovered, no rebalance under way."""
    if getattr(app, "rebalancing", False):
        return False, "rebalancing"
    recovery: Any = getattr(app.tables, "recovery", None)  # TableManager's, not in its type
    if getattr(app, "in_recovery", False) or recovery is None or (
            not recovery.completed.is_set()):
        return False, "recovering tables"
    try:
        assigned = app.consumer.assignment()
    except Exception:  # the consumer is not started yet
        return False, "starting"
    if not assigned:
        return False, "no partitions assigned"
    pending = sum(table.pending for table in _STATE.get(app, ()))
    if pending:
        return False, f"recovering state ({pending} partitions)"
    return True, "ready"


def announce_key() -> str:
    """Where this worker announces its endpoint, relative to the warehouse root (a local
    directory or object storage: see warehouse.storage)."""
    return f"{OPS_DIR}/{socket.gethostname()}-{os.getpid()}.json"


class OpsServer(Service):
    """Serves the endpoint for the lifetime of the Faust worker it is handed to."""

    def __init__(self, app: faust.App, metrics: WorkerMetrics, host: str, port: int,
                 warehouse: Path | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.app = app
        self.metrics = metrics
        self.host = host
        self.port = port
        self.warehouse = warehouse
        self.url: str | None = None
        self._runner: web.AppRunner | None = None

    def web_app(self) -> web.Application:
        web_app = web.Application()
        web_app.router.add_get("/metrics", self.handle_metrics)
        web_app.router.add_get("/healthz", self.handle_healthz)
        web_app.router.add_get("/readyz", self.handle_readyz)
        return web_app

    def readiness(self) -> tuple[bool, str]:
        if self.metrics.stalled:  # streams.watchdog: ready in Faust's eyes, yet consuming nothing
            return False, "stalled: " + ", ".join(self.metrics.stalled)
        return readiness(self.app)

    async def handle_metrics(self, request: web.Request) -> web.Response:
        self.metrics.ready.set(1 if self.readiness()[0] else 0)
        return web.Response(body=generate_latest(self.metrics.registry),
                            headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def handle_healthz(self, request: web.Request) -> web.Response:
        # Alive even while the sink retries (a restart would not fix a full disk).
        body = {"status": "ok", "sink_failing": self.metrics.sink_is_failing}
        return web.Response(body=orjson.dumps(body), content_type="application/json")

    async def handle_readyz(self, request: web.Request) -> web.Response:
        ready, why = self.readiness()
        self.metrics.ready.set(1 if ready else 0)
        return web.Response(body=orjson.dumps({"status": why}), status=200 if ready else 503,
                            content_type="application/json")

    async def on_start(self) -> None:
        self._runner = web.AppRunner(self.web_app(), access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()
        host, port = self._runner.addresses[0][:2]
        if host in ("0.0.0.0", "::"):  # listening everywhere: announce a reachable name
            host = socket.gethostname()
        self.url = f"http://{f'[{host}]' if ':' in host else host}:{port}"
        log.info("ops endpoint on %s (/metrics /healthz /readyz)", self.url)
        if self.warehouse is not None:
            storage_for(self.warehouse).write_bytes(announce_key(), orjson.dumps(
                {"url": self.url, "pid": os.getpid(), "host": socket.gethostname()}))

    async def on_stop(self) -> None:
        if self.warehouse is not None:
            storage_for(self.warehouse).delete(announce_key())
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
