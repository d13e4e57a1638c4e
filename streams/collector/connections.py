"""Listening with bounds, so that slow or idle clients cannot exhaust the collector.

* Headers: aiohttp closes a connection that has not delivered a complete request head
  ``keepalive_timeout`` after connecting or after its previous answer (it arms that timer
  at connect time and only disarms it for a request being handled), so the collector sets
  it to ``header_timeout``; it is also how long an idle keep-alive connection is kept.
* Body: ``reading.read_body`` gives it ``body_timeout`` (408, connection closed).
* Count: at most ``max_connections`` are open; one more is answered 503 with
  ``Retry-After`` and closed at once, before it costs anything.

The listening socket is the collector's own (``asyncio`` ``create_server`` over aiohttp's
public ``runner.server`` protocol factory) so that each new connection passes the gate.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from aiohttp import web

# A created handler that has not seen its connection after this long never will.
_UNCONNECTED_GRACE = 5.0


class Refused(asyncio.Protocol):
    """One connection too many: a complete 503 answer, then close."""

    def __init__(self, retry_after: int):
        body = (b'{"success":false,"code":"unavailable","message":"too many connections; '
                b'retry later"}')
        self.answer = (b"HTTP/1.1 503 Service Unavailable\r\n"
                       b"Content-Type: application/json\r\n"
                       b"Retry-After: %d\r\nConnection: close\r\n"
                       b"Content-Length: %d\r\n\r\n%b" % (retry_after, len(body), body))

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.write(self.answer)
        transport.close()


class ConnectionGate:
    """The protocol factory the listening socket uses: aiohttp's handler while fewer than
    ``limit`` connections are open, ``Refused`` beyond."""

    def __init__(self, server: web.Server, limit: int, retry_after: int,
                 on_refused: Callable[[], None] = lambda: None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._server = server
        self._limit = limit
        self._retry_after = retry_after
        self._on_refused = on_refused
        self._clock = clock
        # Handlers handed out: created at, and whether their connection was seen. Counted
        # here rather than from the server's own list, which only learns of a connection
        # one loop turn later (an accept burst would overshoot the limit).
        self._handlers: dict[web.RequestHandler, tuple[float, bool]] = {}

    def __call__(self) -> asyncio.BaseProtocol:
        if self.open() >= self._limit:
            self._on_refused()
            return Refused(self._retry_after)
        handler = self._server()
        self._handlers[handler] = (self._clock(), False)
        return handler

    def open(self) -> int:
        """Connections open now (and handed out but not connected yet)."""
        now = self._clock()
        for handler, (created, seen) in list(self._handlers.items()):
            if handler.connected:
                if not seen:
                    self._handlers[handler] = (created, True)
            elif seen or now - created > _UNCONNECTED_GRACE:
                del self._handlers[handler]  # closed
        return len(self._handlers)


async def listen(runner: web.AppRunner, host: str, port: int, gate_limit: int,
                 retry_after: int, on_refused: Callable[[], None] = lambda: None
                 ) -> tuple[asyncio.Server, ConnectionGate]:
    """Serve ``runner`` (set up) on host:port through a ConnectionGate."""
    server = runner.server
    assert server is not None, "runner.setup() first"
    gate = ConnectionGate(server, gate_limit, retry_after, on_refused)
    listening = await asyncio.get_running_loop().create_server(gate, host, port)
    return listening, gate
