"""A partition's state in RocksDB (rocksdict): kept on disk across restarts.

Each value is stored with its activity time in front (8 bytes), and the offset of the
last changelog record applied under a reserved key, so a restarted worker with its
state directory intact reads only the changelog records written since. The idleness
lists are rebuilt from the stored activity times on open.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from streams.state.store import _TIME, Hours, activity_of, with_activity

_APPLIED = b"\x00applied"  # keys of the table are UTF-8 ids: never start with NUL


class RocksStore:
    def __init__(self, path: Path, partition: int) -> None:
        from rocksdict import Options, Rdict  # optional dependency (the rocksdb extra)

        path.mkdir(parents=True, exist_ok=True)
        self.partition = partition
        self._db = Rdict(str(path), Options(raw_mode=True))
        stored = self._db.get(_APPLIED)
        self.applied = _TIME.unpack(stored)[0] if isinstance(stored, bytes) else -1
        self._hours = Hours()
        self._count = 0
        for key, value in self._db.items():
            if key == _APPLIED or not isinstance(key, bytes) or not isinstance(value, bytes):
                continue
            self._hours.add(key.decode(), activity_of(value), None)
            self._count += 1

    def _stored(self, key: str) -> bytes | None:
        value = self._db.get(key.encode())
        return value if isinstance(value, bytes) else None

    def get(self, key: str) -> bytes | None:
        stored = self._stored(key)
        return None if stored is None else stored[_TIME.size:]

    def put(self, key: str, value: bytes, active: int) -> None:
        old = self._stored(key)
        if old is None:
            self._count += 1
        self._db[key.encode()] = with_activity(value, active)
        self._hours.add(key, active, None if old is None else activity_of(old))

    def delete(self, key: str) -> None:
        raw = key.encode()
        if raw in self._db:
            del self._db[raw]
            self._count -= 1

    def items(self) -> Iterator[tuple[str, bytes]]:
        return ((key.decode(), value[_TIME.size:]) for key, value in list(self._db.items())
                if key != _APPLIED and isinstance(key, bytes) and isinstance(value, bytes))

    def idle(self, before: int) -> list[str]:
        idle = []
        for key in dict.fromkeys(self._hours.take_before(before)):
            stored = self._stored(key)
            if stored is not None and activity_of(stored) < before:
                idle.append(key)
        return idle

    def active_before(self, key: str, before: int) -> bool:
        stored = self._stored(key)
        return stored is not None and activity_of(stored) < before

    def __len__(self) -> int:
        return self._count

    def mark_applied(self, offset: int) -> None:
        if offset > self.applied:
            self.applied = offset
            self._db[_APPLIED] = _TIME.pack(offset)

    def close(self) -> None:
        self._db.close()
