"""streams.watchdog.StallClock: when a partition counts as stalled (pure bookkeeping)."""

from __future__ import annotations

from aiokafka import TopicPartition
from hypothesis import given
from hypothesis import strategies as st

from streams.watchdog import StallClock

A, B = TopicPartition("events", 0), TopicPartition("events", 1)


def test_hand_computed_sequence() -> None:
    clock = StallClock(10)
    assert clock.observe(0, {A: 5, B: 0}, {A: 3, B: 7}) == []
    assert clock.observe(9, {A: 5, B: 0}, {A: 3, B: 7}) == []
    assert clock.observe(10, {A: 5, B: 0}, {A: 3, B: 7}) == [A]  # lag, no commit for 10 s
    assert clock.observe(11, {A: 6, B: 0}, {A: 4, B: 7}) == []  # A committed: clock restarts
    assert clock.observe(20, {A: 6, B: 3}, {A: 4, B: 7}) == []  # B's lag starts its clock
    assert clock.observe(21, {A: 6, B: 3}, {A: 4, B: 7}) == [A]
    assert clock.observe(30, {A: 6, B: 3}, {A: 4, B: 7}) == [A, B]


def test_idle_time_without_lag_does_not_count() -> None:
    """Hours without traffic, then lag: the clock starts when the lag does."""
    clock = StallClock(10)
    clock.observe(0, {A: 0}, {A: 100})
    assert clock.observe(7200, {A: 0}, {A: 100}) == []
    assert clock.observe(7201, {A: 50}, {A: 100}) == []
    assert clock.observe(7210, {A: 50}, {A: 100}) == []
    assert clock.observe(7211, {A: 50}, {A: 100}) == [A]


def test_reassignment_and_reset_forget_partitions() -> None:
    clock = StallClock(10)
    clock.observe(0, {A: 5}, {A: 1})
    assert clock.observe(5, {B: 5}, {B: 1}) == []  # A went elsewhere
    assert clock.observe(12, {A: 5, B: 5}, {A: 1, B: 1}) == []  # A is back: a new clock
    clock.reset()  # e.g. a rebalance
    assert clock.observe(20, {A: 5, B: 5}, {A: 1, B: 1}) == []
    assert clock.observe(30, {A: 5, B: 5}, {A: 1, B: 1}) == [A, B]


@st.composite
def histories(draw: st.DrawFn) -> list[tuple[float, int, int]]:
    """(time step, lag, committed) of one partition."""
    steps = draw(st.lists(st.tuples(st.floats(0.1, 20), st.integers(0, 3), st.booleans()),
                          min_size=1, max_size=40))
    committed, out = 0, []
    for step, lag, moved in steps:
        committed += moved
        out.append((step, lag, committed))
    return out


@given(histories(), st.floats(1, 60))
def test_stalled_exactly_when_lag_and_no_commit_for_stall_seconds(
        history: list[tuple[float, int, int]], stall: float) -> None:
    clock = StallClock(stall)
    now, since = 0.0, 0.0
    previous: tuple[int, int] | None = None
    for step, lag, committed in history:
        now += step
        if lag > 0 and (previous is None or previous[0] == 0 or committed != previous[1]):
            since = now  # lag first seen, or progress made
        previous = (lag, committed)
        expected = [A] if lag > 0 and now - since >= stall else []
        assert clock.observe(now, {A: lag}, {A: committed}) == expected
