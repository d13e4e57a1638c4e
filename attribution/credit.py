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

The engine works on the compact records of ``schemas.contracts`` (times in epoch
microseconds); ``credit_conversion`` is the same over ``schemas.records`` models.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from attribution.models import CreditPath, compute_shares
from attribution.policy import Policy
from schemas.contracts import CreditRow, JourneyConversion, JourneyTouch, Reason
from schemas.records import NO_TOUCH_CHANNEL, Conversion, Credit, Touch

DIRECT = "Direct"
_US = timedelta(microseconds=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def micros(delta: timedelta) -> int:
    return delta // _US


def _lookbacks(policy: Policy) -> dict[str, int]:
    """The policy's window per interaction kind in microseconds (computed once a policy)."""
    cached = _LOOKBACKS.get(id(policy))
    if cached is None or cached[0] is not policy:
        cached = (policy, {kind.value: micros(window) for kind, window in policy.lookback.items()})
        _LOOKBACKS[id(policy)] = cached
    return cached[1]


_LOOKBACKS: dict[int, tuple[Policy, dict[str, int]]] = {}


def span_start(conversion: JourneyConversion,
               journey_conversions: Sequence[JourneyConversion]) -> int | None:
    """Time of the previous conversion of the same kind in the journey, if any."""
    key = (conversion.time, conversion.conversion_id)
    previous = [c.time for c in journey_conversions
                if c.kind == conversion.kind and (c.time, c.conversion_id) < key]
    return max(previous) if previous else None


def eligible_touches(conversion: JourneyConversion, touches: Sequence[JourneyTouch],
                     policy: Policy, since: int | None) -> list[JourneyTouch]:
    """Touches in the span and inside the window of their kind, oldest first."""
    windows = _lookbacks(policy)
    at = conversion.time
    after = since if since is not None else -(1 << 62)
    out = [t for t in touches
           if after < t.time <= at and windows[t.kind] > 0 and at - t.time <= windows[t.kind]]
    out.sort(key=_order)
    return out


def _order(touch: JourneyTouch) -> tuple[int, str]:
    return (touch.time, touch.event_id)


def clean_path(path: list[JourneyTouch], policy: Policy) -> list[JourneyTouch]:
    if policy.drop_direct and any(t.channel != DIRECT for t in path):
        path = [t for t in path if t.channel != DIRECT]
    if policy.collapse_repeats:
        collapsed: list[JourneyTouch] = []
        for touch in path:
            if not collapsed or collapsed[-1].channel != touch.channel:
                collapsed.append(touch)
        path = collapsed
    return path


def cap_path(path: list[JourneyTouch], keep: set[str], limit: int) -> list[JourneyTouch]:
    """Bound a path: keep the first touch, the stage touches and the most recent ones."""
    if len(path) <= limit:
        return path
    pinned = {path[0].event_id} | keep
    room = limit - len(pinned & {t.event_id for t in path})
    recent = [t for t in path if t.event_id not in pinned][-room:] if room > 0 else []
    chosen = pinned | {t.event_id for t in recent}
    return [t for t in path if t.event_id in chosen]


def _stage_time(kind: str, conversion: JourneyConversion,
                journey_conversions: Sequence[JourneyConversion], since: int | None) -> int | None:
    if conversion.kind == kind:
        return conversion.time
    times = [c.time for c in journey_conversions
             if c.kind == kind and c.time <= conversion.time and (since is None or c.time > since)]
    return min(times) if times else None


def _last_at_or_before(path: list[JourneyTouch], when: int | None) -> int | None:
    if when is None:
        return None
    index = None
    for i, touch in enumerate(path):
        if touch.time <= when:
            index = i
    return index


def credit_path(conversion: JourneyConversion, touches: Sequence[JourneyTouch],
                journey_conversions: Sequence[JourneyConversion], policy: Policy
                ) -> tuple[list[JourneyTouch], CreditPath]:
    """The cleaned, capped path of a conversion and the model input built from it."""
    since = span_start(conversion, journey_conversions)
    path = clean_path(eligible_touches(conversion, touches, policy, since), policy)
    stages = policy.stages
    stage_times = [_stage_time(kind, conversion, journey_conversions, since)
                   for kind in (stages.lead, stages.opportunity, stages.won)]
    stage_ids = {path[i].event_id for i in
                 (_last_at_or_before(path, t) for t in stage_times) if i is not None}
    path = cap_path(path, stage_ids, policy.max_touches)
    lead, opportunity, won = (_last_at_or_before(path, t) for t in stage_times)
    at = conversion.time
    model_input = CreditPath(
        channels=tuple(t.channel for t in path),
        ages=tuple((at - t.time) / 1e6 for t in path),  # as timedelta.total_seconds()
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


def credit_rows(conversion: JourneyConversion, journey_key: str,
                touches: Sequence[JourneyTouch], journey_conversions: Sequence[JourneyConversion],
                policy: Policy, version: int = 1, reason: str = Reason.INITIAL) -> list[CreditRow]:
    """Credits of one conversion under every model of its policy."""
    path, model_input = credit_path(conversion, touches, journey_conversions, policy)
    half_life = policy.time_decay_half_life.total_seconds()
    c = conversion
    rows: list[CreditRow] = []
    for model in policy.canonical_models():
        if not path:
            rows.append(CreditRow(c.conversion_id, c.kind, journey_key, policy.name, model, None,
                                  None, NO_TOUCH_CHANNEL, None, 1.0, c.value, c.currency, c.time,
                                  version, reason))
            continue
        custom = policy.custom_models.get(model)
        shares = compute_shares("custom" if custom else model, model_input,
                                half_life_seconds=half_life, custom=custom)
        values = _split_value(shares, c.value, model != "participation")
        for touch, share, value in zip(path, shares, values, strict=True):
            if share > 0:
                rows.append(CreditRow(c.conversion_id, c.kind, journey_key, policy.name, model,
                                      touch.event_id, touch.time, touch.channel, touch.campaign,
                                      share, value, c.currency, c.time, version, reason))
    return rows


# --- the same over schemas.records models (tests, re-attribution) -------------------------


def to_micros(when: datetime) -> int:
    return micros(when - _EPOCH)


def from_micros(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


def journey_touch(touch: Touch) -> JourneyTouch:
    return JourneyTouch(to_micros(touch.time), touch.event_id, touch.channel, touch.campaign,
                        touch.kind.value, touch.anonymous_id, touch.person_id, touch.account_id)


def journey_conversion(conversion: Conversion) -> JourneyConversion:
    c = conversion
    return JourneyConversion(c.conversion_id, c.event_id, to_micros(c.time), c.kind, c.event,
                             c.policy, c.value, c.currency, c.anonymous_id, c.person_id,
                             c.account_id, "{}")


def credit_record(row: CreditRow) -> Credit:
    return Credit(
        conversion_id=row.conversion_id, conversion_kind=row.conversion_kind,
        journey_key=row.journey_key, policy=row.policy, model=row.model,
        touch_event_id=row.touch_event_id,
        touch_time=None if row.touch_time is None else from_micros(row.touch_time),
        channel=row.channel, campaign=row.campaign, credit=row.credit,
        credited_value=row.credited_value, currency=row.currency,
        conversion_time=from_micros(row.conversion_time), version=row.version,
        reason=row.reason,
    )


def credit_conversion(conversion: Conversion, journey_key: str, touches: Sequence[Touch],
                      journey_conversions: Sequence[Conversion], policy: Policy,
                      version: int = 1, reason: str = Reason.INITIAL) -> list[Credit]:
    """``credit_rows`` over records: credits of one conversion under every model."""
    rows = credit_rows(journey_conversion(conversion), journey_key,
                       [journey_touch(t) for t in touches],
                       [journey_conversion(c) for c in journey_conversions], policy,
                       version, reason)
    return [credit_record(row) for row in rows]
