"""Replay over chunks, device buckets and worker processes lands exactly what the
in-memory core computes, and replaying the same files again adds nothing."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from attribution.batch import attribute
from attribution.defaults import channel_rules, load_config
from traffic.generate import TrafficSpec, write_jsonl
from warehouse.layout import TABLES, landed_files
from warehouse.query import run_query
from warehouse.replay import bucket_count, replay

CONFIG = load_config()


def _events(tmp_path: Path) -> Path:
    path = tmp_path / "events.jsonl"
    write_jsonl(TrafficSpec(seed=21, b2c_visitors=600, b2b_accounts=8, invalid_rate=0.02), path)
    return path


def test_chunked_parallel_replay_equals_the_in_memory_core(tmp_path: Path) -> None:
    path = _events(tmp_path)
    lines = [(f"{path.name}:{i}", line) for i, line in
             enumerate(path.read_bytes().splitlines(), start=1)]
    expected = attribute(lines, CONFIG, channel_rules(CONFIG))
    root = tmp_path / "wh"
    summary, outcome = replay([path], root, workers=2, chunk_events=1_000, buckets=5)
    assert (summary.events_read, summary.duplicates, summary.rejected) == (
        expected.events_read, expected.duplicates, len(expected.rejected))
    assert (summary.touches, summary.conversions, summary.credits) == (
        len(expected.touches), len(expected.conversions), len(expected.credits))
    assert outcome.rejected == expected.rejected[:len(outcome.rejected)]
    credits = run_query(root, "SELECT conversion_id, model, touch_event_id, round(credit, 9), "
                              "journey_key FROM credits")[1]
    assert sorted(credits, key=repr) == sorted(
        [(c.conversion_id, c.model, c.touch_event_id, round(c.credit, 9), c.journey_key)
         for c in expected.credits], key=repr)
    touches = run_query(root, "SELECT event_id FROM touchpoints")[1]
    assert sorted(t for (t,) in touches) == sorted(t.event_id for t in expected.touches)


def test_replaying_the_same_file_again_adds_no_file(tmp_path: Path) -> None:
    path = _events(tmp_path)
    root = tmp_path / "wh"
    replay([path], root, workers=1, chunk_events=2_000, buckets=3)
    first = _files(root)
    replay([path], root, workers=1, chunk_events=2_000, buckets=3)
    assert _files(root) == first


def _files(root: Path) -> dict[str, int]:
    return {f"{table}/{p.name}": pq.read_table(p).num_rows for table in TABLES
            for p in landed_files(root, table)}


def test_buckets_grow_with_the_input_so_a_worker_holds_a_bounded_share(tmp_path: Path) -> None:
    def sized(name: str, size: int) -> Path:
        path = tmp_path / name
        with path.open("wb") as handle:
            handle.truncate(size)  # sparse: only the size matters here
        return path

    small, large = sized("small.jsonl", 300 << 20), sized("large.jsonl", 2 << 30)
    packed = sized("packed.jsonl.gz", 200 << 20)
    assert bucket_count([small], workers=2) == 8  # at least four per worker
    assert bucket_count([small], workers=1) == 4
    assert bucket_count([large], workers=2) == 16  # 2 GiB / 128 MiB
    assert bucket_count([large, small], workers=2) == 19  # 2,348 MiB / 128, rounded up
    assert bucket_count([packed], workers=1) == 13  # gzip counted at 8x: 1,600 MiB / 128
