"""Stream stage 2, per journey (person for B2C, account for B2B): credit as data arrives.

Each conversion is credited when it arrives. A touch that arrives later but precedes
an open conversion (within the policy's allowed lateness, in event time) re-credits
it. History revealed by an identity merge re-credits every conversion the journey
still holds (until eviction), since it corrects who the buyer was rather than being
late data. Re-credits carry a higher version:
    version = (generation - 1) * 1000 + revision
where the generation grows when the device re-routes the conversion to another
journey and the revision when this journey re-credits it. Redelivered input re-emits
the current credits unchanged (same version), so at-least-once delivery never
loses credits and idempotent landing never duplicates them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from hashlib import blake2b

from attribution.credit import cap_path, credit_conversion
from attribution.device import IDENTITY_MERGE, INITIAL, JourneyDelta, RoutedConversion
from attribution.policy import Config
from schemas.records import Conversion, Credit, Touch

LATE_TOUCH = "late_touch"
MAX_REVISION = 999


@dataclass
class CreditedConversion:
    conversion: Conversion
    generation: int
    revision: int = 0
    fingerprint: int | None = None  # hash of the last emitted credits' content

    @property
    def version(self) -> int:
        return (self.generation - 1) * 1000 + self.revision


@dataclass
class JourneyState:
    key: str
    touches: dict[str, Touch] = field(default_factory=dict)
    conversions: dict[str, CreditedConversion] = field(default_factory=dict)
    watermark: datetime | None = None  # latest event time seen by this journey


@dataclass
class JourneyOutput:
    credits: list[Credit] = field(default_factory=list)
    conversions: list[tuple[Conversion, str]] = field(default_factory=list)  # (row, journey key)


def _fingerprint(credits: list[Credit]) -> int:
    # Stable across processes (unlike hash()): it is stored in the changelog.
    content = repr([(c.model, c.touch_event_id, round(c.credit, 12)) for c in credits])
    return int.from_bytes(blake2b(content.encode(), digest_size=8).digest(), "big") >> 1


def _is_open(conversion: Conversion, watermark: datetime | None, config: Config) -> bool:
    if watermark is None:
        return True
    return watermark - conversion.time <= config.policies[conversion.policy].allowed_lateness


def _advance(state: JourneyState, times: list[datetime]) -> None:
    if times:
        latest = max(times)
        state.watermark = latest if state.watermark is None else max(state.watermark, latest)


def on_delta(state: JourneyState, delta: JourneyDelta, config: Config, out: JourneyOutput) -> None:
    """Apply touches and conversions for this journey; emit (re-)credits."""
    # reason per conversion id; "replay" means: re-emit the current credits as they are
    dirty: dict[str, str] = {}
    new_touches = [t for t in delta.touches if t.event_id not in state.touches]
    for touch in new_touches:
        state.touches[touch.event_id] = touch
    for routed in delta.conversions:
        _accept_conversion(state, routed, delta.reason, dirty, out)
    touch_reason = delta.reason if delta.reason != INITIAL else LATE_TOUCH
    for cid, credited in state.conversions.items():
        if cid in dirty and dirty[cid] != "replay":
            continue
        conversion = credited.conversion
        # Late data re-credits only within the allowed lateness; history that an identity
        # merge reveals re-credits every conversion still held (it is knowledge, not lateness).
        if touch_reason != IDENTITY_MERGE and not _is_open(conversion, state.watermark, config):
            continue
        if any(t.time <= conversion.time for t in new_touches):
            dirty[cid] = touch_reason
    _advance(state, [t.time for t in new_touches]
             + [r.conversion.time for r in delta.conversions])
    _cap(state, config)
    _credit(state, dirty, config, out)


def _accept_conversion(state: JourneyState, routed: RoutedConversion, reason: str,
                       dirty: dict[str, str], out: JourneyOutput) -> None:
    conversion = routed.conversion
    cid = conversion.conversion_id
    known = state.conversions.get(cid)
    if known is not None and routed.generation < known.generation:
        return  # a stale routing
    if known is not None and routed.generation == known.generation and (
        known.conversion.time, known.conversion.event_id) <= (conversion.time, conversion.event_id):
        dirty.setdefault(cid, "replay")
        return
    state.conversions[cid] = CreditedConversion(conversion, routed.generation)
    dirty[cid] = reason
    out.conversions.append((conversion, state.key))
    # A conversion splits the span of the next one of its kind: re-credit that one too.
    for other_id, other in state.conversions.items():
        if other_id != cid and other.conversion.kind == conversion.kind and (
            other.conversion.time, other_id) > (conversion.time, cid):
            dirty.setdefault(other_id, LATE_TOUCH)


def _credit(state: JourneyState, dirty: dict[str, str], config: Config,
            out: JourneyOutput) -> None:
    if not dirty:
        return
    touches = list(state.touches.values())
    conversions = [c.conversion for c in state.conversions.values()]
    for cid in sorted(dirty):
        credited = state.conversions[cid]
        policy = config.policies[credited.conversion.policy]
        credits = credit_conversion(credited.conversion, state.key, touches, conversions, policy)
        fingerprint = _fingerprint(credits)
        if fingerprint != credited.fingerprint and credited.revision < MAX_REVISION:
            credited.revision += 1
            credited.fingerprint = fingerprint
            reason = INITIAL if credited.version == 1 else dirty[cid]
        elif credited.fingerprint is None:
            continue  # revision budget spent before it was ever emitted: nothing to re-emit
        else:
            reason = None  # unchanged: re-emit the same version (idempotent downstream)
        version = credited.version
        for credit in credits:
            out.credits.append(credit.model_copy(update={
                "version": version,
                "reason": reason if reason is not None else _previous_reason(credited, dirty[cid]),
            }))


def _previous_reason(credited: CreditedConversion, fallback: str) -> str:
    return INITIAL if credited.version == 1 else fallback


def _cap(state: JourneyState, config: Config) -> None:
    """Bound the journey: drop touches no policy can still credit, then cap the count."""
    if state.watermark is None or not state.touches:
        return
    horizon = max(p.longest_lookback + p.allowed_lateness for p in config.policies.values())
    keep = {k: t for k, t in state.touches.items() if state.watermark - t.time <= horizon}
    limit = max(p.max_touches for p in config.policies.values())
    if len(keep) > limit:
        ordered = sorted(keep.values(), key=lambda t: (t.time, t.event_id))
        stage_ids = _stage_touch_ids(ordered, state)
        keep = {t.event_id: t for t in cap_path(ordered, stage_ids, limit)}
    state.touches = keep


def _stage_touch_ids(ordered: list[Touch], state: JourneyState) -> set[str]:
    """The last touch at or before each conversion: a stage touch for W / full path."""
    ids: set[str] = set()
    for credited in state.conversions.values():
        before = [t for t in ordered if t.time <= credited.conversion.time]
        if before:
            ids.add(before[-1].event_id)
    return ids


def is_idle(state: JourneyState, now: datetime, config: Config) -> bool:
    """Idle longer than every window plus lateness: safe to evict (tombstone)."""
    if state.watermark is None:
        return True
    horizon = max(p.longest_lookback + p.allowed_lateness for p in config.policies.values())
    return now - state.watermark > horizon
