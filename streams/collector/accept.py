"""Accepting a request's events: each one checked, enriched and encoded on its own, then
grouped into one envelope per target partition and produced.

Per event, in this order (each step bounded by the ones before it): unreadable JSON or not
an object -> nesting depth (``bounds``, before anything recurses or serialises) -> size ->
bot filter -> enrichment (type, messageId, receivedAt, source) and privacy scrub ->
``parse_event`` -> device key -> encoding. Any exception in these steps, foreseen or not,
is that event's rejection with a reason; the other events of the request proceed.
Envelopes per partition rather than per key amortise the stream's per-message cost
(~200 us a Kafka message in a Faust agent) over many devices.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web

from schemas.wire import EventRejected, FieldError, parse_event
from streams.collector.bounds import MAX_EVENT_DEPTH, too_deep_field
from streams.collector.decode import Unreadable
from streams.collector.privacy import scrub_event
from streams.collector.producer import BrokerUnavailable
from streams.collector.reading import RequestError, client_ip, utc_now_iso
from streams.collector.state import CollectorState
from streams.envelope import ENVELOPE_VERSION
from streams.routing import group_by_partition
from streams.stages import device_key
from streams.topic_guard import TopicCheckFailed

log = logging.getLogger(__name__)

ENVELOPE_MAX_EVENTS = 500
# Fields a client's retry changes; left out of a derived messageId.
_RETRY_VARYING = ("sentAt", "writeKey", "messageId", "receivedAt")

FieldErrors = list[dict[str, str]]


@dataclass
class Outcome:
    accepted: int = 0
    dropped: int = 0  # bot traffic, answered 200 on purpose
    rejected: list[dict[str, Any]] = field(default_factory=list)

    def body(self) -> dict[str, Any]:
        return {"success": True, "accepted": self.accepted, "dropped": self.dropped,
                "rejected": self.rejected}


@dataclass(frozen=True)
class Request:
    """What every event of one request shares."""

    source: str
    received: datetime
    ip: str | None
    agent: str | None
    event_type: str | None  # set by single-call endpoints (/v1/track, ...)
    received_at: str = ""  # ``received`` as the wire writes it

    @classmethod
    def of(cls, source: str, ip: str | None, agent: str | None, event_type: str | None
           ) -> Request:
        received = datetime.now(UTC)
        return cls(source, received, ip, agent, event_type, utc_now_iso(received))


def derived_message_id(raw: dict[str, Any], source: str) -> str | None:
    """A messageId for an event sent without one, the same on every retry of that event:
    a UUID from its content (what a retry changes left out). Only for timestamped events:
    two identical untimed calls are two events, not a retry. None: make a random one."""
    if not raw.get("timestamp") and not raw.get("originalTimestamp"):
        return None
    content = {k: v for k, v in raw.items() if k not in _RETRY_VARYING}
    digest = hashlib.sha256(source.encode() + b"\0" +
                            orjson.dumps(content, option=orjson.OPT_SORT_KEYS)).digest()
    return str(uuid.UUID(bytes=digest[:16], version=5))


def prepare_event(state: CollectorState, raw: dict[str, Any], request: Request
                  ) -> dict[str, Any]:
    """Collector enrichment of one wire event (before validation)."""
    event = dict(raw)
    event.pop("writeKey", None)
    if not event.get("messageId"):
        event["messageId"] = derived_message_id(raw, request.source) or str(uuid.uuid4())
    event["receivedAt"] = request.received_at
    event["source"] = request.source
    return scrub_event(event, request.ip, state.email_secret)


class Dropped(Exception):
    """A bot's event: answered 200 and counted, not stored."""


def _problem(field_name: str, reason: str) -> EventRejected:
    return EventRejected([FieldError(field=field_name, reason=reason)])


def accept_one(state: CollectorState, raw: Any, request: Request) -> tuple[str, bytes]:
    """(device key, encoded event) of a storable event; EventRejected with the reasons,
    or Dropped for a bot."""
    if isinstance(raw, Unreadable):
        raise _problem("(event)", raw.reason)
    if not isinstance(raw, dict):
        raise _problem("(event)", "an event must be a JSON object")
    deep = too_deep_field(raw)
    if deep is not None:
        raise _problem(deep, f"nested deeper than {MAX_EVENT_DEPTH} levels")
    limit = state.settings.max_event_bytes
    if len(orjson.dumps(raw)) > limit:
        raise _problem("(event)", f"event is larger than {limit} bytes")
    if state.bots.event_is_bot(raw, request.agent):
        raise Dropped
    if request.event_type is not None:
        raw = {**raw, "type": request.event_type}
    event = prepare_event(state, raw, request)
    parse_event(event, now=request.received)
    key = device_key(event)  # the stream's own routing key, computed the same way
    if key is None:  # parse_event demands an id; never send what the stream would refuse
        raise _problem("anonymousId", "anonymousId or userId is required")
    return key, orjson.dumps(event)


def envelope(encoded_events: list[bytes]) -> bytes:
    """``encode_envelope`` of events already encoded one by one (same bytes)."""
    return b'{"v":%d,"events":[%b]}' % (ENVELOPE_VERSION, b",".join(encoded_events))


async def ensure_topics(state: CollectorState) -> int:
    """The events topic's partition count, once it is known to be as declared; else 503."""
    try:
        found = await state.topics.current()
    except TopicCheckFailed as exc:
        raise unavailable(state, f"cannot check topic {state.settings.topic!r}: {exc}") from None
    if found:
        raise unavailable(state, "; ".join(str(p) for p in found))
    partitions = state.topics.expected[state.settings.topic]
    assert partitions is not None
    return partitions


def unavailable(state: CollectorState, why: str) -> RequestError:
    return RequestError(503, "unavailable", f"events not stored, retry later: {why}",
                        {"Retry-After": str(state.settings.retry_after_seconds)})


async def accept_events(state: CollectorState, http: web.Request, raws: list[Any],
                        source: str, event_type: str | None) -> Outcome:
    """Check, enrich and produce; 503 (RequestError) unless the broker took everything."""
    partitions = await ensure_topics(state)
    request = Request.of(source, client_ip(http, state.settings.trust_forwarded_for),
                         http.headers.get("User-Agent"), event_type)
    outcome = Outcome()
    keyed: list[tuple[str, bytes]] = []
    for index, raw in enumerate(raws):
        try:
            keyed.append(accept_one(state, raw, request))
        except Dropped:
            outcome.dropped += 1
            state.stats.bot(source)
        except EventRejected as exc:
            reject(state, outcome, index, [e.model_dump() for e in exc.errors])
        except Exception as exc:  # a case nothing above foresaw: this event only
            log.exception("event %d of a request could not be handled", index)
            state.stats.event_error()
            reject(state, outcome, index, [{"field": "(event)", "reason":
                                            f"could not be handled ({type(exc).__name__})"}])
    if keyed:
        messages = [(partition, envelope(chunk)) for partition, chunk
                    in group_by_partition(keyed, partitions, ENVELOPE_MAX_EVENTS)]
        try:
            suspicious = await state.producer.send_all(state.settings.topic, messages)
        except BrokerUnavailable as exc:
            raise unavailable(state, str(exc)) from None
        if suspicious:  # acked into a new log, or into nothing: only a check can tell
            state.topics.invalidate()
            await ensure_topics(state)
    outcome.accepted = len(keyed)
    state.stats.accept(source, outcome.accepted)
    return outcome


def reject(state: CollectorState, outcome: Outcome, index: int, errors: FieldErrors) -> None:
    for err in errors:
        state.stats.reject(err["field"])
    outcome.rejected.append({"index": index, "errors": errors})
