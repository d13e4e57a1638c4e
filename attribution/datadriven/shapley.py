"""Shapley-value attribution over channel sets: the simplified Shapley value of Zhao et al.
(2018, "Shapley value methods for attribution modeling in online advertising"), not their
ordered variant (which credits a channel per position in the path).

The game: v(S) = conversions (or value) of the journeys whose channel set is a subset of S.
Writing w(T) for the conversions of journeys whose channel set is exactly T,
v = sum over T of w(T) * u_T, where u_T(S) = 1 when T is a subset of S is the unanimity game of
T. Shapley values are linear and give each member of T a 1/|T| share of u_T, so

    phi_i = sum over observed sets T containing i of w(T) / |T|.

This is the exact Shapley value of the game for any number of channels: it needs only the
distinct channel sets actually observed (at most the number of distinct paths), never the 2^C
coalitions, so no approximation is needed above 20 channels. Order and repeats of touches do
not matter here, and v counts conversions only, so non-converting journeys earn nothing.
Journeys with no touch are the empty coalition (v of it is not 0); they are left out, so the
credits sum to v(all channels) - v(empty set).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from attribution.datadriven.journeys import CONVERSIONS, PATH, VALUE, aggregate_paths

CHANNEL_SET = "channel_set"


def channel_sets(journeys: pl.DataFrame) -> pl.DataFrame:
    """Conversions and value per distinct non-empty channel set (a sorted list of names),
    sorted by set so sums downstream run in a fixed order."""
    return (
        aggregate_paths(journeys)
        .select(
            pl.col(PATH).list.unique().list.sort().alias(CHANNEL_SET),
            pl.col(CONVERSIONS),
            pl.col(VALUE),
        )
        .group_by(CHANNEL_SET)
        .agg(pl.col(CONVERSIONS).sum(), pl.col(VALUE).sum())
        .sort(CHANNEL_SET)
    )


def shapley_credits(journeys: pl.DataFrame) -> pl.DataFrame:
    """Shapley value of every channel seen in the journeys. Columns: channel, shapley
    (credited conversions), value (credited value)."""
    sets = channel_sets(journeys)
    members = sets.get_column(CHANNEL_SET)
    sizes = members.list.len().to_numpy().astype(np.float64)
    flat = members.explode()
    channels: list[str] = sorted(flat.unique().to_list())
    if not channels:
        return _frame([], np.zeros(0), np.zeros(0))
    member_ids = flat.cast(pl.Enum(channels)).to_physical().to_numpy().astype(np.int64)
    set_of = np.repeat(np.arange(len(sizes)), sizes.astype(np.int64))
    shares = np.column_stack(
        [
            sets.get_column(CONVERSIONS).to_numpy() / sizes,
            sets.get_column(VALUE).to_numpy() / sizes,
        ]
    )[set_of]
    conversions = np.bincount(member_ids, weights=shares[:, 0], minlength=len(channels))
    value = np.bincount(member_ids, weights=shares[:, 1], minlength=len(channels))
    return _frame(channels, conversions, value)


def _frame(channels: list[str], conversions: np.ndarray, value: np.ndarray) -> pl.DataFrame:
    return pl.DataFrame(
        {"channel": channels, "shapley": conversions, "value": value},
        schema={"channel": pl.String(), "shapley": pl.Float64(), "value": pl.Float64()},
    )
