"""Hostile requests against the collector over real HTTP and the real broker: each gets a
defined answer, good events beside bad ones still land, a key writes only its own source,
and health and metrics carry no personal data. (Body and gzip-bomb limits, bad JSON, rate
limits per key, key rotation and broker outages are in test_collector.py.)"""

from __future__ import annotations

from typing import Any

import aiohttp
import orjson
import pytest

from streams.broker import EmbeddedBroker
from streams.collector import RunningCollector
from tests.streams import test_collector as base
from tests.streams.test_collector import all_events, auth, post, produced

# The collector fixtures of test_collector.py (a real collector on the session's broker).
topic, make_collector, collector, http = (base.topic, base.make_collector, base.collector,
                                          base.http)

pytestmark = pytest.mark.asyncio(loop_scope="session")

GOOD = [{"type": "track", "anonymousId": "good-1", "event": "Order Completed",
         "properties": {"revenue": 10}},
        {"type": "page", "anonymousId": "good-2"}]


def nested(depth: int) -> Any:
    value: Any = "deep"
    for _ in range(depth):
        value = {"k": value}
    return value


BAD: list[tuple[dict[str, Any], str]] = [
    ({"type": "page", "anonymousId": "old", "timestamp": "1970-01-01T00:00:00Z"}, "timestamp"),
    ({"type": "page", "anonymousId": "future", "timestamp": "2999-01-01T00:00:00Z"}, "timestamp"),
    ({"type": "track", "anonymousId": "neg", "event": "Order Completed",
      "properties": {"revenue": -5}}, "revenue"),
    ({"type": "page", "anonymousId": "ctl\x00\x07id"}, "anonymousId"),
    ({"type": "page", "anonymousId": "x" * 300}, "anonymousId"),
    ({"type": "track", "anonymousId": "deep", "event": "E", "properties": nested(20)},
     "properties"),
    ({"type": "track", "anonymousId": "wide", "event": "E",
      "properties": {"items": list(range(5000))}}, "properties"),
    ({"type": "track", "anonymousId": "nan", "event": "E", "properties": {"value": "NaN"}}, ""),
    ({"type": "nonsense", "anonymousId": "t"}, "type"),
    ({"type": "page"}, "anonymousId"),
]


async def test_bad_events_are_refused_one_by_one_with_reasons_and_good_ones_land(
        collector: RunningCollector, http: aiohttp.ClientSession, broker: EmbeddedBroker,
        topic: str) -> None:
    batch = [GOOD[0], *(event for event, _ in BAD), GOOD[1]]
    status, _, body = await post(http, f"{collector.url}/v1/batch", {"batch": batch}, auth())
    assert status == 200
    rejected = {r["index"]: r["errors"] for r in body["rejected"]}
    landed = [e["anonymousId"] for e in all_events(await produced(broker.bootstrap, topic))]
    # A numeric string "NaN" is not a number: the event may pass, but never as a NaN value.
    nan_index = 1 + [e for e, _ in BAD].index(BAD[7][0])
    expected_rejected = {i for i in range(1, len(batch) - 1) if i != nan_index}
    assert expected_rejected <= set(rejected)
    for index, errors in rejected.items():
        field = BAD[index - 1][1]
        assert errors and all(e["reason"] for e in errors)
        assert any(field in e["field"] + e["reason"] for e in errors), (index, errors)
    assert "good-1" in landed and "good-2" in landed
    assert not {"old", "future", "neg", "deep", "wide"} & set(landed)
    assert body["accepted"] == len(batch) - len(rejected)


GOOD_JSON = [orjson.dumps(event) for event in GOOD]


@pytest.mark.parametrize("depth", [11, 255, 256, 300, 1000])
@pytest.mark.parametrize("field", ["properties", "traits", "context", "integrations",
                                   "somethingElse"])
async def test_deep_nesting_in_any_field_is_that_events_rejection(
        collector: RunningCollector, http: aiohttp.ClientSession, broker: EmbeddedBroker,
        topic: str, field: str, depth: int) -> None:
    """Was 500 past 255 levels (orjson's limit, in the size check) and the whole batch lost;
    integrations and unknown fields were not bounded at all."""
    deep = b'{"k":' * depth + b"1" + b"}" * depth
    bad = b'{"type": "page", "anonymousId": "deep", "%b": %b}' % (field.encode(), deep)
    payload = b'{"batch": [' + b", ".join([GOOD_JSON[0], bad, GOOD_JSON[1]]) + b"]}"
    status, _, body = await post(http, f"{collector.url}/v1/batch", payload, auth())
    assert (status, body["accepted"]) == (200, 2), body
    [(index, errors)] = [(r["index"], r["errors"]) for r in body["rejected"]]
    assert index == 1 and errors[0]["field"] == field
    assert errors[0]["reason"] == "nested deeper than 10 levels"
    landed = [e["anonymousId"] for e in all_events(await produced(broker.bootstrap, topic))]
    assert sorted(landed) == ["good-1", "good-2"]


@pytest.mark.parametrize(("element", "reason"), [
    (b"[" * 100_000 + b"]" * 100_000, "nested deeper than"),  # past orjson's 1024 levels
    (b'{"type": "page", "anonymousId": "\xff\xfe"}', "not valid JSON"),  # not UTF-8
    # What Python SDKs send for float("nan") and float("inf") (json.dumps allows them):
    (b'{"type": "track", "anonymousId": "a", "event": "E", "properties": {"revenue": NaN}}',
     "not valid JSON"),
    (b'{"type": "track", "anonymousId": "a", "event": "E", "properties": {"v": Infinity}}',
     "not valid JSON"),
    (b'{"type": "page", "anonymousId": "a", "properties": {"n": 1e999}}', "not valid JSON"),
])
async def test_an_unreadable_event_is_rejected_alone_and_its_batch_lands(
        collector: RunningCollector, http: aiohttp.ClientSession, broker: EmbeddedBroker,
        topic: str, element: bytes, reason: str) -> None:
    payload = b'{"batch": [' + b", ".join([GOOD_JSON[0], element, GOOD_JSON[1]]) + b"]}"
    status, _, body = await post(http, f"{collector.url}/v1/batch", payload, auth())
    assert status == 200, body
    assert body["accepted"] == 2
    [rejected] = body["rejected"]
    assert rejected["index"] == 1 and reason in rejected["errors"][0]["reason"]
    landed = [e["anonymousId"] for e in all_events(await produced(broker.bootstrap, topic))]
    assert sorted(landed) == ["good-1", "good-2"]


@pytest.mark.parametrize("payload", [
    b'{"batch": [{"type": "page", "anonymousId": "a"}',  # truncated
    b'{"batch": [{"type": "page", "anonymousId": "a"},, {"type": "page"}]}',
    b'{"batch": [{"type": "page", "anonymousId": "a"}]} trailing',
    b'{"batch": [{"type": "page", "anonymousId": "a"}], "context": {"n": NaN}}',  # batch-wide
    b'{"batch": {"type": "page", "anonymousId": "a", "n": NaN}}',  # no array
    b'[' * 100_000 + b']' * 100_000,  # nesting bomb, not an object
    b'{"batch": [' + b"[" * 100_000 + b"]" * 99_999 + b"]}",  # unbalanced
])
async def test_a_body_whose_structure_is_broken_is_400_bad_json(
        collector: RunningCollector, http: aiohttp.ClientSession, payload: bytes) -> None:
    """As Segment: bad JSON is refused whole when the events cannot be told apart."""
    status, _, body = await post(http, f"{collector.url}/v1/batch", payload, auth())
    assert (status, body["code"]) == (400, "bad_json"), body
    assert body["message"]


@pytest.mark.parametrize("payload", [
    b'{"type": "track", "anonymousId": "a", "event": "E", "properties": {"revenue": NaN}}',
    b'{"type": "page", "anonymousId": "\xff\xfe"}',
])
async def test_a_single_call_with_bad_json_is_400(
        collector: RunningCollector, http: aiohttp.ClientSession, payload: bytes) -> None:
    status, _, body = await post(http, f"{collector.url}/v1/track", payload, auth())
    assert (status, body["code"]) == (400, "bad_json")


async def test_content_types(collector: RunningCollector, http: aiohttp.ClientSession) -> None:
    """Any declared type is read as JSON (analytics.js beacons send text/plain, as Segment
    accepts); an unknown Content-Encoding is refused with 415."""
    body = {"batch": [GOOD[1]]}
    for content_type in ("text/plain", "application/octet-stream", "application/x-www-form-"
                         "urlencoded"):
        status, _, answer = await post(http, f"{collector.url}/v1/batch", body,
                                       {**auth(), "Content-Type": content_type})
        assert (status, answer["accepted"]) == (200, 1), content_type
    status, _, answer = await post(http, f"{collector.url}/v1/batch", body,
                                   {**auth(), "Content-Encoding": "br"})
    assert (status, answer["code"]) == (415, "unsupported_encoding")


async def test_a_write_key_writes_only_its_own_source(
        collector: RunningCollector, http: aiohttp.ClientSession, broker: EmbeddedBroker,
        topic: str) -> None:
    spoof = {"type": "page", "anonymousId": "spoof", "source": "server", "writeKey": "wk-server"}
    status, _, _ = await post(http, f"{collector.url}/v1/batch", {"batch": [spoof]}, auth())
    assert status == 200
    [event] = [e for e in all_events(await produced(broker.bootstrap, topic))
               if e["anonymousId"] == "spoof"]
    assert event["source"] == "web" and "writeKey" not in event


async def test_every_endpoint_but_health_needs_a_write_key(
        collector: RunningCollector, http: aiohttp.ClientSession) -> None:
    for path in ("track", "page", "identify", "group", "alias", "screen", "batch", "t", "b",
                 "import"):
        status, _, _ = await post(http, f"{collector.url}/v1/{path}",
                                     {"anonymousId": "a", "event": "E", "batch": []})
        assert status == 401, path
    async with http.get(f"{collector.url}/v1/projects/nope/settings") as resp:
        assert resp.status == 404
    for path in ("/healthz", "/readyz"):
        async with http.get(f"{collector.url}{path}") as resp:
            assert resp.status == 200


async def test_health_and_metrics_expose_no_personal_data(
        collector: RunningCollector, http: aiohttp.ClientSession) -> None:
    personal = {"type": "identify", "anonymousId": "anon-personal-77", "userId": "user-secret-88",
                "traits": {"email": "jane.doe@example.com", "name": "Jane Doe"},
                "context": {"ip": "198.51.100.77"}}
    bad = {"type": "track", "anonymousId": "anon-personal-77", "event": "E",
           "properties": {"revenue": -1, "email": "jane.doe@example.com"}}
    status, _, _ = await post(http, f"{collector.url}/v1/batch", {"batch": [personal, bad]},
                              auth())
    assert status == 200
    for path in ("/healthz", "/readyz", "/metrics"):
        async with http.get(f"{collector.url}{path}") as resp:
            text = await resp.text()
        assert resp.status == 200, path
        for secret in ("anon-personal-77", "user-secret-88", "jane", "Jane", "198.51.100"):
            assert secret not in text, (path, secret)


async def test_only_a_known_write_key_in_the_header_gets_a_refused_batch_split(
        collector: RunningCollector, http: aiohttp.ClientSession) -> None:
    """Splitting costs up to ~100x a parse: a client that has not shown a key in the
    header (writeKey in the body, or an unknown key) gets Segment's whole-body 400."""
    bad = b'{"type": "page", "anonymousId": "n", "properties": {"v": NaN}}'
    events = b'{"batch": [' + GOOD_JSON[0] + b", " + bad + b"]"
    status, _, body = await post(http, f"{collector.url}/v1/batch",
                                 events + b', "writeKey": "wk-web"}')
    assert (status, body["code"]) == (400, "bad_json")
    status, _, body = await post(http, f"{collector.url}/v1/batch", events + b"}", auth("nope"))
    assert (status, body["code"]) == (400, "bad_json")
    status, _, body = await post(http, f"{collector.url}/v1/batch", events + b"}", auth())
    assert (status, body["accepted"]) == (200, 1)
