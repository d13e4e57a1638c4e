"""Produce request envelopes to Kafka; acknowledge only what the broker acknowledged.

Envelopes go to explicit partitions (one envelope per target partition, see
``streams.routing``); the topic's partition count comes from the broker's metadata
and is cached per connection.

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
from collections.abc import Sequence
from datetime import timedelta
from typing import Protocol

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 8 * 1024 * 1024  # a 500 KB batch grows by enrichment; stay well above it
MAX_BATCH_BYTES = 1024 * 1024


class BrokerUnavailable(Exception):
    """The broker did not take the data in time; nothing may be assumed stored."""


class EnvelopeSink(Protocol):
    """What the HTTP side needs from a producer (lets a test or an embedding swap it)."""

    async def partitions(self, topic: str) -> int: ...

    async def send_all(self, topic: str, messages: Sequence[tuple[int, bytes]]) -> None: ...

    async def ready(self) -> bool: ...


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
        self._partitions: dict[str, int] = {}  # topic -> partition count, per connection
        self._last_failure: float | None = None
        self._lock = asyncio.Lock()

    def _new_producer(self) -> AIOKafkaProducer:
        return AIOKafkaProducer(
            bootstrap_servers=self.bootstrap,
            client_id=self._client_id,
            acks="all",
            linger_ms=1,  # let concurrent requests share a produce request
            max_batch_size=MAX_BATCH_BYTES,
            max_request_size=MAX_REQUEST_BYTES,
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
            return producer

    async def partitions(self, topic: str) -> int:
        """The topic's partition count from the broker's metadata (asked once per topic)."""
        count = self._partitions.get(topic)
        if count is not None:
            return count
        producer = await self._connected()
        try:
            found = await asyncio.wait_for(producer.partitions_for(topic), self._produce_timeout)
        except (KafkaError, TimeoutError) as exc:
            log.warning("no metadata for topic %s: %r", topic, exc)
            raise BrokerUnavailable(f"no partitions known for topic {topic!r}") from exc
        if not found:
            raise BrokerUnavailable(f"no partitions known for topic {topic!r}")
        self._partitions[topic] = count = len(found)
        return count

    async def send_all(self, topic: str, messages: Sequence[tuple[int, bytes]]) -> None:
        """Send (partition, value) messages and wait until the broker acked every one."""
        if not messages:
            return
        producer = await self._connected()

        async def produce() -> None:
            futures = [await producer.send(topic, value=value, partition=partition)
                       for partition, value in messages]
            await asyncio.gather(*futures)

        try:
            await asyncio.wait_for(produce(), self._produce_timeout)
        except (KafkaError, TimeoutError) as exc:
            log.warning("produce to %s failed: %r", topic, exc)
            message = f"broker did not acknowledge within {self._produce_timeout:g}s"
            raise BrokerUnavailable(message) from exc

    async def ready(self) -> bool:
        """Broker reachable: a metadata fetch answers within the ready timeout."""
        try:
            producer = await self._connected()
            await asyncio.wait_for(producer.client.fetch_all_metadata(), self._ready_timeout)
        except (BrokerUnavailable, KafkaError, OSError, TimeoutError):
            return False
        return True

    async def stop(self) -> None:
        self._partitions.clear()
        producer, self._producer = self._producer, None
        if producer is not None:
            await _quietly_stop(producer)


async def _quietly_stop(producer: AIOKafkaProducer) -> None:
    try:
        await producer.stop()
    except (KafkaError, OSError) as exc:  # stopping a half-started producer may fail
        log.debug("producer stop failed: %r", exc)
