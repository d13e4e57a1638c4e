"""Stream stage 1, per device (anonymousId, else userId): sessions, retention and routing.

A device keeps its recent touches and conversions so that, when the identity stage
says the device now belongs to another person or account, everything still inside
the windows is re-sent to the new journeys (re-keying happens over Kafka topics).
Pure: state in, state and messages out; the Faust agent only decodes and emits.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from attribution.channels import ChannelRules
from attribution.identity import IdentityUpdate
from attribution.journeys import account_key, person_key
from attribution.normalize import normalize
from attribution.observations import PageHit
from attribution.policy import Config
from attribution.sessions import SessionState, step, visit_touch
from schemas.records import Conversion, IdentityLink, Touch
from schemas.wire import WireEvent

INITIAL = "initial"
IDENTITY_MERGE = "identity_merge"


@dataclass(frozen=True, slots=True)
class RoutedConversion:
    conversion: Conversion
    generation: int  # bumped each time the device re-routes it to another journey


@dataclass
class JourneyDelta:
    """What one journey is told: new or re-sent touches and conversions."""

    touches: list[Touch] = field(default_factory=list)
    conversions: list[RoutedConversion] = field(default_factory=list)
    reason: str = INITIAL


@dataclass
class DeviceState:
    device: str
    person: str
    account: str | None = None
    session: SessionState | None = None
    touches: dict[str, Touch] = field(default_factory=dict)
    conversions: dict[str, RoutedConversion] = field(default_factory=dict)
    last_time: datetime | None = None
    # Latest page time of each retained session, by its visit touch id: with the touch's
    # own time it spans the session, so a page seen again (a client retry) or late inside
    # it continues that session instead of starting a phantom one.
    session_ends: dict[str, datetime] = field(default_factory=dict)


@dataclass
class DeviceOutput:
    links: list[IdentityLink] = field(default_factory=list)
    journeys: dict[str, JourneyDelta] = field(default_factory=lambda: defaultdict(JourneyDelta))
    new_touches: list[Touch] = field(default_factory=list)


def new_device(device: str) -> DeviceState:
    return DeviceState(device=device, person=device)


def retention(config: Config) -> timedelta:
    """How long a device keeps touches: the longest window plus its allowed lateness."""
    return max(p.longest_lookback + p.allowed_lateness for p in config.policies.values())


def _uses(config: Config, journey: str) -> bool:
    return any(p.journey == journey for p in config.policies.values())


def touch_journeys(state: DeviceState, config: Config) -> list[str]:
    keys = []
    if _uses(config, "person") or state.account is None:
        keys.append(person_key(state.person))
    if state.account is not None and _uses(config, "account"):
        keys.append(account_key(state.account))
    return keys


def conversion_journey(state: DeviceState, conversion: Conversion, config: Config) -> str:
    policy = config.policies[conversion.policy]
    account = conversion.account_id or state.account
    if policy.journey == "account" and account:
        return account_key(account)
    return person_key(state.person)


def on_event(state: DeviceState, event: WireEvent, time: datetime, config: Config,
             rules: ChannelRules, out: DeviceOutput, source: str | None = None) -> None:
    """Apply one validated event of this device."""
    state.last_time = time if state.last_time is None else max(state.last_time, time)
    for item in normalize(event, time, config, rules, source):
        if isinstance(item, IdentityLink):
            out.links.append(item)
        elif isinstance(item, PageHit):
            if item.event_id in state.touches:  # a session's first page, delivered again
                _add_touch(state, visit_touch(item, rules), config, out)
                continue
            if _inside_known_session(state, item.time):
                continue  # its session is known and routed already
            state.session, touch = step(state.session, item, config.session.timeout, rules)
            if touch is not None:
                _add_touch(state, touch, config, out)
            current = state.session.touch_id
            end = state.session_ends.get(current)
            state.session_ends[current] = item.time if end is None else max(end, item.time)
        elif isinstance(item, Touch):
            _add_touch(state, item, config, out)
        else:
            _add_conversion(state, item, config, out)


def _inside_known_session(state: DeviceState, time: datetime) -> bool:
    """Whether a page at `time`, earlier than the device's latest page, falls within a
    retained session's span (what sorted, batch sessionisation also makes a continuation)."""
    if state.session is None or time >= state.session.last_time:
        return False
    for touch_id, end in state.session_ends.items():
        visit = state.touches.get(touch_id)
        if visit is not None and visit.time <= time <= end:
            return True
    return False


def lean(touch: Touch) -> Touch:
    """The touch without its free-form properties: crediting never reads them and the full
    touch is landed once, here; what is retained and routed is held (and written to the
    changelogs) on every later write, so it is kept small."""
    return touch.model_copy(update={"properties": {}}) if touch.properties else touch


def _add_touch(state: DeviceState, touch: Touch, config: Config, out: DeviceOutput) -> None:
    """Retain, land and route a touch. One seen before (a redelivery after a crash, a client
    retry) is landed and routed again: a crash can lose what was sent for it while this
    state survived in the changelog. Views and journeys dedupe by event id."""
    out.new_touches.append(touch)
    touch = state.touches.setdefault(touch.event_id, lean(touch))
    for key in touch_journeys(state, config):
        out.journeys[key].touches.append(touch)


def _add_conversion(state: DeviceState, conversion: Conversion, config: Config,
                    out: DeviceOutput) -> None:
    known = state.conversions.get(conversion.conversion_id)
    if known is not None and (known.conversion.time, known.conversion.event_id) <= (
        conversion.time, conversion.event_id
    ):
        # Same conversion again (retry, pixel + server): re-send so the journey can
        # re-emit its credits if they were lost before a crash; it dedupes.
        routed = known
    else:
        routed = RoutedConversion(conversion, known.generation if known else 1)
        state.conversions[conversion.conversion_id] = routed
    out.journeys[conversion_journey(state, routed.conversion, config)].conversions.append(routed)


def on_identity(state: DeviceState, update: IdentityUpdate, config: Config,
                out: DeviceOutput) -> None:
    """The device's person or account changed: re-send what it retains to the new journeys."""
    if (update.person, update.account) == (state.person, state.account):
        return
    old_touch_keys = set(touch_journeys(state, config))
    old_conversion_keys = {
        cid: conversion_journey(state, routed.conversion, config)
        for cid, routed in state.conversions.items()
    }
    state.person, state.account = update.person, update.account
    for key in touch_journeys(state, config):
        if key not in old_touch_keys and state.touches:
            delta = out.journeys[key]
            delta.reason = IDENTITY_MERGE
            delta.touches.extend(sorted(state.touches.values(), key=lambda t: (t.time, t.event_id)))
    for cid, routed in list(state.conversions.items()):
        key = conversion_journey(state, routed.conversion, config)
        if key != old_conversion_keys[cid]:
            moved = RoutedConversion(routed.conversion, routed.generation + 1)
            state.conversions[cid] = moved
            delta = out.journeys[key]
            delta.reason = IDENTITY_MERGE
            delta.conversions.append(moved)


def expire(state: DeviceState, now: datetime, config: Config) -> None:
    """Forget touches and conversions older than the retention (event time)."""
    horizon = now - retention(config)
    state.touches = {k: t for k, t in state.touches.items() if t.time >= horizon}
    state.session_ends = {k: e for k, e in state.session_ends.items() if k in state.touches}
    state.conversions = {
        k: c for k, c in state.conversions.items() if c.conversion.time >= horizon
    }


def is_idle(state: DeviceState, now: datetime, config: Config) -> bool:
    return state.last_time is not None and now - state.last_time > retention(config)
