"""`attribution replay`: run the core over event files and land the result in the warehouse.

Idempotent: landed files are named after a hash of the inputs and the config, so
replaying the same input overwrites identical files instead of adding copies, and
the views dedupe whatever overlaps with what the stream landed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from attribution.batch import BatchResult, attribute_events
from attribution.defaults import channel_rules, load_config
from schemas.records import conversion_row, record_row
from warehouse.inputs import Progress, fingerprint, read_events
from warehouse.landing import ensure_layout, land
from warehouse.views import create_views

ROWS_PER_FILE = 1_000_000


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


def _chunks(rows: Sequence[Mapping[str, Any]]) -> Iterable[tuple[int, Sequence[Mapping[str, Any]]]]:
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
        for index, chunk in _chunks(rows):
            if land(root, table, chunk, name=f"replay-{run_id}-{index:05d}") is not None:
                files += 1
    return files


def replay(paths: Sequence[Path], root: Path, config_text: str | None = None,
           progress: Progress | None = None) -> tuple[ReplaySummary, BatchResult]:
    config = load_config(config_text)
    result = attribute_events(read_events(paths, progress), config, channel_rules(config))
    ensure_layout(root)
    run_id = fingerprint(paths, extra=config_text or "")
    files = land_result(root, result, run_id)
    create_views(root)
    summary = ReplaySummary(
        events_read=result.events_read, duplicates=result.duplicates,
        rejected=len(result.rejected), touches=len(result.touches),
        conversions=len(result.conversions), credits=len(result.credits), files=files,
        warehouse=root,
    )
    return summary, result
