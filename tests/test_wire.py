"""Wire format: Segment calls accepted as the SDKs send them, bad input rejected with reasons."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.wire import EventRejected, parse_event, wire_json_schema

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def event(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "type": "track",
        "messageId": "m-1",
        "anonymousId": "anon-1",
        "event": "Order Completed",
        "timestamp": "2026-11-01T10:00:00.000Z",
    }
    base.update(fields)
    return {k: v for k, v in base.items() if v is not None}


def reasons(raw: Any) -> dict[str, str]:
    with pytest.raises(EventRejected) as info:
        parse_event(raw, NOW)
    return {e.field: e.reason for e in info.value.errors}


def test_accepts_a_segment_page_call_in_camel_case() -> None:
    parsed, when = parse_event(
        {
            "type": "page",
            "messageId": "ajs-1",
            "anonymousId": "a1",
            "userId": "u1",
            "name": "Home",
            "context": {
                "campaign": {"source": "facebook", "medium": "paid_social", "name": "spring"},
                "page": {"url": "https://shop.example/?utm_source=facebook", "referrer": ""},
                "userAgent": "Mozilla/5.0",
                "ip": "203.0.113.0",
                "library": {"name": "analytics.js", "version": "next-1.70.0"},
            },
            "timestamp": "2026-11-01T10:00:00.000Z",
        },
        NOW,
    )
    assert parsed.user_id == "u1"
    assert parsed.context.campaign is not None and parsed.context.campaign.source == "facebook"
    assert when == datetime(2026, 11, 1, 10, tzinfo=UTC)


def test_clock_skew_is_corrected_with_sent_at() -> None:
    # The client clock is 5 minutes fast: it stamped 10:05 and sent at 10:06 (its clock),
    # the server received at 10:01. True time = 10:05 + (10:01 - 10:06) = 10:00.
    _, when = parse_event(
        event(timestamp="2026-11-01T10:05:00Z", sentAt="2026-11-01T10:06:00Z",
              receivedAt="2026-11-01T10:01:00Z"),
        NOW,
    )
    assert when == datetime(2026, 11, 1, 10, 0, tzinfo=UTC)


def test_timestamp_without_offset_is_utc() -> None:
    _, when = parse_event(event(timestamp="2026-11-01T10:00:00"), NOW)
    assert when.tzinfo is not None and when.hour == 10


def test_numeric_ids_become_strings() -> None:
    parsed, _ = parse_event(event(userId=42, anonymousId=None), NOW)
    assert parsed.user_id == "42"


@pytest.mark.parametrize(
    ("raw", "field", "fragment"),
    [
        (event(anonymousId=None), "(event)", "anonymousId or userId is required"),
        (event(type="purchase"), "type", "unknown type 'purchase'"),
        (event(timestamp="yesterday"), "timestamp", "datetime"),
        (event(timestamp="1999-12-31T23:59:59Z"), "timestamp", "before 2000"),
        (event(timestamp="2026-11-03T12:00:01Z"), "timestamp", "more than 1 day in the future"),
        (event(properties={"revenue": -5}), "properties", "properties.revenue is negative"),
        (event(properties={"revenue": math.nan}), "properties", "not a finite number"),
        (event(properties={"x": {"total": math.inf}}), "properties", "not a finite number"),
        (event(anonymousId="a" * 300), "anonymousId", "longer than 256"),
        (event(userId="bad\x00id"), "userId", "control characters"),
        (event(event=None), "(event)", "event is required for track calls"),
        (event(type="group"), "(event)", "groupId is required"),
        (event(type="alias"), "(event)", "previousId and userId are required"),
        (event(messageId=None), "messageId", "required"),
        (event(properties={"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": {"i": 1}}}}}}}}}),
         "properties", "nested deeper"),
        (event(properties={"k": "x" * 9000}), "properties", "longer than 8192"),
    ],
)
def test_rejections_name_the_field_and_the_reason(raw: dict[str, Any], field: str,
                                                   fragment: str) -> None:
    found = reasons(raw)
    assert field in found, found
    assert fragment in found[field], found


def test_non_object_is_rejected() -> None:
    assert "JSON object" in reasons([1, 2])["(event)"]


def test_skew_correction_happens_before_the_future_check() -> None:
    # Client clock two days fast; receivedAt/sentAt bring it back to a sane time.
    _, when = parse_event(
        event(timestamp="2026-11-03T10:00:00Z", sentAt="2026-11-03T10:00:01Z",
              receivedAt="2026-11-01T10:00:01Z"),
        NOW,
    )
    assert when == datetime(2026, 11, 1, 10, tzinfo=UTC)


def test_json_schema_uses_wire_names() -> None:
    schema = wire_json_schema()
    assert {"messageId", "anonymousId", "userId", "groupId", "sentAt"} <= set(schema["properties"])


json_values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=True) | st.integers() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


@given(st.dictionaries(
    st.sampled_from(["type", "messageId", "anonymousId", "userId", "groupId", "previousId",
                     "event", "properties", "traits", "context", "timestamp", "sentAt"]),
    json_values, max_size=12,
))
def test_arbitrary_input_is_accepted_or_rejected_with_reasons(raw: dict[str, Any]) -> None:
    try:
        parsed, when = parse_event(raw, NOW)
    except EventRejected as exc:
        assert exc.errors and all(e.reason for e in exc.errors)
    else:
        assert parsed.anonymous_id or parsed.user_id
        assert datetime(2000, 1, 1, tzinfo=UTC) <= when <= NOW + timedelta(days=1)


@pytest.mark.parametrize(("fields", "field", "reason"), [
    ({"timestamp": "0001-01-01T00:00:00+01:00"}, "timestamp", "outside the years 1900-2199"),
    ({"timestamp": "9999-12-31T23:59:59-01:00"}, "timestamp", "outside the years 1900-2199"),
    ({"sentAt": "9999-01-01T00:00:00Z"}, "sentAt", "outside the years 1900-2199"),
    ({"receivedAt": "0001-01-01T00:00:00Z"}, "receivedAt", "outside the years 1900-2199"),
    # in range as wire fields, but skew correction lands after 2099
    ({"timestamp": "2190-01-01T00:00:00Z", "receivedAt": "2190-01-01T00:00:00Z"},
     "timestamp", "after 2099"),
])
def test_times_out_of_range_are_rejected_not_overflowed(fields: dict[str, Any], field: str,
                                                       reason: str) -> None:
    assert reason in reasons(event(**fields))[field]


@pytest.mark.parametrize("amount", [1.7e308, 1e12 + 1, -0.01])
def test_money_outside_its_range_is_rejected(amount: float) -> None:
    found = reasons(event(properties={"revenue": amount}))
    assert "properties" in found and "properties.revenue" in found["properties"]


def test_money_at_the_bound_is_accepted() -> None:
    parsed, _ = parse_event(event(properties={"revenue": 1e12, "items": [{"price": 0}]}), NOW)
    assert parsed.properties["revenue"] == 1e12


def test_free_form_context_fields_are_bounded_like_properties() -> None:
    deep: Any = 1
    for _ in range(12):
        deep = {"x": deep}
    found = reasons(event(context={"library": deep}))
    assert "nested deeper than 8 levels" in found["context"]
    assert "longer than" in reasons(event(context={"note": "x" * 9000}))["context"]
