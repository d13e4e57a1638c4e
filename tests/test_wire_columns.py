"""validate_batch and parse_event agree, row by row: the same rows accepted (with the same
column values) and the same rows rejected (with the same reasons), on generated traffic,
the golden hostile set and hypothesis-generated hostile batches."""

from __future__ import annotations

import enum
import itertools
import math
import sys
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from attribution.normalize import signals_of
from schemas import wire_columns
from schemas.wire import (
    _CONTROL,
    MAX_DEPTH,
    MAX_MONEY,
    EventRejected,
    WireEvent,
    _check_payload,
    _payload_ok,
    parse_event,
)
from schemas.wire_columns import COLUMNS, SCHEMA, WireBatch, validate_batch
from schemas.wire_times import parse_times
from tests.golden.cases import hostile_events
from tests.test_fuzz_inputs import hostile_text, json_values, wire_events
from traffic.generate import TrafficSpec, generate_events

NOW = datetime(2026, 11, 2, tzinfo=UTC)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
US = timedelta(microseconds=1)
NOW_US = (NOW - EPOCH) // US


# --- the reference: parse_event, one row at a time ---------------------------------------------


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None  # the normaliser's `_str`


def expected_row(event: WireEvent, when: datetime, raw: dict[str, Any]) -> dict[str, Any]:
    campaign, page, props = event.context.campaign, event.context.page, event.properties
    source = raw.get("source")
    return {
        "type": event.type, "message_id": event.message_id,
        "anonymous_id": event.anonymous_id, "user_id": event.user_id,
        "group_id": event.group_id, "previous_id": event.previous_id,
        "event": event.event, "name": event.name, "time_us": (when - EPOCH) // US,
        "campaign_source": campaign.source if campaign else None,
        "campaign_medium": campaign.medium if campaign else None,
        "campaign_name": campaign.name if campaign else None,
        "page_url": page.url if page else None,
        "page_referrer": page.referrer if page else None,
        **{f"prop_{n}": _text(props.get(n)) for n in
           ("url", "referrer", "utm_source", "utm_medium", "utm_campaign", "channel")},
        "source": source if isinstance(source, str) else None,
    }


def reference(raws: list[Any], now: datetime | None) -> WireBatch:
    rows, index, rejected = [], [], []
    for position, raw in enumerate(raws):
        try:
            event, when = parse_event(raw, now)
        except EventRejected as exc:
            rejected.append((position, str(exc)))
            continue
        row = expected_row(event, when, raw)
        try:  # a string that is not UTF-8 (a lone surrogate) cannot be a column
            for value in row.values():
                if isinstance(value, str):
                    value.encode()
        except UnicodeEncodeError as exc:
            rejected.append((position, f"event could not be processed: {exc!r}"))
            continue
        rows.append(row)
        index.append(position)
    return WireBatch(pl.DataFrame(rows, schema=SCHEMA), index, rejected)


def assert_same(raws: list[Any], now_us: int | None = NOW_US, direct: bool = True) -> WireBatch:
    """validate_batch gives what parse_event gives, row by row. `direct`: the batch path
    itself, without validate_batch's row-by-row fallback, must manage it."""
    now = None if now_us is None else EPOCH + timedelta(microseconds=now_us)
    expected = reference(raws, now)
    got = wire_columns._batch(raws, now_us, now) if direct else validate_batch(raws, now_us)
    assert got.rejected == expected.rejected
    assert got.index == expected.index
    assert got.columns.schema == pl.Schema(SCHEMA)
    assert got.columns.to_dicts() == expected.columns.to_dicts()
    if direct:
        assert validate_batch(raws, now_us).columns.equals(got.columns)
    return got


def event(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"type": "page", "messageId": "m-1", "anonymousId": "anon-1",
                            "timestamp": "2026-10-01T10:00:00.000Z"}
    base.update(fields)
    return {k: v for k, v in base.items() if v is not None}


# --- hand cases ------------------------------------------------------------------------------


def test_golden_hostile_set() -> None:
    cases = list(hostile_events())
    got = assert_same(cases)
    assert got.rejected and got.index  # both kinds are there
    assert len(got.index) + len(got.rejected) == len(cases)


@pytest.mark.parametrize("spec", [
    TrafficSpec(seed=5, b2c_visitors=150, b2b_accounts=4, invalid_rate=0.05),
    TrafficSpec(seed=6, b2c_visitors=150, b2b_accounts=2, touch_heavy=True, invalid_rate=0.05),
])
def test_generated_traffic_in_envelopes(spec: TrafficSpec) -> None:
    events = [orjson.loads(orjson.dumps(e)) for e in generate_events(spec)]
    for start in range(0, len(events), 1000):
        assert_same(events[start:start + 1000])


def test_generated_traffic_is_decided_on_the_fast_path() -> None:
    """Canonical events need no pydantic: every valid generated event passes the fast
    checks (which is what makes the batch fast), the invalid ones do not."""
    spec = TrafficSpec(seed=7, b2c_visitors=100, b2b_accounts=3, invalid_rate=0.05)
    events = [orjson.loads(orjson.dumps(e)) for e in generate_events(spec)]
    _, _, fast = wire_columns._fast_checks(events, NOW_US)
    valid = [i for i, raw in enumerate(events) if _accepted(raw)]
    assert len(valid) < len(events)
    assert fast.tolist() == [i in set(valid) for i in range(len(events))]


def _accepted(raw: Any) -> bool:
    try:
        parse_event(raw, NOW)
    except EventRejected:
        return False
    return True


def test_values_of_an_accepted_row() -> None:
    # Client clock 5 minutes fast: stamped 10:05 and sent at 10:06 by its clock, received
    # at 10:01, so the true time is 10:00.
    raw = event(type="track", event="Signup", userId="  ", anonymousId=42,
                timestamp="2026-10-01T12:05:00.5+02:00", sentAt="2026-10-01T10:06:00Z",
                receivedAt="2026-10-01T10:01:00Z", source="web",
                context={"campaign": {"source": "google", "medium": "cpc", "name": "s1"},
                         "page": {"url": "https://shop.example/?a=1", "referrer": ""},
                         "library": {"name": "analytics.js"}},
                properties={"url": "", "referrer": 5, "utm_source": "news",
                            "channel": "Email"})
    got = assert_same([raw, event(messageId="m-2")])
    row = got.columns.row(0, named=True)
    assert row == {
        "type": "track", "message_id": "m-1", "anonymous_id": "42", "user_id": None,
        "group_id": None, "previous_id": None, "event": "Signup", "name": None,
        "time_us": (datetime(2026, 10, 1, 10, 0, 0, 500_000, tzinfo=UTC) - EPOCH) // US,
        "campaign_source": "google", "campaign_medium": "cpc", "campaign_name": "s1",
        "page_url": "https://shop.example/?a=1", "page_referrer": "",
        "prop_url": None, "prop_referrer": None, "prop_utm_source": "news",
        "prop_utm_medium": None, "prop_utm_campaign": None, "prop_channel": "Email",
        "source": "web",
    }
    assert got.index == [0, 1]


def test_columns_give_the_normalisers_signals() -> None:
    cases: list[dict[str, Any]] = [
        {"context": {"campaign": {"source": "google", "medium": ""}, "page": {"url": "u"}},
         "properties": {"utm_source": "x", "utm_medium": "cpc", "referrer": "r"}},
        {"properties": {"url": "https://a.example/", "channel": "Webinar", "utm_campaign": 3}},
        {"context": {"page": None, "campaign": None}},
    ]
    raws = [event(messageId=f"m-{i}", **fields) for i, fields in enumerate(cases)]
    got = assert_same(raws)
    for raw, row in zip(raws, got.columns.to_dicts(), strict=True):
        signals = signals_of(parse_event(raw, NOW)[0])
        assert signals.utm_source == (row["campaign_source"] or row["prop_utm_source"])
        assert signals.utm_medium == (row["campaign_medium"] or row["prop_utm_medium"])
        assert signals.utm_campaign == (row["campaign_name"] or row["prop_utm_campaign"])
        assert signals.referrer == (row["page_referrer"] or row["prop_referrer"])
        assert signals.page_url == (row["page_url"] or row["prop_url"])
        assert signals.explicit_channel == row["prop_channel"]


class _Text(str):
    pass


class _Kind(enum.StrEnum):
    PAGE = "page"
    ID = "id-1"


@pytest.mark.parametrize("fields", [
    # Python values no JSON decoder makes: str subclasses and str enums
    {"type": _Kind.PAGE, "anonymousId": _Kind.ID, "event": _Text("e")},
    {"context": {"page": {"url": _Text("u")}}, "properties": {"url": _Text("u")},
     "source": _Kind.ID},
    {"timestamp": "2026-10-01T10:00:00"},  # naive: UTC
    {"timestamp": "2026-10-01T10:00:00.1234567Z"},  # pydantic cuts to microseconds
    {"timestamp": "2026-10-01 10:00:00Z"}, {"timestamp": "2026-10-01t10:00:00z"},
    {"timestamp": "2026-10-01T10:00Z"}, {"timestamp": "2026-10-01T10:00:00+0530"},
    {"timestamp": "2026-10-01T10:00:00-00:00"}, {"timestamp": "2026-10-01T10:00:00+23:59"},
    {"timestamp": "2026-10-01T10:00:00+24:00"}, {"timestamp": "2026-10-01T10:00:00+05:60"},
    {"timestamp": "2026-10-01T10:00:00.123456xZ"}, {"timestamp": "2024-02-29T10:00:00Z"},
    {"timestamp": "2026-02-29T10:00:00Z"}, {"timestamp": "2026-10-01T10:00:60Z"},
    {"timestamp": "2026-10-01T10:00:00.Z"}, {"timestamp": "2026-10-01"},
    {"timestamp": 1790000000}, {"timestamp": "２０２６-10-01T10:00:00Z"},
    {"timestamp": "2026-10-01T10:00:00Z\x00"}, {"timestamp": "2026-10-01T10:00:00.000000Z"},
    {"timestamp": "1899-12-31T23:30:00-01:00", "receivedAt": "2026-10-01T10:00:00Z",
     "sentAt": "1899-12-31T23:30:00-01:00"},
    {"timestamp": "2200-01-01T00:30:00+01:00", "receivedAt": "2026-10-01T10:00:00Z",
     "sentAt": "2200-01-01T00:30:00+01:00"},
    {"timestamp": "2099-12-31T23:59:59.999999Z", "receivedAt": "2099-12-31T00:00:00Z"},
    {"timestamp": "2100-01-01T00:00:00Z", "receivedAt": "2099-12-31T00:00:00Z"},
    {"timestamp": "2000-01-01T00:00:00Z"}, {"timestamp": "1999-12-31T23:59:59.999999Z"},
    # wire times outside 1900-2199 that skew correction would bring back
    {"timestamp": "2200-06-01T00:00:00Z", "sentAt": "2199-06-01T00:00:00Z",
     "receivedAt": "2026-06-01T00:00:00Z"},
    {"timestamp": "1899-06-01T00:00:00Z", "sentAt": "1900-06-01T00:00:00Z",
     "receivedAt": "2026-06-01T00:00:00Z"},
    {"timestamp": None, "originalTimestamp": "2026-10-01T09:00:00Z"},
    {"timestamp": None, "sentAt": "2026-10-01T09:00:00Z"},
    {"timestamp": None}, {"message_id": "snake", "messageId": None},
    {"messageId": "m", "message_id": "both"}, {"user_id": "by its Python name"},
    {"sentAt": "2026-10-01T10:00:00Z", "received_at": "2026-10-01T09:00:00Z"},
    {"context": {"user_agent": "u" * 8193}}, {"context": {"userAgent": "u" * 8193}},
    {"context": {"ip": "1" * 65}}, {"context": {"campaign": {"term": "t" * 513}}},
    {"context": {"page": {"search": 5}}}, {"context": {"page": {"other": 5}}},
    {"context": {"extra": {"revenue": -1}}}, {"context": {1: "x"}},
    {"anonymousId": "\u3000"}, {"anonymousId": "\x1c", "userId": "u"},
    {"anonymousId": "a\x85b"}, {"userId": "u\x7f"}, {"groupId": "g" * 257},
    {"anonymousId": "\u00e9" * 256}, {"anonymousId": "\u00e9" * 257},
    {"type": "track", "event": ""}, {"type": "screen"}, {"type": None},
    {"properties": {"revenue": MAX_MONEY, "price": 0, "list": [1.5, None, True]}},
    {"properties": {1: "x"}}, {"properties": {"t": (1, 2)}}, {"source": 5},
])
def test_each_unusual_field_gets_pydantics_verdict(fields: dict[str, Any]) -> None:
    assert_same([event(**fields), event(messageId="m-2")])


def test_the_future_check_uses_now_us() -> None:
    limit = NOW + timedelta(days=1)
    raws = [event(messageId="at", timestamp=limit.isoformat()),
            event(messageId="after", timestamp=(limit + US).isoformat())]
    got = assert_same(raws)
    assert got.index == [0] and "more than 1 day in the future" in got.rejected[0][1]


def test_without_now_the_reference_is_received_at_then_the_clock() -> None:
    clock = datetime.now(UTC)
    raws = [
        # two days after its receivedAt: in the future, though long past on the clock
        event(messageId="a", timestamp="2026-10-03T10:00:00Z", receivedAt="2026-10-01T10:00:00Z"),
        event(messageId="b", timestamp="2026-10-01T12:00:00Z", receivedAt="2026-10-01T10:00:00Z"),
        # no receivedAt: the clock
        event(messageId="c", timestamp=(clock + timedelta(hours=20)).isoformat()),
        event(messageId="d", timestamp=(clock + timedelta(days=3)).isoformat()),
    ]
    got = assert_same(raws, None)
    assert got.index == [1, 2] and [p for p, _ in got.rejected] == [0, 3]


def test_a_string_that_cannot_be_a_column_rejects_only_its_row() -> None:
    raws = [event(messageId="a", properties={"url": "\ud800"}), event(messageId="b")]
    got = validate_batch(raws, NOW_US)
    assert got.index == [1]
    assert got.rejected == [(0, "event could not be processed: UnicodeEncodeError('utf-8', "
                                "'\\ud800', 0, 1, 'surrogates not allowed')")]
    assert assert_same([event(messageId="c", source="\udfff"), event()], direct=False).index == [1]


def test_empty_batch() -> None:
    got = assert_same([])
    assert got.columns.columns == list(COLUMNS) and got.columns.height == 0


# --- what the fast path is derived from --------------------------------------------------------


def test_every_model_field_is_checked() -> None:
    assert set(WireEvent.model_fields) == wire_columns.HANDLED_FIELDS


def test_python_whitespace_is_written_out_right() -> None:
    spaces = "".join(chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace())
    assert spaces == wire_columns.PY_WHITESPACE


def test_control_bytes_are_the_regexs() -> None:
    assert bytes(range(0x20)) + b"\x7f" == wire_columns._CONTROL_BYTES
    assert all(bool(_CONTROL.search(chr(c))) == (c < 0x20 or c == 0x7F) for c in range(256))


# --- the payload screen: the same answer as _payload_ok ---------------------------------------

keys = st.sampled_from(["a", "price", "revenue", "quantity", "x" * 513, "b", "campaign",
                        "page"])
scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.text(max_size=4),
                    st.floats(allow_nan=True, allow_infinity=True),
                    st.sampled_from([MAX_MONEY, math.nextafter(MAX_MONEY, math.inf), -0.0,
                                     sys.float_info.max, -sys.float_info.max, 2**70, "y" * 8193]),
                    st.tuples(st.integers()), st.text(max_size=2).map(type("S", (str,), {})))
payloads = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(keys | st.integers(0, 2), inner, max_size=3)),
    max_leaves=40)


def _deep(levels: int, leaf: Any = 1, container: str = "dict") -> Any:
    value = leaf
    for _ in range(levels):
        value = {"k": value} if container == "dict" else [value]
    return value


def _passes(value: Any) -> bool:
    try:
        _check_payload(value, "properties")
    except ValueError:
        return False
    return True


@settings(deadline=None, max_examples=400)
@given(st.dictionaries(keys, payloads, max_size=5)
       | st.builds(_deep, st.integers(MAX_DEPTH - 2, MAX_DEPTH + 2), scalars,
                   st.sampled_from(["dict", "list"])).map(lambda v: {"d": v}))
def test_within_bounds_is_payload_ok(payload: dict[str, Any]) -> None:
    assert wire_columns._within_bounds(payload) == _payload_ok(payload)
    if wire_columns._within_bounds(payload):
        assert _passes(payload)
    extras = {k: v for k, v in payload.items() if k not in wire_columns.CONTEXT_KEYS}
    if wire_columns._within_bounds(payload, 0, wire_columns.CONTEXT_KEYS):
        assert _payload_ok(extras)


# --- times: clearly valid canonical forms are read on the fast path, and read right ----------

zones: Any = st.none() | st.just(UTC) | st.integers(-(24 * 60 - 1), 24 * 60 - 1).map(
    lambda m: timezone(timedelta(minutes=m)))  # (typeshed wants tzinfo | None strategies)
in_bounds = st.datetimes(min_value=datetime(1899, 12, 30), max_value=datetime(2200, 1, 2),
                         timezones=zones)
anywhen = st.datetimes(timezones=zones)


def _render(when: datetime, style: str) -> str:
    text = when.isoformat()
    if style == "z":
        text = text.replace("+00:00", "Z")
    elif style == "seconds":
        text = when.isoformat(timespec="seconds")
    elif style == "millis":
        text = when.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    elif style == "space":
        text = text.replace("T", " ")
    elif style == "lower":
        text = text.lower()
    elif style == "nanos":
        head, _, tail = when.isoformat(timespec="microseconds").partition(".")
        text = f"{head}.{tail[:6]}789{tail[6:]}"
    elif style == "compact":
        text = text[:-3] + text[-2:] if when.tzinfo else text
    return text


STYLES = ["iso", "z", "seconds", "millis", "space", "lower", "nanos", "compact"]
rendered = st.builds(_render, in_bounds | anywhen, st.sampled_from(STYLES))
def _mostly(valid: st.SearchStrategy[int], *invalid: int) -> st.SearchStrategy[int]:
    return st.one_of(valid, valid, valid, st.sampled_from(invalid))


pieces = st.builds(
    "{:04d}-{:02d}-{:02d}T{:02d}:{:02d}:{:02d}{}{}".format,
    st.sampled_from([0, 1, 1899, 1900, 2000, 2024, 2099, 2100, 2199, 2200, 9999])
    | st.integers(1900, 2199) | st.integers(0, 9999),
    _mostly(st.integers(1, 12), 0, 13), _mostly(st.integers(1, 31), 0, 32),
    _mostly(st.integers(0, 23), 24, 25), _mostly(st.integers(0, 59), 60, 61),
    _mostly(st.integers(0, 59), 60, 61),
    st.just("") | st.integers(1, 9).flatmap(
        lambda n: st.text("0123456789", min_size=n, max_size=n).map(lambda d: "." + d)),
    st.sampled_from(["", "Z", "z", "+00:00", "-00:00"])
    | st.builds("{}{:02d}:{:02d}".format, st.sampled_from("+-"),
                _mostly(st.integers(0, 23), 24, 25), _mostly(st.integers(0, 59), 60, 61)))


@st.composite
def misspelt(draw: st.DrawFn) -> str:
    """A time, mostly canonical and in the bounds, with one character replaced (often by
    its neighbour in code points: '9' -> ':', 'T' -> 'U', ...), dropped or added."""
    text = draw(st.builds(_render, in_bounds, st.sampled_from(["iso", "z", "seconds",
                                                                "millis"])) | rendered | pieces)
    at = draw(st.integers(0, len(text) - 1))
    near = [chr(ord(text[at]) + 1), chr(max(ord(text[at]) - 1, 0))]
    char = draw(st.sampled_from(near) | st.sampled_from("0189:;-./TtUZz+ \x00é٣")
                | st.characters(codec="utf-8"))
    how = draw(st.sampled_from(["replace", "replace", "drop", "add"]))
    if how == "add":
        return text[:at] + char + text[at:]
    return text[:at] + (char if how == "replace" else "") + text[at + 1:]


time_texts = rendered | pieces | misspelt() | hostile_text


@settings(deadline=None, max_examples=500)
@given(st.lists(time_texts | st.none(), min_size=1, max_size=8))
def test_times_agree_with_pydantic(texts: list[str | None]) -> None:
    _agree_with_pydantic(texts)


@settings(deadline=None, max_examples=1500)
@given(misspelt())
def test_nearly_canonical_times_agree_with_pydantic(text: str) -> None:
    _agree_with_pydantic([text])


def _agree_with_pydantic(texts: list[str | None]) -> None:
    present, ok, micros = parse_times(texts)
    for text, is_present, is_ok, value in zip(texts, present, ok, micros, strict=True):
        assert is_present == (text is not None)
        if text is None:
            assert is_ok
            continue
        try:
            parsed = WireEvent.model_validate(event(timestamp=text)).timestamp
        except ValueError:
            parsed = None
        if is_ok:  # accepted on the fast path: pydantic reads the same instant
            assert parsed is not None and (parsed - EPOCH) // US == value, text
        elif parsed is not None and _canonical(text):  # a canonical time in the bounds
            pytest.fail(f"{text!r} is canonical but left to pydantic")


def _canonical(text: str) -> bool:
    import re
    return re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}"
                        r"(\.[0-9]{1,6})?(Z|[+-][0-9]{2}:[0-9]{2})?", text) is not None


# --- whole batches: generated events, mutated and hostile --------------------------------------

POOL = [orjson.loads(orjson.dumps(e)) for e in itertools.chain(
    itertools.islice(generate_events(TrafficSpec(seed=3, b2c_visitors=60, b2b_accounts=3,
                                                 invalid_rate=0.05)), 400),
    itertools.islice(generate_events(TrafficSpec(seed=4, b2c_visitors=60, b2b_accounts=1,
                                                 touch_heavy=True)), 200))]

ID_KEYS = ["messageId", "anonymousId", "userId", "groupId", "previousId"]
TIME_KEYS = ["timestamp", "sentAt", "receivedAt", "originalTimestamp"]
PATHS = ([(k,) for k in ["type", "event", "name", "source", "context", "properties", "traits",
                         "message_id", "anonymous_id", "sent_at", *ID_KEYS, *TIME_KEYS]]
         + [("context", k) for k in ["campaign", "page", "userAgent", "user_agent", "ip",
                                     "library", "locale", "revenue"]]
         + [("context", "campaign", k) for k in ["source", "medium", "name", "term", "x"]]
         + [("context", "page", k) for k in ["url", "referrer", "path", "title", "x"]]
         + [(p, k) for p in ("properties", "traits") for k in
            ["url", "referrer", "utm_source", "utm_medium", "utm_campaign", "channel",
             "revenue", "price", "quantity", "x"]])
ids = (hostile_text | st.integers(-(2**70), 2**70) | st.floats()
       | st.sampled_from(["", " ", "\t", "\u3000", "\x00", "a\x1fb", "x" * 256, "x" * 257,
                          "é" * 257, " a ", True, None]))
money = st.sampled_from([MAX_MONEY, math.nextafter(MAX_MONEY, math.inf), -0.0, -1e-300, 0,
                         sys.float_info.max, -sys.float_info.max, math.inf, -math.inf, math.nan,
                         2**64, -1])
deep = st.builds(_deep, st.integers(MAX_DEPTH - 1, MAX_DEPTH + 2), json_values,
                 st.sampled_from(["dict", "list"]))
anything = json_values | hostile_text | money | deep


def _value_for(path: tuple[str, ...]) -> st.SearchStrategy[Any]:
    if path[-1] in ID_KEYS or path[-1] in ("message_id", "anonymous_id"):
        return ids | anything
    if path[-1] in TIME_KEYS or path[-1] == "sent_at":
        return time_texts | anything
    return anything


@st.composite
def skewed(draw: st.DrawFn) -> dict[str, str]:
    """timestamp, sentAt, receivedAt of a client clock off by anything up to 300 years."""
    true = draw(in_bounds)
    received = draw(in_bounds)
    skew = timedelta(days=draw(st.integers(-110_000, 110_000)),
                     microseconds=draw(st.integers(0, 86_400_000_000)))
    times = {}
    for key, when in (("timestamp", true), ("sentAt", received), ("receivedAt", received)):
        try:
            shifted = when + skew if key != "receivedAt" else when
        except OverflowError:
            shifted = when
        times[key] = _render(shifted, draw(st.sampled_from(STYLES)))
    return times


@st.composite
def mutated(draw: st.DrawFn) -> Any:
    raw = orjson.loads(orjson.dumps(draw(st.sampled_from(POOL))))
    if draw(st.integers(0, 4)) == 0:
        raw.update(draw(skewed()))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(PATHS))
        parent = raw
        for key in path[:-1]:
            if not isinstance(parent.get(key), dict):
                parent[key] = {}
            parent = parent[key]
        if draw(st.booleans()) and path[-1] in parent:
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(_value_for(path))
    return raw


@settings(deadline=None, max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(mutated() | st.sampled_from(POOL) | wire_events | json_values, max_size=25))
def test_batches_agree_with_parse_event(raws: list[Any]) -> None:
    assert_same(raws)
