"""What travels between the stages, column-oriented.

Every body is a JSON object of column lists (orjson), so each hop decodes a whole
message in one call and never builds a dict per item:

    identity  {"v":1, "links":   {"kind":[...], "from_id":[...], ...}}
    events    {"v":1, "updates": {"id":[...], "person":[...], "account":[...]}}
    journeys  {"v":1, "touches": {"key":[...], "reason":[...], "time":[...], ...},
                      "conversions": {...}, "retracted": {...}}
    landing   {"v":1, "rows": {"<table>": {"<column>": [...], ...}, ...}}

Times are epoch microseconds. A journey's delta is never split across messages (its
rows carry its key and reason); landing rows may be.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import orjson

from schemas.contracts import (
    CreditRow,
    IdentityUpdate,
    JourneyConversion,
    JourneyDelta,
    JourneyTouch,
    Link,
    Reason,
    RoutedConversion,
    TouchRow,
)
from streams.envelope import ENVELOPE_VERSION, EnvelopeError, bounded

Columns = dict[str, list[Any]]
Tables = dict[str, Columns]


def columns(rows: Sequence[tuple[Any, ...]], names: Sequence[str]) -> Columns:
    """Rows (tuples in ``names`` order) as columns."""
    if not rows:
        return {name: [] for name in names}
    return dict(zip(names, map(list, zip(*rows, strict=True)), strict=True))


def rows_of(cols: Mapping[str, list[Any]], names: Sequence[str]) -> list[tuple[Any, ...]]:
    """Columns back to rows, in ``names`` order; EnvelopeError when they do not line up."""
    try:
        lists = [cols[name] for name in names]
    except KeyError as exc:
        raise EnvelopeError(f"missing column {exc.args[0]!r}") from None
    if any(not isinstance(values, list) for values in lists):
        raise EnvelopeError("a column is not a list")
    if len({len(values) for values in lists}) > 1:
        raise EnvelopeError("columns of different lengths")
    return list(zip(*lists, strict=True))


def _dumps(body: Mapping[str, Any]) -> bytes:
    try:
        return orjson.dumps({"v": ENVELOPE_VERSION, **body})
    except orjson.JSONEncodeError as exc:
        raise EnvelopeError(f"envelope is not JSON-serialisable: {exc}") from exc


def _fields(kind: type[NamedTuple]) -> tuple[str, ...]:
    return kind._fields


# --- identity links and answers ---------------------------------------------------------------

LINK_FIELDS = _fields(Link)
UPDATE_FIELDS = ("id", "person", "account")


def encode_links(links: Sequence[Link]) -> bytes:
    return _dumps({"links": columns(links, LINK_FIELDS)})


def decode_links(payload: Mapping[str, Any]) -> list[Link]:
    return [Link._make(row) for row in rows_of(payload.get("links", {}), LINK_FIELDS)]


def encode_updates(updates: Sequence[IdentityUpdate]) -> bytes:
    return _dumps({"updates": columns(updates, UPDATE_FIELDS)})


def decode_updates(payload: Mapping[str, Any]) -> list[IdentityUpdate]:
    return [IdentityUpdate._make(row) for row in rows_of(payload["updates"], UPDATE_FIELDS)]


# --- journey deltas ------------------------------------------------------------------------------

TOUCH_FIELDS = ("key", "reason", *_fields(JourneyTouch))
CONVERSION_FIELDS = ("key", "reason", *_fields(JourneyConversion), "generation")
RETRACTED_FIELDS = ("key", "reason", "event_id")


def encode_deltas(deltas: Sequence[tuple[str, JourneyDelta]]) -> bytes:
    touches = [(key, d.reason, *t) for key, d in deltas for t in d.touches]
    conversions = [(key, d.reason, *r.conversion, r.generation) for key, d in deltas
                   for r in d.conversions]
    retracted = [(key, d.reason, e) for key, d in deltas for e in d.retracted]
    body: dict[str, Columns] = {"touches": columns(touches, TOUCH_FIELDS)}
    if conversions:
        body["conversions"] = columns(conversions, CONVERSION_FIELDS)
    if retracted:
        body["retracted"] = columns(retracted, RETRACTED_FIELDS)
    return _dumps(body)


def decode_deltas(payload: Mapping[str, Any]) -> list[tuple[str, JourneyDelta]]:
    """The deltas of a journeys message, one per journey key in order of first mention."""
    deltas: dict[str, JourneyDelta] = {}

    def delta(key: Any, reason: Any) -> JourneyDelta:
        if not isinstance(key, str):
            raise EnvelopeError("a journey key is not a string")
        found = deltas.get(key)
        if found is None:
            found = deltas[key] = JourneyDelta(reason=Reason(reason))
        return found

    for key, reason, *touch in rows_of(payload.get("touches", {}), TOUCH_FIELDS):
        delta(key, reason).touches.append(JourneyTouch._make(touch))
    if "conversions" in payload:
        for key, reason, *fields in rows_of(payload["conversions"], CONVERSION_FIELDS):
            routed = RoutedConversion(JourneyConversion._make(fields[:-1]), int(fields[-1]))
            delta(key, reason).conversions.append(routed)
    if "retracted" in payload:
        for key, reason, event_id in rows_of(payload["retracted"], RETRACTED_FIELDS):
            delta(key, reason).retracted.append(event_id)
    return list(deltas.items())


# --- landing rows ------------------------------------------------------------------------------

TOUCH_COLUMNS = _fields(TouchRow)
CREDIT_COLUMNS = _fields(CreditRow)
CONVERSION_COLUMNS = (*_fields(JourneyConversion), "journey_key")
LINK_COLUMNS = ("event_id", "time", "kind", "from_id", "to_id")
IDENTITY_MAP_COLUMNS = ("id", "person_key", "account_key", "as_of")
WITHDRAWAL_COLUMNS = ("event_id", "time", "revision", "withdrawn")


def link_columns(links: Sequence[Link]) -> Columns:
    return columns([(k.event_id, k.time, k.kind, k.from_id, k.to_id) for k in links],
                   LINK_COLUMNS)


def encode_rows(tables: Mapping[str, Columns]) -> bytes:
    return _dumps({"rows": tables})


def table_rows(tables: Mapping[str, Columns]) -> int:
    return sum(_height(cols) for cols in tables.values())


def _height(cols: Mapping[str, list[Any]]) -> int:
    return len(next(iter(cols.values()))) if cols else 0


def bounded_rows(tables: Mapping[str, Columns], limit: int) -> list[bytes]:
    """Landing messages of at most ``limit`` bytes (rows split in halves until they fit)."""
    data = encode_rows(tables)
    if len(data) <= limit:
        return [data]
    pairs = [(table, i) for table, cols in tables.items() for i in range(_height(cols))]

    def encode(chunk: Sequence[tuple[str, int]]) -> bytes:
        picked: dict[str, list[int]] = {}
        for table, i in chunk:
            picked.setdefault(table, []).append(i)
        return encode_rows({table: {name: [values[i] for i in rows]
                                    for name, values in tables[table].items()}
                            for table, rows in picked.items()})

    return bounded(pairs, encode, limit)


def bounded_items(items: Sequence[Any], encode: Callable[[Sequence[Any]], bytes],
                  limit: int) -> list[bytes]:
    """``bounded`` for any list of atomic items (deltas, links, updates)."""
    return bounded(items, encode, limit)


def merge_tables(parts: Iterable[Mapping[str, Any]]) -> Tables:
    """Landing bodies ({table: columns}, or {table: [row dicts]} from older senders)
    merged per table and column; EnvelopeError on anything else."""
    merged: Tables = {}
    for rows in parts:
        if not isinstance(rows, Mapping):
            raise EnvelopeError("'rows' must be an object")
        for table, cols in rows.items():
            if isinstance(cols, list):  # rows as dicts
                if not cols:
                    continue
                if not all(isinstance(r, dict) for r in cols):
                    raise EnvelopeError(f"rows of {table!r} are not objects")
                names = list(cols[0])
                cols = {name: [r.get(name) for r in cols] for name in names}
            if not isinstance(cols, Mapping):
                raise EnvelopeError(f"rows of {table!r} are neither columns nor a list")
            target = merged.setdefault(str(table), {})
            height = _height(target)
            for name, values in cols.items():
                if not isinstance(values, list):
                    raise EnvelopeError(f"column {name!r} of {table!r} is not a list")
                target.setdefault(name, [None] * height).extend(values)
            new_height = max((len(v) for v in target.values()), default=0)
            for values in target.values():
                values.extend([None] * (new_height - len(values)))
    return merged
