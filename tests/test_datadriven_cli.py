"""`attribution datadriven`: journeys read from a real warehouse, hand-computed Markov and
Shapley credits landed beside the rule-based ones with their fit, and the null-path helper."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from attribution.datadriven.paths import window_paths
from attribution.defaults import load_config
from cli.main import app
from schemas.records import Conversion, Credit, InteractionKind, Touch
from tests.test_allocate import journey_sets, largest_shortfall
from warehouse.datadriven import datadriven_file, model_name, run_datadriven
from warehouse.landing import land
from warehouse.layout import landed_files
from warehouse.query import run_query
from warehouse.views import create_views

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
CONFIG = load_config()


def day(days: float) -> datetime:
    return T0 + timedelta(days=days)


def touch(event_id: str, days: float, channel: str, person: str | None = None,
          anonymous: str | None = None, account: str | None = None,
          kind: InteractionKind = InteractionKind.VISIT) -> dict[str, Any]:
    return Touch(event_id=event_id, time=day(days), channel=channel, person_id=person,
                 anonymous_id=anonymous, account_id=account, kind=kind).model_dump()


def conversion(conversion_id: str, days: float, person: str, value: float,
               kind: str = "purchase", policy: str = "b2c", event: str = "Order Completed",
               account: str | None = None) -> dict[str, Any]:
    record = Conversion(
        conversion_id=conversion_id, event_id=f"ev-{conversion_id}", time=day(days), kind=kind,
        event=event, policy=policy, value=value, currency="USD", person_id=person,
        account_id=account, properties={"order_id": conversion_id, "revenue": value},
    )
    key = f"account:{account}" if policy == "b2b" and account else f"person:{person}"
    return {**record.model_dump(), "journey_key": key}


def credit(conversion_row: dict[str, Any], model: str, touch_row: dict[str, Any] | None,
           share: float, version: int = 1, reason: str = "initial") -> dict[str, Any]:
    return Credit(
        conversion_id=conversion_row["conversion_id"], conversion_kind=conversion_row["kind"],
        journey_key=conversion_row["journey_key"], policy=conversion_row["policy"], model=model,
        touch_event_id=touch_row["event_id"] if touch_row else None,
        touch_time=touch_row["time"] if touch_row else None,
        channel=touch_row["channel"] if touch_row else "(none)", campaign=None, credit=share,
        credited_value=share * conversion_row["value"], currency="USD",
        conversion_time=conversion_row["time"], version=version, reason=reason,
    ).model_dump()


def query(root: Path, statement: str) -> list[tuple[Any, ...]]:
    return run_query(root, statement)[1]


@pytest.fixture
def classic(tmp_path: Path) -> Path:
    """The classic example of tests/test_markov.py, spread over people, plus noise the
    journey builder must handle (an old touch outside the window, a conversion without a
    touch, a person who converted only for another policy).

    Converting: P1 C1 > C2 (X1, value 10), P3 C2 > C3 (X3, value 30, current version 2).
    Non-converting: P2 C1 (its C3 is 20 days older than its last touch, outside the 7-day
    b2c window), P4 C1 > C2, P6 C1 (P6's lead is a b2b kind). P5 converts (X5) untouched.
    """
    root = tmp_path / "wh"
    t = {
        "t1": touch("t1", 0, "C1", person="P1"), "t2": touch("t2", 1, "C2", person="P1"),
        "t3": touch("t3", -20, "C3", person="P2"), "t4": touch("t4", 0, "C1", person="P2"),
        "t5": touch("t5", 0, "C2", person="P3"), "t6": touch("t6", 1, "C3", person="P3"),
        "t7": touch("t7", 0, "C1", person="P4"), "t8": touch("t8", 1, "C2", person="P4"),
        "t9": touch("t9", 0, "C1", person="P6"),
    }
    x1 = conversion("X1", 2, "P1", 10.0)
    x3 = conversion("X3", 2, "P3", 30.0)
    x5 = conversion("X5", 2, "P5", 7.0)
    lead = conversion("L6", 1, "P6", 0.0, kind="lead_created", policy="b2b",
                      event="Lead Created", account="A6")
    land(root, "touches", list(t.values()), name="touches")
    land(root, "conversions", [x1, x3, x5, lead], name="conversions")
    land(root, "credits", [
        credit(x1, "linear", t["t1"], 0.5), credit(x1, "linear", t["t2"], 0.5),
        credit(x1, "last_touch", t["t2"], 1.0),
        credit(x3, "last_touch", t["t6"], 1.0),  # version 1, superseded
        credit(x3, "linear", t["t5"], 0.5, 2, "late_touch"),
        credit(x3, "linear", t["t6"], 0.5, 2, "late_touch"),
        credit(x5, "linear", None, 1.0),
        credit(lead, "linear", t["t9"], 1.0),
    ], name="credits")
    create_views(root)
    return root


def shares(root: Path, model: str) -> dict[tuple[str, str], tuple[float, float, int, str]]:
    rows = query(root, f"""
        SELECT conversion_id, channel, credit, credited_value, version, reason
        FROM credits WHERE model = '{model}' ORDER BY ALL""")
    return {(r[0], r[1]): (r[2], r[3], r[4], r[5]) for r in rows}


def fit(root: Path, model: str) -> dict[str, dict[str, Any]]:
    rows = query(root, f"""
        SELECT channel, credit, model_conversions, credited_value, model_value, fitted
        FROM datadriven_fit WHERE model = '{model}' ORDER BY channel""")
    keys = ("credit", "model_conversions", "credited_value", "model_value", "fitted")
    return {r[0]: dict(zip(keys, r[1:], strict=True)) for r in rows}


def test_markov_order_1_on_a_hand_built_warehouse(classic: Path) -> None:
    # Chain (see test_markov.py): removal effects C1 2/3, C2 1, C3 1/2 (the extra null C1
    # journey of P6 dilutes only the first step, so the effects do not move): 13/6 in all,
    # so the 2 conversions give C1 8/13, C2 12/13, C3 6/13. Only X1 = C1 > C2 holds C1 and
    # only X3 = C2 > C3 holds C3, so both margins leave one split: X1 C1 8/13, C2 5/13;
    # X3 C2 7/13, C3 6/13 (C2: 12/13). The proportional split (X1 0.4 / 0.6, X3 2/3 / 1/3)
    # would land C1 0.4, C2 4/3, C3 1/3 instead.
    # Value (X1 10, X3 30), expected value per walk: v(C3) = 30, v(C2) = (10 + 30) / 3,
    # v(C1) = 2 v(C2) / 4, E = (4 v(C1) + v(C2)) / 5 = 8. Without C1: 8/3 (effect 2/3);
    # without C2: 0 (1); without C3: v(C2) = 10/3, E = 2 (3/4). Of 40: C1 320/29 = 11.03,
    # more than X1's 10, the only value on C1's paths: C1 gets all 10 (30/29 short), and
    # X3's 30 goes to C2 and C3 in proportion to their 480/29 and 360/29: 120/7 and 90/7.
    [result] = run_datadriven(classic, CONFIG, "markov", 1, ["b2c"])
    assert (result.converting, result.non_converting, result.rows) == (2, 3, 5)
    effects = dict(result.channels.select("channel", "weight").rows())
    assert effects == pytest.approx({"C1": 2 / 3, "C2": 1.0, "C3": 0.5})
    got = shares(classic, "markov_o1")
    assert got.keys() == {("X1", "C1"), ("X1", "C2"), ("X3", "C2"), ("X3", "C3"), ("X5", "(none)")}
    assert got[("X1", "C1")][:2] == pytest.approx((8 / 13, 10.0))
    assert got[("X1", "C2")][:2] == pytest.approx((5 / 13, 0.0), abs=1e-9)
    assert got[("X3", "C2")][:2] == pytest.approx((7 / 13, 120 / 7))
    assert got[("X3", "C3")][:2] == pytest.approx((6 / 13, 90 / 7))
    assert got[("X5", "(none)")][:2] == (1.0, 7.0)
    # Each conversion's rows sit on its current version, beside the rule-based ones.
    assert {key: row[2:] for key, row in got.items()} == {
        ("X1", "C1"): (1, "datadriven"), ("X1", "C2"): (1, "datadriven"),
        ("X3", "C2"): (2, "datadriven"), ("X3", "C3"): (2, "datadriven"),
        ("X5", "(none)"): (1, "datadriven"),
    }
    # The fit, as SQL users see it: conversions met, value short on C1 and over elsewhere.
    report = fit(classic, "markov_o1")
    assert list(report) == ["C1", "C2", "C3"]
    columns = {key: [r[key] for r in report.values()] for key in next(iter(report.values()))}
    assert columns["credit"] == pytest.approx(columns["model_conversions"])
    assert columns["model_conversions"] == pytest.approx([8 / 13, 12 / 13, 6 / 13])
    assert columns["credited_value"] == pytest.approx([10.0, 120 / 7, 90 / 7])
    assert columns["model_value"] == pytest.approx([320 / 29, 480 / 29, 360 / 29])
    assert {c: r["fitted"] for c, r in report.items()} == {"C1": False, "C2": False, "C3": False}
    assert not result.fitted


def test_shapley_on_a_hand_built_warehouse(classic: Path) -> None:
    # Sets {C1, C2} and {C2, C3} convert once each: phi = C1 1/2, C2 1, C3 1/2 (null journeys
    # earn nothing), values C1 5, C2 5 + 15, C3 15. Each conversion splits equally, the only
    # split with both margins: X1 1/2 (5) each, X3 1/2 (15) each.
    [result] = run_datadriven(classic, CONFIG, "shapley", policies=["b2c"])
    totals = dict(result.channels.select("channel", "model_conversions").rows())
    assert totals == pytest.approx({"C1": 0.5, "C2": 1.0, "C3": 0.5})
    got = shares(classic, "shapley")
    assert got[("X1", "C1")][:2] == pytest.approx((0.5, 5.0))
    assert got[("X1", "C2")][:2] == pytest.approx((0.5, 5.0))
    assert got[("X3", "C2")][:2] == pytest.approx((0.5, 15.0))
    assert got[("X3", "C3")][:2] == pytest.approx((0.5, 15.0))
    assert result.fitted
    assert all(r["fitted"] for r in fit(classic, "shapley").values())


def test_rerunning_replaces_the_rows_and_keeps_the_views_contract(classic: Path) -> None:
    run_datadriven(classic, CONFIG, "markov", 1, ["b2c"])
    first = query(classic, "SELECT * FROM raw_credits WHERE model = 'markov_o1' ORDER BY ALL")
    run_datadriven(classic, CONFIG, "markov", 1, ["b2c"])
    again = query(classic, "SELECT * FROM raw_credits WHERE model = 'markov_o1' ORDER BY ALL")
    assert again == first  # same rows, not twice as many, and deterministic
    stem = datadriven_file(classic, "b2c", "markov_o1").stem  # one file per conversion day
    assert [p for p in landed_files(classic, "credits") if p.stem == stem]
    sums = query(classic, """
        SELECT c.conversion_id, fsum(c.credit), fsum(c.credited_value), any_value(v.value)
        FROM credits AS c JOIN conversions AS v USING (conversion_id)
        WHERE c.model = 'markov_o1' GROUP BY ALL""")
    assert len(sums) == 3
    for _, credit_sum, value_sum, value in sums:
        assert credit_sum == pytest.approx(1.0)
        assert value_sum == pytest.approx(value)
    # The data-driven rows are never read back as a path: the b2b lead stays as it was.
    assert query(classic, "SELECT count(*) FROM credits WHERE policy = 'b2b'") == [(1,)]


def test_cli_lands_a_higher_order_model_and_prints_channel_weights(classic: Path) -> None:
    result = CliRunner().invoke(app, ["datadriven", "--warehouse", str(classic), "--model",
                                      "markov", "--order", "3", "--policy", "b2c"])
    assert result.exit_code == 0, result.output
    assert "b2c / markov_o3: 2 converting and 3 non-converting journeys" in result.output
    assert query(classic, "SELECT count(*) FROM credits WHERE model = 'markov_o3'") == [(5,)]
    bad = CliRunner().invoke(app, ["datadriven", "--warehouse", str(classic), "--order", "5"])
    assert bad.exit_code != 0
    unknown = CliRunner().invoke(app, ["datadriven", "--warehouse", str(classic), "--policy",
                                       "nope"])
    assert unknown.exit_code == 1


def test_cli_prints_how_far_the_landed_rows_are_from_the_model(classic: Path) -> None:
    # The classic value margin cannot hold (test_markov_order_1_on_a_hand_built_warehouse):
    # C1 is 30/29 short, C2 120/203 and C3 90/203 over.
    markov = CliRunner().invoke(app, ["datadriven", "--warehouse", str(classic), "--policy",
                                      "b2c"], terminal_width=200)
    assert markov.exit_code == 0, markov.output
    assert "model value = the model's value removal effects" in markov.output
    assert "closest fit" in markov.output
    assert "C1: value -1.03 (-9.4%); C2: value +0.59 (+3.6%); C3: value +0.44 (+3.6%)" in (
        " ".join(markov.output.split()))
    shapley = CliRunner().invoke(app, ["datadriven", "--warehouse", str(classic), "--policy",
                                       "b2c", "--model", "shapley"], terminal_width=200)
    assert shapley.exit_code == 0, shapley.output
    assert "closest fit" not in shapley.output and " gap " not in shapley.output


def test_model_names() -> None:
    assert [model_name("markov", k) for k in (1, 4)] == ["markov_o1", "markov_o4"]
    assert model_name("shapley", 3) == "shapley"
    with pytest.raises(ValueError, match="order"):
        model_name("markov", 0)
    with pytest.raises(ValueError, match="unknown"):
        model_name("lstm")


def test_every_policy_of_generated_traffic(tmp_path: Path) -> None:
    from traffic.generate import TrafficSpec, write_jsonl
    from warehouse.replay import replay

    events = tmp_path / "events.jsonl"
    write_jsonl(TrafficSpec(seed=5, b2c_visitors=250, b2b_accounts=4, days=20), events)
    root = tmp_path / "wh"
    replay([events], root)
    steps: list[str] = []
    for model, order in (("markov", 2), ("shapley", 1)):
        results = run_datadriven(root, CONFIG, model, order, step=steps.append)
        assert {r.policy for r in results} >= {"b2b", "b2c"}
    assert len(steps) == 2 * len({r.policy for r in results}) * 4
    per_conversion = query(root, """
        SELECT c.model, c.conversion_id, fsum(c.credit), fsum(c.credited_value),
            any_value(v.value), count(DISTINCT c.version)
        FROM credits AS c JOIN conversions AS v USING (conversion_id)
        WHERE c.reason = 'datadriven' GROUP BY ALL""")
    conversions = query(root, "SELECT count(*) FROM conversions")[0][0]
    assert conversions > 10
    for model in ("markov_o2", "shapley"):
        rows = [r for r in per_conversion if r[0] == model]
        assert len(rows) == conversions  # every conversion has the model
        for _, _, credit_sum, value_sum, value, versions in rows:
            assert credit_sum == pytest.approx(1.0)
            assert value_sum == pytest.approx(value, abs=1e-6)
            assert versions == 1


# --- random journey sets, landed -----------------------------------------------------------


def land_journeys(root: Path, journeys: list[tuple[list[str], bool, int]]) -> None:
    """One person per journey, touches an hour apart; a converting journey's purchase a day
    after its first touch, credited by linear (the path the data-driven models read)."""
    touches, conversions, credits = [], [], []
    for i, (path, converts, value) in enumerate(journeys):
        mine = [touch(f"t{i}-{k}", k / 24, channel, person=f"P{i}")
                for k, channel in enumerate(path)]
        touches += mine
        if converts:
            bought = conversion(f"X{i:02d}", 1, f"P{i}", float(value))
            conversions.append(bought)
            credits += [credit(bought, "linear", t, 1 / len(mine)) for t in mine]
    land(root, "touches", touches, name="touches")
    land(root, "conversions", conversions, name="conversions")
    land(root, "credits", credits, name="credits")
    create_views(root)


@settings(max_examples=8, deadline=None)
@given(journey_sets, st.sampled_from([("markov", 1), ("markov", 2), ("shapley", 1)]))
def test_landed_rows_hold_both_margins_or_report_the_shortfall(
    journeys: list[tuple[list[str], bool, int]], model: tuple[str, int]
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        land_journeys(root, journeys)
        [result] = run_datadriven(root, CONFIG, model[0], model[1], ["b2c"])
        name = model_name(*model)
        per_conversion = query(root, f"""
            SELECT c.conversion_id, fsum(c.credit), fsum(c.credited_value), any_value(v.value)
            FROM credits AS c JOIN conversions AS v USING (conversion_id)
            WHERE c.model = '{name}' GROUP BY ALL""")
        landed = {r[0]: r[1:] for r in query(root, f"""
            SELECT channel, fsum(credit), fsum(credited_value) FROM credits
            WHERE model = '{name}' GROUP BY ALL""")}
        report = {r[0]: r[1:] for r in query(root, f"""
            SELECT channel, model_conversions, credit, model_value, credited_value, fitted
            FROM datadriven_fit WHERE model = '{name}'""")}
    converting = [(set(path), float(value)) for path, converts, value in journeys if converts]
    assert len(per_conversion) == len(converting)
    for _, credit_sum, value_sum, value in per_conversion:
        assert credit_sum == pytest.approx(1.0, abs=1e-12)
        assert value_sum == pytest.approx(value, abs=1e-9)
    assert report.keys() >= landed.keys() - {"(none)"}
    for margin, (model_at, landed_at), sql_at, mass in (
        ("conversions", (0, 1), 0, [1.0] * len(converting)),
        ("value", (2, 3), 1, [v for _, v in converting]),
    ):
        target = {c: r[model_at] for c, r in report.items()}
        gaps = {c: landed.get(c, (0.0, 0.0))[sql_at] - target[c] for c in report}
        assert gaps == pytest.approx({c: r[landed_at] - r[model_at] for c, r in report.items()},
                                     abs=1e-9)
        lack, short_set = largest_shortfall([p for p, _ in converting], mass, target)
        tolerance = 1e-7 * max(sum(mass), 1.0)
        if lack <= tolerance:
            assert all(abs(g) <= tolerance for g in gaps.values()), (margin, gaps)
        else:
            short = {c for c, g in gaps.items() if g < -tolerance}
            assert short and short <= short_set, (margin, gaps, short_set)
            assert sum(g for g in gaps.values() if g < 0) == pytest.approx(-lack, abs=tolerance)
            assert not result.fitted
            assert not all(r[4] for r in report.values())
    if model[0] == "shapley":
        assert result.fitted


# --- non-converting paths ------------------------------------------------------------------


def null_touches(rows: list[tuple[str, float, str, str]]) -> pl.DataFrame:
    return pl.DataFrame(
        [(key, f"{key}-{i}", day(days), channel, kind)
         for i, (key, days, channel, kind) in enumerate(rows)],
        schema=["journey_key", "event_id", "time", "channel", "kind"], orient="row",
    )


def test_window_paths_window_ends_at_the_last_touch() -> None:
    touches = null_touches([
        ("p", 0, "Email", "visit"), ("p", 8, "Display", "view"), ("p", 10, "Direct", "visit"),
        ("p", 10.5, "Direct", "visit"), ("p", 12, "Paid Search", "visit"),
        ("q", 3, "Direct", "visit"), ("r", 1, "Email", "offline"),
    ])
    lookback = {"visit": 7 * 86400.0, "view": 86400.0, "click": 0.0}
    plain = window_paths(touches, lookback)
    # p: Email is 12 days old, the view 4 days (view window 1 day): both out. r: no window.
    assert plain.rows() == [("p", ["Direct", "Direct", "Paid Search"]), ("q", ["Direct"])]
    cleaned = window_paths(touches, lookback, drop_direct=True, collapse_repeats=True)
    assert cleaned.rows() == [("p", ["Paid Search"]), ("q", ["Direct"])]
    collapsed = window_paths(touches, lookback, collapse_repeats=True, max_touches=2)
    assert collapsed.rows() == [("p", ["Direct", "Paid Search"]), ("q", ["Direct"])]


def test_window_paths_cap_keeps_the_first_and_the_latest() -> None:
    touches = null_touches([("p", i / 10, f"C{i}", "visit") for i in range(6)])
    capped = window_paths(touches, {"visit": 86400.0}, max_touches=3)
    assert capped.rows() == [("p", ["C0", "C4", "C5"])]
