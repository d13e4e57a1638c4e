"""Reading state changelogs back from the real broker: all partitions through one
consumer, each from its own offset to the end it had when the read began."""

from __future__ import annotations

from streams.broker import EmbeddedBroker, TopicSpec, create_topics
from streams.producer import kafka_producer
from streams.state.changelog import decode_record, encode_record, read_changelog
from streams.state.store import MemoryStore
from streams.state.table import StateTable, kafka_reader

PARTITIONS = 3
PER_PARTITION = 7


async def fill(bootstrap: str, topic: str) -> None:
    await create_topics(bootstrap, [TopicSpec(topic, PARTITIONS)])
    producer = kafka_producer(bootstrap)
    await producer.start()
    try:
        for partition in range(PARTITIONS):
            for n in range(PER_PARTITION):
                record = encode_record([(f"k{partition}-{n}", n, f"v{n}".encode())])
                await producer.send_and_wait(topic, record, partition=partition)
    finally:
        await producer.stop()


async def test_reads_each_partition_from_its_start_to_its_end(
        broker: EmbeddedBroker, unique_name: str) -> None:
    await fill(broker.bootstrap, unique_name)
    starts = {0: 0, 1: 4, 2: PER_PARTITION}  # partition 2 is already current
    read: list[tuple[int, int, bytes]] = []
    async for batch in read_changelog(broker.bootstrap, unique_name, starts):
        read.extend(batch)
    got = sorted((partition, offset) for partition, offset, _ in read)
    assert got == [(0, n) for n in range(PER_PARTITION)] + [(1, n) for n in range(4, 7)]
    keys = {change[0] for _, _, data in read for change in decode_record(data)}
    assert keys == {f"k0-{n}" for n in range(7)} | {f"k1-{n}" for n in range(4, 7)}


async def test_nothing_to_read_ends_at_once(broker: EmbeddedBroker, unique_name: str) -> None:
    await fill(broker.bootstrap, unique_name)
    starts = dict.fromkeys(range(PARTITIONS), PER_PARTITION)
    assert [batch async for batch in read_changelog(broker.bootstrap, unique_name, starts)] == []


async def test_a_table_recovers_every_owned_partition_in_one_read(
        broker: EmbeddedBroker, unique_name: str) -> None:
    await fill(broker.bootstrap, unique_name)

    async def never_send(partition: int, data: bytes) -> object:
        raise AssertionError("recovery writes nothing")

    table = StateTable("t", unique_name, kafka_reader(broker.bootstrap), MemoryStore,
                       never_send)  # type: ignore[arg-type]
    table.assigned([0, 2])
    await table.recover()
    assert table.pending == 0
    assert table.recovered_records == 2 * PER_PARTITION
    assert table.partitions() == [0, 2]
    for partition in (0, 2):
        store = table.store(partition)
        assert store is not None and len(store) == PER_PARTITION
        assert store.applied == PER_PARTITION - 1
        assert store.get(f"k{partition}-3") == b"v3"
