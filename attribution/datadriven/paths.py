"""Paths of the journeys that did not convert, windowed and cleaned like a conversion's path.

A converting journey's path is what the credit engine credited (attribution.credit): the
touches inside the lookback of their kind before the conversion, Direct dropped and repeats
collapsed when the policy says so, capped at max_touches. A non-converting journey has no
conversion time to look back from, so its window ends at its own last touch; the same
cleaning then applies, and the cap keeps the first touch and the most recent ones (as
`cap_path` does when there are no stage touches). Vectorised over all journeys at once.

The alternative, not used here: end every window at the end of the data (the warehouse's
latest touch). That drops journeys that went quiet long ago, which did not convert either.
"""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl

from attribution.credit import DIRECT

JOURNEY_KEY = "journey_key"
EVENT_ID = "event_id"
TIME = "time"
CHANNEL = "channel"
KIND = "kind"
PATH = "path"


def window_paths(
    touches: pl.DataFrame,
    lookback_seconds: Mapping[str, float],
    *,
    drop_direct: bool = False,
    collapse_repeats: bool = False,
    max_touches: int = 500,
) -> pl.DataFrame:
    """One row per journey with an eligible touch: journey_key and path (channels, oldest
    first), sorted by journey_key.

    `touches` has journey_key, event_id, time, channel and kind (an interaction kind, whose
    lookback is looked up in `lookback_seconds`; a kind not given, or given 0, gets no window).
    """
    missing = {JOURNEY_KEY, EVENT_ID, TIME, CHANNEL, KIND} - set(touches.columns)
    if missing:
        raise ValueError(f"touches lack columns: {sorted(missing)}")
    if max_touches < 2:
        raise ValueError("max_touches must be at least 2")
    kinds = pl.DataFrame(
        {KIND: list(lookback_seconds), "_lookback": [float(s) for s in lookback_seconds.values()]},
        schema={KIND: pl.String(), "_lookback": pl.Float64()},
    )
    frame = (
        touches.select(JOURNEY_KEY, EVENT_ID, TIME, CHANNEL, pl.col(KIND).cast(pl.String()))
        .sort(JOURNEY_KEY, TIME, EVENT_ID)
        .join(kinds, on=KIND, how="left", maintain_order="left")
        .with_columns(
            ((pl.col(TIME).max().over(JOURNEY_KEY) - pl.col(TIME)).dt.total_microseconds() / 1e6)
            .alias("_age")
        )
        .filter((pl.col("_lookback") > 0) & (pl.col("_age") <= pl.col("_lookback")))
    )
    if drop_direct:
        has_other = (pl.col(CHANNEL) != DIRECT).any().over(JOURNEY_KEY)
        frame = frame.filter(~has_other | (pl.col(CHANNEL) != DIRECT))
    if collapse_repeats:
        previous = pl.col(CHANNEL).shift(1).over(JOURNEY_KEY)
        frame = frame.filter(previous.is_null() | (pl.col(CHANNEL) != previous))
    index = pl.int_range(pl.len(), dtype=pl.Int64()).over(JOURNEY_KEY)
    count = pl.len().over(JOURNEY_KEY).cast(pl.Int64())  # unsigned: count - n would wrap
    frame = frame.filter((index == 0) | (index >= count - (max_touches - 1)))
    return (
        frame.group_by(JOURNEY_KEY, maintain_order=True)
        .agg(pl.col(CHANNEL).alias(PATH))
        .sort(JOURNEY_KEY)
    )
