"""An in-memory stand-in for the Kafka topics between the stream stages.

It drives the same pure stage functions the Faust agents call (device, identity,
journey) with queues instead of topics, so the stream's logic can be checked
against batch replay without a broker. Broker tests live in tests/streams/.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from attribution.channels import ChannelRules
from attribution.device import (
    DeviceOutput,
    DeviceState,
    JourneyDelta,
    new_device,
    on_event,
    on_identity,
)
from attribution.identity import IdentityGraph, IdentityUpdate, apply_links
from attribution.journey import JourneyOutput, JourneyState, on_delta
from attribution.policy import Config
from schemas.records import Credit, IdentityLink
from schemas.wire import EventRejected, parse_event


class InMemoryStream:
    def __init__(self, config: Config, rules: ChannelRules, now: datetime) -> None:
        self.config, self.rules, self.now = config, rules, now
        self.devices: dict[str, DeviceState] = {}
        self.journeys: dict[str, JourneyState] = {}
        self.graph = IdentityGraph()
        self.credits: list[Credit] = []
        self.rejected: list[str] = []
        self._links: deque[IdentityLink] = deque()
        self._updates: deque[IdentityUpdate] = deque()
        self._deltas: deque[tuple[str, JourneyDelta]] = deque()

    def _device(self, key: str) -> DeviceState:
        if key not in self.devices:
            self.devices[key] = new_device(key)
        return self.devices[key]

    def _route(self, out: DeviceOutput) -> None:
        self._links.extend(out.links)
        self._deltas.extend(out.journeys.items())

    def ingest(self, events: Iterable[dict[str, Any]]) -> None:
        """Device stage only (like a burst on the events topic)."""
        for raw in events:
            try:
                event, time = parse_event(raw, self.now)
            except EventRejected as exc:
                self.rejected.append(str(exc))
                continue
            out = DeviceOutput()
            key = event.anonymous_id or event.user_id or ""
            on_event(self._device(key), event, time, self.config, self.rules, out)
            self._route(out)

    def lose_sends(self) -> None:
        """What a crash after the state writes but before the sends leaves: nothing pending."""
        self._links.clear()
        self._updates.clear()
        self._deltas.clear()

    def drain(self) -> None:
        """Run the identity and journey stages until every queue is empty."""
        while self._links or self._updates or self._deltas:
            if self._links:
                links = list(self._links)
                self._links.clear()
                self._updates.extend(apply_links(self.graph, links))
            while self._updates:
                update = self._updates.popleft()
                out = DeviceOutput()
                on_identity(self._device(update.id), update, self.config, out)
                self._route(out)
            while self._deltas:
                key, delta = self._deltas.popleft()
                state = self.journeys.setdefault(key, JourneyState(key))
                result = JourneyOutput()
                on_delta(state, delta, self.config, result)
                self.credits.extend(result.credits)

    def latest_credits(self) -> list[Credit]:
        latest: dict[str, int] = {}
        for credit in self.credits:
            latest[credit.conversion_id] = max(latest.get(credit.conversion_id, 0),
                                               credit.version)
        unique = {(c.conversion_id, c.version, c.model, c.touch_event_id): c
                  for c in self.credits if c.version == latest[c.conversion_id]}
        return list(unique.values())
