"""`attribution migrate`: bring a warehouse written by an earlier version to the current layout.

- Files of the flat layout (``<table>/<name>.parquet``, before date partitions) are split by
  day into ``<table>/<column>=<day>/<name>.parquet`` and then removed.
- Files in an older schema (a column added since) are rewritten in the current one, so
  readers need no schema merging.
- The views file is rebuilt (views of earlier versions held absolute paths).

Safe to interrupt and to repeat: a split file is written under the same names again and
only then removed, and a warehouse already current only gets its views rebuilt. It takes
the maintenance lock. Stop the workers of the earlier version first: files they land in the
flat layout after the migration stay invisible until it runs again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from warehouse.erase import complete_pending
from warehouse.landing import split_by_day
from warehouse.layout import EMPTY_FILE_NAME, TABLES, conform, file_key, landed
from warehouse.lock import maintenance_lock
from warehouse.storage import Root, Storage, storage_for
from warehouse.views import create_views


@dataclass
class MigrationReport:
    files_split: dict[str, int] = field(default_factory=dict)  # table -> flat files moved
    files_conformed: dict[str, int] = field(default_factory=dict)  # table -> rewritten
    rows: dict[str, int] = field(default_factory=dict)  # table -> rows moved or rewritten

    @property
    def changed(self) -> bool:
        return bool(self.files_split or self.files_conformed)

    def _count(self, counter: dict[str, int], table: str, rows: int) -> None:
        counter[table] = counter.get(table, 0) + 1
        self.rows[table] = self.rows.get(table, 0) + rows


def migrate(root: Root) -> MigrationReport:
    """Migrate the warehouse at ``root`` (see the module docstring) and rebuild its views."""
    storage = storage_for(root)
    report = MigrationReport()
    with maintenance_lock(root) as lease:
        complete_pending(storage, lease)
        for table in TABLES:
            _split_flat_files(storage, table, report, lease.check)
            _conform_old_schemas(storage, table, report, lease.check)
    create_views(root)
    return report


def _split_flat_files(storage: Storage, table: str, report: MigrationReport,
                      check: Callable[[], None]) -> None:
    for info in storage.list_files(f"{table}/"):
        name = info.name
        if info.key.count("/") != 1 or not name.endswith(".parquet") or name.startswith("."):
            continue  # partitioned already, or a hidden temp file of a crashed writer
        if name != EMPTY_FILE_NAME:  # the old schema-only file just goes
            data = conform(storage.read_parquet(info.key), table)
            check()
            for day, part in split_by_day(data, table):
                storage.write_parquet(file_key(table, day, name.removesuffix(".parquet")), part)
            report._count(report.files_split, table, data.num_rows)
        storage.delete(info.key)


def _conform_old_schemas(storage: Storage, table: str, report: MigrationReport,
                         check: Callable[[], None]) -> None:
    schema = TABLES[table]
    for info in landed(storage, table):
        if storage.parquet_schema(info.key).equals(schema):
            continue
        data = conform(storage.read_parquet(info.key), table)
        check()
        storage.write_parquet(info.key, data)
        report._count(report.files_conformed, table, data.num_rows)
