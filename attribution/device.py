"""Stream stage 1, per device (anonymousId, else userId): sessions, retention and routing.

A device keeps its recent page views, so a page that arrives late or out of order
re-cuts the sessions exactly as sorted batch sessionisation would (a visit touch may
appear, or be withdrawn); older pages are folded into the state of the session in
progress and the span of each retained session. It keeps its touches and conversions
for the longest window plus lateness, so when the identity stage says the device now
belongs to another person or account, everything still inside the windows is re-sent
to the new journeys (re-keying happens over Kafka topics).

Pure: state in, state and messages out; the Faust agent only decodes and emits. Times
are epoch microseconds.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import polars as pl

from attribution.credit import micros
from attribution.journeys import account_key, person_key
from attribution.normalize import PAGE_SCHEMA, Observed, visit_properties
from attribution.policy import Config
from attribution.sessions import mark_session_starts
from schemas.contracts import (
    IdentityUpdate,
    JourneyConversion,
    JourneyDelta,
    JourneyTouch,
    Link,
    Reason,
    RoutedConversion,
    TouchRow,
)
from schemas.records import InteractionKind

VISIT = InteractionKind.VISIT.value


class Page(NamedTuple):
    """A recent page view of the device, as sessionisation and its visit touch need it."""

    time: int
    event_id: str
    sig: str | None  # campaign signature key of a marketing arrival (sessions.signature_key)
    start: bool  # starts a session (so it is a visit touch)
    anonymous_id: str | None
    person_id: str | None
    account_id: str | None
    channel: str
    source: str | None
    medium: str | None
    campaign: str | None
    url: str | None
    referrer: str | None

    def touch(self) -> TouchRow:
        return TouchRow(self.event_id, self.time, self.anonymous_id, self.person_id,
                        self.account_id, self.channel, self.source, self.medium, self.campaign,
                        VISIT, visit_properties(self.url, self.referrer))


class Fold(NamedTuple):
    """The session in progress after the folded (older) pages: what the next page continues."""

    last_time: int
    event_id: str  # the last folded page: pages sorting at or before it are "very late"
    sig: str | None
    touch_id: str  # the visit touch that started that session


@dataclass(slots=True)
class DeviceState:
    device: str
    person: str
    account: str | None = None
    last_time: int | None = None
    pages: list[Page] = field(default_factory=list)  # recent, sorted by (time, event_id)
    fold: Fold | None = None
    spans: dict[str, int] = field(default_factory=dict)  # folded session's touch -> last page
    touches: dict[str, JourneyTouch] = field(default_factory=dict)
    conversions: dict[str, RoutedConversion] = field(default_factory=dict)
    # Visit touches withdrawn by a re-cut, and how often each changed status since: odd =
    # withdrawn now. A later re-cut may make one a session start again (even).
    flips: dict[str, int] = field(default_factory=dict)


class Withdrawal(NamedTuple):
    """A visit touch's status after a re-cut (warehouse ``touch_withdrawals`` row)."""

    event_id: str
    time: int  # the touch's time (epoch us)
    revision: int  # grows with each change: the latest row per touch holds
    withdrawn: bool


@dataclass(slots=True)
class DeviceOutput:
    links: list[Link] = field(default_factory=list)
    journeys: dict[str, JourneyDelta] = field(default_factory=lambda: defaultdict(JourneyDelta))
    touches: list[TouchRow] = field(default_factory=list)  # to land (new or re-sent)
    withdrawals: list[Withdrawal] = field(default_factory=list)  # to land


@dataclass(frozen=True, slots=True)
class Limits:
    """The config's device limits in microseconds."""

    timeout: int  # session inactivity timeout
    window: int  # pages this close to the device's latest one are kept for re-sessionising
    retention: int  # touches and conversions are kept this long (longest window + lateness)

    @staticmethod
    def of(config: Config) -> Limits:
        return Limits(
            timeout=micros(config.session.timeout),
            window=max(micros(config.session.reorder_window), micros(config.session.timeout)),
            retention=max(micros(p.longest_lookback + p.allowed_lateness)
                          for p in config.policies.values()),
        )


def new_device(device: str) -> DeviceState:
    return DeviceState(device=device, person=device)


def _uses(config: Config, journey: str) -> bool:
    return any(p.journey == journey for p in config.policies.values())


def touch_journeys(state: DeviceState, config: Config) -> list[str]:
    keys = []
    if _uses(config, "person") or state.account is None:
        keys.append(person_key(state.person))
    if state.account is not None and _uses(config, "account"):
        keys.append(account_key(state.account))
    return keys


def conversion_journey(state: DeviceState, conversion: JourneyConversion, config: Config) -> str:
    policy = config.policies[conversion.policy]
    account = conversion.account_id or state.account
    if policy.journey == "account" and account:
        return account_key(account)
    return person_key(state.person)


def on_events(state_of: Callable[[str], DeviceState], observed: Observed, config: Config,
              out: DeviceOutput, watermark: int | None = None) -> list[DeviceState]:
    """Apply one batch's observations to their devices; returns the devices touched.
    ``watermark`` is the stage's event-time clock (the latest time it has seen)."""
    limits = Limits.of(config)
    states = {device: state_of(device) for device in observed.last_times}
    out.links.extend(observed.links)
    for device, conversion in observed.conversions:
        _add_conversion(states[device], conversion, config, out)
    for device, touch in observed.touches:
        _add_touch(states[device], touch, config, out)
    for state in states.values():
        latest = observed.last_times[state.device]
        state.last_time = latest if state.last_time is None else max(state.last_time, latest)
    if observed.pages.height:
        _sessionise(states, observed.pages, limits, config, out)
    clock = max([watermark or 0, *observed.last_times.values()])
    for state in states.values():
        fold(state, limits, clock)
        expire(state, limits)
    return list(states.values())


# --- sessions -------------------------------------------------------------------------------

_FRAME_SCHEMA = {**PAGE_SCHEMA, "was_start": pl.Boolean, "new": pl.Boolean}


def _sessionise(states: dict[str, DeviceState], pages: pl.DataFrame, limits: Limits,
                config: Config, out: DeviceOutput) -> None:
    """Re-cut the sessions of every device with new pages: its retained pages, the new ones,
    and the fold before them, sorted; then land and route what changed."""
    pages = pages.unique(subset=["device", "event_id"], keep="first", maintain_order=True)
    by_device: dict[str, list[tuple[Any, ...]]] = {}
    for row in pages.iter_rows():
        by_device.setdefault(row[0], []).append(row)
    rows: list[tuple[Any, ...]] = []
    late: list[tuple[DeviceState, Page]] = []
    for device, new in by_device.items():
        state = states[device]
        point = state.fold
        if point is not None:
            rows.append((device, point.last_time, "", point.sig, None, None, None, "", None,
                         None, None, None, None, False, False))
        arrived = {row[2] for row in new}
        known = {p.event_id for p in state.pages}
        rows.extend((device, *p[:3], *p[4:], p.start, p.event_id in arrived)
                    for p in state.pages)
        for row in new:
            if row[2] in known:
                continue  # delivered again: its retained copy stands (flagged above)
            if point is not None and (row[1], row[2]) <= (point.last_time, point.event_id):
                late.append((state, Page(row[1], row[2], row[3], False, *row[4:])))
                continue
            rows.append((*row, False, True))
    if rows:
        frame = pl.DataFrame(rows, schema=_FRAME_SCHEMA, orient="row")
        marked = mark_session_starts(frame, limits.timeout)
        current: str | None = None
        group: list[tuple[Any, ...]] = []
        for row in marked.iter_rows():
            if row[0] != current:
                if group:
                    _recut(states[group[0][0]], group, config, out)
                current, group = row[0], []
            if row[2]:  # not the fold's stand-in row
                group.append(row)
        if group:
            _recut(states[group[0][0]], group, config, out)
    for state, page in late:
        _very_late(state, page, config, out)


def _recut(state: DeviceState, group: list[tuple[Any, ...]], config: Config,
           out: DeviceOutput) -> None:
    pages: list[Page] = []
    for row in group:
        (_, time, event_id, sig, anonymous_id, person_id, account_id, channel, source, medium,
         campaign, url, referrer, was_start, new, start) = row
        page = Page(time, event_id, sig, start, anonymous_id, person_id, account_id, channel,
                    source, medium, campaign, url, referrer)
        pages.append(page)
        if start and (new or not was_start):
            if not was_start and state.flips.get(event_id, 0) % 2:  # withdrawn before: back
                state.flips[event_id] += 1
                out.withdrawals.append(Withdrawal(event_id, time, state.flips[event_id], False))
            _add_touch(state, page.touch(), config, out)  # a new session, or one re-sent
        elif was_start and not start:
            _retract(state, event_id, config, out)
    state.pages = pages


def _very_late(state: DeviceState, page: Page, config: Config, out: DeviceOutput) -> None:
    """A page older than the retained ones: inside a known session it continues it (as a
    retried page does); otherwise it is a session of its own."""
    if page.event_id in state.touches and state.touches[page.event_id].kind == VISIT:
        _add_touch(state, page.touch(), config, out)  # a session's first page, again
        return
    for touch_id, visit in state.touches.items():
        if visit.kind == VISIT and visit.time <= page.time <= state.spans.get(touch_id,
                                                                             visit.time):
            return
    _add_touch(state, page.touch(), config, out)
    state.spans[page.event_id] = page.time


def fold(state: DeviceState, limits: Limits, clock: int) -> bool:
    """Fold pages older than the reorder window (behind the stage's clock, so an idle
    device's pages fold too) into the fold point and their sessions' spans. A page that
    arrives later than that can no longer re-cut sessions exactly. Returns whether any
    page was folded."""
    if not state.pages:
        return False
    horizon = clock - limits.window
    if state.pages[0].time >= horizon:
        return False
    point = state.fold
    keep_from = 0
    for i, page in enumerate(state.pages):
        if page.time >= horizon:
            break
        if page.start or point is None:
            point = Fold(page.time, page.event_id, page.sig, page.event_id)
        else:
            point = point._replace(last_time=page.time, event_id=page.event_id)
        visit = state.touches.get(point.touch_id)
        if visit is not None and page.time > visit.time:  # one-page sessions need no span
            state.spans[point.touch_id] = max(state.spans.get(point.touch_id, page.time),
                                              page.time)
        keep_from = i + 1
    state.fold = point
    state.pages = state.pages[keep_from:]
    return True


# --- touches, conversions, routing ------------------------------------------------------------


def _add_touch(state: DeviceState, touch: TouchRow, config: Config, out: DeviceOutput) -> None:
    """Retain, land and route a touch. One seen before (a redelivery after a crash, a client
    retry) is landed and routed again: a crash can lose what was sent for it while this
    state survived in the changelog. Views and journeys dedupe by event id."""
    out.touches.append(touch)
    retained = state.touches.setdefault(touch.event_id, touch.for_journey())
    for key in touch_journeys(state, config):
        out.journeys[key].touches.append(retained)


def _retract(state: DeviceState, event_id: str, config: Config, out: DeviceOutput) -> None:
    """A page that no longer starts a session: its visit touch is withdrawn everywhere."""
    touch = state.touches.pop(event_id, None)
    if touch is None:
        return
    state.spans.pop(event_id, None)
    state.flips[event_id] = state.flips.get(event_id, 0) + 1
    out.withdrawals.append(Withdrawal(event_id, touch.time, state.flips[event_id], True))
    for key in touch_journeys(state, config):
        out.journeys[key].retracted.append(event_id)


def _add_conversion(state: DeviceState, conversion: JourneyConversion, config: Config,
                    out: DeviceOutput) -> None:
    known = state.conversions.get(conversion.conversion_id)
    if known is not None and (known.conversion.time, known.conversion.event_id) <= (
            conversion.time, conversion.event_id):
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
    old_conversion_keys = {cid: conversion_journey(state, routed.conversion, config)
                           for cid, routed in state.conversions.items()}
    state.person, state.account = update.person, update.account
    for key in touch_journeys(state, config):
        if key not in old_touch_keys and state.touches:
            delta = out.journeys[key]
            delta.reason = Reason.IDENTITY_MERGE
            delta.touches.extend(sorted(state.touches.values(), key=lambda t: (t.time,
                                                                               t.event_id)))
    for cid, routed in list(state.conversions.items()):
        key = conversion_journey(state, routed.conversion, config)
        if key != old_conversion_keys[cid]:
            moved = RoutedConversion(routed.conversion, routed.generation + 1)
            state.conversions[cid] = moved
            delta = out.journeys[key]
            delta.reason = Reason.IDENTITY_MERGE
            delta.conversions.append(moved)


def expire(state: DeviceState, limits: Limits) -> None:
    """Forget touches and conversions older than the retention (event time)."""
    if state.last_time is None:
        return
    horizon = state.last_time - limits.retention
    if any(t.time < horizon for t in state.touches.values()):
        state.touches = {k: t for k, t in state.touches.items() if t.time >= horizon}
        state.spans = {k: e for k, e in state.spans.items() if k in state.touches}
    if state.flips:
        # a withdrawn page is still retained while it may come back; then it is forgotten
        pages = {p.event_id for p in state.pages}
        state.flips = {k: n for k, n in state.flips.items() if k in pages or k in state.touches}
    if any(c.conversion.time < horizon for c in state.conversions.values()):
        state.conversions = {k: c for k, c in state.conversions.items()
                             if c.conversion.time >= horizon}


def is_idle(state: DeviceState, now: int, config: Config) -> bool:
    return state.last_time is not None and now - state.last_time > Limits.of(config).retention


def touched_ids(states: Iterable[DeviceState]) -> list[str]:
    return [s.device for s in states]
