"""The stream end to end on a real broker: worker processes, Faust, changelogs, Parquet.

Each test gets its own topics, consumer group and warehouse on the session's Tansu.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer

from attribution.batch import attribute_events
from attribution.defaults import channel_rules, load_config
from streams.broker import EmbeddedBroker
from streams.state.changelog import decode_record
from tests.streams.pipeline import CreditKey, Pipeline
from tests.test_batch import B2C_JOURNEY, group, page, track
from traffic.generate import TrafficSpec, generate_events

CONFIG = load_config()
RULES = channel_rules(CONFIG)


@pytest.fixture
def pipeline(broker: EmbeddedBroker, unique_name: str, tmp_path: Path) -> Iterator[Pipeline]:
    running = Pipeline(broker.bootstrap, unique_name, tmp_path)
    yield running
    running.close()


def batch_credits(events: list[dict[str, Any]]) -> dict[CreditKey, float]:
    result = attribute_events(((str(i), e) for i, e in enumerate(events)), CONFIG, RULES)
    return {(c.conversion_id, c.model, c.touch_event_id): round(c.credit, 9)
            for c in result.credits}


def traffic(seed: int = 5) -> list[dict[str, Any]]:
    return list(generate_events(TrafficSpec(seed=seed, b2c_visitors=250, b2b_accounts=6)))


def test_stream_credits_equal_replay_and_duplicates_change_nothing(pipeline: Pipeline) -> None:
    events = traffic()
    pipeline.workers.start(1)
    pipeline.send(events)
    pipeline.wait()
    expected = batch_credits(events)
    assert len(expected) > 300
    assert pipeline.credits() == expected
    before = pipeline.query("SELECT count(*), round(sum(credit), 6) FROM credits")
    conversions = pipeline.query("SELECT count(*) FROM conversions")
    # At-least-once: the whole input again (every messageId duplicated).
    pipeline.send(events)
    pipeline.wait()
    assert pipeline.credits() == expected
    assert pipeline.query("SELECT count(*), round(sum(credit), 6) FROM credits") == before
    assert pipeline.query("SELECT count(*) FROM conversions") == conversions


def test_stage_messages_over_the_size_limit_are_split_and_change_nothing(
        broker: EmbeddedBroker, unique_name: str, tmp_path: Path) -> None:
    """Kafka refuses messages over its size limit (a 1.4 MB landing envelope once stopped a
    worker): every stage splits what it sends. With a 2 KB limit nearly every message is
    split, and the warehouse must still equal replay."""
    small = Pipeline(broker.bootstrap, unique_name, tmp_path,
                     stream_overrides={"max_message_bytes": 2048})
    try:
        events = traffic(seed=8)
        small.workers.start(1)
        small.send(events)
        small.wait()
        assert small.credits() == batch_credits(events)
        assert "MessageSizeTooLarge" not in small.log_text()
        sizes = asyncio.run(envelope_sizes(
            broker.bootstrap, [small.settings.topic(t) for t in ("journeys", "landing")]))
        assert len(sizes) > 50
        assert all(size <= 2048 or items == 1 for size, items in sizes)  # split, not dropped
    finally:
        small.close()


def _items(body: dict[str, Any]) -> int:
    """Items of a columnar body: landing rows, or journey deltas (one per journey key)."""
    if "rows" in body:
        return sum(len(next(iter(cols.values()), [])) for cols in body["rows"].values())
    keys = {key for section in ("touches", "conversions", "retracted")
            for key in body.get(section, {}).get("key", [])}
    return len(keys)


async def envelope_sizes(bootstrap: str, topics: list[str]) -> list[tuple[int, int]]:
    """(bytes, items) of every envelope on the topics."""
    consumer = AIOKafkaConsumer(*topics, bootstrap_servers=bootstrap,
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    try:
        sizes: list[tuple[int, int]] = []
        while batches := await consumer.getmany(timeout_ms=2000):
            for records in batches.values():
                for record in records:
                    body = orjson.loads(record.value or b"{}")
                    sizes.append((len(record.value or b""), _items(body)))
        return sizes
    finally:
        await consumer.stop()


def test_pre_identification_touches_and_second_contact(pipeline: Pipeline) -> None:
    day = 1440
    b2b = [
        page("a-p", 0, "anon-a", "https://saas.example/?utm_source=linkedin&utm_medium=paid_social"),
        page("b-p", 5 * day, "anon-b", "https://saas.example/", "https://www.google.com/"),
        {"type": "identify", "messageId": "a-i", "anonymousId": "anon-a", "userId": "alice",
         "timestamp": "2026-06-08T09:00:00Z"},
        {"type": "identify", "messageId": "b-i", "anonymousId": "anon-b", "userId": "bob",
         "timestamp": "2026-06-08T09:00:00Z"},
        group("a-g", 8 * day, "alice", "acme"),
        group("b-g", 8 * day, "bob", "acme"),
        track("won", 30 * day, "Opportunity Won", {"opportunity_id": "O-1", "amount": 1000},
              user="alice", group="acme"),
    ]
    pipeline.workers.start(1)
    pipeline.send(B2C_JOURNEY + b2b)
    pipeline.wait()
    rows = pipeline.query("SELECT conversion_id, channel, credit, journey_key FROM credits "
                          "WHERE model = 'linear' ORDER BY conversion_id, channel")
    assert [(r[0], r[1], round(r[2], 6), r[3]) for r in rows] == [
        # bob's anonymous organic visit counts for alice's deal on the acme account
        ("opportunity_won:O-1", "Organic Search", 0.5, "account:acme"),
        ("opportunity_won:O-1", "Paid Social", 0.5, "account:acme"),
        # touches made on two devices before identifying count for the purchase
        ("purchase:A-1", "Email", round(1 / 3, 6), "person:u-1"),
        ("purchase:A-1", "Organic Search", round(1 / 3, 6), "person:u-1"),
        ("purchase:A-1", "Paid Social", round(1 / 3, 6), "person:u-1"),
    ]


def test_late_touch_re_credits_with_a_new_version(pipeline: Pipeline) -> None:
    pipeline.workers.start(1)
    pipeline.send([page("p1", 0, "v1", referrer="https://www.google.com/"),
                   track("o1", 60, "Order Completed", {"order_id": "L-1", "revenue": 50},
                         anon="v1")])
    pipeline.wait()
    # A touch made before the order arrives after it (within the 1-day lateness).
    pipeline.send([page("p2", 30, "v1",
                        "https://shop.example/?utm_source=tiktok&utm_medium=paid_social")])
    pipeline.wait()
    history = pipeline.query("SELECT version, reason, channel FROM credit_history "
                             "WHERE model = 'last_touch' ORDER BY version")
    assert history == [(1, "initial", "Organic Search"), (2, "late_touch", "Paid Social")]
    assert pipeline.query("SELECT version, channel FROM credits WHERE model = 'last_touch'") == [
        (2, "Paid Social")]


def test_invalid_events_are_dead_lettered_and_good_ones_land(pipeline: Pipeline) -> None:
    bad: list[dict[str, Any]] = [
        {"type": "page", "messageId": "no-ids", "timestamp": "2026-06-01T00:00:00Z"},
        {"type": "track", "messageId": "neg", "anonymousId": "v9", "event": "Order Completed",
         "properties": {"revenue": -3}, "timestamp": "2026-06-01T00:00:00Z"},
    ]
    pipeline.workers.start(1)
    pipeline.send(bad + B2C_JOURNEY)
    pipeline.wait()
    reasons = [r[0] for r in pipeline.query("SELECT reason FROM rejected ORDER BY reason")]
    assert len(reasons) == 2
    assert any("anonymousId or userId is required" in r for r in reasons)
    assert any("revenue is negative" in r for r in reasons)
    assert pipeline.query("SELECT count(*) FROM conversions") == [(1,)]


def test_worker_killed_mid_stream_ends_with_the_same_warehouse(pipeline: Pipeline) -> None:
    events = traffic(seed=11)
    pipeline.workers.start(1)
    half = len(events) // 2
    pipeline.send(events[:half])
    pipeline.wait()
    pipeline.send(events[half:])
    pipeline.kill()  # SIGKILL while the second half is in flight
    pipeline.workers.start(1)
    pipeline.wait()
    assert pipeline.credits() == batch_credits(events)
    dupes = pipeline.query("SELECT count(*) - count(DISTINCT (conversion_id, model, "
                           "touch_event_id)) FROM credits")
    assert dupes == [(0,)]


def test_two_workers_split_partitions_and_agree_with_one(pipeline: Pipeline) -> None:
    events = traffic(seed=13)
    pipeline.workers.start(2)
    pipeline.send(events)
    pipeline.wait()
    assert pipeline.credits() == batch_credits(events)
    # Each worker logs its latest assignment; together they cover every events partition,
    # and neither holds them all.
    latest: dict[str, set[str]] = {}
    for line in pipeline.log_text().splitlines():
        if "assigned partitions:" in line:
            pid = line.split("]")[1].strip(" [")
            latest[pid] = {p for p in line.split("assigned partitions:")[1].strip().split(", ")
                           if p.startswith(f"{pipeline.name}.events:")}
    assert len(latest) == 2, latest
    owned = list(latest.values())
    assert owned[0] and owned[1] and not owned[0] & owned[1]
    assert len(owned[0] | owned[1]) == pipeline.partitions


def test_idle_journeys_are_evicted_with_changelog_tombstones(
        broker: EmbeddedBroker, unique_name: str, tmp_path: Path) -> None:
    pipeline = Pipeline(broker.bootstrap, unique_name, tmp_path, partitions=1,
                        extra_config="")
    pipeline.settings = pipeline.settings.model_copy(update={"eviction_interval": timedelta(0)})
    config = pipeline.root / "config.toml"
    config.write_text(config.read_text() + 'eviction_interval = "0s"\n')
    try:
        pipeline.workers.start(1)
        old = [page("old", 0, "gone-visitor", referrer="https://www.bing.com/")]
        # 400 days later (beyond every window plus lateness) another visitor shows up.
        later = (datetime(2026, 6, 1, 9, tzinfo=UTC) + timedelta(days=400)).isoformat()
        pipeline.send(old)
        pipeline.wait()
        pipeline.send([{"type": "page", "messageId": "new", "anonymousId": "new-visitor",
                        "timestamp": later.replace("+00:00", "Z"),
                        "receivedAt": later.replace("+00:00", "Z")}])
        pipeline.wait()
        tombstones = asyncio.run(_tombstones(broker.bootstrap, f"{unique_name}-journeys-changelog"))
        assert "person:gone-visitor" in tombstones
        assert "person:new-visitor" not in tombstones
    finally:
        pipeline.close()


async def _tombstones(bootstrap: str, topic: str) -> set[str]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                enable_auto_commit=False)
    await consumer.start()
    try:
        found: set[str] = set()
        batches = await consumer.getmany(timeout_ms=2000)
        for records in batches.values():
            for record in records:  # one record per message: every key it changed
                found.update(key for key, _, value in decode_record(record.value or b"")
                             if value is None)
        return found
    finally:
        await consumer.stop()
