"""Credit one conversion under every model of its policy.

Shared by batch replay and the stream, so both give identical credits. Rules:
- Repeat conversions: a touch is credited to at most one conversion of each kind,
  the first one at or after it in the same journey (the span is the time after the
  previous conversion of the same kind, up to this conversion).
- Windows: a touch older than the policy's lookback for its interaction kind gets nothing.
- Path cleaning per policy: drop Direct unless it is the only channel; collapse
  consecutive repeats of a channel (keep the first).
- Stage touches (W-shaped, full path): the last touch at or before the earliest stage
  event of that kind inside the span.
- A conversion without an eligible touch gets one row per model on channel "(none)".
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from attribution.models import CreditPath, compute_shares
from attribution.policy import Policy
from schemas.records import NO_TOUCH_CHANNEL, Conversion, Credit, Touch

DIRECT = "Direct"


def _order(touch: Touch) -> tuple[datetime, str]:
    return (touch.time, touch.event_id)


def span_start(conversion: Conversion,
               journey_conversions: Sequence[Conversion]) -> datetime | None:
    """Time of the previous conversion of the same kind in the journey, if any."""
    key = (conversion.time, conversion.conversion_id)
    previous = [
        c.time for c in journey_conversions
        if c.kind == conversion.kind and (c.time, c.conversion_id) < key
    ]
    return max(previous) if previous else None


def eligible_touches(conversion: Conversion, touches: Sequence[Touch], policy: Policy,
                     since: datetime | None) -> list[Touch]:
    """Touches in the span and inside the window of their kind, oldest first."""
    out = []
    for touch in touches:
        if touch.time > conversion.time or (since is not None and touch.time <= since):
            continue
        if conversion.time - touch.time > policy.lookback[touch.kind]:
            continue
        if policy.lookback[touch.kind].total_seconds() <= 0:
            continue
        out.append(touch)
    out.sort(key=_order)
    return out


def clean_path(path: list[Touch], policy: Policy) -> list[Touch]:
    if policy.drop_direct and any(t.channel != DIRECT for t in path):
        path = [t for t in path if t.channel != DIRECT]
    if policy.collapse_repeats:
        collapsed: list[Touch] = []
        for touch in path:
            if not collapsed or collapsed[-1].channel != touch.channel:
                collapsed.append(touch)
        path = collapsed
    return path


def cap_path(path: list[Touch], keep: set[str], limit: int) -> list[Touch]:
    """Bound a path: keep the first touch, the stage touches and the most recent ones."""
    if len(path) <= limit:
        return path
    pinned = {path[0].event_id} | keep
    room = limit - len(pinned & {t.event_id for t in path})
    recent = [t for t in path if t.event_id not in pinned][-room:] if room > 0 else []
    chosen = pinned | {t.event_id for t in recent}
    return [t for t in path if t.event_id in chosen]


def _stage_time(kind: str, conversion: Conversion, journey_conversions: Sequence[Conversion],
                since: datetime | None) -> datetime | None:
    if conversion.kind == kind:
        return conversion.time
    times = [
        c.time for c in journey_conversions
        if c.kind == kind and c.time <= conversion.time and (since is None or c.time > since)
    ]
    return min(times) if times else None


def _last_at_or_before(path: list[Touch], when: datetime | None) -> int | None:
    if when is None:
        return None
    index = None
    for i, touch in enumerate(path):
        if touch.time <= when:
            index = i
    return index


def credit_path(conversion: Conversion, touches: Sequence[Touch],
                journey_conversions: Sequence[Conversion], policy: Policy
                ) -> tuple[list[Touch], CreditPath]:
    """The cleaned, capped path of a conversion and the model input built from it."""
    since = span_start(conversion, journey_conversions)
    path = clean_path(eligible_touches(conversion, touches, policy, since), policy)
    stages = policy.stages
    stage_times = [
        _stage_time(kind, conversion, journey_conversions, since)
        for kind in (stages.lead, stages.opportunity, stages.won)
    ]
    stage_ids = {path[i].event_id for i in
                 (_last_at_or_before(path, t) for t in stage_times) if i is not None}
    path = cap_path(path, stage_ids, policy.max_touches)
    lead, opportunity, won = (_last_at_or_before(path, t) for t in stage_times)
    model_input = CreditPath(
        channels=tuple(t.channel for t in path),
        ages=tuple((conversion.time - t.time).total_seconds() for t in path),
        lead_index=lead,
        opportunity_index=opportunity,
        won_index=won,
    )
    return path, model_input


def _split_value(shares: list[float], value: float, additive: bool) -> list[float]:
    values = [share * value for share in shares]
    if additive and values:
        largest = max(range(len(values)), key=values.__getitem__)
        values[largest] += value - sum(values)  # put the float remainder on the largest share
    return values


def credit_conversion(conversion: Conversion, journey_key: str, touches: Sequence[Touch],
                      journey_conversions: Sequence[Conversion], policy: Policy,
                      version: int = 1, reason: str = "initial") -> list[Credit]:
    """Credits of one conversion under every model of its policy."""
    path, model_input = credit_path(conversion, touches, journey_conversions, policy)
    half_life = policy.time_decay_half_life.total_seconds()
    credits: list[Credit] = []
    for model in policy.canonical_models():
        custom = policy.custom_models.get(model)
        if not path:
            credits.append(_credit(conversion, journey_key, policy, model, None, 1.0,
                                   conversion.value, version, reason))
            continue
        shares = compute_shares("custom" if custom else model, model_input,
                                half_life_seconds=half_life, custom=custom)
        values = _split_value(shares, conversion.value, model != "participation")
        for touch, share, value in zip(path, shares, values, strict=True):
            if share > 0:
                credits.append(_credit(conversion, journey_key, policy, model, touch, share,
                                       value, version, reason))
    return credits


def _credit(conversion: Conversion, journey_key: str, policy: Policy, model: str,
            touch: Touch | None, share: float, value: float, version: int, reason: str) -> Credit:
    return Credit(
        conversion_id=conversion.conversion_id,
        conversion_kind=conversion.kind,
        journey_key=journey_key,
        policy=policy.name,
        model=model,
        touch_event_id=touch.event_id if touch else None,
        touch_time=touch.time if touch else None,
        channel=touch.channel if touch else NO_TOUCH_CHANNEL,
        campaign=touch.campaign if touch else None,
        credit=share,
        credited_value=value,
        currency=conversion.currency,
        conversion_time=conversion.time,
        version=version,
        reason=reason,
    )
