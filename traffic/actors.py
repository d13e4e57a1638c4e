"""Actors in order of their first event, and their planned calls.

Splits the B2C visitors over the days of the window, draws the few special actors
(considered buyers, B2B accounts, self-serve buyers) up front, gives each concern its
own seeded random stream, and merges everything into one stream of actors ordered by
start time; ``planned_calls`` flattens their plans (unsorted, unrendered) for spend.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from itertools import accumulate
from typing import TYPE_CHECKING

from traffic.b2b import SaasPlanner
from traffic.b2c import ShopPlanner
from traffic.calls import Call, Plan, _Counters
from traffic.clock import _WEEKDAY_FACTOR, DAY, _time_in_day

if TYPE_CHECKING:
    from traffic.generate import TrafficSpec

# --- actors in order of their first event --------------------------------------------------

# One considered shopper (car-like purchase, weeks of research) per this many visitors.
VISITORS_PER_CONSIDERED_BUYER = 700

Actor = tuple[tuple[int, int, int], Callable[[], Plan]]  # ((start, stream, index), plan)


def _spread(total: int, days: int, rng: random.Random, start_ms: int) -> list[int]:
    """How many B2C arrivals each day gets: weekday pattern, slight growth, exact total."""
    weights = []
    for d in range(days):
        weekday = datetime.fromtimestamp((start_ms + d * DAY) / 1000, UTC).weekday()
        weights.append(_WEEKDAY_FACTOR[weekday] * (1 + 0.2 * d / days) * rng.uniform(0.9, 1.1))
    cum = list(accumulate(weights))
    bounds = [round(total * c / cum[-1]) for c in cum]
    return [b - a for a, b in zip([0, *bounds[:-1]], bounds, strict=True)]


def _b2c_actors(spec: TrafficSpec, planner: ShopPlanner, rng: random.Random) -> Iterator[Actor]:
    ordinary = spec.b2c_visitors - _considered_count(spec)
    for d, n in enumerate(_spread(ordinary, spec.days, rng, spec.start_ms)):
        day_start = spec.start_ms + d * DAY
        for i, start in enumerate(sorted(_time_in_day(rng, day_start) for _ in range(n))):
            yield (start, 0, d * 10_000_000 + i), _bind(planner.visitor, start)


def _considered_count(spec: TrafficSpec) -> int:
    return min(spec.b2c_visitors, spec.b2c_visitors // VISITORS_PER_CONSIDERED_BUYER
               + (1 if spec.b2c_visitors >= 200 else 0))


def _bind(plan: Callable[..., Plan], *args: int) -> Callable[[], Plan]:
    return lambda: plan(*args)


def _special_actors(spec: TrafficSpec, shop: ShopPlanner, saas: SaasPlanner,
                    rng: random.Random) -> list[Actor]:
    """Considered buyers, B2B accounts and self-serve buyers: few, so drawn up front."""
    actors: list[Actor] = []
    window = spec.days * DAY
    for i in range(_considered_count(spec)):
        purchase = spec.start_ms + int(rng.random() * window)
        start = purchase - int(rng.uniform(21, 56) * DAY)
        actors.append(((start, 1, i), _bind(shop.considered, start, purchase)))
    history = spec.b2b_history_days * DAY
    for i in range(spec.b2b_accounts):
        start = spec.end_ms - history + int(rng.random() * (history - 45 * DAY))
        actors.append(((start, 2, i), _bind(saas.account, i + 1, start)))
    for i in range(max(1, spec.b2b_accounts // 2) if spec.b2b_accounts else 0):
        start = _time_in_day(rng, spec.start_ms + int(rng.random() * spec.days) * DAY)
        actors.append(((start, 3, i), _bind(saas.self_serve, spec.b2b_accounts + i + 1, start)))
    actors.sort(key=lambda actor: actor[0])
    return actors


def _streams(seed: int) -> dict[str, random.Random]:
    # one generator per concern, so e.g. invalid lines do not shift the valid ones
    names = ("arrivals", "shop", "special", "saas", "render", "duplicate", "double", "invalid")
    return {name: random.Random(f"{seed}:{name}") for name in names}


def _actors(spec: TrafficSpec, rngs: dict[str, random.Random]) -> Iterator[Actor]:
    ids = _Counters()
    shop = ShopPlanner(rngs["shop"], ids, touch_heavy=spec.touch_heavy)
    special_shop = ShopPlanner(rngs["special"], ids, touch_heavy=spec.touch_heavy)
    saas = SaasPlanner(rngs["saas"], ids, spec.end_ms)
    special = _special_actors(spec, special_shop, saas, rngs["special"])
    return heapq.merge(_b2c_actors(spec, shop, rngs["arrivals"]), special,
                       key=lambda actor: actor[0])


def planned_calls(spec: TrafficSpec) -> Iterator[Call]:
    """Every planned call up to ``end``, actor by actor (not time-sorted, not rendered)."""
    end = spec.end_ms
    for _, plan in _actors(spec, _streams(spec.seed)):
        for call in plan():
            if call.t < end:
                yield call
