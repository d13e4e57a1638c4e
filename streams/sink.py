"""Sink: land rows from the landing topic as immutable Parquet, idempotently.

Landing messages carry columns (``streams.messages``), so a batch becomes Arrow arrays
column by column, never a dict per row. A batch's file name is a hash of the messages
it was built from, so a batch re-read after a crash (at-least-once) overwrites the
identical file; batches cut differently overlap and the views dedupe them. Offsets are
committed only after the files are in place. A malformed message is dropped with a log
line and a metric: it must not stop the sink (its producer already dead-lettered input).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from streams.envelope import EnvelopeError, decode_body, encode_body
from warehouse.landing import land_tables
from warehouse.layout import AUTO_COLUMNS, TABLES

log = logging.getLogger("attribution.sink")
Row = dict[str, Any]


class Landing:
    """Where the sink lands, and how many malformed parts it dropped."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.dropped = 0


def arrow_part(table: str, rows: Any) -> pa.Table:
    """One message's rows of one table (columns, or row objects from older senders) as an
    Arrow table of the table's schema; ValueError if they do not fit it."""
    schema = TABLES.get(table)
    if schema is None:
        raise ValueError(f"unknown table {table!r}")
    if isinstance(rows, list):
        rows = _columns_of_dicts(table, rows)
    if not isinstance(rows, Mapping):
        raise ValueError(f"rows of {table!r} are neither columns nor a list")
    height = len(next(iter(rows.values()))) if rows else 0
    arrays = []
    for field in schema:
        values = rows.get(field.name)
        if values is None:
            if field.name not in AUTO_COLUMNS:
                raise ValueError(f"{table}: missing column {field.name!r}")
            values = [datetime.now(UTC)] * height
        if not isinstance(values, list) or len(values) != height:
            raise ValueError(f"{table}: column {field.name!r} does not line up")
        try:
            array = pa.array(values, type=field.type)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError) as exc:
            raise ValueError(f"{table}: column {field.name!r}: {exc}") from None
        if not field.nullable and array.null_count:
            raise ValueError(f"{table}: column {field.name!r} has nulls")
        arrays.append(array)
    return pa.Table.from_arrays(arrays, schema=schema)


def _converters(table: str) -> dict[str, Callable[[str], Any]]:
    out: dict[str, Callable[[str], Any]] = {}
    for field in TABLES[table]:
        if pa.types.is_timestamp(field.type):
            out[field.name] = datetime.fromisoformat
        elif pa.types.is_date(field.type):
            out[field.name] = date.fromisoformat
    return out


def _columns_of_dicts(table: str, rows: list[Any]) -> dict[str, list[Any]]:
    """Row objects with ISO text times (the spend import's messages) as columns."""
    if not all(isinstance(row, dict) for row in rows):
        raise ValueError(f"rows of {table!r} are not objects")
    converters = _converters(table)
    names = {name for row in rows for name in row}
    cols: dict[str, list[Any]] = {}
    for name in names:
        parse = converters.get(name)
        values = [row.get(name) for row in rows]
        if parse is not None:
            try:
                values = [parse(v) if isinstance(v, str) else v for v in values]
            except ValueError as exc:
                raise ValueError(f"{table}: column {name!r}: {exc}") from None
        cols[name] = values
    return cols


def land_batch(landing: Landing, batch: Sequence[bytes]) -> dict[str, int]:
    """Land every table's rows of a batch of landing messages; returns rows per table.
    Raises OSError if the disk refuses (the caller retries)."""
    landed, dropped = land_messages(landing.root, batch)
    for reason in dropped:
        log.error("dropping malformed landing message: %s", reason)
    landing.dropped += len(dropped)
    return landed


def land_messages(root: Path, batch: Sequence[bytes]) -> tuple[dict[str, int], list[str]]:
    """``land_batch`` as a plain function (it runs in the landing process): rows landed
    per table, and why each malformed message was dropped."""
    parts: dict[str, list[pa.Table]] = {}
    digests: dict[str, Any] = {}
    dropped: list[str] = []
    for data in batch:
        try:
            rows = decode_body(data).get("rows", {})
            if not isinstance(rows, Mapping):
                raise EnvelopeError("'rows' must be an object")
            decoded = {str(table): arrow_part(str(table), cols) for table, cols in rows.items()}
        except (EnvelopeError, ValueError) as exc:
            dropped.append(str(exc))
            continue
        for table, part in decoded.items():
            if part.num_rows:
                parts.setdefault(table, []).append(part)
                digests.setdefault(table, hashlib.blake2b(table.encode(), digest_size=12)
                                   ).update(data)
    tables = {table: pa.concat_tables(parts[table]) for table in sorted(parts)}
    land_tables(root, [(table, arrow, f"stream-{digests[table].hexdigest()}")
                       for table, arrow in tables.items()])
    return {table: arrow.num_rows for table, arrow in tables.items()}, dropped


def land_rows(root: Path, rows_by_table: Mapping[str, Any]) -> dict[str, int]:
    """One landing body's rows ({table: columns or row objects}) landed as the sink does."""
    return land_batch(Landing(root), [encode_body(rows=dict(rows_by_table))])
