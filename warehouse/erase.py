"""Erase one person's (or account's) rows from the landed Parquet: all of it, or nothing.

An erasure runs in three steps under the maintenance lock (``warehouse.lock``):

1. **Plan**: read every landed file of every table. Each file holding a row that mentions
   an erased id gets its rewritten content (without those rows) staged under
   ``.erasing/<erasure id>/<its key>``, or is marked for deletion when nothing is left.
   A file that cannot be read stops the erasure here, naming the file; the staged files
   are removed, and the warehouse is exactly as it was.
2. **Commit**: the journal ``.erasing/<erasure id>.json`` is written in one atomic step. It
   lists what to replace and delete, and the audit row's counts, never the ids.
3. **Swap**: every staged file is moved over its original (local: rename; object storage:
   server-side copy), the emptied files are deleted, the audit row lands in ``erasures``,
   and the journal and staging are removed.

A crash before the commit leaves staging that readers never see (their globs only match
``<table>/<column>=<day>/*.parquet``) and that the next maintenance job removes; a crash
after it is finished by the next maintenance job (``complete_pending``: ``attribution
erase``, ``compact`` and ``migrate`` all run it first), so a re-run always completes it. Every
swap step can be repeated: a moved staged file is gone, a deleted file stays deleted.
Readers may see the swap half-done for its few seconds, never a partial file.

Which rows "mention" the ids:
    touches, conversions   anonymous_id, person_id or account_id is an erased id
    credits                the journey is the erased person's/account's, or the credited
                           conversion or touch was erased above
    identity_links         from_id or to_id;  identity_map: id, person_key or account_key
    rejected               the raw input contains an erased id as a JSON string
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from schemas.records import LinkKind
from streams.erase import journey_keys
from warehouse.landing import land
from warehouse.layout import conform, landed
from warehouse.lock import Lease, maintenance_lock
from warehouse.storage import LocalStorage, Root, Storage, storage_for

STAGING = ".erasing"

Step = Callable[[str], None]
"""Called with the name of each step just before it runs (a test injects a crash there)."""


class Subject(StrEnum):
    USER_ID = "user_id"
    ANONYMOUS_ID = "anonymous_id"
    ACCOUNT_ID = "account_id"


class ErasureBlocked(RuntimeError):
    """A file could not be read while planning; the warehouse was left unchanged."""


@dataclass
class ErasureReport:
    rows_removed: dict[str, int] = field(default_factory=dict)
    files_rewritten: int = 0


@dataclass(frozen=True)
class Audit:
    """What the ``erasures`` table records about one erasure: never the ids."""

    erasure_id: str
    subject: Subject
    ids_erased: int
    stream_state: bool
    requested_at: datetime = field(default_factory=lambda: datetime.now(UTC))


Mask = Callable[[pa.Table], pa.ChunkedArray | pa.Array]


def person_ids(root: Root, start: str) -> frozenset[str]:
    """Every id joined to ``start`` by identify/alias links (the person, all devices);
    account links are not followed: an account's other contacts are other people."""
    storage = storage_for(root)
    neighbours: dict[str, set[str]] = {}
    for info in landed(storage, "identity_links"):
        links = storage.read_parquet(info.key, columns=["kind", "from_id", "to_id"]).to_pylist()
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


def subject_ids(root: Root, subject: Subject, value: str) -> frozenset[str]:
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
        if not needles:
            return pa.array([False] * table.num_rows)
        out = pc.match_substring(table["raw"], needles[0])
        for needle in needles[1:]:
            out = pc.or_(out, pc.match_substring(table["raw"], needle))
        return pc.fill_null(out, False)
    return mask


def erase_warehouse(root: Root, ids: frozenset[str], audit: Audit | None = None,
                    on_step: Step | None = None) -> ErasureReport:
    """Remove every landed row that mentions ``ids`` (see the module docstring), and land
    ``audit`` in ``erasures`` as part of the same all-or-nothing change. Raises
    ErasureBlocked, naming the file, when a file cannot be read (nothing is changed then)."""
    storage = storage_for(root)
    step = on_step or (lambda _name: None)
    erasure_id = audit.erasure_id if audit is not None else uuid.uuid4().hex
    with maintenance_lock(root) as lease:
        complete_pending(storage, lease, step)
        return _erase_all(storage, ids, erasure_id, audit, lease, step)


def _erase_all(storage: Storage, ids: frozenset[str], erasure_id: str, audit: Audit | None,
               lease: Lease, step: Step) -> ErasureReport:
    staging = f"{STAGING}/{erasure_id}"
    plan = _Plan(storage, staging, step)
    try:
        plan.tables(ids)
    except Exception:
        _remove_prefix(storage, f"{staging}/")  # nothing was changed: leave nothing behind
        raise
    report = plan.report
    journal: dict[str, Any] = {"erasure_id": erasure_id, "actions": plan.actions}
    if audit is not None:
        journal["audit"] = _journal_audit(audit, report)
    step("commit")
    lease.check()
    storage.write_bytes(f"{STAGING}/{erasure_id}.json", orjson.dumps(journal))
    _finish(storage, journal, lease, step)
    return report


class _Plan:
    """Step 1 of the module docstring: what to replace and delete, with staged files."""

    def __init__(self, storage: Storage, staging: str, step: Step) -> None:
        self.storage = storage
        self.staging = staging
        self.step = step
        self.report = ErasureReport()
        self.actions: list[dict[str, str | None]] = []

    def tables(self, ids: frozenset[str]) -> None:
        people = ("anonymous_id", "person_id", "account_id")
        touches = self.table("touches", people, _any_in(*people, values=ids), "event_id")
        conversions = self.table("conversions", people, _any_in(*people, values=ids),
                                 "conversion_id")
        journeys = journey_keys(ids)

        def credit_mask(table: pa.Table) -> pa.ChunkedArray | pa.Array:
            return pc.or_(pc.or_(_any_in("journey_key", values=journeys)(table),
                                 _any_in("conversion_id", values=conversions)(table)),
                          _any_in("touch_event_id", values=touches)(table))

        self.table("credits", ("journey_key", "conversion_id", "touch_event_id"), credit_mask)
        self.table("identity_links", ("from_id", "to_id"),
                   _any_in("from_id", "to_id", values=ids))
        self.table("identity_map", ("id", "person_key", "account_key"),
                   _any_in("id", "person_key", "account_key", values=ids))
        self.table("rejected", ("raw",), _raw_mentions(ids))

    def table(self, table: str, columns: tuple[str, ...], mask: Mask,
              collect: str | None = None) -> set[str]:
        """Stage ``table``'s files without the masked rows; ``collect``'s erased values."""
        collected: set[str] = set()
        storage = self.storage
        for info in landed(storage, table):
            self.step(f"plan {info.key}")
            read = [*columns, collect] if collect and collect not in columns else list(columns)
            try:
                hit = mask(storage.read_parquet(info.key, columns=read))
                removed = pc.sum(hit).as_py() or 0
                data = storage.read_parquet(info.key) if removed else None
            except (OSError, pa.ArrowException) as exc:
                raise ErasureBlocked(
                    f"cannot read {storage.file_url(info.key)} ({exc}); the erasure was not "
                    "started and nothing was changed: repair or remove that file, then run "
                    "it again") from exc
            if data is None:
                continue
            if collect is not None:
                collected.update(v for v in data.filter(hit)[collect].to_pylist()
                                 if v is not None)
            kept = data.filter(pc.invert(hit))
            staged = None
            if kept.num_rows:
                staged = f"{self.staging}/{info.key}"
                self.step(f"stage {info.key}")
                storage.write_parquet(staged, conform(kept, table))
            self.actions.append({"key": info.key, "staged": staged})
            rows = self.report.rows_removed
            rows[table] = rows.get(table, 0) + removed
            self.report.files_rewritten += 1
        return collected


def _journal_audit(audit: Audit, report: ErasureReport) -> dict[str, Any]:
    return {"erasure_id": audit.erasure_id, "requested_at": audit.requested_at.isoformat(),
            "subject": str(audit.subject), "ids_erased": audit.ids_erased,
            "rows_removed": json.dumps(report.rows_removed, sort_keys=True),
            "files_rewritten": report.files_rewritten, "stream_state": audit.stream_state}


def _land_audit(storage: Storage, row: dict[str, Any]) -> None:
    """The audit row, under a name of its own: landing it again changes nothing."""
    fields = {**row, "requested_at": datetime.fromisoformat(row["requested_at"])}
    land(storage.url, "erasures", [fields], name=f"erasure-{row['erasure_id']}")


def _finish(storage: Storage, journal: dict[str, Any], lease: Lease, step: Step) -> None:
    """Step 3 of the module docstring; every part may run again after a crash."""
    staging = f"{STAGING}/{journal['erasure_id']}"
    for action in journal["actions"]:
        key, staged = action["key"], action["staged"]
        step(f"swap {key}")
        lease.check()
        if staged is None:
            storage.delete(key)
        elif storage.exists(staged):  # gone: moved over its original by an earlier run
            _move(storage, staged, key)
    if "audit" in journal:
        step("audit")
        _land_audit(storage, journal["audit"])
    step("clean up")
    storage.delete(f"{STAGING}/{journal['erasure_id']}.json")
    _remove_prefix(storage, f"{staging}/")


def _move(storage: Storage, source: str, target: str) -> None:
    if isinstance(storage, LocalStorage):
        storage.move(source, target)  # one atomic rename
    else:
        storage.copy(source, target)  # the target appears whole; then the staged copy goes
        storage.delete(source)


def _remove_prefix(storage: Storage, prefix: str) -> None:
    for info in storage.list_files(prefix):
        storage.delete(info.key)
    if isinstance(storage, LocalStorage):  # and the emptied directories
        shutil.rmtree(storage.path(prefix), ignore_errors=True)


def complete_pending(storage: Storage, lease: Lease, on_step: Step | None = None) -> int:
    """Finish every erasure a crash interrupted after its commit, and remove the staging of
    those that crashed before it (they changed nothing). Call under the maintenance lock.
    Returns how many erasures were finished."""
    step = on_step or (lambda _name: None)
    journals = [info for info in storage.list_files(f"{STAGING}/")
                if info.key.count("/") == 1 and info.key.endswith(".json")]
    for info in journals:
        _finish(storage, orjson.loads(storage.read_bytes(info.key)), lease, step)
    _remove_prefix(storage, f"{STAGING}/")
    return len(journals)
