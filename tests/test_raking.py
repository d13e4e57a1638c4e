"""Raking to two margins: hand-computed cases, and the closest fit against a brute-force search
over channel sets when the margins conflict."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from attribution.datadriven.raking import rake


def matrix(rows: list[list[int]], n_channels: int) -> sp.csr_array:
    indptr = np.cumsum([0, *(len(r) for r in rows)])
    indices = np.array([c for r in rows for c in sorted(r)], dtype=np.int64)
    return sp.csr_array((np.ones(len(indices)), indices, indptr), shape=(len(rows), n_channels))


def dense(members: sp.csr_array, shares: np.ndarray) -> np.ndarray:
    return sp.csr_array((shares, members.indices, members.indptr), shape=members.shape).toarray()


def test_one_split_holds_both_margins() -> None:
    # Rows {A, B} and {B, C}, one conversion each; targets A 8/13, B 12/13, C 6/13. Only the
    # first row holds A and only the second C, so the split is forced whatever the weights.
    members = matrix([[0, 1], [1, 2]], 3)
    raked = rake(members, np.array([1.0, 1.0]), np.array([2 / 3, 1.0, 0.5]),
                 np.array([8 / 13, 12 / 13, 6 / 13]))
    assert dense(members, raked.shares) == pytest.approx(
        np.array([[8 / 13, 5 / 13, 0], [0, 7 / 13, 6 / 13]]))
    assert raked.fitted


def test_keeps_the_start_odds_and_a_start_that_fits() -> None:
    # Raking multiplies each column by one factor: the odds between two channels in one row,
    # divided by the same odds in another row, stay those of the start.
    members = matrix([[0, 1, 2], [0, 1, 2], [0, 1]], 3)
    weight = np.array([1.0, 2.0, 3.0])
    mass = np.array([3.0, 1.0, 2.0])
    raked = rake(members, mass, weight, np.array([2.5, 2.5, 1.0]))
    fitted = dense(members, raked.shares) * mass[:, None]
    assert raked.fitted
    assert fitted.sum(axis=0) == pytest.approx([2.5, 2.5, 1.0])
    assert fitted.sum(axis=1) == pytest.approx(mass)
    for r, q in ((0, 1), (0, 2), (1, 2)):
        assert fitted[r, 0] * fitted[q, 1] / (fitted[r, 1] * fitted[q, 0]) == pytest.approx(1.0)
    assert fitted[0, 1] * fitted[1, 2] / (fitted[0, 2] * fitted[1, 1]) == pytest.approx(1.0)
    # targets the proportional split already meets: nothing moves
    proportional = np.array([[1, 2, 3], [1, 2, 3], [1, 2, 0]]) / np.array([[6], [6], [3]])
    met = (proportional * mass[:, None]).sum(axis=0)
    again = rake(members, mass, weight, met)
    assert again.fitted
    assert dense(members, again.shares) == pytest.approx(proportional)


def test_margins_that_hold_only_with_a_forced_zero() -> None:
    # {B} gives its 1 to B, whose target is 1: the row {A, B, C} must give B nothing. Plain
    # Sinkhorn only approaches that (error ~ 1/iterations); the block step lands it.
    members = matrix([[1], [0, 1, 2]], 3)
    raked = rake(members, np.array([1.0, 1.0]), np.array([0.5, 1.0, 0.5]),
                 np.array([0.5, 1.0, 0.5]))
    assert dense(members, raked.shares) == pytest.approx(np.array([[0, 1, 0], [0.5, 0, 0.5]]))
    assert raked.totals == pytest.approx([0.5, 1.0, 0.5], rel=1e-12)
    assert raked.fitted


def test_conflicting_margins_land_the_closest_fit() -> None:
    # Rows {A} {A, B} {B, C}, one each; targets A 1/2, B 2, C 1/2. {B, C} asks 5/2 of the two
    # rows touching it (2): lambda 4/5, so B 8/5 and C 2/5, and those rows give them all;
    # A then gets its row's 1 (lambda 2). Total |landed - target| 1, the least possible
    # (twice the 1/2 that {B, C} lacks).
    members = matrix([[0], [0, 1], [1, 2]], 3)
    raked = rake(members, np.ones(3), np.array([1.0, 1.0, 1.0]), np.array([0.5, 2.0, 0.5]))
    assert raked.totals == pytest.approx([1.0, 1.6, 0.4])
    assert dense(members, raked.shares) == pytest.approx(
        np.array([[1, 0, 0], [0, 1, 0], [0, 0.6, 0.4]]), abs=1e-12)
    assert not raked.fitted


def test_unreachable_channels_orphan_rows_and_rows_without_mass() -> None:
    # Z (target 1/2) is on no row; C has no weight, so the row {C} keeps an equal split and
    # C exceeds its target 0; the last row has no mass and keeps its start split.
    members = matrix([[0], [0, 1], [2], [0, 1]], 4)
    raked = rake(members, np.array([1.0, 1.0, 1.0, 0.0]), np.array([1.0, 3.0, 0.0, 1.0]),
                 np.array([1.0, 0.5, 0.0, 0.5]))
    # A and B share the 2 placed conversions in proportion to their targets (lambda 4/3).
    assert raked.totals == pytest.approx([4 / 3, 2 / 3, 1.0, 0.0])
    shares = dense(members, raked.shares)
    assert shares[2] == pytest.approx([0, 0, 1, 0])
    assert shares[3] == pytest.approx([0.25, 0.75, 0, 0])
    assert not raked.fitted
    with pytest.raises(ValueError, match="masses"):
        rake(members, np.array([1.0, -1.0, 1.0, 0.0]), np.ones(4), np.ones(4))


# --- against brute force -------------------------------------------------------------------


def closest_totals(rows: list[set[int]], mass: list[float], target: list[float]) -> np.ndarray:
    """The lexicographically fairest channel totals, by search over channel sets: the set J
    with the least (mass of rows touching J) / target(J) (the largest on ties) gets that
    fraction of its targets, its rows are spent, and the rest is solved again."""
    landed = np.zeros(len(target))
    remaining = {c for c in range(len(target)) if target[c] > 0}
    open_rows = [r for r in range(len(rows)) if rows[r] and mass[r] > 0]
    while remaining:
        best: tuple[float, set[int]] | None = None
        for size in range(1, len(remaining) + 1):
            for chosen in combinations(sorted(remaining), size):
                group = set(chosen)
                ratio = (sum(mass[r] for r in open_rows if rows[r] & group)
                         / sum(target[c] for c in group))
                if best is None or ratio < best[0] * (1 - 1e-12) or (
                        ratio <= best[0] * (1 + 1e-12) and len(group) > len(best[1])):
                    best = (ratio, group)
        assert best is not None
        for c in best[1]:
            landed[c] = best[0] * target[c]
        open_rows = [r for r in open_rows if not rows[r] & best[1]]
        remaining -= best[1]
    return landed


@st.composite
def problems(draw: st.DrawFn) -> tuple[list[list[int]], list[float], list[float], list[float]]:
    n_channels = draw(st.integers(1, 5))
    rows = draw(st.lists(st.sets(st.integers(0, n_channels - 1), min_size=1), min_size=1,
                         max_size=8))
    mass = draw(st.lists(st.integers(0, 4).map(float), min_size=len(rows),
                         max_size=len(rows)))
    weight = draw(st.lists(st.sampled_from([0.0, 0.1, 1.0, 2.5, 7.0]), min_size=n_channels,
                           max_size=n_channels))
    share = draw(st.lists(st.integers(0, 6).map(float), min_size=n_channels,
                          max_size=n_channels))
    total = sum(mass)
    target = [s * total / sum(share) if sum(share) else 0.0 for s in share]
    return [sorted(r) for r in rows], mass, weight, target


@settings(max_examples=200, deadline=None)
@given(problems())
def test_totals_are_the_closest_fit(
    problem: tuple[list[list[int]], list[float], list[float], list[float]],
) -> None:
    rows, mass, weight, target = problem
    members = matrix(rows, len(weight))
    raked = rake(members, np.array(mass), np.array(weight), np.array(target))
    # every row with channels sums to 1, and only its channels get anything
    assert np.add.reduceat(raked.shares, members.indptr[:-1]) == pytest.approx(1.0)
    assert np.all(raked.shares >= 0)
    cells = [{c for c in row if weight[c] > 0 and target[c] > 0} for row in rows]
    placed = [bool(cell) for cell in cells]
    expected = closest_totals(cells, mass, target)
    # rows with no channel of positive weight and target split equally over theirs
    for row, ok, amount in zip(rows, placed, mass, strict=True):
        if not ok:
            for c in row:
                expected[c] += amount / len(row)
    assert raked.totals == pytest.approx(expected, rel=1e-7, abs=1e-9)
    assert raked.fitted == bool(np.allclose(expected, target, rtol=1e-7, atol=1e-9))
