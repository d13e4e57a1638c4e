"""Wall times of the data-driven models on synthetic journeys (prints numbers, asserts nothing).

    .venv/bin/python bench/datadriven.py [journeys] [channels]

Journeys: 1..8 touches (shorter ones likelier), channels drawn with Zipf-like popularity, a
conversion rate around 4% that rises with path length and with a few "closing" channels, and
log-normal order values for converters. Targets on a 2-core machine: Markov order 1 < 5 s,
order 3 < 30 s, Shapley over 15 channels < 10 s, each with the allocation of its credits to
the converting journeys' touches (fitted to both margins), timed on its own line.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from functools import partial
from typing import TypeVar

import numpy as np
import numpy.typing as npt
import polars as pl
import pyarrow as pa

from attribution.datadriven.allocate import allocate
from attribution.datadriven.journeys import aggregate_paths, encode_paths
from attribution.datadriven.markov import build_chain, markov_credits
from attribution.datadriven.shapley import shapley_credits

T = TypeVar("T")

CHANNELS = [
    "Direct", "Organic Search", "Paid Search", "Organic Social", "Paid Social", "Email",
    "Affiliates", "Referral", "Display", "Paid Video", "Organic Video", "Paid Other",
    "Cross-network", "SMS", "Audio", "Mobile Push", "Unassigned",
]  # fmt: skip


def synthetic_journeys(n_journeys: int, n_channels: int, seed: int = 7) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    names = (CHANNELS + [f"Channel {i}" for i in range(len(CHANNELS), n_channels)])[:n_channels]
    popularity = 1.0 / np.arange(1, n_channels + 1) ** 0.8
    lengths = rng.choice(np.arange(1, 9), size=n_journeys, p=_normalised(1.0 / np.arange(1, 9)))
    touches = rng.choice(n_channels, size=int(lengths.sum()), p=_normalised(popularity))
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)

    closing = np.zeros(n_channels)
    closing[[2, 5]] = 0.03  # Paid Search and Email close more often
    path_of = np.repeat(np.arange(n_journeys), lengths)
    lift = np.bincount(path_of, weights=closing[touches], minlength=n_journeys)
    converts = rng.random(n_journeys) < 0.01 + 0.006 * lengths + lift
    value = np.where(converts, rng.lognormal(4.0, 0.8, n_journeys), 0.0)

    channel_names = pl.Series(names, dtype=pl.String()).gather(touches).to_arrow()
    path = pa.ListArray.from_arrays(pa.array(offsets), channel_names)
    return pl.DataFrame(
        {
            "path": pl.Series(pl.from_arrow(path)),
            "conversions": converts.astype(np.float64),
            "value": value,
        }
    )


def _normalised(weights: npt.ArrayLike) -> npt.NDArray[np.float64]:
    as_floats = np.asarray(weights, dtype=np.float64)
    normalised: npt.NDArray[np.float64] = as_floats / as_floats.sum()
    return normalised


def timed(label: str, run: Callable[[], T]) -> T:
    began = time.perf_counter()
    result = run()
    print(f"{label:<32} {time.perf_counter() - began:8.2f} s")
    return result


def converting_touches(journeys: pl.DataFrame) -> pl.DataFrame:
    """One row per touch of each converting journey, as `attribution datadriven` allocates."""
    return (
        journeys.with_row_index("conversion_id")
        .filter(pl.col("conversions") > 0)
        .select("conversion_id", pl.col("path").alias("channel"), "value")
        .explode("channel")
        .with_columns(pl.int_range(pl.len()).over("conversion_id").alias("position"))
    )


def markov_model(journeys: pl.DataFrame, order: int) -> pl.DataFrame:
    return markov_credits(journeys, order).select(
        "channel", pl.col("removal_effect").alias("weight"),
        pl.col("value_removal_effect").alias("value_weight"), "conversions", "value")


def shapley_model(journeys: pl.DataFrame) -> pl.DataFrame:
    return shapley_credits(journeys).select(
        "channel", pl.col("shapley").alias("weight"), pl.col("value").alias("value_weight"),
        pl.col("shapley").alias("conversions"), "value")


def time_allocation(label: str, touches: pl.DataFrame, model: pl.DataFrame) -> None:
    began = time.perf_counter()
    allocation = allocate(touches, model)
    seconds = time.perf_counter() - began
    gap = allocation.channels.select(pl.col("conversions_gap").abs().max()).item()
    fit = "fitted" if allocation.fitted else f"NOT fitted, largest gap {gap:.3g}"
    print(f"{f'allocate {label} ({touches.height:,} touches, {fit})':<32} {seconds:8.2f} s")


def main() -> None:
    n_journeys = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    n_channels = int(sys.argv[2]) if len(sys.argv) > 2 else 15
    journeys = timed("generate journeys", lambda: synthetic_journeys(n_journeys, n_channels))
    print(f"journeys: {journeys.height:,}  conversions: {journeys['conversions'].sum():,.0f}")
    paths = timed("aggregate by path", lambda: aggregate_paths(journeys))
    print(f"distinct paths: {paths.height:,}")
    encoded = encode_paths(journeys)
    touches = converting_touches(journeys)
    for order in (1, 2, 3, 4):
        states = build_chain(encoded, order).start
        model = timed(f"markov order {order} ({states:,} states)",
                      partial(markov_model, journeys, order))
        if order in (1, 3):
            time_allocation(f"markov order {order}", touches, model)
    model = timed(f"shapley ({n_channels} channels)", lambda: shapley_model(journeys))
    time_allocation("shapley", touches, model)
    print(model)


if __name__ == "__main__":
    main()
