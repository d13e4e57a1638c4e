"""Splitting envelopes under Kafka's message size limit: nothing lost, order kept."""

from __future__ import annotations

from collections.abc import Sequence

import orjson
from hypothesis import given
from hypothesis import strategies as st

from streams.envelope import bounded, bounded_rows, decode_body, encode_body


def encode_items(items: Sequence[str]) -> bytes:
    return encode_body(items=list(items))


@given(st.lists(st.text(max_size=300), max_size=60), st.integers(min_value=64, max_value=4000))
def test_split_messages_keep_every_item_in_order_under_the_limit(
        items: list[str], limit: int) -> None:
    messages = bounded(items, encode_items, limit)
    decoded = [decode_body(m)["items"] for m in messages]
    assert [item for part in decoded for item in part] == items
    for message, part in zip(messages, decoded, strict=True):
        assert len(message) <= limit or len(part) <= 1  # one item alone cannot be split


def test_a_small_batch_stays_one_message() -> None:
    items = ["a", "b", "c"]
    assert bounded(items, encode_items, 1000) == [encode_items(items)]


def test_an_oversized_batch_is_halved_until_it_fits() -> None:
    items = ["x" * 100] * 10  # about 1,050 bytes as one envelope
    messages = bounded(items, encode_items, 400)
    assert len(messages) == 4  # 10 -> 5 + 5 -> (2 + 3) + (2 + 3)
    assert all(len(m) <= 400 for m in messages)
    assert sum(len(orjson.loads(m)["items"]) for m in messages) == 10


@given(st.dictionaries(st.sampled_from(["touches", "credits", "conversions"]),
                       st.lists(st.integers(-10**9, 10**9), min_size=1, max_size=80),
                       max_size=3),
       st.integers(min_value=64, max_value=600))
def test_landing_rows_split_by_size_keep_every_row_of_every_table(
        rows: dict[str, list[int]], limit: int) -> None:
    messages = bounded_rows(rows, limit)
    merged: dict[str, list[int]] = {}
    for message in messages:
        for table, table_rows in decode_body(message)["rows"].items():
            merged.setdefault(table, []).extend(table_rows)
    assert merged == rows
    if len(encode_body(rows=rows)) <= limit:
        assert len(messages) == 1
