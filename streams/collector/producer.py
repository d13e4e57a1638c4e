"""Produce request envelopes to Kafka; acknowledge only what the broker acknowledged.

Envelopes go to explicit partitions (one envelope per target partition, see
``streams.routing``) of a topic whose partition count the collector checks against its
declaration (``streams.topic_guard``): ``describe`` asks the broker without ever
creating a topic, and every aiokafka client of the process is kept from creating one.

The collector keeps no local buffer: a request is answered 200 only after every one of
its envelopes is acked by the broker (acks=all). A broker that is down or slow surfaces
as ``BrokerUnavailable`` and the client gets 503 + Retry-After, so the SDK retries.
The connection is (re)made lazily, at most once per ``reconnect_backoff``, which is how
the collector recovers by itself when the broker comes back.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Protocol

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.structs import RecordMetadata

from streams.producer import kafka_producer
from streams.topic_guard import TopicCheckFailed, forbid_topic_auto_creation, partition_counts

log = logging.getLogger(__name__)



class BrokerUnavailable(Exception):
    """The broker did not take the data in time; nothing may be assumed stored."""


class EnvelopeSink(Protocol):
    """What the HTTP side needs from a producer (lets a test or an embedding swap it)."""

    async def describe(self, topics: Sequence[str]) -> dict[str, int | None]: ...

    async def send_all(self, topic: str, messages: Sequence[tuple[int, bytes]]) -> bool: ...

    async def ready(self) -> bool: ...

    def on_connect(self, callback: Callable[[], None]) -> None: ...


class EnvelopeProducer:
    def __init__(
        self,
        bootstrap: str,
        *,
        produce_timeout: timedelta = timedelta(seconds=5),
        ready_timeout: timedelta = timedelta(seconds=2),
        reconnect_backoff: timedelta = timedelta(seconds=1),
        client_id: str = "attribution-collector",
    ):
        self.bootstrap = bootstrap
        self._produce_timeout = produce_timeout.total_seconds()
        self._ready_timeout = ready_timeout.total_seconds()
        self._backoff = reconnect_backoff.total_seconds()
        self._client_id = client_id
        self._producer: AIOKafkaProducer | None = None
        self._last_failure: float | None = None
        self._lock = asyncio.Lock()
        self._connect_callbacks: list[Callable[[], None]] = []
        self._last_offsets: dict[tuple[str, int], int] = {}  # the latest ack per partition
        forbid_topic_auto_creation()

    def on_connect(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` after each (re)connect and each failed produce: the broker
        may be another one now (restarted empty), so what it holds must be checked."""
        self._connect_callbacks.append(callback)

    def _connection_changed(self) -> None:
        for callback in self._connect_callbacks:
            callback()

    def _new_producer(self) -> AIOKafkaProducer:
        return kafka_producer(
            self.bootstrap,
            client_id=self._client_id,
            linger_ms=1,  # let concurrent requests share a produce request, answer fast
            request_timeout_ms=max(1000, int(self._produce_timeout * 1000)),
        )

    async def start(self) -> bool:
        """Try to connect once; a broker that is down now is retried on the next request."""
        try:
            await self._connected()
        except BrokerUnavailable:
            return False
        return True

    async def _connected(self) -> AIOKafkaProducer:
        if self._producer is not None:
            return self._producer
        async with self._lock:
            if self._producer is not None:
                return self._producer
            now = time.monotonic()
            if self._last_failure is not None and now - self._last_failure < self._backoff:
                raise BrokerUnavailable(f"broker {self.bootstrap} unreachable (retrying soon)")
            producer = self._new_producer()
            try:
                await asyncio.wait_for(producer.start(), self._ready_timeout)
            except (KafkaError, OSError, TimeoutError) as exc:
                self._last_failure = time.monotonic()
                await _quietly_stop(producer)
                log.warning("broker %s unreachable: %r", self.bootstrap, exc)
                raise BrokerUnavailable(f"broker {self.bootstrap} unreachable") from exc
            self._producer = producer
            self._last_failure = None
            self._connection_changed()
            return producer

    async def describe(self, topics: Sequence[str]) -> dict[str, int | None]:
        """Each topic's partition count on the broker (None: missing), never creating one;
        TopicCheckFailed when the broker cannot answer."""
        try:
            producer = await self._connected()
        except BrokerUnavailable as exc:
            raise TopicCheckFailed(str(exc)) from exc
        try:
            return await asyncio.wait_for(partition_counts(producer.client, topics),
                                          self._ready_timeout)
        except TimeoutError as exc:
            raise TopicCheckFailed("metadata request timed out") from exc

    async def send_all(self, topic: str, messages: Sequence[tuple[int, bytes]]) -> bool:
        """Send (partition, value) messages and wait until the broker acked every one.

        True when an ack looks like the start of a partition's log (offset 0, or not past
        an offset acked before): trust it only once the topic is checked. Tansu acks
        writes to a topic that does not exist (it restarted empty) at offset 0 and keeps
        nothing; a legitimate offset 0 happens once in a partition's life.
        """
        if not messages:
            return False
        producer = await self._connected()

        async def produce() -> list[RecordMetadata]:
            futures = [await producer.send(topic, value=value, partition=partition)
                       for partition, value in messages]
            return list(await asyncio.gather(*futures))

        try:
            acks = await asyncio.wait_for(produce(), self._produce_timeout)
        except (KafkaError, TimeoutError, AssertionError) as exc:
            # AssertionError: aiokafka's check of the partition against metadata that
            # changed under it (the topic was re-created with fewer partitions).
            self._connection_changed()
            log.warning("produce to %s failed: %r", topic, exc)
            message = f"broker did not acknowledge within {self._produce_timeout:g}s"
            raise BrokerUnavailable(message) from exc
        suspicious = False
        for ack in acks:
            last = self._last_offsets.get((topic, ack.partition), -1)
            suspicious = suspicious or ack.offset <= last or ack.offset == 0
            self._last_offsets[(topic, ack.partition)] = ack.offset
        return suspicious

    async def ready(self) -> bool:
        """Broker reachable: a metadata fetch answers within the ready timeout."""
        try:
            producer = await self._connected()
            await asyncio.wait_for(producer.client.fetch_all_metadata(), self._ready_timeout)
        except (BrokerUnavailable, KafkaError, OSError, TimeoutError):
            return False
        return True

    async def stop(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            await _quietly_stop(producer)


async def _quietly_stop(producer: AIOKafkaProducer) -> None:
    try:
        await producer.stop()
    except (KafkaError, OSError) as exc:  # stopping a half-started producer may fail
        log.debug("producer stop failed: %r", exc)
