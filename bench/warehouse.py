"""Date partitions at scale: a one-day channel_performance over a large credits table, pruned
by the partition filter against a full scan, on a local directory and on an S3 server.

    .venv/bin/python -m bench warehouse [--scale small|medium|large]

Builds CREDIT_ROWS (at least 10 million) synthetic credit rows over DAYS days, with the
shape the engine lands (several models and touches per conversion, a tenth of the
conversions re-credited as version 2), lands them with ``warehouse.landing.land`` (one
file per batch and day, as compaction leaves them), locally and into moto's S3 server on
127.0.0.1 (started and stopped here), then times, each the median of REPEATS runs on a
fresh connection (as `attribution sql` opens one):

- pruned: ``channel_performance_daily WHERE conversion_date = <day>``: the filter reaches
  the Parquet scan below the latest-version window, so one day's files are read;
- full scan: the same one-day answer filtered on ``conversion_time``, which cannot pass
  the window: every file is read, as every query did before the date partitions;
- all days: ``channel_performance`` over the whole table, for scale.

Both one-day queries must return the same rows.
"""

from __future__ import annotations

import os
import shutil
import statistics
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa

from bench.common import WORK, Scale, load_line, machine, machine_line, say, table
from bench.common import write_section as write

CREDIT_ROWS = {"small": 10_000_000, "medium": 10_000_000, "large": 30_000_000}
DAYS = 90
BATCHES_PER_DAY = 4
REPEATS = 3
FIRST_DAY = date(2026, 6, 1)
MODELS = ("first_touch", "last_touch", "linear", "time_decay", "position_based",
          "participation")
CHANNELS = ("Paid Search", "Organic Search", "Paid Social", "Organic Social", "Email",
            "Display", "Affiliates", "Referral", "Direct", "Video", "SMS", "Audio")
RECREDITED = 0.1


def day_batches(day: date, rows: int, seed: int) -> list[pa.Table]:
    """About ``rows`` credit rows of conversions on ``day``, in BATCHES_PER_DAY tables; the
    last one holds the version-2 re-credits."""
    rng = np.random.default_rng(seed)
    touches_per_row = 4.0 * len(MODELS)
    conversions = max(1, int(rows / touches_per_row / (1 + RECREDITED)))
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    seconds = rng.integers(0, 86_400, conversions)
    values = np.round(rng.gamma(2.0, 40.0, conversions), 2)
    touches = rng.integers(1, 8, conversions)
    ids = np.array([f"purchase:{day:%Y%m%d}-{i}" for i in range(conversions)], dtype=object)
    chunks = np.array_split(np.arange(conversions), BATCHES_PER_DAY - 1)
    tables = [_credits(rng, ids[c], seconds[c], values[c], touches[c], start, 1) for c in chunks]
    again = np.flatnonzero(rng.random(conversions) < RECREDITED)
    tables.append(_credits(rng, ids[again], seconds[again], values[again], touches[again],
                           start, 2))
    return tables


def _credits(rng: np.random.Generator, ids: Any, seconds: Any, values: Any, touches: Any,
             start: datetime, version: int) -> pa.Table:
    from warehouse.layout import TABLES

    per_conversion = touches * len(MODELS)
    conversion = np.repeat(np.arange(len(ids)), per_conversion)
    n = len(conversion)
    k = touches[conversion]
    credit = 1.0 / k
    model = np.tile(np.repeat(np.arange(len(MODELS)), 1), n // len(MODELS) + 1)[:n]
    channel = rng.integers(0, len(CHANNELS), n)
    epoch = int(start.timestamp() * 1_000_000)
    conversion_us = epoch + seconds[conversion].astype(np.int64) * 1_000_000
    touch_us = conversion_us - rng.integers(0, 14 * 86_400, n).astype(np.int64) * 1_000_000
    timestamp = TABLES["credits"].field("conversion_time").type
    columns = {
        "conversion_id": pa.array(ids[conversion], pa.string()),
        "conversion_kind": pa.array(np.full(n, "purchase", dtype=object), pa.string()),
        "journey_key": pa.array(np.char.add("person:", conversion.astype(str)), pa.string()),
        "policy": pa.array(np.full(n, "b2c", dtype=object), pa.string()),
        "model": pa.array(np.array(MODELS, dtype=object)[model], pa.string()),
        "touch_event_id": pa.array(np.char.add(f"t{version}-", np.arange(n).astype(str)),
                                   pa.string()),
        "touch_time": pa.array(touch_us, timestamp),
        "channel": pa.array(np.array(CHANNELS, dtype=object)[channel], pa.string()),
        "campaign": pa.nulls(n, pa.string()),
        "credit": pa.array(credit, pa.float64()),
        "credited_value": pa.array(credit * values[conversion], pa.float64()),
        "currency": pa.array(np.full(n, "USD", dtype=object), pa.string()),
        "conversion_time": pa.array(conversion_us, timestamp),
        "version": pa.array(np.full(n, version, dtype=np.int64)),
        "reason": pa.array(np.full(n, "initial" if version == 1 else "late_touch",
                                   dtype=object), pa.string()),
    }
    return pa.table(columns, schema=TABLES["credits"])


def build(root: str, rows: int) -> tuple[int, int, float]:
    """Land the synthetic credits under ``root``: (rows, files, seconds)."""
    from warehouse.landing import ensure_layout, land_batch
    from warehouse.views import create_views

    ensure_layout(root)
    per_day = int(rows / DAYS * 1.02)  # the generator's row count varies: stay above rows
    landed_rows = files = 0
    began = time.perf_counter()
    for offset in range(DAYS):
        day = FIRST_DAY + timedelta(days=offset)
        for index, batch in enumerate(day_batches(day, per_day, seed=offset)):
            landed = land_batch(root, "credits", batch, name=f"bench-{day:%Y%m%d}-{index}")
            if landed is not None:
                landed_rows += landed.rows
                files += len(landed.files)
    seconds = time.perf_counter() - began
    create_views(root)
    return landed_rows, files, seconds


def queries(day: date) -> dict[str, str]:
    following = day + timedelta(days=1)
    return {
        "pruned (conversion_date = day)":
            "SELECT policy, model, channel, round(conversions, 6), round(credited_value, 4) "
            f"FROM channel_performance_daily WHERE conversion_date = DATE '{day}' "
            "ORDER BY ALL",
        "full scan (conversion_time in day)":
            "SELECT policy, model, channel, round(fsum(credit), 6), "
            "round(fsum(credited_value), 4) FROM credits "
            f"WHERE conversion_time >= TIMESTAMPTZ '{day} 00:00:00+00' "
            f"AND conversion_time < TIMESTAMPTZ '{following} 00:00:00+00' "
            "GROUP BY ALL ORDER BY ALL",
        "all days (channel_performance)": "SELECT * FROM channel_performance",
    }


def timed(run: Callable[[], Any]) -> tuple[float, Any]:
    seconds = []
    result = None
    for _ in range(REPEATS):
        began = time.perf_counter()
        result = run()
        seconds.append(time.perf_counter() - began)
    return statistics.median(seconds), result


def measure(root: str, where: str) -> list[list[Any]]:
    from warehouse.query import connect_readonly, run_query

    day = FIRST_DAY + timedelta(days=DAYS // 2)
    answers: dict[str, Any] = {}
    rows = []
    for label, sql in queries(day).items():
        seconds, result = timed(lambda sql=sql: run_query(root, sql)[1])
        answers[label] = result
        connection = connect_readonly(root)
        try:
            plan = "\n".join(str(r[1]) for r in connection.execute(
                "EXPLAIN ANALYZE " + sql).fetchall())
        finally:
            connection.close()
        files = _files_read(plan)
        rows.append([where, label, files, seconds])
        say(f"{where:>6} {label:<36} files {files:>9}  {seconds:8.2f} s")
    pruned, full = (answers[k] for k in list(answers)[:2])
    if pruned != full:
        raise AssertionError(f"{where}: the pruned and the full-scan answers differ")
    return rows


def _files_read(plan: str) -> str:
    import re

    scanned = re.findall(r"Scanning Files: (\d+)/(\d+)", plan)
    if scanned:
        return f"{sum(int(a) for a, _ in scanned)}/{sum(int(b) for _, b in scanned)}"
    total = re.findall(r"Total Files Read: (\d+)", plan)
    return f"{sum(int(t) for t in total)} (all)" if total else "?"


def run(scale: Scale) -> None:
    from tests.s3server import ENVIRONMENT, start_server

    rows = CREDIT_ROWS[scale.name]
    local = WORK / "warehouse-bench"
    shutil.rmtree(local, ignore_errors=True)
    results: list[list[Any]] = []
    built: list[list[Any]] = []
    landed, files, seconds = build(str(local), rows)
    size = sum(p.stat().st_size for p in local.rglob("*.parquet"))
    built.append(["local", landed, files, size / 1e6, seconds, landed / seconds])
    say(f"local: {landed:,} rows in {files} files ({size / 1e6:.0f} MB) in {seconds:.1f}s")
    results += measure(str(local), "local")

    server = start_server()
    saved = {k: os.environ.get(k) for k in [*ENVIRONMENT, "AWS_ENDPOINT_URL"]}
    os.environ.update(ENVIRONMENT, AWS_ENDPOINT_URL=server.endpoint)
    try:
        bucket = server.new_bucket()
        remote = f"s3://{bucket}/warehouse"
        landed, files, seconds = build(remote, rows)
        built.append(["S3 (moto server)", landed, files, size / 1e6, seconds, landed / seconds])
        say(f"S3: {landed:,} rows in {files} files in {seconds:.1f}s")
        results += measure(remote, "S3")
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        server.process.terminate()
        server.process.wait(timeout=30)
        shutil.rmtree(local, ignore_errors=True)

    speedups = []
    for where in ("local", "S3"):
        timings = {r[1]: r[3] for r in results if r[0] == where}
        pruned, full = list(timings.values())[:2]
        speedups.append(f"{where} {full / pruned:,.0f}x")
    body = "\n".join([
        machine_line(machine(), scale.name) + f" {load_line()}",
        "",
        f"{rows:,}+ synthetic credit rows over {DAYS} days (`bench/warehouse.py`): "
        f"{len(MODELS)} models, 1-7 touches per conversion, {RECREDITED:.0%} of conversions "
        f"re-credited as version 2; {BATCHES_PER_DAY} files per day as compaction leaves "
        "them. S3 is moto's server on 127.0.0.1 (in-process Python: every request costs "
        "more than on MinIO or AWS, so its absolute times are an upper bound).",
        "",
        table(["warehouse", "rows landed", "files", "MB (Parquet, zstd)", "land seconds",
               "rows/s"], built),
        "",
        "Each query: median of 3 runs, each on a fresh connection as `attribution sql` "
        "opens one (on S3 that includes fetching the views file). Files read from "
        "EXPLAIN ANALYZE (`Scanning Files: read/total` when the partition filter prunes).",
        "",
        table(["warehouse", "query", "files read", "seconds"], results),
        "",
        f"One day against a full scan: {', '.join(speedups)} faster, same rows.",
    ])
    write("warehouse", "Warehouse partitions and object storage (`python -m bench warehouse`)",
          body)
