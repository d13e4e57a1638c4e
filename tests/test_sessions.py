"""Sessionisation: 30 minutes of inactivity or a new campaign start a new visit touch."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import polars as pl
from hypothesis import given
from hypothesis import strategies as st

from attribution.channels import DEFAULT_RULES, TrafficSignals
from attribution.observations import PageHit
from attribution.sessions import SessionState, mark_session_starts, sessionize, step

T0 = datetime(2026, 3, 1, tzinfo=UTC)
TIMEOUT = timedelta(minutes=30)


def hit(id_: str, minutes: float, url: str = "https://shop.example/page",
        referrer: str | None = "https://shop.example/", device: str = "d1") -> PageHit:
    return PageHit(event_id=id_, time=T0 + timedelta(minutes=minutes), anonymous_id=device,
                   person_id=None, account_id=None,
                   signals=TrafficSignals(page_url=url, referrer=referrer))


AD = "https://shop.example/?utm_source=facebook&utm_medium=paid_social&utm_campaign=a"
AD_B = "https://shop.example/?utm_source=facebook&utm_medium=paid_social&utm_campaign=b"


def test_internal_navigation_within_30_minutes_is_one_visit() -> None:
    touches = sessionize([hit("a", 0, AD, None), hit("b", 10), hit("c", 39)], TIMEOUT,
                         DEFAULT_RULES)
    assert [(t.event_id, t.channel) for t in touches] == [("a", "Paid Social")]


def test_inactivity_starts_a_new_session() -> None:
    touches = sessionize([hit("a", 0, AD, None), hit("b", 31, referrer=None)], TIMEOUT,
                         DEFAULT_RULES)
    assert [(t.event_id, t.channel) for t in touches] == [("a", "Paid Social"), ("b", "Direct")]


def test_a_new_campaign_starts_a_new_session_even_within_30_minutes() -> None:
    touches = sessionize([hit("a", 0, AD, None), hit("b", 2, AD_B, None), hit("c", 3, AD_B, None)],
                         TIMEOUT, DEFAULT_RULES)
    assert [t.event_id for t in touches] == ["a", "b"]
    assert [t.campaign for t in touches] == ["a", "b"]


def test_devices_are_sessionised_separately() -> None:
    touches = sessionize([hit("a", 0, device="d1"), hit("b", 1, device="d2")], TIMEOUT,
                         DEFAULT_RULES)
    assert {t.event_id for t in touches} == {"a", "b"}


def test_step_extends_the_session_and_keeps_its_touch() -> None:
    state, touch = step(None, hit("a", 0, AD, None), TIMEOUT, DEFAULT_RULES)
    assert touch is not None
    state2, touch2 = step(state, hit("b", 20), TIMEOUT, DEFAULT_RULES)
    assert touch2 is None
    assert state2 == SessionState(T0 + timedelta(minutes=20), state.signature, "a")


@given(st.lists(st.floats(0, 600), min_size=1, max_size=30))
def test_one_touch_per_gap_longer_than_the_timeout(minutes: list[float]) -> None:
    hits = [hit(f"h{i}", m) for i, m in enumerate(minutes)]
    touches = sessionize(hits, TIMEOUT, DEFAULT_RULES)
    ordered = sorted(minutes)
    gaps = sum(1 for a, b in itertools.pairwise(ordered)
               if timedelta(minutes=b - a) > TIMEOUT)
    assert len(touches) == 1 + gaps


def _reference_starts(rows: list[tuple[str, int, str, str | None]], timeout_us: int
                      ) -> set[str]:
    """`step`'s definition, written out: fold each device's pages in (time, id) order."""
    starts: set[str] = set()
    by_device: dict[str, list[tuple[int, str, str | None]]] = {}
    for device, time, event_id, sig in rows:
        by_device.setdefault(device, []).append((time, event_id, sig))
    for pages in by_device.values():
        last: int | None = None
        current: str | None = None
        for time, event_id, sig in sorted(pages):
            if last is not None and time - last <= timeout_us and not (
                    sig is not None and sig != current):
                last = time
                continue
            starts.add(event_id)
            last, current = time, sig
    return starts


@given(st.lists(st.tuples(st.sampled_from(["d1", "d2", "d3"]),
                          st.integers(0, 20) | st.integers(0, 10_000),
                          st.sampled_from([None, "a", "b"])), max_size=40))
def test_vectorised_starts_equal_the_fold(pages: list[tuple[str, int, str | None]]) -> None:
    timeout_us = 30
    rows = [(device, time, f"e{i:03d}", sig) for i, (device, time, sig) in enumerate(pages)]
    frame = pl.DataFrame(rows, schema={"device": pl.Utf8, "time": pl.Int64,
                                       "event_id": pl.Utf8, "sig": pl.Utf8}, orient="row")
    marked = mark_session_starts(frame, timeout_us)
    found = set(marked.filter(pl.col("start"))["event_id"].to_list())
    assert found == _reference_starts(rows, timeout_us)
