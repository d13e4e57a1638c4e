"""One Kafka message in, state changes and outgoing items out: the body of each agent.

Kept free of Faust so it is plain to read and test; ``streams.runner`` fetches state,
calls these, writes the touched state back once per message and sends the results.
"""

from __future__ import annotations

import reprlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import polars as pl

from attribution.channels import ChannelRules
from attribution.device import DeviceOutput, DeviceState, new_device, on_events, on_identity
from attribution.identity import IdentityGraph, apply_links
from attribution.journey import JourneyOutput, JourneyState, on_delta
from attribution.normalize import observe, raw_properties
from attribution.policy import Config
from schemas.contracts import IdentityUpdate, JourneyDelta, Link
from schemas.wire_columns import validate_batch
from streams.messages import (
    CONVERSION_COLUMNS,
    CREDIT_COLUMNS,
    IDENTITY_MAP_COLUMNS,
    TOUCH_COLUMNS,
    WITHDRAWAL_COLUMNS,
    Columns,
    Tables,
    columns,
    decode_updates,
    link_columns,
)

Row = dict[str, Any]
_US = timedelta(microseconds=1)
REJECTED_COLUMNS = ("source", "position", "reason", "raw")


@dataclass
class StageOutput:
    """Everything one message produces, grouped by destination."""

    states: dict[str, Any] = field(default_factory=dict)  # key -> new state, None: delete
    links: list[Link] = field(default_factory=list)
    deltas: list[tuple[str, JourneyDelta]] = field(default_factory=list)
    updates: list[IdentityUpdate] = field(default_factory=list)
    rows: Tables = field(default_factory=dict)  # warehouse table -> columns
    dead: list[Row] = field(default_factory=list)  # rejected input, for the dead-letter topic

    def land(self, table: str, cols: Columns) -> None:
        if cols and any(cols.values()):
            self.rows[table] = cols


def device_key(raw: Mapping[str, Any]) -> str | None:
    """The partition key of a raw event: anonymousId, else userId (as the producers route)."""
    for field_name in ("anonymousId", "userId"):
        value = raw.get(field_name)
        if isinstance(value, str) and value.strip():
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
    return None


def rejected_row(raw: Any, reason: str, position: str, source: str = "stream") -> Row:
    text = raw if isinstance(raw, str) else _as_text(raw)
    return {"source": source, "position": position, "reason": reason, "raw": text[:10_000],
            "landed_at": datetime.now(UTC)}


_SHORT = reprlib.Repr()  # Python 3.11's Repr takes its limits as attributes
_SHORT.maxlevel, _SHORT.maxstring, _SHORT.maxother = 8, 200, 200


def _as_text(raw: Any) -> str:
    """A rejected input as text, whatever it is (orjson writes at most 254 levels)."""
    if isinstance(raw, bytes):
        return raw[:10_000].decode(errors="replace")
    try:
        return orjson.dumps(raw, default=repr).decode()
    except (TypeError, orjson.JSONEncodeError):
        return _SHORT.repr(raw)[:10_000]


def _land_rejected(out: StageOutput) -> None:
    out.land("rejected", columns([tuple(r[c] for c in REJECTED_COLUMNS) for r in out.dead],
                                 REJECTED_COLUMNS))


def devices_message(get: Callable[[str], DeviceState | None],
                    payloads: Sequence[tuple[str, Mapping[str, Any]]], config: Config,
                    rules: ChannelRules, now_us: int | None = None,
                    watermark: int | None = None) -> StageOutput:
    """Device stage: raw events (validation, sessions, routing) or identity answers, from
    one or more consecutive messages (position, body) of one partition."""
    out = StageOutput()
    emitted = DeviceOutput()
    states: dict[str, DeviceState] = {}

    def state_of(key: str) -> DeviceState:
        if key not in states:
            states[key] = get(key) or new_device(key)
        return states[key]

    events: list[Any] = []
    positions: list[str] = []
    for position, payload in payloads:
        found = payload.get("events")
        if isinstance(found, list):
            events.extend(found)
            indexes = payload.get("indexes")  # places of the events a salvage kept
            if not (isinstance(indexes, list) and len(indexes) == len(found)):
                indexes = range(len(found))
            positions.extend(f"{position}#{index}" for index in indexes)
    if events:
        batch = validate_batch(events, now_us)
        for index, reason in batch.rejected:
            out.dead.append(rejected_row(events[index], reason, positions[index]))
        valid = batch.columns.with_columns(pl.Series("row", batch.index, dtype=pl.Int64))
        on_events(state_of, observe(valid, raw_properties(events), config, rules), config,
                  emitted, watermark)
    for _, payload in payloads:
        if "updates" in payload:
            for update in decode_updates(payload):
                on_identity(state_of(update.id), update, config, emitted)
    out.states = dict(states)
    out.links = emitted.links
    out.deltas = list(emitted.journeys.items())
    out.land("touches", columns(emitted.touches, TOUCH_COLUMNS))
    out.land("touch_withdrawals", columns(emitted.withdrawals, WITHDRAWAL_COLUMNS))
    _land_rejected(out)
    return out


def identity_message(graph: IdentityGraph, links: Sequence[Link]) -> StageOutput:
    """Identity stage: add links, answer every affected id on its device's partition."""
    out = StageOutput()
    out.updates = apply_links(graph, links)
    # Monotone in processing order, so the `identities` view's "latest as_of wins" picks
    # the newest answer even when a link arrives with an older event time.
    as_of = graph.next_as_of()
    if as_of is None:
        as_of = (datetime.now(UTC) - datetime(1970, 1, 1, tzinfo=UTC)) // _US
    out.land("identity_links", link_columns(links))
    out.land("identity_map", columns([(u.id, u.person, u.account, as_of) for u in out.updates],
                                     IDENTITY_MAP_COLUMNS))
    return out


def journeys_message(get: Callable[[str], JourneyState | None],
                     deltas: Sequence[tuple[str, JourneyDelta]], config: Config) -> StageOutput:
    """Journey stage: apply deltas per journey, credit, emit credits and conversions."""
    out = StageOutput()
    states: dict[str, JourneyState] = {}
    result = JourneyOutput()
    for key, delta in deltas:
        if key not in states:
            states[key] = get(key) or JourneyState(key)
        on_delta(states[key], delta, config, result)
    out.states = dict(states)
    out.land("credits", columns(result.credits, CREDIT_COLUMNS))
    out.land("conversions", columns([(*c, key) for c, key in result.conversions],
                                    CONVERSION_COLUMNS))
    return out

