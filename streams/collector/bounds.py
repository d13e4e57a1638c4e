"""Nesting bounds, checked on a raw event before anything walks or serialises it.

orjson refuses to serialise past 255 levels and to parse past 1024, and the privacy scrub
recurses; an event nested deeper than any valid one is refused here, by an iterative walk
that cannot overflow, with the top-level field at fault.
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


def too_deep_field(event: dict[str, Any], limit: int = MAX_EVENT_DEPTH) -> str | None:
    """The first top-level field through which ``event`` nests deeper than ``limit`` levels
    (the event itself is level 1), or None."""
    for key, value in event.items():
        if type(value) in _CONTAINERS and nesting(value, limit - 1) > limit - 1:
            return str(key)
    return None
