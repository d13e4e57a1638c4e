"""Build ``ROOT/warehouse.duckdb``: a DuckDB file holding only views over the landed Parquet.

The views name no path. Each reads ``getvariable('warehouse_root') || '/<table>/*/*.parquet'``,
so the same file works wherever the warehouse is copied, moved, mounted or restored, and on
object storage, and never reads another warehouse's files: the reader says where the
warehouse is, once per connection (``attribution sql`` does it for you; see ``ROOT_VARIABLE``
and the README for the DuckDB CLI and Python). Without it, every view fails with a message
saying what to set.

The file has no data, so rebuilding it is cheap; it is built under a temporary name and
renamed over the old one (object storage: one PUT), so analysts who hold the old file open
keep working undisturbed (the views glob the Parquet files at query time, so new landings
show up without a rebuild).
"""

from __future__ import annotations

import os
import re
import tempfile
import uuid
from pathlib import Path

import duckdb

import sql
from warehouse.layout import PARTITIONS, TABLES, ensure_layout
from warehouse.storage import LocalStorage, Root, Storage, fsync_dir, storage_for

WAREHOUSE_FILE = "warehouse.duckdb"

ROOT_VARIABLE = "warehouse_root"
"""The DuckDB variable the views read the warehouse's location from:
``SET VARIABLE warehouse_root = '/path/to/warehouse'`` (or ``'s3://bucket/prefix'``)."""

_UNSET = ("(warehouse_root is not set: run SET VARIABLE warehouse_root = "
          "'<the warehouse directory or s3:// URL>' first)")

STORAGE_COMPATIBILITY = "v1.0.0"
"""Oldest DuckDB storage format the views file is written in, so analysts' DuckDB 1.x CLIs
and drivers can open it too (it holds only views, so nothing newer is needed; the views
use ``getvariable``, so readers need DuckDB 1.1 or newer)."""

_PLACEHOLDER = re.compile(r"\{(table|files|hive):(\w+)\}")


def warehouse_path(root: Path) -> Path:
    """The views file of a local warehouse."""
    return root.resolve() / WAREHOUSE_FILE


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def files_expression(table: str) -> str:
    """SQL for the glob of ``table``'s files under the reader's ``warehouse_root``."""
    unset = _sql_string(_UNSET)
    return f"coalesce(getvariable('{ROOT_VARIABLE}'), {unset}) || '/{table}/*/*.parquet'"


def hive_options(table: str) -> str:
    """read_parquet options that turn ``<column>=<day>`` directories into a DATE column."""
    return f"hive_partitioning = true, hive_types = {{'{PARTITIONS[table].column}': DATE}}"


def render_view_sql(template: str) -> str:
    """Expand ``{table:NAME}``, ``{files:NAME}`` and ``{hive:NAME}`` (see ``sql/__init__.py``)."""

    def expand(match: re.Match[str]) -> str:
        kind, table = match.group(1), match.group(2)
        if table not in TABLES:
            raise ValueError(f"view SQL refers to unknown table {table!r} in {match.group(0)}")
        if kind == "files":
            return files_expression(table)
        if kind == "hive":
            return hive_options(table)
        return f"read_parquet({files_expression(table)}, {hive_options(table)})"

    return _PLACEHOLDER.sub(expand, template).strip().removesuffix(";").rstrip()


def set_root(connection: duckdb.DuckDBPyConnection, root: Root | Storage) -> None:
    """Point the views of ``connection`` at the warehouse at ``root``; on object storage,
    also give DuckDB a file system for it (s3fs, with the same endpoint and credentials)."""
    storage = root if isinstance(root, Storage) else storage_for(root)
    if not storage.is_local:
        from warehouse import s3

        connection.register_filesystem(s3.filesystem())
    connection.execute(f"SET VARIABLE {ROOT_VARIABLE} = ?", [storage.url])


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


def build_views_file(path: Path, storage: Storage) -> None:
    """Write the views file to ``path`` (a new local file), bound against ``storage``."""
    bodies = {name: render_view_sql(sql.view_sql(name)) for name in sql.view_names()}
    connection = duckdb.connect(
        str(path), config={"storage_compatibility_version": STORAGE_COMPATIBILITY}
    )
    try:
        set_root(connection, storage)  # views bind (read their files' schemas) on creation
        _create_all(connection, bodies)
        connection.execute("CHECKPOINT")
    finally:
        connection.close()


def create_views(root: Root) -> Path | str:
    """(Re)create the warehouse's ``warehouse.duckdb`` atomically; its path (or URL)."""
    storage = storage_for(root)
    ensure_layout(root)  # every glob must match at least one file for the views to bind
    if isinstance(storage, LocalStorage):
        return _create_local(storage)
    with tempfile.TemporaryDirectory(prefix="attribution-views-") as scratch:
        built = Path(scratch) / WAREHOUSE_FILE
        build_views_file(built, storage)
        storage.write_bytes(WAREHOUSE_FILE, built.read_bytes())
    return storage.file_url(WAREHOUSE_FILE)


def ensure_views(root: Root) -> None:
    """Create the views file if the warehouse has none yet (cheaper than a rebuild)."""
    storage = storage_for(root)
    if not storage.exists(WAREHOUSE_FILE):
        create_views(root)


def _create_local(storage: LocalStorage) -> Path:
    root = storage.root.resolve()
    final = root / WAREHOUSE_FILE
    temp = root / f".{WAREHOUSE_FILE}.{uuid.uuid4().hex}.tmp"
    temp_wal = temp.with_name(temp.name + ".wal")
    try:
        build_views_file(temp, storage)
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
