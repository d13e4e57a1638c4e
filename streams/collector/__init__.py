"""Segment-compatible HTTP collector and tracking pixel, producing envelopes to Kafka."""

from streams.collector.app import create_app
from streams.collector.producer import BrokerUnavailable, EnvelopeProducer, EnvelopeSink
from streams.collector.server import (
    RunningCollector,
    producer_for,
    serve,
    serve_until_signalled,
    start,
)
from streams.collector.settings import CollectorSettings, RateLimit
from streams.collector.state import STATE, CollectorState
from streams.collector.stats import CollectorStats

__all__ = [
    "STATE",
    "BrokerUnavailable",
    "CollectorSettings",
    "CollectorState",
    "CollectorStats",
    "EnvelopeProducer",
    "EnvelopeSink",
    "RateLimit",
    "RunningCollector",
    "create_app",
    "producer_for",
    "serve",
    "serve_until_signalled",
    "start",
]
