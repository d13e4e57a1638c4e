"""Hostile input, property-based: the pixel decoder, the collector's per-event path into the
stream's first stage, and the config loader. No exception escapes; every rejection says why.

(Coverage-guided fuzzing with atheris is not used: it has no wheel for this Python and runs
unbounded; hypothesis with shrinking fits a normal test run.)
"""

from __future__ import annotations

import base64
import json
import string
from datetime import UTC, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from attribution.defaults import channel_rules, default_dict, load_config
from attribution.policy import ConfigError, config_from_dict, merge_config
from schemas.wire import EventRejected, parse_event
from streams.collector.pixel import PixelError, decode_data, event_from_data, event_from_query
from streams.collector.privacy import scrub_event
from streams.collector.settings import CollectorSettings
from streams.envelope import EnvelopeError, decode_body
from streams.settings import stream_settings
from streams.stages import devices_message

CONFIG = load_config()
RULES = channel_rules(CONFIG)
NOW = datetime(2026, 6, 1, tzinfo=UTC)
PIXEL_REASONS = {"bad_base64", "bad_json", "not_an_object", "unknown_type", "missing_data"}

hostile_text = st.text(alphabet=st.characters(codec="utf-8"), max_size=40) | st.sampled_from(
    ["", "\x00", "a\nb", "\u202e", "😀", "'; DROP TABLE x; --", "x" * 300, "NaN", "1e999"])
json_values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=True, allow_infinity=True)
    | st.integers(min_value=-(2**70), max_value=2**70) | hostile_text,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(hostile_text, children, max_size=4),
    max_leaves=25,
)
WIRE_FIELDS = ["type", "messageId", "anonymousId", "userId", "groupId", "previousId", "event",
               "properties", "traits", "context", "timestamp", "sentAt", "receivedAt"]
wire_events = st.dictionaries(st.sampled_from(WIRE_FIELDS), json_values, max_size=13) | (
    st.fixed_dictionaries(
    {"type": st.sampled_from(["page", "track", "identify", "group", "alias"]),
     "anonymousId": hostile_text, "event": hostile_text,
     "timestamp": st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat()),
     "properties": st.dictionaries(st.sampled_from(["revenue", "value", "order_id"]),
                                   json_values, max_size=3)}))


# --- pixel decoder ---------------------------------------------------------------------------


@given(st.text(max_size=200) | st.binary(max_size=150).map(
    lambda b: base64.urlsafe_b64encode(b).decode()))
def test_pixel_data_decodes_to_an_object_or_a_named_reason(data: str) -> None:
    try:
        event = decode_data(data)
    except PixelError as exc:
        assert exc.reason in PIXEL_REASONS
    else:
        assert isinstance(event, dict)


@given(st.text(max_size=12), json_values)
def test_pixel_data_of_any_json_value(kind: str, value: Any) -> None:
    data = base64.b64encode(json.dumps(value).encode()).decode()  # NaN, huge ints included
    try:
        event = event_from_data(kind, data)
    except PixelError as exc:
        assert exc.reason in PIXEL_REASONS
    else:
        assert event["type"] == kind


@given(st.dictionaries(st.sampled_from(["event", "type", "name", "anonymousId", "userId",
                                        "utm_source", "url", "referrer", "timestamp", "gclid",
                                        "writeKey", "x"]) | hostile_text, hostile_text))
def test_plain_pixel_query_becomes_an_event_or_a_named_reason(params: dict[str, str]) -> None:
    try:
        event = event_from_query(params)
    except PixelError as exc:
        assert exc.reason == "unknown_type"
        return
    _accepted_or_rejected_with_reasons({**event, "messageId": "m", "receivedAt": NOW.isoformat()})


def _has_non_finite(value: Any) -> bool:
    if isinstance(value, float):
        return value != value or value in (float("inf"), float("-inf"))
    if isinstance(value, list):
        return any(_has_non_finite(v) for v in value)
    if isinstance(value, dict):
        return any(_has_non_finite(v) for v in value.values())
    return False


# --- the wire path: collector scrubbing, parser, the stream's device stage -----------------


def _accepted_or_rejected_with_reasons(raw: dict[str, Any]) -> None:
    scrubbed = scrub_event(raw, "203.0.113.9", "salt")
    try:
        parse_event(scrubbed, now=NOW)
    except EventRejected as exc:
        assert exc.errors and all(e.field and e.reason for e in exc.errors)


@given(wire_events)
def test_any_event_is_accepted_or_rejected_with_reasons(raw: dict[str, Any]) -> None:
    _accepted_or_rejected_with_reasons(raw)


@settings(max_examples=60)
@given(st.lists(json_values | wire_events, min_size=1, max_size=5))
def test_device_stage_never_raises_and_dead_letters_with_a_reason(items: list[Any]) -> None:
    """Whatever bytes reach the events topic, as the agent sees them: a bad envelope is
    dead-lettered whole with its reason; otherwise every item becomes a touch, conversion or
    link or a dead letter with its reason, and the stage itself never raises."""
    data = json.dumps({"v": 1, "events": items}).encode()  # stdlib: writes NaN, huge ints
    try:
        payload = decode_body(data)
    except EnvelopeError as exc:
        assert str(exc)
        return
    out = devices_message(lambda key: None, [("fuzz:0:0", payload)], CONFIG, RULES)
    for row in out.dead:
        assert row["reason"] and row["position"].startswith("fuzz:0:0#")
    assert len(out.dead) <= len(items)


# --- config loader ---------------------------------------------------------------------------

SAMPLE = """
[policies.b2c]
journey = "person"
lookback = { click = "30d", visit = "30d", view = "1d" }
models = ["last_touch", "linear", "half"]
custom_models = { half = { first = 0.5, last = 0.5 } }

[[routing]]
policy = "b2b"
events = ["Order Completed"]
properties = { plan = ["team"] }

[collector]
write_keys = { "wk-1" = "web" }
rate_limit = { events_per_second = 10.0, burst = 100 }

[stream]
partitions = 8
session_timeout = "30s"
"""


def _load_everything(text: str) -> None:
    config = load_config(text)
    stream_settings(config.stream)
    CollectorSettings.from_section(config.collector)


@given(st.integers(0, len(SAMPLE)), st.integers(0, 30),
       st.text(alphabet=string.printable + "é\x00\u2028", max_size=12))
def test_mutated_config_loads_or_names_the_problem(start: int, length: int, insert: str) -> None:
    text = SAMPLE[:start] + insert + SAMPLE[start + length:]
    try:
        _load_everything(text)
    except ConfigError as exc:
        assert str(exc).strip()
        assert str(exc).startswith(("config is not valid TOML", "invalid "))


config_values = json_values.filter(lambda v: not _has_non_finite(v)) | st.sampled_from(
    ["7d", "-1d", "0s", "person", "account", ["linear"], {"click": "2w"}])


@given(st.sampled_from(["b2c", "b2b", "new"]),
       st.dictionaries(st.sampled_from(["journey", "lookback", "models", "allowed_lateness",
                                        "time_decay_half_life", "max_touches", "drop_direct",
                                        "custom_models", "nonsense"]), config_values, max_size=4),
       st.dictionaries(st.sampled_from(["partitions", "session_timeout", "store",
                                        "sink_max_rows", "bogus"]), config_values, max_size=3))
def test_structured_config_loads_or_names_the_field(policy: str, section: dict[str, Any],
                                                    stream: dict[str, Any]) -> None:
    try:
        config = config_from_dict(merge_config(default_dict(),
                                               {"policies": {policy: section}, "stream": stream}))
        stream_settings(config.stream)
    except ConfigError as exc:
        assert str(exc).startswith("invalid ") and ": " in str(exc)
