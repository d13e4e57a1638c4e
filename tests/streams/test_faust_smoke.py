"""Faust on the embedded Tansu broker: an agent that reads envelopes into a Table.

Shows the two ways to run a Faust app: in-process in the test's event loop
(``await app.start()`` / ``await app.stop()``) and as a ``faust -A module worker``
subprocess. The broker fixture has already called patch_faust_for_tansu().
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any

import faust
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from streams.broker import EmbeddedBroker, TopicSpec, create_topics
from streams.envelope import EnvelopeError, decode_envelope, encode_envelope

PARTITIONS = 2
WAIT_LIMIT_S = 30.0  # only a guard against hangs; nothing asserts on durations

# Faust settings for tests. Faust joins its group in ~2 s at session timeouts <= 2 s
# (about session/2 + 1 s above that); a worker's assignment is ready when start() returns.
FAUST_TEST_SETTINGS: dict[str, Any] = {
    "store": "memory://",
    "web_enabled": False,
    "broker_session_timeout": 2.0,
    "broker_heartbeat_interval": 0.4,
    "topic_partitions": PARTITIONS,
    "topic_replication_factor": 1,
}


def make_counting_app(app_id: str, broker_url: str) -> tuple[faust.App, Any]:
    """An app whose agent counts events per routing key and emits the running total."""
    datadir = Path(tempfile.gettempdir()) / "attribution-state" / app_id  # not the cwd
    datadir.mkdir(parents=True, exist_ok=True)
    app = faust.App(app_id, broker=broker_url, datadir=str(datadir), **FAUST_TEST_SETTINGS)
    source = app.topic(f"{app_id}-in", value_serializer="raw", key_serializer="raw")
    sink = app.topic(f"{app_id}-out", value_serializer="raw", key_serializer="raw")
    dead_letters = app.topic(f"{app_id}-dlq", value_serializer="raw", key_serializer="raw")
    counts = app.Table("counts", default=int, partitions=PARTITIONS)

    @app.agent(source)
    async def count_events(stream: faust.StreamT[bytes]) -> None:
        async for key, value in stream.items():
            try:
                events = decode_envelope(value)
            except EnvelopeError:
                await dead_letters.send(key=key, value=value)
                continue
            routing_key = key.decode()
            # One write (= one changelog record) per event, not per envelope: the last
            # changelog batch then holds several records, which is what Faust's recovery
            # loses on Tansu without patch_faust_for_tansu().
            for _event in events:
                counts[routing_key] += 1
            total = encode_envelope([{"key": routing_key, "count": counts[routing_key]}])
            await sink.send(key=key, value=total)

    return app, counts


async def declare_app_topics(bootstrap: str, app_id: str) -> None:
    # Source and sink topics must exist first: Tansu would auto-create them with 4
    # partitions and Faust then refuses the table (changelog partition mismatch).
    names = (f"{app_id}-in", f"{app_id}-out", f"{app_id}-dlq")
    await create_topics(bootstrap, [TopicSpec(name, PARTITIONS) for name in names])


async def send_envelopes(bootstrap: str, topic: str, messages: list[tuple[str, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for key, value in messages:
            await producer.send(topic, value, key=key.encode())
        await producer.flush()
    finally:
        await producer.stop()


async def read_topic(bootstrap: str, topic: str, count: int) -> list[tuple[str, bytes]]:
    """The first count (key, value) records of a topic, in partition order."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", fetch_max_wait_ms=100
    )
    await consumer.start()
    records: list[tuple[str, bytes]] = []

    async def _drain() -> None:
        while len(records) < count:
            for batch in (await consumer.getmany(timeout_ms=200)).values():
                records.extend((record.key.decode(), record.value) for record in batch)

    try:
        await asyncio.wait_for(_drain(), WAIT_LIMIT_S)
    finally:
        await consumer.stop()
    return records


def final_counts(outputs: list[tuple[str, bytes]]) -> dict[str, int]:
    """Last running total per key; a key's outputs share one partition, so are in order."""
    totals: dict[str, int] = {}
    for _key, value in outputs:
        (total,) = decode_envelope(value)
        totals[total["key"]] = total["count"]
    return totals


INPUT = [
    ("acct-a", encode_envelope([{"n": n} for n in range(3)])),
    ("acct-b", encode_envelope([{"n": n} for n in range(100)])),
    ("acct-a", encode_envelope([{"n": 3}])),
    ("acct-c", b"not an envelope"),
    ("acct-b", encode_envelope([{"n": 100}, {"n": 101}])),
]
EXPECTED_COUNTS = {"acct-a": 4, "acct-b": 102}


async def test_in_process_agent_fills_table_and_recovers_it_after_restart(
    broker: EmbeddedBroker, unique_name: str
) -> None:
    app_id = unique_name
    await declare_app_topics(broker.bootstrap, app_id)
    await send_envelopes(broker.bootstrap, f"{app_id}-in", INPUT)

    app, counts = make_counting_app(app_id, broker.url)
    await app.start()
    try:
        outputs = await read_topic(broker.bootstrap, f"{app_id}-out", 4)
        assert final_counts(outputs) == EXPECTED_COUNTS
        assert dict(counts.items()) == EXPECTED_COUNTS
        dead = await read_topic(broker.bootstrap, f"{app_id}-dlq", 1)
        assert dead == [("acct-c", b"not an envelope")]
    finally:
        await app.stop()

    # A new instance of the same app rebuilds the in-memory table from its changelog.
    restarted, recovered_counts = make_counting_app(app_id, broker.url)
    await restarted.start()
    try:
        table_manager: Any = restarted.tables  # TableManagerT does not declare .recovery
        await asyncio.wait_for(table_manager.recovery.completed.wait(), WAIT_LIMIT_S)
        assert dict(recovered_counts.items()) == EXPECTED_COUNTS
        # committed offsets: the restarted agent goes on with new input only
        await send_envelopes(broker.bootstrap, f"{app_id}-in", [("acct-a", INPUT[0][1])])
        outputs = await read_topic(broker.bootstrap, f"{app_id}-out", 5)
        assert final_counts(outputs) == {**EXPECTED_COUNTS, "acct-a": 7}
    finally:
        await restarted.stop()


WORKER_MODULE = textwrap.dedent(
    """
    import os

    from streams.broker import patch_faust_for_tansu
    from tests.streams.test_faust_smoke import make_counting_app

    patch_faust_for_tansu()
    app, counts = make_counting_app(os.environ["SMOKE_APP_ID"], os.environ["SMOKE_BROKER_URL"])
    """
)


async def test_agent_runs_as_faust_worker_subprocess(
    broker: EmbeddedBroker, unique_name: str, tmp_path: Path
) -> None:
    app_id = unique_name
    await declare_app_topics(broker.bootstrap, app_id)
    (tmp_path / "smoke_worker_app.py").write_text(WORKER_MODULE)
    repo_root = Path(__file__).resolve().parents[2]
    env = {
        **os.environ,
        "SMOKE_APP_ID": app_id,
        "SMOKE_BROKER_URL": broker.url,
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(repo_root)]),
    }
    log_path = tmp_path / "worker.log"
    with log_path.open("wb") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "faust", "-A", "smoke_worker_app", "worker", "-l", "info"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        await send_envelopes(broker.bootstrap, f"{app_id}-in", INPUT)
        outputs = await read_topic(broker.bootstrap, f"{app_id}-out", 4)
        assert final_counts(outputs) == EXPECTED_COUNTS
        worker.send_signal(signal.SIGTERM)  # Faust's worker shuts down cleanly on SIGTERM
        assert await asyncio.to_thread(worker.wait, WAIT_LIMIT_S) == 0, log_path.read_text()
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
