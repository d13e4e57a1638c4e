"""Token bucket rate limit per write key, counted in events."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from streams.collector.settings import RateLimit


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    def __init__(self, limit: RateLimit, clock: Callable[[], float] = time.monotonic):
        self._limit = limit
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}

    def take(self, key: str, events: int) -> float:
        """Take ``events`` tokens; return 0 if allowed, else seconds until they would be.

        A request larger than the burst only needs a full bucket, so it is never refused
        forever.
        """
        cost = min(max(events, 1), self._limit.burst)
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(tokens=float(self._limit.burst), updated=now)
        rate = self._limit.events_per_second
        bucket.tokens = min(float(self._limit.burst), bucket.tokens + (now - bucket.updated) * rate)
        bucket.updated = now
        if bucket.tokens >= cost:
            bucket.tokens -= cost
            return 0.0
        return (cost - bucket.tokens) / rate

    @staticmethod
    def retry_after_header(wait: float) -> str:
        return str(max(1, math.ceil(wait)))
