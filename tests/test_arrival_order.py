"""Sessions do not depend on arrival order: whatever order a device's events arrive in and
however they are cut into messages, the stream's stages end with batch replay's touches
and credits (within the reorder window and the allowed lateness)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from attribution.batch import attribute
from attribution.defaults import channel_rules, load_config
from tests.support.harness import StreamHarness
from tests.test_batch import T0, identify, page, track

CONFIG = load_config()
RULES = channel_rules(CONFIG)
NOW = T0 + timedelta(days=30)
CAMPAIGNS = [None, "https://shop.example/?utm_source=google&utm_medium=cpc&utm_campaign=a",
             "https://shop.example/?utm_source=facebook&utm_medium=paid_social&utm_campaign=b"]


@st.composite
def journeys(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Pages of two devices over a few hours (gaps below and above the 30-minute timeout,
    campaigns changing or not), an order on each, sometimes one person on both."""
    events: list[dict[str, Any]] = []
    for device in ("dev-a", "dev-b"):
        minutes = sorted(draw(st.lists(st.integers(0, 240), min_size=1, max_size=6,
                                       unique=True)))
        for n, minute in enumerate(minutes):
            url = draw(st.sampled_from(CAMPAIGNS))
            events.append(page(f"{device}-p{n}", minute, device, url or "https://shop.example/x",
                               referrer=None if url else draw(st.sampled_from(
                                   [None, "https://www.bing.com/", "https://shop.example/"]))))
        events.append(track(f"{device}-o", minutes[-1] + 5, "Order Completed",
                            {"order_id": f"{device}-1", "revenue": 10.0}, anon=device))
    if draw(st.booleans()):
        events.append(identify("id-a", draw(st.integers(0, 250)), "dev-a", "ann"))
        events.append(identify("id-b", draw(st.integers(0, 250)), "dev-b", "ann"))
    return events


def _touchpoints(sim: StreamHarness) -> set[str]:
    landed = {row["event_id"] for row in sim.landed("touches").to_pylist()}
    status: dict[str, tuple[int, bool]] = {}
    withdrawals = sim.landed("touch_withdrawals")
    for row in [] if withdrawals.num_rows == 0 else withdrawals.to_pylist():
        if row["revision"] > status.get(row["event_id"], (0, False))[0]:
            status[row["event_id"]] = (row["revision"], row["withdrawn"])
    return {e for e in landed if not status.get(e, (0, False))[1]}


@settings(max_examples=60, deadline=None)
@given(events=journeys(), data=st.data())
def test_any_arrival_order_and_cut_ends_with_replays_touches_and_credits(
        events: list[dict[str, Any]], data: st.DataObject) -> None:
    expected = attribute([(str(i), e) for i, e in enumerate(events)], CONFIG, RULES, now=NOW)
    arrival = data.draw(st.permutations(events))
    cuts = sorted(data.draw(st.sets(st.integers(1, max(1, len(arrival) - 1)), max_size=4)))
    sim = StreamHarness(CONFIG, RULES, now=NOW)
    for start, end in zip([0, *cuts], [*cuts, len(arrival)], strict=True):
        sim.run(arrival[start:end])
    assert _touchpoints(sim) == {t.event_id for t in expected.touches}
    got = {(c.conversion_id, c.model, c.touch_event_id): round(c.credit, 9)
           for c in sim.latest_credits()}
    assert got == {(c.conversion_id, c.model, c.touch_event_id): round(c.credit, 9)
                   for c in expected.credits}
