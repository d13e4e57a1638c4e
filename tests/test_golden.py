"""Batch replay reproduces the golden files recorded from the per-event object pipeline
(tests/golden): touches, conversions, credits, identities and rejections with reasons."""

from __future__ import annotations

import pytest

from tests.golden.cases import MIXES
from tests.golden.record import cases, input_digest, read_golden, replay_rows

CASES = cases()


@pytest.mark.parametrize("case", [*MIXES, "hostile"])
def test_replay_matches_the_golden_file(case: str) -> None:
    events = CASES[case]
    digest, golden = read_golden(case)
    assert input_digest(events) == digest, "the generator's output changed: re-record"
    rows = replay_rows(events)
    assert set(rows) == set(golden)
    for table in golden:
        assert rows[table] == golden[table], table
