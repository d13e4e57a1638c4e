"""A warehouse copied, moved or mounted elsewhere queries its own files and never another's:
through `attribution sql`, through the stock DuckDB CLI and through stock Python DuckDB,
each opened the way the README documents."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from attribution.batch import attribute_events
from tests.test_batch import CONFIG, RULES
from traffic.generate import TrafficSpec, generate_events
from warehouse.landing import land
from warehouse.replay import land_result
from warehouse.views import create_views

DUCKDB_CLI = shutil.which("duckdb", path=str(Path(sys.executable).parent)) or shutil.which(
    "duckdb")
COUNT = "SELECT count(*) FROM touchpoints"


def build(root: Path) -> int:
    """A small real warehouse; its number of touches."""
    events = generate_events(TrafficSpec(seed=5, b2c_visitors=40, b2b_accounts=2, days=10))
    result = attribute_events(((str(i), e) for i, e in enumerate(events)), CONFIG, RULES)
    land_result(root, result, "relocation")
    create_views(root)
    return len({t.event_id for t in result.touches})


def attribution_sql(root: Path, query: str, cwd: Path) -> str:
    done = subprocess.run([sys.executable, "-m", "cli.main", "sql", "--format", "csv",
                           "--warehouse", str(root), query], capture_output=True, text=True,
                          timeout=120, check=False, cwd=cwd,
                          env={**os.environ, "PYTHONPATH": str(Path.cwd())})
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()[1]


def cli(root: Path, query: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The DuckDB CLI as the README says to open a warehouse."""
    assert DUCKDB_CLI is not None, "the duckdb CLI (duckdb-cli, a dev dependency) is missing"
    return subprocess.run(
        [DUCKDB_CLI, "-readonly", "-csv", "-noheader", "-cmd",
         f"SET VARIABLE warehouse_root = '{root}'", str(root / "warehouse.duckdb"),
         "-c", query], capture_output=True, text=True, timeout=60, check=False, cwd=cwd)


def python_client(root: Path, query: str) -> int:
    """Stock Python DuckDB as the README says to open a warehouse."""
    connection = duckdb.connect(str(root / "warehouse.duckdb"), read_only=True)
    try:
        connection.execute("SET VARIABLE warehouse_root = ?", [str(root)])
        row = connection.execute(query).fetchone()
    finally:
        connection.close()
    assert row is not None
    return int(row[0])


@pytest.fixture
def original(tmp_path: Path) -> tuple[Path, int]:
    root = tmp_path / "original"
    return root, build(root)


def test_a_copy_queries_its_own_files_after_the_original_is_gone(
        original: tuple[Path, int], tmp_path: Path) -> None:
    source, touches = original
    copy = tmp_path / "elsewhere" / "copy"
    shutil.copytree(source, copy)
    shutil.rmtree(source)
    assert attribution_sql(copy, COUNT, cwd=tmp_path) == str(touches)
    assert python_client(copy, COUNT) == touches
    done = cli(copy, COUNT, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(touches)


def test_a_copy_never_reads_the_originals_files(original: tuple[Path, int],
                                                tmp_path: Path) -> None:
    source, touches = original
    copy = tmp_path / "copy"
    shutil.copytree(source, copy)
    # The original moves on: one more touch lands there, not in the copy.
    extra = {"event_id": "only-in-the-original", "time": _a_time(source), "anonymous_id": "x",
             "person_id": None, "account_id": None, "channel": "Email", "source": None,
             "medium": None, "campaign": None, "kind": "page", "properties": "{}"}
    land(source, "touches", [extra], name="extra")
    assert attribution_sql(source, COUNT, cwd=source) == str(touches + 1)
    for cwd in (tmp_path, source):  # even from inside the original
        assert attribution_sql(copy, COUNT, cwd=cwd) == str(touches)
        done = cli(copy, COUNT, cwd=cwd)
        assert done.stdout.strip() == str(touches), done.stderr
    assert python_client(copy, COUNT) == touches


def test_a_moved_warehouse_works_where_it_now_is(original: tuple[Path, int],
                                                 tmp_path: Path) -> None:
    source, touches = original
    moved = tmp_path / "mounted" / "warehouse"
    moved.parent.mkdir()
    source.rename(moved)
    assert attribution_sql(moved, COUNT, cwd=tmp_path) == str(touches)
    assert python_client(moved, COUNT) == touches


def test_without_the_root_variable_a_stock_client_refuses(original: tuple[Path, int],
                                                          tmp_path: Path) -> None:
    source, _ = original
    connection = duckdb.connect(str(source / "warehouse.duckdb"), read_only=True)
    try:
        with pytest.raises(duckdb.IOException, match="SET VARIABLE warehouse_root"):
            connection.execute(COUNT)
    finally:
        connection.close()
    assert DUCKDB_CLI is not None
    done = subprocess.run([DUCKDB_CLI, "-readonly", str(source / "warehouse.duckdb"), "-c",
                           COUNT], capture_output=True, text=True, timeout=60, check=False,
                          cwd=source)  # even with the warehouse's own tables under the cwd
    assert "SET VARIABLE warehouse_root" in done.stdout + done.stderr


def _a_time(root: Path) -> object:
    connection = duckdb.connect()
    try:
        row = connection.execute(
            "SELECT min(time) FROM read_parquet(? || '/touches/*/*.parquet')",
            [str(root)]).fetchone()
    finally:
        connection.close()
    assert row is not None
    return row[0]
