"""Changelog records: every key one message changed, as one Kafka record.

A record is one MessagePack array of [key, activity, value] triples; ``value`` is the
store's bytes for a put and nil for a delete, ``activity`` the key's event time (for
idleness). Reading back decodes the array once and never the values: recovery hands the
stored bytes straight to the store.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator

import msgpack
from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.broker import log_end_offsets

Change = tuple[str, int, bytes | None]  # key, activity time, value (None: delete)


def encode_record(changes: Iterable[Change]) -> bytes:
    data: bytes = msgpack.packb([list(change) for change in changes], use_bin_type=True)
    return data


def decode_record(data: bytes) -> Iterator[Change]:
    """The changes of a record; ValueError if it is not one."""
    try:
        changes = msgpack.unpackb(data, use_list=False)
    except (msgpack.UnpackException, ValueError) as exc:
        raise ValueError(f"not a changelog record: {exc}") from None
    if not isinstance(changes, tuple):
        raise ValueError("not a changelog record: not an array")
    for change in changes:
        if not (isinstance(change, tuple) and len(change) == 3 and isinstance(change[0], str)
                and isinstance(change[1], int) and isinstance(change[2], bytes | None)):
            raise ValueError("not a changelog record: bad entry")
        yield change


async def read_changelog(bootstrap: str, topic: str, partition: int, start: int,
                         fetch_max_wait_ms: int = 20) -> AsyncIterator[list[tuple[int, bytes]]]:
    """Batches of (offset, value) of one changelog partition, from offset ``start`` to the
    end it has when called. Records written meanwhile are left for the next read (only the
    partition's owner writes them, and a worker recovers a partition before owning it)."""
    tp = TopicPartition(topic, partition)
    end = (await log_end_offsets(bootstrap, [tp]))[tp]
    if start >= end:
        return
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                fetch_max_wait_ms=fetch_max_wait_ms,
                                max_partition_fetch_bytes=8 << 20, fetch_max_bytes=64 << 20)
    await consumer.start()
    try:
        consumer.assign([tp])
        consumer.seek(tp, max(start, 0))
        while await consumer.position(tp) < end:
            batch = await consumer.getmany(tp, timeout_ms=500, max_records=50_000)
            records = [(m.offset, m.value) for m in batch.get(tp, [])
                       if m.offset < end and m.value is not None]
            if records:
                yield records
    finally:
        await consumer.stop()
