"""The stream landing into object storage: two workers, each with its own local state
directory and config, sharing no local filesystem, land into one bucket (moto's S3 server on
127.0.0.1), and the warehouse equals replay."""

from __future__ import annotations

import asyncio
from pathlib import Path

from attribution.batch import attribute_events
from attribution.defaults import channel_rules, load_config
from streams.broker import EmbeddedBroker
from streams.loader import produce_events
from streams.runner import Workers
from streams.settings import stream_settings
from streams.worker import prepare, wait_until_landed
from traffic.generate import TrafficSpec, generate_events
from warehouse.layout import landed
from warehouse.query import run_query
from warehouse.views import create_views

CONFIG = load_config()


def test_two_workers_on_separate_disks_land_into_one_bucket_equal_to_replay(
        broker: EmbeddedBroker, unique_name: str, tmp_path: Path, s3_root: str) -> None:
    events = list(generate_events(TrafficSpec(seed=21, b2c_visitors=150, b2b_accounts=4)))
    stream = {"app_id": unique_name, "topic_prefix": unique_name, "partitions": 4,
              "session_timeout": "3s", "sink_max_seconds": 0.2, "store": "rocksdb://"}
    settings = stream_settings({}, **stream)
    prepare(broker.bootstrap, settings)
    pools = []
    logs = []
    for index in range(2):  # each "host" has its own directory: config, state, log
        host = tmp_path / f"host-{index}"
        host.mkdir()
        lines = [f'{k} = "{v}"' if isinstance(v, str) else f"{k} = {v}"
                 for k, v in {**stream, "state_dir": str(host / "state")}.items()]
        (host / "config.toml").write_text("[stream]\n" + "\n".join(lines) + "\n")
        logs.append((host / "worker.log").open("wb"))
        pool = Workers(broker.bootstrap, Path(s3_root), host / "config.toml", log=logs[-1],
                       extra=["--loglevel", "INFO"])
        pool.start(1)
        pools.append(pool)
    try:
        asyncio.run(produce_events(broker.bootstrap, settings.topic("events"), 4, events,
                                   chunk=500))
        wait_until_landed(broker.bootstrap, settings, timeout=240, poll=0.3)
        assert all(pool.alive() for pool in pools)
    finally:
        for pool in pools:
            pool.stop()
        for log in logs:
            log.close()
    logged = [(tmp_path / f"host-{i}" / "worker.log").read_text(errors="replace")
              for i in range(2)]
    assert all("assigned partitions: " in text for text in logged)  # both took part
    create_views(s3_root)
    rows = run_query(s3_root, "SELECT conversion_id, model, touch_event_id, credit FROM credits")
    landed_credits = {(r[0], r[1], r[2]): round(r[3], 9) for r in rows[1]}
    result = attribute_events(((str(i), e) for i, e in enumerate(events)), CONFIG,
                              channel_rules(CONFIG))
    expected = {(c.conversion_id, c.model, c.touch_event_id): round(c.credit, 9)
                for c in result.credits}
    assert len(expected) > 100
    assert landed_credits == expected
    assert landed(s3_root, "credits")  # in the bucket, by day
    assert not (tmp_path / "s3:").exists() and not Path("s3:").exists()  # nothing local
