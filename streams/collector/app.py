"""HTTP routes of the Segment-compatible collector (aiohttp).

Request path for tracking calls: read the body (size and time limits, gzip, see
``reading``) -> JSON -> write key -> rate limit -> topics as declared (``topic_guard``) ->
per event: checks, enrichment, privacy scrub, validation and encoding (``accept``) ->
one envelope per target partition -> produce and wait for the broker's ack -> answer.

Answers, as the SDKs read them (segment-analytics-python and analytics.js retry 5xx, 408
and 429 and drop other 4xx; rudder-sdk-python drops 408 too): 200 once the broker has
acknowledged every stored event, invalid events of a batch listed in ``rejected`` (as
Segment: 200, the invalid events dropped); 400 for bad JSON and oversize bodies (Segment's
codes), 401 for an unknown write key, 408 for a body that does not arrive in time, 429
and 503 with ``Retry-After`` when retrying later will work. Nothing is answered 5xx after
the broker acknowledged it, so a retry never re-sends what was stored (and if a 503
follows a partial store, the retried events keep their messageId and the stream dedupes).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from streams.collector.accept import accept_events, ensure_topics
from streams.collector.pixel import (
    NO_CACHE_HEADERS,
    TRANSPARENT_GIF,
    PixelError,
    event_from_data,
    event_from_params,
    event_from_query,
)
from streams.collector.producer import EnvelopeSink
from streams.collector.ratelimit import RateLimiter
from streams.collector.reading import (
    RequestError,
    basic_auth_user,
    json_response,
    parse_batch,
    parse_json_object,
    read_body,
)
from streams.collector.settings import CollectorSettings
from streams.collector.state import STATE, CollectorState

log = logging.getLogger(__name__)

# Full and analytics.js short paths (analytics.js posts to /v1/t, /v1/p, ... and /v1/b).
SINGLE_PATHS = {
    "track": "track", "t": "track", "page": "page", "p": "page", "identify": "identify",
    "i": "identify", "group": "group", "g": "group", "alias": "alias", "a": "alias",
    "screen": "screen", "s": "screen",
}
BATCH_PATHS = ("batch", "b", "import")
BATCH_DEFAULT_FIELDS = ("sentAt", "context", "integrations")
CORS_ALLOW_HEADERS = "Content-Type, Authorization, Content-Encoding, X-Retry-Count"

__all__ = ["STATE", "CollectorState", "create_app"]


def _write_key_source(state: CollectorState, request: web.Request, body: dict[str, Any]
                      ) -> tuple[str, str]:
    """(write key, source name) of the request, or 401.

    Segment answers 200 to an unknown key and drops the events; a 401 is refused the same
    way by every SDK (no retry) but shows up in their error callbacks and logs.
    """
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
        seconds = RateLimiter.retry_after_header(wait)
        # Segment sends both; analytics.js before 1.80 read only X-RateLimit-Reset.
        raise RequestError(429, "rate_limited", f"too many events for this write key; retry "
                           f"in {wait:.1f}s", {"Retry-After": seconds,
                                              "X-RateLimit-Reset": seconds})


async def _body(request: web.Request, state: CollectorState, limit: int) -> bytes:
    return await read_body(request, limit, state.settings.body_timeout.total_seconds())


# --- handlers -------------------------------------------------------------------------


async def handle_single(request: web.Request) -> web.Response:
    state = request.app[STATE]
    event_type = SINGLE_PATHS[request.match_info["kind"]]
    try:
        body = parse_json_object(await _body(request, state, state.settings.max_event_bytes))
        write_key, source = _write_key_source(state, request, body)
        _rate_limit(state, write_key, 1)
        outcome = await accept_events(state, request, [body], source, event_type)
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
        known_key = state.source_of(basic_auth_user(request)) is not None
        body, batch = parse_batch(await _body(request, state, state.settings.max_batch_bytes),
                                  split=known_key)
        write_key, source = _write_key_source(state, request, body)
        # Fields SDKs put once on the batch apply to every event that lacks them.
        defaults = {f: body[f] for f in BATCH_DEFAULT_FIELDS if f in body}
        events = [{**defaults, **e} if isinstance(e, dict) else e for e in batch]
        _rate_limit(state, write_key, len(events))
        outcome = await accept_events(state, request, events, source, None)
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
    except RequestError as exc:
        state.stats.pixel_error("broker_unavailable" if exc.status == 503 else exc.code)
    except Exception:  # whatever happens, the image is served
        log.exception("pixel request failed")
        state.stats.pixel_error("internal")
    return web.Response(body=TRANSPARENT_GIF, content_type="image/gif", headers=NO_CACHE_HEADERS)


async def _pixel_event(state: CollectorState, request: web.Request) -> None:
    query = request.query
    params = {k: query[k] for k in query}  # a repeated parameter: its first value
    if "kind" not in request.match_info:
        event = event_from_query(params)
    elif "data" in params:
        event = event_from_data(request.match_info["kind"], params["data"])
    else:
        event = event_from_params(request.match_info["kind"], params)
    key = params.get("writeKey") or event.get("writeKey")
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
    """Ready: the broker answers and the events topic is as declared (checked now if the
    last check is stale)."""
    state = request.app[STATE]
    retry = {"Retry-After": str(state.settings.retry_after_seconds)}
    if not await state.producer.ready():
        return json_response({"status": "broker unreachable"}, status=503, headers=retry)
    try:
        await ensure_topics(state)
    except RequestError as err:
        return json_response({"status": "topics not as declared", "detail": err.message},
                             status=503, headers=retry)
    return json_response({"status": "ready"})


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
        if "X-Retry-Count" in request.headers:  # SDKs number their retries
            state.stats.retried()
        try:
            response = await handler(request)
        except web.HTTPException as exc:  # 404 / 405 from routing
            response = RequestError(exc.status, "http_error", exc.reason).response()
    if allowed:
        assert origin is not None
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Credentials"] = "true"
        response.headers["Access-Control-Expose-Headers"] = "Retry-After, X-RateLimit-Reset"
    response.headers["Vary"] = "Origin"
    route = request.match_info.route  # labelled by handler: "/v1/{kind}" serves two
    name: object = getattr(route.handler, "__name__", None) if route.resource else None
    state.stats.request(response.status, str(name).removeprefix("handle_") if name else None,
                        time.perf_counter() - started)
    return response


async def _watch_topics(app: web.Application) -> AsyncIterator[None]:
    """Check the topics now and every ``topic_check_interval`` while the app runs."""
    state = app[STATE]
    task = asyncio.create_task(
        state.topics.watch(state.settings.topic_check_interval.total_seconds(), first=0.0))
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def create_app(settings: CollectorSettings, producer: EnvelopeSink) -> web.Application:
    """The collector application; ``app[STATE]`` holds settings, stats and ``reload``."""
    app = web.Application(middlewares=[cors_and_stats],
                          client_max_size=settings.max_batch_bytes + 1024)
    app[STATE] = CollectorState(settings, producer)
    app.cleanup_ctx.append(_watch_topics)
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
