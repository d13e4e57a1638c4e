"""Raking (iterative proportional fitting, Sinkhorn scaling) of a row x channel matrix to two
margins: every row's mass and every channel's target.

Rows are groups of conversions that share a channel set; a cell can be positive only where
the channel is on the row's path and has a positive weight and target. The start is the
proportional split (each row's mass in proportion to its channels' weights); raking
multiplies each channel's column by one factor and re-normalises each row, until both
margins hold. When a matrix with those margins exists on the allowed cells, this converges to
the one closest to the start (least Kullback-Leibler divergence).

When none exists (some channel set J has a target above the mass of the rows that touch J),
rows stay exact and channels come as close as they can: the allocation IPF itself tends to
when the margins conflict (Pukelsheim and Simeone, 2009). Channels fall into blocks; every
channel of block b gets the same fraction lambda_b of its target, lambda grows from block to
block, and the rows touching the first blocks give all of their mass to them. No allocation
has a smaller total |landed - target|; channels with lambda < 1 cannot reach their target and
the others exceed theirs by as much in total.

Solving: Newton's method on the dual of raking (the log column factors), which converges in
a few steps even where plain Sinkhorn crawls (a fit close to the edge of the allowed cells,
or one that needs a cell at exactly 0, reached only in the limit). If it does not converge,
the margins conflict: the block structure is read from plain Sinkhorn iterates (channels in
increasing landed/target ratio; blocks are the segments of the lower convex hull of the
points (sum of targets, mass of the rows touching the channels) over prefixes of that order)
and then checked: with each row restricted to its first block and every channel aiming at
lambda_b times its target, Newton must converge. A structure that fails the check is read
again after twice as many Sinkhorn iterations.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from attribution.datadriven.journeys import FloatArray, IntArray

TOLERANCE = 1e-12
"""Largest relative error of a channel total at which a solve counts as converged."""
FITTED = 1e-9
"""Largest relative gap between a landed and a target total still reported as fitted."""
SHARE_FLOOR = 1e-11
"""A fitted share below this is set to 0 (the row re-normalised): what the solver leaves on a
cell the margins force to 0."""
NEWTON_ITERATIONS = 60
SINKHORN_STEPS = 50
"""Sinkhorn iterations before the first attempt to read the block structure, doubled before
each next attempt."""
ATTEMPTS = 8

BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class Raked:
    """`shares`: for every stored cell of `members` (same order as its data), the channel's
    share of the row; each row with channels sums to 1. `totals`: landed channel totals
    (sum of mass * share). `fitted`: every total is its target (see `fits`)."""

    shares: FloatArray
    totals: FloatArray
    fitted: bool


def rake(members: sp.csr_array, mass: FloatArray, weight: FloatArray, target: FloatArray) -> Raked:
    """Shares of every row over its member channels, fitted to both margins.

    members: rows x channels, a stored cell where the channel is on the row's paths; mass:
    each row's total (>= 0); weight: each channel's start weight; target: each channel's
    total (a weight or target below 0 counts as 0). A row none of whose channels has a
    positive weight and target is split equally over its channels, which then exceed their
    targets.
    """
    if np.any(mass < 0):
        raise ValueError("raking needs row masses >= 0")
    # Solvers round a removal effect of 0 to -1e-17 now and then: below 0 counts as 0.
    weight, target = np.maximum(weight, 0.0), np.maximum(target, 0.0)
    members = sp.csr_array(members, copy=True)
    members.sum_duplicates()
    n_rows, n_channels = members.shape
    row_of = np.repeat(np.arange(n_rows), np.diff(members.indptr))
    start = np.where((weight > 0) & (target > 0), weight, 0.0)[members.indices]
    has_start = np.bincount(row_of, start > 0, minlength=n_rows) > 0

    # Rows without a start split equally over their channels; the others keep their start
    # split unless they carry mass, which raking then moves.
    shares = _row_normalised(members.indptr, np.where(has_start[row_of], start, 1.0))
    placed = has_start & (mass > 0)
    cells = placed[row_of] & (start > 0)
    if cells.any():
        rows = np.flatnonzero(placed)
        sub_indptr = np.concatenate([[0], np.cumsum(np.bincount(row_of[cells],
                                                                minlength=n_rows)[rows])])
        sub = sp.csr_array((start[cells], members.indices[cells], sub_indptr),
                           shape=(len(rows), n_channels))
        shares[placed[row_of]] = 0.0
        fitted = _fit(sub, mass[rows], target)
        # What a converged fit leaves on a cell the margins force to 0 is rounding: drop it.
        fitted = _row_normalised(sub.indptr, np.where(fitted < SHARE_FLOOR, 0.0, fitted))
        shares[cells] = fitted
    totals = _totals(members, shares, mass, row_of)
    return Raked(shares=shares, totals=totals, fitted=bool(fits(totals, target).all()))


def fits(totals: FloatArray, target: FloatArray) -> BoolArray:
    """Per channel: the landed total is the target, to FITTED of it (or of all the targets,
    for a target that rounding left at 1e-17 instead of 0)."""
    scale = np.abs(target) + 1e-3 * np.abs(target).sum()
    close: BoolArray = np.abs(totals - target) <= FITTED * scale
    return close


def _fit(start: sp.csr_array, mass: FloatArray, target: FloatArray) -> FloatArray:
    """Shares (in `start`'s data order) of rows that all have cells and mass, fitted to
    `target` as closely as the cells allow."""
    touched = np.bincount(start.indices, minlength=start.shape[1]) > 0
    aim = np.where(touched, target, 0.0)
    # Targets of channels no row can reach are lost; the rest share the mass (lambda of
    # the last block) in proportion to their targets.
    aim = aim * (mass.sum() / aim.sum())
    log_start = np.log(start.data)
    zero = np.zeros(start.shape[1])
    factor, error = _newton(start, log_start, mass, aim, zero, NEWTON_ITERATIONS)
    if error <= TOLERANCE:
        return _shares(start, log_start, factor)
    plain = zero
    for attempt in range(ATTEMPTS):
        plain, error = _sinkhorn(start, log_start, mass, aim, plain, SINKHORN_STEPS << attempt)
        if error <= TOLERANCE:
            break
        keep, block_aim = _blocks(start, _shares(start, log_start, plain), mass, target)
        restricted = np.where(keep, log_start, -np.inf)
        inner, inner_error = _newton(start, restricted, mass, block_aim, zero,
                                     NEWTON_ITERATIONS)
        if inner_error <= TOLERANCE:
            return _shares(start, restricted, inner)
    return _shares(start, log_start, plain)


def _newton(
    cells: sp.csr_array,
    log_start: FloatArray,
    mass: FloatArray,
    aim: FloatArray,
    log_factor: FloatArray,
    iterations: int,
) -> tuple[FloatArray, float]:
    """Like `_sinkhorn`, by Newton's method on the convex dual of raking,
    F(t) = sum over rows of mass * log(sum of start * exp(t) over the row's cells) - aim . t,
    whose gradient is (channel totals - aim) and whose minimum, when it exists, is the fit.
    Quadratic convergence where Sinkhorn crawls (a fit near the edge of the allowed cells)."""
    row_of = np.repeat(np.arange(cells.shape[0]), np.diff(cells.indptr))
    wanted = aim > 0
    theta = log_factor.copy()
    value, shares, totals = _dual(cells, log_start, mass, aim, theta, row_of)
    error = _error(totals, aim, wanted)
    for _ in range(iterations):
        if error <= TOLERANCE:
            break
        gradient = totals - aim
        plain = sp.csr_array((shares, cells.indices, cells.indptr), shape=cells.shape)
        weighted = sp.csr_array((shares * mass[row_of], cells.indices, cells.indptr),
                                shape=cells.shape)
        hessian = np.diag(totals) - (plain.T @ weighted).toarray()
        step = -np.linalg.lstsq(hessian, gradient, rcond=1e-13)[0]
        slope = float(gradient @ step)
        if not slope < 0:  # the error lies where no factor reaches (conflicting margins)
            break
        length = 1.0
        while length > 1e-12:
            trial = theta + length * step
            new_value, new_shares, new_totals = _dual(cells, log_start, mass, aim, trial, row_of)
            new_error = _error(new_totals, aim, wanted)
            # Near the end F changes below its rounding: then less error is progress enough.
            if new_value <= value + 1e-4 * length * slope or new_error < 0.5 * error:
                break
            length /= 2
        else:
            break  # no progress along the Newton direction: leave it to the caller
        theta, value, shares, totals, error = trial, new_value, new_shares, new_totals, new_error
    return theta, error


def _dual(
    cells: sp.csr_array,
    log_start: FloatArray,
    mass: FloatArray,
    aim: FloatArray,
    theta: FloatArray,
    row_of: IntArray,
) -> tuple[float, FloatArray, FloatArray]:
    """F(theta) of `_newton`, the row-normalised shares and the channel totals."""
    logs = log_start + theta[cells.indices]
    peak = np.maximum.reduceat(logs, cells.indptr[:-1])
    exp = np.exp(logs - peak[row_of])
    sums = np.add.reduceat(exp, cells.indptr[:-1])
    shares = exp / sums[row_of]
    totals = _totals(cells, shares, mass, row_of)
    value = float(mass @ (peak + np.log(sums)) - aim @ theta)
    return value, shares, totals


def _error(totals: FloatArray, aim: FloatArray, wanted: BoolArray) -> float:
    """The largest relative error of a channel total against its (positive) aim."""
    if not wanted.any():
        return 0.0
    return float(np.max(np.abs(totals[wanted] / aim[wanted] - 1.0)))


def _sinkhorn(
    cells: sp.csr_array,
    log_start: FloatArray,
    mass: FloatArray,
    aim: FloatArray,
    log_factor: FloatArray,
    iterations: int,
) -> tuple[FloatArray, float]:
    """Log column factors after up to `iterations` steps from `log_factor`, and the largest
    relative error of the row-fitted matrix's channel totals against `aim` (channels aiming
    at 0 excluded). In logs: in conflicting margins the factors of two blocks drift apart
    without bound, which plain factors would under- or overflow."""
    row_of = np.repeat(np.arange(cells.shape[0]), np.diff(cells.indptr))
    wanted = aim > 0
    log_factor = log_factor.copy()
    error = np.inf
    for _ in range(iterations):
        shares = _shares(cells, log_start, log_factor)
        totals = _totals(cells, shares, mass, row_of)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(wanted, totals / aim, 1.0)
        error = float(np.max(np.abs(ratio - 1.0)))
        if error <= TOLERANCE:
            break
        step = np.zeros(len(aim))
        moving = wanted & (totals > 0)
        step[moving] = -np.log(ratio[moving])
        log_factor += step
    return log_factor, error


def _blocks(
    cells: sp.csr_array, shares: FloatArray, mass: FloatArray, target: FloatArray
) -> tuple[BoolArray, FloatArray]:
    """The block structure read from a plain iterate's shares: which cells stay (those of
    each row's first block), and each channel's aim lambda_b * target."""
    n_channels = cells.shape[1]
    row_of = np.repeat(np.arange(cells.shape[0]), np.diff(cells.indptr))
    totals = _totals(cells, shares, mass, row_of)
    wanted = np.flatnonzero(target > 0)
    order = wanted[np.argsort(totals[wanted] / target[wanted], kind="stable")]
    rank = np.zeros(n_channels, dtype=np.int64)
    rank[order] = np.arange(len(order))
    first = np.minimum.reduceat(rank[cells.indices], cells.indptr[:-1])
    # Prefix k (the first k channels of the order): x = their targets, y = the mass of the
    # rows touching them, i.e. of the rows whose first channel is among them.
    xs = np.concatenate([[0.0], np.cumsum(target[order])])
    ys = np.concatenate([[0.0], np.cumsum(np.bincount(first, mass, minlength=len(order)))])
    corners = _lower_hull(xs, ys)
    block_of_rank = np.searchsorted(corners, np.arange(len(order)), side="right") - 1
    slopes = np.diff(ys[corners]) / np.diff(xs[corners])
    aim = np.zeros(n_channels)
    aim[order] = slopes[block_of_rank] * target[order]
    block = np.full(n_channels, -1, dtype=np.int64)
    block[order] = block_of_rank
    keep: BoolArray = block[cells.indices] == block_of_rank[first][row_of]
    return keep, aim


def _lower_hull(xs: FloatArray, ys: FloatArray) -> IntArray:
    """Indices of the corners of the lower convex hull of points with increasing x. Points on
    a hull segment (to rounding) are kept as corners: such a prefix is exactly tight."""
    scale = xs[-1] * ys[-1] * 1e-12
    hull: list[int] = []
    for k in range(len(xs)):
        while len(hull) >= 2:
            o, a = hull[-2], hull[-1]
            cross = (xs[a] - xs[o]) * (ys[k] - ys[o]) - (ys[a] - ys[o]) * (xs[k] - xs[o])
            if cross >= -scale:  # a is below, on or (to rounding) at the chord o-k: keep it
                break
            hull.pop()
        hull.append(k)
    return np.array(hull, dtype=np.int64)


def _shares(cells: sp.csr_array, log_start: FloatArray, log_factor: FloatArray) -> FloatArray:
    """Row-normalised start * factor, computed stably in logs (a cell of log -inf is 0)."""
    logs = log_start + log_factor[cells.indices]
    sizes = np.diff(cells.indptr)
    peak = np.repeat(np.maximum.reduceat(logs, cells.indptr[:-1]), sizes)
    return _row_normalised(cells.indptr, np.exp(logs - peak))


def _totals(
    cells: sp.csr_array, shares: FloatArray, mass: FloatArray, row_of: IntArray
) -> FloatArray:
    """Channel totals: each cell's share of its row's mass, summed per channel."""
    weights = shares * mass[row_of]
    totals: FloatArray = np.bincount(cells.indices, weights, cells.shape[1]).astype(np.float64)
    return totals


def _row_normalised(indptr: npt.NDArray[np.integer[Any]], values: FloatArray) -> FloatArray:
    sizes = np.diff(indptr)
    sums = np.add.reduceat(values, indptr[:-1][sizes > 0]) if len(values) else np.zeros(0)
    row_sums = np.zeros(len(sizes))
    row_sums[sizes > 0] = sums
    with np.errstate(divide="ignore", invalid="ignore"):
        inverse = np.where(row_sums > 0, 1.0 / row_sums, 0.0)
    normalised: FloatArray = values * np.repeat(inverse, sizes)
    return normalised
