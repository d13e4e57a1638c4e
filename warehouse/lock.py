"""The warehouse maintenance lock: jobs that rewrite or delete landed files take turns.

Landing only adds files, so the sink and replay never need it. Compaction and erasure
both read files and then replace them; run together, a merge could bring back rows an
erasure had just removed. An advisory ``flock`` on a hidden file in the warehouse root
serialises them across processes on one machine (and on NFS v4 across machines).
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LOCK_FILE = ".maintenance.lock"


@contextmanager
def maintenance_lock(root: Path) -> Iterator[None]:
    """Block until no other maintenance job holds the warehouse, then hold it."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / LOCK_FILE, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
