"""One hostile event among good ones at the other two entry points (the collector's is
tests/streams/test_collector_hypothesis.py, with the same hostile values): a file replayed
and an envelope on the events topic. The good events land; the hostile one is rejected with
a reason, or, when what was drawn is valid after all, lands too."""

from __future__ import annotations

import asyncio
import tempfile
import uuid
from pathlib import Path

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from attribution.defaults import channel_rules, load_config
from tests.streams.test_collector_hypothesis import good, hostile
from tests.support.harness import StreamHarness
from warehouse.query import run_query
from warehouse.replay import replay

CONFIG = load_config()
RULES = channel_rules(CONFIG)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_replay_lands_the_good_lines_beside_a_hostile_one(data: st.DataObject) -> None:
    tag = uuid.uuid4().hex[:10]
    bad, what = data.draw(hostile(tag))
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "events.jsonl"
        path.write_bytes(b"\n".join([orjson.dumps(good(tag, 0)), bad,
                                     orjson.dumps(good(tag, 1))]) + b"\n")
        root = Path(directory) / "wh"
        summary, outcome = replay([path], root)
        touches = {t for (t,) in run_query(root, "SELECT event_id FROM touchpoints")[1]}
        assert {f"{tag}-0", f"{tag}-1"} <= touches, what
        assert summary.events_read == 3
        if summary.rejected:
            assert summary.rejected == 1 and outcome.rejected[0].position == "events.jsonl:2"
            assert outcome.rejected[0].reason, what


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_the_device_stage_takes_the_good_events_of_an_envelope_beside_a_hostile_one(
        data: st.DataObject) -> None:
    tag = uuid.uuid4().hex[:10]
    bad, what = data.draw(hostile(tag))
    sim = StreamHarness(CONFIG, RULES, partitions=1)
    # The bytes as they arrive: orjson may not read the hostile event at all.
    envelope = b'{"v":1,"events":[' + b",".join(
        [orjson.dumps(good(tag, 0)), bad, orjson.dumps(good(tag, 1))]) + b"]}"
    sim.log.records[(sim.names.events, 0)].append(envelope)
    asyncio.run(sim.drain())
    touches = {row["event_id"] for row in sim.landed("touches").to_pylist()}
    assert {f"{tag}-0", f"{tag}-1"} <= touches, what
    rejected = sim.landed("rejected")
    if rejected.num_rows:
        rows = rejected.to_pylist()
        assert len(rows) == 1 and rows[0]["reason"], what
        assert rows[0]["position"].endswith("#1"), (what, rows[0]["position"])
