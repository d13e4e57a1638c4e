"""Read-only access to the warehouse views, and rendering results for people and tools."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import duckdb
import orjson
from rich.console import Console
from rich.table import Table

from warehouse.views import warehouse_path

OutputFormat = Literal["table", "csv", "json"]

_TABLE_WIDTH = 10_000  # wide enough that rich never truncates or wraps a cell


def connect_readonly(root: Path) -> duckdb.DuckDBPyConnection:
    """Open the views file read-only (any number of readers may do so beside the writers).

    The session time zone is UTC, so timestamps come back as UTC-aware datetimes on every
    machine. Raises FileNotFoundError if ``create_views`` has not been run for ``root``.
    """
    path = warehouse_path(root)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist; create it with create_views({root!s})")
    connection = duckdb.connect(str(path), read_only=True)
    connection.execute("SET TimeZone = 'UTC'")
    return connection


def run_query(root: Path, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
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
