"""Shapley attribution: the closed form against the brute-force definition, and hand cases."""

from __future__ import annotations

import random
from itertools import combinations
from math import factorial

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attribution.datadriven import journeys_frame, shapley_credits

Row = tuple[list[str], float, float]


def by_channel(credits: pl.DataFrame, column: str = "shapley") -> dict[str, float]:
    return dict(zip(credits["channel"].to_list(), credits[column].to_list(), strict=True))


def brute_force_shapley(rows: list[tuple[list[str], float]]) -> dict[str, float]:
    """phi_i = sum over S not holding i of |S|! (n - |S| - 1)! / n! * (v(S + i) - v(S)), with
    v(S) the conversions (or value) of journeys whose channel set is a subset of S."""
    players = sorted({c for path, _ in rows for c in path})
    n = len(players)

    def worth(coalition: frozenset[str]) -> float:
        return sum(amount for path, amount in rows if set(path) <= coalition)

    shapley = {}
    for player in players:
        others = [p for p in players if p != player]
        total = 0.0
        for size in range(n):
            weight = factorial(size) * factorial(n - size - 1) / factorial(n)
            for coalition in combinations(others, size):
                members = frozenset(coalition)
                total += weight * (worth(members | {player}) - worth(members))
        shapley[player] = total
    return shapley


def frame_of(rows: list[Row]) -> pl.DataFrame:
    return journeys_frame([p for p, _, _ in rows], [c for _, c, _ in rows], [v for _, _, v in rows])


journey_rows = st.lists(
    st.tuples(
        st.lists(st.sampled_from(["A", "B", "C", "D", "E"]), max_size=5),
        st.sampled_from([0.0, 1.0, 1.0, 2.0]),
        st.integers(min_value=0, max_value=50).map(float),
    ),
    min_size=1,
    max_size=15,
)


@settings(deadline=None)
@given(journey_rows)
def test_matches_the_brute_force_definition(rows: list[Row]) -> None:
    credits = shapley_credits(frame_of(rows))
    conversions = brute_force_shapley([(path, c) for path, c, _ in rows])
    value = brute_force_shapley([(path, v) for path, _, v in rows])
    assert by_channel(credits) == pytest.approx(conversions)
    assert by_channel(credits, "value") == pytest.approx(value)


@settings(deadline=None)
@given(journey_rows, st.randoms(use_true_random=False))
def test_efficiency_and_row_order(rows: list[Row], shuffler: random.Random) -> None:
    # Sum of Shapley values = v(all channels) - v(no channel): journeys with no touch
    # form the empty coalition and are credited to nobody.
    credits = shapley_credits(frame_of(rows))
    touched = [row for row in rows if row[0]]
    assert credits["shapley"].sum() == pytest.approx(sum(c for _, c, _ in touched))
    assert credits["value"].sum() == pytest.approx(sum(v for _, _, v in touched))
    shuffled = list(rows)
    shuffler.shuffle(shuffled)
    again = shapley_credits(frame_of(shuffled))
    assert again["channel"].to_list() == credits["channel"].to_list()
    assert again["shapley"].to_list() == pytest.approx(credits["shapley"].to_list())
    assert shapley_credits(frame_of(rows)).equals(credits)


def test_one_channel_gets_everything() -> None:
    journeys = journeys_frame([["A"], ["A", "A"], ["B"], ["B", "A"]], [1, 1, 0, 0], [10, 5, 0, 0])
    credits = shapley_credits(journeys)
    assert by_channel(credits) == {"A": 2.0, "B": 0.0}
    assert by_channel(credits, "value") == {"A": 15.0, "B": 0.0}


def test_symmetric_channels_split_equally_whatever_the_order() -> None:
    journeys = journeys_frame([["A", "B"], ["B", "A", "B"], ["A"], ["B"]], [1, 1, 1, 1])
    # v({A}) = 1, v({B}) = 1, v({A,B}) = 4: each gets 1 + (4 - 1 - 1) / 2 = 2.
    assert by_channel(shapley_credits(journeys)) == {"A": 2.0, "B": 2.0}


def test_three_channel_hand_case() -> None:
    # w({A}) = 3, w({A,B}) = 2, w({A,B,C}) = 3: A = 3 + 2/2 + 3/3 = 5, B = 1 + 1 = 2, C = 1.
    journeys = journeys_frame([["A"]] * 3 + [["B", "A"]] * 2 + [["C", "B", "A"]] * 3, [1.0] * 8)
    assert by_channel(shapley_credits(journeys)) == pytest.approx({"A": 5.0, "B": 2.0, "C": 1.0})


def test_exact_beyond_twenty_channels() -> None:
    everyone = [f"c{i:02d}" for i in range(25)]
    journeys = journeys_frame([everyone, ["c00"]], [1.0, 1.0], [50.0, 4.0])
    credits = shapley_credits(journeys)
    assert by_channel(credits)["c00"] == pytest.approx(1 + 1 / 25)
    assert by_channel(credits)["c24"] == pytest.approx(1 / 25)
    assert by_channel(credits, "value")["c07"] == pytest.approx(2.0)
    assert credits["shapley"].sum() == pytest.approx(2.0)


def test_empty_input() -> None:
    assert shapley_credits(journeys_frame([], [])).is_empty()
    assert shapley_credits(journeys_frame([[]], [1.0])).is_empty()
