"""Analyst views on a small hand-built warehouse with hand-computed answers.

The warehouse (``build_kpi_warehouse``) holds, over days 0..30 from T0:

B2C (policy b2c: last_touch, linear; policy considered: first_touch, last_touch)
    p1: t1 day 0 Paid Social/fb_a visit (anonymous "anon1", resolved to p1 by the identity
        map), t2 day 1 Email/news visit; c1 purchase day 2 = 100 (b2c, version 2 after the
        late touch t2; version 1 credited t1 alone), c3 purchase day 3 = 6000 (considered)
    p2: t3 day 0 Paid Social/fb_a visit; c2 purchase day 1 = 60
    p3: t4 day 2 Organic Search visit, no conversion
    p4: c4 purchase day 1 = 20 without eligible touch; version 2 (reattribution) dropped
        last_touch
B2B (policy b2b: first_touch, linear; account journeys)
    A1: b1 day 0 Paid Social/li_x visit (u1), b2 day 10 Organic Search visit (u2),
        b3 day 20 Sales Meeting offline (u1); L1 lead day 5, O1 opportunity day 15 = 1000,
        W1 won day 30 = 800
    A2: b4 day 0 Organic Search visit (u3); L2 lead day 1
Spend: fb_a 50 (1500 impressions, 25 clicks over two days), news 5 (200/10),
    disp (Display, no touches) 30 (3000/3), li_x (B2B) 200 (2000/10).
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from warehouse.landing import land
from warehouse.query import connect_readonly, run_query
from warehouse.views import create_views

T0 = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)


def day(n: float) -> datetime:
    return T0 + timedelta(days=n)


TOUCHES: dict[str, dict[str, Any]] = {}


def _touch(event_id: str, n: float, channel: str, campaign: str | None, kind: str = "visit",
           *, anonymous: str | None = None, person: str | None = None,
           account: str | None = None) -> dict[str, Any]:
    row = {"event_id": event_id, "time": day(n), "anonymous_id": anonymous,
           "person_id": person, "account_id": account, "channel": channel, "source": None,
           "medium": None, "campaign": campaign, "kind": kind, "properties": "{}"}
    TOUCHES[event_id] = row
    return row


TOUCH_ROWS = [
    _touch("t1", 0, "Paid Social", "fb_a", anonymous="anon1"),
    _touch("t2", 1, "Email", "news", person="p1"),
    _touch("t3", 0, "Paid Social", "fb_a", person="p2"),
    _touch("t4", 2, "Organic Search", None, person="p3"),
    _touch("b1", 0, "Paid Social", "li_x", person="u1", account="A1"),
    _touch("b2", 10, "Organic Search", None, person="u2", account="A1"),
    _touch("b3", 20, "Sales Meeting", None, "offline", person="u1", account="A1"),
    _touch("b4", 0, "Organic Search", None, person="u3", account="A2"),
]

# conversion id -> (kind, policy, journey key, day, value)
CONVERSIONS: dict[str, tuple[str, str, str, float, float]] = {
    "c1": ("purchase", "b2c", "person:p1", 2, 100.0),
    "c2": ("purchase", "b2c", "person:p2", 1, 60.0),
    "c3": ("purchase", "considered", "person:p1", 3, 6000.0),
    "c4": ("purchase", "b2c", "person:p4", 1, 20.0),
    "L1": ("lead_created", "b2b", "account:A1", 5, 0.0),
    "O1": ("opportunity_created", "b2b", "account:A1", 15, 1000.0),
    "W1": ("opportunity_won", "b2b", "account:A1", 30, 800.0),
    "L2": ("lead_created", "b2b", "account:A2", 1, 0.0),
}


def _conversion(conversion_id: str) -> dict[str, Any]:
    kind, policy, journey, n, value = CONVERSIONS[conversion_id]
    return {"conversion_id": conversion_id, "event_id": f"e-{conversion_id}", "time": day(n),
            "kind": kind, "event": kind, "policy": policy, "value": value,
            "currency": "USD" if value else None, "anonymous_id": None,
            "person_id": journey.split(":")[1], "account_id": None, "journey_key": journey,
            "properties": "{}"}


def _credits(conversion_id: str, model: str, shares: dict[str | None, float], version: int = 1,
             reason: str = "initial") -> list[dict[str, Any]]:
    kind, policy, journey, n, value = CONVERSIONS[conversion_id]
    rows = []
    for touch_id, share in shares.items():
        touch = TOUCHES[touch_id] if touch_id else None
        rows.append({
            "conversion_id": conversion_id, "conversion_kind": kind, "journey_key": journey,
            "policy": policy, "model": model, "touch_event_id": touch_id,
            "touch_time": touch["time"] if touch else None,
            "channel": touch["channel"] if touch else "(none)",
            "campaign": touch["campaign"] if touch else None, "credit": share,
            "credited_value": share * value, "currency": "USD" if value else None,
            "conversion_time": day(n), "version": version, "reason": reason,
        })
    return rows


THIRD = 1 / 3
CREDIT_ROWS = [
    *_credits("c1", "last_touch", {"t1": 1.0}),
    *_credits("c1", "linear", {"t1": 1.0}),
    *_credits("c1", "last_touch", {"t2": 1.0}, 2, "late_touch"),
    *_credits("c1", "linear", {"t1": 0.5, "t2": 0.5}, 2, "late_touch"),
    # `attribution datadriven` adds a model to the current version with its own reason
    *_credits("c1", "markov_o1", {"t1": 0.25, "t2": 0.75}, 2, "datadriven"),
    *_credits("c2", "last_touch", {"t3": 1.0}),
    *_credits("c2", "linear", {"t3": 1.0}),
    *_credits("c3", "first_touch", {"t1": 1.0}),
    *_credits("c3", "last_touch", {"t2": 1.0}),
    *_credits("c4", "last_touch", {None: 1.0}),
    *_credits("c4", "linear", {None: 1.0}),
    *_credits("c4", "linear", {None: 1.0}, 2, "reattribution"),
    *_credits("L1", "first_touch", {"b1": 1.0}),
    *_credits("L1", "linear", {"b1": 1.0}),
    *_credits("O1", "first_touch", {"b1": 1.0}),
    *_credits("O1", "linear", {"b1": 0.5, "b2": 0.5}),
    *_credits("W1", "first_touch", {"b1": 1.0}),
    *_credits("W1", "linear", {"b1": THIRD, "b2": THIRD, "b3": THIRD}),
    *_credits("L2", "first_touch", {"b4": 1.0}),
    *_credits("L2", "linear", {"b4": 1.0}),
]


def _spend(day_number: int, channel: str, campaign: str | None, cost: float,
           impressions: int, clicks: int) -> dict[str, Any]:
    return {"date": date(2024, 3, 1) + timedelta(days=day_number), "channel": channel,
            "campaign": campaign, "cost": cost, "impressions": impressions, "clicks": clicks,
            "currency": "USD"}


SPEND_ROWS = [
    _spend(0, "Paid Social", "fb_a", 40.0, 1000, 20),
    _spend(1, "Paid Social", "fb_a", 10.0, 500, 5),
    _spend(0, "Email", "news", 5.0, 200, 10),
    _spend(0, "Display", "disp", 30.0, 3000, 3),
    _spend(0, "Paid Social", "li_x", 200.0, 2000, 10),
]


def build_kpi_warehouse(root: Path) -> Path:
    """Land the rows described in the module docstring and build the views."""
    land(root, "touches", TOUCH_ROWS, name="touches")
    land(root, "identity_map", [{"id": "anon1", "person_key": "p1", "account_key": None,
                                 "as_of": day(0)}], name="identities")
    land(root, "conversions", [_conversion(c) for c in CONVERSIONS], name="conversions")
    land(root, "credits", CREDIT_ROWS, name="credits")
    land(root, "spend", SPEND_ROWS, name="spend")
    create_views(root)
    return root


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_kpi_warehouse(tmp_path_factory.mktemp("kpis"))


def rows(root: Path, sql: str) -> list[dict[str, Any]]:
    columns, values = run_query(root, sql)
    return [dict(zip(columns, row, strict=True)) for row in values]


def close(actual: Any, expected: Any) -> bool:
    """Equal, with floats to 1e-9 (sums of shares like 1/3 are not exact)."""
    if isinstance(expected, float) and isinstance(actual, int | float):
        return math.isclose(actual, expected, rel_tol=1e-9, abs_tol=1e-9)
    return bool(actual == expected)


def assert_row(actual: dict[str, Any], **expected: Any) -> None:
    wrong = {k: (actual[k], v) for k, v in expected.items() if not close(actual[k], v)}
    assert not wrong, f"(actual, expected) differ: {wrong} in {actual}"


def keyed(found: list[dict[str, Any]], *columns: str) -> dict[tuple[Any, ...], dict[str, Any]]:
    out = {tuple(row[c] for c in columns): row for row in found}
    assert len(out) == len(found), "key columns do not identify the rows"
    return out


def test_policy_and_campaign_segments(warehouse: Path) -> None:
    policies = keyed(rows(warehouse, "SELECT * FROM policy_segments"), "policy")
    assert {p: (r["segment"], r["conversions"]) for (p,), r in policies.items()} == {
        "b2b": ("b2b", 4), "b2c": ("b2c", 3), "considered": ("b2c", 1)}
    campaigns = rows(warehouse, "SELECT channel, campaign, b2c_touches, b2b_touches, segment "
                                "FROM campaign_segments")
    assert [tuple(r.values()) for r in campaigns] == [
        ("Display", "disp", 0, 0, "b2c"),  # spend without touches: B2C
        ("Email", "news", 1, 0, "b2c"),
        ("Organic Search", None, 1, 2, "b2b"),
        ("Paid Social", "fb_a", 2, 0, "b2c"),
        ("Paid Social", "li_x", 0, 1, "b2b"),
        ("Sales Meeting", None, 0, 1, "b2b"),
    ]


def test_b2c_kpis(warehouse: Path) -> None:
    found = keyed(rows(warehouse, "SELECT * FROM b2c_kpis"), "policy", "model", "channel",
                  "campaign")
    # B2B-only campaigns and traffic never show on the B2C side
    assert {(k[2], k[3]) for k in found} == {
        ("Paid Social", "fb_a"), ("Email", "news"), ("Display", "disp"),
        ("Organic Search", None), ("(none)", None)}
    assert {k[:2] for k in found} == {
        ("b2c", "last_touch"), ("b2c", "linear"), ("b2c", "markov_o1"),
        ("considered", "first_touch"), ("considered", "last_touch")}
    # last touch: c1 (current version) -> Email, c2 -> fb_a; c4's last_touch was dropped
    assert_row(found["b2c", "last_touch", "Email", "news"], sessions=1, impressions=200,
               clicks=10, ctr=0.05, credited_conversions=1.0, credited_revenue=100.0, cost=5.0,
               roas=20.0, cpa=5.0, currencies="USD")
    assert_row(found["b2c", "last_touch", "Paid Social", "fb_a"], sessions=2, impressions=1500,
               clicks=25, ctr=25 / 1500, credited_conversions=1.0, credited_revenue=60.0,
               cost=50.0, roas=1.2, cpa=50.0)
    assert_row(found["b2c", "last_touch", "Display", "disp"], sessions=0, impressions=3000,
               clicks=3, ctr=0.001, credited_conversions=0.0, credited_revenue=0.0, cost=30.0,
               roas=0.0, cpa=None)
    # t4 is the only visit without an account; b2/b4 are B2B traffic
    assert_row(found["b2c", "last_touch", "Organic Search", None], sessions=1,
               impressions=None, cost=None, roas=None, credited_conversions=0.0,
               currencies=None)
    assert ("b2c", "last_touch", "(none)", None) not in found  # c4's version 2 dropped it
    # linear: c1 split 50/50 between fb_a and news, c2 all fb_a, c4 without touch
    assert_row(found["b2c", "linear", "Paid Social", "fb_a"], credited_conversions=1.5,
               credited_revenue=110.0, roas=2.2, cpa=50 / 1.5)
    assert_row(found["b2c", "linear", "Email", "news"], credited_conversions=0.5,
               credited_revenue=50.0, roas=10.0, cpa=10.0)
    assert_row(found["b2c", "linear", "(none)", None], credited_conversions=1.0,
               credited_revenue=20.0, cost=None, sessions=0)
    # the considered policy has its own window; the full campaign cost shows there too
    assert_row(found["considered", "last_touch", "Email", "news"], credited_revenue=6000.0,
               cost=5.0, roas=1200.0)
    assert_row(found["considered", "first_touch", "Paid Social", "fb_a"],
               credited_revenue=6000.0, credited_conversions=1.0, roas=120.0)


def test_b2b_kpis(warehouse: Path) -> None:
    found = keyed(rows(warehouse, "SELECT * FROM b2b_kpis"), "model", "channel")
    assert {r["policy"] for r in found.values()} == {"b2b"}
    assert set(found) == {("first_touch", "Paid Social"), ("first_touch", "Organic Search"),
                          ("linear", "Paid Social"), ("linear", "Organic Search"),
                          ("linear", "Sales Meeting")}
    # first touch: b1 takes L1, O1 and W1; b4 takes L2 (which never progressed)
    assert_row(found["first_touch", "Paid Social"], leads=1.0, opportunities=1.0,
               won_deals=1.0, lead_to_opportunity_rate=1.0, lead_to_customer_rate=1.0,
               pipeline=1000.0, won_revenue=800.0, avg_days_to_close=30.0,
               avg_touches_per_won_deal=3.0, avg_contacts_per_won_deal=2.0, cost=200.0,
               cost_per_lead=200.0, roas=4.0, currencies="USD")
    assert_row(found["first_touch", "Organic Search"], leads=1.0, opportunities=0.0,
               won_deals=0.0, lead_to_opportunity_rate=0.0, lead_to_customer_rate=0.0,
               pipeline=0.0, won_revenue=0.0, avg_days_to_close=None, cost=None, roas=None)
    # linear: O1 half/half, W1 a third each of b1, b2, b3
    assert_row(found["linear", "Paid Social"], leads=1.0, opportunities=0.5,
               won_deals=THIRD, pipeline=500.0, won_revenue=800 / 3, roas=800 / 3 / 200,
               lead_to_opportunity_rate=1.0, avg_days_to_close=30.0)
    assert_row(found["linear", "Organic Search"], leads=1.0, opportunities=0.5,
               won_deals=THIRD, pipeline=500.0, won_revenue=800 / 3,
               lead_to_opportunity_rate=0.0, lead_to_customer_rate=0.0,
               avg_contacts_per_won_deal=2.0)
    assert_row(found["linear", "Sales Meeting"], leads=0.0, won_deals=THIRD,
               lead_to_opportunity_rate=None, cost_per_lead=None, cost=None)


def test_customers_and_ltv(warehouse: Path) -> None:
    customers = keyed(rows(warehouse, "SELECT * FROM customers"), "journey_key")
    assert set(customers) == {("person:p1",), ("person:p2",), ("person:p4",), ("account:A1",)}
    # p1's first touch is the anonymous t1, resolved through the identity map
    assert_row(customers["person:p1",], segment="b2c", first_touch_channel="Paid Social",
               first_touch_campaign="fb_a", first_touch_time=day(0), revenue_conversions=2,
               lifetime_value=6100.0, first_revenue_time=day(2), last_revenue_time=day(3))
    assert_row(customers["account:A1",], segment="b2b", first_touch_channel="Paid Social",
               first_touch_campaign="li_x", revenue_conversions=1, lifetime_value=800.0)
    ltv = keyed(rows(warehouse, "SELECT * FROM customer_ltv"), "segment", "first_touch_channel")
    assert set(ltv) == {("b2c", "Paid Social"), ("b2c", "(none)"), ("b2b", "Paid Social")}
    assert_row(ltv["b2c", "Paid Social"], customers=2, revenue_conversions=3,
               lifetime_value=6160.0, avg_lifetime_value=3080.0, median_lifetime_value=3080.0,
               avg_revenue_conversions=1.5, avg_days_to_first_revenue=1.5, currencies="USD")
    assert_row(ltv["b2b", "Paid Social"], customers=1, lifetime_value=800.0,
               avg_days_to_first_revenue=30.0)
    # p4 bought without any known touch
    assert_row(customers["person:p4",], first_touch_channel="(none)", first_touch_time=None,
               lifetime_value=20.0)
    assert_row(ltv["b2c", "(none)"], customers=1, lifetime_value=20.0,
               avg_days_to_first_revenue=None)


def test_model_comparison_per_conversion(warehouse: Path) -> None:
    found = keyed(rows(warehouse, "SELECT * FROM model_comparison"), "conversion_id", "model",
                  "channel")
    # c1, current version: last touch is t2 (Email); the grid has both channels
    assert_row(found["c1", "last_touch", "Email"], credit=1.0, last_touch_credit=1.0,
               credit_change=0.0, value=100.0)
    assert_row(found["c1", "last_touch", "Paid Social"], credit=0.0, last_touch_credit=0.0,
               credit_change=0.0)
    assert_row(found["c1", "linear", "Email"], credit=0.5, credit_change=-0.5,
               credited_value=50.0, last_touch_value=100.0, value_change=-50.0)
    assert_row(found["c1", "linear", "Paid Social"], credit=0.5, credit_change=0.5,
               value_change=50.0)
    # B2B has no last_touch model: the computed baseline is the latest touch b3
    assert_row(found["W1", "first_touch", "Paid Social"], credit=1.0, credit_change=1.0,
               value_change=800.0, policy="b2b", conversion_kind="opportunity_won")
    assert_row(found["W1", "first_touch", "Sales Meeting"], credit=0.0, last_touch_credit=1.0,
               value_change=-800.0)
    assert_row(found["W1", "linear", "Sales Meeting"], credit=THIRD, credit_change=-2 / 3)
    # a conversion without an eligible touch compares with '(none)'; only current models
    assert_row(found["c4", "linear", "(none)"], credit=1.0, last_touch_credit=1.0,
               credit_change=0.0)
    assert ("c4", "last_touch", "(none)") not in found
    assert sum(1 for k in found if k[0] == "W1") == 2 * 3  # 2 models x 3 channels


def test_model_comparison_by_channel(warehouse: Path) -> None:
    found = keyed(rows(warehouse, "SELECT * FROM model_comparison_by_channel"), "policy",
                  "model", "channel")
    # first touch gives b1 L1, O1 and W1; last touch gives Paid Social only L1 (value 0)
    assert_row(found["b2b", "first_touch", "Paid Social"], conversions=3.0,
               credited_value=1800.0, last_touch_conversions=1.0, last_touch_value=0.0,
               conversions_change=2.0, value_change=1800.0, value_change_pct=None)
    # O1's last touch is b2 and L2's is b4: Organic Search loses 1000 under first touch
    assert_row(found["b2b", "first_touch", "Organic Search"], conversions=1.0,
               credited_value=0.0, last_touch_conversions=2.0, last_touch_value=1000.0,
               value_change=-1000.0, value_change_pct=-1.0)
    assert_row(found["b2c", "linear", "Paid Social"], conversions=1.5, credited_value=110.0,
               last_touch_conversions=1.0, last_touch_value=60.0, value_change=50.0,
               value_change_pct=50 / 60)


def test_journey_explorer(warehouse: Path) -> None:
    found = rows(warehouse, "SELECT * FROM journey_explorer WHERE conversion_id = 'W1' "
                            "ORDER BY position, model")
    assert [(r["position"], r["touch_event_id"], r["model"]) for r in found] == [
        (1, "b1", "first_touch"), (1, "b1", "linear"), (2, "b2", "first_touch"),
        (2, "b2", "linear"), (3, "b3", "first_touch"), (3, "b3", "linear")]
    first = found[0]
    assert_row(first, path_length=3, channel="Paid Social", campaign="li_x", kind="visit",
               person_key="u1", touch_time=day(0), days_before_conversion=30.0, credit=1.0,
               credited_value=800.0, journey_key="account:A1", policy="b2b")
    assert_row(found[3], credit=THIRD, credited_value=800 / 3, person_key="u2",
               days_before_conversion=20.0)
    assert_row(found[4], channel="Sales Meeting", kind="offline", credit=0.0)
    # the latest version only: c1's path has both touches, and no conversion without touches
    c1 = rows(warehouse, "SELECT DISTINCT position, touch_event_id, person_key "
                         "FROM journey_explorer WHERE conversion_id = 'c1' ORDER BY position")
    assert [tuple(r.values()) for r in c1] == [(1, "t1", "p1"), (2, "t2", "p1")]
    assert rows(warehouse, "SELECT * FROM journey_explorer WHERE conversion_id = 'c4'") == []


def test_credit_audit(warehouse: Path) -> None:
    found = keyed(rows(warehouse, "SELECT * FROM credit_audit"), "conversion_id", "version",
                  "model", "channel")
    # the late touch t2 moved c1's last touch from Paid Social to Email
    assert_row(found["c1", 2, "last_touch", "Email"], previous_version=1, is_latest=True,
               reason="late_touch", credit=1.0, previous_credit=0.0, credit_change=1.0,
               value_change=100.0, touches=2, previous_touches=1, policy="b2c",
               previous_policy="b2c", journey_key="person:p1")
    assert_row(found["c1", 2, "last_touch", "Paid Social"], credit=0.0, previous_credit=1.0,
               credit_change=-1.0, value_change=-100.0)
    assert_row(found["c1", 2, "linear", "Paid Social"], credit=0.5, previous_credit=1.0,
               credit_change=-0.5)
    # the data-driven rows are new in version 2 and do not change its reason
    assert_row(found["c1", 2, "markov_o1", "Email"], reason="late_touch", credit=0.75,
               previous_credit=0.0, credit_change=0.75, value_change=75.0)
    assert_row(found["c1", 1, "linear", "Paid Social"], previous_version=None,
               is_latest=False, reason="initial", credit=1.0, previous_credit=None,
               credit_change=None)
    # re-attribution dropped last_touch for c4: the model shows with credit 0
    assert_row(found["c4", 2, "last_touch", "(none)"], reason="reattribution", credit=0.0,
               previous_credit=1.0, credit_change=-1.0, touches=0)
    assert_row(found["c4", 2, "linear", "(none)"], credit=1.0, credit_change=0.0)
    assert_row(found["W1", 1, "linear", "Sales Meeting"], is_latest=True, credit=THIRD)
    # c1 v1, c1 v2 (with markov), c2, c3, c4 v1, c4 v2, L1, O1, W1, L2
    assert len(found) == 2 + 6 + 2 + 2 + 2 + 2 + 2 + 3 + 4 + 2
    changes = keyed(rows(warehouse, "SELECT * FROM credit_changes"), "reason", "model",
                    "channel")
    assert set(changes) == {("late_touch", "last_touch", "Email"),
                            ("late_touch", "last_touch", "Paid Social"),
                            ("late_touch", "linear", "Email"),
                            ("late_touch", "linear", "Paid Social"),
                            ("late_touch", "markov_o1", "Email"),
                            ("late_touch", "markov_o1", "Paid Social"),
                            ("reattribution", "last_touch", "(none)"),
                            ("reattribution", "linear", "(none)")}
    assert_row(changes["late_touch", "linear", "Paid Social"], conversions=1,
               credit_change=-0.5, value_change=-50.0, credited_value=50.0,
               previous_credited_value=100.0)


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A replay of generated B2C and B2B traffic with its spend imported."""
    from traffic.generate import TrafficSpec, write_jsonl, write_spend_csv
    from warehouse.replay import replay
    from warehouse.spend import import_spend

    directory = tmp_path_factory.mktemp("generated")
    spec = TrafficSpec(seed=7, b2c_visitors=400, b2b_accounts=12)
    write_jsonl(spec, directory / "events.jsonl")
    write_spend_csv(spec, directory / "spend.csv")
    root = directory / "wh"
    replay([directory / "events.jsonl"], root)
    import_spend(root, directory / "spend.csv")
    create_views(root)
    return root


def test_views_agree_with_each_other_on_generated_traffic(generated: Path) -> None:
    """Invariants that hold on any data: every credited unit shows up once."""
    with connect_readonly(generated) as connection:
        _check_invariants(connection)


def _check_invariants(connection: duckdb.DuckDBPyConnection) -> None:

    def one(sql: str) -> list[tuple[Any, ...]]:
        return connection.execute(sql).fetchall()

    # b2c_kpis holds all of the B2C credits, b2b_kpis all of the B2B stage credits
    assert one("""
        SELECT * FROM (SELECT policy, model, sum(credited_revenue) AS v FROM b2c_kpis
                       GROUP BY ALL) AS k
        JOIN (SELECT policy, model, sum(credited_value) AS v FROM credits GROUP BY ALL) AS c
        USING (policy, model) WHERE abs(k.v - c.v) > 1e-6""") == []
    assert one("SELECT count(DISTINCT policy) FROM b2c_kpis") == [(2,)]
    leads, won = one("""
        SELECT count(*) FILTER (WHERE kind = 'lead_created'),
            sum(value) FILTER (WHERE kind = 'opportunity_won')
        FROM conversions WHERE policy = 'b2b'""")[0]
    assert leads > 0 and won > 0
    for model, model_leads, model_won in one(
            "SELECT model, sum(leads), sum(won_revenue) FROM b2b_kpis GROUP BY model"):
        assert (model_leads, model_won) == (pytest.approx(leads), pytest.approx(won)), model
    # spend is charged to exactly one side
    assert one("""
        SELECT (SELECT sum(cost) FROM spend) - (
            SELECT sum(cost) FROM b2c_kpis WHERE (policy, model) = (
                SELECT (policy, min(model)) FROM b2c_kpis WHERE policy = 'b2c' GROUP BY policy))
            - (SELECT sum(cost) FROM b2b_kpis WHERE model = (SELECT min(model) FROM b2b_kpis))
        """)[0][0] == pytest.approx(0, abs=1e-6)
    # each model's changes against last touch cancel out per conversion
    assert one("""
        SELECT conversion_id, model FROM model_comparison WHERE model <> 'participation'
        GROUP BY ALL HAVING abs(sum(credit_change)) > 1e-9""") == []
    # every conversion with touches has its full credit on the explorer's path
    assert one("""
        SELECT conversion_id, model FROM journey_explorer WHERE model <> 'participation'
        GROUP BY ALL HAVING abs(sum(credit) - 1) > 1e-9""") == []
    assert one("SELECT count(DISTINCT conversion_id) FROM journey_explorer") == one(
        "SELECT count(DISTINCT conversion_id) FROM credits WHERE touch_event_id IS NOT NULL")
    # customers' lifetime value is all the revenue conversions' value
    assert one("SELECT sum(lifetime_value) FROM customer_ltv")[0][0] == pytest.approx(one(
        "SELECT sum(value) FROM conversions WHERE kind NOT IN ('lead_created', "
        "'opportunity_created')")[0][0])
    # a replay writes version 1 only, and the audit shows no change
    assert one("SELECT DISTINCT reason, previous_version FROM credit_audit") == [("initial", None)]
