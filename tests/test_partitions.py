"""Date partitions: land() splits batches by day, a date filter on the views prunes files
below the latest-version window (shown with EXPLAIN), and `attribution migrate` moves a
warehouse of the flat layout into partitions."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from hypothesis import given, settings
from hypothesis import strategies as st

from warehouse.landing import land, land_batch, land_tables
from warehouse.layout import EMPTY_FILE_NAME, TABLES, landed, partition_of
from warehouse.query import connect_readonly, run_query
from warehouse.storage import Root, storage_for
from warehouse.views import create_views

DAY0 = datetime(2026, 11, 27, 10, tzinfo=UTC)


def touch(event_id: str, time: datetime) -> dict[str, Any]:
    return {"event_id": event_id, "time": time, "anonymous_id": "a", "person_id": None,
            "account_id": None, "channel": "Email", "source": None, "medium": None,
            "campaign": None, "kind": "page", "properties": "{}"}


def credit(conversion_id: str, time: datetime, version: int, channel: str,
           value: float = 10.0) -> dict[str, Any]:
    return {"conversion_id": conversion_id, "conversion_kind": "purchase",
            "journey_key": "person:p", "policy": "b2c", "model": "last_touch",
            "touch_event_id": f"t-{conversion_id}-{version}", "touch_time": time,
            "channel": channel, "campaign": None, "credit": 1.0, "credited_value": value,
            "currency": "USD", "conversion_time": time, "version": version,
            "reason": "initial" if version == 1 else "late_touch"}


def test_land_splits_a_batch_into_one_file_per_utc_day(tmp_path: Path) -> None:
    times = [DAY0, DAY0 + timedelta(days=1), DAY0 + timedelta(hours=1),
             datetime(2026, 11, 28, 23, 30, tzinfo=UTC) - timedelta(days=2)]
    batch = land_batch(tmp_path, "touches", [touch(f"t{i}", t) for i, t in enumerate(times)],
                       name="b1")
    assert batch is not None and batch.rows == 4 and len(batch.files) == 3
    keys = [info.key for info in landed(tmp_path, "touches")]
    assert keys == [f"touches/touch_date={d}/b1.parquet"
                    for d in ("2026-11-26", "2026-11-27", "2026-11-28")]
    day = pq.read_table(tmp_path / keys[1]).column("event_id").to_pylist()
    assert day == ["t0", "t2"]  # the batch's order is kept within a day


def landed_ids(root: Root, table: str, column: str) -> dict[str, date | None]:
    """Each landed row's id and the day of the partition it lies in."""
    storage = storage_for(root)
    return {value: partition_of(info.key) for info in landed(storage, table)
            for value in storage.read_parquet(info.key, [column]).column(column).to_pylist()}


def land_over_days(root: Root, days: int) -> list[tuple[str, int, int]]:
    times = [DAY0 + timedelta(days=d) for d in range(days)]
    batches = land_tables(root, [
        ("touches", [touch(f"t{i}", t) for i, t in enumerate(times)], "flush-1"),
        ("credits", [credit(f"c{i}", t, 1, "Email") for i, t in enumerate(times)], "flush-1"),
        ("conversions", [], "flush-1"),
    ])
    return [(batch.table, len(batch.files), batch.rows) for batch in batches]


def test_landing_several_tables_at_once_writes_every_day_of_each(tmp_path: Path) -> None:
    # 24 files: one durability sync for all of them instead of an fsync per file
    assert land_over_days(tmp_path, 12) == [("touches", 12, 12), ("credits", 12, 12)]
    expected = {f"{{}}{i}": (DAY0 + timedelta(days=i)).date() for i in range(12)}
    assert landed_ids(tmp_path, "touches", "event_id") == {
        key.format("t"): day for key, day in expected.items()}
    assert landed_ids(tmp_path, "credits", "conversion_id") == {
        key.format("c"): day for key, day in expected.items()}
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]
    assert land_over_days(tmp_path, 12) == [("touches", 12, 12), ("credits", 12, 12)]
    assert len(landed(tmp_path, "touches")) == 12  # the same names again: overwritten


@settings(max_examples=50, deadline=None)
@given(offsets=st.lists(st.integers(min_value=-10 * 86_400, max_value=10 * 86_400),
                        min_size=1, max_size=40),
       zone=st.integers(min_value=-12, max_value=14))
def test_every_row_lands_in_the_partition_of_its_utc_day(offsets: list[int], zone: int) -> None:
    import tempfile
    from datetime import timezone

    local = timezone(timedelta(hours=zone))
    times = [(DAY0 + timedelta(seconds=o)).astimezone(local) for o in offsets]
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        land(root, "touches", [touch(f"t{i}", t) for i, t in enumerate(times)], name="b")
        found: dict[str, date] = {}
        for info in landed(root, "touches"):
            table = pq.read_table(root / info.key)
            days = pc.cast(table.column("time"), pa.date32()).to_pylist()
            assert set(days) == {partition_of(info.key)}
            found.update(zip(table.column("event_id").to_pylist(), days, strict=True))
        assert found == {f"t{i}": t.astimezone(UTC).date() for i, t in enumerate(times)}


def build_credits(root: Root) -> None:
    """Three days of conversions; c1 is re-credited (version 2 moves it to Paid Search)."""
    days = [DAY0 + timedelta(days=d) for d in range(3)]
    land(root, "credits", [credit("c1", days[0], 1, "Email"), credit("c2", days[1], 1, "Email"),
                           credit("c3", days[2], 1, "Direct")], name="v1")
    land(root, "credits", [credit("c1", days[0], 2, "Paid Search")], name="v2")
    land(root, "credits", [credit("c2", days[1], 1, "Email")], name="v1-again")  # re-landed
    create_views(root)


def plan(root: Root, sql: str, analyze: bool = False) -> str:
    connection = connect_readonly(root)
    try:
        rows = connection.execute(("EXPLAIN ANALYZE " if analyze else "EXPLAIN ") + sql)
        return "\n".join(str(row[1]) for row in rows.fetchall())
    finally:
        connection.close()


def files_scanned(text: str) -> list[str]:
    return re.findall(r"Scanning Files: (\d+/\d+)", text)


def assert_a_date_filter_prunes(root: Root) -> None:
    build_credits(root)
    one_day = f"conversion_date = DATE '{DAY0.date()}'"
    daily = ("SELECT channel, conversions, credited_value FROM channel_performance_daily "
             f"WHERE {one_day}")
    # The latest version wins, and only that day's files are read.
    assert run_query(root, daily)[1] == [("Paid Search", 1.0, 10.0)]
    explained = plan(root, daily)
    # the filter reaches the Parquet scan, below the window, as a filter on the partitions
    assert "File Filters:" in explained
    assert "conversion_date = '2026-11-27'::DATE" in explained
    # 6 files: the schema-only file, 3 days of v1, v2 and the re-landed v1 of c2; the day
    # of c1 has two of them (v1 and v2)
    assert files_scanned(explained) == files_scanned(plan(root, daily, analyze=True)) == ["2/6"]
    # the same question without the partition column reads every file
    unpruned = ("SELECT channel, sum(credited_value) FROM credits WHERE "
                f"conversion_time::DATE = DATE '{DAY0.date()}' GROUP BY channel")
    assert run_query(root, unpruned)[1] == [("Paid Search", 10.0)]
    assert "Scanning Files" not in plan(root, unpruned, analyze=True)
    assert run_query(root, f"SELECT count(*) FROM credits WHERE {one_day}")[1] == [(1,)]
    assert run_query(root, "SELECT count(*) FROM credits")[1] == [(3,)]


def test_a_date_filter_prunes_below_the_latest_version_window(tmp_path: Path) -> None:
    assert_a_date_filter_prunes(tmp_path)


def test_a_date_filter_prunes_on_object_storage(s3_root: str) -> None:
    assert_a_date_filter_prunes(s3_root)


def write_flat_warehouse(root: Path) -> int:
    """A warehouse as the previous version left it: <table>/<name>.parquet, a schema-only
    file per table, one file of an older schema, and views naming absolute paths."""
    for table, schema in TABLES.items():
        (root / table).mkdir(parents=True)
        pq.write_table(schema.empty_table(), root / table / EMPTY_FILE_NAME)
    rows = [touch(f"t{i}", DAY0 + timedelta(hours=7 * i)) for i in range(12)]
    pq.write_table(pa.Table.from_pylist(rows[:8], schema=TABLES["touches"]),
                   root / "touches" / "replay-old-00000.parquet")
    older = pa.Table.from_pylist(rows[8:], schema=TABLES["touches"]).drop_columns(["campaign"])
    pq.write_table(older, root / "touches" / "stream-older-schema.parquet")
    connection = duckdb.connect(str(root / "warehouse.duckdb"))
    connection.execute("CREATE VIEW raw_touches AS SELECT * FROM read_parquet("
                       f"'{root}/touches/*.parquet', union_by_name = true)")
    connection.close()
    return len(rows)


def attribution(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cli.main", *args], capture_output=True,
                          text=True, timeout=120, check=False)


def test_migrate_moves_a_flat_warehouse_into_partitions(tmp_path: Path) -> None:
    root = tmp_path / "old"
    count = write_flat_warehouse(root)
    refused = attribution("sql", "--warehouse", str(root), "SELECT count(*) FROM touchpoints")
    assert refused.returncode == 1
    assert f"attribution migrate --warehouse {root}" in refused.stderr

    done = attribution("migrate", "--warehouse", str(root))
    assert done.returncode == 0, done.stderr
    assert "touches: 2 files split into date partitions" in done.stderr
    assert not list((root / "touches").glob("*.parquet"))
    assert {partition_of(i.key) for i in landed(root, "touches")} == {
        (DAY0 + timedelta(hours=7 * i)).date() for i in range(12)}
    assert run_query(root, "SELECT count(*), count(campaign) FROM touchpoints")[1] == [(count, 0)]
    schemas = {storage_for(root).parquet_schema(i.key).equals(TABLES["touches"])
               for i in landed(root, "touches")}
    assert schemas == {True}  # no schema merging needed by any reader
    before = sorted(i.key for i in landed(root, "touches"))
    again = attribution("migrate", "--warehouse", str(root))
    assert again.returncode == 0 and "split" not in again.stderr
    assert sorted(i.key for i in landed(root, "touches")) == before


def test_a_replacing_batch_leaves_nothing_of_its_earlier_version(tmp_path: Path) -> None:
    days = [DAY0, DAY0 + timedelta(days=1)]
    land(tmp_path, "touches", [touch("a", days[0]), touch("b", days[1])], name="model")
    land(tmp_path, "touches", [touch("other", days[1])], name="other")
    land(tmp_path, "touches", [touch("a2", days[0])], name="model", replace=True)
    keys = sorted(info.key for info in landed(tmp_path, "touches"))
    assert keys == [f"touches/touch_date={days[0].date()}/model.parquet",
                    f"touches/touch_date={days[1].date()}/other.parquet"]
    assert land(tmp_path, "touches", [], name="model", replace=True) is None
    assert [info.name for info in landed(tmp_path, "touches")] == ["other.parquet"]
