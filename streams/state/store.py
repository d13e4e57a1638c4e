"""Stores of one partition's state: key -> encoded value, with an idleness index.

Values are opaque bytes (``streams.state_codec`` encodes them), so the store neither
knows nor copies the stage's objects and a changelog record carries them as they are.
Each key also has an *activity* time (event time, epoch microseconds), kept in front of
its value, and the key is listed under the hour its activity falls in, so eviction finds
idle keys by looking at old hours only, never by scanning the table. A key that moves to
a later hour stays listed under the earlier one too; those entries are dropped when that
hour is looked at (a list entry costs 8 bytes, a per-key index would cost ~150).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Protocol

BUCKET_US = 3_600_000_000  # one hour of event time per idleness bucket
_TIME = struct.Struct(">q")


class PartitionStore(Protocol):
    partition: int
    applied: int  # offset of the last changelog record reflected here (-1: none)

    def get(self, key: str) -> bytes | None: ...

    def put(self, key: str, value: bytes, active: int) -> None: ...

    def delete(self, key: str) -> None: ...

    def items(self) -> Iterator[tuple[str, bytes]]: ...

    def idle(self, before: int) -> list[str]: ...

    def active_before(self, key: str, before: int) -> bool: ...

    def __len__(self) -> int: ...

    def mark_applied(self, offset: int) -> None: ...

    def close(self) -> None: ...


def activity_of(stored: bytes) -> int:
    return int(_TIME.unpack_from(stored)[0])


def with_activity(value: bytes, active: int) -> bytes:
    return _TIME.pack(active) + value


class Hours:
    """Keys listed under the hour of their activity."""

    def __init__(self) -> None:
        self._keys: dict[int, list[str]] = {}

    def add(self, key: str, active: int, previous: int | None) -> None:
        bucket = active // BUCKET_US
        if previous is None or previous // BUCKET_US != bucket:
            self._keys.setdefault(bucket, []).append(key)

    def take_before(self, before: int) -> list[str]:
        """Every key listed under an hour wholly before ``before`` (the hours are dropped:
        a key still active is listed under its later hour as well)."""
        limit = before // BUCKET_US
        found: list[str] = []
        for bucket in sorted(b for b in self._keys if b < limit):
            found.extend(self._keys.pop(bucket))
        return found


class MemoryStore:
    """The partition's state in this process's memory; rebuilt from the changelog."""

    def __init__(self, partition: int) -> None:
        self.partition = partition
        self.applied = -1
        self._values: dict[str, bytes] = {}  # activity (8 bytes) + value
        self._hours = Hours()

    def get(self, key: str) -> bytes | None:
        stored = self._values.get(key)
        return None if stored is None else stored[_TIME.size:]

    def put(self, key: str, value: bytes, active: int) -> None:
        old = self._values.get(key)
        self._values[key] = with_activity(value, active)
        self._hours.add(key, active, None if old is None else activity_of(old))

    def delete(self, key: str) -> None:
        self._values.pop(key, None)

    def items(self) -> Iterator[tuple[str, bytes]]:
        return iter([(key, stored[_TIME.size:]) for key, stored in self._values.items()])

    def idle(self, before: int) -> list[str]:
        idle = []
        for key in dict.fromkeys(self._hours.take_before(before)):
            stored = self._values.get(key)
            if stored is not None and activity_of(stored) < before:
                idle.append(key)
        return idle

    def active_before(self, key: str, before: int) -> bool:
        stored = self._values.get(key)
        return stored is not None and activity_of(stored) < before

    def __len__(self) -> int:
        return len(self._values)

    def mark_applied(self, offset: int) -> None:
        self.applied = max(self.applied, offset)

    def close(self) -> None:
        self._values.clear()
