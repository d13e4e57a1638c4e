"""The three stages as ``streams.stage_runner.Stage``: how each reads, writes, ages out and
erases its state, around the pure bodies in ``streams.stages``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from attribution.channels import ChannelRules
from attribution.device import DeviceState, Limits, fold
from attribution.identity import IdentityGraph
from attribution.journey import Horizons, JourneyState
from attribution.policy import Config
from schemas.contracts import Link
from streams import state_codec
from streams.erase import scrub_device, scrub_journey, scrub_link
from streams.messages import decode_deltas, decode_links
from streams.stage_runner import StateView
from streams.stages import StageOutput, devices_message, identity_message, journeys_message
from streams.state.store import PartitionStore

NEVER = -(1 << 62)  # an idle horizon no key is before
ALWAYS_ACTIVE = 1 << 62  # the activity of a key that must never age out


@dataclass
class DeviceStage:
    topic: str
    config: Config
    rules: ChannelRules
    name: str = "devices"
    now_us: int | None = None  # the "not in the future" reference; None: receivedAt/clock

    def run(self, state: StateView, payloads: Sequence[tuple[str, Mapping[str, Any]]],
            partition: int) -> StageOutput:
        return devices_message(state.get, payloads, self.config, self.rules, self.now_us,
                               state.watermark)

    def encode(self, state: DeviceState) -> tuple[int, bytes]:
        # A device only answered by the identity stage (no event yet) has no time to age
        # from: it stays until an event gives it one.
        active = ALWAYS_ACTIVE if state.last_time is None else state.last_time
        return active, state_codec.encode_device(state)

    def decode(self, value: bytes) -> DeviceState:
        return state_codec.decode_device(value)

    def idle_before(self, watermark: int) -> int:
        return watermark - Limits.of(self.config).retention

    def erase(self, key: str, state: DeviceState, ids: frozenset[str]) -> DeviceState | None:
        return scrub_device(key, state, ids)

    def compactable(self, state: DeviceState) -> bool:
        return bool(state.pages)

    def compact(self, state: DeviceState, watermark: int) -> DeviceState | None:
        return state if fold(state, Limits.of(self.config), watermark) else None

    def compact_before(self, watermark: int) -> int:
        return watermark - Limits.of(self.config).window


@dataclass
class JourneyStage:
    topic: str
    config: Config
    name: str = "journeys"

    def run(self, state: StateView, payloads: Sequence[tuple[str, Mapping[str, Any]]],
            partition: int) -> StageOutput:
        deltas = [delta for _, payload in payloads for delta in decode_deltas(payload)]
        return journeys_message(state.get, deltas, self.config)

    def encode(self, state: JourneyState) -> tuple[int, bytes]:
        return state.watermark or 0, state_codec.encode_journey(state)

    def decode(self, value: bytes) -> JourneyState:
        return state_codec.decode_journey(value)

    def idle_before(self, watermark: int) -> int:
        return watermark - Horizons.of(self.config).keep

    def erase(self, key: str, state: JourneyState, ids: frozenset[str]) -> JourneyState | None:
        return scrub_journey(key, state, ids)

    def compactable(self, state: JourneyState) -> bool:
        return False

    def compact(self, state: JourneyState, watermark: int) -> JourneyState | None:
        return None

    def compact_before(self, watermark: int) -> int:
        return NEVER


@dataclass
class IdentityStage:
    """The global identity graph (one partition). Its state is the set of links; the graph
    lives in memory, rebuilt from them whenever the store holds links it has not seen
    (recovery, another worker's writes, an erasure)."""

    topic: str
    name: str = "identities"
    _graph: IdentityGraph | None = None
    _store: PartitionStore | None = None
    _links: int = -1  # links in the graph

    def graph(self, state: StateView) -> IdentityGraph:
        if self._graph is None or self._store is not state.store or self._links != len(state):
            self._graph = IdentityGraph(state.values())
            self._store, self._links = state.store, len(state)
        return self._graph

    def run(self, state: StateView, payloads: Sequence[tuple[str, Mapping[str, Any]]],
            partition: int) -> StageOutput:
        graph = self.graph(state)
        fresh: dict[str, Link] = {}
        for link in (link for _, payload in payloads for link in decode_links(payload)):
            if link.key not in fresh and state.get(link.key) is None:
                fresh[link.key] = link
        out = identity_message(graph, list(fresh.values())) if fresh else StageOutput()
        out.states = dict(fresh)
        self._links += len(fresh)
        return out

    def encode(self, state: Link) -> tuple[int, bytes]:
        return state.time, state_codec.encode_link(state)

    def decode(self, value: bytes) -> Link:
        return state_codec.decode_link(value)

    def idle_before(self, watermark: int) -> int:
        return NEVER  # the links are the graph: never aged out

    def erase(self, key: str, state: Link, ids: frozenset[str]) -> Link | None:
        self._graph = None  # rebuilt from the scrubbed links
        return scrub_link(key, state, ids)

    def compactable(self, state: Link) -> bool:
        return False

    def compact(self, state: Link, watermark: int) -> Link | None:
        return None

    def compact_before(self, watermark: int) -> int:
        return NEVER
