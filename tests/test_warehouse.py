"""Warehouse: atomic Parquet landing, DuckDB views over it, read-only queries and formats.

Everything runs on real Parquet files and a real DuckDB file under tmp_path.
"""

from __future__ import annotations

import csv
import io
import math
import os
import subprocess
import sys
import tempfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sql
from schemas.records import Credit, IdentityLink, InteractionKind, LinkKind, Touch
from warehouse.landing import land
from warehouse.layout import TABLES, empty_file_key, ensure_layout, landed
from warehouse.query import connect_readonly, format_result, run_query
from warehouse.views import create_views, render_view_sql

T0 = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def touch(event_id: str, minutes: int, channel: str, **ids: str) -> dict[str, Any]:
    return Touch(
        event_id=event_id,
        time=at(minutes),
        channel=channel,
        kind=InteractionKind.VISIT,
        properties={"url": f"/{event_id}", "a": 1},
        **ids,
    ).model_dump()


def conversion(conversion_id: str, event_id: str, minutes: int) -> dict[str, Any]:
    return {
        "conversion_id": conversion_id,
        "event_id": event_id,
        "time": at(minutes),
        "kind": "purchase",
        "event": "Order Completed",
        "policy": "b2c",
        "value": 100.0,
        "currency": "USD",
        "anonymous_id": "a1",
        "person_id": None,
        "account_id": None,
        "journey_key": "P1",
        "properties": {"order_id": conversion_id},
    }


def credit(
    conversion_id: str,
    version: int,
    model: str,
    touch_id: str | None,
    channel: str,
    share: float,
    value: float,
) -> dict[str, Any]:
    return Credit(
        conversion_id=conversion_id,
        conversion_kind="purchase",
        journey_key="P1",
        policy="b2c",
        model=model,
        touch_event_id=touch_id,
        touch_time=None if touch_id is None else at(0),
        channel=channel,
        campaign=None,
        credit=share,
        credited_value=share * value,
        currency="USD",
        conversion_time=at(60),
        version=version,
        reason="initial" if version == 1 else "late_touch",
    ).model_dump()


def query(root: Path, statement: str) -> list[tuple[Any, ...]]:
    return run_query(root, statement)[1]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    warehouse = tmp_path / "wh"
    create_views(warehouse)
    return warehouse


# --- layout --------------------------------------------------------------------------------


def test_every_view_is_shipped_and_every_table_has_a_raw_view() -> None:
    names = sql.view_names()
    assert {f"raw_{table}" for table in TABLES} <= set(names)
    expected = {"touchpoints", "conversions", "credits", "credit_history"}
    expected |= {"channel_performance", "identities", "spend", "rejected"}
    assert expected <= set(names)


def test_empty_layout_views_answer_with_no_rows(root: Path) -> None:
    for table in TABLES:
        assert (root / empty_file_key(table)).exists()
        assert landed(root, table) == []
    for view in sql.view_names():
        assert query(root, f"SELECT count(*) FROM {view}") == [(0,)]
    columns, _ = run_query(root, "SELECT * FROM touchpoints")
    assert columns[-2:] == ["person_key", "account_key"]


def test_ensure_layout_rewrites_a_stale_schema_file(tmp_path: Path) -> None:
    stale = pa.schema([pa.field("event_id", pa.string())])
    schema_file = tmp_path / empty_file_key("touches")
    schema_file.parent.mkdir(parents=True)
    pq.write_table(stale.empty_table(), schema_file)
    ensure_layout(tmp_path)
    assert pq.read_schema(schema_file).equals(TABLES["touches"])


def test_placeholders_expand_to_globs_under_the_readers_warehouse_root() -> None:
    rendered = render_view_sql("SELECT * FROM {table:touches} -- {table:<name>}\n;")
    assert rendered == (
        "SELECT * FROM read_parquet(coalesce(getvariable('warehouse_root'), "
        "'(warehouse_root is not set: run SET VARIABLE warehouse_root = ''<the warehouse "
        "directory or s3:// URL>'' first)') || '/touches/*/*.parquet', hive_partitioning = "
        "true, hive_types = {'touch_date': DATE}) -- {table:<name>}"
    )
    with pytest.raises(ValueError, match="nope"):
        render_view_sql("SELECT * FROM {files:nope}")


def test_no_view_names_a_path(root: Path) -> None:
    connection = duckdb.connect(str(root / "warehouse.duckdb"), read_only=True)
    try:
        bodies = connection.execute("SELECT sql FROM duckdb_views() WHERE NOT internal").fetchall()
    finally:
        connection.close()
    assert bodies and not [body for (body,) in bodies if str(root.parent) in body]


# --- landing and views with known answers ----------------------------------------------------


def test_touchpoints_dedupe_and_resolve_identity(root: Path) -> None:
    first = [
        touch("t1", 0, "Paid Search", anonymous_id="a1"),
        touch("t2", 5, "Email", anonymous_id="a1"),
    ]
    second = [
        touch("t2", 5, "Email", anonymous_id="a1"),
        touch("t3", 9, "Direct", person_id="p2", account_id="acc-x"),
    ]
    land(root, "touches", first, name="touches-1")
    land(root, "touches", second, name="touches-2")
    land(
        root,
        "identity_map",
        [
            {"id": "a1", "person_key": "P1", "account_key": None, "as_of": at(1)},
            {"id": "a1", "person_key": "P1", "account_key": "ACC1", "as_of": at(2)},
        ],
        name="identities-1",
    )
    assert query(root, "SELECT count(*) FROM raw_touches") == [(4,)]
    rows = query(
        root,
        "SELECT event_id, channel, kind, properties, person_key, account_key "
        "FROM touchpoints ORDER BY event_id",
    )
    props = '{"a":1,"url":"/t1"}'
    assert rows == [
        ("t1", "Paid Search", "visit", props, "P1", "ACC1"),
        ("t2", "Email", "visit", props.replace("t1", "t2"), "P1", "ACC1"),
        ("t3", "Direct", "visit", props.replace("t1", "t3"), "p2", "acc-x"),  # fallback
    ]
    assert query(root, "SELECT id, account_key FROM identities") == [("a1", "ACC1")]
    assert query(root, "SELECT min(time) FROM touchpoints") == [(T0,)]


def test_conversions_keep_the_earliest_event_per_conversion_id(root: Path) -> None:
    land(root, "conversions", [conversion("purchase:o1", "pixel", 1)], name="pixel")
    land(root, "conversions", [conversion("purchase:o1", "server", 0)], name="server")
    land(
        root,
        "conversions",
        [conversion("purchase:o2", "b", 3), conversion("purchase:o2", "a", 3)],
        name="tie",
    )
    rows = query(root, "SELECT conversion_id, event_id FROM conversions ORDER BY 1")
    assert rows == [("purchase:o1", "server"), ("purchase:o2", "a")]


@pytest.fixture
def credited(root: Path) -> Path:
    """purchase:o1 (value 100) re-attributed from version 1 to 2; o2 (20) and o3 (no touch) v1."""
    version_1 = [
        credit("purchase:o1", 1, "linear", "t1", "Paid Search", 0.5, 100),
        credit("purchase:o1", 1, "linear", "t2", "Email", 0.5, 100),
        credit("purchase:o1", 1, "last_touch", "t2", "Email", 1.0, 100),
        credit("purchase:o2", 1, "linear", "t3", "Direct", 1.0, 20),
        credit("purchase:o2", 1, "last_touch", "t3", "Direct", 1.0, 20),
        credit("purchase:o3", 1, "linear", None, "(none)", 1.0, 5),
    ]
    version_2 = [
        credit("purchase:o1", 2, "linear", "t1", "Paid Search", 1 / 3, 100),
        credit("purchase:o1", 2, "linear", "t2", "Email", 1 / 3, 100),
        credit("purchase:o1", 2, "linear", "t3", "Direct", 1 / 3, 100),
        credit("purchase:o1", 2, "last_touch", "t3", "Direct", 1.0, 100),
    ]
    land(root, "credits", version_1, name="credits-v1")
    land(root, "credits", version_1, name="credits-v1-again")  # at-least-once: landed twice
    land(root, "credits", version_2, name="credits-v2")
    return root


def test_credits_show_only_the_latest_version(credited: Path) -> None:
    assert query(credited, "SELECT count(*) FROM raw_credits") == [(16,)]
    rows = query(
        credited,
        "SELECT conversion_id, version, model, touch_event_id FROM credits ORDER BY ALL",
    )
    assert rows == [
        ("purchase:o1", 2, "last_touch", "t3"),
        ("purchase:o1", 2, "linear", "t1"),
        ("purchase:o1", 2, "linear", "t2"),
        ("purchase:o1", 2, "linear", "t3"),
        ("purchase:o2", 1, "last_touch", "t3"),
        ("purchase:o2", 1, "linear", "t3"),
        ("purchase:o3", 1, "linear", None),
    ]
    history = query(
        credited,
        "SELECT conversion_id, version, count(*) FROM credit_history GROUP BY ALL ORDER BY ALL",
    )
    assert history == [
        ("purchase:o1", 1, 3),
        ("purchase:o1", 2, 4),
        ("purchase:o2", 1, 2),
        ("purchase:o3", 1, 1),
    ]


def test_channel_performance_sums_current_credits(credited: Path) -> None:
    rows = query(credited, "SELECT * FROM channel_performance")
    third = 100 / 3
    expected = [
        ("b2c", "last_touch", "Direct", 2.0, 120.0, 1, "USD"),
        ("b2c", "linear", "Direct", 1 + 1 / 3, 20 + third, 1, "USD"),
        ("b2c", "linear", "Email", 1 / 3, third, 1, "USD"),
        ("b2c", "linear", "Paid Search", 1 / 3, third, 1, "USD"),
        ("b2c", "linear", "(none)", 1.0, 5.0, 0, "USD"),
    ]
    assert len(rows) == len(expected)
    for got, want in zip(rows, expected, strict=True):
        assert got[:3] == want[:3]
        assert got[3:5] == pytest.approx(want[3:5])
        assert got[5:] == want[5:]
    linear_total = query(
        credited, "SELECT sum(conversions) FROM channel_performance WHERE model = 'linear'"
    )
    assert linear_total == [
        (pytest.approx(3.0),)
    ]  # o1 + o2 + o3: additive models sum to conversions


def test_spend_keeps_the_last_landed_row_per_day_channel_campaign(root: Path) -> None:
    def spend(cost: float, landed_minutes: int) -> dict[str, Any]:
        return {
            "date": date(2024, 3, 1),
            "channel": "Paid Search",
            "campaign": "spring",
            "cost": cost,
            "impressions": 1000,
            "clicks": 10,
            "currency": "USD",
            "landed_at": at(landed_minutes),
        }

    land(root, "spend", [spend(12.0, 10)], name="a-correction")  # name sorts first, landed later
    land(root, "spend", [spend(10.0, 0)], name="b-original")
    other = {**spend(3.0, 0), "campaign": None}
    del other["landed_at"]  # land() stamps it
    land(root, "spend", [other], name="c-auto-stamped")
    rows = query(
        root, "SELECT campaign, cost, landed_at > TIMESTAMPTZ '2025-01-01' FROM spend ORDER BY cost"
    )
    assert rows == [(None, 3.0, True), ("spring", 12.0, False)]


def test_rejected_dedupes_repeated_rejections(root: Path) -> None:
    row = {"source": "events.jsonl", "position": "7", "reason": "bad json", "raw": "{oops"}
    land(root, "rejected", [{**row, "landed_at": at(5)}], name="r1")
    land(root, "rejected", [{**row, "landed_at": at(1)}], name="r2")
    assert query(root, "SELECT position, reason, landed_at FROM rejected") == [
        ("7", "bad json", at(1))
    ]


def test_identity_links_land_from_records(root: Path) -> None:
    link = IdentityLink(
        event_id="e1", time=at(0), kind=LinkKind.ANONYMOUS_PERSON, from_id="a1", to_id="p1"
    )
    land(root, "identity_links", [link.model_dump()], name="links")
    assert query(root, "SELECT kind, from_id, to_id FROM raw_identity_links") == [
        ("anonymous_person", "a1", "p1")
    ]


# --- at-least-once and crash safety ----------------------------------------------------------


def test_relanding_the_same_batch_name_does_not_duplicate(root: Path) -> None:
    batch = [touch("t1", 0, "Email", anonymous_id="a1")]
    first = land(root, "touches", batch, name="touches-0-100")
    second = land(root, "touches", batch, name="touches-0-100")
    expected = root.resolve() / "touches" / f"touch_date={T0.date()}" / "touches-0-100.parquet"
    assert first == second == expected
    assert query(root, "SELECT count(*) FROM raw_touches") == [(1,)]
    assert [info.key for info in landed(root, "touches")] == [
        f"touches/touch_date={T0.date()}/touches-0-100.parquet"
    ]


def test_zero_rows_land_nothing(root: Path) -> None:
    assert land(root, "touches", [], name="nothing") is None
    assert land(root, "credits", TABLES["credits"].empty_table(), name="nothing") is None
    assert landed(root, "touches") == [] and landed(root, "credits") == []


def test_leftover_temp_files_are_invisible(root: Path) -> None:
    land(root, "touches", [touch("t1", 0, "Email", anonymous_id="a1")], name="ok")
    day = root / "touches" / f"touch_date={T0.date()}"
    (day / "x.parquet.tmp").write_bytes(b"garbage, a writer crashed here")
    (day / ".ok.parquet.0123.tmp").write_bytes(b"PAR1 half a file")
    assert query(root, "SELECT count(*) FROM touchpoints") == [(1,)]
    assert query(root, "SELECT count(*) FROM raw_touches") == [(1,)]


def test_rebuilding_views_leaves_open_readers_undisturbed(root: Path) -> None:
    land(root, "touches", [touch("t1", 0, "Email", anonymous_id="a1")], name="one")
    reader = connect_readonly(root)
    old_inode = os.stat(root / "warehouse.duckdb").st_ino
    try:
        assert reader.execute("SELECT count(*) FROM touchpoints").fetchall() == [(1,)]
        create_views(root)
        land(root, "touches", [touch("t2", 1, "Email", anonymous_id="a1")], name="two")
        assert reader.execute("SELECT count(*) FROM touchpoints").fetchall() == [(2,)]
    finally:
        reader.close()
    assert os.stat(root / "warehouse.duckdb").st_ino != old_inode
    assert query(root, "SELECT count(*) FROM touchpoints") == [(2,)]
    assert not [p for p in root.iterdir() if p.name.startswith(".")]  # no temp files left


def test_rebuilding_views_while_another_process_reads(root: Path) -> None:
    reader_code = (
        "import sys, duckdb\n"
        "con = duckdb.connect(sys.argv[1] + '/warehouse.duckdb', read_only=True)\n"
        "con.execute('SET VARIABLE warehouse_root = ?', [sys.argv[1]])\n"
        "print(con.execute('SELECT count(*) FROM touchpoints').fetchone()[0], flush=True)\n"
        "sys.stdin.readline()\n"
        "print(con.execute('SELECT count(*) FROM touchpoints').fetchone()[0], flush=True)\n"
    )
    reader = subprocess.Popen(
        [sys.executable, "-c", reader_code, str(root)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert reader.stdin is not None and reader.stdout is not None
    try:
        assert reader.stdout.readline().strip() == "0"
        create_views(root)  # the other process still holds the old file
        land(root, "touches", [touch("t1", 0, "Email", anonymous_id="a1")], name="one")
        assert query(root, "SELECT count(*) FROM touchpoints") == [(1,)]
        reader.stdin.write("go\n")
        reader.stdin.flush()
        assert reader.stdout.readline().strip() == "1"
    finally:
        reader.communicate(timeout=30)
    assert reader.returncode == 0


# --- validation ------------------------------------------------------------------------------


def test_bad_columns_raise_a_clear_value_error(root: Path) -> None:
    good = touch("t1", 0, "Email", anonymous_id="a1")
    with pytest.raises(ValueError, match=r"unknown column.*'touches'.*colour"):
        land(root, "touches", [{**good, "colour": "red"}], name="b")
    without_channel = {k: v for k, v in good.items() if k != "channel"}
    with pytest.raises(ValueError, match=r"missing column.*channel"):
        land(root, "touches", [without_channel], name="b")
    with pytest.raises(ValueError, match=r"row 1: missing column.*channel"):
        land(root, "touches", [good, without_channel], name="b")
    with pytest.raises(ValueError, match=r"unknown column.*colour"):
        land(root, "touches", pa.table({"colour": ["red"]}), name="b")
    with pytest.raises(ValueError, match="unknown warehouse table 'touch'"):
        land(root, "touch", [good], name="b")
    with pytest.raises(ValueError, match="no timezone-aware datetime"):
        land(root, "touches", [{**good, "time": datetime(2024, 3, 1)}], name="b")
    with pytest.raises(ValueError, match=r"'channel'.*must not contain nulls"):
        land(root, "touches", [{**good, "channel": None}], name="b")
    for bad_name in ("../escape", ".hidden", "x.parquet", "00000000-empty", ""):
        with pytest.raises(ValueError, match="invalid batch name"):
            land(root, "touches", [good], name=bad_name)
    assert landed(root, "touches") == []


def test_arrow_tables_are_cast_and_naive_timestamps_refused(root: Path) -> None:
    base: dict[str, Any] = {"id": ["a1"], "person_key": ["P1"], "account_key": [None]}
    naive = pa.table({**base, "as_of": pa.array([datetime(2024, 1, 1)], pa.timestamp("ns"))})
    with pytest.raises(ValueError, match="without a time zone"):
        land(root, "identity_map", naive, name="naive")
    aware = pa.table({**base, "as_of": pa.array([at(0)], pa.timestamp("ns", tz="Europe/Paris"))})
    path = land(
        root,
        "identity_map",
        aware.select(["as_of", "account_key", "person_key", "id"]),
        name="aware",
    )
    assert path is not None and pq.read_schema(path).equals(TABLES["identity_map"])
    assert query(root, "SELECT id, as_of FROM identities") == [("a1", T0)]


# --- query formats ---------------------------------------------------------------------------


def test_query_formats(credited: Path) -> None:
    columns, rows = run_query(
        credited,
        "SELECT conversion_id, touch_event_id, credit, conversion_time FROM credits "
        "WHERE conversion_id <> 'purchase:o1' ORDER BY model, touch_event_id NULLS FIRST",
    )
    assert columns == ["conversion_id", "touch_event_id", "credit", "conversion_time"]

    table = format_result(columns, rows, "table")
    assert "conversion_id" in table and "purchase:o3" in table and "NULL" in table
    assert "2024-03-01T10:00:00+00:00" in table

    assert format_result(columns, rows, "csv").splitlines() == [
        "conversion_id,touch_event_id,credit,conversion_time",
        "purchase:o2,t3,1.0,2024-03-01T10:00:00+00:00",
        "purchase:o3,,1.0,2024-03-01T10:00:00+00:00",
        "purchase:o2,t3,1.0,2024-03-01T10:00:00+00:00",
    ]
    assert orjson.loads(format_result(columns, rows, "json"))[1] == {
        "conversion_id": "purchase:o3",
        "touch_event_id": None,
        "credit": 1.0,
        "conversion_time": "2024-03-01T10:00:00+00:00",
    }
    decimal_row = run_query(credited, "SELECT 1.5 AS d, INTERVAL 1 MINUTE AS i")
    assert orjson.loads(format_result(*decimal_row, "json")) == [{"d": 1.5, "i": 60.0}]
    with pytest.raises(ValueError, match="unknown output format"):
        format_result(columns, rows, "xml")  # type: ignore[arg-type]


def test_a_missing_warehouse_names_the_command_that_makes_one(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError) as raised:
        connect_readonly(missing)
    message = str(raised.value)
    assert f"attribution replay EVENTS.jsonl --warehouse {missing}" in message
    assert f"attribution worker --warehouse {missing}" in message
    assert "(" not in message.split(":", 1)[1]  # a command to run, no Python call
    with pytest.raises(FileNotFoundError, match=f"`attribution migrate --warehouse {tmp_path}`"):
        connect_readonly(tmp_path)  # a directory without the views file
    done = subprocess.run([sys.executable, "-m", "cli.main", "sql", "--warehouse", str(missing),
                           "SELECT 1"], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 1
    assert "attribution replay" in done.stderr and "create_views" not in done.stderr


cells = st.one_of(st.none(), st.integers(), st.floats(allow_nan=False), st.text())


@settings(deadline=None)
@given(st.lists(st.lists(cells, min_size=3, max_size=3), max_size=6))
def test_csv_round_trips_every_cell(rows: list[list[Any]]) -> None:
    text = format_result(["a", "b", "c"], [tuple(row) for row in rows], "csv")
    parsed = list(csv.reader(io.StringIO(text, newline="")))
    assert parsed[0] == ["a", "b", "c"]
    assert parsed[1:] == [["" if cell is None else str(cell) for cell in row] for row in rows]


@settings(deadline=None)
@given(st.lists(st.lists(cells, min_size=2, max_size=2), max_size=6))
def test_json_round_trips_every_cell(rows: list[list[Any]]) -> None:
    text = format_result(["a", "b"], [tuple(row) for row in rows], "json")

    def expected(cell: Any) -> Any:
        if isinstance(cell, float) and math.isinf(cell):
            return None  # JSON has no infinity
        too_big = isinstance(cell, int) and not -(2**63) <= cell < 2**64
        return str(cell) if too_big else cell

    assert orjson.loads(text) == [{"a": expected(a), "b": expected(b)} for a, b in rows]


@settings(deadline=None, max_examples=15)
@given(st.lists(st.lists(st.integers(0, 9), max_size=8), min_size=1, max_size=4))
def test_touchpoints_hold_each_event_once_however_batches_overlap(batches: list[list[int]]) -> None:
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        create_views(root)
        for index, ids in enumerate(batches):
            rows = [touch(f"t{i}", i, "Email", anonymous_id="a") for i in ids]
            land(root, "touches", rows, name=f"batch-{index}")
        expected = sorted({f"t{i}" for ids in batches for i in ids})
        assert [
            r[0] for r in query(root, "SELECT event_id FROM touchpoints ORDER BY 1")
        ] == expected


# --- volume ----------------------------------------------------------------------------------


def million_credit_rows(count: int) -> pa.Table:
    numbers = pa.array(range(count), pa.int64())
    ids = pc.cast(numbers, pa.string())
    micros = pc.multiply(numbers, 1_000_000)
    stamp = pa.timestamp("us", tz="UTC")

    def repeat(value: Any, type_: pa.DataType) -> pa.Array:
        return pa.repeat(pa.scalar(value, type_), count)

    return pa.table(
        {
            "conversion_id": pc.binary_join_element_wise(
                "purchase:", pc.divide(numbers, 4).cast(pa.string()), ""
            ),
            "conversion_kind": repeat("purchase", pa.string()),
            "journey_key": ids,
            "policy": repeat("b2c", pa.string()),
            "model": repeat("linear", pa.string()),
            "touch_event_id": ids,
            "touch_time": micros.cast(stamp),
            "channel": pc.binary_join_element_wise(
                "channel-", pc.remainder(numbers, 17).cast(pa.string()), ""
            ),
            "campaign": repeat(None, pa.string()),
            "credit": repeat(0.25, pa.float64()),
            "credited_value": repeat(2.5, pa.float64()),
            "currency": repeat("USD", pa.string()),
            "conversion_time": micros.cast(stamp),
            "version": repeat(1, pa.int64()),
            "reason": repeat("initial", pa.string()),
        }
    )


def test_landing_many_credit_rows_from_an_arrow_table(root: Path) -> None:
    # Volume timings live in bench/; this checks the bulk path is correct.
    path = land(root, "credits", million_credit_rows(100_000), name="bulk")
    performance = query(root, "SELECT sum(conversions), count(*) FROM channel_performance")
    assert path is not None
    assert performance == [(pytest.approx(25_000.0), 17)]
