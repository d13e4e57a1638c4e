"""`attribution status` as a process against the real broker: real lag while the worker is
stopped and traffic flows, zero (and exit 0) once a worker has caught up."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import TopicPartition

from streams.broker import EmbeddedBroker, log_end_offsets
from streams.status import PartitionStatus, StreamStatus, TopicReplication
from streams.topics import topic_specs
from tests.streams.pipeline import Pipeline
from tests.test_batch import B2C_JOURNEY, page

TIMEOUT = 120.0  # a safety bound on the command, not an expectation


@pytest.fixture
def pipeline(broker: EmbeddedBroker, unique_name: str, tmp_path: Path) -> Iterator[Pipeline]:
    # A worker restarted into the same group after the previous one stopped, with records
    # produced meanwhile, occasionally stalls (README: No silent stall); the watchdog and
    # supervision end it as they would in production, within the pipeline's wait bound.
    running = Pipeline(broker.bootstrap, unique_name, tmp_path, partitions=2,
                       stream_overrides={"stall_seconds": 20})
    yield running
    running.close()


def status(pipeline: Pipeline, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli.main", "status", "--broker", pipeline.bootstrap,
         "--config", str(pipeline.root / "config.toml"), "--warehouse",
         str(pipeline.warehouse), *args],
        capture_output=True, text=True, timeout=TIMEOUT, check=False)


def status_json(pipeline: Pipeline, *args: str) -> tuple[int, dict[str, Any]]:
    done = status(pipeline, "--json", *args)
    return done.returncode, orjson.loads(done.stdout)


def events_end(pipeline: Pipeline) -> int:
    topic = pipeline.settings.topic("events")
    ends = asyncio.run(log_end_offsets(pipeline.bootstrap, [
        TopicPartition(topic, p) for p in range(pipeline.partitions)]))
    return sum(ends.values())


def lag_by_topic(report: dict[str, Any]) -> dict[str, int]:
    lags: dict[str, int] = {}
    for row in report["partitions"]:
        lags[row["topic"]] = lags.get(row["topic"], 0) + row["lag"]
    return lags


def test_status_shows_real_lag_while_the_worker_is_stopped_then_zero(
        pipeline: Pipeline) -> None:
    pipeline.workers.start(1)
    pipeline.send(B2C_JOURNEY)
    pipeline.wait()
    code, report = status_json(pipeline, "--max-lag", "0")
    assert code == 0, report
    assert report["lag"] == 0 and report["last_landed"] is not None
    assert len(report["workers"]) == 1  # the running worker's endpoint answers

    pipeline.workers.stop()  # SIGTERM: commits, then no consumer while traffic flows
    before = events_end(pipeline)
    pipeline.send([page(f"s-{i}", i, f"visitor-{i}") for i in range(40)])
    produced = events_end(pipeline) - before
    assert produced >= 2  # both partitions got an envelope

    code, report = status_json(pipeline, "--max-lag", str(produced - 1))
    assert code == 1
    assert lag_by_topic(report)[pipeline.settings.topic("events")] == produced
    assert report["lag"] == produced and report["workers"] == []
    assert report["problems"] == [f"lag {produced} > {produced - 1}"]
    # The same answer for a human: a table, and the exit code for cron.
    table = status(pipeline, "--max-lag", str(produced - 1))
    assert table.returncode == 1
    assert f"{pipeline.settings.topic('events')}" in table.stdout
    assert f"lag {produced} > {produced - 1}" in table.stdout
    # Under the threshold: reported, not alerted.
    assert status_json(pipeline, "--max-lag", str(produced))[0] == 0

    pipeline.workers.start(1)
    pipeline.workers.supervise()
    pipeline.wait()
    code, report = status_json(pipeline, "--max-lag", "0")
    assert code == 0 and report["lag"] == 0 and report["problems"] == []


def test_dead_letters_alert_past_their_threshold(pipeline: Pipeline) -> None:
    pipeline.workers.start(1)
    no_ids = {"type": "page", "messageId": "no-ids", "timestamp": "2026-06-01T00:00:00Z"}
    pipeline.send([no_ids, *B2C_JOURNEY])
    pipeline.wait()
    code, report = status_json(pipeline, "--max-dead-letters", "0")
    assert code == 1 and report["dead_letters"] == 1
    assert report["problems"] == ["dead letters 1 > 0"]
    assert status_json(pipeline, "--max-dead-letters", "1")[0] == 0


def test_status_warns_when_topics_are_replicated_less_than_configured(
        broker: EmbeddedBroker, unique_name: str, tmp_path: Path) -> None:
    """Configured for 3 replicas, but Tansu is one broker: it lists itself three times as
    the replicas, and status counts distinct brokers, so it alerts for every topic."""
    three = Pipeline(broker.bootstrap, unique_name, tmp_path, partitions=2,
                     stream_overrides={"replication_factor": 3})
    try:
        code, report = status_json(three)
        # every topic the pipeline creates: data topics and the stages' state changelogs
        names = [spec.name for spec in topic_specs(three.settings)]
        assert code == 1
        assert sorted(report["problems"]) == sorted(
            f"{name}: replication 1 < configured 3" for name in names)
        assert {r["topic"]: r["replicas"] for r in report["replication"]} == dict.fromkeys(
            names, 1)
        assert "configured 3, lowest topic 1" in status(three).stdout
    finally:
        three.close()


def test_status_of_an_unreachable_broker_exits_2(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", "status", "--broker", "127.0.0.1:9"],
        capture_output=True, text=True, timeout=TIMEOUT, check=False)
    assert done.returncode == 2
    assert "cannot read the stream's status" in done.stderr


def test_problems_compare_against_thresholds() -> None:
    rows = [PartitionStatus("e", 0, 10, 4), PartitionStatus("e", 1, 5, None),
            PartitionStatus("dead", 0, 3, None, consumed=False)]
    found = StreamStatus("g", rows, last_landed=datetime.now(UTC))
    assert (found.lag, found.dead_letters) == (6 + 5, 3)
    assert found.problems(11, 3) == []
    assert found.problems(10, 2) == ["lag 11 > 10", "dead letters 3 > 2"]
    assert found.problems(10, None) == ["lag 11 > 10"]


def test_replication_problems_count_distinct_replicas_and_in_sync_ones() -> None:
    rows = [PartitionStatus("e", 0, 0, 0)]
    healthy = TopicReplication("e", 3, 3)
    lagging_isr = TopicReplication("j", 3, 1)
    single = TopicReplication("c-changelog", 1, 1)
    found = StreamStatus("g", rows, replication=[healthy, lagging_isr, single],
                         replication_factor=3, min_insync_replicas=2)
    assert found.problems(0, None) == ["j: in-sync replicas 1 < min.insync.replicas 2",
                                       "c-changelog: replication 1 < configured 3"]
    assert StreamStatus("g", rows, replication=[healthy, single]).problems(0, None) == []
