"""Data-driven attribution over many journeys, converting and not (DOMAIN.md section 3)."""

from attribution.datadriven.journeys import aggregate_paths, journeys_frame
from attribution.datadriven.markov import conversion_probability, markov_credits
from attribution.datadriven.shapley import shapley_credits

__all__ = [
    "aggregate_paths",
    "conversion_probability",
    "journeys_frame",
    "markov_credits",
    "shapley_credits",
]
