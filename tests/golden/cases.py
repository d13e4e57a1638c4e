"""The inputs of the golden files: two generated mixes and a hand-written hostile set.

The golden files (``*.jsonl.gz`` beside this module) hold what the per-event object
pipeline produced on these inputs before the columnar hot path replaced it: touches,
conversions, credits, identities and rejections with their reasons. Re-record them
(``python -m tests.golden.record``) only when a change of behaviour is intended, and
say so in the commit.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from traffic.generate import TrafficSpec, generate_events

MIXES: dict[str, TrafficSpec] = {
    "site": TrafficSpec(seed=11, b2c_visitors=1500, b2b_accounts=30, invalid_rate=0.02),
    "touch_heavy": TrafficSpec(seed=12, b2c_visitors=1500, b2b_accounts=10, touch_heavy=True,
                               invalid_rate=0.02),
}
NOW = datetime(2026, 11, 2, tzinfo=UTC)  # after every generated event; the "future" check


def mix_events(name: str) -> list[dict[str, Any]]:
    return list(generate_events(MIXES[name]))


_T = "2026-10-01T10:00:00.000Z"


def _base(**fields: Any) -> dict[str, Any]:
    event: dict[str, Any] = {"type": "page", "messageId": "h", "anonymousId": "anon-h",
                             "timestamp": _T}
    event.update(fields)
    return {k: v for k, v in event.items() if v is not None}


def _deep(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = {"k": value}
    return value


def hostile_events() -> Iterator[Any]:
    """Every way an event can be wrong that the wire format names, one at a time, plus
    near-misses that are valid. Deterministic; each gets a distinct messageId."""
    cases: list[Any] = [
        # not objects
        None, 1, "page", [1, 2], True,
        # type
        _base(type="trak"), _base(type=""), _base(type=None), _base(type=3), _base(type="Page"),
        _base(type="screen", name="Home"),
        # ids
        _base(messageId=None), _base(messageId=""), _base(messageId=12345),
        _base(messageId=True), _base(messageId="x" * 257), _base(messageId="x" * 256),
        _base(messageId="a\x00b"), _base(messageId="tab\tid"), _base(anonymousId=None),
        _base(anonymousId="   "), _base(anonymousId="   ", userId="u-1"),
        _base(anonymousId=42), _base(anonymousId=4.5), _base(anonymousId=["a"]),
        _base(anonymousId={"a": 1}), _base(anonymousId="a\x7f"), _base(userId="u" * 300),
        _base(groupId="g\n1"), _base(previousId=""),
        # shapes
        _base(type="track"), _base(type="track", event=""), _base(type="track", event=5),
        _base(type="group"), _base(type="group", groupId="acme"),
        _base(type="alias"), _base(type="alias", previousId="p", anonymousId=None),
        _base(type="alias", previousId="p", userId="u"), _base(type="identify", userId="u"),
        _base(type="track", event="x" * 513), _base(name="n" * 513),
        # timestamps
        _base(timestamp=None), _base(timestamp=""), _base(timestamp="yesterday"),
        _base(timestamp="2026-10-01"), _base(timestamp="2026-10-01T10:00:00"),
        _base(timestamp="2026-10-01T10:00:00.123456789Z"),
        _base(timestamp="2026-10-01T10:00:00+05:30"), _base(timestamp="2026-10-01 10:00:00Z"),
        _base(timestamp=1790000000), _base(timestamp=1790000000000), _base(timestamp=17.5),
        _base(timestamp="1999-12-31T23:59:59.999Z"), _base(timestamp="2000-01-01T00:00:00Z"),
        _base(timestamp="2030-01-01T00:00:00Z"),
        _base(timestamp="0001-01-01T00:00:00+01:00"),
        _base(timestamp="9999-12-31T23:59:59-01:00"),
        _base(sentAt="9999-01-01T00:00:00Z", receivedAt="2026-10-01T10:00:05Z"),
        _base(sentAt="2026-10-01T10:00:00Z", receivedAt="2026-10-01T11:00:00Z"),
        _base(sentAt="2026-10-01T12:00:00Z"), _base(receivedAt="2026-10-01T12:00:00Z"),
        _base(timestamp=None, originalTimestamp="2026-10-01T09:00:00Z"),
        _base(timestamp=None, receivedAt="2026-10-01T09:00:00Z"),
        _base(timestamp={"t": 1}), _base(timestamp=[_T]),
        # properties / traits / context
        _base(properties=[1]), _base(properties="x"), _base(properties=None),
        _base(traits=5), _base(properties={"revenue": -1}), _base(properties={"revenue": 1.7e308}),
        _base(properties={"revenue": "12.5"}), _base(properties={"items": [{"price": -2}]}),
        _base(properties={"quantity": True}), _base(properties=_deep(8)),
        _base(properties=_deep(9)), _base(traits=_deep(10)),
        _base(properties={f"k{i}": i for i in range(501)}),
        _base(properties={"list": list(range(501))}), _base(properties={"s": "x" * 8193}),
        _base(properties={"k" * 513: 1}), _base(properties={"s": "x" * 8192}),
        _base(context="x"), _base(context=[1]), _base(context={"campaign": "spring"}),
        _base(context={"campaign": {"source": 1}}),
        _base(context={"campaign": {"name": "n" * 513}}),
        _base(context={"page": {"url": 5}}), _base(context={"page": {"url": "u" * 8193}}),
        _base(context={"ip": "1" * 65}), _base(context={"userAgent": ["ua"]}),
        _base(context={"library": _deep(9)}), _base(context={"note": "x" * 8193}),
        _base(context={"campaign": None, "page": None}),
        _base(context={"campaign": {"source": "google", "medium": "cpc", "name": "s"},
                       "page": {"url": "https://shop.example/?gclid=1", "referrer": ""}}),
        _base(type="track", event="Order Completed",
              properties={"order_id": "o-1", "revenue": 12.5, "currency": "eur"}),
        _base(type="track", event="Order Completed", properties={"revenue": 1e12}),
        # unicode
        _base(anonymousId="😀-visitor"), _base(properties={"name": "\u202e\x00"}),
    ]
    for index, case in enumerate(cases):
        if isinstance(case, dict) and case.get("messageId") == "h":
            case = {**case, "messageId": f"h-{index:03d}"}
        yield case
