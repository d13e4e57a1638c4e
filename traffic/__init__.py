"""Synthetic B2C and B2B Segment traffic and matching ad spend (see ``traffic.generate``)."""

from traffic.generate import (
    TrafficSpec,
    generate_events,
    generate_spend,
    write_jsonl,
    write_spend_csv,
)

__all__ = ["TrafficSpec", "generate_events", "generate_spend", "write_jsonl", "write_spend_csv"]
