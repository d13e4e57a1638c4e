"""Compaction on a real warehouse: fewer files, the same answers in every view, every raw
row kept, and a crash between writing and deleting is invisible to analysts."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

import sql
from attribution.batch import attribute_events
from tests.test_batch import CONFIG, RULES
from traffic.generate import TrafficSpec, generate_events
from warehouse.compact import compact, merged_name, plan_groups
from warehouse.landing import land
from warehouse.layout import PARTITIONS, TABLES, ensure_layout, landed, landed_files, partition_of
from warehouse.query import run_query
from warehouse.replay import result_rows
from warehouse.views import create_views

SLICES = 6


def landed_in_slices(root: Path, spec: TrafficSpec | None = None) -> None:
    """The rows of a generated history, landed as SLICES batches per table (as a sink would:
    the rows of a busy day end up in every batch, so in SLICES files of that day)."""
    events = generate_events(spec or TrafficSpec(seed=3, b2c_visitors=150, b2b_accounts=4,
                                                 days=3))
    result = attribute_events(((str(i), e) for i, e in enumerate(events)), CONFIG, RULES)
    ensure_layout(root)
    for table, rows in result_rows(result).items():
        for index in range(SLICES):
            land(root, table, rows[index::SLICES], name=f"slice-{index}")
    create_views(root)


def _same(value: Any) -> Any:
    # Aggregates sum floats in file order: equal answers may differ in the last bits.
    return round(value, 6) if isinstance(value, float) else value


def every_view(root: Path, names: Sequence[str] | None = None) -> dict[str, list[tuple[Any, ...]]]:
    """Each view's rows, sorted, with landing times left out (they are per file)."""
    answers = {}
    for view in names or sql.view_names():
        columns, rows = run_query(root, f'SELECT * FROM "{view}"')
        keep = [i for i, c in enumerate(columns) if c != "landed_at"]
        answers[view] = sorted((tuple(_same(row[i]) for i in keep) for row in rows), key=repr)
    return answers


def per_day(root: Path, table: str) -> Counter[date | None]:
    """How many landed files each day's partition of ``table`` holds."""
    return Counter(partition_of(info.key) for info in landed(root, table))


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    root = tmp_path / "warehouse"
    landed_in_slices(root)
    return root


def test_compaction_merges_within_each_day_and_changes_no_answer(warehouse: Path) -> None:
    before = every_view(warehouse)
    files_before = {t: per_day(warehouse, t) for t in TABLES}
    assert max(files_before["credits"].values()) == SLICES  # a busy day has every slice

    report = compact(warehouse)

    for table, days in files_before.items():
        after = per_day(warehouse, table)
        assert after == {day: 1 if count >= 4 else count for day, count in days.items()}, table
        for info in landed(warehouse, table):  # every merged file holds its own day only
            column = pq.read_table(warehouse / info.key).column(PARTITIONS[table].source)
            dates = pc.unique(pc.cast(column, pa.date32())).to_pylist()
            assert dates == [partition_of(info.key)], info.key
    assert report.files_merged["credits"] == sum(
        n for n in files_before["credits"].values() if n >= 4)
    assert every_view(warehouse) == before  # raw_* included: no row lost or added
    assert not compact(warehouse).changed  # nothing left to merge


def test_a_crash_between_merge_and_delete_is_invisible(warehouse: Path) -> None:
    before = every_view(warehouse)
    busy = {day for day, count in per_day(warehouse, "touches").items() if count >= 4}
    members = [warehouse / info.key for info in landed(warehouse, "touches")
               if partition_of(info.key) in busy]  # the files compaction will merge
    merged_rows = sum(pq.ParquetFile(member).metadata.num_rows for member in members)
    keep = warehouse.parent / "kept"
    keep.mkdir()
    for index, member in enumerate(members):  # what a crash after the merge leaves behind
        shutil.copy2(member, keep / str(index))
    compact(warehouse, ["touches"])
    for index, member in enumerate(members):
        shutil.copy2(keep / str(index), member)
    shutil.rmtree(keep)
    create_views(warehouse)
    after = every_view(warehouse)
    assert {v: r for v, r in after.items() if not v.startswith("raw_")} == {
        v: r for v, r in before.items() if not v.startswith("raw_")}
    assert len(after["raw_touches"]) == len(before["raw_touches"]) + merged_rows  # visible
    compact(warehouse, ["touches"])  # the rerun merges the leftovers with the merged file
    assert all(per_day(warehouse, "touches")[day] == 1 for day in busy)


def test_groups_respect_the_row_target_and_skip_singletons() -> None:
    files = [(Path(f"f{i}.parquet"), rows) for i, rows in enumerate([5, 5, 5, 20, 1])]
    groups = plan_groups(files, target_rows=10)
    assert [[p.name for p in g] for g in groups] == [["f0.parquet", "f1.parquet"]]
    assert plan_groups(files, target_rows=100) == [[p for p, _ in files]]
    assert merged_name([Path("b"), Path("a")]) == merged_name([Path("a"), Path("b")])


def test_compact_command(warehouse: Path) -> None:
    busy = [n for n in per_day(warehouse, "credits").values() if n >= 4]
    done = subprocess.run([sys.executable, "-m", "cli.main", "compact", "--warehouse",
                           str(warehouse)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"credits: {sum(busy)} files -> {len(busy)} " in done.stderr
    total = sum(pq.ParquetFile(p).metadata.num_rows for p in landed_files(warehouse, "credits"))
    assert total == len(every_view(warehouse)["raw_credits"])


def test_an_unreadable_file_is_reported_and_left_while_the_rest_is_compacted(
        warehouse: Path) -> None:
    busiest = per_day(warehouse, "touches").most_common(1)[0][0]
    assert busiest is not None
    bad = warehouse / "touches" / f"touch_date={busiest}" / "stream-corrupt.parquet"
    bad.write_bytes(b"PAR1 not really parquet")
    done = subprocess.run([sys.executable, "-m", "cli.main", "compact", "--warehouse",
                           str(warehouse), "--table", "touches"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert f"cannot read {bad}" in done.stderr and "left as it is" in done.stderr
    assert bad.read_bytes() == b"PAR1 not really parquet"
    assert bad in landed_files(warehouse, "touches")
    assert per_day(warehouse, "touches")[busiest] == 2  # the good files merged into one
