"""Land batches of rows as immutable Parquet files (the only way anything writes the warehouse).

Writers (batch replay, stream sink, spend import, re-attribution) call ``land()`` and never
open the DuckDB file, so any number of them, on any number of hosts, can run beside
analysts. ``land()`` splits a batch by the table's date column (``warehouse.layout.PARTITIONS``)
and writes one file per day, ``<table>/<column>=<day>/<name>.parquet``, each atomically (local:
temp file and rename; object storage: one PUT).

Delivery is at-least-once: the caller picks a deterministic batch ``name`` (the stream: a hash
of the batch's content; replay: a hash of its inputs plus the chunk index), so a retried
batch overwrites its own files with the same rows instead of adding copies. On object
storage, where there is no rename, that makes every file name content-addressed: a name is
only ever written with the same rows. Anything that still lands twice is removed by the
views' dedupe.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import Enum
from pathlib import Path
from typing import Any, TypeAlias

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from warehouse.layout import (
    AUTO_COLUMNS,
    EMPTY_FILE_NAME,
    PARTITIONS,
    TIMESTAMP,
    ensure_layout,
    file_key,
    landed,
    partition_of,
    schema_of,
)
from warehouse.storage import Root, Storage, storage_for

# ensure_layout is re-exported for writers
__all__ = ["LandedBatch", "Rows", "ensure_layout", "land", "land_batch", "land_tables"]

_BATCH_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._=-]{0,199}")
_RESERVED_NAME = EMPTY_FILE_NAME.removesuffix(".parquet")

Rows: TypeAlias = Sequence[Mapping[str, Any]] | pa.Table


@dataclass(frozen=True)
class LandedBatch:
    table: str
    name: str
    files: tuple[str, ...]  # one per day: absolute path or s3:// URL
    rows: int


def land(root: Root, table: str, rows: Rows, *, name: str, replace: bool = False) -> Path | None:
    """Write ``rows`` atomically, one file per day: ``root/table/<column>=<day>/<name>.parquet``.
    Returns the file of the batch's last day (its only file in the common case; see
    ``land_batch`` for all of them), None (no file) for zero rows. On object storage the
    Path holds the URL as ``Path`` keeps it (``s3:/bucket/key``).

    See ``land_batch`` for ``rows`` and ``replace``.
    """
    batch = land_batch(root, table, rows, name=name, replace=replace)
    return Path(batch.files[-1]) if batch is not None else None


def land_batch(root: Root, table: str, rows: Rows, *, name: str,
               replace: bool = False) -> LandedBatch | None:
    """Write ``rows`` atomically, one file per day: ``root/table/<column>=<day>/<name>.parquet``.
    None (no file) for zero rows.

    ``rows`` is a ``pa.Table`` (fast path) or dicts as produced by ``model_dump()`` of
    ``schemas.records`` models. Columns must match ``TABLES[table]`` exactly, except that
    ``landed_at`` is filled with the current time when left out.

    ``replace=True`` makes the batch replace every earlier batch of the same name, also on
    days this one has no rows for (a model's credits recomputed in full, for example); it
    lists the table, so the stream's frequent small batches do not use it.
    """
    storage = storage_for(root)
    batch, days = _land_all(storage, [(table, rows, name)])[0]
    if replace:
        _remove_other_days(storage, table, name, days)
    return batch if batch.files else None


def land_tables(root: Root, batches: Sequence[tuple[str, Rows, str]]) -> list[LandedBatch]:
    """Land several (table, rows, name) batches as ``land_batch`` does, written together so
    their files pay for durability once (a stream flush lands every table it has rows for).
    Each file is atomic; a crash part-way leaves some of the batches landed, which a
    re-landing of the same names completes. Batches without rows are left out."""
    landed = _land_all(storage_for(root), batches)
    return [batch for batch, _days in landed if batch.files]


def _land_all(storage: Storage, batches: Sequence[tuple[str, Rows, str]]
              ) -> list[tuple[LandedBatch, set[date]]]:
    files: list[tuple[str, pa.Table]] = []
    landed = []
    for table, rows, name in batches:
        schema = schema_of(table)
        _check_batch_name(name)
        if isinstance(rows, pa.Table):
            arrow = _conform_table(rows, table, schema)
        else:
            arrow = (_table_from_dicts(rows, table, schema) if len(rows)
                     else schema.empty_table())
        days = split_by_day(arrow, table)
        keys = [file_key(table, day, name) for day, _part in days]
        files.extend(zip(keys, (part for _day, part in days), strict=True))
        landed.append((LandedBatch(table, name, tuple(map(storage.file_url, keys)),
                                   arrow.num_rows), {day for day, _part in days}))
    storage.write_parquet_many(files)
    return landed


def split_by_day(arrow: pa.Table, table: str) -> list[tuple[date, pa.Table]]:
    """The rows of each UTC day of the table's partition column, in their original order."""
    if arrow.num_rows == 0:
        return []
    column = arrow.column(PARTITIONS[table].source)
    days = column if pa.types.is_date(column.type) else pc.cast(column, pa.date32())
    distinct = pc.unique(days).to_pylist()
    if len(distinct) == 1:
        return [(distinct[0], arrow)]
    return [(day, arrow.filter(pc.equal(days, pa.scalar(day, pa.date32()))))
            for day in sorted(distinct)]


def _remove_other_days(storage: Storage, table: str, name: str, days: set[date]) -> None:
    for info in landed(storage, table):
        if info.name == f"{name}.parquet" and partition_of(info.key) not in days:
            storage.delete(info.key)


def _check_batch_name(name: str) -> None:
    if not _BATCH_NAME.fullmatch(name) or name == _RESERVED_NAME or name.endswith(".parquet"):
        raise ValueError(
            f"invalid batch name {name!r}: use letters, digits, '.', '_', '-', '=' "
            "(no leading dot, no '.parquet' suffix, not the reserved empty-file name)"
        )


def _check_columns(given: Sequence[str], table: str, schema: pa.Schema) -> None:
    expected = set(schema.names)
    unknown = [column for column in given if column not in expected]
    if unknown:
        raise ValueError(f"unknown column(s) for table {table!r}: {', '.join(unknown)}")
    missing = [c for c in schema.names if c not in given and c not in AUTO_COLUMNS]
    if missing:
        raise ValueError(f"missing column(s) for table {table!r}: {', '.join(missing)}")


def _check_nulls(column: pa.Array | pa.ChunkedArray, field: pa.Field, table: str) -> None:
    if not field.nullable and column.null_count > 0:
        raise ValueError(f"column {field.name!r} of table {table!r} must not contain nulls")


def _landing_time_column(num_rows: int) -> pa.Array:
    return pa.array([datetime.now(UTC)] * num_rows, type=TIMESTAMP)


def _conform_table(rows: pa.Table, table: str, schema: pa.Schema) -> pa.Table:
    """Check and cast a caller's Arrow table to the table's schema (column order included)."""
    _check_columns(rows.column_names, table, schema)
    columns = []
    for field in schema:
        if field.name not in rows.column_names:  # an auto column
            columns.append(_landing_time_column(rows.num_rows))
            continue
        column = rows.column(field.name)
        if pa.types.is_timestamp(field.type) and pa.types.is_timestamp(column.type):
            if column.type.tz is None:
                raise ValueError(
                    f"column {field.name!r} of table {table!r} is a timestamp without a time "
                    "zone; convert it to UTC (tz-aware) before landing"
                )
            safe = False  # ns -> us truncation is expected, not an error
        else:
            safe = True
        try:
            column = column.cast(field.type, safe=safe)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as error:
            raise ValueError(
                f"column {field.name!r} of table {table!r}: cannot cast {column.type} to "
                f"{field.type}: {error}"
            ) from error
        _check_nulls(column, field, table)
        columns.append(column)
    return pa.Table.from_arrays(columns, schema=schema)


def _table_from_dicts(rows: Sequence[Mapping[str, Any]], table: str, schema: pa.Schema) -> pa.Table:
    first_keys = list(rows[0].keys())
    _check_columns(first_keys, table, schema)
    key_set = set(first_keys)
    for position, row in enumerate(rows):
        if row.keys() != key_set:
            try:
                _check_columns(list(row.keys()), table, schema)
            except ValueError as error:
                raise ValueError(f"row {position}: {error}") from None
            raise ValueError(
                f"row {position} has columns {sorted(row.keys())}, row 0 has {sorted(key_set)}"
            )
    columns = []
    for field in schema:
        if field.name not in key_set:  # an auto column
            columns.append(_landing_time_column(len(rows)))
            continue
        column = _column_from_values([row[field.name] for row in rows], field, table)
        _check_nulls(column, field, table)
        columns.append(column)
    return pa.Table.from_arrays(columns, schema=schema)


def _column_from_values(values: list[Any], field: pa.Field, table: str) -> pa.Array:
    where = f"column {field.name!r} of table {table!r}"
    if pa.types.is_timestamp(field.type):
        # pyarrow would read a naive datetime as UTC without a word
        for value in values:
            if value is not None and (not isinstance(value, datetime) or value.tzinfo is None):
                raise ValueError(f"{where}: {value!r} is no timezone-aware datetime")
    elif pa.types.is_date(field.type):
        # a datetime is a date subclass; landing its date part would silently drop the time
        for value in values:
            if isinstance(value, datetime):
                raise ValueError(f"{where}: {value!r} is no plain date")
    try:  # fast path: most columns hold values Arrow takes as they are
        return pa.array(values, type=field.type)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        pass
    try:
        return pa.array([_to_arrow_value(value) for value in values], type=field.type)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
        raise ValueError(f"{where}: {error}") from error


def _to_arrow_value(value: Any) -> Any:
    """What ``model_dump()`` leaves for Arrow to choke on: enums, and dicts/lists for JSON text."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict | list):
        # sorted keys: a re-landed duplicate is byte-identical, so the views' dedupe holds
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    return value
