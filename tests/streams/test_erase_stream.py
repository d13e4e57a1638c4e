"""`attribution erase` end to end: a worker process on the real broker, the CLI as a process,
the live state (changelog tombstones, behaviour afterwards) and the warehouse."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.broker import EmbeddedBroker
from tests.streams.pipeline import Pipeline
from tests.streams.test_pipeline import _tombstones
from tests.test_batch import B2C_JOURNEY, track
from tests.test_erase import OTHER, PERSON, all_rows, mentions


@pytest.fixture
def pipeline(broker: EmbeddedBroker, unique_name: str, tmp_path: Path) -> Iterator[Pipeline]:
    running = Pipeline(broker.bootstrap, unique_name, tmp_path)
    yield running
    running.close()


def test_erase_removes_the_person_from_live_state_and_warehouse(pipeline: Pipeline) -> None:
    pipeline.workers.start(1)
    pipeline.send(B2C_JOURNEY + OTHER)
    pipeline.wait()
    assert pipeline.query("SELECT count(*) FROM credits WHERE journey_key = 'person:u-1'")[0][0]

    done = subprocess.run(
        [sys.executable, "-m", "cli.main", "erase", "--user-id", "u-1", "--warehouse",
         str(pipeline.warehouse), "--broker", pipeline.bootstrap, "--config",
         str(pipeline.root / "config.toml"), "--timeout", "60"],
        capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["stream_state"] is True and report["ids_erased"] == 3

    # Warehouse: nothing mentions the person; the other buyer is intact.
    assert not [r for rows in all_rows(pipeline.warehouse).values() for r in rows
                if mentions(r, PERSON)]
    assert pipeline.query("SELECT conversion_id FROM conversions") == [("purchase:B-1",)]
    assert pipeline.query("SELECT subject, stream_state FROM erasures") == [("user_id", True)]

    # Live state: every key of the person was tombstoned in the changelogs.
    name = pipeline.name
    devices = asyncio.run(_tombstones(pipeline.bootstrap, f"{name}-devices-changelog"))
    journeys = asyncio.run(_tombstones(pipeline.bootstrap, f"{name}-journeys-changelog"))
    links = asyncio.run(_tombstones(pipeline.bootstrap, f"{name}-identity-links-changelog"))
    assert {"anon-1", "anon-2"} <= devices and "anon-9" not in devices
    assert "person:u-1" in journeys and "person:anon-9" not in journeys
    assert {"anonymous_person|anon-1|u-1", "anonymous_person|anon-2|u-1"} <= links

    # And the stream behaves as if it never knew them: the same browser buying again has
    # no remembered touches and no identity, so nothing of the old journey is credited.
    pipeline.send([track("again", 3 * 1440 + 60, "Order Completed",
                         {"order_id": "A-2", "revenue": 10.0}, anon="anon-1")])
    pipeline.wait()
    assert pipeline.query("SELECT DISTINCT journey_key, channel FROM credits "
                          "WHERE conversion_id = 'purchase:A-2'") == [("person:anon-1", "(none)")]
