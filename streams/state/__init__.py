"""Partition-scoped state for the stream stages: stores, changelog and recovery.

Each stage's state (devices, journeys, identity links) is a ``StateTable``: one store per
partition it owns (``MemoryStore``, or ``RocksStore`` on disk), values kept as compact
encoded bytes, and a changelog topic with the same partitioning. All keys a stage changes
while handling one message go to the changelog as ONE record, so the per-message cost is
one send, not one per key. A worker that gains a partition reads its changelog from where
its store left off (from the start for memory, from the stored offset for RocksDB).
"""
