"""A stage's state across the partitions this worker owns, and its changelog.

``commit`` applies what one message changed to the partition's store and sends it to
the changelog as one record; the record's offset, once the broker acknowledges it, is
what the store has applied. ``ensure`` makes a partition's store current before the
stage reads it: on first use, and after every rebalance that (re)assigned it, it reads
the changelog from the store's applied offset to the end.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from functools import partial
from typing import Any

from streams.state.changelog import Change, decode_record, encode_record, read_changelog
from streams.state.store import PartitionStore

log = logging.getLogger("attribution.state")

# Sends a changelog record to a partition; the future resolves to an object with .offset.
SendRecord = Callable[[int, bytes], Awaitable[asyncio.Future[Any]]]
# Reads (topic, {partition: from offset}) -> batches of (partition, offset, record), each
# partition up to its end.
ReadChangelog = Callable[[str, Mapping[int, int]], AsyncIterator[list[tuple[int, int, bytes]]]]


def kafka_reader(bootstrap: str) -> ReadChangelog:
    return partial(read_changelog, bootstrap)


class StateTable:
    """``standby``: keep the stores of partitions another worker owns too, following their
    changelogs (``follow``), so a rebalance that hands one over finds it nearly current."""

    def __init__(self, name: str, topic: str, read: ReadChangelog,
                 open_store: Callable[[int], PartitionStore], send: SendRecord,
                 standby: bool = False) -> None:
        self.name = name
        self.topic = topic
        self._read = read
        self._open = open_store
        self._send = send
        self.standby = standby
        self._stores: dict[int, PartitionStore] = {}
        self._owned: set[int] = set()
        self._to_check: set[int] = set()
        self._locks: dict[int, asyncio.Lock] = {}  # one catch-up of a partition at a time
        self.recovered_records = 0
        self.recovery_seconds = 0.0

    def assigned(self, partitions: Iterable[int]) -> None:
        """A rebalance gave us these partitions: check each store against its changelog
        before the next use (another worker may have written it meanwhile); close the rest
        (kept as standbys when ``standby``)."""
        self._owned = set(partitions)
        if not self.standby:
            for partition in list(self._stores):
                if partition not in self._owned:
                    self._stores.pop(partition).close()
        self._to_check = set(self._owned)

    async def ensure(self, partition: int) -> PartitionStore:
        """The partition's store, current with its changelog (a stage may read it)."""
        store = self._store(partition)
        if partition in self._to_check:
            async with self._lock(partition):  # another caller may be catching it up
                if partition in self._to_check:
                    await self._catch_up_locked([store])
                    self._to_check.discard(partition)
        return store

    async def recover(self) -> None:
        """Catch up every owned partition now (after an assignment), not on first use, all
        in one read of the changelog."""
        partitions = sorted(self._owned)
        stores = [self._store(partition) for partition in partitions]
        locks = [self._lock(partition) for partition in partitions]
        for lock in locks:  # sorted order: ensure() holds at most one
            await lock.acquire()
        try:
            stale = [store for store in stores if store.partition in self._to_check]
            await self._catch_up_locked(stale)
            self._to_check.difference_update(store.partition for store in stale)
        finally:
            for lock in locks:
                lock.release()

    @property
    def pending(self) -> int:
        """Owned partitions not yet checked against their changelogs."""
        return len(self._to_check & self._owned)

    def _store(self, partition: int) -> PartitionStore:
        store = self._stores.get(partition)
        if store is None:
            store = self._open(partition)
            self._stores[partition] = store
            self._to_check.add(partition)
        return store

    async def follow(self, partitions: Iterable[int]) -> None:
        """Bring the stores of these partitions that this worker does not own up to their
        changelogs' ends (a warm standby)."""
        for partition in partitions:
            if partition not in self._owned:
                await self._catch_up(self._store(partition))

    def _lock(self, partition: int) -> asyncio.Lock:
        return self._locks.setdefault(partition, asyncio.Lock())

    async def _catch_up(self, store: PartitionStore) -> None:
        async with self._lock(store.partition):
            await self._catch_up_locked([store])

    async def _catch_up_locked(self, stores: list[PartitionStore]) -> None:
        if not stores:
            return
        started = time.monotonic()
        by_partition = {store.partition: store for store in stores}
        records = dict.fromkeys(by_partition, 0)
        starts = {partition: store.applied + 1 for partition, store in by_partition.items()}
        async for batch in self._read(self.topic, starts):
            for partition, offset, data in batch:
                store = by_partition[partition]
                _apply(store, decode_record(data))
                store.mark_applied(offset)
                records[partition] += 1
            await asyncio.sleep(0)  # keep heartbeats and other tasks going
        seconds = time.monotonic() - started
        self.recovered_records += sum(records.values())
        self.recovery_seconds += seconds
        read = [partition for partition, count in records.items() if count]
        if read:
            log.info("recovered %s:%s from %d changelog records in %.2fs (%d keys)",
                     self.name, ",".join(map(str, sorted(read))), sum(records.values()),
                     seconds, sum(len(by_partition[partition]) for partition in read))

    def store(self, partition: int) -> PartitionStore | None:
        return self._stores.get(partition)

    async def commit(self, partition: int, changes: Mapping[str, tuple[int, bytes | None]]
                     ) -> None:
        """Apply one message's changes (key -> (activity, value or None to delete)) and
        send them as one changelog record."""
        if not changes:
            return
        store = self._stores[partition]
        record = [(key, active, value) for key, (active, value) in changes.items()]
        _apply(store, record)
        future = await self._send(partition, encode_record(record))
        future.add_done_callback(lambda done: _acked(store, done))

    async def evict(self, partition: int, before: int) -> int:
        """Delete keys idle since before ``before`` (event time); returns how many."""
        store = self._stores.get(partition)
        if store is None:
            return 0
        idle = store.idle(before)
        await self.commit(partition, {key: (0, None) for key in idle})
        return len(idle)

    def keys(self) -> int:
        return sum(len(store) for store in self._stores.values())

    def partitions(self) -> list[int]:
        return sorted(self._stores)

    def close(self) -> None:
        for store in self._stores.values():
            store.close()
        self._stores.clear()


def _apply(store: PartitionStore, changes: Iterable[Change]) -> None:
    for key, active, value in changes:
        if value is None:
            store.delete(key)
        else:
            store.put(key, value, active)


def _acked(store: PartitionStore, done: asyncio.Future[Any]) -> None:
    if not done.cancelled() and done.exception() is None:
        store.mark_applied(done.result().offset)
