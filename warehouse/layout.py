"""On-disk layout of the warehouse: one directory of immutable Parquet files per table.

    ROOT/
      warehouse.duckdb            views only (see warehouse.views); never opened by writers
      touches/00000000-empty.parquet   schema-only file, so views bind before any data lands
      touches/<batch name>.parquet     landed batches (see warehouse.landing)
      ...

Readers glob ``*.parquet``; files being written carry the suffix ``.parquet.tmp`` and a
leading dot, so a crash mid-write never leaves a partial file that readers can see.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

TIMESTAMP = pa.timestamp("us", tz="UTC")

EMPTY_FILE_NAME = "00000000-empty.parquet"
"""Schema-only file in every table directory; matches the readers' ``*.parquet`` glob."""

TEMP_SUFFIX = ".parquet.tmp"

AUTO_COLUMNS = frozenset({"landed_at"})
"""Columns that ``land()`` fills with the landing time when the caller leaves them out."""


def _field(name: str, type_: pa.DataType, *, nullable: bool = False) -> pa.Field:
    return pa.field(name, type_, nullable=nullable)


def _str(name: str, *, nullable: bool = False) -> pa.Field:
    return _field(name, pa.string(), nullable=nullable)


TABLES: dict[str, pa.Schema] = {
    "touches": pa.schema(
        [
            _str("event_id"),
            _field("time", TIMESTAMP),
            _str("anonymous_id", nullable=True),
            _str("person_id", nullable=True),
            _str("account_id", nullable=True),
            _str("channel"),
            _str("source", nullable=True),
            _str("medium", nullable=True),
            _str("campaign", nullable=True),
            _str("kind"),
            _str("properties"),  # JSON text
        ]
    ),
    "conversions": pa.schema(
        [
            _str("conversion_id"),
            _str("event_id"),
            _field("time", TIMESTAMP),
            _str("kind"),
            _str("event"),
            _str("policy"),
            _field("value", pa.float64()),
            _str("currency", nullable=True),
            _str("anonymous_id", nullable=True),
            _str("person_id", nullable=True),
            _str("account_id", nullable=True),
            _str("journey_key", nullable=True),  # not on schemas.records.Conversion; caller adds it
            _str("properties"),  # JSON text
        ]
    ),
    "credits": pa.schema(
        [
            _str("conversion_id"),
            _str("conversion_kind"),
            _str("journey_key"),
            _str("policy"),
            _str("model"),
            _str("touch_event_id", nullable=True),  # null: the conversion had no eligible touch
            _field("touch_time", TIMESTAMP, nullable=True),
            _str("channel"),
            _str("campaign", nullable=True),
            _field("credit", pa.float64()),
            _field("credited_value", pa.float64()),
            _str("currency", nullable=True),
            _field("conversion_time", TIMESTAMP),
            _field("version", pa.int64()),
            _str("reason"),
        ]
    ),
    "datadriven_fit": pa.schema(  # per channel: a data-driven model against its landed rows
        [
            _str("policy"),
            _str("model"),
            _str("channel"),
            _field("weight", pa.float64()),
            _field("model_conversions", pa.float64()),
            _field("credit", pa.float64()),
            _field("conversions_gap", pa.float64()),
            _field("conversions_on_path", pa.float64()),
            _field("model_value", pa.float64()),
            _field("credited_value", pa.float64()),
            _field("value_gap", pa.float64()),
            _field("value_on_path", pa.float64()),
            _field("fitted", pa.bool_()),
            _field("landed_at", TIMESTAMP),  # auto-filled; the view keeps the last run's rows
        ]
    ),
    "identity_links": pa.schema(
        [
            _str("event_id"),
            _field("time", TIMESTAMP),
            _str("kind"),
            _str("from_id"),
            _str("to_id"),
        ]
    ),
    "identity_map": pa.schema(
        [
            _str("id"),
            _str("person_key"),
            _str("account_key", nullable=True),
            _field("as_of", TIMESTAMP),
        ]
    ),
    "spend": pa.schema(
        [
            _field("date", pa.date32()),
            _str("channel"),
            _str("campaign", nullable=True),
            _field("cost", pa.float64()),
            _field("impressions", pa.int64()),
            _field("clicks", pa.int64()),
            _str("currency"),
            _field("landed_at", TIMESTAMP),  # auto-filled; the `spend` view keeps the last landed
        ]
    ),
    "rejected": pa.schema(
        [
            _str("source"),  # file name / topic
            _str("position", nullable=True),  # line number / offset
            _str("reason"),
            _str("raw"),
            _field("landed_at", TIMESTAMP),  # auto-filled
        ]
    ),
    "touch_withdrawals": pa.schema(  # visit touches a later re-cut of sessions withdrew
        [
            _str("event_id"),
            _field("revision", pa.int64()),  # the latest row per touch holds
            _field("withdrawn", pa.bool_()),  # false: a session start again
        ]
    ),
    "erasures": pa.schema(  # audit of `attribution erase`: counts only, never the ids
        [
            _str("erasure_id"),
            _field("requested_at", TIMESTAMP),
            _str("subject"),  # user_id | anonymous_id | account_id
            _field("ids_erased", pa.int64()),
            _str("rows_removed"),  # JSON text: table -> rows removed
            _field("files_rewritten", pa.int64()),
            _field("stream_state", pa.bool_()),  # live stream state erased too
            _field("landed_at", TIMESTAMP),  # auto-filled
        ]
    ),
}


def schema_of(table: str) -> pa.Schema:
    try:
        return TABLES[table]
    except KeyError:
        known = ", ".join(TABLES)
        raise ValueError(f"unknown warehouse table {table!r} (known: {known})") from None


def table_dir(root: Path, table: str) -> Path:
    schema_of(table)
    return root / table


def table_glob(root: Path, table: str) -> str:
    """The absolute glob readers use for ``table``."""
    return str(table_dir(root.resolve(), table) / "*.parquet")


def temp_path_for(final: Path) -> Path:
    """A unique hidden sibling of ``final`` that the readers' ``*.parquet`` glob never matches."""
    return final.with_name(f".{final.stem}.{uuid.uuid4().hex}{TEMP_SUFFIX}")


def fsync_dir(directory: Path) -> None:
    """Make a rename inside ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_parquet_atomic(table: Any, final: Path) -> Path:
    """Write ``table`` (a ``pa.Table``) to ``final``: temp file, fsync, rename, fsync dir."""
    temp = temp_path_for(final)
    try:
        with open(temp, "wb") as sink:
            pq.write_table(table, sink, compression="zstd")
            sink.flush()
            os.fsync(sink.fileno())
        os.replace(temp, final)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    fsync_dir(final.parent)
    return final


def landed_files(root: Path, table: str) -> list[Path]:
    """The files readers see (``*.parquet``, no hidden temp files), schema file excluded."""
    directory = table_dir(root, table)
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.glob("*.parquet")
                  if p.name != EMPTY_FILE_NAME and not p.name.startswith("."))


def ensure_table(root: Path, table: str) -> Path:
    """Create ``root/table/`` with its schema-only file; rewrite that file if the schema changed."""
    schema = schema_of(table)
    directory = table_dir(root, table)
    directory.mkdir(parents=True, exist_ok=True)
    empty = directory / EMPTY_FILE_NAME
    if not (empty.exists() and pq.read_schema(empty).equals(schema)):
        write_parquet_atomic(schema.empty_table(), empty)
    return directory


def ensure_layout(root: Path) -> None:
    """Create every table directory, each with its schema-only Parquet file."""
    for table in TABLES:
        ensure_table(root, table)
