"""Reading a tracking request: body (size limit, time limit, gzip), JSON, write key, address.

Status codes follow Segment's HTTP Tracking API where it defines them: a body over its
limit and JSON that cannot be read are 400, with ``{"success": false, "code", "message"}``
(the fields the SDKs read from an error). A body that does not arrive within
``body_timeout`` is 408 and the connection is closed.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import zlib
from datetime import datetime
from typing import Any

import orjson
from aiohttp import web

from streams.collector.decode import read_batch


class RequestError(Exception):
    """A request refused as a whole; becomes a JSON error response."""

    def __init__(self, status: int, code: str, message: str,
                 headers: dict[str, str] | None = None, close: bool = False):
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.close = close  # close the connection after answering (e.g. an unread body)
        super().__init__(message)

    def response(self) -> web.Response:
        body = {"success": False, "code": self.code, "message": self.message}
        response = json_response(body, status=self.status, headers=self.headers)
        if self.close:
            response.force_close()
        return response


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None
                  ) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, headers=headers,
                        content_type="application/json")


def too_large(limit: int, what: str = "body") -> RequestError:
    # Segment answers 400 (not 413) over its size limits; no SDK retries either.
    return RequestError(400, "too_large", f"{what} is larger than {limit} bytes")


async def read_body(request: web.Request, limit: int, timeout: float) -> bytes:
    """The request body, decompressed; 400 past ``limit`` bytes either way, 408 when it
    has not fully arrived ``timeout`` seconds after its headers."""
    try:
        async with asyncio.timeout(timeout):
            return await _read_body(request, limit)
    except TimeoutError:
        raise RequestError(408, "timeout", f"the body did not arrive within {timeout:g}s",
                           close=True) from None


async def _read_body(request: web.Request, limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
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
        raise too_large(limit, "decompressed body")
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


def parse_batch(body: bytes, split: bool = True) -> tuple[dict[str, Any], list[Any]]:
    """A batch body: (the body's members, its events). With ``split``, events whose JSON
    cannot be read are ``decode.Unreadable`` (rejected one by one) and 400 is only for a
    body whose structure is broken. (Splitting costs up to ~100x orjson's parse, so the
    collector offers it only to requests whose auth header names a known write key.)"""
    try:
        data = parse_json_object(body)
    except RequestError as error:
        parts = read_batch(body) if split and error.code == "bad_json" and body.strip() \
            else None
        if parts is None:
            raise
        return parts
    batch = data.get("batch")
    if not isinstance(batch, list):
        raise RequestError(400, "bad_batch", "body must have a \"batch\" array of events")
    return data, batch


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
