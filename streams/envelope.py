"""Envelope codec: many items in one Kafka message.

Per-message framework cost dominates a Faust agent (~200 us a message), so the
pipeline ships items in envelopes ``{"v": 1, <body>}``: wire events
``{"v": 1, "events": [...]}`` from the collector, and the stages' own bodies
(``updates``, ``links``, ``deltas``, ``rows``) between agents (see streams/topics.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import orjson

ENVELOPE_VERSION = 1
# Kafka refuses messages over message.max.bytes (broker) / max.request.size (producer),
# 1 MB by default; envelopes are split to stay under this.
MAX_MESSAGE_BYTES = 900_000

T = TypeVar("T")


class EnvelopeError(ValueError):
    """The bytes are not a valid envelope; callers should dead-letter the message."""


def encode_body(**body: Any) -> bytes:
    """Serialise any envelope body, e.g. ``encode_body(deltas=[...])``."""
    try:
        return orjson.dumps({"v": ENVELOPE_VERSION, **body})
    except orjson.JSONEncodeError as error:
        raise EnvelopeError(f"envelope is not JSON-serialisable: {error}") from error


def decode_body(data: bytes) -> dict[str, Any]:
    """Parse an envelope of any body; raise EnvelopeError on anything malformed."""
    try:
        envelope = orjson.loads(data)
    except orjson.JSONDecodeError as error:
        raise EnvelopeError(f"envelope is not valid JSON: {error}") from error
    if not isinstance(envelope, dict):
        raise EnvelopeError(f"envelope must be a JSON object, got {type(envelope).__name__}")
    version = envelope.get("v")
    if version != ENVELOPE_VERSION:
        raise EnvelopeError(f"unsupported envelope version {version!r}")
    return envelope


def salvage_events(data: bytes) -> tuple[dict[str, Any], list[tuple[int, bytes, str]]] | None:
    """An events envelope orjson refused whole (one event with NaN, 1e999, bad UTF-8,
    nesting past 1024 levels), read event by event along its structure: the envelope with
    the readable events (``indexes`` keeps their places) and (index, raw, reason) of the
    rest. None when it is no events envelope or its structure itself is broken."""
    from streams.collector.decode import Broken, split_object

    try:
        members, elements = split_object(data, "events")
        version = orjson.loads(members.get("v", b"null"))
    except (Broken, orjson.JSONDecodeError):
        return None
    if elements is None or version != ENVELOPE_VERSION:
        return None
    events: list[Any] = []
    indexes: list[int] = []
    unreadable: list[tuple[int, bytes, str]] = []
    for index, raw in enumerate(elements):
        try:
            events.append(orjson.loads(raw))
            indexes.append(index)
        except orjson.JSONDecodeError as exc:
            unreadable.append((index, raw, f"invalid JSON: {exc}"))
    return {"v": ENVELOPE_VERSION, "events": events, "indexes": indexes}, unreadable


def encode_envelope(events: Sequence[Mapping[str, Any]]) -> bytes:
    """Serialise events (JSON objects) into one envelope."""
    try:
        return orjson.dumps({"v": ENVELOPE_VERSION, "events": list(events)})
    except orjson.JSONEncodeError as error:
        raise EnvelopeError(f"events are not JSON-serialisable: {error}") from error


def decode_envelope(data: bytes) -> list[dict[str, Any]]:
    """Parse an envelope and return its events; raise EnvelopeError on anything malformed."""
    events = decode_body(data).get("events")
    if not isinstance(events, list):
        raise EnvelopeError("envelope has no 'events' list")
    for index, event in enumerate(events):
        if not isinstance(event, dict):
            raise EnvelopeError(f"event {index} is a {type(event).__name__}, not an object")
    return events


def bounded(items: Sequence[T], encode: Callable[[Sequence[T]], bytes],
            limit: int) -> list[bytes]:
    """``encode(items)`` as one message, or split in halves until each message is at most
    ``limit`` bytes (Kafka refuses messages over the broker's and producer's maximum, 1 MB
    by default). Order is kept; one item alone over the limit stays a message of its own."""
    data = encode(items)
    if len(data) <= limit or len(items) <= 1:
        return [data]
    middle = len(items) // 2
    return bounded(items[:middle], encode, limit) + bounded(items[middle:], encode, limit)


def bounded_rows(rows: Mapping[str, Sequence[Any]], limit: int) -> list[bytes]:
    """A landing envelope ``{"rows": {table: [...]}}``, split like ``bounded`` only when it
    is over ``limit`` (the common case encodes once and builds nothing else)."""
    data = encode_body(rows=rows)
    if len(data) <= limit:
        return [data]
    pairs = [(table, row) for table, table_rows in rows.items() for row in table_rows]
    return bounded(pairs, lambda chunk: encode_body(rows=_by_table(chunk)), limit)


def _by_table(pairs: Sequence[tuple[str, Any]]) -> dict[str, list[Any]]:
    rows: dict[str, list[Any]] = {}
    for table, row in pairs:
        rows.setdefault(table, []).append(row)
    return rows


def batch_by_key(items: Iterable[tuple[str, T]], max_events: int) -> list[tuple[str, list[T]]]:
    """Group (key, item) pairs by key into chunks of at most max_events.

    Keys come out in order of first appearance, each key's chunks consecutively;
    items keep their order within a key.
    """
    if max_events < 1:
        raise ValueError(f"max_events must be at least 1, got {max_events}")
    by_key: dict[str, list[T]] = {}
    for key, item in items:
        by_key.setdefault(key, []).append(item)
    return [
        (key, grouped[start : start + max_events])
        for key, grouped in by_key.items()
        for start in range(0, len(grouped), max_events)
    ]
