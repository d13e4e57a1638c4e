"""Journey input for the data-driven models: validation, aggregation by path, integer encoding.

A journey is one row: `path` (channel names, oldest touch first), `conversions` (0 for a
non-converting journey) and `value`. Many journeys share a path, so both models first collapse
rows to distinct paths; the heavy work then scales with distinct paths, not journeys.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import polars as pl

PATH = "path"
CONVERSIONS = "conversions"
VALUE = "value"
NULLS = "nulls"

JOURNEY_SCHEMA: dict[str, pl.DataType] = {
    PATH: pl.List(pl.String()),
    CONVERSIONS: pl.Float64(),
    VALUE: pl.Float64(),
}

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


def journeys_frame(
    paths: Sequence[Sequence[str]],
    conversions: Sequence[float],
    values: Sequence[float] | None = None,
) -> pl.DataFrame:
    """Journeys from plain lists (values default to 0)."""
    if len(paths) != len(conversions) or (values is not None and len(values) != len(paths)):
        raise ValueError("paths, conversions and values must have the same length")
    return pl.DataFrame(
        {
            PATH: [list(path) for path in paths],
            CONVERSIONS: [float(c) for c in conversions],
            VALUE: [0.0] * len(paths) if values is None else [float(v) for v in values],
        },
        schema=JOURNEY_SCHEMA,
    )


def aggregate_paths(journeys: pl.DataFrame) -> pl.DataFrame:
    """One row per distinct non-empty path: summed conversions and value, and `nulls`, the
    number of journeys on it that did not convert.

    Journeys with an empty path are dropped: they have no channel to credit. Rows are sorted
    by path so every later floating-point sum runs in the same order whatever the input order.
    """
    missing = {PATH, CONVERSIONS} - set(journeys.columns)
    if missing:
        raise ValueError(f"journeys lack columns: {sorted(missing)}")
    value = pl.col(VALUE) if VALUE in journeys.columns else pl.lit(0.0)
    frame = journeys.select(
        pl.col(PATH).cast(pl.List(pl.String())).fill_null([]),
        pl.col(CONVERSIONS).cast(pl.Float64()),
        value.cast(pl.Float64()).alias(VALUE),
    )
    _validate(frame)
    return (
        frame.filter(pl.col(PATH).list.len() > 0)
        .group_by(PATH)
        .agg(
            pl.col(CONVERSIONS).sum(),
            pl.col(VALUE).sum(),
            (pl.col(CONVERSIONS) == 0).sum().cast(pl.Float64()).alias(NULLS),
        )
        .sort(PATH)
    )


def _validate(frame: pl.DataFrame) -> None:
    problems = frame.select(
        (pl.col(CONVERSIONS).is_null() | ~pl.col(CONVERSIONS).is_finite()).any().alias("bad_conv"),
        (pl.col(CONVERSIONS) < 0).any().alias("negative_conv"),
        (pl.col(VALUE).is_null() | ~pl.col(VALUE).is_finite()).any().alias("bad_value"),
        pl.col(PATH).list.eval(pl.element().is_null()).list.any().any().alias("null_channel"),
    ).row(0, named=True)
    if problems["bad_conv"] or problems["negative_conv"]:
        raise ValueError("conversions must be finite and >= 0")
    if problems["bad_value"]:
        raise ValueError("value must be finite")
    if problems["null_channel"]:
        raise ValueError("paths must not contain null channel names")


@dataclass(frozen=True)
class EncodedPaths:
    """Distinct paths as flat integer arrays: path p is `touches[offsets[p]:offsets[p + 1]]`,
    each touch a channel id indexing `channels` (sorted by name)."""

    channels: list[str]
    touches: IntArray
    offsets: IntArray
    conversions: FloatArray
    nulls: FloatArray
    value: FloatArray

    @property
    def lengths(self) -> IntArray:
        return np.diff(self.offsets)


def encode_paths(journeys: pl.DataFrame) -> EncodedPaths:
    """Aggregate journeys by path and encode channel names as ids 0..C-1 in name order."""
    paths = aggregate_paths(journeys)
    flat = paths.get_column(PATH).explode()
    channels: list[str] = sorted(flat.unique().to_list())
    touches = (
        flat.cast(pl.Enum(channels)).to_physical().to_numpy().astype(np.int64)
        if channels
        else np.zeros(0, dtype=np.int64)
    )
    lengths = paths.get_column(PATH).list.len().to_numpy().astype(np.int64)
    offsets = np.concatenate([np.zeros(1, dtype=np.int64), np.cumsum(lengths)])
    return EncodedPaths(
        channels=channels,
        touches=touches,
        offsets=offsets,
        conversions=paths.get_column(CONVERSIONS).to_numpy().astype(np.float64),
        nulls=paths.get_column(NULLS).to_numpy().astype(np.float64),
        value=paths.get_column(VALUE).to_numpy().astype(np.float64),
    )
