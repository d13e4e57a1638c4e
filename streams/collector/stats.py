"""In-process counters of the collector, kept in one place so /metrics can replace them."""

from __future__ import annotations

from collections import Counter
from typing import Any


class CollectorStats:
    def __init__(self) -> None:
        self.requests: Counter[int] = Counter()  # by HTTP status
        self.accepted: Counter[str] = Counter()  # events produced, by source
        self.rejected: Counter[str] = Counter()  # events refused, by reason
        self.bots: Counter[str] = Counter()  # events dropped as bot traffic, by source
        self.pixel_errors: Counter[str] = Counter()  # pixels that produced nothing, by reason

    def request(self, status: int) -> None:
        self.requests[status] += 1

    def snapshot(self) -> dict[str, Any]:
        return {
            "requests": {str(k): v for k, v in sorted(self.requests.items())},
            "accepted": dict(self.accepted),
            "rejected": dict(self.rejected),
            "bots": dict(self.bots),
            "pixel_errors": dict(self.pixel_errors),
        }
