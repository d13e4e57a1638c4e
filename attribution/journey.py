"""Stream stage 2, per journey (person for B2C, account for B2B): credit as data arrives.

Each conversion is credited when it arrives. A touch that arrives later but precedes
an open conversion (within the policy's allowed lateness, in event time) re-credits
it, and so does a touch withdrawn because late pages re-cut the device's sessions.
History revealed by an identity merge re-credits every conversion the journey still
holds (until eviction), since it corrects who the buyer was rather than being late data.
Re-credits carry a higher version:
    version = (generation - 1) * 1000 + revision
where the generation grows when the device re-routes the conversion to another
journey and the revision when this journey re-credits it. Redelivered input re-emits
the current credits unchanged (same version), so at-least-once delivery never
loses credits and idempotent landing never duplicates them.

State is compact (``schemas.contracts`` tuples, times in epoch microseconds).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from hashlib import blake2b

from attribution.credit import cap_path, credit_rows, micros
from attribution.policy import Config
from schemas.contracts import (
    CreditRow,
    JourneyConversion,
    JourneyDelta,
    JourneyTouch,
    Reason,
    RoutedConversion,
)

MAX_REVISION = 999
_REPLAY = "replay"  # a conversion seen again: re-emit its current credits as they are


@dataclass(slots=True)
class CreditedConversion:
    conversion: JourneyConversion
    generation: int
    revision: int = 0
    fingerprint: int | None = None  # hash of the last emitted credits' content

    @property
    def version(self) -> int:
        return (self.generation - 1) * 1000 + self.revision


@dataclass(slots=True)
class JourneyState:
    key: str
    touches: dict[str, JourneyTouch] = field(default_factory=dict)
    conversions: dict[str, CreditedConversion] = field(default_factory=dict)
    watermark: int | None = None  # latest event time seen by this journey (epoch us)


@dataclass(slots=True)
class JourneyOutput:
    credits: list[CreditRow] = field(default_factory=list)
    conversions: list[tuple[JourneyConversion, str]] = field(default_factory=list)  # (row, key)


@dataclass(frozen=True, slots=True)
class Horizons:
    """The config's time limits in microseconds, computed once per config."""

    keep: int  # a touch older than this (behind the watermark) can no longer be credited
    max_touches: int
    lateness: dict[str, int]  # per policy

    @staticmethod
    def of(config: Config) -> Horizons:
        cached = _HORIZONS.get(id(config))
        if cached is None or cached[0] is not config:
            policies = config.policies.values()
            horizons = Horizons(
                keep=max(micros(p.longest_lookback + p.allowed_lateness) for p in policies),
                max_touches=max(p.max_touches for p in policies),
                lateness={name: micros(p.allowed_lateness)
                          for name, p in config.policies.items()},
            )
            cached = (config, horizons)
            _HORIZONS[id(config)] = cached
        return cached[1]


_HORIZONS: dict[int, tuple[Config, Horizons]] = {}


def _fingerprint(credits: list[CreditRow]) -> int:
    # Stable across processes (unlike hash()): it is stored in the changelog.
    content = repr([(c.model, c.touch_event_id, round(c.credit, 12)) for c in credits])
    return int.from_bytes(blake2b(content.encode(), digest_size=8).digest(), "big") >> 1


def _is_open(conversion: JourneyConversion, watermark: int | None, horizons: Horizons) -> bool:
    if watermark is None:
        return True
    return watermark - conversion.time <= horizons.lateness[conversion.policy]


def on_delta(state: JourneyState, delta: JourneyDelta, config: Config, out: JourneyOutput) -> None:
    """Apply touches and conversions for this journey; emit (re-)credits."""
    horizons = Horizons.of(config)
    dirty: dict[str, str] = {}  # conversion id -> reason, or _REPLAY
    withdrawn = [state.touches.pop(i) for i in delta.retracted if i in state.touches]
    new_touches = [t for t in delta.touches if t.event_id not in state.touches]
    for touch in new_touches:
        state.touches[touch.event_id] = touch
    for routed in delta.conversions:
        _accept_conversion(state, routed, delta.reason, dirty, out)
    touch_reason = delta.reason if delta.reason != Reason.INITIAL else Reason.LATE_TOUCH
    changed = new_touches + withdrawn
    if changed:
        earliest = min(t.time for t in changed)
        for cid, credited in state.conversions.items():
            if cid in dirty and dirty[cid] != _REPLAY:
                continue
            conversion = credited.conversion
            # Late data re-credits only within the allowed lateness; history that an identity
            # merge reveals re-credits every conversion still held (knowledge, not lateness).
            if touch_reason != Reason.IDENTITY_MERGE and not _is_open(
                    conversion, state.watermark, horizons):
                continue
            if earliest <= conversion.time:
                dirty[cid] = touch_reason
    times = [t.time for t in new_touches] + [r.conversion.time for r in delta.conversions]
    if times:
        latest = max(times)
        state.watermark = latest if state.watermark is None else max(state.watermark, latest)
    _cap(state, horizons)
    _credit(state, dirty, config, out)


def _accept_conversion(state: JourneyState, routed: RoutedConversion, reason: str,
                       dirty: dict[str, str], out: JourneyOutput) -> None:
    conversion = routed.conversion
    cid = conversion.conversion_id
    known = state.conversions.get(cid)
    if known is not None and routed.generation < known.generation:
        return  # a stale routing
    if known is not None and routed.generation == known.generation and (
            known.conversion.time, known.conversion.event_id) <= (conversion.time,
                                                                 conversion.event_id):
        dirty.setdefault(cid, _REPLAY)
        return
    state.conversions[cid] = CreditedConversion(conversion, routed.generation)
    dirty[cid] = reason
    out.conversions.append((conversion, state.key))
    # A conversion splits the span of the next one of its kind: re-credit that one too.
    for other_id, other in state.conversions.items():
        if other_id != cid and other.conversion.kind == conversion.kind and (
                other.conversion.time, other_id) > (conversion.time, cid):
            dirty.setdefault(other_id, Reason.LATE_TOUCH)


def _credit(state: JourneyState, dirty: dict[str, str], config: Config,
            out: JourneyOutput) -> None:
    if not dirty:
        return
    touches = list(state.touches.values())
    conversions = [c.conversion for c in state.conversions.values()]
    for cid in sorted(dirty):
        credited = state.conversions[cid]
        policy = config.policies[credited.conversion.policy]
        credits = credit_rows(credited.conversion, state.key, touches, conversions, policy)
        fingerprint = _fingerprint(credits)
        if fingerprint != credited.fingerprint and credited.revision < MAX_REVISION:
            credited.revision += 1
            credited.fingerprint = fingerprint
            reason = Reason.INITIAL if credited.version == 1 else dirty[cid]
        elif credited.fingerprint is None:
            continue  # revision budget spent before it was ever emitted: nothing to re-emit
        else:  # unchanged: re-emit the same version (idempotent downstream)
            reason = Reason.INITIAL if credited.version == 1 else dirty[cid]
        version = credited.version
        out.credits.extend(c._replace(version=version, reason=reason) for c in credits)


def _cap(state: JourneyState, horizons: Horizons) -> None:
    """Bound the journey: drop touches no policy can still credit, then cap the count."""
    if state.watermark is None or not state.touches:
        return
    oldest = state.watermark - horizons.keep
    if any(t.time < oldest for t in state.touches.values()):
        state.touches = {k: t for k, t in state.touches.items() if t.time >= oldest}
    if len(state.touches) > horizons.max_touches:
        ordered = sorted(state.touches.values(), key=lambda t: (t.time, t.event_id))
        stage_ids = _stage_touch_ids(ordered, state)
        state.touches = {t.event_id: t for t in
                         cap_path(ordered, stage_ids, horizons.max_touches)}


def _stage_touch_ids(ordered: list[JourneyTouch], state: JourneyState) -> set[str]:
    """The last touch at or before each conversion: a stage touch for W / full path."""
    ids: set[str] = set()
    for credited in state.conversions.values():
        before = [t for t in ordered if t.time <= credited.conversion.time]
        if before:
            ids.add(before[-1].event_id)
    return ids


def is_idle(state: JourneyState, now: int, config: Config) -> bool:
    """Idle longer than every window plus lateness (event time): safe to evict."""
    return state.watermark is None or now - state.watermark > Horizons.of(config).keep
