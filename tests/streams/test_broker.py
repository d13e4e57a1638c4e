"""The embedded Tansu broker with aiokafka, and the envelope codec it carries."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from hypothesis import given, settings
from hypothesis import strategies as st

from attribution.policy import ConfigError
from streams.broker import (
    BrokerError,
    EmbeddedBroker,
    TopicSpec,
    broker_from_env,
    consumer_group_lag,
    create_topics,
    faust_url,
    log_end_offsets,
    wait_for_broker,
)
from streams.envelope import EnvelopeError, batch_by_key, decode_envelope, encode_envelope
from streams.settings import stream_settings
from streams.topics import topic_specs

# Short group timings: Tansu assigns partitions about half a session timeout after a join.
GROUP_SETTINGS: dict[str, Any] = {
    "session_timeout_ms": 1000,
    "heartbeat_interval_ms": 200,
    "fetch_max_wait_ms": 100,  # Tansu answers a fetch only when this wait is over
    "auto_offset_reset": "earliest",
}
WAIT_LIMIT_S = 20.0  # only a guard against hangs; nothing asserts on durations


async def _consume(consumer: AIOKafkaConsumer, count: int) -> list[ConsumerRecord[Any, Any]]:
    records: list[ConsumerRecord[Any, Any]] = []

    async def _drain() -> None:
        while len(records) < count:
            for batch in (await consumer.getmany(timeout_ms=200)).values():
                records.extend(batch)

    await asyncio.wait_for(_drain(), WAIT_LIMIT_S)
    return records


async def _produce_batched(bootstrap: str, topic: str, values: Sequence[bytes]) -> None:
    """Send values to partition 0 so that they travel in one multi-record batch."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=50)
    await producer.start()
    try:
        for value in values:
            await producer.send(topic, value, partition=0)
        await producer.flush()
    finally:
        await producer.stop()


# --- broker and aiokafka ------------------------------------------------------------------


async def test_envelopes_roundtrip_keyed_and_in_order(
    broker: EmbeddedBroker, unique_name: str
) -> None:
    topic = f"{unique_name}-events"
    await create_topics(broker.bootstrap, [TopicSpec(topic, partitions=3)])
    events = [(f"user-{n % 4}", {"messageId": f"m{n}", "n": n}) for n in range(40)]
    envelopes = batch_by_key(events, max_events=4)

    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap)
    await producer.start()
    try:
        for key, chunk in envelopes:
            await producer.send(topic, encode_envelope(chunk), key=key.encode())
        await producer.flush()
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=broker.bootstrap, group_id=unique_name, **GROUP_SETTINGS
    )
    await consumer.start()
    try:
        records = await _consume(consumer, len(envelopes))
    finally:
        await consumer.stop()

    received: dict[str, list[int]] = {}
    partition_of_key: dict[str, set[int]] = {}
    for record in records:
        key = record.key.decode()
        received.setdefault(key, []).extend(e["n"] for e in decode_envelope(record.value))
        partition_of_key.setdefault(key, set()).add(record.partition)
    assert received == {f"user-{k}": list(range(k, 40, 4)) for k in range(4)}
    assert all(len(partitions) == 1 for partitions in partition_of_key.values())


async def test_created_topics_have_the_requested_partitions(
    broker: EmbeddedBroker, unique_name: str
) -> None:
    specs = [TopicSpec(f"{unique_name}-one", 1), TopicSpec(f"{unique_name}-five", 5, 3_600_000)]
    created = await create_topics(broker.bootstrap, specs)
    assert created == [spec.name for spec in specs]
    assert await create_topics(broker.bootstrap, specs) == []  # idempotent

    consumer = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap)
    await consumer.start()
    try:
        await consumer.topics()  # refreshes metadata for all topics
        assert consumer.partitions_for_topic(f"{unique_name}-one") == {0}
        assert consumer.partitions_for_topic(f"{unique_name}-five") == set(range(5))
    finally:
        await consumer.stop()


async def test_every_pipeline_topic_gets_the_configured_replication_and_min_isr(
    broker: EmbeddedBroker, unique_name: str
) -> None:
    """[stream] replication_factor and min_insync_replicas reach every data topic, not only
    Faust's changelogs. Tansu keeps one copy whatever is asked, but it records and reports
    the requested replica list and the topic config, which is what a request carries."""
    settings = stream_settings({}, topic_prefix=unique_name, replication_factor=3,
                               min_insync_replicas=2)
    specs = topic_specs(settings)
    assert await create_topics(broker.bootstrap, specs) == [spec.name for spec in specs]
    admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics([spec.name for spec in specs])
        configs = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, spec.name) for spec in specs])
    finally:
        await admin.close()
    assert {t["topic"] for t in described} == {spec.name for spec in specs}
    for topic in described:
        assert all(len(p["replicas"]) == 3 for p in topic["partitions"]), topic
    for response in configs:
        for resource in response.resources:
            entries = {entry[0]: entry[1] for entry in resource[4]}
            assert entries["min.insync.replicas"] == "2", resource


def test_min_insync_replicas_above_the_replication_is_refused() -> None:
    with pytest.raises(ConfigError, match="min_insync_replicas"):
        stream_settings({"replication_factor": 2, "min_insync_replicas": 3})
    assert stream_settings({"replication_factor": 3}).min_insync_replicas is None


async def test_committed_offsets_survive_a_consumer_restart(
    broker: EmbeddedBroker, unique_name: str
) -> None:
    topic, group = f"{unique_name}-log", unique_name
    await create_topics(broker.bootstrap, [TopicSpec(topic, 1)])
    await _produce_batched(broker.bootstrap, topic, [b"%d" % n for n in range(10)])
    partition = TopicPartition(topic, 0)

    first = AIOKafkaConsumer(
        topic,
        bootstrap_servers=broker.bootstrap,
        group_id=group,
        enable_auto_commit=False,
        **GROUP_SETTINGS,
    )
    await first.start()
    try:
        await _consume(first, 10)
        await first.commit({partition: 4})
    finally:
        await first.stop()

    # Tansu serves the consumer-group admin APIs a lag monitor needs.
    admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap)
    await admin.start()
    try:
        assert (group, "consumer") in await admin.list_consumer_groups()
    finally:
        await admin.close()
    assert await consumer_group_lag(broker.bootstrap, group, {topic: 1}) == {partition: 6}

    second = AIOKafkaConsumer(
        topic,
        bootstrap_servers=broker.bootstrap,
        group_id=group,
        enable_auto_commit=False,
        **GROUP_SETTINGS,
    )
    await second.start()
    try:
        resumed = await _consume(second, 6)
    finally:
        await second.stop()
    assert [record.value for record in resumed] == [b"%d" % n for n in range(4, 10)]


async def test_log_end_offsets_count_every_record_of_the_last_batch(
    broker: EmbeddedBroker, unique_name: str
) -> None:
    topic = f"{unique_name}-batched"
    await create_topics(broker.bootstrap, [TopicSpec(topic, 2)])
    await _produce_batched(broker.bootstrap, topic, [b"x"] * 10)
    ends = await log_end_offsets(broker.bootstrap, [TopicPartition(topic, p) for p in (0, 1)])
    assert ends == {TopicPartition(topic, 0): 10, TopicPartition(topic, 1): 0}


async def test_restarted_broker_keeps_its_port_and_starts_empty(unique_name: str) -> None:
    topic = f"{unique_name}-gone"
    with EmbeddedBroker() as own_broker:
        bootstrap = own_broker.bootstrap
        await create_topics(bootstrap, [TopicSpec(topic, 1)])
        own_broker.stop()
        assert not own_broker.running
        with pytest.raises(BrokerError, match="no Kafka broker"):
            await wait_for_broker(bootstrap, timeout=0.5)

        own_broker.start()
        assert own_broker.bootstrap == bootstrap
        await wait_for_broker(bootstrap, timeout=5)
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            assert topic not in await admin.list_topics()  # memory storage: all data gone
        finally:
            await admin.close()
    assert not own_broker.running


def test_start_refuses_a_port_in_use(broker: EmbeddedBroker) -> None:
    with pytest.raises(BrokerError, match="already in use"):
        EmbeddedBroker(port=broker.port).start()


def test_start_failure_reports_the_broker_output() -> None:
    # The Python interpreter stands in for a broken binary: it exits, complaining on stderr.
    with pytest.raises(BrokerError, match="No such file"):
        EmbeddedBroker(binary=sys.executable, startup_timeout=10).start()


def test_broker_from_env_prefers_flag_then_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KAFKA_BROKER", raising=False)
    assert broker_from_env(None) is None
    assert broker_from_env("") is None
    monkeypatch.setenv("KAFKA_BROKER", "kafka://k1:9092,k2:9093")
    assert broker_from_env(None) == "k1:9092,k2:9093"
    assert broker_from_env("localhost:19092") == "localhost:19092"
    assert faust_url("k1:9092,k2:9093") == "kafka://k1:9092;kafka://k2:9093"


# --- envelope codec ------------------------------------------------------------------------


def test_envelope_wire_format() -> None:
    data = encode_envelope([{"a": 1}, {"b": [2, 3]}])
    assert orjson.loads(data) == {"v": 1, "events": [{"a": 1}, {"b": [2, 3]}]}
    assert decode_envelope(data) == [{"a": 1}, {"b": [2, 3]}]


@pytest.mark.parametrize(
    ("garbage", "reason"),
    [
        (b"\xff\x00not json", "not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b'{"v": 2, "events": []}', "unsupported envelope version 2"),
        (b'{"events": []}', "unsupported envelope version None"),
        (b'{"v": 1}', "no 'events' list"),
        (b'{"v": 1, "events": {"a": 1}}', "no 'events' list"),
        (b'{"v": 1, "events": [{"a": 1}, 3]}', "event 1 is a int"),
        (b"", "not valid JSON"),
    ],
)
def test_decoding_garbage_raises_envelope_error(garbage: bytes, reason: str) -> None:
    with pytest.raises(EnvelopeError, match=reason):
        decode_envelope(garbage)


def test_encoding_unserialisable_events_raises_envelope_error() -> None:
    with pytest.raises(EnvelopeError, match="not JSON-serialisable"):
        encode_envelope([{"when": object()}])


def test_batch_by_key_hand_computed() -> None:
    items = [("a", 1), ("b", 2), ("a", 3), ("a", 4), ("c", 5), ("b", 6), ("a", 7)]
    assert batch_by_key(items, max_events=2) == [
        ("a", [1, 3]),
        ("a", [4, 7]),
        ("b", [2, 6]),
        ("c", [5]),
    ]
    assert batch_by_key([], max_events=5) == []
    with pytest.raises(ValueError, match="at least 1"):
        batch_by_key(items, max_events=0)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)


@settings(deadline=None)
@given(st.lists(st.dictionaries(st.text(), json_values, max_size=4), max_size=6))
def test_envelope_roundtrip_property(events: list[dict[str, Any]]) -> None:
    assert decode_envelope(encode_envelope(events)) == events


@settings(deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from("abcde"), st.integers()), max_size=60),
    st.integers(min_value=1, max_value=7),
)
def test_batch_by_key_property(items: list[tuple[str, int]], max_events: int) -> None:
    batches = batch_by_key(items, max_events)
    assert all(1 <= len(chunk) <= max_events for _, chunk in batches)
    for key in {key for key, _ in items}:
        regrouped = [item for batch_key, chunk in batches if batch_key == key for item in chunk]
        assert regrouped == [item for item_key, item in items if item_key == key]
        # only the last chunk of a key may be short
        sizes = [len(chunk) for batch_key, chunk in batches if batch_key == key]
        assert all(size == max_events for size in sizes[:-1])
