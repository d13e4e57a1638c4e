"""The official server-side SDKs' retry behaviour against the collector's answers, for real:
segment-analytics-python and rudder-sdk-python post to a collector on the real broker, and
the test counts what the collector was asked and what reached the topic.

Retryable and retried until stored, once: broker or topic unavailable (503 with
Retry-After), rate limited (429 with Retry-After). Not retried (a retry would change
nothing or store twice): an invalid event in a batch (200, listed as rejected), bad JSON
in one event (200, that event rejected), a body over the limit (400), an unknown write key
(401)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from streams.broker import EmbeddedBroker, TopicSpec, create_topics
from streams.collector import RunningCollector
from tests.streams import test_collector as base
from tests.streams.test_collector import PARTITIONS, WRITE_KEY, MakeCollector, all_events, produced

topic, make_collector = base.topic, base.make_collector

pytestmark = pytest.mark.asyncio(loop_scope="session")

BOUND = 60.0  # seconds: for a loaded machine, not an expectation


class Sdk:
    """One SDK client and what it reported."""

    def __init__(self, kind: str, collector: RunningCollector, write_key: str = WRITE_KEY,
                 retries: int = 3) -> None:
        self.errors: list[Any] = []
        self.kind = kind

        def on_error(error: Any, _batch: Any) -> None:
            self.errors.append(error)

        if kind == "segment":
            segment = pytest.importorskip("segment.analytics")
            self.client = segment.Client(write_key=write_key, host=collector.url,
                                         max_retries=retries, upload_interval=0.05,
                                         on_error=on_error)
        else:
            rudder = pytest.importorskip("rudderstack.analytics")
            self.client = rudder.Client(write_key=write_key, host=collector.url,
                                        max_retries=retries, upload_interval=0.05,
                                        on_error=on_error)

    def send(self, calls: Callable[[Any], None]) -> None:
        calls(self.client)
        self.client.flush()
        self.client.shutdown()

    @property
    def statuses(self) -> list[int | None]:
        return [getattr(e, "status", None) for e in self.errors]


def requests(collector: RunningCollector) -> dict[int, int]:
    return dict(collector.state.stats.requests)


async def landed(broker: EmbeddedBroker, topic_name: str, prefix: str) -> list[str]:
    return sorted(str(e["messageId"]) for e in all_events(await produced(broker.bootstrap,
                                                                         topic_name))
                  if str(e.get("messageId", "")).startswith(prefix))


def track(prefix: str, index: int, **properties: Any) -> Callable[[Any], None]:
    def call(client: Any) -> None:
        client.track(user_id=f"{prefix}-user", event="Product Viewed",
                     message_id=f"{prefix}-{index}", properties={"n": index, **properties})
    return call


def several(*calls: Callable[[Any], None]) -> Callable[[Any], None]:
    def call(client: Any) -> None:
        for one in calls:
            one(client)
    return call


SDKS = ["segment", "rudder"]


# --- not retried ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", SDKS)
async def test_an_invalid_event_in_a_batch_is_not_retried(
        make_collector: MakeCollector, broker: EmbeddedBroker, topic: str, kind: str) -> None:
    collector = await make_collector()
    prefix = uuid.uuid4().hex[:8]
    sdk = Sdk(kind, collector)
    await asyncio.to_thread(sdk.send, several(track(prefix, 0), track(prefix, 1, revenue=-5),
                                              track(prefix, 2)))
    assert sdk.errors == []
    assert requests(collector) == {200: 1}
    assert sum(collector.state.stats.rejected.values()) == 1
    assert await landed(broker, topic, prefix) == [f"{prefix}-0", f"{prefix}-2"]


@pytest.mark.parametrize("kind", SDKS)
async def test_nan_from_python_rejects_that_event_only_and_is_not_retried(
        make_collector: MakeCollector, broker: EmbeddedBroker, topic: str, kind: str) -> None:
    """json.dumps writes float('nan') as NaN, which is not JSON: before, the whole batch
    was 400 (dropped by the SDK); now only the event that holds it is rejected."""
    collector = await make_collector()
    prefix = uuid.uuid4().hex[:8]
    sdk = Sdk(kind, collector)
    await asyncio.to_thread(sdk.send, several(track(prefix, 0),
                                              track(prefix, 1, score=float("nan")),
                                              track(prefix, 2)))
    assert sdk.errors == []
    assert requests(collector) == {200: 1}
    assert await landed(broker, topic, prefix) == [f"{prefix}-0", f"{prefix}-2"]


def nested(depth: int) -> Any:
    value: Any = "deep"
    for _ in range(depth):
        value = {"k": value}
    return value


@pytest.mark.parametrize("kind", SDKS)
async def test_a_poison_event_is_rejected_not_retried_and_its_neighbours_stored(
        make_collector: MakeCollector, broker: EmbeddedBroker, topic: str, kind: str) -> None:
    """A property nested 300 levels (the SDK writes it fine): was 500, which the SDKs retry
    as a server error, every time, and the good events of the batch were never stored."""
    collector = await make_collector()
    prefix = uuid.uuid4().hex[:8]
    sdk = Sdk(kind, collector)
    await asyncio.to_thread(sdk.send, several(track(prefix, 0), track(prefix, 1,
                                                                      tree=nested(300)),
                                              track(prefix, 2)))
    assert sdk.errors == []
    assert requests(collector) == {200: 1}
    assert await landed(broker, topic, prefix) == [f"{prefix}-0", f"{prefix}-2"]


@pytest.mark.parametrize("kind", SDKS)
async def test_a_body_over_the_limit_is_400_and_not_retried(
        make_collector: MakeCollector, broker: EmbeddedBroker, topic: str, kind: str) -> None:
    collector = await make_collector(max_batch_bytes=2048)
    prefix = uuid.uuid4().hex[:8]
    sdk = Sdk(kind, collector)
    await asyncio.to_thread(sdk.send, several(*(track(prefix, i, pad="x" * 600)
                                                for i in range(6))))
    assert requests(collector) == {400: 1}  # one batch, asked once
    assert sdk.statuses == [400] and sdk.errors[0].code == "too_large"
    assert await landed(broker, topic, prefix) == []


@pytest.mark.parametrize("kind", SDKS)
async def test_an_unknown_write_key_is_401_and_not_retried(
        make_collector: MakeCollector, broker: EmbeddedBroker, topic: str, kind: str) -> None:
    collector = await make_collector()
    prefix = uuid.uuid4().hex[:8]
    sdk = Sdk(kind, collector, write_key="not-a-key")
    await asyncio.to_thread(sdk.send, track(prefix, 0))
    assert requests(collector) == {401: 1}
    assert sdk.statuses == [401] and sdk.errors[0].code == "unauthorized"
    assert await landed(broker, topic, prefix) == []


# --- retried until stored, once -----------------------------------------------------------------


@pytest.mark.parametrize("kind", SDKS)
async def test_an_unavailable_topic_is_503_retried_until_stored_once(
        make_collector: MakeCollector, broker: EmbeddedBroker, kind: str) -> None:
    """The topic is missing (a broker that lost it, not created yet): 503 with Retry-After
    until it is created from its declaration, then the SDK's retry stores every event once."""
    late_topic = f"collector-late-{uuid.uuid4().hex[:10]}"
    collector = await make_collector(topic=late_topic, partitions=PARTITIONS,
                                     retry_after_seconds=1, topic_check_interval="0.2s")
    prefix = uuid.uuid4().hex[:8]
    sdk = Sdk(kind, collector, retries=10)
    sending = asyncio.ensure_future(asyncio.to_thread(
        sdk.send, several(*(track(prefix, i) for i in range(5)))))
    deadline = time.monotonic() + BOUND
    while requests(collector).get(503, 0) < 2:  # refused, and asked again
        assert time.monotonic() < deadline and not sending.done()
        await asyncio.sleep(0.05)
    await create_topics(broker.bootstrap, [TopicSpec(late_topic, PARTITIONS)])
    await asyncio.wait_for(sending, BOUND)
    assert sdk.errors == []
    assert requests(collector)[200] == 1
    assert await landed(broker, late_topic, prefix) == [f"{prefix}-{i}" for i in range(5)]


@pytest.mark.parametrize("kind", SDKS)
async def test_a_rate_limited_batch_is_retried_after_retry_after_and_stored_once(
        make_collector: MakeCollector, broker: EmbeddedBroker, topic: str, kind: str) -> None:
    collector = await make_collector(rate_limit={"events_per_second": 2, "burst": 2})
    prefix = uuid.uuid4().hex[:8]
    sdk = Sdk(kind, collector, retries=10)
    started = time.monotonic()

    def two_batches(client: Any) -> None:
        track(prefix, 0)(client)
        track(prefix, 1)(client)
        client.flush()  # one batch, the whole burst
        track(prefix, 2)(client)
        track(prefix, 3)(client)

    await asyncio.wait_for(asyncio.to_thread(sdk.send, two_batches), BOUND)
    assert sdk.errors == []
    answered = requests(collector)
    assert answered[429] >= 1 and answered[200] == 2
    assert time.monotonic() - started >= 0.9  # it waited for tokens, as told
    assert await landed(broker, topic, prefix) == [f"{prefix}-{i}" for i in range(4)]
