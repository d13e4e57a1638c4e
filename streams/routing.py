"""Partition routing: one envelope per target partition, not per key.

Every producer in the pipeline (collector, demo loader, agents) puts an item on
partition ``murmur2(key) % partitions`` -- the Kafka default partitioner -- and sends
all items bound for one partition in one envelope. An agent then receives many keys
per message (amortising Faust's per-message cost) and every key it writes to a table
lives on the partition it is processing, so table changelogs stay co-partitioned
with their source topic and a restarted or rebalanced worker recovers the right keys.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from typing import TypeVar

from aiokafka.partitioner import murmur2

T = TypeVar("T")


# Bounded at about 10 MB: the eviction pass asks for every key in a table, so a larger
# cache only grows with the state (the soak benchmark saw it take 3 MB a minute).
@lru_cache(maxsize=1 << 16)
def partition_for(key: str, partitions: int) -> int:
    """The partition Kafka's default partitioner gives ``key`` (cached: murmur2 is pure Python)."""
    return int(murmur2(key.encode()) & 0x7FFFFFFF) % partitions


def group_by_partition(items: Iterable[tuple[str, T]], partitions: int,
                       max_items: int = 1000) -> list[tuple[int, list[T]]]:
    """(partition, items) chunks, preserving order within each partition."""
    grouped: dict[int, list[T]] = {}
    for key, item in items:
        grouped.setdefault(partition_for(key, partitions), []).append(item)
    return [
        (partition, chunk[start:start + max_items])
        for partition, chunk in sorted(grouped.items())
        for start in range(0, len(chunk), max_items)
    ]
