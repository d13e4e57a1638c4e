"""Layout of the warehouse: per table, immutable Parquet files partitioned hive-style by date.

    ROOT/                          a directory, or s3://bucket/prefix
      warehouse.duckdb             views only (see warehouse.views); never opened by writers
      credits/conversion_date=1970-01-01/00000000-empty.parquet
                                   schema-only file, so views bind before any data lands
      credits/conversion_date=2026-11-29/<batch name>.parquet
                                   a landed batch's rows of that day (warehouse.landing)
      touches/touch_date=2026-11-29/...
                                   every table likewise, by its own date column (PARTITIONS)

The partition value is the UTC date of the table's date column, so Spark, Trino, DuckDB,
Polars and pyarrow all read the directory names as a ``DATE`` column and skip the days a
filter on it excludes. Readers glob ``<table>/*/*.parquet``; a local file being written is a
hidden ``.<name>.<random>.tmp`` sibling, renamed into place once complete, and an object is
written with one PUT, so readers never see a partial file.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import pyarrow as pa

from warehouse.storage import FileInfo, LocalStorage, Root, Storage, storage_for

TIMESTAMP = pa.timestamp("us", tz="UTC")

EMPTY_FILE_NAME = "00000000-empty.parquet"
"""Schema-only file of every table (in the EMPTY_PARTITION); matches the readers' glob."""

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
            _field("time", TIMESTAMP),  # the touch's time (so its touch_date)
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


@dataclass(frozen=True)
class Partitioning:
    column: str  # the hive partition column readers see, e.g. conversion_date
    source: str  # the table's column it is the UTC date of, e.g. conversion_time


PARTITIONS: dict[str, Partitioning] = {
    "touches": Partitioning("touch_date", "time"),
    "conversions": Partitioning("conversion_date", "time"),
    "credits": Partitioning("conversion_date", "conversion_time"),
    "identity_links": Partitioning("link_date", "time"),
    "identity_map": Partitioning("as_of_date", "as_of"),
    "spend": Partitioning("spend_date", "date"),
    "rejected": Partitioning("landed_date", "landed_at"),
    "touch_withdrawals": Partitioning("touch_date", "time"),
    "datadriven_fit": Partitioning("landed_date", "landed_at"),
    "erasures": Partitioning("requested_date", "requested_at"),
}

EMPTY_PARTITION = date(1970, 1, 1)
"""The partition holding each table's schema-only file (no rows, so no filter ever needs it)."""


def table_dir(root: Path, table: str) -> Path:
    """The directory of ``table`` in a local warehouse (its day partitions are inside)."""
    schema_of(table)
    return root / table


def partitioning(table: str) -> Partitioning:
    schema_of(table)
    return PARTITIONS[table]


def partition_key(table: str, day: date) -> str:
    """``<table>/<column>=<YYYY-MM-DD>``: the directory (key prefix) of one day's files."""
    return f"{table}/{partitioning(table).column}={day.isoformat()}"


def file_key(table: str, day: date, name: str) -> str:
    return f"{partition_key(table, day)}/{name}.parquet"


def empty_file_key(table: str) -> str:
    return f"{partition_key(table, EMPTY_PARTITION)}/{EMPTY_FILE_NAME}"


def partition_of(key: str) -> date | None:
    """The date of the partition ``key`` lies in (``<table>/<column>=<date>/<file>``)."""
    parts = key.split("/")
    if len(parts) != 3 or "=" not in parts[1]:
        return None
    try:
        return date.fromisoformat(parts[1].split("=", 1)[1])
    except ValueError:
        return None


def is_landed(table: str, info: FileInfo) -> bool:
    """A file readers see: ``<table>/<column>=<date>/<name>.parquet``, not hidden, not the
    schema-only file."""
    parts = info.key.split("/")
    return (len(parts) == 3 and parts[0] == table
            and parts[1].startswith(partitioning(table).column + "=")
            and parts[2].endswith(".parquet") and not parts[2].startswith(".")
            and parts[2] != EMPTY_FILE_NAME and partition_of(info.key) is not None)


def landed(root: Root | Storage, table: str) -> list[FileInfo]:
    """Every landed file of ``table`` (local or object storage), sorted by key."""
    storage = root if isinstance(root, Storage) else storage_for(root)
    return [info for info in storage.list_files(f"{table}/") if is_landed(table, info)]


def landed_files(root: Path, table: str) -> list[Path]:
    """The landed files of a local warehouse's ``table`` as paths (see ``landed``)."""
    storage = storage_for(root)
    if not isinstance(storage, LocalStorage):
        raise ValueError(f"landed_files needs a local warehouse, not {storage.url}; "
                         "use warehouse.layout.landed()")
    return [storage.path(info.key) for info in landed(storage, table)]


def newest_landed(root: Root) -> datetime | None:
    """When the newest landed file of any table was written (local or object storage)."""
    storage = storage_for(root)
    times = [info.mtime for table in TABLES for info in landed(storage, table)]
    return datetime.fromtimestamp(max(times), UTC) if times else None


def exists(root: Root) -> bool:
    """Whether there is a warehouse at ``root`` (a directory, or objects under the prefix)."""
    storage = storage_for(root)
    if isinstance(storage, LocalStorage):
        return storage.root.is_dir()
    return bool(storage.list_files(f"{next(iter(TABLES))}/"))


def has_flat_files(root: Root | Storage) -> bool:
    """Files of the layout before date partitions (``<table>/<name>.parquet``) are present:
    ``attribution migrate`` moves them into partitions."""
    storage = root if isinstance(root, Storage) else storage_for(root)
    if isinstance(storage, LocalStorage):
        return any(next(storage.path(table).glob("*.parquet"), None) is not None
                   for table in TABLES)
    return any(info.key.count("/") == 1 and info.name.endswith(".parquet")
               for table in TABLES for info in storage.list_files(f"{table}/"))


def table_glob(root: Root, table: str) -> str:
    """The glob of ``table``'s files under ``root`` (absolute path or URL), for readers."""
    return f"{storage_for(root).url}/{table}/*/*.parquet"


def conform(data: pa.Table, table: str) -> pa.Table:
    """``data`` (a file landed under this or an older schema) in ``table``'s current schema:
    columns in schema order, types cast, nullable columns it lacks added as nulls, columns
    the schema no longer has dropped. Every file is kept in the current schema, so readers
    need no schema merging (see ``attribution migrate`` after an upgrade)."""
    schema = schema_of(table)
    columns = []
    for field in schema:
        if field.name in data.column_names:
            columns.append(data.column(field.name).cast(field.type))
        elif field.nullable:
            columns.append(pa.nulls(data.num_rows, field.type))
        else:
            raise ValueError(f"a {table} file lacks the required column {field.name!r}")
    return pa.Table.from_arrays(columns, schema=schema)


def ensure_table(root: Root | Storage, table: str) -> None:
    """Write ``table``'s schema-only file; rewrite it if the schema changed."""
    storage = root if isinstance(root, Storage) else storage_for(root)
    schema = schema_of(table)
    key = empty_file_key(table)
    try:
        if storage.parquet_schema(key).equals(schema):
            return
    except (FileNotFoundError, pa.ArrowInvalid):
        pass
    storage.write_parquet(key, schema.empty_table())


def ensure_layout(root: Root) -> None:
    """Create every table with its schema-only Parquet file (idempotent, cheap to repeat)."""
    storage = storage_for(root)
    for table in TABLES:
        ensure_table(storage, table)
