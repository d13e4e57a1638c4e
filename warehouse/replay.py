"""`attribution replay`: run the core over event files and land the result in the warehouse.

The passes of ``attribution.batch`` over files of any size, in memory bounded by a chunk:

1. read the files in chunks of ``chunk_events`` lines; each chunk is validated in a
   worker process and its valid events spilled, per device bucket, to Arrow IPC files in
   a scratch directory (rejected ones too);
2. each device bucket, in a worker: dedupe, observe, sessionise; its touches are landed
   and spilled again, its identity links and conversions come back (they are few);
3. here: the identity graph, each conversion's journey; conversions and identities are
   landed;
4. each touch spill, in a worker: the touches of converting journeys, spilled again per
   journey bucket;
5. each journey bucket, in a worker: its journeys' conversions credited and landed.

The number of buckets grows with the input (``bucket_count``), so what a worker holds is
bounded by a bucket and what this process holds by the conversions and identity links.

Idempotent: landed files are named after a hash of the inputs' content and the config
(computed while reading), so replaying the same input overwrites identical files instead
of adding copies, and the views dedupe whatever overlaps with what the stream landed.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa

from attribution.batch import (
    BatchResult,
    Rejected,
    credit_journeys,
    earliest_conversions,
    first_links,
    group_by_journey,
    identity_frame,
    identity_rows,
    observe_devices,
    touch_journeys,
    validate_chunk,
)
from attribution.defaults import channel_rules, load_config
from attribution.identity import IdentityGraph
from attribution.policy import Config
from schemas.contracts import CreditRow, JourneyConversion, Link, TouchRow
from schemas.records import conversion_row, record_row
from streams.gc_tuning import tune_gc
from streams.messages import CONVERSION_COLUMNS, CREDIT_COLUMNS, TOUCH_COLUMNS, columns
from streams.sink import arrow_part
from warehouse.inputs import Progress, read_events, total_size
from warehouse.landing import ensure_layout, land
from warehouse.storage import LocalStorage, storage_for
from warehouse.views import create_views

ROWS_PER_FILE = 1_000_000
CHUNK_EVENTS = 50_000
#: Input per bucket: about 135k events of JSON Lines (~950 bytes each), which a bucket task
#: holds as columns and touch tuples (a few KB per event at its peak).
BUCKET_INPUT_BYTES = 128 << 20
#: How much a compressed input expands, for its share of BUCKET_INPUT_BYTES.
_EXPANSION = {".gz": 8, ".parquet": 4}
REJECTED_SAMPLE = 100  # rejections kept in memory for the command's report
SMALL_INPUT_BYTES = 32 << 20
_TOUCH_SCHEMA = dict.fromkeys(TOUCH_COLUMNS, pl.Utf8) | {"time": pl.Int64}


@dataclass(frozen=True)
class ReplaySummary:
    events_read: int
    duplicates: int
    rejected: int
    touches: int
    conversions: int
    credits: int
    files: int
    warehouse: Path


@dataclass
class ReplayOutcome:
    """What the command reports beyond the counts: the first rejections."""

    rejected: list[Rejected] = field(default_factory=list)


# --- worker-process side: everything a task needs comes in its arguments ----------------------

_CONFIG: dict[str | None, Config] = {}


def _config(text: str | None) -> Config:
    if text not in _CONFIG:
        _CONFIG[text] = load_config(text)
    return _CONFIG[text]


def _validate_task(config_text: str | None, chunk: list[tuple[str, Any]], first_seq: int,
                   index: int, buckets: int, scratch: str) -> tuple[int, list[Rejected], int]:
    """Pass 1: validate a chunk, spill its valid events per device bucket."""
    validated = validate_chunk(chunk, first_seq, _config(config_text))
    frame = validated.columns.with_columns(
        (pl.col("device").hash(seed=7) % buckets).alias("bucket"))
    for (bucket,), part in frame.partition_by("bucket", as_dict=True).items():
        part.drop("bucket").write_ipc(Path(scratch) / f"events-{bucket:04d}-{index:06d}.arrow")
    _spill_rejected(validated.rejected, Path(scratch) / f"rejected-{index:06d}.arrow")
    return validated.events_read, validated.rejected[:REJECTED_SAMPLE], len(validated.rejected)


def _spill_rejected(rejected: Sequence[Rejected], path: Path) -> None:
    if rejected:
        pl.DataFrame([(r.position, r.reason, r.raw[:10_000]) for r in rejected],
                     schema={"position": pl.Utf8, "reason": pl.Utf8, "raw": pl.Utf8},
                     orient="row").write_ipc(path)


@dataclass
class BucketResult:
    touches: int
    duplicates: int
    links: list[tuple[int, Link]]
    conversions: list[JourneyConversion]


def _bucket_task(config_text: str | None, bucket: int, scratch: str, root: str,
                 run_id: str) -> BucketResult:
    """Pass 2: a device bucket's touches (landed and spilled), links and conversions."""
    config = _config(config_text)
    files = sorted(Path(scratch).glob(f"events-{bucket:04d}-*.arrow"))
    if not files:
        return BucketResult(0, 0, [], [])
    events = pl.concat([pl.read_ipc(f) for f in files])
    facts = observe_devices(events, config, channel_rules(config))
    touches = sorted(facts.touches, key=lambda t: (t.time, t.event_id))
    frame = pl.DataFrame(touches, schema=_TOUCH_SCHEMA, orient="row")
    frame.write_ipc(Path(scratch) / f"touches-{bucket:04d}.arrow")
    for part, start in enumerate(range(0, len(touches), ROWS_PER_FILE)):
        rows = columns(touches[start:start + ROWS_PER_FILE], TOUCH_COLUMNS)
        land(Path(root), "touches", arrow_part("touches", rows),
             name=f"replay-{run_id}-b{bucket:04d}-{part:03d}")
    for f in files:
        f.unlink()
    return BucketResult(len(touches), facts.duplicates, facts.links, facts.conversions)


def _journey_touches_task(scratch: str, bucket: int, identities: pl.DataFrame,
                          journey_buckets: pl.DataFrame) -> None:
    """Pass 4: a device bucket's touches that belong to converting journeys, spilled per
    journey bucket (``journey_buckets``: key, journey_bucket)."""
    path = Path(scratch) / f"touches-{bucket:04d}.arrow"
    if not path.exists():
        return
    frame = touch_journeys(pl.read_ipc(path), identities).join(journey_buckets, on="key")
    for (journey_bucket,), part in frame.select(
            "journey_bucket", "key", *TOUCH_COLUMNS).partition_by(
            "journey_bucket", as_dict=True).items():
        part.drop("journey_bucket").write_ipc(
            Path(scratch) / f"journey-touches-{journey_bucket:04d}-{bucket:04d}.arrow")


def _credit_task(config_text: str | None, scratch: str, journey_bucket: int,
                 by_journey: dict[str, list[JourneyConversion]], root: str, run_id: str
                 ) -> tuple[int, int]:
    """Pass 5: credit a journey bucket's conversions and land the credits; returns (credits,
    files)."""
    touches: dict[str, list[TouchRow]] = {}
    for path in sorted(Path(scratch).glob(f"journey-touches-{journey_bucket:04d}-*.arrow")):
        for key, *touch in pl.read_ipc(path).iter_rows():
            touches.setdefault(key, []).append(TouchRow(*touch))
    batch: list[CreditRow] = []
    landed = files = part = 0
    for credit in credit_journeys(by_journey, touches, _config(config_text)):
        batch.append(credit)
        if len(batch) >= ROWS_PER_FILE:
            files += _land_credits(Path(root), run_id, journey_bucket, part, batch)
            landed, part, batch = landed + len(batch), part + 1, []
    if batch:
        files += _land_credits(Path(root), run_id, journey_bucket, part, batch)
        landed += len(batch)
    return landed, files


# --- the orchestration ----------------------------------------------------------------------


def _chunks(events: Iterable[tuple[str, Any]], size: int, digest: Any
            ) -> Iterator[list[tuple[str, Any]]]:
    chunk: list[tuple[str, Any]] = []
    for position, raw in events:
        digest.update(raw if isinstance(raw, bytes) else repr(raw).encode())
        chunk.append((position, raw))
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class _InProcess(Executor):
    """Runs tasks at once in this process (small inputs, or one worker)."""

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:
            future.set_exception(exc)
        return future


def _executor(workers: int) -> Executor:
    if workers <= 1:
        return _InProcess()
    # spawn, not fork: polars' thread pool does not survive a fork. One polars thread per
    # worker process: the processes already use every core.
    os.environ.setdefault("POLARS_MAX_THREADS", "1")
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=tune_gc)


def replay(paths: Sequence[Path], root: Path, config_text: str | None = None,
           progress: Progress | None = None, *, workers: int | None = None,
           chunk_events: int = CHUNK_EVENTS, buckets: int | None = None
           ) -> tuple[ReplaySummary, ReplayOutcome]:
    """Replay the files into the warehouse at ``root``. ``workers`` processes (default: one
    per core; inputs under ``SMALL_INPUT_BYTES`` run in this process, as starting workers
    costs more than it saves there)."""
    config = load_config(config_text)
    channel_rules(config)  # a bad [channels] section fails here, before any work
    if workers is None:
        workers = 1 if total_size(paths) < SMALL_INPUT_BYTES else os.cpu_count() or 1
    buckets = buckets or bucket_count(paths, workers)
    ensure_layout(root)
    # Spilled events stay on this machine: beside a local warehouse (same disk), else in
    # the temp directory.
    local = isinstance(storage_for(root), LocalStorage)
    scratch = Path(tempfile.mkdtemp(prefix=".replay-", dir=root if local else None))
    try:
        return _replay(paths, root, config, config_text, progress, workers, chunk_events,
                       buckets, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def bucket_count(paths: Sequence[Path], workers: int) -> int:
    """Device (and journey) buckets for these inputs: at least four per worker, and one
    per BUCKET_INPUT_BYTES of (expanded) input."""
    expanded = sum(path.stat().st_size * _EXPANSION.get(path.suffix, 1) for path in paths)
    return max(4, 4 * workers, -(-expanded // BUCKET_INPUT_BYTES))


def _replay(paths: Sequence[Path], root: Path, config: Config, config_text: str | None,
            progress: Progress | None, workers: int, chunk_events: int, buckets: int,
            scratch: Path) -> tuple[ReplaySummary, ReplayOutcome]:
    digest = hashlib.blake2b((config_text or "").encode(), digest_size=8)
    outcome = ReplayOutcome()
    events_read = rejected = 0
    with _executor(workers) as pool:
        pending: list[Future[tuple[int, list[Rejected], int]]] = []
        seq = 0
        for index, chunk in enumerate(_chunks(read_events(paths, progress), chunk_events,
                                              digest)):
            pending.append(pool.submit(_validate_task, config_text, chunk, seq, index, buckets,
                                       str(scratch)))
            seq += len(chunk)
            while len(pending) > 2 * workers:  # bound the chunks in flight
                events_read, rejected = _collect(pending.pop(0), outcome, events_read,
                                                 rejected)
        for future in pending:
            events_read, rejected = _collect(future, outcome, events_read, rejected)
        run_id = digest.hexdigest()
        files = _land_rejected(root, scratch, run_id)
        results = [f.result() for f in [pool.submit(_bucket_task, config_text, b, str(scratch),
                                                    str(root), run_id)
                                        for b in range(buckets)]]
        touches = sum(r.touches for r in results)
        files += sum(-(-r.touches // ROWS_PER_FILE) for r in results)
        links = first_links(link for r in results for link in r.links)
        graph = IdentityGraph(links)
        identities = identity_rows(graph, links)
        conversions = sorted(_earliest(c for r in results for c in r.conversions),
                             key=lambda c: (c.time, c.conversion_id))
        by_journey = group_by_journey(conversions, config, graph)
        journey_of = {c.conversion_id: key for key, cs in by_journey.items() for c in cs}
        files += _land_compact(root, run_id, conversions, journey_of, links, identities)
        # Journeys dealt round-robin to as many buckets as devices had.
        keys = sorted(by_journey)
        journey_buckets = pl.DataFrame(
            {"key": keys, "journey_bucket": [i % buckets for i in range(len(keys))]},
            schema={"key": pl.Utf8, "journey_bucket": pl.Int64})
        frame = identity_frame(identities)
        for spilled in [pool.submit(_journey_touches_task, str(scratch), b, frame,
                                    journey_buckets) for b in range(buckets)]:
            spilled.result()
        credited_files = [f.result() for f in [
            pool.submit(_credit_task, config_text, str(scratch), j,
                        {key: by_journey[key] for key in keys[j::buckets]}, str(root), run_id)
            for j in range(buckets)]]
        credited = sum(landed for landed, _ in credited_files)
        files += sum(landed_files for _, landed_files in credited_files)
    create_views(root)
    summary = ReplaySummary(
        events_read=events_read, duplicates=sum(r.duplicates for r in results),
        rejected=rejected, touches=touches, conversions=len(conversions), credits=credited,
        files=files, warehouse=root)
    return summary, outcome


def _collect(future: Future[tuple[int, list[Rejected], int]], outcome: ReplayOutcome,
             events_read: int, rejected: int) -> tuple[int, int]:
    read, sample, count = future.result()
    room = REJECTED_SAMPLE - len(outcome.rejected)
    outcome.rejected.extend(sample[:max(room, 0)])
    return events_read + read, rejected + count


def _earliest(conversions: Iterable[JourneyConversion]) -> list[JourneyConversion]:
    return list(earliest_conversions(conversions).values())


def _land_rejected(root: Path, scratch: Path, run_id: str) -> int:
    files = sorted(scratch.glob("rejected-*.arrow"))
    if not files:
        return 0
    frame = pl.concat([pl.read_ipc(f) for f in files])
    landed_at = datetime.now(UTC)
    count = 0
    for part, start in enumerate(range(0, frame.height, ROWS_PER_FILE)):
        chunk = frame.slice(start, ROWS_PER_FILE)
        table = pa.table({
            "source": [p.rsplit(":", 1)[0] for p in chunk["position"]],
            "position": chunk["position"].to_list(), "reason": chunk["reason"].to_list(),
            "raw": chunk["raw"].to_list(), "landed_at": [landed_at] * chunk.height})
        if land(root, "rejected", table, name=f"replay-{run_id}-rejected-{part:03d}"):
            count += 1
    return count


def _land_compact(root: Path, run_id: str, conversions: Sequence[JourneyConversion],
                  journey_of: Mapping[str, str], links: Sequence[Link],
                  identities: Sequence[Any]) -> int:
    """Land the gathered tables (all but credits); returns the files landed."""
    files = 0
    rows = [(*c, journey_of[c.conversion_id]) for c in conversions]
    for part, start in enumerate(range(0, len(rows), ROWS_PER_FILE)):
        table = arrow_part("conversions", columns(rows[start:start + ROWS_PER_FILE],
                                                  CONVERSION_COLUMNS))
        files += land(root, "conversions", table,
                      name=f"replay-{run_id}-conversions-{part:03d}") is not None
    if links:
        table = arrow_part("identity_links", columns(
            [(k.event_id, k.time, k.kind, k.from_id, k.to_id) for k in links],
            ("event_id", "time", "kind", "from_id", "to_id")))
        files += land(root, "identity_links", table, name=f"replay-{run_id}-links") is not None
    if identities:
        table = arrow_part("identity_map", {
            "id": [r.id for r in identities], "person_key": [r.person_key for r in identities],
            "account_key": [r.account_key for r in identities],
            "as_of": [r.as_of for r in identities]})
        files += land(root, "identity_map", table, name=f"replay-{run_id}-identities"
                      ) is not None
    return files


def _land_credits(root: Path, run_id: str, journey_bucket: int, part: int,
                  batch: Sequence[CreditRow]) -> int:
    table = arrow_part("credits", columns(batch, CREDIT_COLUMNS))
    name = f"replay-{run_id}-credits-{journey_bucket:04d}-{part:03d}"
    return land(root, "credits", table, name=name) is not None


# --- landing a BatchResult (records; tests and small tools) --------------------------------


def _chunks_of(rows: Sequence[Mapping[str, Any]]
               ) -> Iterable[tuple[int, Sequence[Mapping[str, Any]]]]:
    for start in range(0, len(rows), ROWS_PER_FILE):
        yield start // ROWS_PER_FILE, rows[start:start + ROWS_PER_FILE]


def result_rows(result: BatchResult) -> dict[str, list[dict[str, Any]]]:
    """Warehouse rows per table from a batch result (the stream's sink lands the same)."""
    landed_at = datetime.now(UTC)
    return {
        "touches": [record_row(t) for t in result.touches],
        "conversions": [conversion_row(c, result.journey_keys[c.conversion_id])
                        for c in result.conversions],
        "credits": [record_row(c) for c in result.credits],
        "identity_links": [record_row(link) for link in result.links],
        "identity_map": [asdict(row) for row in result.identities],
        "rejected": [
            {"source": r.position.rsplit(":", 1)[0], "position": r.position, "reason": r.reason,
             "raw": r.raw[:10_000], "landed_at": landed_at}
            for r in result.rejected
        ],
    }


def land_result(root: Path, result: BatchResult, run_id: str) -> int:
    files = 0
    for table, rows in result_rows(result).items():
        for index, chunk in _chunks_of(rows):
            if land(root, table, chunk, name=f"replay-{run_id}-{index:05d}") is not None:
                files += 1
    return files
