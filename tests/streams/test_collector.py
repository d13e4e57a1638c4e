"""The collector over real HTTP against the real embedded broker (fixture ``broker``)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gzip
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.broker import EmbeddedBroker, TopicSpec, create_topics
from streams.collector import (
    CollectorSettings,
    EnvelopeProducer,
    RunningCollector,
    producer_for,
    serve,
    start,
)
from streams.collector.pixel import TRANSPARENT_GIF
from streams.collector.privacy import hash_email
from streams.envelope import decode_envelope
from streams.routing import partition_for
from streams.stages import device_key

pytestmark = pytest.mark.asyncio(loop_scope="session")

PARTITIONS = 2
WRITE_KEY = "wk-web"
SECRET = "pepper-email-secret-0123"
ORIGIN = "https://shop.example"

Produced = list[tuple[int, list[dict[str, Any]]]]  # (partition, envelope events) per message
MakeCollector = Callable[..., Awaitable[RunningCollector]]


def auth(key: str = WRITE_KEY) -> dict[str, str]:
    return {"Authorization": aiohttp.encode_basic_auth(key)}


async def produced(bootstrap: str, topic: str, count: int = PARTITIONS) -> Produced:
    """Every message of the topic (``count`` partitions): read until each partition's
    fetched high watermark.

    (Tansu's ListOffsets answer is unreliable; the watermark in fetch responses is right.)
    """
    partitions = [TopicPartition(topic, p) for p in range(count)]
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                fetch_max_wait_ms=20)
    await consumer.start()
    out: Produced = []
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        for _round in range(500):  # bounded: a broken broker fails the test, not hangs it
            batches = await consumer.getmany(*partitions, timeout_ms=50)
            for records in batches.values():
                for record in records:
                    assert record.value is not None
                    out.append((record.partition, decode_envelope(record.value)))
            marks = [consumer.highwater(tp) for tp in partitions]
            positions = [await consumer.position(tp) for tp in partitions]
            if all(m is not None and p >= m for m, p in zip(marks, positions, strict=True)):
                return out
        raise AssertionError(f"could not read {topic} to its end")
    finally:
        await consumer.stop()


def all_events(messages: Produced) -> list[dict[str, Any]]:
    return [event for _partition, events in messages for event in events]


def assert_routed(messages: Produced) -> None:
    """Every event sits on the partition the stream expects for its device key."""
    for partition, events in messages:
        for event in events:
            key = device_key(event)
            assert key is not None and partition_for(key, PARTITIONS) == partition


@pytest.fixture
async def topic(broker: EmbeddedBroker) -> str:
    name = f"collector-test-{uuid.uuid4().hex[:10]}"
    await create_topics(broker.bootstrap, [TopicSpec(name, PARTITIONS)])
    return name


@pytest.fixture
async def make_collector(broker: EmbeddedBroker, topic: str) -> AsyncIterator[MakeCollector]:
    started: list[tuple[RunningCollector, Any]] = []

    async def make(**overrides: Any) -> RunningCollector:
        values: dict[str, Any] = {
            "port": 0, "bootstrap": broker.bootstrap, "topic": topic,
            "write_keys": {WRITE_KEY: "web", "wk-server": "server"}, "email_secret": SECRET,
            "cors_origins": [ORIGIN], "produce_timeout": "3s", "ready_timeout": "1s",
        }
        settings = CollectorSettings.model_validate({**values, **overrides})
        producer = producer_for(settings)
        await producer.start()
        running = await start(settings, producer)
        started.append((running, producer))
        return running

    yield make
    for running, producer in started:
        await running.stop()
        await producer.stop()


@pytest.fixture
async def collector(make_collector: MakeCollector) -> RunningCollector:
    return await make_collector()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def post(
    http: aiohttp.ClientSession, url: str, body: Any, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, Any], Any]:
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    async with http.post(url, data=data, headers=headers or {}) as resp:
        return resp.status, dict(resp.headers), await resp.json(content_type=None)


# --- tracking endpoints ---------------------------------------------------------------


async def test_track_is_enriched_scrubbed_and_routed(
    collector: RunningCollector, http: aiohttp.ClientSession, broker: EmbeddedBroker, topic: str
) -> None:
    sent_at = "2024-05-01T12:00:00.000Z"
    event = {
        "type": "page",  # overwritten by the endpoint
        "anonymousId": "anon-1", "userId": "ada@example.com", "event": "Signed Up",
        "traits": {"email": "Ada@Example.com", "plan": "pro", "work": "ada@corp.example"},
        "context": {"ip": "203.0.113.77", "traits": {"email": "ada@example.com"}},
        "properties": {"contact": "ada@example.com"}, "sentAt": sent_at,
        "timestamp": "2024-05-01T11:59:59Z", "source": "spoofed", "writeKey": WRITE_KEY,
    }
    status, _, body = await post(http, f"{collector.url}/v1/track", event, auth())
    assert (status, body["accepted"]) == (200, 1)

    messages = await produced(broker.bootstrap, topic)
    assert [partition for partition, _ in messages] == [partition_for("anon-1", PARTITIONS)]
    (got,) = all_events(messages)
    hashed = hash_email("ada@example.com", SECRET)
    assert got["type"] == "track"
    assert got["source"] == "web"
    assert got["sentAt"] == sent_at
    assert uuid.UUID(got["messageId"])
    received = datetime.fromisoformat(got["receivedAt"])
    assert abs(received - datetime.now(UTC)) < timedelta(minutes=5)
    assert got["context"]["ip"] == "203.0.113.0"
    assert got["traits"] == {"email": hashed, "plan": "pro",
                             "work": hash_email("ada@corp.example", SECRET)}
    assert got["context"]["traits"]["email"] == hashed
    assert got["properties"]["contact"] == hashed
    assert got["userId"] == hashed
    assert "writeKey" not in got
    raw = orjson.dumps(got)
    assert b"example.com" not in raw and b"203.0.113.77" not in raw


@pytest.mark.parametrize(
    ("path", "event", "wire_type"),
    [
        ("track", {"event": "Clicked"}, "track"),
        ("t", {"event": "Clicked"}, "track"),
        ("page", {"name": "Home"}, "page"),
        ("p", {}, "page"),
        ("screen", {"name": "Home"}, "screen"),
        ("identify", {"userId": "u-1", "traits": {"plan": "pro"}}, "identify"),
        ("group", {"groupId": "acme"}, "group"),
        ("alias", {"userId": "u-1", "previousId": "anon-9"}, "alias"),
    ],
)
async def test_each_single_endpoint(
    collector: RunningCollector, http: aiohttp.ClientSession, broker: EmbeddedBroker, topic: str,
    path: str, event: dict[str, Any], wire_type: str,
) -> None:
    status, _, body = await post(http, f"{collector.url}/v1/{path}",
                                 {"anonymousId": "anon-9", **event}, auth())
    assert (status, body["accepted"]) == (200, 1), body
    (got,) = all_events(await produced(broker.bootstrap, topic))
    assert got["type"] == wire_type


async def test_batch_partial_acceptance_groups_by_partition(
    collector: RunningCollector, http: aiohttp.ClientSession, broker: EmbeddedBroker, topic: str
) -> None:
    future = (datetime.now(UTC) + timedelta(days=3)).isoformat()
    batch = [
        {"type": "page", "anonymousId": "a"},
        {"type": "track", "anonymousId": "a"},  # 1: no event name
        {"type": "track", "userId": "u", "event": "Order Completed"},
        "not an object",  # 3
        {"type": "track", "anonymousId": "a", "event": "Late", "timestamp": future},  # 4
        {"type": "page", "anonymousId": "a", "properties": {"blob": "x" * 40_000}},  # 5: > 32 KB
        {"type": "nonsense", "anonymousId": "b"},  # 6
        {"type": "identify", "anonymousId": "a", "userId": "u"},
    ]
    status, _, body = await post(http, f"{collector.url}/v1/batch",
                                 {"batch": batch, "sentAt": datetime.now(UTC).isoformat()}, auth())
    assert status == 200
    assert body["accepted"] == 3
    rejected = {r["index"]: r["errors"] for r in body["rejected"]}
    assert sorted(rejected) == [1, 3, 4, 5, 6]
    assert "event is required" in rejected[1][0]["reason"]
    assert rejected[4][0]["field"] == "timestamp"
    assert "larger than" in rejected[5][0]["reason"]
    assert rejected[6][0]["field"] == "type"
    stats = collector.state.stats.snapshot()
    assert stats["accepted"] == {"web": 3} and sum(stats["rejected"].values()) == 5

    messages = await produced(broker.bootstrap, topic)
    assert_routed(messages)
    # "a" and "u" hash to different partitions of 2: one envelope each, order kept per key.
    assert (partition_for("a", PARTITIONS), partition_for("u", PARTITIONS)) == (0, 1)
    by_partition = {partition: [e["type"] for e in events] for partition, events in messages}
    assert by_partition == {0: ["page", "identify"], 1: ["track"]}
    assert all("sentAt" in e for e in all_events(messages))  # batch-level sentAt copied down


async def test_batch_envelopes_hold_at_most_500_events(
    collector: RunningCollector, http: aiohttp.ClientSession, broker: EmbeddedBroker, topic: str
) -> None:
    batch = [{"type": "track", "anonymousId": "same", "event": "E"} for _ in range(1100)]
    status, _, body = await post(http, f"{collector.url}/v1/batch", {"batch": batch}, auth())
    assert (status, body["accepted"]) == (200, 1100)
    messages = await produced(broker.bootstrap, topic)
    assert [len(events) for _, events in messages] == [500, 500, 100]


async def test_many_devices_share_one_envelope_per_partition(
    collector: RunningCollector, http: aiohttp.ClientSession, broker: EmbeddedBroker, topic: str
) -> None:
    batch = [{"type": "page", "anonymousId": f"device-{i % 40}", "properties": {"n": i}}
             for i in range(120)] + [{"type": "track", "userId": "known", "event": "E"}]
    status, _, body = await post(http, f"{collector.url}/v1/batch", {"batch": batch}, auth())
    assert (status, body["accepted"]) == (200, 121)
    messages = await produced(broker.bootstrap, topic)
    assert sorted(partition for partition, _ in messages) == list(range(PARTITIONS))
    assert_routed(messages)
    numbers = [e["properties"]["n"] for e in all_events(messages) if e["type"] == "page"]
    for device in range(40):  # a device's events keep the order they were sent in
        mine = [n for n in numbers if n % 40 == device]
        assert mine == sorted(mine) and len(mine) == 3


async def test_write_key_in_body_and_401s(
    collector: RunningCollector, http: aiohttp.ClientSession
) -> None:
    event = {"anonymousId": "a", "event": "E"}
    ok, _, _ = await post(http, f"{collector.url}/v1/track", {**event, "writeKey": "wk-server"})
    assert ok == 200
    batch_ok, _, _ = await post(http, f"{collector.url}/v1/batch",
                                {"batch": [{**event, "type": "track"}], "writeKey": WRITE_KEY})
    assert batch_ok == 200
    missing, _, body = await post(http, f"{collector.url}/v1/track", event)
    assert (missing, body["code"]) == (401, "unauthorized")
    assert "missing write key" in body["message"]
    unknown, _, body = await post(http, f"{collector.url}/v1/batch", {"batch": []}, auth("nope"))
    assert (unknown, body["message"]) == (401, "unknown write key")


async def test_malformed_requests_are_400_with_the_problem_named(
    collector: RunningCollector, http: aiohttp.ClientSession
) -> None:
    url = f"{collector.url}/v1/batch"
    status, _, body = await post(http, url, b'{"batch": [', auth())
    assert status == 400 and body["code"] == "bad_json" and "not valid JSON" in body["message"]
    status, _, body = await post(http, url, b"[1, 2]", auth())
    assert (status, body["message"]) == (400, "body must be a JSON object")
    status, _, body = await post(http, url, {"batch": {"not": "a list"}}, auth())
    assert status == 400 and '"batch" array' in body["message"]
    status, _, body = await post(http, f"{collector.url}/v1/track", {"anonymousId": "a"}, auth())
    assert status == 400 and body["errors"][0]["reason"] == "event is required for track calls"
    status, _, body = await post(http, f"{collector.url}/v1/track", b"", auth())
    assert status == 400 and "empty" in body["message"]


async def test_size_limits_and_gzip(
    collector: RunningCollector, http: aiohttp.ClientSession, broker: EmbeddedBroker, topic: str
) -> None:
    # Segment's answer over its limits is 400 (not 413); no SDK retries it either way.
    big_event = {"anonymousId": "a", "event": "E", "properties": {"blob": "x" * 33_000}}
    status, _, body = await post(http, f"{collector.url}/v1/track", big_event, auth())
    assert (status, body["code"]) == (400, "too_large")
    big_batch = {"batch": [{"type": "page", "anonymousId": "a", "properties": {"x": "y" * 20_000}}
                           for _ in range(30)]}
    status, _, body = await post(http, f"{collector.url}/v1/batch", big_batch, auth())
    assert (status, body["code"]) == (400, "too_large")

    gz = {**auth(), "Content-Encoding": "gzip"}
    small = {"batch": [{"type": "track", "anonymousId": "g", "event": "Zipped"}]}
    status, _, body = await post(http, f"{collector.url}/v1/batch",
                                 gzip.compress(orjson.dumps(small)), gz)
    assert (status, body["accepted"]) == (200, 1)
    # 20 MB of JSON whitespace compresses to ~20 KB: refused after inflating 500 KB, not all.
    bomb = gzip.compress(b'{"batch": [' + b" " * 20_000_000 + b"]}")
    assert len(bomb) < 100_000
    status, _, body = await post(http, f"{collector.url}/v1/batch", bomb, gz)
    assert (status, body["code"]) == (400, "too_large")
    status, _, body = await post(http, f"{collector.url}/v1/batch", b"\x1f\x8bnot gzip", gz)
    assert (status, body["code"]) == (400, "bad_encoding")

    assert [e["event"] for e in all_events(await produced(broker.bootstrap, topic))] == ["Zipped"]


async def test_rate_limit_answers_429_with_retry_after(
    make_collector: MakeCollector, http: aiohttp.ClientSession
) -> None:
    collector = await make_collector(rate_limit={"events_per_second": 0.01, "burst": 5})
    batch = {"batch": [{"type": "track", "anonymousId": "a", "event": "E"}] * 5}
    first, _, _ = await post(http, f"{collector.url}/v1/batch", batch, auth())
    assert first == 200
    status, headers, body = await post(http, f"{collector.url}/v1/batch", batch, auth())
    assert (status, body["code"]) == (429, "rate_limited")
    assert int(headers["Retry-After"]) >= 1
    other_key, _, _ = await post(http, f"{collector.url}/v1/batch", batch, auth("wk-server"))
    assert other_key == 200  # buckets are per write key


async def test_bots_are_dropped_with_200_and_counted(
    make_collector: MakeCollector, http: aiohttp.ClientSession, broker: EmbeddedBroker, topic: str
) -> None:
    collector = await make_collector()
    googlebot = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
    headless = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 HeadlessChrome/120.0 Safari"
    batch = {"batch": [
        {"type": "page", "anonymousId": "bot", "context": {"userAgent": googlebot}},
        {"type": "page", "anonymousId": "ahrefs",
         "context": {"userAgent": "Mozilla/5.0 (compatible; AhrefsBot/7.0)"}},
        {"type": "page", "anonymousId": "human", "context": {"userAgent": headless}},
        {"type": "page", "anonymousId": "cli"},  # request UA is curl: allowed
    ]}
    status, _, body = await post(http, f"{collector.url}/v1/batch", batch,
                                 {**auth(), "User-Agent": "curl/8.5.0"})
    assert (status, body["accepted"], body["dropped"]) == (200, 2, 2)
    status, _, body = await post(http, f"{collector.url}/v1/page", {"anonymousId": "b2"},
                                 {**auth(), "User-Agent": "Mozilla/5.0 (compatible; bingbot/2.0)"})
    assert (status, body["dropped"]) == (200, 1)
    assert collector.state.stats.bots["web"] == 3
    keys = sorted(e["anonymousId"] for e in all_events(await produced(broker.bootstrap, topic)))
    assert keys == ["cli", "human"]

    strict = await make_collector(extra_bot_user_agents=["HeadlessChrome"])
    status, _, body = await post(http, f"{strict.url}/v1/page",
                                 {"anonymousId": "h", "context": {"userAgent": headless}}, auth())
    assert (status, body["dropped"]) == (200, 1)


async def test_cors_preflight_and_headers(
    collector: RunningCollector, http: aiohttp.ClientSession
) -> None:
    preflight = {"Origin": ORIGIN, "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "content-type,authorization"}
    async with http.options(f"{collector.url}/v1/t", headers=preflight) as resp:
        assert resp.status == 204
        assert resp.headers["Access-Control-Allow-Origin"] == ORIGIN
        assert resp.headers["Access-Control-Allow-Credentials"] == "true"
        assert "POST" in resp.headers["Access-Control-Allow-Methods"]
        assert resp.headers["Access-Control-Allow-Headers"] == "content-type,authorization"
    async with http.options(f"{collector.url}/v1/t",
                            headers={**preflight, "Origin": "https://evil.example"}) as resp:
        assert resp.status == 403
        assert "Access-Control-Allow-Origin" not in resp.headers
    status, headers, _ = await post(http, f"{collector.url}/v1/t",
                                    {"anonymousId": "a", "event": "E", "writeKey": WRITE_KEY},
                                    {"Origin": ORIGIN, "Content-Type": "text/plain"})
    assert status == 200 and headers["Access-Control-Allow-Origin"] == ORIGIN


async def test_write_keys_reload_without_restart(
    collector: RunningCollector, http: aiohttp.ClientSession
) -> None:
    event = {"anonymousId": "a", "event": "E"}
    collector.state.reload(CollectorSettings(write_keys={"wk-new": "web2"}, topic=collector.state
                                             .settings.topic))
    old, _, _ = await post(http, f"{collector.url}/v1/track", event, auth())
    new, _, _ = await post(http, f"{collector.url}/v1/track", event, auth("wk-new"))
    assert (old, new) == (401, 200)
    assert collector.state.settings.email_secret == SECRET  # the secret is never reloaded
    assert collector.state.stats.accepted["web2"] == 1


# --- pixel --------------------------------------------------------------------------------


def b64(event: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(event)).decode().rstrip("=")


async def get_pixel(http: aiohttp.ClientSession, url: str) -> None:
    async with http.get(url) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "image/gif"
        assert "no-cache" in resp.headers["Cache-Control"]
        assert "no-store" in resp.headers["Cache-Control"]
        gif = await resp.read()
    assert gif == TRANSPARENT_GIF and len(gif) == 43 and gif.startswith(b"GIF89a")
    assert gif[6:10] == b"\x01\x00\x01\x00"  # 1x1


async def test_pixel_always_answers_a_gif(
    collector: RunningCollector, http: aiohttp.ClientSession, broker: EmbeddedBroker, topic: str
) -> None:
    base = collector.url
    good = {"writeKey": WRITE_KEY, "anonymousId": "mail-1", "event": "Email Opened",
            "properties": {"campaign": "spring"}}
    await get_pixel(http, f"{base}/v1/pixel/track?data={b64(good)}")
    await get_pixel(http, f"{base}/p.gif?writeKey={WRITE_KEY}&anonymousId=ad-1&utm_source=news"
                          "&utm_medium=email&utm_campaign=spring&gclid=abc&url=https%3A%2F%2Fs.ex%2F")
    await get_pixel(http, f"{base}/p.gif?writeKey={WRITE_KEY}&event=Ad%20Impression&userId=u-7")
    bad = [
        "/v1/pixel/track?data=%%%not-base64",
        f"/v1/pixel/track?data={base64.b64encode(b'not json').decode()}",
        "/v1/pixel/track",
        f"/v1/pixel/nonsense?data={b64(good)}",
        f"/v1/pixel/track?data={b64({**good, 'writeKey': 'unknown'})}",
        f"/v1/pixel/track?data={b64({'writeKey': WRITE_KEY, 'event': 'no ids'})}",
        "/p.gif",
        "/p.gif?writeKey=&event=x",
    ]
    for path in bad:
        await get_pixel(http, base + path)
    errors = collector.state.stats.pixel_errors
    assert sum(errors.values()) == len(bad)
    assert errors["bad_base64"] == 1 and errors["unknown_write_key"] == 1

    events = {e["anonymousId"] if "anonymousId" in e else e["userId"]: e
              for e in all_events(await produced(broker.bootstrap, topic))}
    assert set(events) == {"mail-1", "ad-1", "u-7"}
    assert events["mail-1"]["type"] == "track" and events["mail-1"]["source"] == "web"
    ad = events["ad-1"]
    assert ad["type"] == "page"
    assert ad["context"]["campaign"] == {"source": "news", "medium": "email", "name": "spring"}
    assert ad["context"]["page"] == {"url": "https://s.ex/"}
    assert ad["properties"]["gclid"] == "abc"
    assert events["u-7"]["event"] == "Ad Impression"


# --- analytics.js settings, health -----------------------------------------------------------


async def test_project_settings_point_analytics_js_here(
    collector: RunningCollector, http: aiohttp.ClientSession
) -> None:
    async with http.get(f"{collector.url}/v1/projects/{WRITE_KEY}/settings") as resp:
        assert resp.status == 200
        settings = await resp.json()
    segment = settings["integrations"]["Segment.io"]
    host = collector.url.removeprefix("http://")
    assert segment["apiKey"] == WRITE_KEY
    assert (segment["apiHost"], segment["protocol"]) == (f"{host}/v1", "http")
    assert settings["metrics"]["host"] == f"{host}/v1"
    assert settings["remotePlugins"] == [] and list(settings["integrations"]) == ["Segment.io"]
    async with http.get(f"{collector.url}/v1/projects/nope/settings") as resp:
        assert resp.status == 404


async def test_health_and_readiness(
    make_collector: MakeCollector, http: aiohttp.ClientSession
) -> None:
    collector = await make_collector()
    async with http.get(f"{collector.url}/healthz") as resp:
        assert resp.status == 200
    async with http.get(f"{collector.url}/readyz") as resp:
        assert resp.status == 200
    orphan = await make_collector(bootstrap=f"127.0.0.1:{free_port()}")
    async with http.get(f"{orphan.url}/healthz") as resp:
        assert resp.status == 200
    async with http.get(f"{orphan.url}/readyz") as resp:
        assert resp.status == 503


# --- broker down --------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_broker_down_is_503_then_recovers_by_itself(
    make_collector: MakeCollector, http: aiohttp.ClientSession
) -> None:
    port = free_port()
    collector = await make_collector(bootstrap=f"127.0.0.1:{port}", topic="recovery",
                                     reconnect_backoff="0.1s")
    body = {"batch": [{"type": "track", "anonymousId": "r", "event": "Kept"}]}
    status, headers, answer = await post(http, f"{collector.url}/v1/batch", body, auth())
    assert (status, answer["code"]) == (503, "unavailable")
    assert int(headers["Retry-After"]) >= 1

    late_broker = EmbeddedBroker(port=port)
    await asyncio.to_thread(late_broker.start)
    try:
        await create_topics(late_broker.bootstrap, [TopicSpec("recovery", PARTITIONS)])
        for _attempt in range(100):  # the SDK's retry loop, bounded
            status, _, answer = await post(http, f"{collector.url}/v1/batch", body, auth())
            if status == 200:
                break
            assert status == 503
            await asyncio.sleep(0.1)
        assert status == 200 and answer["accepted"] == 1
        events = all_events(await produced(late_broker.bootstrap, "recovery"))
        assert [e["event"] for e in events] == ["Kept"]
    finally:
        # Tansu ignores SIGTERM while clients are connected: disconnect first.
        await collector.stop()
        producer = collector.state.producer
        assert isinstance(producer, EnvelopeProducer)
        await producer.stop()
        await asyncio.to_thread(late_broker.stop)


# --- official server-side SDKs -----------------------------------------------------------------


def journey_calls(client: Any, anonymous_id: str) -> None:
    """A landing with UTM parameters, a sign-up, an order: the calls a shop backend makes."""
    campaign = {"source": "newsletter", "medium": "email", "name": "spring"}
    client.page(anonymous_id=anonymous_id, name="Landing",
                properties={"url": "https://shop.example/?utm_source=newsletter"},
                context={"campaign": campaign, "ip": "198.51.100.23"})
    client.identify(user_id="user-42", anonymous_id=anonymous_id,
                    traits={"email": "buyer@example.com", "plan": "pro"})
    client.track(user_id="user-42", anonymous_id=anonymous_id, event="Order Completed",
                 properties={"order_id": "o-1", "revenue": 42.5, "currency": "EUR"})


def check_sdk_journey(messages: Produced, anonymous_id: str, source: str) -> None:
    assert {p for p, _ in messages} == {partition_for(anonymous_id, PARTITIONS)}
    events = all_events(messages)
    assert sorted(e["type"] for e in events) == ["identify", "page", "track"]
    assert all(e["source"] == source and e["receivedAt"] and e["sentAt"] for e in events)
    page = next(e for e in events if e["type"] == "page")
    assert page["context"]["campaign"]["source"] == "newsletter"
    assert page["context"]["ip"] == "198.51.100.0"
    identify = next(e for e in events if e["type"] == "identify")
    traits = identify.get("traits") or identify["context"]["traits"]  # Rudder: context.traits
    assert traits["email"] == hash_email("buyer@example.com", SECRET)
    assert b"buyer@example.com" not in orjson.dumps(events)
    order = next(e for e in events if e["type"] == "track")
    assert (order["event"], order["properties"]["revenue"]) == ("Order Completed", 42.5)


async def test_segment_analytics_python_sdk(
    collector: RunningCollector, broker: EmbeddedBroker, topic: str
) -> None:
    segment = pytest.importorskip("segment.analytics")
    errors: list[Exception] = []
    client = segment.Client(write_key=WRITE_KEY, host=collector.url, gzip=True, max_retries=1,
                            upload_interval=0.05,
                            on_error=lambda error, _batch: errors.append(error))

    def run() -> None:
        journey_calls(client, "seg-anon")
        client.flush()
        client.shutdown()

    await asyncio.to_thread(run)
    assert errors == []
    check_sdk_journey(await produced(broker.bootstrap, topic), "seg-anon", "web")


async def test_rudder_sdk_python(
    collector: RunningCollector, broker: EmbeddedBroker, topic: str
) -> None:
    rudder = pytest.importorskip("rudderstack.analytics")
    errors: list[Exception] = []
    client = rudder.Client(write_key="wk-server", host=collector.url, max_retries=1,
                           upload_interval=0.05,
                           on_error=lambda error, _batch: errors.append(error))

    def run() -> None:
        journey_calls(client, "rudder-anon")
        client.flush()
        client.shutdown()

    await asyncio.to_thread(run)
    assert errors == []
    check_sdk_journey(await produced(broker.bootstrap, topic), "rudder-anon", "server")


async def test_serve_prints_url_and_a_random_write_key(
    broker: EmbeddedBroker, topic: str, http: aiohttp.ClientSession,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ready = asyncio.Event()
    task = asyncio.create_task(serve(CollectorSettings(port=0, bootstrap=broker.bootstrap,
                                                       topic=topic), ready=ready))
    try:
        await asyncio.wait_for(ready.wait(), 30)
        lines = capsys.readouterr().out.splitlines()
        url = next(line.split()[-1] for line in lines if line.startswith("collector listening on"))
        key = next(line.split()[2] for line in lines if line.startswith("write key:"))
        status, _, body = await post(http, f"{url}/v1/track",
                                     {"anonymousId": "a", "event": "E"}, auth(key))
        assert (status, body["accepted"]) == (200, 1)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert all_events(await produced(broker.bootstrap, topic))[0]["source"] == "default"
