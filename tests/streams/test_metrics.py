"""/metrics, /healthz, /readyz of a real worker process and a real collector, after traffic."""

from __future__ import annotations

import signal
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from streams.broker import EmbeddedBroker, TopicSpec, create_topics
from streams.collector import CollectorSettings, producer_for, start
from streams.health import OPS_DIR
from streams.metrics import dead_letter_reason
from tests.streams.pipeline import Pipeline
from tests.test_batch import B2C_JOURNEY, page, track

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def total(samples: Samples, name: str, **labels: str) -> float:
    """Sum over every sample of `name` whose labels include `labels`."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= ls)


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def ops_url(warehouse: Path, pid: int, timeout: float = 60.0) -> str:
    """The worker announces its bound endpoint in WAREHOUSE/_ops/<host>-<pid>.json."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in (warehouse / OPS_DIR).glob(f"*-{pid}.json"):
            url: str = orjson.loads(path.read_bytes())["url"]
            return url
        time.sleep(0.1)
    raise AssertionError(f"worker {pid} announced no ops endpoint")


def scrape(url: str) -> Samples:
    status, body = get(f"{url}/metrics")
    assert status == 200
    return parse(body.decode())


@pytest.fixture
def pipeline(broker: EmbeddedBroker, unique_name: str, tmp_path: Path) -> Iterator[Pipeline]:
    running = Pipeline(broker.bootstrap, unique_name, tmp_path, partitions=2)
    yield running
    running.close()


BAD: list[dict[str, Any]] = [
    {"type": "page", "messageId": "no-ids", "timestamp": "2026-06-01T00:00:00Z"},
    {"type": "track", "messageId": "neg", "anonymousId": "v9", "event": "Order Completed",
     "properties": {"revenue": -3}, "timestamp": "2026-06-01T00:00:00Z"},
]


def test_worker_metrics_move_by_the_traffic_and_sigterm_leaves_cleanly(
        pipeline: Pipeline) -> None:
    pipeline.workers.start(1)
    process = pipeline.workers.processes[0]
    url = ops_url(pipeline.warehouse, process.pid)
    assert get(f"{url}/healthz") == (200, b'{"status":"ok","sink_failing":false}')
    pipeline.send(BAD + B2C_JOURNEY)
    pipeline.wait()
    first = scrape(url)
    assert get(f"{url}/readyz") == (200, b'{"status":"ready"}')

    events = len(BAD) + len(B2C_JOURNEY)
    assert value(first, "attribution_items_in_total", agent="devices",
                 topic=pipeline.settings.topic("events"), kind="events") == events
    assert value(first, "attribution_dead_letters_total", agent="devices",
                 reason="invalid:(event)") == 1
    assert value(first, "attribution_dead_letters_total", agent="devices",
                 reason="invalid:properties") == 1
    conversions = pipeline.query("SELECT count(*) FROM conversions")[0][0]
    assert conversions >= 1
    assert value(first, "attribution_conversions_credited_total", policy="b2c",
                 reason="initial") == conversions
    credits = pipeline.query("SELECT count(*) FROM raw_credits")[0][0]
    assert value(first, "attribution_rows_landed_total", table="credits") == credits
    # one batch lands one file per day it holds (credits/conversion_date=<day>/<batch>)
    files = {p.name for p in (pipeline.warehouse / "credits").glob("*/stream-*.parquet")}
    assert value(first, "attribution_parquet_files_written_total", table="credits") == len(files)
    assert value(first, "attribution_sink_flush_seconds_count") >= 1
    # Faust's own sensors on the same registry: every envelope on events was received.
    envelopes = value(first, "attribution_envelopes_in_total", agent="devices",
                      topic=pipeline.settings.topic("events"))
    assert envelopes >= 1
    assert value(first, "faust_messages_received_per_topic_total",
                 topic=pipeline.settings.topic("events")) == envelopes
    assert value(first, "process_resident_memory_bytes") > 10_000_000
    assert value(first, "attribution_worker_ready") == 1
    assert total(first, "attribution_consumer_lag") == 0

    # More traffic: a late touch re-credits the purchase of the journey (reason late_touch).
    late = [page("late-p", 30, "v-late", referrer="https://www.google.com/"),
            track("late-o", 60, "Order Completed", {"order_id": "LATE-1", "revenue": 5},
                  anon="v-late")]
    pipeline.send(late[1:])
    pipeline.wait()
    pipeline.send(late[:1])
    pipeline.wait()
    second = scrape(url)
    assert value(second, "attribution_items_in_total", agent="devices",
                 topic=pipeline.settings.topic("events"), kind="events") == events + 2
    assert value(second, "attribution_conversions_credited_total", policy="b2c",
                 reason="initial") == conversions + 1
    assert value(second, "attribution_conversions_credited_total", policy="b2c",
                 reason="late_touch") == 1
    assert value(second, "attribution_dead_letters_total", agent="devices",
                 reason="invalid:properties") == 1

    # SIGTERM: a clean exit that takes its endpoint announcement along. (Leaving the group
    # is aiokafka's LeaveGroup on stop; Tansu ignores LeaveGroup, so it is not checked here.)
    pipeline.workers.processes.remove(process)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 0
    assert not list((pipeline.warehouse / OPS_DIR).glob(f"*-{process.pid}.json"))


@pytest.mark.asyncio(loop_scope="session")
async def test_collector_metrics_count_requests_statuses_and_events(
        broker: EmbeddedBroker, unique_name: str) -> None:
    topic = f"{unique_name}.events"
    await create_topics(broker.bootstrap, [TopicSpec(topic, 2)])
    settings = CollectorSettings.model_validate({
        "port": 0, "bootstrap": broker.bootstrap, "topic": topic,
        "write_keys": {"wk": "web"}, "produce_timeout": "3s"})
    producer = producer_for(settings)
    await producer.start()
    collector = await start(settings, producer)
    auth = {"Authorization": aiohttp.encode_basic_auth("wk")}
    good = {"type": "page", "anonymousId": "a1", "timestamp": "2026-06-01T00:00:00Z"}
    try:
        async with aiohttp.ClientSession() as http:
            for body, headers in [({"batch": [good, good, {"type": "page"}]}, auth),
                                  ({"batch": [good]}, auth),
                                  ({"batch": [good]}, {}),  # no write key: 401
                                  ]:
                async with http.post(f"{collector.url}/v1/batch", data=orjson.dumps(body),
                                     headers=headers) as resp:
                    await resp.read()
            async with http.get(f"{collector.url}/nowhere") as resp:
                assert resp.status == 404
            async with http.get(f"{collector.url}/metrics") as resp:
                assert resp.status == 200
                samples = parse(await resp.text())
    finally:
        await collector.stop()
        await producer.stop()
    assert value(samples, "attribution_collector_requests_total", status="200") == 2
    assert value(samples, "attribution_collector_requests_total", status="401") == 1
    assert value(samples, "attribution_collector_requests_total", status="404") == 1
    assert value(samples, "attribution_collector_events_accepted_total", source="web") == 3
    assert total(samples, "attribution_collector_events_rejected_total") == 1
    assert value(samples, "attribution_collector_request_seconds_count",
                 route="batch") == 3
    assert value(samples, "attribution_collector_request_seconds_count",
                 route="(unmatched)") == 1
    assert value(samples, "process_resident_memory_bytes") > 0


def test_dead_letter_reasons_are_field_labels() -> None:
    assert dead_letter_reason("properties: properties.revenue is negative (-3)") == (
        "invalid:properties")
    assert dead_letter_reason("(event): anonymousId or userId is required") == "invalid:(event)"
    assert dead_letter_reason("type: unknown type 'zz'; messageId: Field required") == (
        "invalid:type")
    assert dead_letter_reason("no field named here") == "other"


@given(st.text(max_size=300))
def test_dead_letter_reason_labels_stay_bounded(reason: str) -> None:
    label = dead_letter_reason(reason)
    assert label == "other" or (label.startswith("invalid:") and len(label) <= 48
                                and label[8:] == reason.split(":", 1)[0].strip())
