"""Synthetic Segment traffic for a B2C shop (shop.example) and a B2B SaaS (saas.example).

Used by the demo, the tests and the benchmarks. The output is deterministic (same
``TrafficSpec``, same bytes) and strictly ordered by true event time, in bounded memory:

- *Planning* turns one actor (a B2C visitor, a considered-purchase shopper, a B2B
  account with its contacts, a self-serve buyer) into compact ``Call`` tuples. Actors
  are planned in order of their first event, so every call of an actor planned later
  happens after that actor's start.
- *Emitting* keeps a heap of planned calls and releases every call earlier than the
  next actor's start, rendering it to a wire dict only then. Memory is the calls of the
  journeys still in progress (B2C journeys last days, so this stays small).
- *Noise* (client retries, pixel + server double sends, invalid lines) is added on the
  way out, each from its own random stream, so changing one rate leaves the rest of the
  output as it was: dropping the rejected lines of a run with ``invalid_rate > 0``
  gives exactly the run with ``invalid_rate = 0``.

Wire times: ``timestamp`` and ``sentAt`` are on the client clock (skewed on some
devices), ``receivedAt`` on the server clock, so ``timestamp + receivedAt - sentAt``
(what ``schemas.wire.parse_event`` computes) is exactly the true time.

Time span: ordinary B2C visitors arrive in the ``days`` before ``end``; considered
purchases (weeks of research) and B2B accounts (months) start earlier, B2B histories up
to ``b2b_history_days`` before ``end``. Nothing is emitted at or after ``end``; journeys
still running then are cut there (open deals, undecided shoppers).
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import count
from pathlib import Path
from typing import Any

import orjson

from traffic.actors import _actors, _streams, planned_calls
from traffic.calls import Call, Plan, _copy, _server_copy, invalid_variant, render
from traffic.catalogue import Campaign
from traffic.clock import DAY, SECOND, _ms, _uuid, iso_ms

# Names other modules import from here (spend.py, the tests); they live in the modules above.
__all__ = [
    "DAY",
    "Campaign",
    "TrafficSpec",
    "generate_events",
    "generate_spend",
    "iso_ms",
    "planned_calls",
    "write_jsonl",
    "write_spend_csv",
]

CONVERSION_EVENTS = frozenset(
    {"Order Completed", "Lead Created", "Opportunity Created", "Opportunity Won"}
)

# B2B contacts' first touches reach back this far before `end` (journeys last 1-9 months).
B2B_HISTORY_DAYS = 365


@dataclass(frozen=True)
class TrafficSpec:
    """What to generate. ``b2c_visitors`` is the main scale knob (about 9 events each)."""

    seed: int = 42
    b2c_visitors: int = 2000
    b2b_accounts: int = 40
    days: int = 60
    end: datetime = datetime(2026, 10, 31, tzinfo=UTC)  # fixed so output is reproducible
    duplicate_rate: float = 0.01  # same messageId sent twice (client retries)
    double_send_rate: float = 0.01  # same conversion sent twice, new messageId (pixel + server)
    invalid_rate: float = 0.0  # share of lines that are invalid on purpose
    b2b_history_days: int = B2B_HISTORY_DAYS
    # A site that buys most of its traffic: every B2C page view is a campaign landing that
    # starts a new session (so a touch), and about 6% of visitors buy. Attribution
    # workloads look like this; the default mix has many in-session pages that make no touch.
    touch_heavy: bool = False

    def __post_init__(self) -> None:
        if self.end.tzinfo is None:
            raise ValueError("end must be timezone-aware")
        if self.b2c_visitors < 0 or self.b2b_accounts < 0:
            raise ValueError("b2c_visitors and b2b_accounts cannot be negative")
        if self.days < 1:
            raise ValueError("days must be at least 1")
        if self.b2b_history_days < 60:
            raise ValueError("b2b_history_days must be at least 60 (journeys last months)")
        for name in ("duplicate_rate", "double_send_rate", "invalid_rate"):
            rate = getattr(self, name)
            if not 0.0 <= rate < 0.5:
                raise ValueError(f"{name} must be in [0, 0.5), got {rate}")

    @property
    def end_ms(self) -> int:
        return _ms(self.end)

    @property
    def start_ms(self) -> int:
        """Start of the B2C window (B2B histories reach further back)."""
        return self.end_ms - self.days * DAY


# --- emitting -------------------------------------------------------------------------------


class _Emitter:
    """Time-orders planned calls across actors and adds the noise of real collection."""

    def __init__(self, spec: TrafficSpec, rngs: dict[str, random.Random]):
        self.spec = spec
        self.rngs = rngs
        self.pending: list[tuple[int, int, Call | dict[str, Any]]] = []
        self.seq = count()
        r = spec.invalid_rate
        self.invalid_odds = r / (1 - r)  # per valid line, so that invalid lines are r of all

    def push(self, plan: Plan) -> None:
        end = self.spec.end_ms
        pending, seq = self.pending, self.seq
        for call in plan:
            if call.t < end:
                heapq.heappush(pending, (call.t, next(seq), call))

    def flush(self, before: int) -> Iterator[dict[str, Any]]:
        pending = self.pending
        render_rng = self.rngs["render"]
        dup_rng, double_rng, invalid_rng = (self.rngs["duplicate"], self.rngs["double"],
                                            self.rngs["invalid"])
        spec = self.spec
        while pending and pending[0][0] < before:
            t, _, item = heapq.heappop(pending)
            if isinstance(item, dict):  # a retry or a server copy, already rendered
                yield item
                continue
            if item.device is not None:
                delay = 20 + int(render_rng.expovariate(1 / 150))
            else:
                delay = int(render_rng.uniform(0.1, 4) * SECOND)
            event = render(item, _uuid(render_rng), delay)
            yield event
            if spec.duplicate_rate and dup_rng.random() < spec.duplicate_rate:
                retry = t + int(dup_rng.uniform(1, 60) * SECOND)
                heapq.heappush(pending, (retry, next(self.seq), _copy(event)))
            if (spec.double_send_rate and item.event in CONVERSION_EVENTS
                    and double_rng.random() < spec.double_send_rate):
                later = t + int(double_rng.uniform(0.5, 5) * SECOND)
                heapq.heappush(pending, (later, next(self.seq),
                                         _server_copy(event, later, double_rng)))
            if self.invalid_odds and invalid_rng.random() < self.invalid_odds:
                yield invalid_variant(event, invalid_rng)


_FOREVER = 1 << 62


def generate_events(spec: TrafficSpec) -> Iterator[dict[str, Any]]:
    """Segment wire events (camelCase dicts), ordered by true event time."""
    rngs = _streams(spec.seed)
    emitter = _Emitter(spec, rngs)
    for (start, _, _), plan in _actors(spec, rngs):
        yield from emitter.flush(start)
        emitter.push(plan())
    yield from emitter.flush(_FOREVER)


def write_jsonl(spec: TrafficSpec, path: Path) -> int:
    """Write the events as JSON Lines; returns the number of lines."""
    lines = 0
    dumps = orjson.dumps
    newline = orjson.OPT_APPEND_NEWLINE
    with Path(path).open("wb", buffering=1 << 20) as out:
        for event in generate_events(spec):
            out.write(dumps(event, option=newline))
            lines += 1
    return lines


def generate_spend(spec: TrafficSpec) -> Iterator[dict[str, Any]]:
    """Daily ad spend per campaign, consistent with the generated traffic."""
    from traffic.spend import spend_rows  # spend.py builds on this module

    return spend_rows(spec)


def write_spend_csv(spec: TrafficSpec, path: Path) -> int:
    """Write the spend rows as CSV; returns the number of rows."""
    from traffic.spend import write_spend

    return write_spend(spec, path)
