"""The batch pipeline over wire events: sessions, stitching, B2B accounts, dedupe, rejects.

Operators are tested Bytewax-style: a list of events in, records out.
"""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from attribution.batch import BatchResult, attribute_events
from attribution.defaults import channel_rules, load_config
from schemas.records import Credit

CONFIG = load_config()
RULES = channel_rules(CONFIG)
T0 = datetime(2026, 6, 1, 9, tzinfo=UTC)


def at(minutes: float) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


def page(mid: str, minutes: float, anon: str, url: str = "https://shop.example/",
         referrer: str | None = None, user: str | None = None) -> dict[str, Any]:
    ctx: dict[str, Any] = {"page": {"url": url, "referrer": referrer}}
    event = {"type": "page", "messageId": mid, "anonymousId": anon, "timestamp": at(minutes),
             "context": ctx}
    if user:
        event["userId"] = user
    return event


def track(mid: str, minutes: float, name: str, props: dict[str, Any], anon: str | None = None,
          user: str | None = None, group: str | None = None) -> dict[str, Any]:
    event: dict[str, Any] = {"type": "track", "messageId": mid, "event": name,
                             "properties": props, "timestamp": at(minutes)}
    for key, value in (("anonymousId", anon), ("userId", user), ("groupId", group)):
        if value:
            event[key] = value
    return event


def identify(mid: str, minutes: float, anon: str, user: str) -> dict[str, Any]:
    return {"type": "identify", "messageId": mid, "anonymousId": anon, "userId": user,
            "timestamp": at(minutes), "traits": {"email": "x@example.com"}}


def group(mid: str, minutes: float, user: str, account: str) -> dict[str, Any]:
    return {"type": "group", "messageId": mid, "userId": user, "groupId": account,
            "timestamp": at(minutes)}


def run(events: list[dict[str, Any]]) -> BatchResult:
    return attribute_events(((str(i), e) for i, e in enumerate(events)), CONFIG, RULES,
                            now=T0 + timedelta(days=400))


def shares(result: BatchResult, conversion_id: str, model: str) -> dict[str, float]:
    return {c.channel: c.credit for c in result.credits
            if c.conversion_id == conversion_id and c.model == model}


B2C_JOURNEY = [
    # Day 0: arrives from a paid social ad, browses (one session, one touch).
    page("p1", 0, "anon-1", "https://shop.example/?utm_source=facebook&utm_medium=paid_social"
         "&utm_campaign=spring"),
    page("p2", 5, "anon-1", "https://shop.example/shoes", "https://shop.example/"),
    # Day 2: organic search visit, still anonymous.
    page("p3", 2 * 1440, "anon-1", "https://shop.example/", "https://www.google.com/"),
    # Day 3: signs in on another device, comes from an email, buys.
    page("p4", 3 * 1440, "anon-2", "https://shop.example/?utm_source=newsletter&utm_medium=email",
         user="u-1"),
    identify("i1", 3 * 1440 + 1, "anon-1", "u-1"),
    track("o1", 3 * 1440 + 10, "Order Completed", {"order_id": "A-1", "revenue": 90.0,
                                                    "currency": "usd"}, user="u-1", anon="anon-2"),
]


def test_one_touch_per_session_and_pre_identification_touches_are_credited() -> None:
    result = run(B2C_JOURNEY)
    assert [t.channel for t in result.touches] == ["Paid Social", "Organic Search", "Email"]
    assert result.journey_keys["purchase:A-1"] == "person:u-1"
    assert shares(result, "purchase:A-1", "linear") == pytest.approx(
        {"Paid Social": 1 / 3, "Organic Search": 1 / 3, "Email": 1 / 3})
    assert shares(result, "purchase:A-1", "last_touch") == {"Email": 1.0}
    conversion = result.conversions[0]
    assert conversion.value == 90.0 and conversion.currency == "USD"


def test_input_order_does_not_change_the_result() -> None:
    shuffled = list(B2C_JOURNEY)
    random.Random(7).shuffle(shuffled)
    assert _credit_set(run(shuffled).credits) == _credit_set(run(B2C_JOURNEY).credits)


def test_duplicates_and_double_sent_orders_count_once() -> None:
    pixel = track("o1-pixel", 3 * 1440 + 10.5, "Order Completed",
                  {"order_id": "A-1", "revenue": 90.0}, anon="anon-2")
    result = run([*B2C_JOURNEY, B2C_JOURNEY[-1], pixel])
    assert result.duplicates == 1
    assert [c.conversion_id for c in result.conversions] == ["purchase:A-1"]
    assert result.conversions[0].event_id == "o1"  # the earliest of the two sends
    assert sum(c.credit for c in result.credits if c.model == "linear") == pytest.approx(1.0)


def test_invalid_lines_are_reported_and_valid_ones_still_land() -> None:
    events: list[Any] = [*B2C_JOURNEY, {"type": "page", "messageId": "bad"}]
    raw = [(str(i), e) for i, e in enumerate(events)] + [("99", b"{not json")]
    result = attribute_events(raw, CONFIG, RULES, now=T0 + timedelta(days=400))
    assert {r.position for r in result.rejected} == {str(len(B2C_JOURNEY)), "99"}
    assert any("anonymousId or userId is required" in r.reason for r in result.rejected)
    assert any("invalid JSON" in r.reason for r in result.rejected)
    assert len(result.conversions) == 1


def test_b2b_deal_gets_every_contacts_touches_across_the_account() -> None:
    day = 1440
    events = [
        # Contact 1 reads via LinkedIn, later identifies and joins the account.
        page("c1-p", 0, "anon-c1", "https://saas.example/?utm_source=linkedin&utm_medium=paid_social"),
        identify("c1-i", 10, "anon-c1", "alice"),
        group("c1-g", 11, "alice", "acme"),
        # Contact 2 attends a webinar (before being known to belong to acme).
        track("c2-w", 20 * day, "Webinar Attended", {"webinar": "roi"}, user="bob"),
        group("c2-g", 21 * day, "bob", "acme"),
        track("lead", 21 * day + 5, "Lead Created", {"lead_id": "L-1"}, user="bob", group="acme"),
        track("c1-m", 50 * day, "Meeting Held", {}, user="alice"),
        track("opp", 50 * day + 60, "Opportunity Created",
              {"opportunity_id": "O-1", "amount": 80000}, user="alice", group="acme"),
        page("c2-p", 70 * day, "anon-c2", "https://saas.example/pricing", "https://www.google.com/",
             user="bob"),
        track("won", 90 * day, "Opportunity Won", {"opportunity_id": "O-1", "amount": 80000},
              user="alice", group="acme"),
        # An unrelated B2C visitor in the same stream.
        page("x", 5, "anon-x"),
    ]
    result = run(events)
    assert result.journey_keys["opportunity_won:O-1"] == "account:acme"
    w = shares(result, "opportunity_won:O-1", "w_shaped")
    # first = LinkedIn (alice), lead touch = webinar (bob), opportunity touch = meeting (alice),
    # rest = bob's organic search visit.
    assert w == pytest.approx({"Paid Social": 0.3, "Webinar": 0.3, "Sales Meeting": 0.3,
                               "Organic Search": 0.1})
    assert shares(result, "opportunity_won:O-1", "first_touch") == {"Paid Social": 1.0}
    won_value = sum(c.credited_value for c in result.credits
                    if c.conversion_id == "opportunity_won:O-1" and c.model == "full_path")
    assert won_value == pytest.approx(80000)


def test_routing_sends_a_big_consumer_purchase_to_the_long_window() -> None:
    events = [
        page("p1", 0, "anon-9", "https://cars.example/?utm_source=google&utm_medium=cpc"),
        track("car", 30 * 1440, "Order Completed", {"order_id": "CAR", "revenue": 25000},
              anon="anon-9"),
    ]
    result = run(events)
    assert result.conversions[0].policy == "considered"
    assert shares(result, "purchase:CAR", "first_touch") == {"Paid Search": 1.0}  # 30 d < 90 d


def _credit_set(credits: list[Credit]) -> dict[tuple[str, str], dict[str | None, float]]:
    out: dict[tuple[str, str], dict[str | None, float]] = defaultdict(dict)
    for c in credits:
        out[(c.conversion_id, c.model)][c.touch_event_id] = round(c.credit, 12)
    return dict(out)


def test_conversion_value_skips_text_or_configured_fields_beyond_the_money_bound() -> None:
    # "revenue" as text is not a wire money number, so validation lets it through; the
    # normaliser must not turn it into a value that overflows the channel sums.
    order = track("o1", 10, "Order Completed", {"order_id": "X", "revenue": "1e308",
                                                  "total": 25}, anon="v1")
    result = attribute_events([("0", order)], CONFIG, RULES, now=T0 + timedelta(days=30))
    assert [c.value for c in result.conversions] == [25.0]
