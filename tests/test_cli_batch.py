"""The batch commands as a user runs them: real processes, real files, a real DuckDB file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from tests.test_batch import B2C_JOURNEY

ATTRIBUTION = [sys.executable, "-m", "cli.main"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*ATTRIBUTION, *args], capture_output=True, text=True, timeout=120,
                          check=False)


def write_jsonl(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def snapshot(warehouse: Path) -> list[list[object]]:
    out = []
    for view in ("touchpoints", "conversions", "credits", "channel_performance", "rejected"):
        result = run("sql", "--warehouse", str(warehouse), "--format", "json",
                     f"select * exclude (landed_at) from {view} order by all"
                     if view == "rejected" else f"select * from {view} order by all")
        assert result.returncode == 0, result.stderr
        out.append(json.loads(result.stdout))
    return out


def test_replay_reports_bad_lines_lands_good_ones_and_is_idempotent(tmp_path: Path) -> None:
    lines = [orjson.dumps(e) for e in B2C_JOURNEY]
    lines.insert(2, b'{"type": "page", "messageId": "x", "timestamp": "2026-01-01T00:00:00Z"}')
    lines.insert(4, b"{not json")
    events = write_jsonl(tmp_path / "events.jsonl", lines)
    warehouse = tmp_path / "wh"

    first = run("replay", str(events), "--warehouse", str(warehouse))
    assert first.returncode == 0, first.stderr
    assert "skipped events.jsonl:3" in first.stderr and "anonymousId or userId" in first.stderr
    assert "skipped events.jsonl:5" in first.stderr and "invalid JSON" in first.stderr
    before = snapshot(warehouse)
    assert len(before[1]) == 1  # one conversion
    assert len(before[4]) == 2  # two rejected lines, with their reasons

    again = run("replay", str(events), "--warehouse", str(warehouse))
    assert again.returncode == 0, again.stderr
    assert snapshot(warehouse) == before


def test_replay_reads_parquet_like_json_lines(tmp_path: Path) -> None:
    # As a warehouse export would hold them: one column per field, nested fields as JSON text.
    columns = sorted({key for event in B2C_JOURNEY for key in event})
    table = pa.Table.from_pylist([
        {k: (orjson.dumps(e[k]).decode() if isinstance(e.get(k), dict) else e.get(k))
         for k in columns} for e in B2C_JOURNEY])
    pq.write_table(table, tmp_path / "events.parquet")
    jsonl = write_jsonl(tmp_path / "events.jsonl", [orjson.dumps(e) for e in B2C_JOURNEY])
    parquet = tmp_path / "events.parquet"
    assert run("replay", str(parquet), "-w", str(tmp_path / "a")).returncode == 0
    assert run("replay", str(jsonl), "-w", str(tmp_path / "b")).returncode == 0
    from_parquet, from_jsonl = snapshot(tmp_path / "a")[2], snapshot(tmp_path / "b")[2]
    assert from_parquet == from_jsonl and len(from_parquet) == 11


def test_sql_formats_and_errors(tmp_path: Path) -> None:
    events = write_jsonl(tmp_path / "e.jsonl", [orjson.dumps(e) for e in B2C_JOURNEY])
    assert run("replay", str(events), "-w", str(tmp_path / "wh")).returncode == 0
    query = "select channel, round(conversions, 4) as c from channel_performance " \
            "where model = 'linear' order by channel"
    csv = run("sql", query, "-w", str(tmp_path / "wh"), "--format", "csv").stdout
    assert csv.splitlines() == ["channel,c", "Email,0.3333", "Organic Search,0.3333",
                                "Paid Social,0.3333"]
    table = run("sql", query, "-w", str(tmp_path / "wh")).stdout
    assert "Organic Search" in table and "0.3333" in table
    bad = run("sql", "select * from nowhere", "-w", str(tmp_path / "wh"))
    assert bad.returncode == 1 and "nowhere" in bad.stderr


def test_schema_prints_the_wire_json_schema() -> None:
    result = run("schema", "--json")
    assert result.returncode == 0
    schema = json.loads(result.stdout)
    assert schema["properties"]["type"]["enum"] == ["page", "screen", "track", "identify",
                                                    "group", "alias"]
    assert "messageId" in schema["required"]


def test_bad_config_is_reported_not_raised(tmp_path: Path) -> None:
    events = write_jsonl(tmp_path / "e.jsonl", [orjson.dumps(e) for e in B2C_JOURNEY])
    config = tmp_path / "bad.toml"
    config.write_text("[policies.b2c]\nmodels = ['astrology']\n")
    result = run("replay", str(events), "-w", str(tmp_path / "wh"), "--config", str(config))
    assert result.returncode == 2
    assert "unknown model 'astrology'" in result.stderr
    assert "Traceback" not in result.stderr
