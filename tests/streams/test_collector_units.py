"""Pure parts of the collector: privacy, pixel decoding, rate limit, bots, settings."""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import uuid
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attribution.policy import ConfigError
from schemas.wire import EventRejected, parse_event
from streams.collector.accept import derived_message_id
from streams.collector.bots import BotFilter
from streams.collector.bounds import MAX_EVENT_DEPTH, deeper_than, nesting, too_deep_field
from streams.collector.decode import Unreadable, read_batch
from streams.collector.pixel import (
    PixelError,
    decode_data,
    event_from_data,
    event_from_params,
    event_from_query,
)
from streams.collector.privacy import hash_email, looks_like_email, scrub_event, truncate_ip
from streams.collector.ratelimit import RateLimiter
from streams.collector.settings import CollectorSettings, RateLimit

# --- IP truncation ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "truncated"),
    [
        ("203.0.113.77", "203.0.113.0"),
        ("10.1.2.255", "10.1.2.0"),
        ("2001:db8:abcd:12::1", "2001:db8:abcd::"),
        ("[2001:db8:1:2:3:4:5:6]", "2001:db8:1::"),
        ("::ffff:198.51.100.9", "198.51.100.0"),
        (" 192.0.2.1 ", "192.0.2.0"),
        ("not an ip", None),
        ("", None),
    ],
)
def test_truncate_ip(raw: str, truncated: str | None) -> None:
    assert truncate_ip(raw) == truncated


@settings(deadline=None)
@given(st.ip_addresses(v=4))
def test_ipv4_keeps_only_the_first_24_bits(address: ipaddress.IPv4Address) -> None:
    truncated = truncate_ip(str(address))
    assert truncated is not None
    assert int(ipaddress.IPv4Address(truncated)) == int(address) & 0xFFFFFF00


@settings(deadline=None)
@given(st.ip_addresses(v=6))
def test_ipv6_keeps_only_the_first_48_bits(address: ipaddress.IPv6Address) -> None:
    if address.ipv4_mapped is not None:
        return  # IPv4-mapped addresses are truncated as IPv4 (hand-computed case above)
    truncated = truncate_ip(str(address))
    assert truncated is not None
    assert int(ipaddress.IPv6Address(truncated)) == int(address) >> 80 << 80
    assert truncate_ip(truncated) == truncated


# --- emails ---------------------------------------------------------------------------------


def test_hash_email_is_hmac_sha256_of_the_normalised_address() -> None:
    # printf 'ada@example.com' | openssl dgst -sha256 -hmac 'pepper-email-secret-0123'
    expected = "4b0ba548d7c349e72365e7bad9eb6945aabaf17b96283fdb39028316a13f6b7a"
    assert hash_email(" Ada@Example.COM ", "pepper-email-secret-0123") == expected
    assert hash_email("ada@example.com", "another-email-secret-01") != expected
    # Not the old sha256(salt + address), which anyone could recompute from a list of
    # addresses once the salt leaked with a config file.
    assert expected != hashlib.sha256(b"pepper-email-secret-0123ada@example.com").hexdigest()


@settings(deadline=None)
@given(st.emails(), st.text(max_size=20))
def test_any_email_is_recognised_and_hashed_away(email: str, salt: str) -> None:
    assert looks_like_email(email)
    digest = hash_email(email, salt)
    assert len(digest) == 64 and "@" not in digest
    assert hash_email(email.upper(), salt) == digest


@pytest.mark.parametrize("text", ["plain", "a@b", "two@@x.com", "with space@x.com", "@x.com", 42])
def test_non_emails_are_left_alone(text: object) -> None:
    assert not looks_like_email(text)


def test_scrub_event_hashes_nested_traits_and_defaults_the_ip() -> None:
    event: dict[str, Any] = {
        "anonymousId": "a",
        "traits": {"email": "A@x.io", "emails": ["b@x.io", "c"], "nested": {"e": "d@x.io"},
                   "name": "Ada"},
        "context": {"traits": {"email": "weird-but-email-key"}},
    }
    out = scrub_event(event, "198.51.100.200", "s")
    assert out["context"]["ip"] == "198.51.100.0"
    assert out["traits"]["email"] == hash_email("a@x.io", "s")
    assert out["traits"]["emails"] == [hash_email("b@x.io", "s"), "c"]
    assert out["traits"]["nested"] == {"e": hash_email("d@x.io", "s")}
    assert out["traits"]["name"] == "Ada"
    assert out["context"]["traits"]["email"] == "weird-but-email-key"  # no "@": not an address
    assert event["traits"]["email"] == "A@x.io"  # input untouched


def test_scrub_event_without_salt_keeps_emails_and_drops_bad_ips() -> None:
    out = scrub_event({"traits": {"email": "a@x.io"}, "context": {"ip": "garbage"}}, None, None)
    assert out["traits"]["email"] == "a@x.io"
    assert "ip" not in out["context"]


# --- pixel ------------------------------------------------------------------------------------


EVENT = {"writeKey": "k", "anonymousId": "a?b>c", "event": "Opened ünïcode"}


@pytest.mark.parametrize(
    "encode",
    [
        lambda b: base64.b64encode(b).decode(),
        lambda b: base64.urlsafe_b64encode(b).decode().rstrip("="),
        lambda b: base64.b64encode(b).decode().replace("+", " "),  # form-decoded "+"
    ],
)
def test_decode_data_accepts_common_base64_forms(encode: object) -> None:
    assert callable(encode)
    assert decode_data(encode(orjson.dumps(EVENT))) == EVENT


@pytest.mark.parametrize(
    ("data", "reason"),
    [("***", "bad_base64"), (base64.b64encode(b"{nope").decode(), "bad_json"),
     (base64.b64encode(b"[1]").decode(), "not_an_object")],
)
def test_decode_data_failures_have_reasons(data: str, reason: str) -> None:
    with pytest.raises(PixelError) as caught:
        decode_data(data)
    assert caught.value.reason == reason


def test_event_from_data_checks_type_and_presence() -> None:
    data = base64.b64encode(orjson.dumps(EVENT)).decode()
    assert event_from_data("page", data)["type"] == "page"
    for event_type, value, reason in [("bogus", data, "unknown_type"), ("track", None,
                                                                          "missing_data")]:
        with pytest.raises(PixelError) as caught:
            event_from_data(event_type, value)
        assert caught.value.reason == reason


def test_unencoded_pixel_parameters_nest_by_dotted_or_bracketed_names() -> None:
    event = event_from_params("track", {"a.b.c": "1", "a[b][d]": "2", "e": "3"})
    assert event == {"a": {"b": {"c": "1", "d": "2"}}, "e": "3", "type": "track"}
    for params in ({"a.b": "1", "a": "2"}, {"a": "1", "a.b": "2"}, {"a..b": "1"},
                   {".".join(["x"] * 17): "1"}):
        with pytest.raises(PixelError):
            event_from_params("track", params)
    with pytest.raises(PixelError):
        event_from_params("bogus", {})


def test_data_may_be_plain_json_as_segment_allows() -> None:
    assert event_from_data("track", '{"userId": "u", "event": "E"}') == {
        "userId": "u", "event": "E", "type": "track"}


def test_plain_pixel_query_becomes_a_wire_event() -> None:
    event = event_from_query({
        "writeKey": "k", "event": "Ad Impression", "anonymousId": "a", "utm_source": "fb",
        "utm_campaign": "spring", "fbclid": "F1", "url": "https://s.ex/?x=1", "creative": "c7",
    })
    assert event["type"] == "track" and event["event"] == "Ad Impression"
    assert event["context"] == {"campaign": {"source": "fb", "name": "spring"},
                                "page": {"url": "https://s.ex/?x=1"}}
    assert event["properties"]["fbclid"] == "F1" and event["properties"]["creative"] == "c7"
    assert "writeKey" not in event["properties"]
    assert event_from_query({"anonymousId": "a"})["type"] == "page"


# --- rate limit ----------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_hand_computed() -> None:
    clock = FakeClock()
    limiter = RateLimiter(RateLimit(events_per_second=2, burst=10), clock)
    assert limiter.take("k", 10) == 0
    assert limiter.take("k", 1) == pytest.approx(0.5)
    assert limiter.take("other", 10) == 0  # buckets are per key
    clock.now += 0.5
    assert limiter.take("k", 1) == 0
    assert limiter.take("k", 50) == pytest.approx(5.0)  # capped at the burst: a full bucket
    clock.now += 5
    assert limiter.take("k", 50) == 0
    assert RateLimiter.retry_after_header(0.2) == "1"
    assert RateLimiter.retry_after_header(4.1) == "5"


@settings(deadline=None)
@given(st.lists(st.tuples(st.floats(0, 3), st.integers(1, 30)), max_size=60))
def test_token_bucket_never_lets_more_than_burst_plus_rate_through(
    steps: list[tuple[float, int]],
) -> None:
    clock = FakeClock()
    limit = RateLimit(events_per_second=5, burst=20)
    limiter = RateLimiter(limit, clock)
    start, passed = clock.now, 0
    for wait, events in steps:
        clock.now += wait
        if limiter.take("k", events) == 0:
            passed += min(events, limit.burst)
    assert passed <= limit.burst + limit.events_per_second * (clock.now - start) + 1e-6


# --- bots and settings -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("agent", "is_bot"),
    [
        ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", True),
        ("Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", True),
        ("Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)", True),
        ("facebookexternalhit/1.1", True),
        ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 HeadlessChrome/120 Safari", False),
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Safari/604.1", False),
        ("Mozilla/5.0 (Linux; Android 10; Cubot X30) Chrome/120 Mobile Safari", False),
        ("curl/8.5.0", False),
        ("analytics-python/2.4.0", False),
        ("", False),
        (None, False),
    ],
)
def test_default_bot_list(agent: str | None, is_bot: bool) -> None:
    bots = BotFilter(CollectorSettings().bot_patterns())
    assert bots.is_bot(agent) is is_bot
    assert bots.is_bot(agent) is is_bot  # memoised answer is the same


def test_bot_list_can_be_extended_or_replaced() -> None:
    extended = CollectorSettings(extra_bot_user_agents=["HeadlessChrome"]).bot_patterns()
    assert BotFilter(extended).is_bot("HeadlessChrome/120")
    replaced = BotFilter(CollectorSettings(bot_user_agents=[]).bot_patterns())
    assert not replaced.is_bot("Googlebot/2.1")


def test_settings_from_section_validates_with_readable_errors() -> None:
    loaded = CollectorSettings.from_section({
        "write_keys": {"abc": "web"}, "rate_limit": {"events_per_second": 10, "burst": 100},
        "produce_timeout": "2s", "port": 9000,
    })
    assert loaded.produce_timeout.total_seconds() == 2 and loaded.rate_limit.burst == 100
    with pytest.raises(ConfigError) as caught:
        CollectorSettings.from_section({"port": "eighty", "bot_user_agents": ["(unclosed"],
                                        "surprise": 1})
    message = str(caught.value)
    assert "collector.port" in message and "collector.surprise" in message
    assert "not a regular expression" in message


def test_defaults_fill_a_random_write_key_and_secret_once() -> None:
    filled = CollectorSettings().with_defaults_filled()
    assert len(filled.write_keys) == 1 and filled.email_secret
    assert filled.with_defaults_filled() == filled
    configured = CollectorSettings(write_keys={"k": "web"}, email_secret="s" * 16)
    assert configured.with_defaults_filled() == configured


# --- nesting bound ---------------------------------------------------------------------------


def nested_dict(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = {"k": value}
    return value


@pytest.mark.parametrize("field", ["properties", "traits", "context"])
def test_the_nesting_bound_refuses_nothing_the_wire_format_accepts(field: str) -> None:
    """The collector's bound sits just above the wire format's: whatever parse_event takes
    passes it, and it refuses only what parse_event would refuse too (or cannot see)."""
    accepted_somewhere = False
    for depth in range(1, 16):
        event = {"type": "page", "anonymousId": "a", "messageId": "m",
                 "timestamp": "2024-05-01T00:00:00Z", field: nested_dict(depth)}
        try:
            parse_event(event)
            valid = True
        except EventRejected:
            valid = False
        flagged = too_deep_field(event) is not None
        assert not (valid and flagged), depth
        accepted_somewhere |= valid
        if flagged:
            assert nesting(event, 100) > MAX_EVENT_DEPTH
    assert accepted_somewhere


@settings(deadline=None)
@given(st.recursive(st.none() | st.integers(), lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=3), inner, max_size=3), max_leaves=40))
def test_nesting_counts_container_levels_without_recursion(value: Any) -> None:
    def recursive(item: Any) -> int:
        if isinstance(item, dict):
            return 1 + max((recursive(v) for v in item.values()), default=0)
        if isinstance(item, list):
            return 1 + max((recursive(v) for v in item), default=0)
        return 0

    assert nesting(value, 1000) == recursive(value)
    assert nesting(nested_dict(5000), 10) == 11  # stops counting past the bound


def test_memory_held_for_repeated_lookups_is_bounded() -> None:
    """Hostile clients send unique, long user agents and 'IPs': the memos stay small."""
    bots = BotFilter(CollectorSettings().bot_patterns())
    for index in range(50):
        assert not bots.is_bot(f"Mozilla/5.0 {index} " + "x" * 30_000)
    assert bots._memo == {}
    assert truncate_ip("1" * 30_000) is None


# --- messageId for events sent without one ----------------------------------------------------


def test_a_retried_timestamped_event_keeps_its_derived_message_id() -> None:
    event = {"type": "track", "userId": "u", "event": "E", "timestamp": "2024-05-01T00:00:00Z",
             "properties": {"b": 1, "a": 2}}
    retry = {"properties": {"a": 2, "b": 1}, "event": "E", "userId": "u", "type": "track",
             "timestamp": "2024-05-01T00:00:00Z", "sentAt": "2024-05-01T00:00:09Z",
             "writeKey": "k"}
    first = derived_message_id(event, "web")
    assert first is not None and uuid.UUID(first).version == 5
    assert derived_message_id(retry, "web") == first  # what a retry changes is left out
    assert derived_message_id(event, "server") != first  # per source
    assert derived_message_id({**event, "event": "F"}, "web") != first
    # Two identical calls without a time are two events, never merged.
    assert derived_message_id({k: v for k, v in event.items() if k != "timestamp"}, "web") \
        is None


# --- splitting a batch orjson refuses ----------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                max_size=3),
    max_leaves=15)


@settings(deadline=None)
@given(st.lists(json_values, max_size=6), st.dictionaries(
    st.sampled_from(["sentAt", "context", "writeKey", "integrations"]), json_values),
    st.integers(0, 6), st.sampled_from([b"NaN", b"-Infinity", b"1e999", b'"\xff"']),
    st.sampled_from([b"", b" ", b"\n\t "]))
def test_a_refused_batch_splits_into_the_same_events_with_the_bad_one_marked(
        events: list[Any], members: dict[str, Any], position: int, bad: bytes, space: bytes,
) -> None:
    raw = [orjson.dumps(e) for e in events]
    position = min(position, len(raw))
    raw.insert(position, b'{"x": ' + bad + b"}")
    parts = [b'"batch":' + space + b"[" + (b"," + space).join(raw) + b"]"]
    parts += [orjson.dumps(k) + b":" + space + orjson.dumps(v) for k, v in members.items()]
    body = b"{" + space + (b"," + space).join(parts) + space + b"}"
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(body)  # the fast path refuses it
    split = read_batch(body)
    assert split is not None
    got_members, got_events = split
    assert got_members == {k: orjson.loads(orjson.dumps(v)) for k, v in members.items()}
    assert isinstance(got_events[position], Unreadable)
    del got_events[position]
    assert got_events == [orjson.loads(r) for r in raw[:position] + raw[position + 1:]]


@pytest.mark.parametrize("body", [
    b'{"batch": [1, 2', b'{"batch": [1,, 2]}', b'{"batch": [1, 2,]}', b'{"batch": [,1]}',
    b'{"batch": [1]] }', b'{"batch": [1]} x', b'[1, 2]', b'{"batch" [1]}', b'{"batch": 1}',
    b'{"other": [NaN]}', b'{"batch": [1], "context": NaN}', b'{: [1]}',
])
def test_a_body_with_broken_structure_is_not_split(body: bytes) -> None:
    assert read_batch(body) is None


@settings(deadline=None)
@given(st.recursive(st.none() | st.integers(), lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=3), inner, max_size=3), max_leaves=40),
       st.integers(0, 12))
def test_deeper_than_agrees_with_the_count(value: Any, limit: int) -> None:
    assert deeper_than(value, limit) == (nesting(value, 1000) > limit)


def test_deeper_than_stops_at_its_limit_whatever_the_depth() -> None:
    deep = nested_dict(100_000)  # far past the interpreter's recursion limit
    assert deeper_than(deep, 10) and not deeper_than(nested_dict(10), 10)
