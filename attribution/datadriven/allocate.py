"""Land a data-driven model per touch so the rows add up to the model on both margins.

The models answer per channel (a removal effect, a Shapley value), but the credit tables hold
one share per touch of one conversion. The landed rows must hold two sums at once:

- per conversion: credits sum to 1 and credited values to the conversion's value, as every
  view expects;
- per channel: credits sum to the model's channel conversions and credited values to the
  model's channel value (for Markov the value removal effects, for Shapley the Shapley value
  of the value game), so SQL over `credits` gives the model's numbers.

Each margin is fitted by raking (attribution.datadriven.raking) a conversion x channel matrix
whose cells are the channels on each conversion's path, starting from the proportional split
(each conversion's 1 in proportion to its channels' weights: removal effects or Shapley
values) and ending at the split closest to it with both margins. Conversions with the same
channel set get the same split, so the matrix has one row per distinct set. Credit and
credited value are raked separately, from the conversion weights and the value weights: a
touch's credited_value / value may differ from its credit, as the model's value totals differ
from its conversion totals.

Within a conversion a channel's share is divided equally among its touches on the path.
credited_value's float remainder goes on the conversion's largest value share (the first
by position on ties), so values sum exactly to the conversion's value, as in
attribution.credit. Touches with no share and no value are left out, as the rule-based
models leave them out. A conversion none of whose touches the model knows (a pseudo-touch
such as "(none)") is split equally over its touches.

When no rows can meet both margins (a channel set whose model total exceeds what the
conversions on its paths can give), the conversions' sums still hold and channels get the
closest fit raking can reach (see attribution.datadriven.raking); `channels` shows how far
each channel is from the model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
import scipy.sparse as sp

from attribution.datadriven.journeys import FloatArray
from attribution.datadriven.raking import fits, rake

CONVERSION_ID = "conversion_id"
POSITION = "position"
CHANNEL = "channel"
VALUE = "value"
CREDIT = "credit"
CREDITED_VALUE = "credited_value"

MODEL_SCHEMA: dict[str, pl.DataType] = {
    CHANNEL: pl.String(),
    "weight": pl.Float64(),  # start weight of the conversion split
    "value_weight": pl.Float64(),  # start weight of the value split
    "conversions": pl.Float64(),  # the model's channel conversions
    "value": pl.Float64(),  # the model's channel value
}

FIT_SCHEMA: dict[str, pl.DataType] = {
    CHANNEL: pl.String(),
    "weight": pl.Float64(),
    "model_conversions": pl.Float64(),
    "credit": pl.Float64(),  # landed: sum of the rows' credit
    "conversions_gap": pl.Float64(),  # credit - model_conversions
    "conversions_on_path": pl.Float64(),  # conversions whose path holds the channel: the most
    "model_value": pl.Float64(),  # it can get
    "credited_value": pl.Float64(),
    "value_gap": pl.Float64(),
    "value_on_path": pl.Float64(),
    "fitted": pl.Boolean(),  # both gaps within raking.FITTED of the model
}


@dataclass(frozen=True)
class Allocation:
    rows: pl.DataFrame  # the touches with credit and credited_value, see `allocate`
    channels: pl.DataFrame  # one row per model channel, FIT_SCHEMA

    @property
    def fitted(self) -> bool:
        return bool(self.channels.get_column("fitted").all())


def allocate(touches: pl.DataFrame, model: pl.DataFrame) -> Allocation:
    """Shares of every touch of every conversion, fitted to the model's channel totals.

    `touches` has one row per touch: conversion_id, position (order on the path), channel and
    value (the conversion's value, repeated on each of its touches, >= 0); other columns are
    kept. `model` has one row per channel (MODEL_SCHEMA). The rows come back sorted by
    conversion_id and position, with `credit` and `credited_value` added.
    """
    missing = {CONVERSION_ID, POSITION, CHANNEL, VALUE} - set(touches.columns)
    if missing:
        raise ValueError(f"touches lack columns: {sorted(missing)}")
    model = model.select(
        [pl.col(name).cast(dtype) for name, dtype in MODEL_SCHEMA.items()]
    ).sort(CHANNEL)
    channels: list[str] = model.get_column(CHANNEL).to_list()
    frame = touches.with_columns(pl.col(CHANNEL).cast(pl.String())).sort(
        CONVERSION_ID, POSITION, maintain_order=True
    )
    if frame.is_empty():
        empty = frame.with_columns(pl.lit(0.0).alias(CREDIT), pl.lit(0.0).alias(CREDITED_VALUE))
        nothing = np.zeros((len(channels), 2))
        return Allocation(empty, _fit_frame(model, nothing, nothing))
    value = frame.get_column(VALUE).cast(pl.Float64()).to_numpy()
    if np.any(~np.isfinite(value)) or np.any(value < 0):
        raise ValueError("data-driven credits need finite conversion values >= 0")

    # Touches grouped by conversion (rows are sorted), numbered 0..n-1.
    ids = frame.get_column(CONVERSION_ID).to_numpy()
    starts = np.flatnonzero(np.concatenate([[True], ids[1:] != ids[:-1]]))
    sizes = np.diff(np.append(starts, len(ids)))
    conversion = np.repeat(np.arange(len(starts)), sizes)
    channel = (
        frame.get_column(CHANNEL).replace_strict(
            {name: i for i, name in enumerate(channels)}, default=None, return_dtype=pl.Int64()
        ).fill_null(-1).to_numpy()
    )
    known = channel >= 0
    same = (
        pl.DataFrame({"conversion": conversion, "channel": channel})
        .select(pl.len().over("conversion", "channel"))
        .to_series().to_numpy().astype(np.float64)
    )

    sets = _channel_sets(conversion[known], channel[known], len(starts), len(channels))
    conversion_value = value[starts]
    placed = sets.set_of >= 0
    mass = np.stack([
        np.bincount(sets.set_of[placed], minlength=sets.members.shape[0]).astype(np.float64),
        np.bincount(sets.set_of[placed], conversion_value[placed],
                    minlength=sets.members.shape[0]),
    ])
    weights = model.select("weight", "value_weight").to_numpy().T
    targets = model.select("conversions", "value").to_numpy().T
    shares = [rake(sets.members, mass[k], weights[k], targets[k]).shares for k in (0, 1)]

    # Each touch's channel share in its conversion's set, divided among the channel's touches.
    cell = _cell_index(sets.members, sets.set_of[conversion], channel)
    in_model = cell >= 0
    credit = np.zeros(len(ids))
    value_share = np.zeros(len(ids))
    credit[in_model] = shares[0][cell[in_model]] / same[in_model]
    value_share[in_model] = shares[1][cell[in_model]] / same[in_model]
    outside = ~placed[conversion]  # no touch the model knows: equal shares per touch
    credit[outside] = 1.0 / sizes[conversion[outside]]
    value_share[outside] = credit[outside]

    credited = value_share * conversion_value[conversion]
    remainder = conversion_value - np.add.reduceat(credited, starts)
    credited[_first_largest(value_share, starts, sizes)] += remainder
    rows = frame.with_columns(pl.Series(CREDIT, credit), pl.Series(CREDITED_VALUE, credited)
                              ).filter((pl.col(CREDIT) > 0) | (pl.col(CREDITED_VALUE) != 0))

    landed = np.stack([
        np.bincount(channel[known], credit[known], minlength=len(channels)),
        np.bincount(channel[known], credited[known], minlength=len(channels)),
    ], axis=1).astype(np.float64)
    on_path = np.stack([np.asarray(sets.members.T @ mass[k]).ravel() for k in (0, 1)], axis=1)
    return Allocation(rows, _fit_frame(model, landed, on_path))


@dataclass(frozen=True)
class _Sets:
    members: sp.csr_array  # distinct channel sets x channels, 1 where the channel is in it
    set_of: np.ndarray  # each conversion's set, -1 for a conversion with no model channel


def _channel_sets(
    conversion: np.ndarray, channel: np.ndarray, n_conversions: int, n_channels: int
) -> _Sets:
    """The distinct channel sets of the conversions (from their known touches), in a fixed
    order (by their channel ids) so every float sum downstream runs in the same order."""
    per_conversion = (
        pl.DataFrame({"conversion": conversion, "channel": channel})
        .unique()
        .sort("conversion", "channel")
        .group_by("conversion", maintain_order=True)
        .agg(pl.col("channel").alias("set"))
        .with_columns(pl.col("set").cast(pl.List(pl.String())).list.join(",").alias("key"))
    )
    distinct = (
        per_conversion.unique("key").select("set", "key").sort("key").with_row_index("set_id")
    )
    numbered = per_conversion.join(distinct.select("key", "set_id"), on="key")
    set_of = np.full(n_conversions, -1, dtype=np.int64)
    set_of[numbered.get_column("conversion").to_numpy()] = numbered.get_column("set_id").to_numpy()
    sizes = distinct.get_column("set").list.len().to_numpy()
    indices = distinct.get_column("set").explode().to_numpy().astype(np.int64)
    members = sp.csr_array(
        (np.ones(len(indices)), indices, np.concatenate([[0], np.cumsum(sizes)])),
        shape=(len(sizes), n_channels),
    )
    return _Sets(members=members, set_of=set_of)


def _cell_index(members: sp.csr_array, set_of: np.ndarray, channel: np.ndarray) -> np.ndarray:
    """Position in `members`' data of each (set, channel) pair, -1 where there is none."""
    width = members.shape[1]
    rows = np.repeat(np.arange(members.shape[0]), np.diff(members.indptr))
    cells = rows * width + members.indices  # increasing: rows in order, channels sorted
    wanted = set_of * width + channel
    found = np.minimum(np.searchsorted(cells, wanted), max(len(cells) - 1, 0))
    hit = (set_of >= 0) & (channel >= 0) & (len(cells) > 0)
    hit[hit] = cells[found[hit]] == wanted[hit]
    return np.where(hit, found, -1)


def _fit_frame(model: pl.DataFrame, landed: FloatArray, on_path: FloatArray) -> pl.DataFrame:
    targets = model.select("conversions", "value").to_numpy().reshape(-1, 2)
    fitted = fits(landed[:, 0], targets[:, 0]) & fits(landed[:, 1], targets[:, 1])
    return pl.DataFrame(
        {
            CHANNEL: model.get_column(CHANNEL),
            "weight": model.get_column("weight"),
            "model_conversions": targets[:, 0],
            "credit": landed[:, 0],
            "conversions_gap": landed[:, 0] - targets[:, 0],
            "conversions_on_path": on_path[:, 0],
            "model_value": targets[:, 1],
            "credited_value": landed[:, 1],
            "value_gap": landed[:, 1] - targets[:, 1],
            "value_on_path": on_path[:, 1],
            "fitted": fitted,
        },
        schema=FIT_SCHEMA,
    )


def _first_largest(share: np.ndarray, starts: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Row index of the largest share of each group (the first one on ties)."""
    group = np.repeat(np.arange(len(starts)), sizes)
    # Within a group rows are in position order; lexsort puts the largest share first and,
    # among equal shares, the earliest row first.
    order = np.lexsort((np.arange(len(share)), -share, group))
    first: np.ndarray = order[starts]
    return first
