"""Topics exist as declared, or nothing is acknowledged and no worker runs on them.

Found on Tansu 0.6 and aiokafka 0.14 (``tests/streams/test_topic_guard.py``): aiokafka asks
for metadata with "allow auto topic creation" set, always, and Tansu then creates a
missing topic with 4 partitions (Kafka does the same with ``auto.create.topics.enable``,
with ``num.partitions``). So after a broker restarted empty, the next metadata refresh of
any client re-created the identity topic with 4 partitions (the graph needs exactly 1)
and the events topic with a partition count no worker expects, and the collector's
writes were acknowledged into them.

Two parts:

* :func:`forbid_topic_auto_creation` makes every aiokafka client of the process (the
  collector's producer, Faust's consumers and producers) ask for metadata without
  auto-creation, so a missing topic stays missing: writes to it fail once the client has
  refreshed its metadata (before that, Tansu acknowledges them at offset 0 and keeps
  nothing; the collector checks the topic after such an acknowledgement). Topics are only
  created explicitly: the pipeline's from ``streams.topics.topic_specs`` (``prepare``),
  Faust's changelog and leader topics by Faust's own CreateTopics at worker start.
* :func:`partition_counts` asks the broker (without creating anything) what it has, and
  :func:`problems` compares that with the declaration. The collector keeps a
  :class:`TopicWatch` (503 and a failing /readyz while a topic is wrong); a worker checks
  at start (:func:`require_declared_topics`: it refuses to run) and every
  ``CHECK_INTERVAL`` (:class:`TopicGuardService`: it exits, so that it is restarted
  and ``prepare`` runs again).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiokafka.admin.client
import aiokafka.client
from aiokafka.client import AIOKafkaClient
from aiokafka.errors import KafkaError
from aiokafka.protocol.metadata import MetadataRequest
from mode import Service
from prometheus_client import CollectorRegistry, Counter

from streams.broker import TopicSpec

log = logging.getLogger("attribution.topics")

CHECK_INTERVAL = 5.0  # seconds between a worker's checks
START_GRACE = 10.0  # a topic just created may take a moment to show in every broker's metadata
UNKNOWN_TOPIC = 3  # Kafka error code UNKNOWN_TOPIC_OR_PARTITION


class TopicCheckFailed(Exception):
    """The broker could not be asked (unreachable, or no definite answer yet)."""


class TopicMismatch(RuntimeError):
    """A declared topic is missing or has another partition count than declared."""


@dataclass(frozen=True)
class TopicProblem:
    topic: str
    expected: int | None  # None: not declared (the collector without a partition count)
    found: int | None  # None: the topic does not exist

    @property
    def reason(self) -> str:
        return "missing" if self.found is None else "partitions"

    def __str__(self) -> str:
        if self.found is None:
            declared = "" if self.expected is None else \
                f" (declared with {self.expected} partition(s))"
            return f"topic {self.topic!r} does not exist{declared}"
        return f"topic {self.topic!r} has {self.found} partition(s), declared {self.expected}"


class _MetadataRequestNoAutoCreate(MetadataRequest):  # type: ignore[misc]
    def __init__(self, topics: list[str] | None = None,
                 allow_auto_topic_creation: bool | None = False) -> None:
        super().__init__(topics, allow_auto_topic_creation)


def forbid_topic_auto_creation() -> None:
    """From now on, aiokafka clients of this process never ask the broker to create a topic
    by asking for its metadata. Idempotent.

    aiokafka has no setting for it: its client builds ``MetadataRequest(topics)``, whose
    flag defaults to True, so the request class it uses is swapped for one defaulting to
    False (an explicit argument still wins). Metadata v0-v3 carry no flag; every broker
    here (Tansu 0.6, Kafka 3.x) negotiates v4 or later.
    """
    for module in (aiokafka.client, aiokafka.admin.client):
        module.MetadataRequest = _MetadataRequestNoAutoCreate


def auto_creation_forbidden() -> bool:
    return aiokafka.client.MetadataRequest is _MetadataRequestNoAutoCreate


def declared(specs: Iterable[TopicSpec]) -> dict[str, int]:
    return {spec.name: spec.partitions for spec in specs}


async def partition_counts(client: AIOKafkaClient, topics: Sequence[str]
                           ) -> dict[str, int | None]:
    """Partition count of each topic (None: it does not exist), from a metadata request
    that never creates anything. TopicCheckFailed when the broker cannot answer."""
    node = client.get_random_node()
    if node is None:
        raise TopicCheckFailed("no broker known yet")
    request = MetadataRequest(list(topics), allow_auto_topic_creation=False)
    try:
        response = await client.send(node, request)
    except (KafkaError, OSError, TimeoutError) as exc:
        raise TopicCheckFailed(f"metadata request failed: {exc!r}") from exc
    counts: dict[str, int | None] = {}
    for entry in response.topics:  # (error, name, [is_internal,] partitions)
        error, name, partitions = entry[0], entry[1], entry[-1]
        if error == UNKNOWN_TOPIC:
            counts[name] = None
        elif error != 0:  # e.g. a leader still being elected: no definite answer
            raise TopicCheckFailed(f"metadata for topic {name!r} has Kafka error {error}")
        else:
            counts[name] = len(partitions)
    missing = [topic for topic in topics if topic not in counts]
    if missing:
        raise TopicCheckFailed(f"no metadata for {missing}")
    return counts


def problems(expected: Mapping[str, int], counts: Mapping[str, int | None]
             ) -> list[TopicProblem]:
    return [TopicProblem(topic, want, counts.get(topic)) for topic, want in expected.items()
            if counts.get(topic) != want]


async def check_topics(bootstrap: str, expected: Mapping[str, int]) -> list[TopicProblem]:
    """One check with a client of its own (TopicCheckFailed if the broker cannot answer)."""
    client = AIOKafkaClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    try:
        await client.bootstrap()
        return problems(expected, await partition_counts(client, list(expected)))
    except KafkaError as exc:
        raise TopicCheckFailed(f"broker {bootstrap} unreachable: {exc!r}") from exc
    finally:
        await client.close()


async def wait_for_declared_topics(bootstrap: str, expected: Mapping[str, int],
                                   grace: float = START_GRACE) -> list[TopicProblem]:
    """The problems still there after ``grace`` seconds (a topic just created may take a
    moment to appear everywhere); [] as soon as every topic is as declared."""
    deadline = time.monotonic() + grace
    while True:
        try:
            found = await check_topics(bootstrap, expected)
        except TopicCheckFailed:
            if time.monotonic() >= deadline:
                raise
            found = None
        if found == []:
            return []
        if time.monotonic() >= deadline:
            assert found is not None
            return found
        await asyncio.sleep(0.5)


def require_declared_topics(bootstrap: str, specs: Iterable[TopicSpec]) -> None:
    """A worker's start: refuse to run (SystemExit with the reason) unless every topic
    exists with its declared partition count."""
    try:
        found = asyncio.run(wait_for_declared_topics(bootstrap, declared(specs)))
    except TopicCheckFailed as exc:
        raise SystemExit(f"cannot check the stream's topics on {bootstrap}: {exc}") from None
    if found:
        detail = "; ".join(str(p) for p in found)
        log.critical("refusing to run: %s", detail)
        raise SystemExit(f"refusing to run: {detail}. A topic's partition count cannot be "
                         "changed under the stream's state: recreate it from its declaration "
                         "(delete it; `attribution worker` creates missing topics)")


class TopicWatch:
    """The collector's view of its topics: checked at start, after every (re)connect or
    failed produce (``invalidate``), and every ``interval`` (``watch``).

    ``describe`` is the producer's metadata call (its own connection, so a reconnect is
    seen where it happens). ``expected`` None: learn the count the broker reports first.
    """

    def __init__(self, expected: Mapping[str, int | None],
                 describe: Callable[[list[str]], Awaitable[dict[str, int | None]]],
                 on_result: Callable[[list[TopicProblem]], None] | None = None) -> None:
        self.expected = dict(expected)
        self._describe = describe
        self._on_result = on_result
        self.problems: list[TopicProblem] | None = None  # None: to be checked
        self._last: list[TopicProblem] = []  # the last answer (for logging changes only)
        self._lock = asyncio.Lock()

    @property
    def ok(self) -> bool:
        return self.problems == []

    def invalidate(self) -> None:
        """Check again before the next produce (after a reconnect or a failed produce)."""
        self.problems = None

    async def check(self) -> list[TopicProblem]:
        """Ask the broker now; TopicCheckFailed when it cannot answer."""
        async with self._lock:
            return await self._check()

    async def current(self) -> list[TopicProblem]:
        """The known problems, checking first if nothing is known (once for all waiters)."""
        known = self.problems
        if known is not None:
            return known
        async with self._lock:
            if self.problems is not None:
                return self.problems
            return await self._check()

    async def _check(self) -> list[TopicProblem]:
        counts = await self._describe(list(self.expected))
        for topic, count in counts.items():
            if self.expected.get(topic) is None and count is not None:
                self.expected[topic] = count  # undeclared: the first count seen
        found = problems({t: c for t, c in self.expected.items() if c is not None}, counts)
        found += [TopicProblem(t, None, None) for t, c in self.expected.items()
                  if c is None and counts.get(t) is None]
        self._report(found)
        self.problems = found
        return found

    def _report(self, found: list[TopicProblem]) -> None:
        before, self._last = self._last, found
        if found and found != before:
            log.error("topics not as declared, refusing events until they are: %s",
                      "; ".join(str(p) for p in found))
        elif not found and before:
            log.warning("topics are back as declared: accepting events again")
        if self._on_result is not None:
            self._on_result(found)

    async def watch(self, interval: float, first: float | None = None) -> None:
        """Check after ``first`` seconds (default ``interval``), then every ``interval``
        seconds, until cancelled."""
        await asyncio.sleep(interval if first is None else first)
        while True:
            try:
                await self.check()
            except TopicCheckFailed as exc:
                log.debug("topic check skipped: %s", exc)
                self.invalidate()
            await asyncio.sleep(interval)


class TopicGuardService(Service):
    """A worker's periodic check (a service of the Faust worker). A topic found missing or
    re-partitioned twice in a row (``CHECK_INTERVAL`` apart: not a topic being created)
    crashes the worker, which exits non-zero: its state no longer matches the broker."""

    def __init__(self, bootstrap: str, specs: Iterable[TopicSpec],
                 registry: CollectorRegistry | None = None, interval: float = CHECK_INTERVAL,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.bootstrap = bootstrap
        self.expected = declared(specs)
        self.interval = interval
        self._failures = Counter("attribution_worker_topic_problems",
                                 "Checks that found a topic missing or with another partition "
                                 "count than declared", ["topic", "reason"],
                                 registry=registry if registry is not None else
                                 CollectorRegistry())
        self._strikes = 0

    @Service.task
    async def _check_periodically(self) -> None:
        while not self.should_stop:
            await self.sleep(self.interval)
            if self.should_stop:
                break
            try:
                found = await check_topics(self.bootstrap, self.expected)
            except TopicCheckFailed as exc:
                log.debug("topic check skipped: %s", exc)
                continue
            for problem in found:
                self._failures.labels(problem.topic, problem.reason).inc()
            self._strikes = self._strikes + 1 if found else 0
            if found:
                detail = "; ".join(str(p) for p in found)
                log.error("topic check %d/2 failed: %s", self._strikes, detail)
                if self._strikes >= 2:
                    log.critical("stopping: %s (the broker lost or changed the stream's "
                                 "topics; a restarted worker recreates missing ones)", detail)
                    await self.crash(TopicMismatch(detail))
                    return
