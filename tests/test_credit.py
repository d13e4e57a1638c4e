"""Credit engine: windows, repeat conversions, stage touches, path cleaning, conservation."""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from attribution.credit import credit_conversion
from attribution.defaults import load_config
from attribution.policy import Policy
from schemas.records import NO_TOUCH_CHANNEL, Conversion, Credit, InteractionKind, Touch

T0 = datetime(2026, 6, 1, tzinfo=UTC)
CONFIG = load_config()
B2C, B2B = CONFIG.policies["b2c"], CONFIG.policies["b2b"]


def touch(id_: str, days: float, channel: str, kind: InteractionKind = InteractionKind.VISIT,
          ) -> Touch:
    return Touch(event_id=id_, time=T0 + timedelta(days=days), anonymous_id="a1",
                 channel=channel, kind=kind, campaign=f"c-{channel}")


def conversion(id_: str, days: float, kind: str = "purchase", value: float = 100.0,
               policy: str = "b2c") -> Conversion:
    return Conversion(conversion_id=f"{kind}:{id_}", event_id=f"m-{id_}",
                      time=T0 + timedelta(days=days), kind=kind, event=kind, policy=policy,
                      value=value, currency="USD", anonymous_id="a1")


def by_model(credits: list[Credit]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = defaultdict(dict)
    for c in credits:
        out[c.model][c.touch_event_id or NO_TOUCH_CHANNEL] = c.credit
    return out


def test_b2c_window_excludes_old_clicks_and_views_older_than_a_day() -> None:
    touches = [
        touch("old-click", 0, "Paid Search", InteractionKind.CLICK),  # 10 days: outside 7d
        touch("view", 8, "Display", InteractionKind.VIEW),  # 2 days: outside 1d view window
        touch("email", 9, "Email", InteractionKind.EMAIL),
        touch("social", 9.5, "Paid Social", InteractionKind.CLICK),
    ]
    order = conversion("o1", 10)
    shares = by_model(credit_conversion(order, "person:a1", touches, [order], B2C))
    assert shares["last_touch"] == {"social": 1.0}
    assert shares["linear"] == {"email": 0.5, "social": 0.5}
    assert shares["position_based"] == {"email": 0.5, "social": 0.5}
    # time decay, half-life 7 days: ages 1 and 0.5 days
    w_email, w_social = 2 ** (-1 / 7), 2 ** (-0.5 / 7)
    assert shares["time_decay"]["email"] == pytest.approx(w_email / (w_email + w_social))


def test_repeat_purchase_gets_only_the_touches_since_the_previous_one() -> None:
    touches = [touch("t1", 0, "Paid Social"), touch("t2", 1, "Email"), touch("t3", 3, "Affiliates")]
    first, second = conversion("o1", 2), conversion("o2", 4)
    both = [first, second]
    assert by_model(credit_conversion(first, "k", touches, both, B2C))["linear"] == {
        "t1": 0.5, "t2": 0.5}
    assert by_model(credit_conversion(second, "k", touches, both, B2C))["linear"] == {"t3": 1.0}


def test_touch_at_the_conversion_instant_counts_for_it() -> None:
    touches = [touch("t1", 2, "Email")]
    order = conversion("o1", 2)
    assert by_model(credit_conversion(order, "k", touches, [order], B2C))["last_touch"] == {
        "t1": 1.0}


def test_conversion_without_touches_is_credited_to_none_and_keeps_its_value() -> None:
    order = conversion("o1", 2, value=42.0)
    credits = credit_conversion(order, "k", [], [order], B2C)
    assert {c.model for c in credits} == set(B2C.canonical_models())
    assert all(c.channel == NO_TOUCH_CHANNEL and c.credit == 1.0 and c.credited_value == 42.0
               and c.touch_event_id is None for c in credits)


def test_last_non_direct_skips_direct_unless_alone() -> None:
    touches = [touch("s", 1, "Paid Social"), touch("d", 2, "Direct")]
    order = conversion("o1", 2.5)
    assert by_model(credit_conversion(order, "k", touches, [order], B2C))["last_non_direct"] == {
        "s": 1.0}
    only_direct = [touch("d", 2, "Direct")]
    assert by_model(credit_conversion(order, "k", only_direct, [order], B2C))[
        "last_non_direct"] == {"d": 1.0}


def test_path_cleaning_drops_direct_and_collapses_repeats() -> None:
    policy = B2C.model_copy(update={"drop_direct": True, "collapse_repeats": True})
    touches = [touch("s1", 1, "Paid Social"), touch("s2", 1.1, "Paid Social"),
               touch("d", 1.2, "Direct"), touch("e", 1.3, "Email"), touch("s3", 1.4, "Paid Social")]
    order = conversion("o1", 2)
    shares = by_model(credit_conversion(order, "k", touches, [order], policy))
    assert shares["linear"] == pytest.approx({"s1": 1 / 3, "e": 1 / 3, "s3": 1 / 3})


def test_b2b_w_and_full_path_use_the_stage_touches() -> None:
    touches = [
        touch("linkedin", 0, "Paid Social"),
        touch("webinar", 30, "Webinar", InteractionKind.OFFLINE),
        touch("whitepaper", 40, "Organic Search"), touch("meeting", 60, "Sales Meeting",
                                                         InteractionKind.OFFLINE),
        touch("email", 80, "Email", InteractionKind.EMAIL),
    ]
    lead = conversion("L1", 35, kind="lead_created", value=0, policy="b2b")
    opp = conversion("O1", 65, kind="opportunity_created", value=50_000, policy="b2b")
    won = conversion("O1", 90, kind="opportunity_won", value=50_000, policy="b2b")
    journey = [lead, opp, won]
    shares = by_model(credit_conversion(won, "account:acme", touches, journey, B2B))
    # lead touch = webinar (last at/before day 35); opportunity touch = meeting (day 60);
    # won touch = email (last touch). W: 30/30/30, rest 10% over whitepaper and email.
    assert shares["w_shaped"] == pytest.approx(
        {"linkedin": 0.3, "webinar": 0.3, "meeting": 0.3, "whitepaper": 0.05, "email": 0.05})
    assert shares["full_path"] == pytest.approx(
        {"linkedin": 0.225, "webinar": 0.225, "meeting": 0.225, "email": 0.225, "whitepaper": 0.1})
    assert shares["first_touch"] == {"linkedin": 1.0}
    values = [c.credited_value for c in credit_conversion(won, "k", touches, journey, B2B)
              if c.model == "w_shaped"]
    assert math.fsum(values) == pytest.approx(50_000, abs=1e-6)
    # The lead conversion itself: W with first + lead touch (webinar, the last before it).
    lead_shares = by_model(credit_conversion(lead, "k", touches, journey, B2B))["w_shaped"]
    assert lead_shares == pytest.approx({"linkedin": 0.5, "webinar": 0.5})


def test_touch_cap_keeps_first_and_stage_touches() -> None:
    policy = B2B.model_copy(update={"max_touches": 3})
    touches = [touch(f"t{i}", i, "Email") for i in range(10)]
    lead = conversion("L", 2.5, kind="lead_created", policy="b2b")
    won = conversion("W", 10, kind="opportunity_won", policy="b2b")
    credited = {c.touch_event_id for c in credit_conversion(won, "k", touches, [lead, won], policy)}
    assert credited == {"t0", "t2", "t9"}


policies = st.sampled_from([B2C, B2B])
touch_lists = st.lists(
    st.tuples(st.floats(0, 400), st.sampled_from(["Direct", "Email", "Paid Social", "Webinar"]),
              st.sampled_from(list(InteractionKind))),
    max_size=12,
)


@given(touch_lists, st.floats(0, 400), st.floats(0, 1e6), policies, st.randoms())
def test_properties(raw: list[tuple[float, str, InteractionKind]], at: float, value: float,
                    policy: Policy, rnd: object) -> None:
    touches = [touch(f"t{i}", d, ch, kind) for i, (d, ch, kind) in enumerate(raw)]
    order = conversion("o", at, value=value, policy=policy.name)
    credits = credit_conversion(order, "k", touches, [order], policy)
    shuffled = list(touches)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    assert credit_conversion(order, "k", shuffled, [order], policy) == credits  # order-free
    for model, rows in _group(credits).items():
        for c in rows:
            assert 0 <= c.credit <= 1
            if c.touch_event_id is not None:
                t = next(t for t in touches if t.event_id == c.touch_event_id)
                assert order.time - policy.lookback[t.kind] <= t.time <= order.time
        if model != "participation":
            assert math.fsum(c.credit for c in rows) == pytest.approx(1.0, abs=1e-12)
            assert math.fsum(c.credited_value for c in rows) == pytest.approx(
                value, rel=1e-9, abs=1e-6)


def _group(credits: list[Credit]) -> dict[str, list[Credit]]:
    out: dict[str, list[Credit]] = defaultdict(list)
    for c in credits:
        out[c.model].append(c)
    return out
