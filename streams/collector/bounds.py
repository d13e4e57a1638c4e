"""Nesting bounds, checked on a raw event before anything walks or serialises it.

orjson refuses to serialise past 255 levels and to parse past 1024, and the privacy scrub
recurses; an event nested deeper than any valid one is refused here, with the top-level
field at fault, by a walk that goes at most ``limit`` levels down (so it cannot overflow
whatever the input's depth).
"""

from __future__ import annotations

from typing import Any

from schemas.wire import MAX_DEPTH

# The event object, then properties/traits/context, then their content, which the wire
# format bounds at MAX_DEPTH levels below them: nothing valid nests deeper than this.
MAX_EVENT_DEPTH = MAX_DEPTH + 2
_CONTAINERS = (dict, list)


def nesting(value: Any, stop_above: int) -> int:
    """Levels of containers in ``value`` (a scalar: 0, ``{}``: 1, ``{"a": []}``: 2), counted
    without recursion; stops counting once past ``stop_above``."""
    if type(value) not in _CONTAINERS:
        return 0
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if level > deepest:
            deepest = level
            if deepest > stop_above:
                return deepest
        for child in item.values() if type(item) is dict else item:
            if type(child) in _CONTAINERS:
                stack.append((child, level + 1))
    return deepest


def deeper_than(value: Any, limit: int) -> bool:
    """True when ``value`` has more than ``limit`` levels of containers. Recurses at most
    ``limit`` + 1 calls deep, whatever the value's depth (faster than an explicit stack on
    the usual shallow event, which this runs on for every event)."""
    kind = type(value)
    if kind is not dict and kind is not list:
        return False
    if limit <= 0:
        return True
    for child in value.values() if kind is dict else value:
        child_kind = type(child)
        if (child_kind is dict or child_kind is list) and deeper_than(child, limit - 1):
            return True
    return False


def too_deep_field(event: dict[str, Any], limit: int = MAX_EVENT_DEPTH) -> str | None:
    """The first top-level field through which ``event`` nests deeper than ``limit`` levels
    (the event itself is level 1), or None."""
    for key, value in event.items():
        if deeper_than(value, limit - 1):
            return str(key)
    return None
