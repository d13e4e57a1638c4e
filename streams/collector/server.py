"""Running the collector: bind, print where it listens and which write key it accepts."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from streams.collector.app import STATE, CollectorState, create_app
from streams.collector.connections import ConnectionGate, listen
from streams.collector.producer import EnvelopeProducer, EnvelopeSink
from streams.collector.settings import CollectorSettings

log = logging.getLogger(__name__)


@dataclass
class RunningCollector:
    url: str  # e.g. "http://127.0.0.1:8088"
    runner: web.AppRunner
    state: CollectorState
    listening: asyncio.Server
    gate: ConnectionGate

    async def stop(self) -> None:
        self.listening.close()  # no new connections; then open ones are finished and closed
        await self.runner.cleanup()
        await self.listening.wait_closed()


def producer_for(settings: CollectorSettings) -> EnvelopeProducer:
    return EnvelopeProducer(
        settings.bootstrap,
        produce_timeout=settings.produce_timeout,
        ready_timeout=settings.ready_timeout,
        reconnect_backoff=settings.reconnect_backoff,
    )


async def start(settings: CollectorSettings, producer: EnvelopeSink) -> RunningCollector:
    """Serve ``create_app`` on settings.host:port (port 0: any free port), with the slow
    client bounds of ``streams.collector.connections``."""
    app = create_app(settings, producer)
    state = app[STATE]
    # Bodies are inflated by the app itself, with its own decompressed-size limit.
    runner = web.AppRunner(app, access_log=None, auto_decompress=False,
                           keepalive_timeout=settings.header_timeout.total_seconds())
    await runner.setup()
    try:
        listening, gate = await listen(runner, settings.host, settings.port,
                                       settings.max_connections, settings.retry_after_seconds,
                                       state.stats.refused_connection)
    except BaseException:
        await runner.cleanup()
        raise
    state.stats.open_connections.set_function(lambda: gate.open())
    host, port = listening.sockets[0].getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return RunningCollector(url=f"http://{shown}:{port}", runner=runner, state=state,
                            listening=listening, gate=gate)


async def serve(
    settings: CollectorSettings,
    *,
    ready: asyncio.Event | None = None,
    reload_settings: Callable[[], CollectorSettings] | None = None,
) -> None:
    """Run until cancelled. Prints the URL and a write key it accepts.

    With ``reload_settings`` (e.g. re-reading the config file), SIGHUP applies new settings
    (write keys, CORS, bots, limits) without a restart; host, port and broker stay.
    """
    settings = settings.with_defaults_filled()
    producer = producer_for(settings)
    if not await producer.start():
        print(f"warning: broker {settings.bootstrap} unreachable; answering 503 until it is up",
              flush=True)
    running = await start(settings, producer)
    try:
        write_key, source = next(iter(running.state.settings.write_keys.items()))
        print(f"collector listening on {running.url}", flush=True)
        print(f"write key: {write_key} (source {source!r})", flush=True)
        if reload_settings is not None:
            _reload_on_sighup(running.state, reload_settings)
        if ready is not None:
            ready.set()
        await asyncio.Event().wait()
    finally:
        if reload_settings is not None:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
        await running.stop()
        await producer.stop()


async def serve_until_signalled(
    settings: CollectorSettings,
    *,
    reload_settings: Callable[[], CollectorSettings] | None = None,
    healthy: Callable[[], bool] | None = None,
    check_every: float = 1.0,
) -> str | None:
    """``serve`` until SIGINT or SIGTERM (returns None) or until ``healthy()`` turns false
    (returns why), then stop serving. Main thread only (it installs signal handlers); the
    previous handlers are back when it returns.
    """
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def on_signal(signum: int, _frame: object) -> None:
        loop.call_soon_threadsafe(stop.set)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    serving = asyncio.create_task(serve(settings, reload_settings=reload_settings))
    stopping = asyncio.create_task(stop.wait())
    try:
        while True:
            done, _ = await asyncio.wait({serving, stopping}, timeout=check_every,
                                         return_when=asyncio.FIRST_COMPLETED)
            if serving in done:
                serving.result()  # serve returns only by raising (e.g. the port is taken)
                return "the collector stopped"
            if stopping in done:
                return None
            if healthy is not None and not healthy():
                return "a stream worker exited"
    finally:
        for task in (serving, stopping):
            task.cancel()
        await asyncio.gather(serving, stopping, return_exceptions=True)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _reload_on_sighup(state: CollectorState, load: Callable[[], CollectorSettings]) -> None:
    def reload() -> None:
        try:
            state.reload(load())
        except Exception:  # a bad edit must not take the collector down
            log.exception("collector settings not reloaded")
            return
        log.warning("collector settings reloaded")

    with contextlib.suppress(NotImplementedError, RuntimeError):  # no signals off the main thread
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, reload)
