"""Batch replay and the stream's stages reproduce the golden files recorded from the
per-event object pipeline (tests/golden): touches, conversions, credits, identities and
rejections with their reasons."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from attribution.credit import from_micros
from attribution.defaults import channel_rules, load_config
from tests.golden.cases import MIXES, NOW
from tests.golden.record import _sort_key, canonical, cases, input_digest, read_golden, replay_rows
from tests.support.harness import StreamHarness

CASES = cases()
CONFIG = load_config()
NOT_AN_OBJECT = "(event): an event must be a JSON object"
RULES = channel_rules(CONFIG)


@pytest.mark.parametrize("case", [*MIXES, "hostile"])
def test_replay_matches_the_golden_file(case: str) -> None:
    events = CASES[case]
    digest, golden = read_golden(case)
    assert input_digest(events) == digest, "the generator's output changed: re-record"
    rows = replay_rows(events)
    assert set(rows) == set(golden)
    for table in golden:
        assert rows[table] == golden[table], table


def _stream(case: str) -> StreamHarness:
    sim = StreamHarness(CONFIG, RULES, now=NOW)
    sim.run(CASES[case], chunk=2000)
    return sim


@pytest.mark.parametrize("case", [*MIXES, "hostile"])
def test_stream_stages_match_the_golden_file(case: str) -> None:
    """The stream's stages, run in process, land what the object pipeline did: every touch,
    every conversion, the latest credits and every rejection reason."""
    _, golden = read_golden(case)
    sim = _stream(case)
    touches = {row["event_id"]: canonical(row) for row in _rows(sim, "touches")}
    assert sorted(touches.values(), key=_sort_key) == golden["touches"]
    credits = sorted((canonical(_with_times(c._asdict())) for c in sim.latest_credits()),
                     key=_sort_key)
    expected = [{**row, "version": 1, "reason": "initial"} for row in golden["credits"]]
    assert [_credit_key(c) for c in credits] == [_credit_key(c) for c in expected]
    keys = {c.conversion_id: c.journey_key for c in sim.latest_credits()}
    conversions: dict[str, dict[str, Any]] = {}  # the earliest send of each, as the view
    for row in _rows(sim, "conversions"):
        found = conversions.get(row["conversion_id"])
        if found is None or (row["time"], row["event_id"]) < (found["time"], found["event_id"]):
            conversions[row["conversion_id"]] = row
    landed = [canonical({**row, "journey_key": keys[cid]}) for cid, row in conversions.items()]
    assert sorted(landed, key=_sort_key) == golden["conversions"]
    # Replay reads a text input as a JSON line; in an envelope it is a JSON string value.
    expected_reasons = [NOT_AN_OBJECT if r["reason"].startswith("invalid JSON") else r["reason"]
                        for r in golden["rejected"]]
    assert sorted(sim.rejected()) == sorted(expected_reasons)


def _rows(sim: StreamHarness, table: str) -> list[dict[str, Any]]:
    """Landed rows, with JSON text properties read back (the golden rows hold objects)."""
    landed = sim.landed(table)
    rows = [] if landed.num_rows == 0 else landed.to_pylist()
    return [{**row, "properties": orjson.loads(row["properties"])} if "properties" in row
            else row for row in rows]


def _with_times(row: dict[str, Any]) -> dict[str, Any]:
    times = {name: from_micros(value) for name in ("touch_time", "conversion_time")
             if isinstance(value := row[name], int)}
    return {**row, **times}


def _credit_key(row: dict[str, object]) -> tuple[object, ...]:
    return tuple(row[k] for k in ("conversion_id", "model", "touch_event_id", "channel",
                                  "campaign", "credit", "credited_value", "journey_key",
                                  "touch_time", "conversion_time", "currency", "policy"))
