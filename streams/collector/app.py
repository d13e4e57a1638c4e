"""HTTP routes of the Segment-compatible collector (aiohttp).

Request path for tracking calls: read the body (size limits, gzip) -> JSON -> write key
-> rate limit -> per event: size, bot filter, enrichment (type, messageId, receivedAt,
source), privacy scrub, ``parse_event`` -> group by target partition of the device key
(anonymousId, else userId) -> one envelope per partition -> produce and wait for the
broker's ack -> answer. Envelopes per partition rather than per key amortise the stream's
per-message cost (~200 us a Kafka message in a Faust agent) over many devices.
"""

from __future__ import annotations

import base64
import binascii
import logging
import time
import uuid
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from schemas.wire import EventRejected, parse_event
from streams.collector.bots import BotFilter
from streams.collector.pixel import (
    NO_CACHE_HEADERS,
    TRANSPARENT_GIF,
    PixelError,
    event_from_data,
    event_from_query,
)
from streams.collector.privacy import scrub_event
from streams.collector.producer import BrokerUnavailable, EnvelopeSink
from streams.collector.ratelimit import RateLimiter
from streams.collector.settings import CollectorSettings
from streams.collector.stats import CollectorStats
from streams.envelope import encode_envelope
from streams.routing import group_by_partition
from streams.stages import device_key

log = logging.getLogger(__name__)

ENVELOPE_MAX_EVENTS = 500
# Full and analytics.js short paths (analytics.js posts to /v1/t, /v1/p, ... and /v1/b).
SINGLE_PATHS = {
    "track": "track", "t": "track", "page": "page", "p": "page", "identify": "identify",
    "i": "identify", "group": "group", "g": "group", "alias": "alias", "a": "alias",
    "screen": "screen", "s": "screen",
}
BATCH_PATHS = ("batch", "b", "import")
BATCH_DEFAULT_FIELDS = ("sentAt", "context", "integrations")
CORS_ALLOW_HEADERS = "Content-Type, Authorization, Content-Encoding, X-Retry-Count"


class RequestError(Exception):
    """A request refused as a whole; becomes a JSON error response."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None):
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        super().__init__(message)

    def response(self) -> web.Response:
        body = {"success": False, "code": self.code, "message": self.message}
        return json_response(body, status=self.status, headers=self.headers)


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None
                  ) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, headers=headers,
                        content_type="application/json")


class CollectorState:
    """Everything a request needs; ``reload`` swaps settings without a restart."""

    def __init__(self, settings: CollectorSettings, producer: EnvelopeSink):
        self.producer = producer
        self.stats = CollectorStats()
        self.settings = settings.with_defaults_filled()
        self.bots = BotFilter(self.settings.bot_patterns())
        self.limiter = RateLimiter(self.settings.rate_limit)

    def reload(self, settings: CollectorSettings) -> None:
        """Apply new settings; an unset salt or empty key list keeps the current ones."""
        keep: dict[str, Any] = {}
        if settings.email_salt is None:
            keep["email_salt"] = self.settings.email_salt
        if not settings.write_keys:
            keep["write_keys"] = self.settings.write_keys
        new = settings.model_copy(update=keep) if keep else settings
        if new.rate_limit != self.settings.rate_limit:
            self.limiter = RateLimiter(new.rate_limit)
        self.bots = BotFilter(new.bot_patterns())
        self.settings = new

    def source_of(self, write_key: str | None) -> str | None:
        return self.settings.write_keys.get(write_key) if write_key else None

    def origin_allowed(self, origin: str) -> bool:
        origins = self.settings.cors_origins
        return "*" in origins or origin in origins

    @property
    def salt(self) -> str | None:
        return self.settings.email_salt if self.settings.hash_emails else None


STATE = web.AppKey("collector_state", CollectorState)


# --- reading requests ---------------------------------------------------------------


async def read_body(request: web.Request, limit: int) -> bytes:
    """The request body, decompressed, refused with 413 past ``limit`` bytes either way."""
    too_large = RequestError(413, "too_large", f"body is larger than {limit} bytes")
    if request.content_length is not None and request.content_length > limit:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    body = b"".join(chunks)
    encoding = request.headers.get("Content-Encoding", "").strip().lower()
    # aiohttp may already have inflated it (auto_decompress); only inflate real gzip/zlib.
    if encoding in ("gzip", "x-gzip", "deflate") and body[:1] in (b"\x1f", b"\x78"):
        body = _inflate(body, limit)
    elif encoding not in ("", "identity", "gzip", "x-gzip", "deflate"):
        raise RequestError(415, "unsupported_encoding", f"Content-Encoding {encoding!r} is not "
                           "supported; use gzip or none")
    return body


def _inflate(body: bytes, limit: int) -> bytes:
    inflater = zlib.decompressobj(wbits=47)  # gzip or zlib header, detected
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise RequestError(400, "bad_encoding", f"body is not valid gzip: {exc}") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise RequestError(413, "too_large", f"decompressed body is larger than {limit} bytes")
    if not inflater.eof:
        raise RequestError(400, "bad_encoding", "gzip body is truncated")
    return out


def parse_json_object(body: bytes) -> dict[str, Any]:
    if not body.strip():
        raise RequestError(400, "bad_json", "body is empty; expected a JSON object")
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise RequestError(400, "bad_json", f"body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise RequestError(400, "bad_json", "body must be a JSON object")
    return data


def basic_auth_user(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "basic" or not token:
        return None
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user = decoded.partition(":")[0]
    return user or None


def client_ip(request: web.Request, trust_forwarded_for: bool) -> str | None:
    if trust_forwarded_for:
        forwarded = request.headers.get("X-Forwarded-For", "")
        first = forwarded.split(",")[0].strip()
        if first:
            return first
    return request.remote


def utc_now_iso(now: datetime) -> str:
    return now.isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --- accepting events -----------------------------------------------------------------


@dataclass
class Outcome:
    accepted: int = 0
    dropped: int = 0  # bot traffic, answered 200 on purpose
    rejected: list[dict[str, Any]] | None = None

    def body(self) -> dict[str, Any]:
        return {"success": True, "accepted": self.accepted, "dropped": self.dropped,
                "rejected": self.rejected or []}


def _reject(state: CollectorState, outcome: Outcome, index: int, errors: list[dict[str, str]]
            ) -> None:
    for err in errors:
        state.stats.reject(err["field"])
    if outcome.rejected is None:
        outcome.rejected = []
    outcome.rejected.append({"index": index, "errors": errors})


def prepare_event(state: CollectorState, raw: dict[str, Any], source: str, received_at: str,
                  ip: str | None) -> dict[str, Any]:
    """Collector enrichment of one wire event (before validation)."""
    event = dict(raw)
    event.pop("writeKey", None)
    if not event.get("messageId"):
        event["messageId"] = str(uuid.uuid4())
    event["receivedAt"] = received_at
    event["source"] = source
    return scrub_event(event, ip, state.salt)


async def accept_events(state: CollectorState, request: web.Request, raws: list[Any],
                        source: str, event_type: str | None) -> Outcome:
    """Validate, enrich and produce; raises BrokerUnavailable if the broker did not ack."""
    settings = state.settings
    received = datetime.now(UTC)
    received_at = utc_now_iso(received)
    ip = client_ip(request, settings.trust_forwarded_for)
    agent = request.headers.get("User-Agent")
    outcome = Outcome()
    keyed: list[tuple[str, dict[str, Any]]] = []
    for index, raw in enumerate(raws):
        if not isinstance(raw, dict):
            _reject(state, outcome, index, [{"field": "(event)",
                                             "reason": "an event must be a JSON object"}])
            continue
        if len(orjson.dumps(raw)) > settings.max_event_bytes:
            reason = f"event is larger than {settings.max_event_bytes} bytes"
            _reject(state, outcome, index, [{"field": "(event)", "reason": reason}])
            continue
        if state.bots.event_is_bot(raw, agent):
            outcome.dropped += 1
            state.stats.bot(source)
            continue
        if event_type is not None:
            raw = {**raw, "type": event_type}
        event = prepare_event(state, raw, source, received_at, ip)
        try:
            parse_event(event, now=received)
        except EventRejected as exc:
            _reject(state, outcome, index, [e.model_dump() for e in exc.errors])
            continue
        key = device_key(event)  # the stream's own routing key, computed the same way
        if key is None:  # parse_event demands an id; never send what the stream would refuse
            _reject(state, outcome, index, [{"field": "anonymousId",
                                             "reason": "anonymousId or userId is required"}])
            continue
        keyed.append((key, event))
    if keyed:
        partitions = await state.producer.partitions(settings.topic)
        messages = [(partition, encode_envelope(chunk)) for partition, chunk
                    in group_by_partition(keyed, partitions, ENVELOPE_MAX_EVENTS)]
        await state.producer.send_all(settings.topic, messages)
    outcome.accepted = len(keyed)
    state.stats.accept(source, outcome.accepted)
    return outcome


def _write_key_source(state: CollectorState, request: web.Request, body: dict[str, Any]
                      ) -> tuple[str, str]:
    """(write key, source name) of the request, or 401."""
    key = basic_auth_user(request)
    if key is None and isinstance(body.get("writeKey"), str):
        key = body["writeKey"]
    source = state.source_of(key)
    if source is None:
        message = "unknown write key" if key else "missing write key (basic auth user or writeKey)"
        raise RequestError(401, "unauthorized", message)
    assert key is not None
    return key, source


def _rate_limit(state: CollectorState, source_key: str, events: int) -> None:
    wait = state.limiter.take(source_key, events)
    if wait > 0:
        raise RequestError(429, "rate_limited", f"too many events for this write key; retry in "
                           f"{wait:.1f}s", {"Retry-After": RateLimiter.retry_after_header(wait)})


def _unavailable(state: CollectorState, exc: BrokerUnavailable) -> RequestError:
    return RequestError(503, "unavailable", f"events not stored, retry later: {exc}",
                        {"Retry-After": str(state.settings.retry_after_seconds)})


# --- handlers -------------------------------------------------------------------------


async def handle_single(request: web.Request) -> web.Response:
    state = request.app[STATE]
    event_type = SINGLE_PATHS[request.match_info["kind"]]
    try:
        body = parse_json_object(await read_body(request, state.settings.max_event_bytes))
        write_key, source = _write_key_source(state, request, body)
        _rate_limit(state, write_key, 1)
        try:
            outcome = await accept_events(state, request, [body], source, event_type)
        except BrokerUnavailable as exc:
            raise _unavailable(state, exc) from None
    except RequestError as err:
        return err.response()
    if outcome.rejected:
        errors = outcome.rejected[0]["errors"]
        detail = "; ".join(f"{e['field']}: {e['reason']}" for e in errors)
        return json_response({"success": False, "code": "invalid_event",
                              "message": f"invalid event: {detail}", "errors": errors}, status=400)
    return json_response(outcome.body())


async def handle_batch(request: web.Request) -> web.Response:
    state = request.app[STATE]
    try:
        body = parse_json_object(await read_body(request, state.settings.max_batch_bytes))
        write_key, source = _write_key_source(state, request, body)
        batch = body.get("batch")
        if not isinstance(batch, list):
            raise RequestError(400, "bad_batch", "body must have a \"batch\" array of events")
        # Fields SDKs put once on the batch apply to every event that lacks them.
        defaults = {f: body[f] for f in BATCH_DEFAULT_FIELDS if f in body}
        events = [{**defaults, **e} if isinstance(e, dict) else e for e in batch]
        _rate_limit(state, write_key, len(events))
        try:
            outcome = await accept_events(state, request, events, source, None)
        except BrokerUnavailable as exc:
            raise _unavailable(state, exc) from None
    except RequestError as err:
        return err.response()
    return json_response(outcome.body())


async def handle_pixel(request: web.Request) -> web.Response:
    """Always a GIF: a pixel in an email cannot show an error; problems are counted."""
    state = request.app[STATE]
    try:
        await _pixel_event(state, request)
    except PixelError as exc:
        state.stats.pixel_error(exc.reason)
    except BrokerUnavailable:
        state.stats.pixel_error("broker_unavailable")
    except RequestError as exc:
        state.stats.pixel_error(exc.code)
    except Exception:  # whatever happens, the image is served
        log.exception("pixel request failed")
        state.stats.pixel_error("internal")
    return web.Response(body=TRANSPARENT_GIF, content_type="image/gif", headers=NO_CACHE_HEADERS)


async def _pixel_event(state: CollectorState, request: web.Request) -> None:
    query = request.query
    if "kind" in request.match_info:
        event = event_from_data(request.match_info["kind"], query.get("data"))
    else:
        event = event_from_query({k: query[k] for k in query})
    key = query.get("writeKey") or event.get("writeKey")
    if not isinstance(key, str) or not key:
        raise PixelError("missing_write_key")
    source = state.source_of(key)
    if source is None:
        raise PixelError("unknown_write_key")
    _rate_limit(state, key, 1)
    outcome = await accept_events(state, request, [event], source, None)
    if outcome.rejected:
        raise PixelError("invalid_event")


async def handle_project_settings(request: web.Request) -> web.Response:
    """Just enough of the Segment CDN settings for analytics.js 2.0 to talk only to us."""
    state = request.app[STATE]
    write_key = request.match_info["write_key"]
    if state.source_of(write_key) is None:
        return RequestError(404, "not_found", "unknown write key").response()
    public = state.settings.public_url
    base = public.rstrip("/") if public else f"{request.scheme}://{request.host}"
    protocol, _, host = base.partition("://")
    api_host = f"{host}/v1"
    settings = {
        "integrations": {
            "Segment.io": {
                "apiKey": write_key,
                "apiHost": api_host,
                "protocol": protocol,
                "unbundledIntegrations": [],
                "addBundledMetadata": True,
                "maybeBundledConfigIds": {},
                "versionSettings": {"version": "4.4.7", "componentTypes": ["browser"]},
            }
        },
        "plan": {
            "track": {"__default": {"enabled": True, "integrations": {}}},
            "identify": {"__default": {"enabled": True}},
            "group": {"__default": {"enabled": True}},
        },
        "edgeFunction": {},
        "analyticsNextEnabled": True,
        "middlewareSettings": {},
        "enabledMiddleware": {},
        "metrics": {"sampleRate": 0, "host": api_host},
        "legacyVideoPluginsEnabled": False,
        "remotePlugins": [],
    }
    return json_response(settings, headers={"Cache-Control": "no-cache"})


async def handle_client_metrics(request: web.Request) -> web.Response:
    """analytics.js's own telemetry (/v1/m): accepted and ignored."""
    return json_response({"success": True})


async def handle_healthz(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


async def handle_metrics(request: web.Request) -> web.Response:
    """Prometheus exposition of this collector's registry (see streams.collector.stats)."""
    body = generate_latest(request.app[STATE].stats.registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def handle_readyz(request: web.Request) -> web.Response:
    state = request.app[STATE]
    if await state.producer.ready():
        return json_response({"status": "ready"})
    return json_response({"status": "broker unreachable"}, status=503,
                         headers={"Retry-After": str(state.settings.retry_after_seconds)})


# --- middleware -----------------------------------------------------------------------

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def cors_and_stats(request: web.Request, handler: Handler) -> web.StreamResponse:
    state = request.app[STATE]
    started = time.perf_counter()
    origin = request.headers.get("Origin")
    allowed = origin is not None and state.origin_allowed(origin)
    response: web.StreamResponse
    if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
        if allowed:
            response = web.Response(status=204, headers={
                "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
                "Access-Control-Allow-Headers": request.headers.get(
                    "Access-Control-Request-Headers", CORS_ALLOW_HEADERS),
                "Access-Control-Max-Age": "86400",
            })
        else:
            response = RequestError(403, "origin_not_allowed", "origin not allowed").response()
    else:
        try:
            response = await handler(request)
        except web.HTTPException as exc:  # 404 / 405 from routing
            response = RequestError(exc.status, "http_error", exc.reason).response()
    if allowed:
        assert origin is not None
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Credentials"] = "true"
        response.headers["Access-Control-Expose-Headers"] = "Retry-After"
    response.headers["Vary"] = "Origin"
    route = request.match_info.route  # labelled by handler: "/v1/{kind}" serves two
    name: object = getattr(route.handler, "__name__", None) if route.resource else None
    state.stats.request(response.status, str(name).removeprefix("handle_") if name else None,
                        time.perf_counter() - started)
    return response


def create_app(settings: CollectorSettings, producer: EnvelopeSink) -> web.Application:
    """The collector application; ``app[STATE]`` holds settings, stats and ``reload``."""
    app = web.Application(middlewares=[cors_and_stats],
                          client_max_size=settings.max_batch_bytes + 1024)
    app[STATE] = CollectorState(settings, producer)
    kinds = "|".join(SINGLE_PATHS)
    batches = "|".join(BATCH_PATHS)
    app.router.add_post(f"/v1/{{kind:(?:{kinds})}}", handle_single)
    app.router.add_post(f"/v1/{{kind:(?:{batches})}}", handle_batch)
    app.router.add_post("/v1/m", handle_client_metrics)
    app.router.add_get("/v1/pixel/{kind}", handle_pixel)
    app.router.add_get("/p.gif", handle_pixel)
    app.router.add_get("/v1/projects/{write_key}/settings", handle_project_settings)
    app.router.add_get("/healthz", handle_healthz)
    app.router.add_get("/readyz", handle_readyz)
    app.router.add_get("/metrics", handle_metrics)
    return app
