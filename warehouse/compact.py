"""Compaction: merge the many small files of each day's partition into a few large ones.

The stream's sink lands one file per table per flush (about one a second per worker), so
a day of traffic leaves tens of thousands of small files that every analyst query opens.
Compaction reads a group of small files of one partition (one table, one day), writes
their rows as one file in that partition (atomically: rename locally, one PUT on object
storage), then deletes the members. Every view dedupes, so the moment both exist counts
nothing twice, and a crash between the two steps leaves only duplicates the views hide
(the ``raw_*`` views show them until the next compaction merges them away).

Rows are copied as they are, never deduplicated or reordered, so ``raw_*`` keep every
landed row; files of an older schema are brought to the current one. It takes the
maintenance lock (``warehouse.lock``, across hosts on object storage), so an erasure never
runs at the same time, and first completes an erasure that a crash interrupted; landing
does not need the lock: it only adds files, and compaction merges only the files it listed
when it started.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Protocol, TypeVar

import pyarrow as pa

from warehouse.erase import complete_pending
from warehouse.layout import TABLES, conform, landed, partition_of
from warehouse.lock import Lease, maintenance_lock
from warehouse.storage import FileInfo, Root, Storage, storage_for

SMALL_BYTES = 8 * 1024 * 1024  # files at least this large are left alone
TARGET_ROWS = 1_000_000  # rows per merged file, at most (a larger group is split)
MIN_FILES = 4  # fewer small files than this in a partition: not worth a rewrite


class _Named(Protocol):
    @property
    def name(self) -> str: ...


Member = TypeVar("Member")


@dataclass
class CompactionReport:
    files_merged: dict[str, int] = field(default_factory=dict)  # table -> members deleted
    files_written: dict[str, int] = field(default_factory=dict)  # table -> merged files
    rows: dict[str, int] = field(default_factory=dict)  # table -> rows copied
    unreadable: dict[str, str] = field(default_factory=dict)  # file -> why; left as it is

    @property
    def changed(self) -> bool:
        return bool(self.files_written)


def small_files(storage: Storage, table: str,
                small_bytes: int = SMALL_BYTES) -> dict[date, list[FileInfo]]:
    """Landed files of ``table`` under ``small_bytes`` per partition day, oldest first."""
    by_day: dict[date, list[FileInfo]] = {}
    for info in sorted(landed(storage, table), key=lambda i: (i.mtime, i.name)):
        day = partition_of(info.key)
        if info.size < small_bytes and day is not None:
            by_day.setdefault(day, []).append(info)
    return by_day


def plan_groups(row_counts: Sequence[tuple[Member, int]], target_rows: int) -> list[list[Member]]:
    """Consecutive files grouped up to ``target_rows`` rows each; groups of one are dropped
    (rewriting a single file gains nothing)."""
    groups: list[list[Member]] = []
    current: list[Member] = []
    rows = 0
    for member, count in row_counts:
        if current and rows + count > target_rows:
            groups.append(current)
            current, rows = [], 0
        current.append(member)
        rows += count
    if current:
        groups.append(current)
    return [group for group in groups if len(group) > 1]


def merged_name(members: Sequence[_Named]) -> str:
    """Deterministic in the member names: re-running a compaction that crashed after
    writing its file rewrites the same file instead of adding another."""
    digest = hashlib.blake2b(digest_size=12)
    for member in sorted(m.name for m in members):
        digest.update(member.encode())
    return f"compact-{digest.hexdigest()}.parquet"


def _merge(storage: Storage, table: str, members: Sequence[FileInfo], lease: Lease) -> int:
    merged = pa.concat_tables([conform(storage.read_parquet(m.key), table) for m in members])
    directory = members[0].key.rsplit("/", 1)[0]
    target = f"{directory}/{merged_name(members)}"
    lease.check()  # still ours: nobody else rewrote these files meanwhile
    storage.write_parquet(target, merged)
    for member in members:
        if member.key != target:
            storage.delete(member.key)
    return int(merged.num_rows)


def compact(root: Root, tables: Sequence[str] | None = None, *, min_files: int = MIN_FILES,
            small_bytes: int = SMALL_BYTES, target_rows: int = TARGET_ROWS) -> CompactionReport:
    """Merge small files within each partition of each table (all tables by default)."""
    storage = storage_for(root)
    report = CompactionReport()
    with maintenance_lock(root) as lease:
        complete_pending(storage, lease)
        for table in tables or list(TABLES):
            for _day, files in sorted(small_files(storage, table, small_bytes).items()):
                if len(files) < min_files:
                    continue
                _compact_partition(storage, table, files, target_rows, lease, report)
    return report


def _compact_partition(storage: Storage, table: str, files: list[FileInfo], target_rows: int,
                       lease: Lease, report: CompactionReport) -> None:
    counts = []
    for info in files:
        try:
            counts.append((info, storage.parquet_rows(info.key)))
        except (OSError, pa.ArrowException) as exc:
            report.unreadable[storage.file_url(info.key)] = str(exc)
    for group in plan_groups(counts, target_rows):
        try:
            rows = _merge(storage, table, group, lease)
        except (OSError, pa.ArrowException, ValueError) as exc:  # nothing written or deleted
            report.unreadable[", ".join(storage.file_url(m.key) for m in group)] = str(exc)
            continue
        report.files_merged[table] = report.files_merged.get(table, 0) + len(group)
        report.files_written[table] = report.files_written.get(table, 0) + 1
        report.rows[table] = report.rows.get(table, 0) + rows
