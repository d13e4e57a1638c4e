"""`attribution datadriven`: journeys read from a real warehouse, hand-computed Markov and
Shapley credits landed beside the rule-based ones, and the allocation and null-path helpers."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from attribution.datadriven.allocate import allocate_by_channel_weight
from attribution.datadriven.paths import window_paths
from attribution.defaults import load_config
from cli.main import app
from schemas.records import Conversion, Credit, InteractionKind, Touch
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


def test_markov_order_1_on_a_hand_built_warehouse(classic: Path) -> None:
    # Chain (see test_markov.py): removal effects C1 2/3, C2 1, C3 1/2 (the extra null C1
    # journey of P6 dilutes only the first step, so the effects do not move).
    # X1 = C1 > C2: 2/3 : 1 -> 0.4 / 0.6 of 10. X3 = C2 > C3: 1 : 1/2 -> 2/3 / 1/3 of 30.
    [result] = run_datadriven(classic, CONFIG, "markov", 1, ["b2c"])
    assert (result.converting, result.non_converting, result.rows) == (2, 3, 5)
    effects = dict(result.channels.select("channel", "weight").rows())
    # "(none)" has no weight: it is the landed row of the conversion without a touch
    assert effects == pytest.approx({"C1": 2 / 3, "C2": 1.0, "C3": 0.5, "(none)": None})
    got = shares(classic, "markov_o1")
    assert got.keys() == {("X1", "C1"), ("X1", "C2"), ("X3", "C2"), ("X3", "C3"), ("X5", "(none)")}
    assert got[("X1", "C1")][:2] == pytest.approx((0.4, 4.0))
    assert got[("X1", "C2")][:2] == pytest.approx((0.6, 6.0))
    assert got[("X3", "C2")][:2] == pytest.approx((2 / 3, 20.0))
    assert got[("X3", "C3")][:2] == pytest.approx((1 / 3, 10.0))
    assert got[("X5", "(none)")][:2] == (1.0, 7.0)
    # Each conversion's rows sit on its current version, beside the rule-based ones.
    assert {key: row[2:] for key, row in got.items()} == {
        ("X1", "C1"): (1, "datadriven"), ("X1", "C2"): (1, "datadriven"),
        ("X3", "C2"): (2, "datadriven"), ("X3", "C3"): (2, "datadriven"),
        ("X5", "(none)"): (1, "datadriven"),
    }


def test_shapley_on_a_hand_built_warehouse(classic: Path) -> None:
    # Sets {C1, C2} and {C2, C3} convert once each: phi = C1 1/2, C2 1, C3 1/2 (null journeys
    # earn nothing). X1: 1/3 / 2/3 of 10; X3: 2/3 / 1/3 of 30.
    [result] = run_datadriven(classic, CONFIG, "shapley", policies=["b2c"])
    scored = result.channels.drop_nulls("weight")
    totals = dict(scored.select("channel", "model_conversions").rows())
    assert totals == pytest.approx({"C1": 0.5, "C2": 1.0, "C3": 0.5})
    got = shares(classic, "shapley")
    assert got[("X1", "C1")][:2] == pytest.approx((1 / 3, 10 / 3))
    assert got[("X1", "C2")][:2] == pytest.approx((2 / 3, 20 / 3))
    assert got[("X3", "C2")][:2] == pytest.approx((2 / 3, 20.0))
    assert got[("X3", "C3")][:2] == pytest.approx((1 / 3, 10.0))


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


# --- allocation ----------------------------------------------------------------------------


def path_frame(paths: dict[str, list[str]], values: dict[str, float]) -> pl.DataFrame:
    rows = [(cid, i, channel, values[cid]) for cid, path in paths.items()
            for i, channel in enumerate(path)]
    return pl.DataFrame(rows, schema=["conversion_id", "position", "channel", "value"],
                        orient="row")


def test_allocation_splits_a_channel_equally_over_its_touches() -> None:
    # Path A > B > A with weights A 3, B 1: A gets 3/4 in two halves, B 1/4. Value 100.
    frame = allocate_by_channel_weight(path_frame({"x": ["A", "B", "A"]}, {"x": 100.0}),
                                       {"A": 3.0, "B": 1.0})
    assert frame["credit"].to_list() == pytest.approx([0.375, 0.25, 0.375])
    assert frame["credited_value"].to_list() == pytest.approx([37.5, 25.0, 37.5])


def test_allocation_falls_back_to_equal_shares_and_drops_zero_shares() -> None:
    frame = allocate_by_channel_weight(
        path_frame({"x": ["A", "B"], "y": ["A", "C"]}, {"x": 9.0, "y": 4.0}),
        {"A": 0.0, "B": 0.0, "C": 2.0},
    )
    assert frame.select("conversion_id", "channel", "credit").rows() == [
        ("x", "A", 0.5), ("x", "B", 0.5), ("y", "C", 1.0)
    ]
    empty = allocate_by_channel_weight(path_frame({}, {}), {"A": 1.0})
    assert empty.is_empty() and "credit" in empty.columns


paths_strategy = st.dictionaries(
    st.text("xyz", min_size=1, max_size=3),
    st.lists(st.sampled_from(["A", "B", "C", "D"]), min_size=1, max_size=7),
    max_size=8,
)


@settings(deadline=None)
@given(paths_strategy,
       st.dictionaries(st.sampled_from(["A", "B", "C"]), st.floats(0, 5), max_size=3),
       st.floats(0, 1e6))
def test_allocation_sums_to_one_and_to_the_value(
    paths: dict[str, list[str]], weights: dict[str, float], value: float
) -> None:
    frame = allocate_by_channel_weight(path_frame(paths, dict.fromkeys(paths, value)), weights)
    for cid in paths:
        mine = frame.filter(pl.col("conversion_id") == cid)
        assert math.fsum(mine["credit"]) == pytest.approx(1.0)
        assert math.fsum(mine["credited_value"]) == pytest.approx(value, abs=1e-6)
        # touches of one channel on one path share alike
        per_channel = mine.group_by("channel").agg(pl.col("credit").n_unique())
        assert per_channel["credit"].max() == 1


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
