"""One Kafka message in, state changes and outgoing items out: the body of each agent.

Kept free of Faust so it is plain to read and test; the agents in ``streams.app``
only fetch state, call these, write the touched state back once per key and send.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from attribution.channels import ChannelRules
from attribution.device import DeviceOutput, DeviceState, expire, new_device, on_event, on_identity
from attribution.identity import IdentityGraph, apply_links
from attribution.journey import JourneyOutput, JourneyState, on_delta
from attribution.policy import Config
from schemas.records import IdentityLink, conversion_row, record_row
from schemas.wire import EventRejected, parse_event
from streams import codec

Row = dict[str, Any]


@dataclass
class StageOutput:
    """Everything one message produces, grouped by destination."""

    states: dict[str, Any] = field(default_factory=dict)  # key -> state to write back
    links: list[IdentityLink] = field(default_factory=list)
    deltas: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (journey key, delta)
    updates: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (device, update)
    rows: dict[str, list[Row]] = field(default_factory=dict)  # warehouse table -> rows
    dead: list[Row] = field(default_factory=list)

    def land(self, table: str, rows: Iterable[Row]) -> None:
        self.rows.setdefault(table, []).extend(rows)


def device_key(raw: dict[str, Any]) -> str | None:
    for field_name in ("anonymousId", "userId"):
        value = raw.get(field_name)
        if isinstance(value, str) and value.strip():
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
    return None


def _rejected(raw: Any, reason: str, position: str, source: str) -> Row:
    text = codec.dumps(raw).decode() if not isinstance(raw, str) else raw
    return {"source": source, "position": position, "reason": reason, "raw": text[:10_000],
            "landed_at": datetime.now(UTC)}


def devices_message(get: Callable[[str], DeviceState | None], payload: dict[str, Any],
                    position: str, config: Config, rules: ChannelRules) -> StageOutput:
    """Device stage: raw events (sessions, normalisation) or identity answers."""
    out = StageOutput()
    emitted = DeviceOutput()
    states: dict[str, DeviceState] = {}

    def state_of(key: str) -> DeviceState:
        if key not in states:
            states[key] = get(key) or new_device(key)
        return states[key]

    for index, raw in enumerate(payload.get("events", [])):
        where = f"{position}#{index}"
        key = device_key(raw) if isinstance(raw, dict) else None
        try:
            if key is None:
                parse_event(raw)  # raises with the precise reason
                raise EventRejected([])  # pragma: no cover - parse_event always rejects here
            event, time = parse_event(raw)
        except EventRejected as exc:
            out.dead.append(_rejected(raw, str(exc) or "invalid event", where, "stream"))
            continue
        source = raw.get("source") if isinstance(raw.get("source"), str) else None
        try:
            on_event(state_of(key), event, time, config, rules, emitted, source)
        except Exception as exc:  # one event's failure must not take its envelope with it
            out.dead.append(_rejected(raw, f"event could not be processed: {exc!r}", where,
                                      "stream"))
    for raw in payload.get("updates", []):
        update = codec.update_from(raw)
        on_identity(state_of(update.id), update, config, emitted)
    for state in states.values():
        if state.last_time is not None:
            expire(state, state.last_time, config)
    out.states = dict(states)
    out.links = emitted.links
    out.deltas = [(key, codec.delta_to(delta)) for key, delta in emitted.journeys.items()]
    out.land("touches", (record_row(t) for t in emitted.new_touches))
    out.land("rejected", out.dead)
    return out


def identity_message(graph: IdentityGraph, links: list[IdentityLink]) -> StageOutput:
    """Identity stage: add links, answer every affected id on its device's partition."""
    out = StageOutput()
    updates = apply_links(graph, links)
    out.updates = [(u.id, codec.update_to(u)) for u in updates]
    # Monotone in processing order, so the `identities` view's "latest as_of wins" picks
    # the newest answer even when a link arrives with an older event time.
    as_of = graph.next_as_of() or datetime.now(UTC)
    out.land("identity_links", (record_row(link) for link in links))
    out.land("identity_map", ({"id": u.id, "person_key": u.person, "account_key": u.account,
                               "as_of": as_of} for u in updates))
    return out


def journeys_message(get: Callable[[str], JourneyState | None], deltas: list[dict[str, Any]],
                     config: Config) -> StageOutput:
    """Journey stage: apply deltas per journey, credit, emit credits and conversions."""
    out = StageOutput()
    states: dict[str, JourneyState] = {}
    result = JourneyOutput()
    for item in deltas:
        key = item["key"]
        if key not in states:
            states[key] = get(key) or JourneyState(key)
        on_delta(states[key], codec.delta_from(item), config, result)
    out.states = dict(states)
    out.land("credits", (record_row(c) for c in result.credits))
    out.land("conversions", (conversion_row(c, key) for c, key in result.conversions))
    return out

