"""Faust is patched for Tansu only, and only as far as Tansu still needs it.

The decision (streams.broker.adapt_faust_to_broker) follows what the broker says about
itself. The patch is process-wide, so every "is Faust patched?" check runs in a fresh
process. No Apache Kafka runs here: its side of the decision is checked on the answers
Kafka gives (a base64 UUID cluster id, a long list of broker configs).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from streams.broker import (
    TANSU_CLUSTER_ID,
    BrokerIdentity,
    EmbeddedBroker,
    TopicSpec,
    create_topics,
    identify_broker,
    log_end_offsets,
)
from tests.streams.test_faust_smoke import EXPECTED_COUNTS

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 120.0  # a guard against hangs only


def run_python(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=TIMEOUT, check=False,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


async def test_tansu_identifies_itself_by_cluster_id_and_empty_broker_configs(
        broker: EmbeddedBroker) -> None:
    found = await identify_broker(broker.bootstrap)
    assert found == BrokerIdentity(TANSU_CLUSTER_ID, 0)
    assert found.is_tansu


async def test_a_tansu_with_its_own_cluster_id_is_still_recognised() -> None:
    with EmbeddedBroker(cluster_id="Qm0Mr5hCQVyBfWtXV8P1Zw") as renamed:
        found = await identify_broker(renamed.bootstrap)
    assert found == BrokerIdentity("Qm0Mr5hCQVyBfWtXV8P1Zw", 0)
    assert found.is_tansu


@pytest.mark.parametrize(("identity", "tansu"), [
    (BrokerIdentity("MkU3OEVBNTcwNTJENDM2Qk", 187), False),  # Apache Kafka (KRaft)
    (BrokerIdentity("MkU3OEVBNTcwNTJENDM2Qk", None), False),  # Kafka refusing DescribeConfigs
    (BrokerIdentity(TANSU_CLUSTER_ID, 3), True),              # a later Tansu listing a few
    (BrokerIdentity("mine", 0), True),
    (BrokerIdentity(None, None, embedded=True), True),
])
def test_the_decision_rule(identity: BrokerIdentity, tansu: bool) -> None:
    assert identity.is_tansu is tansu


def test_the_decision_follows_the_broker(broker: EmbeddedBroker, tmp_path: Path) -> None:
    """A worker process pointed at Tansu patches Faust; one whose broker answers as Kafka
    does builds the app (streams.app.create_app) on Faust's classes exactly as shipped."""
    check = ("from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread as T\n"
             "from streams.broker import faust_is_patched\n")
    on_tansu = run_python(
        check + f"from streams.broker import adapt_faust_to_broker\n"
        f"found = adapt_faust_to_broker({broker.bootstrap!r})\n"
        "print(found.is_tansu, faust_is_patched(), T._highwaters.__module__)")
    assert on_tansu == "True True streams.broker"
    embedded = run_python(
        check + "from streams.broker import EmbeddedBroker, adapt_faust_to_broker\n"
        "with EmbeddedBroker(cluster_id='x') as b:\n"
        "    found = adapt_faust_to_broker(b.bootstrap)\n"
        "print(found.embedded, faust_is_patched())")
    assert embedded == "True True"
    on_kafka = run_python(
        check + "import streams.broker as sb\n"
        "from pathlib import Path\n"
        "from attribution.defaults import channel_rules, load_config\n"
        "from streams.app import create_app\n"
        "from streams.settings import stream_settings\n"
        "async def kafka(_bootstrap):\n"
        "    return sb.BrokerIdentity('MkU3OEVBNTcwNTJENDM2Qk', 187)\n"
        "sb.identify_broker = kafka  # Kafka's answers; no Kafka runs here\n"
        "config = load_config()\n"
        f"settings = stream_settings({{}}, state_dir={str(tmp_path / 'state')!r}, "
        "standby_replicas=1)\n"
        "app = create_app(settings, config, channel_rules(config), 'kafka-1:9092', "
        f"Path({str(tmp_path / 'warehouse')!r}))\n"
        "print(faust_is_patched(), T._highwaters.__module__, "
        "app.conf.table_standby_replicas)")
    # ([stream] standby_replicas reaches Faust too.)
    assert on_kafka == "False faust.transport.drivers.aiokafka 1"


async def test_tansu_0_6_still_answers_list_offsets_from_the_last_batch_start(
        broker: EmbeddedBroker, unique_name: str) -> None:
    """Why the recovery patch stays. If a Tansu upgrade makes this fail, ListOffsets is
    fixed: drop the _highwaters part of patch_faust_for_tansu."""
    topic = f"{unique_name}-batch"
    await create_topics(broker.bootstrap, [TopicSpec(topic, 1)])
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=50)
    await producer.start()
    try:
        for _ in range(10):
            await producer.send(topic, b"x", partition=0)  # one 10-record batch
        await producer.flush()
    finally:
        await producer.stop()
    partition = TopicPartition(topic, 0)
    consumer = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap)
    await consumer.start()
    try:
        reported = await consumer.end_offsets([partition])
    finally:
        await consumer.stop()
    assert reported[partition] == 1  # the batch's base offset + 1; Kafka would say 10
    assert await log_end_offsets(broker.bootstrap, [partition]) == {partition: 10}


def recovered(broker: EmbeddedBroker, name: str, mode: str) -> dict[str, int]:
    done = subprocess.run(
        [sys.executable, "-m", "tests.streams.faust_recovery_probe", broker.url, name, mode],
        cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    counts: dict[str, int] = orjson.loads(done.stdout.strip().splitlines()[-1])
    return counts


def test_which_patches_tansu_still_needs(broker: EmbeddedBroker, unique_name: str) -> None:
    """Stock Faust on Tansu 0.6 loses the tail of a changelog batch on recovery; with the
    recovery patch alone (Faust's own 1500 ms fetch wait) the table comes back whole: the
    shorter fetch wait is only for latency."""
    unpatched = recovered(broker, f"{unique_name}-none", "none")
    assert unpatched != EXPECTED_COUNTS
    assert unpatched.get("acct-b", 0) < EXPECTED_COUNTS["acct-b"]  # its tail (or all) lost
    assert recovered(broker, f"{unique_name}-recovery", "recovery") == EXPECTED_COUNTS
    assert recovered(broker, f"{unique_name}-all", "all") == EXPECTED_COUNTS


def test_identify_broker_runs_under_a_running_loop(broker: EmbeddedBroker) -> None:
    async def inside() -> bool:
        from streams.broker import _run_blocking
        found = _run_blocking(identify_broker(broker.bootstrap))
        return found.is_tansu

    assert asyncio.run(inside())
