"""Compaction: merge a table's many small landed files into a few large ones.

The stream's sink lands one file per table per flush (about one a second per worker), so
a day of traffic leaves tens of thousands of small files that every analyst query opens.
Compaction reads a group of small files, writes their rows as one file (temp name, fsync,
rename), then deletes the members. Every view dedupes, so the moment both exist counts
nothing twice, and a crash between the two steps leaves only duplicates the views hide
(the ``raw_*`` views show them until the next compaction merges them away).

Rows are copied as they are, never deduplicated or reordered, so ``raw_*`` keep every
landed row. It takes the maintenance lock (``warehouse.lock``), so an erasure never runs
at the same time; landing does not need the lock: it only adds files, and compaction
merges only the files it listed when it started.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from warehouse.layout import TABLES, fsync_dir, landed_files, write_parquet_atomic
from warehouse.lock import maintenance_lock

SMALL_BYTES = 8 * 1024 * 1024  # files at least this large are left alone
TARGET_ROWS = 1_000_000  # rows per merged file, at most (a larger group is split)
MIN_FILES = 4  # fewer small files than this in a table: not worth a rewrite


@dataclass
class CompactionReport:
    files_merged: dict[str, int] = field(default_factory=dict)  # table -> members deleted
    files_written: dict[str, int] = field(default_factory=dict)  # table -> merged files
    rows: dict[str, int] = field(default_factory=dict)  # table -> rows copied
    unreadable: dict[str, str] = field(default_factory=dict)  # file -> why; left as it is

    @property
    def changed(self) -> bool:
        return bool(self.files_written)


def small_files(root: Path, table: str, small_bytes: int = SMALL_BYTES) -> list[Path]:
    """Landed files of ``table`` under ``small_bytes``, oldest first (schema file and hidden
    temp files excluded)."""
    sized = [(p.stat(), p) for p in landed_files(root, table)]
    return [p for stat, p in sorted(sized, key=lambda item: (item[0].st_mtime, item[1].name))
            if stat.st_size < small_bytes]


def plan_groups(row_counts: Sequence[tuple[Path, int]], target_rows: int) -> list[list[Path]]:
    """Consecutive files grouped up to ``target_rows`` rows each; groups of one are dropped
    (rewriting a single file gains nothing)."""
    groups: list[list[Path]] = []
    current: list[Path] = []
    rows = 0
    for path, count in row_counts:
        if current and rows + count > target_rows:
            groups.append(current)
            current, rows = [], 0
        current.append(path)
        rows += count
    if current:
        groups.append(current)
    return [group for group in groups if len(group) > 1]


def merged_name(members: Sequence[Path]) -> str:
    """Deterministic in the member names: re-running a compaction that crashed after
    writing its file rewrites the same file instead of adding another."""
    digest = hashlib.blake2b(digest_size=12)
    for member in sorted(p.name for p in members):
        digest.update(member.encode())
    return f"compact-{digest.hexdigest()}.parquet"


def _merge(table: str, members: Sequence[Path]) -> tuple[Path, int]:
    schema = TABLES[table]
    parts = [pq.read_table(path) for path in members]
    # Files landed under an older schema gain the new nullable columns as nulls.
    merged = pa.concat_tables([part.select([n for n in part.column_names if n in schema.names])
                               for part in parts], promote_options="default")
    merged = merged.select([n for n in schema.names if n in merged.column_names])
    target = members[0].parent / merged_name(members)
    write_parquet_atomic(merged, target)
    for member in members:
        if member != target:
            member.unlink(missing_ok=True)
    fsync_dir(target.parent)
    return target, merged.num_rows


def compact(root: Path, tables: Sequence[str] | None = None, *, min_files: int = MIN_FILES,
            small_bytes: int = SMALL_BYTES, target_rows: int = TARGET_ROWS) -> CompactionReport:
    """Merge small files of each table (all tables by default); see the module docstring."""
    report = CompactionReport()
    with maintenance_lock(root):
        for table in tables or list(TABLES):
            files = small_files(root, table, small_bytes)
            if len(files) < min_files:
                continue
            counts = []
            for path in files:
                try:
                    counts.append((path, pq.ParquetFile(path).metadata.num_rows))
                except (OSError, pa.ArrowException) as exc:
                    report.unreadable[str(path)] = str(exc)
            for group in plan_groups(counts, target_rows):
                try:
                    _, rows = _merge(table, group)
                except (OSError, pa.ArrowException) as exc:  # nothing written, nothing deleted
                    report.unreadable[", ".join(str(p) for p in group)] = str(exc)
                    continue
                report.files_merged[table] = report.files_merged.get(table, 0) + len(group)
                report.files_written[table] = report.files_written.get(table, 0) + 1
                report.rows[table] = report.rows.get(table, 0) + rows
    return report
