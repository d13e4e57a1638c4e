"""Erasure of one person's (or account's) data from live stream state.

`attribution erase` puts an erase marker ``{"v": 1, "erase": {"id": ..., "ids": [...]}}`` on
every partition of the events topic. The devices agent that owns a partition scrubs its
devices there, then forwards the marker to every journeys partition and to the identity
partition, behind anything it already sent there for those ids (Kafka keeps order per
partition), so nothing in flight re-creates erased state. Each agent scrubs only the keys
of the partition it is processing, so the deletions (changelog tombstones) land on the
right changelog partition.

The scrub functions are pure: state in; ``None`` (delete the key), the same object
(unchanged) or a new state out.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from attribution.device import DeviceState, Page
from attribution.journey import JourneyState
from attribution.journeys import account_key, person_key
from schemas.contracts import JourneyConversion, JourneyTouch, Link
from streams.envelope import EnvelopeError, encode_body
from streams.producer import kafka_producer

ERASE = "erase"


def erase_marker(erasure_id: str, ids: Iterable[str]) -> bytes:
    return encode_body(erase={"id": erasure_id, "ids": sorted(set(ids))})


def marker_ids(payload: dict[str, Any]) -> frozenset[str]:
    """The ids of an erase marker; EnvelopeError if it is malformed."""
    body = payload.get(ERASE)
    ids = body.get("ids") if isinstance(body, dict) else None
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) and i for i in ids):
        raise EnvelopeError("erase marker needs a non-empty 'ids' list of strings")
    return frozenset(ids)


def mentions(record: JourneyConversion | JourneyTouch | Page, ids: frozenset[str]) -> bool:
    return bool({record.anonymous_id, record.person_id, record.account_id} & ids)


def journey_keys(ids: Iterable[str]) -> frozenset[str]:
    return frozenset(key for i in ids for key in (person_key(i), account_key(i)))


def scrub_device(key: str, state: DeviceState, ids: frozenset[str]) -> DeviceState | None:
    if key in ids or state.device in ids or state.person in ids:
        return None
    touches = {k: t for k, t in state.touches.items() if not mentions(t, ids)}
    conversions = {k: c for k, c in state.conversions.items() if not mentions(c.conversion, ids)}
    pages = [p for p in state.pages if not mentions(p, ids)]
    account = None if state.account in ids else state.account
    if (len(touches), len(conversions), len(pages), account) == (
            len(state.touches), len(state.conversions), len(state.pages), state.account):
        return state
    spans = {k: end for k, end in state.spans.items() if k in touches}
    return dataclasses.replace(state, touches=touches, conversions=conversions, account=account,
                               pages=pages, spans=spans)


def scrub_journey(key: str, state: JourneyState, ids: frozenset[str]) -> JourneyState | None:
    if key in journey_keys(ids):
        return None
    touches = {k: t for k, t in state.touches.items() if not mentions(t, ids)}
    conversions = {k: c for k, c in state.conversions.items() if not mentions(c.conversion, ids)}
    if len(touches) == len(state.touches) and len(conversions) == len(state.conversions):
        return state
    if not touches and not conversions:
        return None
    return dataclasses.replace(state, touches=touches, conversions=conversions)


def scrub_link(key: str, link: Link, ids: frozenset[str]) -> Link | None:
    return None if link.from_id in ids or link.to_id in ids else link


async def send_erase_marker(bootstrap: str, events_topic: str, partitions: int,
                            marker: bytes) -> None:
    """Put the marker on every partition of the events topic and wait for the acks."""
    producer = kafka_producer(bootstrap)
    await producer.start()
    try:
        sent = [await producer.send(events_topic, value=marker, partition=p)
                for p in range(partitions)]
        for future in sent:
            await future
    finally:
        await producer.stop()
