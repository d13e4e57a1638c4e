"""A real TCP proxy whose link can be cut and restored: network faults for stream tests.

It runs its own asyncio loop in a daemon thread, so blocking test code can drive it.
cut() aborts every open connection (the peers see a reset) and closes the listening
socket (new connections are refused) until restore() listens on the same port again.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from concurrent.futures import Future
from types import TracebackType
from typing import Any

LOOPBACK = "127.0.0.1"
_CHUNK = 64 * 1024


class TcpProxy:
    """Forward 127.0.0.1:listen_port to 127.0.0.1:target_port, byte for byte."""

    def __init__(self, listen_port: int, target_port: int) -> None:
        self.listen_port = listen_port
        self.target_port = target_port
        self.connections = 0  # accepted since start
        self.aborted = 0  # connections cut() dropped
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True,
                                        name="tcp-proxy")
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()

    def start(self) -> TcpProxy:
        self._thread.start()
        self._call(self._listen())
        return self

    def cut(self) -> None:
        """Drop every connection and refuse new ones."""
        self._call(self._cut())

    def restore(self) -> None:
        self._call(self._listen())

    def stop(self) -> None:
        if self._thread.is_alive():
            self._call(self._cut())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
        self._loop.close()

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()

    def _call(self, coroutine: Any) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        return future.result(timeout=10)

    async def _listen(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(self._accept, LOOPBACK, self.listen_port,
                                                      reuse_address=True)

    async def _cut(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        self.aborted += len(self._open) // 2  # a client side and a broker side each
        for writer in list(self._open):
            writer.transport.abort()  # RST, like a dead link or a crashed host
        self._open.clear()

    async def _accept(self, client_reader: asyncio.StreamReader,
                      client_writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            broker_reader, broker_writer = await asyncio.open_connection(LOOPBACK,
                                                                         self.target_port)
        except OSError:
            client_writer.transport.abort()
            return
        pair = {client_writer, broker_writer}
        self._open |= pair
        try:
            await asyncio.gather(self._pipe(client_reader, broker_writer),
                                 self._pipe(broker_reader, client_writer))
        finally:
            for writer in pair:
                self._open.discard(writer)
                writer.transport.abort()

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(_CHUNK):
                writer.write(data)
                await writer.drain()
        # One direction ended: end the other too, as a dead link would.
        writer.transport.abort()
