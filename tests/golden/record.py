"""Record the golden files: ``python -m tests.golden.record``.

Runs batch replay (``attribution.batch.attribute_events``) over each case and writes its
rows, canonicalised, one JSON object per line. Only re-record when a behaviour change is
intended; the commit must say what changed.
"""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Iterable
from datetime import date, datetime
from enum import Enum
from pathlib import Path
from typing import Any

import orjson

from attribution.batch import BatchResult, attribute_events
from attribution.defaults import channel_rules, load_config
from tests.golden.cases import MIXES, NOW, hostile_events, mix_events

HERE = Path(__file__).parent


def canonical(value: Any) -> Any:
    """JSON-ready, order-free form: floats rounded, times as ISO text, enums as values."""
    if isinstance(value, float):
        return round(value, 9)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {str(k): canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [canonical(v) for v in value]
    return value


def result_rows(result: BatchResult) -> dict[str, list[dict[str, Any]]]:
    rows = {
        "touches": [dict(t.__dict__) for t in result.touches],
        "conversions": [{**c.__dict__, "journey_key": result.journey_keys[c.conversion_id]}
                        for c in result.conversions],
        "credits": [dict(c.__dict__) for c in result.credits],
        "identity_links": [dict(link.__dict__) for link in result.links],
        "identities": [{"id": r.id, "person_key": r.person_key, "account_key": r.account_key}
                       for r in result.identities],
        "rejected": [{"position": r.position, "reason": r.reason} for r in result.rejected],
    }
    return {table: sorted((canonical(r) for r in table_rows), key=_sort_key)
            for table, table_rows in rows.items()}


def _sort_key(row: dict[str, Any]) -> bytes:
    return orjson.dumps(row, option=orjson.OPT_SORT_KEYS)


def input_digest(events: Iterable[Any]) -> str:
    digest = hashlib.sha256()
    for event in events:
        digest.update(orjson.dumps(event, option=orjson.OPT_SORT_KEYS))
    return digest.hexdigest()[:16]


def golden_path(case: str) -> Path:
    return HERE / f"{case}.jsonl.gz"


def cases() -> dict[str, list[Any]]:
    return {**{name: mix_events(name) for name in MIXES}, "hostile": list(hostile_events())}


def replay_rows(events: list[Any]) -> dict[str, list[dict[str, Any]]]:
    config = load_config()
    result = attribute_events(((f"in:{i}", e) for i, e in enumerate(events)), config,
                              channel_rules(config), now=NOW)
    return result_rows(result)


def write_golden(case: str, events: list[Any], rows: dict[str, list[dict[str, Any]]]) -> None:
    lines = [orjson.dumps({"input": input_digest(events)})]
    lines += [orjson.dumps({"table": table, **row}, option=orjson.OPT_SORT_KEYS)
              for table, table_rows in rows.items() for row in table_rows]
    data = gzip.compress(b"\n".join(lines) + b"\n", mtime=0)  # same bytes every run
    golden_path(case).write_bytes(data)


def read_golden(case: str) -> tuple[str, dict[str, list[dict[str, Any]]]]:
    with gzip.open(golden_path(case), "rb") as handle:
        lines = handle.read().splitlines()
    digest = orjson.loads(lines[0])["input"]
    rows: dict[str, list[dict[str, Any]]] = {}
    for line in lines[1:]:
        row = orjson.loads(line)
        rows.setdefault(row.pop("table"), []).append(row)
    return digest, rows


def main() -> None:
    for case, events in cases().items():
        rows = replay_rows(events)
        write_golden(case, events, rows)
        counts = ", ".join(f"{table} {len(r)}" for table, r in rows.items())
        print(f"{case}: {len(events)} events -> {counts}")


if __name__ == "__main__":
    main()
