"""Erase one person's (or account's) rows from the landed Parquet, file by file, atomically.

Every landed file that holds a row mentioning an erased id is rewritten without those rows
under its own name (temp file, fsync, rename: readers see the old file or the new one,
never a partial one) or deleted when nothing is left. The audit row in ``erasures``
records counts only, never the ids.

Which rows "mention" the ids:
    touches, conversions   anonymous_id, person_id or account_id is an erased id
    credits                the journey is the erased person's/account's, or the credited
                           conversion or touch was erased above
    identity_links         from_id or to_id;  identity_map: id, person_key or account_key
    rejected               the raw input contains an erased id as a JSON string
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from schemas.records import LinkKind
from streams.erase import journey_keys
from warehouse.landing import land
from warehouse.layout import fsync_dir, landed_files, write_parquet_atomic
from warehouse.lock import maintenance_lock


class Subject(StrEnum):
    USER_ID = "user_id"
    ANONYMOUS_ID = "anonymous_id"
    ACCOUNT_ID = "account_id"


@dataclass
class ErasureReport:
    rows_removed: dict[str, int] = field(default_factory=dict)
    files_rewritten: int = 0


Mask = Callable[[pa.Table], pa.ChunkedArray | pa.Array]


def person_ids(root: Path, start: str) -> frozenset[str]:
    """Every id joined to ``start`` by identify/alias links (the person, all devices);
    account links are not followed: an account's other contacts are other people."""
    neighbours: dict[str, set[str]] = {}
    for path in landed_files(root, "identity_links"):
        links = pq.read_table(path, columns=["kind", "from_id", "to_id"]).to_pylist()
        for link in links:
            if link["kind"] != LinkKind.PERSON_ACCOUNT:
                neighbours.setdefault(link["from_id"], set()).add(link["to_id"])
                neighbours.setdefault(link["to_id"], set()).add(link["from_id"])
    found = {start}
    frontier = [start]
    while frontier:
        for other in neighbours.get(frontier.pop(), ()):
            if other not in found:
                found.add(other)
                frontier.append(other)
    return frozenset(found)


def subject_ids(root: Path, subject: Subject, value: str) -> frozenset[str]:
    return frozenset({value}) if subject is Subject.ACCOUNT_ID else person_ids(root, value)


def _any_in(*columns: str, values: Iterable[str]) -> Mask:
    value_set = pa.array(sorted(set(values)), type=pa.string())

    def mask(table: pa.Table) -> pa.ChunkedArray | pa.Array:
        hits = [pc.fill_null(pc.is_in(table[c], value_set=value_set), False) for c in columns]
        out = hits[0]
        for hit in hits[1:]:
            out = pc.or_(out, hit)
        return out
    return mask


def _raw_mentions(ids: frozenset[str]) -> Mask:
    needles = [orjson.dumps(i).decode() for i in sorted(ids)]  # the id as a JSON string

    def mask(table: pa.Table) -> pa.ChunkedArray | pa.Array:
        out = pc.match_substring(table["raw"], needles[0])
        for needle in needles[1:]:
            out = pc.or_(out, pc.match_substring(table["raw"], needle))
        return pc.fill_null(out, False)
    return mask


def _erase_table(root: Path, table: str, mask: Mask, report: ErasureReport,
                 collect: str | None = None) -> set[str]:
    """Rewrite ``table``'s files without the masked rows; returns ``collect``'s erased values."""
    erased: set[str] = set()
    for path in landed_files(root, table):
        data = pq.read_table(path)
        hit = mask(data)
        removed = pc.sum(hit).as_py() or 0
        if not removed:
            continue
        if collect is not None:
            erased.update(v for v in data.filter(hit)[collect].to_pylist() if v is not None)
        kept = data.filter(pc.invert(hit))
        if kept.num_rows:
            write_parquet_atomic(kept, path)
        else:
            path.unlink()
            fsync_dir(path.parent)
        report.rows_removed[table] = report.rows_removed.get(table, 0) + removed
        report.files_rewritten += 1
    return erased


def erase_warehouse(root: Path, ids: frozenset[str]) -> ErasureReport:
    """Remove every landed row that mentions ``ids`` (see the module docstring). Holds the
    maintenance lock: a compaction running meanwhile could merge erased rows back."""
    with maintenance_lock(root):
        return _erase_all(root, ids)


def _erase_all(root: Path, ids: frozenset[str]) -> ErasureReport:
    report = ErasureReport()
    touches = _erase_table(root, "touches",
                           _any_in("anonymous_id", "person_id", "account_id", values=ids),
                           report, collect="event_id")
    conversions = _erase_table(
        root, "conversions",
        _any_in("anonymous_id", "person_id", "account_id", values=ids), report,
        collect="conversion_id")
    journeys = journey_keys(ids)

    def credit_mask(table: pa.Table) -> pa.ChunkedArray | pa.Array:
        return pc.or_(pc.or_(_any_in("journey_key", values=journeys)(table),
                             _any_in("conversion_id", values=conversions)(table)),
                      _any_in("touch_event_id", values=touches)(table))

    _erase_table(root, "credits", credit_mask, report)
    _erase_table(root, "identity_links", _any_in("from_id", "to_id", values=ids), report)
    _erase_table(root, "identity_map", _any_in("id", "person_key", "account_key", values=ids),
                 report)
    _erase_table(root, "rejected", _raw_mentions(ids), report)
    return report


def record_erasure(root: Path, erasure_id: str, subject: Subject, ids: frozenset[str],
                   report: ErasureReport, stream_state: bool) -> Path | None:
    """Land the audit row: what kind of id, how many ids and rows; never the ids."""
    row = {"erasure_id": erasure_id, "requested_at": datetime.now(UTC), "subject": str(subject),
           "ids_erased": len(ids), "rows_removed": json.dumps(report.rows_removed, sort_keys=True),
           "files_rewritten": report.files_rewritten, "stream_state": stream_state}
    return land(root, "erasures", [row], name=f"erasure-{erasure_id}")
