"""Topics exist as declared or nothing is acknowledged: on the real broker.

What Tansu and aiokafka do (the finding behind streams.topic_guard), that our clients do
not create topics, and the end to end case: the embedded broker restarted empty on the
same port under a running collector and worker."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.client import AIOKafkaClient
from aiokafka.errors import KafkaError
from aiokafka.protocol.metadata import MetadataRequest

from streams.broker import EmbeddedBroker, TopicSpec, create_topics
from streams.collector import CollectorSettings, RunningCollector, producer_for, start
from streams.topic_guard import (
    TopicProblem,
    check_topics,
    forbid_topic_auto_creation,
    partition_counts,
    problems,
)
from streams.topics import topic_specs
from streams.worker import prepare
from tests.streams.pipeline import Pipeline
from tests.streams.test_collector import auth, post

pytestmark = pytest.mark.asyncio(loop_scope="session")

PARTITIONS = 2
BOUND = 60.0  # seconds: bounds for a loaded machine, not expectations


async def counts(bootstrap: str, topics: list[str]) -> dict[str, int | None]:
    client = AIOKafkaClient(bootstrap_servers=bootstrap)
    await client.bootstrap()
    try:
        return await partition_counts(client, topics)
    finally:
        await client.close()


async def metadata_with_auto_creation(bootstrap: str, topic: str, allow: bool) -> None:
    client = AIOKafkaClient(bootstrap_servers=bootstrap)
    await client.bootstrap()
    try:
        node = client.get_random_node()
        await client.send(node, MetadataRequest([topic], allow_auto_topic_creation=allow))
    finally:
        await client.close()


# --- the finding ---------------------------------------------------------------------------


async def test_tansu_creates_a_topic_on_a_metadata_request_that_allows_it(
        broker: EmbeddedBroker, unique_name: str) -> None:
    """What every aiokafka client asks by default: a missing topic comes back with 4
    partitions. Asked without the flag, Tansu leaves it missing."""
    created, left = f"{unique_name}-auto", f"{unique_name}-not"
    await metadata_with_auto_creation(broker.bootstrap, left, allow=False)
    await metadata_with_auto_creation(broker.bootstrap, created, allow=True)
    assert await counts(broker.bootstrap, [created, left]) == {created: 4, left: None}


async def test_our_clients_never_create_a_topic(broker: EmbeddedBroker, unique_name: str
                                                ) -> None:
    """A producer of this process asking for a missing topic (as the collector's and
    Faust's do after a broker restart) fails and leaves it missing."""
    forbid_topic_auto_creation()
    missing = f"{unique_name}-missing"
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, request_timeout_ms=1000)
    await producer.start()
    try:
        with pytest.raises((KafkaError, TimeoutError)):
            await asyncio.wait_for(producer.send_and_wait(missing, b"x", partition=0), 5)
    finally:
        await producer.stop()
    assert await counts(broker.bootstrap, [missing]) == {missing: None}


async def test_problems_name_missing_and_repartitioned_topics(
        broker: EmbeddedBroker, unique_name: str) -> None:
    good, wrong, missing = (f"{unique_name}-{n}" for n in ("good", "wrong", "missing"))
    await create_topics(broker.bootstrap, [TopicSpec(good, 3), TopicSpec(wrong, 4)])
    found = await check_topics(broker.bootstrap, {good: 3, wrong: 1, missing: 2})
    assert found == [TopicProblem(wrong, 1, 4), TopicProblem(missing, 2, None)]
    assert str(found[0]) == f"topic {wrong!r} has 4 partition(s), declared 1"
    assert "does not exist" in str(found[1])
    assert problems({good: 3}, {good: 3}) == []


# --- a worker against a wrongly partitioned identity topic ---------------------------------


async def test_a_worker_refuses_an_identity_topic_with_the_wrong_partition_count(
        broker: EmbeddedBroker, unique_name: str, tmp_path: Path) -> None:
    """The identity graph needs exactly one partition: a worker started against a
    4-partition identity topic (what auto-creation made) exits with the reason."""
    await create_topics(broker.bootstrap, [TopicSpec(f"{unique_name}.identity", 4)])
    config = tmp_path / "config.toml"
    config.write_text(f'[stream]\napp_id = "{unique_name}"\ntopic_prefix = "{unique_name}"\n'
                      'partitions = 2\n')
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "cli.main", "worker", "--broker", broker.bootstrap,
         "--warehouse", str(tmp_path / "warehouse"), "--config", str(config), "--ops-port", "0"],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONUNBUFFERED": "1"}, check=False,
    )
    assert done.returncode != 0
    assert f"topic '{unique_name}.identity' has 4 partition(s), declared 1" in done.stderr
    assert "refusing to run" in done.stderr


# --- the broker restarted empty under a running collector and worker ------------------------


@pytest.fixture
def own_broker() -> Iterator[EmbeddedBroker]:
    """A broker of this test's own: it is restarted empty (the session's is shared)."""
    with EmbeddedBroker() as running:
        yield running


@pytest.fixture
async def guarded(own_broker: EmbeddedBroker, unique_name: str, tmp_path: Path
                  ) -> AsyncIterator[tuple[Pipeline, RunningCollector]]:
    pipeline = await asyncio.to_thread(Pipeline, own_broker.bootstrap, unique_name, tmp_path,
                                       partitions=PARTITIONS)
    settings = CollectorSettings(
        port=0, bootstrap=own_broker.bootstrap, topic=pipeline.settings.topic("events"),
        partitions=PARTITIONS, write_keys={"wk-web": "web"},
        email_secret="guard-email-secret-0123", topic_check_interval="0.3s",
        produce_timeout="2s", ready_timeout="1s", reconnect_backoff="0.1s")
    producer = producer_for(settings)
    await producer.start()
    collector = await start(settings, producer)
    try:
        yield pipeline, collector
    finally:
        await collector.stop()
        await producer.stop()
        pipeline.close()


def batch(anonymous_id: str) -> dict[str, object]:
    return {"batch": [{"type": "page", "anonymousId": anonymous_id,
                       "context": {"page": {"url": "https://shop.example/?utm_source=news"
                                                   "&utm_medium=email"}}}]}


async def readyz(http: aiohttp.ClientSession, url: str) -> tuple[int, dict[str, object]]:
    async with http.get(f"{url}/readyz") as resp:
        return resp.status, await resp.json()


async def test_broker_restarted_empty_under_a_running_collector_and_worker(
        guarded: tuple[Pipeline, RunningCollector], own_broker: EmbeddedBroker,
        caplog: pytest.LogCaptureFixture) -> None:
    pipeline, collector = guarded
    names = [spec.name for spec in topic_specs(pipeline.settings)]
    pipeline.workers.start(1)
    async with aiohttp.ClientSession() as http:
        status, _, body = await post(http, f"{collector.url}/v1/batch", batch("before"),
                                     auth("wk-web"))
        assert (status, body["accepted"]) == (200, 1)
        await asyncio.to_thread(pipeline.wait)
        assert (await readyz(http, collector.url))[0] == 200

        caplog.set_level(logging.ERROR, logger="attribution.topics")
        await asyncio.to_thread(own_broker.stop)
        await asyncio.to_thread(own_broker.start)  # same port, empty

        # Nothing is acknowledged while the topics are gone: 503 with Retry-After, never 200.
        answers = []
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            status, headers, body = await post(http, f"{collector.url}/v1/batch",
                                               batch("during"), auth("wk-web"))
            answers.append(status)
            assert status == 503, body
            assert int(headers["Retry-After"]) >= 1
        assert "does not exist" in body["message"]
        status, ready = await readyz(http, collector.url)
        assert status == 503 and "does not exist" in str(ready["detail"])
        assert collector.state.stats.topics_ready._value.get() == 0
        assert any("topics not as declared" in r.getMessage() for r in caplog.records)

        # The worker notices too, and exits non-zero rather than run on a broker that lost
        # its topics; neither it nor the collector re-created any (no 4-partition identity).
        process = pipeline.workers.processes[0]
        code = await asyncio.to_thread(process.wait, BOUND)
        assert code != 0
        assert "stopping: " in pipeline.log_text() and "does not exist" in pipeline.log_text()
        assert await counts(own_broker.bootstrap, names) == dict.fromkeys(names)

        # Topics created again from their declaration: the collector accepts by itself, a
        # restarted worker lands what the retrying client sends.
        pipeline.workers.processes.clear()
        await asyncio.to_thread(prepare, own_broker.bootstrap, pipeline.settings)
        for _attempt in range(int(BOUND / 0.2)):
            status, _, body = await post(http, f"{collector.url}/v1/batch", batch("during"),
                                         auth("wk-web"))
            if status == 200:
                break
            await asyncio.sleep(0.2)
        assert (status, body["accepted"]) == (200, 1)
        assert (await readyz(http, collector.url))[0] == 200
        pipeline.workers.start(1)
        await asyncio.to_thread(pipeline.wait)
    landed = pipeline.query("SELECT anonymous_id FROM touchpoints ORDER BY anonymous_id")
    assert ("during",) in landed
    assert await counts(own_broker.bootstrap, names) == {
        spec.name: spec.partitions for spec in topic_specs(pipeline.settings)}
