"""The warehouse on a real S3 API (moto's server on 127.0.0.1, see tests/s3server.py):
replay, sql, every view, spend, compaction, erasure, the cross-host lock, and uploads
killed midway, each against the same work done in a local directory."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

import sql
from tests.s3server import S3Server
from tests.test_batch import B2C_JOURNEY
from tests.test_compact import every_view, landed_in_slices
from tests.test_erase import B2B, OTHER, PERSON, REJECTED, build, mentions
from tests.test_partitions import DAY0, land_over_days, landed_ids
from traffic.generate import TrafficSpec, write_jsonl
from warehouse.compact import compact
from warehouse.erase import Audit, Subject, erase_warehouse, subject_ids
from warehouse.layout import TABLES, landed
from warehouse.lock import LOCK_FILE, LockLost, ObjectLease, maintenance_lock
from warehouse.query import run_query
from warehouse.s3 import S3Storage
from warehouse.storage import storage_for


def attribution(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cli.main", *args], capture_output=True,
                          text=True, timeout=300, check=False, env=env)


S3_VIEWS = [*(f"raw_{table}" for table in TABLES), "touchpoints", "conversions", "credits",
            "channel_performance", "channel_performance_daily", "identities", "spend"]
"""Every table's rows and the views over them: all ~30 views would re-read each table's files
many times over, and the local tests cover the views' logic."""


def views(root: Any, exclude: tuple[str, ...] = ()) -> dict[str, list[tuple[Any, ...]]]:
    return {view: rows for view, rows in every_view(root, S3_VIEWS).items()
            if view not in exclude}


def objects(root: str) -> list[str]:
    return [info.key for info in storage_for(root).list_files("")]


SMALL = TrafficSpec(seed=3, b2c_visitors=40, b2b_accounts=1, days=2)


@pytest.fixture(scope="module")
def events(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("events") / "events.jsonl"
    write_jsonl(TrafficSpec(seed=11, b2c_visitors=80, b2b_accounts=2, days=5), path)
    return path


def test_replay_sql_and_every_view_equal_a_local_warehouse(
        events: Path, s3_root: str, tmp_path: Path) -> None:
    local = tmp_path / "local"
    for where in (str(local), s3_root):
        done = attribution("replay", str(events), "--warehouse", where)
        assert done.returncode == 0, done.stderr
    assert views(s3_root) == views(local)
    shipped = run_query(s3_root, "SELECT view_name FROM duckdb_views() WHERE NOT internal")[1]
    assert {name for (name,) in shipped} == set(sql.view_names())  # all bound on S3
    done = attribution("sql", "--warehouse", s3_root, "--format", "csv",
                       "SELECT count(*) FROM credits")
    assert done.returncode == 0, done.stderr
    expected = run_query(local, "SELECT count(*) FROM credits")[1][0][0]
    assert done.stdout.splitlines()[1] == str(expected)
    keys = objects(s3_root)
    assert "warehouse.duckdb" in keys
    assert any(k.startswith("credits/conversion_date=20") for k in keys)
    assert not [k for k in keys if k.endswith(".tmp")]


def test_spend_kpis_and_report_read_object_storage(s3_root: str, tmp_path: Path) -> None:
    spend = tmp_path / "spend.csv"
    spend.write_text("date,channel,campaign,cost,currency,impressions,clicks\n"
                     "2026-01-02,Paid Search,brand,12.5,USD,100,7\n")
    done = attribution("spend", "import", str(spend), "--warehouse", s3_root)
    assert done.returncode == 0, done.stderr
    assert run_query(s3_root, "SELECT channel, cost FROM spend")[1] == [("Paid Search", 12.5)]
    assert attribution("kpis", "--warehouse", s3_root).returncode == 0
    out = tmp_path / "report.html"
    done = attribution("report", "--warehouse", s3_root, "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert s3_root in out.read_text()


def test_the_endpoint_can_come_from_the_warehouse_config_section(
        events: Path, s3_server: S3Server, tmp_path: Path) -> None:
    bucket = s3_server.new_bucket()
    config = tmp_path / "config.toml"
    config.write_text(f'[warehouse]\npath = "s3://{bucket}/from-config"\n'
                      f'endpoint_url = "{s3_server.endpoint}"\n')
    env = {k: v for k, v in os.environ.items() if k != "AWS_ENDPOINT_URL"}
    done = attribution("replay", str(events), "--config", str(config), env=env)
    assert done.returncode == 0, done.stderr
    done = attribution("sql", "--config", str(config), "--format", "csv",
                       "SELECT count(*) > 0 FROM touchpoints", env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[1] == "True"


def test_compaction_on_object_storage_changes_no_answer(s3_root: str) -> None:
    landed_in_slices(s3_root, SMALL)  # type: ignore[arg-type]
    before = views(s3_root)
    count = len(objects(s3_root))
    report = compact(s3_root)
    assert report.changed and not report.unreadable
    assert views(s3_root) == before
    assert len(objects(s3_root)) == count - sum(report.files_merged.values()) + sum(
        report.files_written.values())
    assert LOCK_FILE not in objects(s3_root)  # released


def test_erasure_on_object_storage_equals_a_local_one(s3_root: str, tmp_path: Path) -> None:
    local = tmp_path / "local"
    for root in (local, s3_root):
        build(root, B2C_JOURNEY + REJECTED + OTHER, B2B)  # type: ignore[arg-type]
    for root in (str(local), s3_root):
        done = attribution("erase", "--user-id", "u-1", "--warehouse", root)
        assert done.returncode == 0, done.stderr
    audit = ("erasures", "raw_erasures")  # ids and times of the two erasures differ
    after = views(s3_root, exclude=audit)
    assert after == views(local, exclude=audit)
    assert not [row for rows in after.values() for row in rows if mentions(repr(row), PERSON)
                and "erasure" not in repr(row)]
    assert not [k for k in objects(s3_root) if k.startswith(".erasing/")]


def test_a_crashed_erasure_on_object_storage_is_completed_by_the_next_job(
        s3_root: str) -> None:
    build(s3_root, B2C_JOURNEY + REJECTED + OTHER, B2B)  # type: ignore[arg-type]
    ids = subject_ids(s3_root, Subject.USER_ID, "u-1")

    class Crash(BaseException):
        pass

    swaps = 0

    def crash_midway(step: str) -> None:
        nonlocal swaps
        swaps += step.startswith("swap ")
        if swaps == 3:
            raise Crash(step)

    with pytest.raises(Crash):
        erase_warehouse(s3_root, ids, Audit("crashed", Subject.USER_ID, len(ids), False),
                        crash_midway)
    assert any(k.startswith(".erasing/") for k in objects(s3_root))
    compact(s3_root)  # any maintenance job finishes it first
    assert not any(k.startswith(".erasing/") for k in objects(s3_root))
    assert run_query(s3_root, "SELECT erasure_id FROM erasures")[1] == [("crashed",)]
    assert not [r for rs in views(s3_root).values() for r in rs if mentions(repr(r), PERSON)]


# --- the cross-host lock ----------------------------------------------------------------------

HOLDER = """
import sys, time
from warehouse.lock import maintenance_lock, set_lease
set_lease(float(sys.argv[2]))
with maintenance_lock(sys.argv[1]):
    print("held", flush=True)
    time.sleep(600)
"""

COUNTER = """
import sys
from warehouse.lock import maintenance_lock, set_lease
from warehouse.storage import storage_for
set_lease(30.0)
storage = storage_for(sys.argv[1])
for _ in range(int(sys.argv[2])):
    with maintenance_lock(sys.argv[1]) as lease:
        try:
            value = int(storage.read_bytes("counter"))
        except FileNotFoundError:
            value = 0
        lease.check()
        storage.write_bytes("counter", str(value + 1).encode())
"""


def test_the_lock_lets_one_host_at_a_time_through(s3_root: str) -> None:
    """Three processes each add 1 to a counter object five times, read-modify-write under
    the lock: any overlap would lose an increment."""
    processes = [subprocess.Popen([sys.executable, "-c", COUNTER, s3_root, "5"],
                                  stderr=subprocess.PIPE) for _ in range(3)]
    for process in processes:
        _, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, stderr.decode()
    assert storage_for(s3_root).read_bytes("counter") == b"15"


def test_a_dead_holders_lease_is_taken_over_after_it_expires(s3_root: str) -> None:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, s3_root, "3"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        finished = threading.Event()

        def run_compaction() -> None:
            compact(s3_root)
            finished.set()

        worker = threading.Thread(target=run_compaction, daemon=True)
        worker.start()
        assert not finished.wait(5)  # the live holder renews its 3 s lease: compaction waits
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        killed = time.monotonic()
        assert finished.wait(60)  # once a whole lease passes without renewal, it goes on
        assert time.monotonic() - killed >= 2.0
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()


def test_a_holder_that_lost_its_lease_stops_before_changing_anything(s3_root: str) -> None:
    storage = storage_for(s3_root)
    assert isinstance(storage, S3Storage)
    paused = ObjectLease(storage, lease_seconds=1.0)
    paused.acquire()
    paused._stop.set()  # as if the process were paused: it renews no more
    assert paused._renewer is not None
    paused._renewer.join()
    with maintenance_lock(s3_root) as lease:  # another host takes over after a lease
        lease.check()
        with pytest.raises(LockLost):
            paused.check()
    paused.release()  # releasing a lost lease leaves the other host's lock alone


# --- uploads killed midway -------------------------------------------------------------------

UPLOADER = """
import sys
import pyarrow as pa
from warehouse.landing import land
from warehouse.layout import TABLES
rows = 400_000
table = pa.table({"source": ["kill-test"] * rows, "position": [str(i) for i in range(rows)],
                  "reason": ["a reason that makes the file larger"] * rows,
                  "raw": [f"{{\\"payload\\": \\"{i:0>64}\\"}}" for i in range(rows)]})
index = 0
while True:
    land(sys.argv[1], "rejected", table, name=f"batch-{index}")
    print(index, flush=True)
    index += 1
"""


def test_a_writer_killed_mid_upload_leaves_no_partial_object(s3_root: str) -> None:
    s3 = boto3.client("s3")
    for delay in (0.05, 0.3, 0.8):
        writer = subprocess.Popen([sys.executable, "-c", UPLOADER, s3_root],
                                  stdout=subprocess.PIPE, text=True)
        assert writer.stdout is not None
        writer.stdout.readline()  # one batch is complete: the next upload is under way
        time.sleep(delay)
        writer.send_signal(signal.SIGKILL)
        writer.wait()
    storage = storage_for(s3_root)
    assert isinstance(storage, S3Storage)
    files = landed(storage, "rejected")
    assert len(files) >= 3
    for info in files:  # every visible object is a whole, readable file
        assert storage.parquet_rows(info.key) == 400_000, info.key
    uploads = s3.list_multipart_uploads(Bucket=storage.bucket).get("Uploads", [])
    assert uploads == []  # single PUTs: nothing half-assembled either
    assert set(TABLES) >= {"rejected"}


def test_a_flush_over_many_days_lands_every_object(s3_root: str) -> None:
    root = f"{s3_root}/many-days"
    assert land_over_days(root, 12) == [("touches", 12, 12), ("credits", 12, 12)]
    assert landed_ids(root, "credits", "conversion_id") == {
        f"c{i}": (DAY0 + timedelta(days=i)).date() for i in range(12)}


# --- stock readers and the other commands --------------------------------------------------


def test_polars_and_pyarrow_read_the_bucket_as_the_readme_shows(
        s3_root: str, s3_server: S3Server) -> None:
    import polars as pl
    import pyarrow as pa
    import pyarrow.dataset as ds
    import pyarrow.fs as pafs

    from tests.test_partitions import DAY0, build_credits

    build_credits(s3_root)
    landed_rows = run_query(s3_root, "SELECT count(*) FROM raw_credits")[1][0][0]
    credits = pl.scan_parquet(f"{s3_root}/credits/*/*.parquet", hive_partitioning=True,
                              storage_options={"aws_endpoint_url": s3_server.endpoint,
                                               "aws_allow_http": "true"})
    assert credits.collect().height == landed_rows
    one_day = credits.filter(pl.col("conversion_date") == DAY0.date()).collect()
    assert set(one_day["conversion_id"]) == {"c1"}

    bucket_and_prefix = s3_root.removeprefix("s3://")
    dataset = ds.dataset(f"{bucket_and_prefix}/credits", format="parquet",
                         filesystem=pafs.S3FileSystem(endpoint_override=s3_server.endpoint),
                         partitioning=ds.partitioning(
                             pa.schema([("conversion_date", pa.date32())]), flavor="hive"))
    assert dataset.to_table().num_rows == landed_rows
    day = dataset.to_table(filter=ds.field("conversion_date") == DAY0.date())
    assert set(day.column("conversion_id").to_pylist()) == {"c1"}


def test_python_duckdb_reads_the_bucket_as_the_readme_shows(
        s3_root: str, s3_server: S3Server, tmp_path: Path) -> None:
    import duckdb
    import s3fs

    from tests.test_partitions import build_credits

    build_credits(s3_root)
    fs = s3fs.S3FileSystem(endpoint_url=s3_server.endpoint)
    fs.get(f"{s3_root.removeprefix('s3://')}/warehouse.duckdb", str(tmp_path / "w.duckdb"))
    con = duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True)
    try:
        con.register_filesystem(fs)
        con.execute(f"SET VARIABLE warehouse_root = '{s3_root}'")
        rows = con.execute("SELECT channel, conversions FROM channel_performance "
                           "ORDER BY channel").fetchall()
    finally:
        con.close()
    assert rows == run_query(s3_root, "SELECT channel, conversions FROM channel_performance "
                                      "ORDER BY channel")[1] == [
        ("Direct", 1.0), ("Email", 1.0), ("Paid Search", 1.0)]


def test_reattribute_datadriven_and_status_work_on_object_storage(
        events: Path, s3_root: str, tmp_path: Path) -> None:
    from streams.health import OPS_DIR
    from streams.status import announced_workers, last_landed

    assert attribution("replay", str(events), "--warehouse", s3_root).returncode == 0
    done = attribution("datadriven", "--warehouse", s3_root, "--model", "markov")
    assert done.returncode == 0, done.stderr
    models = {m for (m,) in run_query(s3_root, "SELECT DISTINCT model FROM credits")[1]}
    assert "markov_o1" in models
    config = tmp_path / "new.toml"
    shipped = (Path(__file__).parent.parent / "attribution" / "defaults.toml").read_text()
    config.write_text(shipped.replace('lookback = { visit = "7d", click = "7d"',
                                      'lookback = { visit = "1h", click = "1h"'))
    done = attribution("reattribute", "--warehouse", s3_root, "--config", str(config))
    assert done.returncode == 0, done.stderr
    reasons = {r for (r,) in run_query(s3_root, "SELECT DISTINCT reason FROM credit_history")[1]}
    assert "reattribution" in reasons
    root = Path(s3_root)  # as typer hands --warehouse s3://... to `attribution status`
    newest = last_landed(root)
    assert newest is not None and abs(time.time() - newest.timestamp()) < 600
    storage_for(s3_root).write_bytes(f"{OPS_DIR}/gone-1.json", b'{"url": "http://127.0.0.1:9"}')
    assert announced_workers(root, timeout=0.5) == []  # announced, but not answering

