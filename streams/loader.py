"""Produce wire events into the events topic, one envelope per partition per chunk.

Used by the demo and the benchmarks to put generated traffic into Kafka the way
the collector does, and by tests to drive the stream.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from aiokafka import AIOKafkaProducer

from streams.envelope import MAX_MESSAGE_BYTES, bounded, encode_envelope
from streams.producer import kafka_producer
from streams.routing import group_by_partition
from streams.stages import device_key


async def produce_events(bootstrap: str, topic: str, partitions: int,
                         events: Iterable[Mapping[str, Any]], chunk: int = 5000,
                         envelope_max: int = 1000) -> int:
    """Send events in order; returns how many were sent. Events without an id go to
    partition 0 so that the stream dead-letters them with their reason."""
    producer = kafka_producer(bootstrap)
    await producer.start()
    sent = 0
    try:
        pending: list[tuple[str, Mapping[str, Any]]] = []
        for event in events:
            pending.append((device_key(dict(event)) or "", event))
            if len(pending) >= chunk:
                sent += await _flush(producer, topic, partitions, pending, envelope_max)
                pending = []
        sent += await _flush(producer, topic, partitions, pending, envelope_max)
        await producer.flush()
    finally:
        await producer.stop()
    return sent


async def _flush(producer: AIOKafkaProducer, topic: str, partitions: int,
                 pending: list[tuple[str, Mapping[str, Any]]], envelope_max: int) -> int:
    futures = []
    for partition, chunk in group_by_partition(pending, partitions, envelope_max):
        for data in bounded(chunk, encode_envelope, MAX_MESSAGE_BYTES):
            futures.append(await producer.send(topic, value=data, partition=partition))
    for future in futures:
        await future
    return len(pending)
