"""Sessionisation: one visit touch per session, not one per page view.

A session ends after ``timeout`` of inactivity or when a page arrives with another
campaign (source, medium, campaign). ``step`` is a fold over one device's page hits,
so the batch path (sorted list) and the stream (per-device state) share it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from attribution.channels import ChannelRules, campaign_signature, classify
from attribution.observations import PageHit
from schemas.records import InteractionKind, Touch

Signature = tuple[str, str, str | None]


@dataclass(frozen=True, slots=True)
class SessionState:
    last_time: datetime
    signature: Signature | None
    touch_id: str


def step(state: SessionState | None, hit: PageHit, timeout: timedelta,
         rules: ChannelRules) -> tuple[SessionState, Touch | None]:
    """Advance one device's session with a page hit; return a touch when a session starts."""
    signature = campaign_signature(hit.signals)
    if state is not None:
        idle = abs(hit.time - state.last_time)
        new_campaign = signature is not None and signature != state.signature
        if idle <= timeout and not new_campaign:
            last = max(state.last_time, hit.time)
            return SessionState(last, state.signature, state.touch_id), None
    return SessionState(hit.time, signature, hit.event_id), visit_touch(hit, rules)


def visit_touch(hit: PageHit, rules: ChannelRules) -> Touch:
    classified = classify(hit.signals, rules)
    return Touch(
        event_id=hit.event_id, time=hit.time, anonymous_id=hit.anonymous_id,
        person_id=hit.person_id, account_id=hit.account_id, channel=classified.channel,
        source=classified.source, medium=classified.medium, campaign=classified.campaign,
        kind=InteractionKind.VISIT, properties=_page_properties(hit),
    )


def _page_properties(hit: PageHit) -> dict[str, str]:
    props: dict[str, str] = {}
    if hit.signals.page_url:
        props["url"] = hit.signals.page_url
    if hit.signals.referrer:
        props["referrer"] = hit.signals.referrer
    return props


def sessionize(hits: Iterable[PageHit], timeout: timedelta, rules: ChannelRules) -> list[Touch]:
    """Batch form: visit touches of any number of devices' hits (any order)."""
    ordered = sorted(hits, key=lambda h: (h.device_key, h.time, h.event_id))
    touches: list[Touch] = []
    state: SessionState | None = None
    device: str | None = None
    for hit in ordered:
        if hit.device_key != device:
            device, state = hit.device_key, None
        state, touch = step(state, hit, timeout, rules)
        if touch is not None:
            touches.append(touch)
    return touches
