"""Slow clients cannot exhaust the collector: over real sockets, a bounded number of
connections that trickle their headers or their body, or just sit there, beside normal
traffic that keeps being served. The collector runs against the real broker."""

from __future__ import annotations

import asyncio
import contextlib
import time

import aiohttp
import orjson
import pytest

from streams.broker import EmbeddedBroker
from streams.collector import RunningCollector
from tests.streams import test_collector as base
from tests.streams.test_collector import WRITE_KEY, MakeCollector, all_events, auth, produced

topic, make_collector, http = base.topic, base.make_collector, base.http

pytestmark = pytest.mark.asyncio(loop_scope="session")

HEADER_TIMEOUT = 1.0
BODY_TIMEOUT = 1.0
SLOW = 8  # trickling connections of each kind
GIVE_UP = 15.0  # a slow client that is still connected after this was never cut off


def endpoint(collector: RunningCollector) -> tuple[str, int]:
    host, _, port = collector.url.removeprefix("http://").rpartition(":")
    return host, int(port)


async def trickle(collector: RunningCollector, head: bytes, body: bytes = b"",
                  every: float = 0.1) -> tuple[float, bytes]:
    """Send ``head`` at once and ``body`` a byte at a time (or, with no body, ``head`` a
    byte at a time) until the server answers or closes; (seconds until then, answer)."""
    reader, writer = await asyncio.open_connection(*endpoint(collector))
    started = time.monotonic()
    slow = body or head
    if body:
        writer.write(head)
    answer = b""
    try:
        for byte in slow:
            writer.write(bytes([byte]))
            with contextlib.suppress(ConnectionError):
                await writer.drain()
            try:
                answer = await asyncio.wait_for(reader.read(4096), every)
            except TimeoutError:
                if time.monotonic() - started > GIVE_UP:
                    break
                continue
            except ConnectionError:
                break
            break  # an answer or end of stream: the server is done with us
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    return time.monotonic() - started, answer


async def normal_traffic(http: aiohttp.ClientSession, url: str, requests: int) -> list[int]:
    statuses = []
    for index in range(requests):
        body = {"batch": [{"type": "page", "anonymousId": f"normal-{index}"}]}
        async with http.post(f"{url}/v1/batch", data=orjson.dumps(body), headers=auth()) as r:
            statuses.append(r.status)
        await asyncio.sleep(0.05)
    return statuses


async def test_slow_headers_and_bodies_are_cut_off_while_normal_traffic_is_served(
        make_collector: MakeCollector, http: aiohttp.ClientSession, broker: EmbeddedBroker,
        topic: str) -> None:
    collector = await make_collector(header_timeout=f"{HEADER_TIMEOUT}s",
                                     body_timeout=f"{BODY_TIMEOUT}s", max_connections=100)
    never_ending_head = (b"POST /v1/batch HTTP/1.1\r\nHost: collector\r\n"
                         + b"X-Slow: " + b"a" * 400 + b"\r\n")
    body = orjson.dumps({"batch": [{"type": "page", "anonymousId": "slow-body"}]})
    slow_body_head = (b"POST /v1/batch HTTP/1.1\r\nHost: collector\r\nAuthorization: "
                      + auth()["Authorization"].encode() + b"\r\nContent-Length: "
                      + str(len(body)).encode() + b"\r\n\r\n")
    slow_heads = [trickle(collector, never_ending_head) for _ in range(SLOW)]
    slow_bodies = [trickle(collector, slow_body_head, body) for _ in range(SLOW)]
    started = time.monotonic()
    served = asyncio.ensure_future(normal_traffic(http, collector.url, 30))
    cut = await asyncio.gather(*slow_heads, *slow_bodies, *idle_connections(collector))
    statuses = await served
    # Normal traffic was served all along, and quickly.
    assert statuses == [200] * 30
    for seconds, answer in cut[:SLOW]:  # headers never completed: closed, no answer
        assert seconds < HEADER_TIMEOUT + 5 and answer == b""
    for seconds, answer in cut[SLOW:2 * SLOW]:  # body never completed: 408, closed
        assert seconds < HEADER_TIMEOUT + BODY_TIMEOUT + 5
        assert answer.startswith(b"HTTP/1.1 408") and b'"code":"timeout"' in answer
    for seconds, answer in cut[2 * SLOW:]:  # connected, said nothing: closed
        assert seconds < HEADER_TIMEOUT + 5 and answer == b""
    assert time.monotonic() - started < GIVE_UP
    landed = {e["anonymousId"] for e in all_events(await produced(broker.bootstrap, topic))}
    assert landed == {f"normal-{i}" for i in range(30)}  # and no half-sent batch
    assert collector.state.stats.requests[408] == SLOW


def idle_connections(collector: RunningCollector) -> list[asyncio.Future[tuple[float, bytes]]]:
    async def sit() -> tuple[float, bytes]:
        reader, writer = await asyncio.open_connection(*endpoint(collector))
        started = time.monotonic()
        try:
            answer = await asyncio.wait_for(reader.read(4096), GIVE_UP)
        except TimeoutError:
            answer = b"(still open)"
        finally:
            writer.close()
        return time.monotonic() - started, answer

    return [asyncio.ensure_future(sit()) for _ in range(SLOW)]


async def test_connections_beyond_the_bound_get_503_and_the_rest_are_served(
        make_collector: MakeCollector, http: aiohttp.ClientSession) -> None:
    limit = 10
    collector = await make_collector(max_connections=limit, header_timeout="30s")
    held = [await asyncio.open_connection(*endpoint(collector)) for _ in range(limit)]
    try:
        await asyncio.sleep(0.1)
        reader, writer = await asyncio.open_connection(*endpoint(collector))
        answer = await asyncio.wait_for(reader.read(), 5)  # answered and closed at once
        writer.close()
        assert answer.startswith(b"HTTP/1.1 503") and b"Retry-After: " in answer
    finally:
        for _reader, held_writer in held:
            held_writer.close()
    refused = collector.state.stats.registry.get_sample_value(
        "attribution_collector_refused_connections_total")
    assert refused is not None and refused >= 1
    await asyncio.sleep(0.2)  # the held connections are gone: served again
    body = {"batch": [{"type": "page", "anonymousId": "after"}]}
    async with http.post(f"{collector.url}/v1/batch", data=orjson.dumps(body),
                         headers=auth(WRITE_KEY)) as resp:
        assert resp.status == 200
    open_now = collector.state.stats.registry.get_sample_value(
        "attribution_collector_open_connections")
    assert open_now is not None and open_now <= limit
