"""Markov removal-effect attribution: hand-solved chains and properties of the exact solve."""

from __future__ import annotations

import random

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attribution.datadriven import conversion_probability, journeys_frame, markov_credits
from attribution.datadriven.journeys import encode_paths
from attribution.datadriven.markov import absorption, build_chain

# The classic example: C1 > C2 converts, C1 does not, C2 > C3 converts.
CLASSIC_PATHS = [["C1", "C2"], ["C1"], ["C2", "C3"]]
CLASSIC_CONVERSIONS = [1.0, 0.0, 1.0]


def classic(values: list[float] | None = None) -> pl.DataFrame:
    return journeys_frame(CLASSIC_PATHS, CLASSIC_CONVERSIONS, values)


def by_channel(credits: pl.DataFrame, column: str) -> dict[str, float]:
    return dict(zip(credits["channel"].to_list(), credits[column].to_list(), strict=True))


def test_classic_example_order_1() -> None:
    # start -> C1 2/3, C2 1/3; C1 -> C2 1/2, null 1/2; C2 -> conv 1/2, C3 1/2; C3 -> conv.
    # P(C3) = 1, P(C2) = 1, P(C1) = 1/2, P = 2/3 * 1/2 + 1/3 * 1 = 2/3.
    # Without C1: P = 1/3 -> effect 1/2. Without C2: P = 0 -> effect 1.
    # Without C3: P(C2) = 1/2, P(C1) = 1/4, P = 2/3 * 1/4 + 1/3 * 1/2 = 1/3 -> effect 1/2.
    # Effects sum to 2, so 2 conversions split 0.5 / 1.0 / 0.5.
    credits = markov_credits(classic(), order=1)
    assert by_channel(credits, "removal_effect") == pytest.approx({"C1": 0.5, "C2": 1.0, "C3": 0.5})
    assert by_channel(credits, "conversions") == pytest.approx({"C1": 0.5, "C2": 1.0, "C3": 0.5})
    assert conversion_probability(classic()) == pytest.approx(2 / 3)
    assert conversion_probability(classic(), removed="C3") == pytest.approx(1 / 3)


def test_classic_example_value_follows_where_value_converts() -> None:
    # Values 10 (C1 > C2) and 30 (C2 > C3). Expected value per walk: v(C3) = 30,
    # v(C2) = (10 + v(C3)) / 2 = 20, v(C1) = v(C2) / 2 = 10, E = 2/3 * 10 + 1/3 * 20 = 40/3.
    # Without C1: 1/3 * 20 -> effect 1/2. Without C2: 0 -> effect 1.
    # Without C3: v(C2) = 5, v(C1) = 2.5, E = 10/3 -> effect 3/4. Sum 9/4 over a total of 40.
    credits = markov_credits(classic([10.0, 0.0, 30.0]), order=1)
    assert by_channel(credits, "value_removal_effect") == pytest.approx(
        {"C1": 0.5, "C2": 1.0, "C3": 0.75}
    )
    assert by_channel(credits, "value") == pytest.approx(
        {"C1": 40 * 0.5 / 2.25, "C2": 40 / 2.25, "C3": 40 * 0.75 / 2.25}
    )


def test_order_2_remembers_where_a_walk_came_from() -> None:
    # A > B converts, C > B does not.
    # Order 1 mixes them at B (P(B) = 1/2): without A P = 1/4 (effect 1/2), without C also
    # 1/2, without B 1 -> credits 1/4, 1/2, 1/4.
    # Order 2 states (s,A) (s,C) (A,B) (C,B): (A,B) always converts, (C,B) never. P = 1/2;
    # without A: 0 (effect 1); without C: still 1/2 (effect 0); without B: 0 (effect 1).
    journeys = journeys_frame([["A", "B"], ["C", "B"]], [1.0, 0.0])
    first = markov_credits(journeys, order=1)
    second = markov_credits(journeys, order=2)
    assert by_channel(first, "conversions") == pytest.approx({"A": 0.25, "B": 0.5, "C": 0.25})
    assert by_channel(second, "removal_effect") == pytest.approx({"A": 1.0, "B": 1.0, "C": 0.0})
    assert by_channel(second, "conversions") == pytest.approx({"A": 0.5, "B": 0.5, "C": 0.0})


def test_loops_order_1_and_2() -> None:
    # A > B > A converts, B does not. Order 1: A -> B 1/2, conv 1/2; B -> A 1/2, null 1/2.
    # P(A) = P(B)/2 + 1/2, P(B) = P(A)/2 -> P(A) = 2/3, P(B) = 1/3, P = 1/2 (1 in 2 journeys).
    # Without A: P(B) = 0 -> effect 1. Without B: P(A) = 1/2, P = 1/4 -> effect 1/2.
    # Order 2: (s,A) > (A,B) > (B,A) > conv and (s,B) > null; each channel kills the
    # converting walk, so both effects are 1 and the conversion splits in half.
    journeys = journeys_frame([["A", "B", "A"], ["B"]], [1.0, 0.0])
    assert conversion_probability(journeys, order=1) == pytest.approx(0.5)
    first = markov_credits(journeys, order=1)
    assert by_channel(first, "removal_effect") == pytest.approx({"A": 1.0, "B": 0.5})
    assert by_channel(first, "conversions") == pytest.approx({"A": 2 / 3, "B": 1 / 3})
    second = markov_credits(journeys, order=2)
    assert by_channel(second, "conversions") == pytest.approx({"A": 0.5, "B": 0.5})


def test_a_null_journey_ending_at_a_channel_lowers_its_credit() -> None:
    # Classic plus a non-converting C1 > C2. start -> C1 3/4, C2 1/4; C1 -> C2 2/3, null 1/3;
    # C2 -> conv, C3, null 1/3 each; C3 -> conv. P(C2) = 2/3, P(C1) = 4/9, P = 1/2.
    # Without C1: 1/6 (effect 2/3); without C2: 0 (1); without C3: P(C2) = 1/3, P(C1) = 2/9,
    # P = 1/4 (1/2). Effects sum to 13/6: C2 drops from 1 to 12/13, C1 rises to 8/13.
    journeys = journeys_frame([*CLASSIC_PATHS, ["C1", "C2"]], [*CLASSIC_CONVERSIONS, 0.0])
    credits = by_channel(markov_credits(journeys), "conversions")
    assert credits == pytest.approx({"C1": 8 / 13, "C2": 12 / 13, "C3": 6 / 13})


def test_null_journeys_that_only_dilute_a_first_touch_leave_credits_alone() -> None:
    # Two more non-converting C1 journeys: P(C1) = 1/4, P = 2/5, and the removal effects stay
    # 1/2, 1, 1/2 (1/5 / 2/5, 0, 1/5 / 2/5), so the credits do not move. Null journeys matter
    # through the transitions they add, not by simply being there.
    journeys = journeys_frame([*CLASSIC_PATHS, ["C1"], ["C1"]], [*CLASSIC_CONVERSIONS, 0.0, 0.0])
    assert conversion_probability(journeys) == pytest.approx(0.4)
    credits = by_channel(markov_credits(journeys), "conversions")
    assert credits == pytest.approx({"C1": 0.5, "C2": 1.0, "C3": 0.5})


def test_channels_only_on_null_journeys_get_zero_and_empty_paths_are_dropped() -> None:
    journeys = journeys_frame([["A"], ["B"], []], [1.0, 0.0, 1.0], [5.0, 0.0, 7.0])
    credits = markov_credits(journeys)
    assert by_channel(credits, "conversions") == {"A": 1.0, "B": 0.0}
    assert by_channel(credits, "value") == {"A": 5.0, "B": 0.0}


def test_no_conversions_and_no_journeys() -> None:
    none_convert = markov_credits(journeys_frame([["A"], ["A", "B"]], [0.0, 0.0]))
    assert none_convert["conversions"].to_list() == [0.0, 0.0]
    assert none_convert["removal_effect"].to_list() == [0.0, 0.0]
    empty = markov_credits(journeys_frame([], []))
    assert empty.is_empty()
    assert empty.columns == [
        "channel",
        "removal_effect",
        "value_removal_effect",
        "conversions",
        "value",
    ]


def test_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="order"):
        markov_credits(classic(), order=5)
    with pytest.raises(ValueError, match="conversions"):
        markov_credits(journeys_frame([["A"]], [-1.0]))


channel_names = st.sampled_from(["A", "B", "C", "D"])
journey_rows = st.lists(
    st.tuples(
        st.lists(channel_names, max_size=6),
        st.sampled_from([0.0, 0.0, 1.0, 2.0]),
        st.integers(min_value=0, max_value=100),
    ),
    min_size=1,
    max_size=25,
)


def frame_of(rows: list[tuple[list[str], float, int]]) -> pl.DataFrame:
    return journeys_frame(
        [path for path, _, _ in rows],
        [conversions for _, conversions, _ in rows],
        [float(value) if conversions else 0.0 for _, conversions, value in rows],
    )


@settings(deadline=None)
@given(journey_rows, st.integers(min_value=1, max_value=4))
def test_conversion_probability_is_the_observed_rate(
    rows: list[tuple[list[str], float, int]], order: int
) -> None:
    # Flow conservation: the chain estimated from the paths converts as often as they did
    # (one walk per conversion and per non-converting journey), at every order.
    walked = [(c, c if c else 1.0) for path, c, _ in rows if path]
    conversions = sum(c for c, _ in walked)
    walks = sum(w for _, w in walked)
    expected = conversions / walks if walks else 0.0
    assert conversion_probability(frame_of(rows), order) == pytest.approx(expected)


@settings(deadline=None)
@given(journey_rows, st.integers(min_value=1, max_value=4))
def test_credits_sum_to_totals_and_effects_are_fractions(
    rows: list[tuple[list[str], float, int]], order: int
) -> None:
    journeys = frame_of(rows)
    credits = markov_credits(journeys, order)
    touched = journeys.filter(pl.col("path").list.len() > 0)
    assert credits["conversions"].sum() == pytest.approx(touched["conversions"].sum())
    assert credits["value"].sum() == pytest.approx(touched["value"].sum())
    effects = credits["removal_effect"].to_list() + credits["value_removal_effect"].to_list()
    assert all(-1e-9 <= effect <= 1 + 1e-9 for effect in effects)
    assert credits["channel"].to_list() == sorted({c for path, _, _ in rows for c in path})


@settings(deadline=None)
@given(journey_rows, st.integers(min_value=1, max_value=4), st.randoms(use_true_random=False))
def test_row_order_and_splitting_conversions_do_not_matter(
    rows: list[tuple[list[str], float, int]], order: int, shuffler: random.Random
) -> None:
    shuffled = list(rows)
    shuffler.shuffle(shuffled)
    # A journey with 2 conversions walks the path twice, like two converting journeys.
    split = [r for path, c, v in rows for r in ([(path, 1.0, v)] * 2 if c == 2 else [(path, c, v)])]
    base = markov_credits(frame_of(rows), order)
    assert markov_credits(frame_of(rows), order).equals(base)
    for other in (frame_of(shuffled), frame_of(split)):
        credits = markov_credits(other, order)
        assert credits["channel"].to_list() == base["channel"].to_list()
        assert credits["conversions"].to_list() == pytest.approx(base["conversions"].to_list())


def test_iterative_solve_matches_the_direct_one() -> None:
    rng = random.Random(3)
    channels = [f"c{i}" for i in range(8)]
    paths = [rng.choices(channels, k=rng.randint(1, 6)) for _ in range(3_000)]
    conversions = [float(rng.random() < 0.1 + 0.05 * len(path)) for path in paths]
    values = [c * rng.randint(1, 100) for c in conversions]
    chain = build_chain(encode_paths(journeys_frame(paths, conversions, values)), order=3)
    assert chain.start > 500
    for removed in (None, 0, 5):
        direct = absorption(chain, removed)
        iterative = absorption(chain, removed, direct_limit=0)
        assert iterative == pytest.approx(direct, rel=1e-9)
