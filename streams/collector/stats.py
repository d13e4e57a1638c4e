"""The collector's counters, kept in Prometheus metrics (served on /metrics).

Each collector app has its own ``CollectorRegistry``, so several collectors in one
process (tests) never share counts. The ``Counter``-like views (``accepted["web"]``)
read the same metrics back for code and tests that want plain numbers.
"""

from __future__ import annotations

import re
from collections import Counter as Tally
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector

if TYPE_CHECKING:
    from streams.topic_guard import TopicProblem

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
        self._event_errors = Counter("attribution_collector_event_errors",
                                     "Events rejected because handling them raised an "
                                     "unforeseen exception (a bug: see the log)", registry=r)
        self._retried = Counter("attribution_collector_retried_requests",
                                "Requests an SDK marked as a retry (X-Retry-Count)", registry=r)
        self.topics_ready = Gauge("attribution_collector_topics_ready",
                                  "1 while the events topic exists with its declared "
                                  "partitions; 0: events are refused with 503", registry=r)
        self._topic_problems = Counter("attribution_collector_topic_problems",
                                       "Topic checks that found the topic missing or with "
                                       "another partition count", ["topic", "reason"],
                                       registry=r)
        self.open_connections = Gauge("attribution_collector_open_connections",
                                      "HTTP connections open", registry=r)
        self._refused_connections = Counter("attribution_collector_refused_connections",
                                            "Connections refused (503) over max_connections",
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

    def event_error(self) -> None:
        self._event_errors.inc()

    def retried(self) -> None:
        self._retried.inc()

    def topics_checked(self, problems: list[TopicProblem]) -> None:
        self.topics_ready.set(0 if problems else 1)
        for problem in problems:
            self._topic_problems.labels(_bounded(problem.topic), problem.reason).inc()

    def refused_connection(self) -> None:
        self._refused_connections.inc()

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
