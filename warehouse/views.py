"""Build ``ROOT/warehouse.duckdb``: a DuckDB file holding only views over the landed Parquet.

The file has no data, so rebuilding it is cheap; it is built under a temporary name and
renamed over the old one, so analysts who hold the old file open keep working undisturbed
(the views read the Parquet globs at query time, so new landings show up without a rebuild).
"""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path

import duckdb

import sql
from warehouse.layout import TABLES, ensure_layout, fsync_dir, table_glob

WAREHOUSE_FILE = "warehouse.duckdb"

STORAGE_COMPATIBILITY = "v1.0.0"
"""Oldest DuckDB storage format the views file is written in, so analysts' DuckDB 1.x CLIs
and drivers can open it too (it holds only views, so nothing newer is needed)."""

_PLACEHOLDER = re.compile(r"\{(table|files):(\w+)\}")


def warehouse_path(root: Path) -> Path:
    return root.resolve() / WAREHOUSE_FILE


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def render_view_sql(template: str, root: Path) -> str:
    """Expand ``{table:NAME}`` / ``{files:NAME}`` placeholders (see ``sql/__init__.py``)."""

    def expand(match: re.Match[str]) -> str:
        kind, table = match.group(1), match.group(2)
        if table not in TABLES:
            raise ValueError(f"view SQL refers to unknown table {table!r} in {match.group(0)}")
        files = _sql_string(table_glob(root, table))
        return files if kind == "files" else f"read_parquet({files}, union_by_name = true)"

    return _PLACEHOLDER.sub(expand, template).strip().removesuffix(";").rstrip()


def _create_all(connection: duckdb.DuckDBPyConnection, bodies: dict[str, str]) -> None:
    """Create every view; a view whose dependency does not exist yet is retried next pass."""
    pending = dict(bodies)
    while pending:
        failures: dict[str, duckdb.CatalogException] = {}
        for name, body in pending.items():
            try:
                connection.execute(f'CREATE VIEW "{name}" AS\n{body}')
            except duckdb.CatalogException as error:
                failures[name] = error
        if len(failures) == len(pending):  # no progress: a real error, not an ordering one
            name, failure = next(iter(failures.items()))
            raise RuntimeError(f"cannot create view {name!r}: {failure}") from failure
        pending = {name: pending[name] for name in failures}


def create_views(root: Path) -> Path:
    """(Re)create ``root/warehouse.duckdb`` atomically and return its path."""
    root = root.resolve()
    ensure_layout(root)  # every glob must match at least one file for the views to bind
    bodies = {name: render_view_sql(sql.view_sql(name), root) for name in sql.view_names()}
    final = warehouse_path(root)
    temp = root / f".{WAREHOUSE_FILE}.{uuid.uuid4().hex}.tmp"
    temp_wal = temp.with_name(temp.name + ".wal")
    try:
        connection = duckdb.connect(
            str(temp), config={"storage_compatibility_version": STORAGE_COMPATIBILITY}
        )
        try:
            _create_all(connection, bodies)
            connection.execute("CHECKPOINT")
        finally:
            connection.close()
        with open(temp, "rb") as built:
            os.fsync(built.fileno())
        # a WAL next to the final name would be replayed onto the new file; the old file is
        # only ever written here, so any such WAL is stale
        final.with_name(final.name + ".wal").unlink(missing_ok=True)
        os.replace(temp, final)
    finally:
        temp.unlink(missing_ok=True)
        temp_wal.unlink(missing_ok=True)
    fsync_dir(root)
    return final
