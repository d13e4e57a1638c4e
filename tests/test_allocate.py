"""Data-driven credits per touch: hand cases, and over random journey sets the two margins
(each conversion, each channel's model total) or the infeasibility report, checked against a
search over channel sets."""

from __future__ import annotations

import math
from itertools import combinations

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attribution.datadriven import journeys_frame, markov_credits, shapley_credits
from attribution.datadriven.allocate import Allocation, allocate
from tests.test_shapley import brute_force_shapley


def touches(paths: dict[str, list[str]], values: dict[str, float]) -> pl.DataFrame:
    rows = [(cid, i, channel, values[cid]) for cid, path in paths.items()
            for i, channel in enumerate(path)]
    return pl.DataFrame(rows, schema=["conversion_id", "position", "channel", "value"],
                        orient="row")


def model(rows: dict[str, tuple[float, float, float, float]]) -> pl.DataFrame:
    """channel -> (weight, value weight, conversions, value)."""
    return pl.DataFrame(
        [(channel, *numbers) for channel, numbers in rows.items()],
        schema=["channel", "weight", "value_weight", "conversions", "value"], orient="row",
    )


def test_a_channel_share_is_split_equally_over_its_touches() -> None:
    # One conversion A > B > A of 100; the model gives A 3/4 of the conversion and 60 of the
    # value: A's touches get 3/8 and 30 each, B 1/4 and 40. Value shares follow the model's
    # value totals, not the credit.
    allocation = allocate(touches({"x": ["A", "B", "A"]}, {"x": 100.0}),
                          model({"A": (3.0, 1.0, 0.75, 60.0), "B": (1.0, 1.0, 0.25, 40.0)}))
    assert allocation.rows["credit"].to_list() == pytest.approx([0.375, 0.25, 0.375])
    assert allocation.rows["credited_value"].to_list() == pytest.approx([30.0, 40.0, 30.0])
    assert allocation.fitted
    fit = allocation.channels
    assert fit["channel"].to_list() == ["A", "B"]
    assert fit["credit"].to_list() == pytest.approx([0.75, 0.25])
    assert fit["credited_value"].to_list() == pytest.approx([60.0, 40.0])
    assert fit["conversions_on_path"].to_list() == [1.0, 1.0]
    assert fit["value_on_path"].to_list() == [100.0, 100.0]


def test_unknown_channels_split_equally_and_zero_shares_drop() -> None:
    # "(none)" is no model channel: its conversion keeps its 1 on its only touch. y's C has
    # weight and target 0: it gets nothing and its row is left out.
    allocation = allocate(
        touches({"x": ["A", "B"], "y": ["A", "C"], "z": ["(none)"]},
                {"x": 9.0, "y": 4.0, "z": 7.0}),
        model({"A": (1.0, 1.0, 1.0, 4.0), "B": (1.0, 1.0, 1.0, 9.0), "C": (0.0, 0.0, 0.0, 0.0)}),
    )
    assert allocation.rows.select("conversion_id", "channel", "credit", "credited_value").rows(
    ) == [("x", "B", 1.0, 9.0), ("y", "A", 1.0, 4.0), ("z", "(none)", 1.0, 7.0)]
    assert allocation.fitted
    empty = allocate(touches({}, {}), model({"A": (1.0, 1.0, 0.0, 0.0)}))
    assert empty.rows.is_empty() and "credit" in empty.rows.columns
    no_model = allocate(touches({"z": ["(none)"]}, {"z": 7.0}), model({}))
    assert no_model.rows.select("credit", "credited_value").rows() == [(1.0, 7.0)]
    assert no_model.channels.is_empty() and no_model.fitted
    with pytest.raises(ValueError, match="values >= 0"):
        allocate(touches({"x": ["A"]}, {"x": -1.0}), model({"A": (1.0, 1.0, 1.0, -1.0)}))


def test_a_channel_asked_for_more_than_its_conversions_is_reported() -> None:
    # B is on no converting path (it leads into A on null journeys), yet Markov credits it:
    # its 1/3 cannot land; A takes the conversion's 1 and is 1/3 over.
    journeys = journeys_frame([["A"], ["B", "A"]], [1.0, 0.0], [5.0, 0.0])
    scored = markov_credits(journeys).select(
        "channel", pl.col("removal_effect").alias("weight"),
        pl.col("value_removal_effect").alias("value_weight"), "conversions", "value")
    assert scored["conversions"].to_list() == pytest.approx([2 / 3, 1 / 3])
    allocation = allocate(touches({"x": ["A"]}, {"x": 5.0}), scored)
    assert allocation.rows.select("channel", "credit", "credited_value").rows() == [
        ("A", 1.0, 5.0)]
    report = allocation.channels.select("channel", "conversions_gap", "value_gap", "fitted")
    assert report.rows() == [("A", pytest.approx(1 / 3), pytest.approx(5 / 3), False),
                             ("B", pytest.approx(-1 / 3), pytest.approx(-5 / 3), False)]


# --- random journey sets -------------------------------------------------------------------

Journey = tuple[list[str], bool, int]

journey_sets = st.lists(
    st.tuples(st.lists(st.sampled_from("ABCDE"), min_size=1, max_size=5), st.booleans(),
              st.integers(0, 100)),
    min_size=1, max_size=25,
).filter(lambda rows: any(converts for _, converts, _ in rows))


def scored(journeys: list[Journey], model_name: str) -> pl.DataFrame:
    frame = journeys_frame([p for p, _, _ in journeys], [float(c) for _, c, _ in journeys],
                           [float(v) if c else 0.0 for _, c, v in journeys])
    if model_name == "shapley":
        return shapley_credits(frame).select(
            "channel", pl.col("shapley").alias("weight"), pl.col("value").alias("value_weight"),
            pl.col("shapley").alias("conversions"), "value")
    order = int(model_name[-1])
    return markov_credits(frame, order).select(
        "channel", pl.col("removal_effect").alias("weight"),
        pl.col("value_removal_effect").alias("value_weight"), "conversions", "value")


def largest_shortfall(paths: list[set[str]], mass: list[float],
                      target: dict[str, float]) -> tuple[float, set[str]]:
    """max over channel sets J of target(J) - (mass of the conversions whose path touches J),
    with the largest J reaching it: the most the channels can miss by, and which."""
    wanted = sorted(c for c, t in target.items() if t > 0)
    best, where = 0.0, set[str]()
    for size in range(1, len(wanted) + 1):
        for chosen in combinations(wanted, size):
            group = set(chosen)
            lack = sum(target[c] for c in group) - sum(
                m for path, m in zip(paths, mass, strict=True) if path & group)
            if lack > best + 1e-9 or (lack >= best - 1e-9 and lack > 1e-9
                                      and len(group) > len(where)):
                best, where = max(best, lack), group
    return best, where


def check_margin(allocation: Allocation, paths: list[set[str]], mass: list[float],
                 landed: str, model_total: str, gap: str) -> None:
    fit = allocation.channels
    target = dict(zip(fit["channel"], fit[model_total], strict=True))
    total = sum(mass)
    lack, short_set = largest_shortfall(paths, mass, target)
    gaps = dict(zip(fit["channel"], fit[gap], strict=True))
    rows = allocation.rows.group_by("channel").agg(pl.col(landed).sum())
    sums = dict(zip(rows["channel"], rows[landed], strict=True))
    for channel in target:  # the report is what the rows add up to
        assert gaps[channel] == pytest.approx(sums.get(channel, 0.0) - target[channel],
                                              abs=1e-9 * max(total, 1.0))
    tolerance = 1e-7 * max(total, 1.0)
    if lack <= tolerance:  # the margins can both hold: they do
        assert all(abs(g) <= tolerance for g in gaps.values()), gaps
    else:  # the short channels are in the set that lacks, short by what it lacks in all
        short = {c for c, g in gaps.items() if g < -tolerance}
        assert short and short <= short_set
        assert sum(g for g in gaps.values() if g < 0) == pytest.approx(-lack, abs=tolerance)
        assert sum(abs(g) for g in gaps.values()) == pytest.approx(2 * lack, abs=tolerance)
        assert not allocation.fitted


@settings(max_examples=100, deadline=None)
@given(journey_sets, st.sampled_from(["markov_o1", "markov_o2", "markov_o3", "markov_o4",
                                      "shapley"]))
def test_both_margins_hold_or_the_shortfall_is_reported(
    journeys: list[Journey], model_name: str
) -> None:
    converting = [(f"x{i:02d}", path, float(value))
                  for i, (path, converts, value) in enumerate(journeys) if converts]
    allocation = allocate(touches({cid: path for cid, path, _ in converting},
                                  {cid: value for cid, _, value in converting}),
                          scored(journeys, model_name))
    rows = allocation.rows
    for cid, _, value in converting:  # every conversion: 1 and its value
        mine = rows.filter(pl.col("conversion_id") == cid)
        assert math.fsum(mine["credit"]) == pytest.approx(1.0, abs=1e-12)
        assert math.fsum(mine["credited_value"]) == pytest.approx(value, abs=1e-9)
        per_channel = mine.group_by("channel").agg(pl.col("credit").n_unique())
        assert per_channel["credit"].max() == 1  # a channel's touches share alike
    paths = [set(path) for _, path, _ in converting]
    check_margin(allocation, paths, [1.0] * len(paths), "credit", "model_conversions",
                 "conversions_gap")
    check_margin(allocation, paths, [v for _, _, v in converting], "credited_value",
                 "model_value", "value_gap")
    if model_name == "shapley":  # the simplified (unordered) Shapley value: always met
        assert allocation.fitted
        exact = brute_force_shapley([(p, 1.0) for p, c, _ in journeys if c])
        landed = dict(allocation.channels.select("channel", "credit").rows())
        assert landed == pytest.approx({c: exact.get(c, 0.0) for c in landed})


def test_shapley_is_always_met_even_far_from_the_start() -> None:
    # Shapley's totals are met by an equal split of each conversion over its channels, so
    # raking always reaches them, here from weights that favour C heavily.
    rng = np.random.default_rng(4)
    paths = {f"x{i}": list(rng.choice(list("ABCDEF"), size=rng.integers(1, 6)))
             for i in range(300)}
    values = {cid: float(rng.integers(1, 200)) for cid in paths}
    sets = [sorted(set(p)) for p in paths.values()]
    conversions = {c: sum(1 / len(s) for s in sets if c in s) for c in "ABCDEF"}
    value = {c: sum(values[cid] / len(set(p)) for cid, p in paths.items() if c in p)
             for c in "ABCDEF"}
    allocation = allocate(touches(paths, values), model(
        {c: (100.0 if c == "C" else 1.0, 1.0, conversions[c], value[c]) for c in "ABCDEF"}))
    assert allocation.fitted
    fit = allocation.channels
    assert fit["credit"].to_list() == pytest.approx([conversions[c] for c in "ABCDEF"])
    assert fit["credited_value"].to_list() == pytest.approx([value[c] for c in "ABCDEF"])
