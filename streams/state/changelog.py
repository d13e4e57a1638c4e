"""Changelog records: every key one message changed, as one Kafka record.

A record is one MessagePack array of [key, activity, value] triples; ``value`` is the
store's bytes for a put and nil for a delete, ``activity`` the key's event time (for
idleness). Reading back decodes the array once and never the values: recovery hands the
stored bytes straight to the store.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator, Mapping

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


async def read_changelog(bootstrap: str, topic: str, starts: Mapping[int, int],
                         fetch_max_wait_ms: int = 20
                         ) -> AsyncIterator[list[tuple[int, int, bytes]]]:
    """Batches of (partition, offset, value) of a changelog's partitions, each from its
    offset in ``starts`` to the end it has when called, through one consumer (a restart
    reads all its partitions at once, not paying a consumer's start per partition).
    Records written meanwhile are left for the next read (only a partition's owner writes
    them, and a worker recovers a partition before owning it)."""
    tps = {partition: TopicPartition(topic, partition) for partition in starts}
    ends = await log_end_offsets(bootstrap, list(tps.values()))
    todo = {tp: ends[tp] for partition, tp in tps.items() if starts[partition] < ends[tp]}
    if not todo:
        return
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                fetch_max_wait_ms=fetch_max_wait_ms,
                                max_partition_fetch_bytes=8 << 20, fetch_max_bytes=64 << 20)
    await consumer.start()
    try:
        consumer.assign(list(todo))
        for tp in todo:
            consumer.seek(tp, max(starts[tp.partition], 0))
        while todo:
            fetched = await consumer.getmany(*todo, timeout_ms=500, max_records=50_000)
            records = [(tp.partition, m.offset, m.value)
                       for tp, messages in fetched.items() for m in messages
                       if m.offset < todo.get(tp, -1) and m.value is not None]
            for tp in list(todo):
                if await consumer.position(tp) >= todo[tp]:
                    del todo[tp]
                    consumer.pause(tp)
            if records:
                yield records
    finally:
        await consumer.stop()
