"""Tracking pixels: the 1x1 GIF answer and turning pixel requests into wire events.

Segment's pixel API, ``/v1/pixel/<type>``, in the forms its documentation gives:

* ``?data=<base64 JSON event>`` (standard or URL-safe alphabet, padding optional);
* ``?data=<JSON event>``, URL-encoded but not base64 ("the base64 encoding is optional");
* no ``data``: the event's fields as query parameters, nested ones by dotted names, e.g.
  ``?writeKey=K&userId=u&event=Email%20Opened&properties.subject=The%20Daily``
  (``properties[subject]`` is read the same way). Values stay strings.

And a plain ``/p.gif?event=...&anonymousId=...&utm_source=...`` for emails and ad
impressions, whose UTM parameters become ``context.campaign``.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

import orjson

from schemas.wire import EVENT_TYPES

# The classic 43-byte transparent 1x1 GIF89a.
TRANSPARENT_GIF = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff"
    b"!\xf9\x04\x01\x00\x00\x00\x00"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)
NO_CACHE_HEADERS = {
    "Cache-Control": "no-cache, no-store, must-revalidate, private, max-age=0",
    "Pragma": "no-cache",
    "Expires": "0",
}

UTM_FIELDS = {
    "utm_source": "source",
    "utm_medium": "medium",
    "utm_campaign": "name",
    "utm_term": "term",
    "utm_content": "content",
}
ID_FIELDS = ("anonymousId", "userId", "messageId", "groupId", "timestamp")
PAGE_FIELDS = {"url": "url", "referrer": "referrer", "title": "title", "path": "path"}
CONTROL_FIELDS = frozenset({"writeKey", "type", "event", "name", "data"})
# Nesting a dotted parameter name may ask for; the collector bounds events again later.
MAX_PARAM_DEPTH = 16


class PixelError(ValueError):
    """Why a pixel request produced no event; the reason is a short counter label."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


def decode_data(data: str) -> dict[str, Any]:
    """Decode the ``data`` parameter: base64 (standard or URL-safe, padding optional) JSON."""
    text = data.strip().replace(" ", "+")  # a "+" that went through form decoding
    text += "=" * (-len(text) % 4)
    try:
        raw = base64.b64decode(text.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        raise PixelError("bad_base64") from None
    try:
        event = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise PixelError("bad_json") from None
    if not isinstance(event, dict):
        raise PixelError("not_an_object")
    return event


def decode_json_data(data: str) -> dict[str, Any]:
    """The ``data`` parameter as plain (URL-decoded) JSON."""
    try:
        event = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise PixelError("bad_json") from None
    if not isinstance(event, dict):
        raise PixelError("not_an_object")
    return event


def event_from_data(event_type: str, data: str | None) -> dict[str, Any]:
    if event_type not in EVENT_TYPES:
        raise PixelError("unknown_type")
    if not data:
        raise PixelError("missing_data")
    # Base64 never starts with "{" (it is not in either alphabet): JSON sent as it is.
    event = decode_json_data(data) if data.lstrip().startswith("{") else decode_data(data)
    event["type"] = event_type
    return event


def _path(name: str) -> list[str]:
    """``properties.subject`` and ``properties[subject]`` -> ["properties", "subject"]."""
    if "[" in name and name.endswith("]"):
        head, _, rest = name.partition("[")
        return [head, *rest[:-1].split("][")]
    return name.split(".")


def event_from_params(event_type: str, params: Mapping[str, str]) -> dict[str, Any]:
    """Segment's unencoded pixel: the event's fields as query parameters, nested fields by
    dotted (or bracketed) names. A name that is both a value and a parent is refused."""
    if event_type not in EVENT_TYPES:
        raise PixelError("unknown_type")
    event: dict[str, Any] = {}
    for raw_name, value in params.items():
        # "&amp;" left encoded in a URL taken from HTML by a careless mailer: "amp;userId".
        path = _path(raw_name.removeprefix("amp;"))
        if len(path) > MAX_PARAM_DEPTH or any(not part for part in path):
            raise PixelError("bad_parameter_name")
        node = event
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise PixelError("conflicting_parameters")
            node = child
        if isinstance(node.get(path[-1]), dict):
            raise PixelError("conflicting_parameters")
        node[path[-1]] = value
    event["type"] = event_type
    return event


def event_from_query(params: Mapping[str, str]) -> dict[str, Any]:
    """A plain pixel: ``event`` makes it a track call, otherwise a page view.

    UTM fields go to ``context.campaign``, ``url``/``referrer``/``title`` to ``context.page``,
    every other parameter (click ids such as gclid included) to ``properties``.
    """
    event_name = params.get("event") or None
    event_type = params.get("type") or ("track" if event_name else "page")
    if event_type not in EVENT_TYPES:
        raise PixelError("unknown_type")
    event: dict[str, Any] = {"type": event_type}
    if event_name:
        event["event"] = event_name
    if params.get("name"):
        event["name"] = params["name"]
    campaign = {field: params[q] for q, field in UTM_FIELDS.items() if params.get(q)}
    page = {field: params[q] for q, field in PAGE_FIELDS.items() if params.get(q)}
    context: dict[str, Any] = {}
    if campaign:
        context["campaign"] = campaign
    if page:
        context["page"] = page
    event["context"] = context
    for field in ID_FIELDS:
        if params.get(field):
            event[field] = params[field]
    taken = CONTROL_FIELDS | set(ID_FIELDS) | set(PAGE_FIELDS)
    event["properties"] = {k: v for k, v in params.items() if k not in taken}
    return event
