"""The collector's counters, kept in Prometheus metrics (served on /metrics).

Each collector app has its own ``CollectorRegistry``, so several collectors in one
process (tests) never share counts. The ``Counter``-like views (``accepted["web"]``)
read the same metrics back for code and tests that want plain numbers.
"""

from __future__ import annotations

import re
from collections import Counter as Tally
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector

#: Seconds; produce-and-ack to a local broker is a few ms, a slow broker up to the timeout.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_LABEL = re.compile(r"[A-Za-z0-9_.()\[\]-]{1,40}")


def _bounded(value: str) -> str:
    """Label values come from requests: keep well-formed short ones, fold the rest."""
    return value if _LABEL.fullmatch(value) else "other"


class CollectorStats:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        ProcessCollector(registry=r)  # process_resident_memory_bytes and friends
        self._requests = Counter("attribution_collector_requests", "HTTP requests by status",
                                 ["status"], registry=r)
        self.latency = Histogram("attribution_collector_request_seconds",
                                 "HTTP request latency (produce and broker ack included)",
                                 ["route"], buckets=LATENCY_BUCKETS, registry=r)
        self._accepted = Counter("attribution_collector_events_accepted",
                                 "Events produced to Kafka, by source", ["source"], registry=r)
        self._rejected = Counter("attribution_collector_events_rejected",
                                 "Events refused, by the field at fault", ["field"], registry=r)
        self._bots = Counter("attribution_collector_events_bots",
                             "Events dropped as bot traffic, by source", ["source"], registry=r)
        self._pixel_errors = Counter("attribution_collector_pixel_errors",
                                     "Pixels that produced nothing, by reason", ["reason"],
                                     registry=r)

    # --- recording ---------------------------------------------------------------------

    def request(self, status: int, route: str | None = None, seconds: float | None = None
                ) -> None:
        self._requests.labels(str(status)).inc()
        if seconds is not None:
            self.latency.labels(route or "(unmatched)").observe(seconds)

    def accept(self, source: str, count: int) -> None:
        self._accepted.labels(source).inc(count)

    def reject(self, field: str) -> None:
        self._rejected.labels(_bounded(field)).inc()

    def bot(self, source: str) -> None:
        self._bots.labels(source).inc()

    def pixel_error(self, reason: str) -> None:
        self._pixel_errors.labels(_bounded(reason)).inc()

    # --- reading back ------------------------------------------------------------------

    @property
    def requests(self) -> Tally[int]:
        return Tally({int(k): v for k, v in _tally(self._requests, "status").items()})

    @property
    def accepted(self) -> Tally[str]:
        return _tally(self._accepted, "source")

    @property
    def rejected(self) -> Tally[str]:
        return _tally(self._rejected, "field")

    @property
    def bots(self) -> Tally[str]:
        return _tally(self._bots, "source")

    @property
    def pixel_errors(self) -> Tally[str]:
        return _tally(self._pixel_errors, "reason")

    def snapshot(self) -> dict[str, Any]:
        return {
            "requests": {str(k): v for k, v in sorted(self.requests.items())},
            "accepted": dict(self.accepted),
            "rejected": dict(self.rejected),
            "bots": dict(self.bots),
            "pixel_errors": dict(self.pixel_errors),
        }


def _tally(counter: Counter, label: str) -> Tally[str]:
    out: Tally[str] = Tally()
    for family in counter.collect():
        for sample in family.samples:
            if sample.name.endswith("_total"):
                out[sample.labels[label]] += int(sample.value)
    return out
