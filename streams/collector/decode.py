"""Request bodies as JSON, so that one event's unreadable JSON is that event's rejection.

orjson parses the whole body: the fast path. When it refuses a batch (one event with a
``NaN`` or ``Infinity``, which Python SDKs send for ``float("nan")``; ``1e999``; invalid
UTF-8; nesting past orjson's 1024 levels), the body is split along its structure instead:
each element of ``"batch"`` is parsed on its own, and only the elements that do not parse
become rejections, with the reason. A body whose structure itself is broken (truncated,
unbalanced) is refused whole, as Segment does (400).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson

from streams.collector.bounds import MAX_EVENT_DEPTH

# Strings (escapes included) and the structural characters; everything else (numbers,
# literals, whitespace) lies between tokens and is skipped.
_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"|[{}\[\],:]', re.DOTALL)
_OPEN = frozenset(b"{[")
_CLOSE = frozenset(b"}]")


@dataclass(frozen=True)
class Unreadable:
    """A batch element that is not usable JSON; rejected with ``reason``."""

    reason: str


class Broken(ValueError):
    """The body's structure cannot be followed."""


def split_object(body: bytes, array_member: str
                 ) -> tuple[dict[str, bytes], list[bytes] | None]:
    """The raw value of each top-level member of a JSON object, and the raw elements of the
    array member ``array_member`` (left out of the members; None if there is no such
    array). Broken if the structure is."""
    if not body.startswith(b"{"):
        raise Broken("not an object")
    members: dict[str, bytes] = {}
    elements: list[bytes] = []
    stack: list[int] = []
    name: str | None = None
    value_start = element_start = -1
    in_array = is_array_member = seen_array = False

    def end_member(end: int) -> None:
        raw = body[value_start:end] if value_start >= 0 else b""
        if name is None and value_start < 0 and not raw.strip():
            return  # "{}"
        if name is None or not raw.strip():
            raise Broken("a member has no name or no value")
        if not is_array_member:
            members[name] = raw

    def end_element(end: int, last: bool) -> None:
        raw = body[element_start:end]
        if raw.strip():
            elements.append(raw)
        elif not last or elements:  # "[,1]", "[1,,2]", "[1,]"
            raise Broken("an array element is empty")

    for match in _TOKEN.finditer(body):
        token = match.group()
        kind = token[0]
        depth = len(stack)
        if kind == ord('"'):
            if depth == 1 and name is None and value_start < 0:
                name = _member_name(token)
        elif kind in _OPEN:
            if depth == 1 and name == array_member and kind == ord("[") and (
                    value_start >= 0 and not body[value_start:match.start()].strip()):
                in_array = is_array_member = seen_array = True
                element_start = match.end()
            stack.append(kind)
        elif kind in _CLOSE:
            if not stack or stack.pop() != (ord("{") if kind == ord("}") else ord("[")):
                raise Broken("brackets do not match")
            if depth == 2 and in_array:
                end_element(match.start(), last=True)
                in_array = False
            elif depth == 1:
                end_member(match.start())
                if match.end() != len(body.rstrip()):
                    raise Broken("data after the object")
                return members, elements if seen_array else None
        elif kind == ord(":") and depth == 1:
            if name is None or value_start >= 0:
                raise Broken("a colon out of place")
            value_start = match.end()
        elif kind == ord(",") and depth == 2 and in_array:
            end_element(match.start(), last=False)
            element_start = match.end()
        elif kind == ord(",") and depth == 1:
            end_member(match.start())
            name, value_start, is_array_member = None, -1, False
    raise Broken("the object is not closed")


def _member_name(token: bytes) -> str:
    try:
        name = orjson.loads(token)
    except orjson.JSONDecodeError as exc:
        raise Broken(f"a member name is not valid JSON: {exc}") from None
    assert isinstance(name, str)
    return name


def element_depth(raw: bytes, stop_above: int) -> int:
    """Container nesting of a raw JSON value, from its structure alone."""
    depth = deepest = 0
    for match in _TOKEN.finditer(raw):
        kind = match.group()[0]
        if kind in _OPEN:
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > stop_above:
                    return deepest
        elif kind in _CLOSE:
            depth -= 1
    return deepest


def read_element(raw: bytes) -> Any:
    """One batch element: its value, or Unreadable with the reason."""
    if element_depth(raw, MAX_EVENT_DEPTH) > MAX_EVENT_DEPTH:
        return Unreadable(f"nested deeper than {MAX_EVENT_DEPTH} levels")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return Unreadable(f"not valid JSON: {exc}")


def read_batch(body: bytes) -> tuple[dict[str, Any], list[Any]] | None:
    """(other members, batch elements) of a batch body orjson refused, elements that do
    not parse as Unreadable; None if the body cannot be split (then it is bad JSON)."""
    try:
        raw_members, raw_elements = split_object(body.strip(), "batch")
    except Broken:
        return None
    if raw_elements is None:
        return None  # no "batch" array: refused as the bad JSON it is
    members: dict[str, Any] = {}
    for name, raw in raw_members.items():
        try:
            members[name] = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return None  # e.g. a broken batch-wide context: nothing can be applied
    return members, [read_element(raw) for raw in raw_elements]
