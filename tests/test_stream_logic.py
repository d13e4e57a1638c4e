"""Stream stages (device -> identity -> journey) without a broker: list in, credits out.

The real runners, stages, state tables and message codecs run in one process
(tests/support/harness.py); tests/streams/ repeats the key cases against the real broker.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from attribution.batch import attribute_events
from schemas.contracts import CreditRow
from schemas.records import Credit
from streams.envelope import decode_body
from tests.support.harness import StreamHarness
from tests.test_batch import B2C_JOURNEY, CONFIG, RULES, T0, group, page, track
from traffic.generate import TrafficSpec, generate_events

NOW = T0 + timedelta(days=400)


def credit_map(credits: list[Credit] | list[CreditRow]) -> dict[tuple[str, str, str | None],
                                                                float]:
    return {(c.conversion_id, c.model, c.touch_event_id): round(c.credit, 9) for c in credits}


def batch_credits(events: list[dict[str, Any]]) -> list[Credit]:
    return attribute_events(((str(i), e) for i, e in enumerate(events)), CONFIG, RULES,
                            now=NOW).credits


def stream(events: list[dict[str, Any]], one_by_one: bool) -> StreamHarness:
    sim = StreamHarness(CONFIG, RULES, now=NOW)
    sim.run(events, chunk=1 if one_by_one else None)
    return sim


@pytest.mark.parametrize("one_by_one", [True, False])
def test_stream_equals_batch_with_pre_identification_touches(one_by_one: bool) -> None:
    sim = stream(B2C_JOURNEY, one_by_one)
    assert credit_map(sim.latest_credits()) == credit_map(batch_credits(B2C_JOURNEY))


def test_identity_merge_re_credits_with_a_higher_version() -> None:
    # Everything reaches the device stage before any identity answer comes back, so the
    # order is first credited on the anonymous device's own journey, then re-routed.
    sim = stream(B2C_JOURNEY, one_by_one=False)
    linear = [c for c in sim.credits() if c.conversion_id == "purchase:A-1"
              and c.model == "linear"]
    versions = sorted({c.version for c in linear})
    assert len(versions) >= 2, versions
    latest = [c for c in linear if c.version == versions[-1]]
    assert {c.channel for c in latest} == {"Paid Social", "Organic Search", "Email"}
    assert all(c.reason == "identity_merge" for c in latest)


def test_late_touch_re_credits_and_keeps_the_old_version() -> None:
    order = track("o9", 60, "Order Completed", {"order_id": "B-1", "revenue": 10}, anon="v9")
    late_ad = page("p9", 30, "v9", "https://shop.example/?utm_source=tiktok&utm_medium=paid_social")
    sim = stream([page("p8", 0, "v9", referrer="https://www.google.com/"), order, late_ad],
                 one_by_one=True)
    last = [c for c in sim.credits() if c.model == "last_touch"]
    assert [(c.version, c.channel, c.reason) for c in last] == [
        (1, "Organic Search", "initial"), (2, "Paid Social", "late_touch")]


def test_touch_later_than_the_allowed_lateness_does_not_re_credit() -> None:
    order = track("o9", 60, "Order Completed", {"order_id": "B-1", "revenue": 10}, anon="v9")
    much_later = page("p10", 3 * 1440, "v9", referrer="https://www.bing.com/")  # watermark +3d
    late_ad = page("p9", 30, "v9", "https://shop.example/?utm_source=tiktok&utm_medium=paid_social")
    sim = stream([order, much_later, late_ad], one_by_one=True)
    assert {c.version for c in sim.credits()} == {1}


def test_redelivered_events_change_nothing() -> None:
    sim = stream(B2C_JOURNEY, one_by_one=True)
    before = credit_map(sim.latest_credits())
    sim.run(B2C_JOURNEY)  # at-least-once: the whole input again
    assert credit_map(sim.latest_credits()) == before


def test_page_redelivered_after_a_later_session_starts_no_phantom_session() -> None:
    # A client retries a batch whose answer was lost; meanwhile a later batch landed, so the
    # retried page (a continuation, never a touch) arrives after a page 40 minutes later.
    first = [page("s1", 0, "v5", referrer="https://www.google.com/"), page("s2", 10, "v5")]
    later = [page("s3", 50, "v5", "https://shop.example/?utm_source=tiktok&utm_medium=paid_social"),
             track("o5", 55, "Order Completed", {"order_id": "C-1", "revenue": 20}, anon="v5")]
    sim = stream([*first, *later, first[1]], one_by_one=True)
    device = sim.device("v5")
    assert device is not None and sorted(device.touches) == ["s1", "s3"]
    assert credit_map(sim.latest_credits()) == credit_map(batch_credits([*first, *later]))


def test_late_page_inside_a_long_session_continues_it_as_in_batch() -> None:
    # Pages every 20 minutes keep one session alive for an hour; a page at minute 5 that
    # arrives last is 55 minutes from the latest page, but inside the session's span.
    events = [page("l0", 0, "v6", referrer="https://www.bing.com/"), page("l2", 20, "v6"),
              page("l4", 40, "v6"), page("l6", 60, "v6"), page("l1", 5, "v6"),
              track("o6", 61, "Order Completed", {"order_id": "C-2", "revenue": 5}, anon="v6")]
    sim = stream(events, one_by_one=True)
    device = sim.device("v6")
    assert device is not None and list(device.touches) == ["l0"]
    assert credit_map(sim.latest_credits()) == credit_map(batch_credits(events))


def test_redelivery_after_lost_sends_routes_the_remembered_touches_again() -> None:
    # A worker dies after its device changelog write but before the journey deltas went
    # out: the restarted device remembers the touches, and the redelivered events (offsets
    # were not committed) must route them again, or the journey credits without them.
    visits = [page("r1", 0, "v7", referrer="https://www.google.com/"),
              page("r2", 45, "v7", "https://shop.example/?utm_source=tiktok&utm_medium=paid_social"),
              page("r3", 50, "v7")]
    order = track("r4", 55, "Order Completed", {"order_id": "R-1", "revenue": 30}, anon="v7")
    sim = StreamHarness(CONFIG, RULES, now=NOW)
    sim.send_events(visits)
    asyncio.run(sim.consume(sim.names.events))  # the device stage wrote its state...
    sim.forget_unread([sim.names.identity, sim.names.journeys, sim.names.landing])  # ...only
    sim.run([*visits, order])  # the visits redelivered from the last committed offset
    assert credit_map(sim.latest_credits()) == credit_map(batch_credits([*visits, order]))
    assert {c.touch_event_id for c in sim.latest_credits()} == {"r1", "r2"}


def test_second_contact_touches_count_for_the_account_deal() -> None:
    day = 1440
    events = [
        page("a-p", 0, "anon-a", "https://saas.example/?utm_source=linkedin&utm_medium=paid_social",
             user="alice"),
        group("a-g", 1, "alice", "acme"),
        page("b-p", 5 * day, "anon-b", "https://saas.example/", "https://www.google.com/",
             user="bob"),
        group("b-g", 6 * day, "bob", "acme"),
        track("won", 30 * day, "Opportunity Won", {"opportunity_id": "O-1", "amount": 1000},
              user="alice", group="acme"),
    ]
    for one_by_one in (True, False):
        sim = stream(events, one_by_one)
        latest = sim.latest_credits()
        assert credit_map(latest) == credit_map(batch_credits(events))
        linear = {c.channel for c in latest if c.model == "linear"}
        assert linear == {"Paid Social", "Organic Search"}


@pytest.mark.parametrize("chunk", [1, 100, 5000])
def test_generated_traffic_stream_equals_batch(chunk: int) -> None:
    """Latest stream credits equal batch replay's, event by event or in bursts (where the
    identity answers lag far behind the touches and history arrives by merges)."""
    events = list(generate_events(TrafficSpec(seed=3, b2c_visitors=300, b2b_accounts=8)))
    now = datetime(2026, 11, 2, tzinfo=UTC)
    expected = attribute_events(((str(i), e) for i, e in enumerate(events)), CONFIG, RULES,
                                now=now).credits
    sim = StreamHarness(CONFIG, RULES, now=now)
    sim.run(events, chunk=chunk)
    assert len(expected) > 500
    assert credit_map(sim.latest_credits()) == credit_map(expected)


@pytest.mark.parametrize("together", [3, 25])
def test_messages_handled_together_end_as_one_by_one(together: int) -> None:
    """An agent hands the stage whatever arrived within its window at once: the result
    equals message by message."""
    events = list(generate_events(TrafficSpec(seed=4, b2c_visitors=200, b2b_accounts=6)))
    one, many = StreamHarness(CONFIG, RULES, now=NOW), StreamHarness(CONFIG, RULES, now=NOW)
    one.run(events, chunk=50)
    many.run(events, chunk=50, together=together)
    assert credit_map(many.latest_credits()) == credit_map(one.latest_credits())
    assert len(many.latest_credits()) > 100


def test_a_bad_message_among_others_handled_together_is_dead_lettered_alone() -> None:
    sim = StreamHarness(CONFIG, RULES, now=NOW)
    sim.send_events(B2C_JOURNEY)
    asyncio.run(sim.drain(order=[sim.names.events, sim.names.identity]))
    journeys = [key for key in sim.log.records if key[0] == sim.names.journeys]
    target = journeys[0]
    log = sim.log.records[target]
    bad = b'{"v":1,"touches":{"key":["person:x"],"reason":[]}}'  # columns missing
    log.insert(sim.committed[target], bad)
    asyncio.run(sim.consume(sim.names.journeys, together=10))
    dead = [decode_body(d) for (topic, _), records in sim.log.records.items()
            if topic == sim.names.dead for d in records]
    assert [row["reason"] for body in dead for row in body["rejected"]] == [
        "journeys stage failed: EnvelopeError(\"missing column 'time'\")"]
    asyncio.run(sim.drain())
    assert credit_map(sim.latest_credits()) == credit_map(batch_credits(B2C_JOURNEY))
