"""Time and randomness helpers for the traffic generator.

Time constants in epoch milliseconds (``SECOND`` to ``DAY``), fast ISO-8601 formatting
(``iso_ms``), bounded exponential gaps, time-of-day and weekday weighting of arrivals,
and the small seeded random helpers (``Weighted`` choices, UUIDs, hex ids, ``_pick``)
that every other module of ``traffic`` draws from.
"""

from __future__ import annotations

import random
from bisect import bisect_right
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from itertools import accumulate
from typing import Generic, TypeVar

SECOND = 1000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR

def _ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)

# --- small helpers ----------------------------------------------------------------------

T = TypeVar("T")


class Weighted(Generic[T]):
    """A fixed weighted choice; one random() and a bisect per pick."""

    def __init__(self, pairs: Sequence[tuple[T, float]]):
        self.items = [item for item, _ in pairs]
        self.cum = list(accumulate(weight for _, weight in pairs))
        self.total = self.cum[-1]

    def pick(self, rng: random.Random) -> T:
        return self.items[bisect_right(self.cum, rng.random() * self.total)]


def _uuid(rng: random.Random) -> str:
    """A version-4 UUID from the seeded generator (uuid4() would not be reproducible)."""
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


def _hex(rng: random.Random, chars: int) -> str:
    return f"{rng.getrandbits(4 * chars):0{chars}x}"


@lru_cache(maxsize=4096)
def _day_prefix(day: int) -> str:
    return (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(days=day)).strftime("%Y-%m-%dT")


@lru_cache(maxsize=4096)  # output is time-ordered, so the same seconds recur
def _second_text(second: int) -> str:
    day, sec = divmod(second, 86400)
    minute, sec = divmod(sec, 60)
    hour, minute = divmod(minute, 60)
    return f"{_day_prefix(day)}{hour:02d}:{minute:02d}:{sec:02d}"


def iso_ms(t: int) -> str:
    """Epoch milliseconds as ISO-8601 UTC with milliseconds; faster than strftime."""
    second, milli = divmod(t, 1000)
    return f"{_second_text(second)}.{milli:03d}Z"


def _gap(rng: random.Random, mean_ms: float, low: int, high: int) -> int:
    """An exponential wait with a floor and a cap."""
    return min(high, low + int(rng.expovariate(1.0 / mean_ms)))


# Traffic by hour of day (UTC, a mostly-American audience: quiet at 07-12 UTC).
_HOUR_WEIGHTS = Weighted(list(enumerate(
    [6, 5, 4, 3, 2, 1.5, 1.2, 1, 1, 1.2, 1.6, 2.2, 3, 4, 5, 5.5, 6, 6, 6, 6, 6.5, 7, 7, 6.5]
)))
_WEEKDAY_FACTOR = (1.0, 0.98, 0.97, 1.0, 1.05, 1.15, 1.12)  # Monday first


def _time_in_day(rng: random.Random, day_start: int) -> int:
    return day_start + _HOUR_WEIGHTS.pick(rng) * HOUR + int(rng.random() * HOUR)


def _business_time(rng: random.Random, t: int) -> int:
    """The next weekday business hour at or after ``t`` (US hours, 14:00-22:00 UTC)."""
    day_start = t - t % DAY
    if t - day_start > 21 * HOUR:
        day_start += DAY
    while datetime.fromtimestamp(day_start / 1000, UTC).weekday() >= 5:
        day_start += DAY
    return max(t, day_start + 14 * HOUR + int(rng.random() * 7 * HOUR))


def _pick(rng: random.Random, items: Sequence[T]) -> T:
    return items[int(rng.random() * len(items))]
