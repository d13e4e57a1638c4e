"""The warehouse maintenance lock: jobs that rewrite or delete landed files take turns.

Landing only adds files, so the sink and replay never need it. Compaction, erasure and
migration read files and then replace them; run together, a merge could bring back rows an
erasure had just removed.

- Local directory: an advisory ``flock`` on ``ROOT/.maintenance.lock`` serialises them
  across processes on one machine (and on NFS v4 across machines).
- Object storage: a **lease object** ``<prefix>/.maintenance.lock``, created with a
  conditional PUT (``If-None-Match: *``: exactly one of several hosts racing succeeds) and
  renewed every third of the lease with ``If-Match: <its ETag>``. A holder that crashed
  stops renewing; another host takes the lock over once it has seen the same ETag for a
  whole lease on its own clock (so clocks need not agree), again with ``If-Match``. A holder
  that fails to renew (it was paused past its lease and someone took over) raises
  ``LockLost`` at its next ``check()``, before it changes anything else.
"""

from __future__ import annotations

import fcntl
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

from warehouse.storage import LocalStorage, Root, storage_for

if TYPE_CHECKING:
    from warehouse.s3 import S3Storage

LOCK_FILE = ".maintenance.lock"

_lease_seconds = 60.0


def set_lease(seconds: float) -> None:
    """The object-store lease (``[warehouse] lock_lease``); renewed every third of it."""
    global _lease_seconds
    if seconds <= 0:
        raise ValueError("the lock lease must be positive")
    _lease_seconds = seconds


class LockLost(RuntimeError):
    """The object-store lease was taken over by another host: stop before changing more."""


class Lease:
    """A held maintenance lock. ``check()`` before each change that must not race."""

    def check(self) -> None:
        """Raise LockLost if the lock is no longer held."""


@contextmanager
def maintenance_lock(root: Root) -> Iterator[Lease]:
    """Block until no other maintenance job holds the warehouse, then hold it."""
    storage = storage_for(root)
    if isinstance(storage, LocalStorage):
        with _local_lock(storage.root):
            yield Lease()
        return
    from warehouse.s3 import S3Storage

    assert isinstance(storage, S3Storage)
    lease = ObjectLease(storage, _lease_seconds)
    lease.acquire()
    try:
        yield lease
    finally:
        lease.release()


@contextmanager
def _local_lock(root: Path) -> Iterator[None]:
    root.mkdir(parents=True, exist_ok=True)
    with open(root / LOCK_FILE, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _holders_lease(body: bytes, default: float) -> float:
    """The lease the holder announced in the lock object (it renews every third of it)."""
    try:
        return float(orjson.loads(body)["lease_seconds"])
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return default


class ObjectLease(Lease):
    """The lease object on S3-compatible storage (see the module docstring)."""

    def __init__(self, storage: S3Storage, lease_seconds: float) -> None:
        self.storage = storage
        self.lease_seconds = lease_seconds
        self.owner = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.etag: str | None = None
        self._guard = threading.Lock()
        self._stop = threading.Event()
        self._lost = False
        self._renewer: threading.Thread | None = None

    def _body(self) -> bytes:
        return orjson.dumps({"owner": self.owner, "lease_seconds": self.lease_seconds,
                             "renewed_at": time.time()})

    def acquire(self) -> None:
        seen: tuple[str, float] | None = None  # (etag, monotonic time first seen)
        while True:
            etag = self.storage.create(LOCK_FILE, self._body())
            if etag is not None:
                break
            current = self.storage.read_with_etag(LOCK_FILE)
            now = time.monotonic()
            if current is None:
                continue  # released meanwhile: try to create it again at once
            body, held = current
            if seen is None or seen[0] != held:
                seen = (held, now)  # the holder renewed (or a new holder): wait a lease
            elif now - seen[1] >= _holders_lease(body, self.lease_seconds):
                etag = self.storage.replace_if(LOCK_FILE, self._body(), held)
                if etag is not None:
                    break  # the holder stopped renewing a whole lease ago: taken over
                seen = None
            time.sleep(min(1.0, self.lease_seconds / 10) * (0.5 + random.random()))
        self.etag = etag
        self._renewer = threading.Thread(target=self._renew_until_released,
                                         name="maintenance-lease", daemon=True)
        self._renewer.start()

    def _renew(self) -> None:
        with self._guard:
            if self._lost or self.etag is None:
                return
            etag = self.storage.replace_if(LOCK_FILE, self._body(), self.etag)
            if etag is None:
                self._lost = True
            else:
                self.etag = etag

    def _renew_until_released(self) -> None:
        while not self._stop.wait(self.lease_seconds / 3):
            try:
                self._renew()
            except Exception:  # a network error: the next attempt (or check) decides
                continue

    def check(self) -> None:
        self._renew()
        if self._lost:
            raise LockLost(f"the maintenance lock of {self.storage.url} was taken over by "
                           "another host; nothing more was changed")

    def release(self) -> None:
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join()
        with self._guard:
            if not self._lost and self.etag is not None:
                self.storage.delete_if(LOCK_FILE, self.etag)
            self.etag = None
