"""The network to the broker fails for longer than the session timeout while a worker is
busy: the worker loses its connections and its group membership, and must reconnect and
resume by itself (no restart of anything), ending with the replay's warehouse.

A Tansu broker of its own advertises a proxy's port (tests/streams/netfault.py), so every
connection of every client (worker, producer, lag probe) goes through the proxy."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from attribution.batch import attribute_events
from streams.broker import EmbeddedBroker
from tests.streams.netfault import TcpProxy
from tests.streams.pipeline import Pipeline
from tests.streams.test_collector_run import free_port
from tests.streams.test_pipeline import CONFIG, RULES, batch_credits, traffic

OUTAGE_SECONDS = 8.0  # well past the 3 s session timeout: the group forgets the worker


@pytest.fixture
def proxied() -> Iterator[tuple[EmbeddedBroker, TcpProxy]]:
    port = free_port()
    with EmbeddedBroker(advertised_port=port) as broker, TcpProxy(port, broker.port) as proxy:
        yield broker, proxy


def refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    except ConnectionRefusedError:
        return True
    return False


def test_worker_reconnects_after_the_network_to_the_broker_fails(
        proxied: tuple[EmbeddedBroker, TcpProxy], unique_name: str, tmp_path: Path) -> None:
    _broker, proxy = proxied
    pipeline = Pipeline(f"127.0.0.1:{proxy.listen_port}", unique_name, tmp_path)
    events = traffic(seed=29)
    third = len(events) // 3
    try:
        pipeline.workers.start(1)
        pipeline.send(events[:third])
        pipeline.wait()
        # The worker is busy with the second part (consuming, producing, committing)
        # when the link dies.
        pipeline.send(events[third:2 * third])
        proxy.cut()
        assert refused(proxy.listen_port)
        time.sleep(OUTAGE_SECONDS)
        assert pipeline.workers.alive()
        assert "Connect call failed" in pipeline.log_text()  # the worker saw the outage
        cut, before = proxy.aborted, proxy.connections
        proxy.restore()
        pipeline.send(events[2 * third:])
        pipeline.wait(timeout=120)
        assert pipeline.workers.alive(), pipeline.log_text()[-3000:]
    finally:
        pipeline.close()

    result = attribute_events(((str(i), e) for i, e in enumerate(events)), CONFIG, RULES)
    conversions = {(c.conversion_id, round(c.value, 6)) for c in result.conversions}
    credits = batch_credits(events)
    assert pipeline.credits() == credits
    landed = pipeline.query("SELECT conversion_id, round(value, 6) FROM conversions")
    assert set(landed) == conversions and len(landed) == len(conversions)
    assert pipeline.query("SELECT count(*) - count(DISTINCT event_id) FROM touchpoints") == [(0,)]
    assert len(conversions) > 15
    assert cut >= 3  # at least the worker's consumer, producer and coordinator links
    print(f"connections cut: {cut}, opened before the outage: {before}, after: "
          f"{proxy.connections - before}; events: {len(events)}, credits: {len(credits)}")
