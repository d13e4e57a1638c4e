"""The sink's writes, in a child process of the worker.

Landing a flush is many small steps per file (a file per table and day, each written,
synced and renamed). In the worker's process each step that releases the GIL has to win
it back from the event loop thread, which is busy with the stages: measured on 2 cores,
200 files took 14.5 s beside a CPU-bound thread against 0.07 s alone. A child process has
its own GIL: the worker hands it the flush's landing messages (one pickled list of bytes)
and awaits the answer, so a flush costs the event loop a few microseconds.

The child is spawned (not forked: the worker has threads), killed by the kernel if the
worker dies, and started again on the next flush if it dies itself; a flush that was in it
is retried, which is safe because file names are content hashes (``streams.sink``).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import signal
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from streams.child import die_with_parent
from streams.sink import land_messages


class LandingProcess:
    """Lands batches of landing messages under ``root`` in one child process."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._pool: ProcessPoolExecutor | None = None

    def start(self) -> None:
        """Spawn the child now, without waiting for it, so the first flush does not wait
        for its imports. Call from the main thread (see ``die_with_parent``)."""
        self._executor().submit(_ready)

    async def land(self, batch: Sequence[bytes]) -> tuple[dict[str, int], list[str]]:
        """Rows landed per table and why malformed messages were dropped (``land_messages``).
        OSError when the disk refuses or the child died (the caller retries)."""
        try:
            future = self._executor().submit(land_messages, self.root, list(batch))
            return await asyncio.wrap_future(future)
        except BrokenProcessPool:
            self._discard()
            raise OSError("the landing process died; starting another") from None

    def close(self) -> None:
        self._discard()

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                initializer=_child_setup)
        return self._pool

    def _discard(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


def _child_setup() -> None:
    die_with_parent()
    # Ctrl-C reaches the whole process group: the worker stops the child itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _ready() -> bool:
    return True
