"""The fast payload screen never lets through what the precise check rejects."""

from __future__ import annotations

import math
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.wire import MAX_DEPTH, _check_payload, _payload_ok

keys = st.sampled_from(["a", "price", "revenue", "quantity", "x" * 513, "b"])
scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.text(max_size=4),
                    st.floats(allow_nan=True, allow_infinity=True),
                    st.just("y" * 8193))
json_like = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(keys, inner, max_size=3)), max_leaves=40)


def _passes(value: Any) -> bool:
    try:
        _check_payload(value, "properties")
    except ValueError:
        return False
    return True


@settings(deadline=None, max_examples=400)
@given(st.dictionaries(keys, json_like, max_size=4))
def test_screen_agrees_with_the_precise_check(payload: dict[str, Any]) -> None:
    assert _payload_ok(payload) == _passes(payload)


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"k": value}
    return value


def test_depth_limit_is_the_same() -> None:
    for depth in range(MAX_DEPTH - 1, MAX_DEPTH + 3):
        assert _payload_ok(_nested(depth)) == _passes(_nested(depth)), depth


def test_unusual_types_go_to_the_precise_check() -> None:
    assert not _payload_ok({1: "non-string key"})
    assert _passes({1: "non-string key"})
    assert not _payload_ok({"a": math.inf})
