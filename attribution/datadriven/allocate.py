"""Split each conversion over its own touches by data-driven channel weights.

The data-driven models answer per channel (a removal effect, a Shapley value), but the
credit tables hold one share per touch of one conversion, and every view relies on the shares
of a conversion summing to 1. So each conversion's 1 is split over the channels on its path in
proportion to their weights, and a channel's part equally among its touches on that path:

    credit(touch t of channel c) = w_c / (sum of w_d over the distinct channels d of the path)
                                   / (touches of c on the path)

A path whose channels all weigh 0 (or a pseudo-touch such as "(none)", which has no weight)
falls back to equal shares per touch. Touches whose share is 0 are left out, as the
rule-based models leave them out. credited_value is credit times the conversion's value,
with the float remainder put on the largest share (first by position) so the values sum
exactly to the conversion's value, as in attribution.credit.

The alternative, not used here: split value by the value removal effects instead of the
conversion ones (credit and credited_value shares of a touch would then differ); or, for
Shapley, split each conversion equally over its distinct channels, which reproduces the
channel Shapley values exactly as totals (the game is a sum of unanimity games, one per
channel set) but ignores the weights learnt from the other journeys. With proportional
allocation the per-channel sums of the landed rows approach but do not equal the model's
channel totals.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import polars as pl

CONVERSION_ID = "conversion_id"
POSITION = "position"
CHANNEL = "channel"
VALUE = "value"
CREDIT = "credit"
CREDITED_VALUE = "credited_value"


def allocate_by_channel_weight(touches: pl.DataFrame, weights: Mapping[str, float]) -> pl.DataFrame:
    """Shares of every touch of every conversion.

    `touches` has one row per touch: conversion_id, position (order on the path), channel and
    value (the conversion's value, repeated on each of its touches); other columns are kept.
    Returns the rows with a positive share, with `credit` and `credited_value` added, sorted
    by conversion_id and position. Negative weights count as 0.
    """
    missing = {CONVERSION_ID, POSITION, CHANNEL, VALUE} - set(touches.columns)
    if missing:
        raise ValueError(f"touches lack columns: {sorted(missing)}")
    weight_frame = pl.DataFrame(
        {CHANNEL: list(weights), "_weight": [max(float(w), 0.0) for w in weights.values()]},
        schema={CHANNEL: pl.String(), "_weight": pl.Float64()},
    )
    frame = (
        touches.with_columns(pl.col(CHANNEL).cast(pl.String()))
        .sort(CONVERSION_ID, POSITION)
        .join(weight_frame, on=CHANNEL, how="left", maintain_order="left")
        .with_columns(
            pl.col("_weight").fill_null(0.0),
            pl.len().over(CONVERSION_ID, CHANNEL).alias("_same_channel"),
        )
    )
    if frame.is_empty():
        return frame.drop("_weight", "_same_channel").with_columns(
            pl.lit(0.0).alias(CREDIT), pl.lit(0.0).alias(CREDITED_VALUE)
        )

    # Sums in numpy over rows in a fixed order, so the floats are the same on every run.
    ids = frame.get_column(CONVERSION_ID).to_numpy()
    starts = np.flatnonzero(np.concatenate([[True], ids[1:] != ids[:-1]]))
    sizes = np.diff(np.append(starts, len(ids)))
    group = np.repeat(np.arange(len(starts)), sizes)
    weight = frame.get_column("_weight").to_numpy().astype(np.float64)
    same = frame.get_column("_same_channel").to_numpy().astype(np.float64)
    per_touch = weight / same
    total = np.add.reduceat(per_touch, starts)[group]
    equal = 1.0 / sizes[group]
    with np.errstate(divide="ignore", invalid="ignore"):
        credit = np.where(total > 0, per_touch / total, equal)

    value = frame.get_column(VALUE).to_numpy().astype(np.float64)
    credited = credit * value
    remainder = value[starts] - np.add.reduceat(credited, starts)
    credited[_first_largest(credit, starts, sizes)] += remainder
    return (
        frame.drop("_weight", "_same_channel")
        .with_columns(pl.Series(CREDIT, credit), pl.Series(CREDITED_VALUE, credited))
        .filter(pl.col(CREDIT) > 0)
    )


def _first_largest(credit: np.ndarray, starts: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Row index of the largest share of each group (the first one on ties)."""
    group = np.repeat(np.arange(len(starts)), sizes)
    # Within a group rows are in position order; lexsort puts the largest share first and,
    # among equal shares, the earliest row first.
    order = np.lexsort((np.arange(len(credit)), -credit, group))
    first: np.ndarray = order[starts]
    return first
