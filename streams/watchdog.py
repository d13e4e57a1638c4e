"""The stall watchdog: a worker that holds partitions with lag but commits nothing is stuck.

A lone restarted worker was once seen "Ready", with every partition assigned and its
tables recovered, consuming nothing and logging nothing. Whatever the cause, this
service notices the symptom: every few seconds it asks the broker for the end and the
committed offsets of the source partitions assigned to this worker. When one has lag
while its committed offset has not moved for ``[stream] stall_seconds`` (the clock only
runs while the worker is ready, the sink is not retrying and there is lag), the worker:

1. fails ``/readyz`` ("stalled: <topic:partition>, ...", via ``WorkerMetrics.stalled``);
2. logs the partitions at ERROR;
3. counts it (``attribution_worker_stalls_total``, ``attribution_stalled_partitions``);
4. after a short grace (so probes and a scrape can see it) stops as on SIGTERM and exits
   with status 75 (EX_TEMPFAIL), for its supervisor to restart it.

Exiting rather than rejoining the group: the cause is unknown (Faust's pause/resume
hand-over after recovery, aiokafka's fetcher, the group coordinator), and a new process
resets every layer, while a rejoin would keep the same possibly wedged objects and
need Faust's private internals. Delivery is at-least-once with idempotent landing, so
a restart loses and duplicates nothing; ``attribution run``, compose
(``restart: unless-stopped``) and Kubernetes all restart a worker that exits.

Test hook (tests only): when the file named by ``ATTRIBUTION_TEST_STALL_ONCE`` exists
once the worker is ready, the watchdog deletes it and pauses the worker's source
partitions, which reproduces the stall (Faust "ready", nothing fetched).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any

import faust
from aiokafka import TopicPartition
from aiokafka.errors import KafkaError
from mode import Service

from streams.broker import committed_offsets, log_end_offsets
from streams.health import readiness
from streams.metrics import WorkerMetrics

log = logging.getLogger("attribution.watchdog")

EXIT_STALLED = 75  # EX_TEMPFAIL: a temporary failure, restart me
TEST_STALL_ENV = "ATTRIBUTION_TEST_STALL_ONCE"
#: Between detection and stopping: /readyz answers 503 and /metrics shows the stall.
EXIT_GRACE_SECONDS = 5.0
#: A stalled worker's graceful stop may hang too; then it is killed from a thread.
HARD_EXIT_SECONDS = 60.0


class StallClock:
    """Per partition, since when it has had lag without its committed offset moving.

    Pure bookkeeping: ``observe`` gets the lag and committed offset of the partitions
    currently assigned, with the time, and returns those stalled for stall_seconds.
    A partition's clock starts when it is first seen with lag, restarts when its committed
    offset moves, and stops when its lag is 0 or it is no longer assigned.
    """

    def __init__(self, stall_seconds: float) -> None:
        self.stall_seconds = stall_seconds
        self._since: dict[TopicPartition, float] = {}
        self._committed: dict[TopicPartition, int] = {}

    def reset(self) -> None:
        self._since.clear()
        self._committed.clear()

    def observe(self, now: float, lag: Mapping[TopicPartition, int],
                committed: Mapping[TopicPartition, int]) -> list[TopicPartition]:
        for tp in list(self._committed):
            if tp not in lag:  # no longer assigned here
                self._since.pop(tp, None)
                del self._committed[tp]
        for tp, behind in lag.items():
            offset = committed.get(tp, -1)
            if behind <= 0:
                self._since.pop(tp, None)
            elif tp not in self._since or self._committed.get(tp) != offset:
                self._since[tp] = now  # lag first seen, or progress made
            self._committed[tp] = offset
        return sorted(tp for tp, behind in lag.items()
                      if behind > 0 and now - self._since[tp] >= self.stall_seconds)


def exit_for_restart() -> None:
    """Stop like SIGTERM does (finish, commit, leave the group); kill if that hangs."""
    def hard_exit() -> None:
        log.critical("graceful stop did not finish in %.0fs; exiting", HARD_EXIT_SECONDS)
        os._exit(EXIT_STALLED)

    timer = threading.Timer(HARD_EXIT_SECONDS, hard_exit)
    timer.daemon = True
    timer.start()
    os.kill(os.getpid(), signal.SIGTERM)


class StallWatchdog(Service):
    """Watches the worker's assigned partitions of ``topics``; see the module doc."""

    def __init__(self, app: faust.App, metrics: WorkerMetrics, bootstrap: str,
                 topics: Collection[str], stall_seconds: float,
                 on_stall: Callable[[], None] = exit_for_restart, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.app = app
        self.metrics = metrics
        self.bootstrap = bootstrap
        self.topics = frozenset(topics)
        self.clock = StallClock(stall_seconds)
        self.interval = min(max(stall_seconds / 4, 0.5), 15.0) if stall_seconds > 0 else 1.0
        self.on_stall = on_stall
        self.fired = False

    @Service.task
    async def _watch(self) -> None:
        while not self.should_stop and not self.fired:
            await self.sleep(self.interval)
            if not self.should_stop:
                await self.check()

    def _assigned(self) -> list[TopicPartition]:
        try:
            assigned = self.app.consumer.assignment()
        except Exception:  # the consumer is not started yet
            return []
        return sorted(TopicPartition(tp.topic, tp.partition) for tp in assigned
                      if tp.topic in self.topics)

    async def check(self) -> None:
        ready, _why = readiness(self.app)
        assigned = self._assigned() if ready else []
        if ready and assigned:
            _maybe_pause_for_test(self.app, assigned)
        if self.clock.stall_seconds <= 0:
            return  # disabled
        if not assigned or self.metrics.sink_is_failing:
            # Recovering, rebalancing or nothing to do: not a stall. A sink that cannot
            # write is its own alarm (/healthz, attribution_sink_failing); a restart would
            # not fix a full disk.
            self.clock.reset()
            return
        try:
            committed, ends = await asyncio.wait_for(asyncio.gather(
                committed_offsets(self.bootstrap, self.app.conf.id, assigned),
                log_end_offsets(self.bootstrap, assigned)), timeout=max(self.interval, 10.0))
        except (KafkaError, OSError, TimeoutError) as exc:
            # The broker is unreachable: every worker waits alike, none is stalled.
            log.warning("watchdog could not read offsets: %r", exc)
            return
        lag = {tp: ends[tp] - max(committed[tp], 0) for tp in assigned}
        stalled = self.clock.observe(asyncio.get_running_loop().time(), lag, committed)
        if stalled:
            self.fire(stalled, lag)

    def fire(self, stalled: list[TopicPartition], lag: Mapping[TopicPartition, int]) -> None:
        self.fired = True
        names = [f"{tp.topic}:{tp.partition}" for tp in stalled]
        self.metrics.stall(names)
        # For the hunt of the cause: which of the worker's partitions Faust holds paused
        # (a private set, read for this log line only; empty when it has none).
        paused = sorted(f"{tp.topic}:{tp.partition}" for tp in
                        getattr(self.app.consumer, "_paused_partitions", ())
                        if tp.topic in self.topics)
        log.error("worker stalled: %s have lag (%s records) and no commit for %.0fs (paused "
                  "in Faust: %s); exiting with status %d in %.0fs to be restarted",
                  ", ".join(names), ", ".join(str(lag[tp]) for tp in stalled),
                  self.clock.stall_seconds, ", ".join(paused) or "none", EXIT_STALLED,
                  EXIT_GRACE_SECONDS, extra={"stalled_partitions": names})
        asyncio.get_running_loop().call_later(EXIT_GRACE_SECONDS, self.on_stall)


def _maybe_pause_for_test(app: faust.App, assigned: list[TopicPartition]) -> None:
    """The test hook of the module doc: pause the worker's source partitions, once."""
    marker = os.environ.get(TEST_STALL_ENV)
    if not marker or not Path(marker).exists():
        return
    Path(marker).unlink(missing_ok=True)
    app.consumer.pause_partitions(
        {tp for tp in app.consumer.assignment() if TopicPartition(tp.topic, tp.partition)
         in set(assigned)})
    log.warning("test hook %s: paused %s", TEST_STALL_ENV,
                ", ".join(f"{tp.topic}:{tp.partition}" for tp in assigned))
