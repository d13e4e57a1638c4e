"""Read-only access to the warehouse views, and rendering results for people and tools."""

from __future__ import annotations

import csv
import io
import os
import tempfile
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Literal

import duckdb
import orjson
from rich.console import Console
from rich.table import Table

from warehouse.layout import has_flat_files
from warehouse.storage import LocalStorage, Root, Storage, display, storage_for
from warehouse.views import ROOT_VARIABLE, WAREHOUSE_FILE, set_root

OutputFormat = Literal["table", "csv", "json"]

_TABLE_WIDTH = 10_000  # wide enough that rich never truncates or wraps a cell


class WarehouseMissing(FileNotFoundError):
    """No warehouse (or no views file) where the user pointed; the message says what to run."""


def connect_readonly(root: Root) -> duckdb.DuckDBPyConnection:
    """Open the views file read-only (any number of readers may do so beside the writers),
    with its views pointed at ``root`` (``warehouse_root``), wherever the warehouse now is.

    The session time zone is UTC, so timestamps come back as UTC-aware datetimes on every
    machine. Raises WarehouseMissing, naming the command to run, when there is no warehouse
    at ``root``, or it was laid out by an older version.
    """
    storage = storage_for(root)
    if isinstance(storage, LocalStorage):
        connection = _open_local(storage)
    else:
        connection = _open_remote(storage)
    try:
        _check_current(connection, storage)
        connection.execute("SET TimeZone = 'UTC'")
        set_root(connection, storage)
    except BaseException:
        connection.close()
        raise
    return connection


def no_warehouse(root: Root) -> WarehouseMissing:
    where = display(root)
    return WarehouseMissing(
        f"no warehouse at {where}: create one with `attribution replay EVENTS.jsonl "
        f"--warehouse {where}` or run the stream with `attribution worker --warehouse {where}`")


def _open_local(storage: LocalStorage) -> duckdb.DuckDBPyConnection:
    if not storage.root.is_dir():
        raise no_warehouse(storage.root)
    path = storage.root.resolve() / WAREHOUSE_FILE
    if not path.exists() or has_flat_files(storage):
        raise WarehouseMissing(_migrate_hint(display(storage.root),
                                             "has no up-to-date warehouse.duckdb"))
    return duckdb.connect(str(path), read_only=True)


def _open_remote(storage: Storage) -> duckdb.DuckDBPyConnection:
    try:
        content = storage.read_bytes(WAREHOUSE_FILE)
    except FileNotFoundError:
        raise WarehouseMissing(_migrate_hint(storage.url, "has no warehouse.duckdb")) from None
    # DuckDB opens database files from local disk; the views file holds no data (tiny).
    with tempfile.NamedTemporaryFile(prefix="attribution-views-", suffix=".duckdb",
                                     delete=False) as local:
        local.write(content)
    try:
        return duckdb.connect(local.name, read_only=True)
    finally:
        os.unlink(local.name)  # the open connection keeps reading it; nothing is left behind


def _migrate_hint(where: str, problem: str) -> str:
    return (f"{where} {problem}; build it (and move files of an older layout into date "
            f"partitions) with `attribution migrate --warehouse {where}`")


def _check_current(connection: duckdb.DuckDBPyConnection, storage: Storage) -> None:
    """Views of an older version name absolute paths: they would read the files of wherever
    the warehouse was built, not of this one."""
    row = connection.execute(
        "SELECT sql FROM duckdb_views() WHERE view_name = 'raw_touches'").fetchone()
    if row is None or ROOT_VARIABLE not in str(row[0]):
        raise WarehouseMissing(_migrate_hint(storage.url, "has views of an older version"))


def run_query(root: Root, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run ``sql`` on a fresh read-only connection; column names and all rows."""
    connection = connect_readonly(root)
    try:
        cursor = connection.execute(sql)
        if cursor.description is None:  # a statement without a result set
            return [], []
        columns = [description[0] for description in cursor.description]
        return columns, cursor.fetchall()
    finally:
        connection.close()


def format_result(columns: Sequence[str], rows: Sequence[Sequence[Any]], fmt: OutputFormat) -> str:
    """Render a result as a text table (rich), CSV (header row first) or a JSON list of objects."""
    if fmt == "table":
        return _as_table(columns, rows)
    if fmt == "csv":
        return _as_csv(columns, rows)
    if fmt == "json":
        return _as_json(columns, rows)
    raise ValueError(f"unknown output format {fmt!r}: use table, csv or json")


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return str(value)


def _as_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    table = Table(*columns, show_edge=True)
    for row in rows:
        table.add_row(*("NULL" if value is None else _as_text(value) for value in row))
    buffer = io.StringIO()
    console = Console(file=buffer, width=_TABLE_WIDTH, no_color=True, color_system=None)
    console.print(table, crop=False)
    # rich pads every line to the table width only within it; strip trailing blanks anyway
    return "\n".join(line.rstrip() for line in buffer.getvalue().splitlines()) + "\n"


def _as_csv(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[_as_text(value) for value in row] for row in rows]
    # with '\n' line ends, Python 3.11's minimal quoting leaves a bare '\r' unquoted
    bare_cr = any("\r" in cell for row in cells for cell in row)
    buffer = io.StringIO()
    writer = csv.writer(
        buffer, lineterminator="\n", quoting=csv.QUOTE_ALL if bare_cr else csv.QUOTE_MINIMAL
    )
    writer.writerow(columns)
    writer.writerows(cells)
    return buffer.getvalue()


def _json_default(value: Any) -> Any:
    """What orjson does not serialise natively (it does datetime, date, time, UUID)."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, bytes | bytearray):
        return value.hex()
    if isinstance(value, set | frozenset):
        return sorted(value, key=repr)
    return str(value)


def _beyond_64_bits_as_text(value: Any) -> Any:
    """orjson refuses integers outside 64 bits (DuckDB HUGEINT); give those as strings."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value if -(2**63) <= value < 2**64 else str(value)
    if isinstance(value, list | tuple):
        return [_beyond_64_bits_as_text(item) for item in value]
    if isinstance(value, dict):
        return {key: _beyond_64_bits_as_text(item) for key, item in value.items()}
    return value


def _as_json(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    objects = [dict(zip(columns, row, strict=True)) for row in rows]
    option = orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS
    try:
        text = orjson.dumps(objects, default=_json_default, option=option)
    except orjson.JSONEncodeError:
        text = orjson.dumps(_beyond_64_bits_as_text(objects), default=_json_default, option=option)
    return text.decode() + "\n"
