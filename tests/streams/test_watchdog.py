"""The stall watchdog on real worker processes: a worker that is "ready" but consumes
nothing is found, fails /readyz, counts it, exits 75; supervision restarts it and the
warehouse then equals replay. The stall is forced by the test hook of streams.watchdog
(ATTRIBUTION_TEST_STALL_ONCE: pause the worker's source partitions once it is ready)."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from pathlib import Path

import orjson

from streams.broker import EmbeddedBroker
from streams.health import OPS_DIR
from streams.watchdog import EXIT_STALLED, TEST_STALL_ENV
from streams.worker import pipeline_lag
from tests.streams.pipeline import Pipeline
from tests.streams.test_pipeline import batch_credits, traffic

STALL_SECONDS = 4.0
BOUND_S = 120.0  # a guard against hangs on a loaded machine, not an expectation


def probe(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def announced_url(warehouse: Path) -> str | None:
    for path in (warehouse / OPS_DIR).glob("*.json"):
        try:
            return str(orjson.loads(path.read_bytes())["url"])
        except (OSError, ValueError, KeyError):
            continue
    return None


def test_a_stalled_worker_is_found_reported_restarted_and_the_warehouse_equals_replay(
        broker: EmbeddedBroker, unique_name: str, tmp_path: Path) -> None:
    marker = tmp_path / "stall-once"
    marker.touch()
    pipeline = Pipeline(broker.bootstrap, unique_name, tmp_path,
                        stream_overrides={"stall_seconds": STALL_SECONDS,
                                          "ops_port": 0})
    pipeline.workers.env[TEST_STALL_ENV] = str(marker)
    pipeline.workers.backoff_first_s = 0.5
    try:
        events = traffic(seed=17)
        pipeline.workers.start(1)
        first = pipeline.workers.processes[0]
        pipeline.workers.supervise(poll=0.2)
        # Send once the hook has paused the worker: a fast worker would otherwise have
        # consumed everything before the hook's first check, and have no lag to stall on.
        deadline = time.monotonic() + BOUND_S
        while marker.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not marker.exists(), "the test hook never paused the worker"
        pipeline.send(events)
        # While stalled (paused by the hook) the worker answers /readyz 503 "stalled"
        # and counts it on /metrics, before it exits to be restarted.
        seen_stalled = seen_metric = False
        deadline = time.monotonic() + BOUND_S
        while first.poll() is None and time.monotonic() < deadline:
            url = announced_url(pipeline.warehouse)
            if url is not None:
                status, body = probe(f"{url}/readyz")
                if status == 503 and "stalled" in body:
                    seen_stalled = True
                    metrics = probe(f"{url}/metrics")[1]
                    seen_metric = seen_metric or "attribution_worker_stalls_total 1.0" in metrics
            time.sleep(0.2)
        assert first.wait(timeout=BOUND_S) == EXIT_STALLED, pipeline.log_text()[-3000:]
        assert seen_stalled and seen_metric, pipeline.log_text()[-3000:]
        log = pipeline.log_text()
        fired = next(line for line in log.splitlines() if "worker stalled:" in line)
        # The diagnosis names what the hook paused: Faust's paused partitions.
        assert f"{unique_name}.events:0" in fired.split("paused in Faust:")[1]
        pipeline.wait()
        assert pipeline.workers.restarts >= 1
        assert pipeline.credits() == batch_credits(events)
    finally:
        pipeline.close()


def test_without_the_watchdog_the_hook_reproduces_the_silent_stall(
        broker: EmbeddedBroker, unique_name: str, tmp_path: Path) -> None:
    """The reported symptom, and why the watchdog is needed: with it off (stall_seconds
    0) the paused worker stays "ready" on /readyz and alive while its lag never falls."""
    marker = tmp_path / "stall-once"
    marker.touch()
    pipeline = Pipeline(broker.bootstrap, unique_name, tmp_path,
                        stream_overrides={"stall_seconds": 0})
    pipeline.workers.env[TEST_STALL_ENV] = str(marker)
    try:
        pipeline.workers.start(1)
        deadline = time.monotonic() + BOUND_S
        while marker.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not marker.exists(), pipeline.log_text()[-3000:]
        pipeline.send(traffic(seed=19)[:300])
        lags = []
        for _ in range(4):  # 4 x 2.5 s: well past the other test's 4 s stall_seconds
            time.sleep(2.5)
            lags.append(pipeline_lag(broker.bootstrap, pipeline.settings))
        url = announced_url(pipeline.warehouse)
        assert url is not None and probe(f"{url}/readyz")[0] == 200
        assert pipeline.workers.alive()
        assert lags[0] > 0 and len(set(lags)) == 1  # nothing consumed, nothing lost
    finally:
        pipeline.close()
