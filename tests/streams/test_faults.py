"""Faults against the real broker and real worker processes: repeated SIGKILLs at random
points, a sink that cannot write, and partial files a crash could leave behind."""

from __future__ import annotations

import asyncio
import os
import random
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pytest

from attribution.batch import attribute_events
from streams.broker import EmbeddedBroker, consumer_group_lag
from tests.streams.pipeline import Pipeline
from tests.streams.test_pipeline import CONFIG, RULES, batch_credits, traffic
from tests.test_batch import B2C_JOURNEY, page, track

KILLS = 4


@pytest.fixture
def pipeline(broker: EmbeddedBroker, unique_name: str, tmp_path: Path) -> Iterator[Pipeline]:
    running = Pipeline(broker.bootstrap, unique_name, tmp_path)
    yield running
    running.close()


def until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout  # a safety bound, not a timing assertion
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.2)


def test_random_sigkills_end_with_the_uninterrupted_warehouse(pipeline: Pipeline) -> None:
    """Two workers; after each of 4 chunks one of them is SIGKILLed after a random delay
    (mid-batch, mid-flush or while the group is still rebalancing from the last kill) and a
    fresh one started. The result must equal the batch replay of the same events, which
    equals an uninterrupted run (test_pipeline)."""
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    events = traffic(seed=17)
    size = len(events) // (KILLS + 1) + 1
    chunks = [events[i:i + size] for i in range(0, len(events), size)]
    pipeline.workers.start(2)
    for chunk in chunks[:KILLS]:
        pipeline.send(chunk)
        time.sleep(rng.uniform(0.0, 2.5))
        pipeline.kill(rng.randrange(len(pipeline.workers.processes)))
        pipeline.workers.start(1)
    for chunk in chunks[KILLS:]:
        pipeline.send(chunk)
    pipeline.wait(timeout=120)

    expected = batch_credits(events)
    result = attribute_events(((str(i), e) for i, e in enumerate(events)), CONFIG, RULES)
    conversions = {(c.conversion_id, round(c.value, 6)) for c in result.conversions}
    assert pipeline.credits() == expected, f"seed {seed}"
    landed = pipeline.query("SELECT conversion_id, round(value, 6) FROM conversions")
    assert set(landed) == conversions and len(landed) == len(conversions), f"seed {seed}"
    dupes = pipeline.query("SELECT count(*) - count(DISTINCT (conversion_id, model, "
                           "touch_event_id)) FROM credits")
    assert dupes == [(0,)], f"seed {seed}"
    assert len(expected) > 300 and len(conversions) > 20


def _ops(pipeline: Pipeline, path: str) -> str:
    """GET a worker's ops endpoint (streams.health announces its URL in the warehouse)."""
    announced = sorted((pipeline.warehouse / "_ops").glob("*.json"))
    assert len(announced) == 1, announced
    url = orjson.loads(announced[-1].read_bytes())["url"]
    with urllib.request.urlopen(f"{url}{path}", timeout=5) as response:
        return str(response.read().decode())


def _landing_lag(pipeline: Pipeline) -> int:
    topic = pipeline.settings.topic("landing")
    lag = asyncio.run(consumer_group_lag(pipeline.bootstrap, pipeline.settings.app_id,
                                         {topic: pipeline.partitions}))
    return sum(lag.values())


def test_sink_that_cannot_write_retries_holds_offsets_and_lands_everything_later(
        pipeline: Pipeline) -> None:
    pipeline.workers.start(1)
    pipeline.send(B2C_JOURNEY)
    pipeline.wait()
    # The fault: the credits directory is replaced by a file. (chmod would not stop root,
    # which the tests may run as; this fails for every user.)
    credits_dir = pipeline.warehouse / "credits"
    away = pipeline.warehouse / "credits.away"
    credits_dir.rename(away)
    credits_dir.write_text("not a directory")
    late = [page("f1", 7000, "anon-f", referrer="https://www.bing.com/"),
            track("f2", 7010, "Order Completed", {"order_id": "F-1", "revenue": 12.0},
                  anon="anon-f")]
    try:
        pipeline.send(late)
        until(lambda: "landing failed" in pipeline.log_text(), 60, "the sink to fail")
        # Not committed past the unlanded batch, and the failure is visible.
        assert _landing_lag(pipeline) > 0
        metrics = _ops(pipeline, "/metrics")
        assert "attribution_sink_failing 1.0" in metrics
        assert "attribution_landing_errors_total 0.0" not in metrics
        assert orjson.loads(_ops(pipeline, "/healthz"))["sink_failing"] is True
        time.sleep(1.5)  # several retries (backoff) while still broken
        assert _landing_lag(pipeline) > 0
        assert pipeline.workers.alive()
    finally:
        credits_dir.unlink()
        away.rename(credits_dir)
    pipeline.wait()
    assert pipeline.credits() == batch_credits(B2C_JOURNEY + late)
    assert pipeline.query("SELECT count(*) FROM conversions") == [(2,)]
    assert "attribution_sink_failing 0.0" in _ops(pipeline, "/metrics")


def test_partial_and_temp_files_are_never_visible(pipeline: Pipeline) -> None:
    """What a crash mid-write can leave: a hidden temp file, truncated or garbage. Readers
    glob ``*.parquet`` and never see them; a worker restarted beside them lands normally."""
    pipeline.workers.start(1)
    pipeline.send(B2C_JOURNEY)
    pipeline.wait()
    before = pipeline.query("SELECT count(*), round(sum(credit), 6) FROM credits")
    landed = next(p for p in sorted((pipeline.warehouse / "credits").glob("*/stream-*.parquet")))
    credits_dir = landed.parent  # the day's partition
    content = landed.read_bytes()
    (credits_dir / f".{landed.stem}.0123abcd.parquet.tmp").write_bytes(content[: len(content) // 2])
    (credits_dir / ".stream-garbage.4567ef.parquet.tmp").write_bytes(os.urandom(4096))
    touches_day = next((pipeline.warehouse / "touches").glob("*/stream-*.parquet")).parent
    (touches_day / ".stream-empty.89ab.parquet.tmp").write_bytes(b"")
    assert pipeline.query("SELECT count(*), round(sum(credit), 6) FROM credits") == before
    assert pipeline.query("SELECT count(*) FROM raw_touches")[0][0] == 3
    pipeline.kill()
    pipeline.workers.start(1)
    more = [page("g1", 100, "anon-g", referrer="https://www.google.com/"),
            track("g2", 110, "Order Completed", {"order_id": "G-1", "revenue": 3.0},
                  anon="anon-g")]
    pipeline.send(more)
    pipeline.wait()
    assert pipeline.credits() == batch_credits(B2C_JOURNEY + more)
