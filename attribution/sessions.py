"""Sessionisation: one visit touch per session, not one per page view.

A session ends after ``timeout`` of inactivity or when a page arrives with another
campaign (source, medium, campaign). ``step`` is the definition: a fold over one
device's page hits in (time, event id) order. ``mark_session_starts`` computes the same
fold for many devices at once as a sort and window functions, which batch replay runs
over all pages and the stream's device stage over each device's retained and new pages.

Why it vectorises: within a run of pages without an inactivity gap, the session's
signature is the signature of its first page, and a page with another (non-null)
signature starts a new session; so the signature a page is compared with is the last
non-null signature before it in the run (a forward fill), or null at the run's start.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import polars as pl

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


# --- the same fold over many devices at once ------------------------------------------------

SIG_SEPARATOR = "\x1f"


def signature_key(signature: Signature | None) -> str | None:
    """A signature as one comparable string (None stays None)."""
    if signature is None:
        return None
    source, medium, campaign = signature
    return SIG_SEPARATOR.join((source, medium, campaign or ""))


def mark_session_starts(pages: pl.DataFrame, timeout_us: int) -> pl.DataFrame:
    """``pages`` (columns device, time [epoch us], event_id, sig [signature_key], plus any
    others) sorted by (device, time, event_id) with a boolean column ``start``: the page
    starts a session. A row with event_id "" sorting first in its device may stand for the
    session state before these pages (its time and signature): it is never a start itself
    but the pages after it continue its session as ``step`` would."""
    gap = pl.col("time").diff().over("device")
    broken = gap.is_null() | (gap > timeout_us)
    return (pages.lazy().sort(["device", "time", "event_id"])
            .with_columns(broken.cum_sum().over("device").alias("_run"), broken.alias("_break"))
            .with_columns(pl.col("sig").forward_fill().shift(1).over(["device", "_run"])
                          .alias("_current"))
            .with_columns((pl.col("_break") | (pl.col("sig").is_not_null() & (
                pl.col("_current").is_null() | (pl.col("sig") != pl.col("_current")))))
                .alias("start"))
            .drop("_run", "_current", "_break")
            .collect())
