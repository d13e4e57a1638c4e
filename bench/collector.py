"""Load test of the collector's `/v1/batch` with the stream running; records BENCHMARKS.md.

    .venv/bin/python -m bench.collector [--seconds S] [--concurrency C] [--no-record]
    (or `python -m bench collector`)

Starts an embedded Tansu broker (or uses $KAFKA_BROKER), one stream worker process and
`attribution collector` (its own process), all on loopback, then drives `/v1/batch` from
this process with an asyncio aiohttp client. Every request is a 100-event batch of fresh
events (unique messageIds; page views with UTM parameters, identifies, product views and
orders over 20,000 visitors). Phases, each bounded in time and in requests:

1. closed loop, 1 connection: the latency of one request alone;
2. closed loop, C connections (default 32) back to back: the maximum rate;
3. open loop at ~50% of that maximum: requests start on a fixed schedule and latency is
   counted from the scheduled start (a slow answer delays nobody, so no coordinated omission).

Then it waits until the worker has landed everything (bounded) and reports how long the
stream took to catch up. Broker, worker, collector and client share the machine's cores, so
each phase also reports events per CPU-second of the collector process, which stays
comparable when the worker (or anything else) competes for the cores.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import aiohttp
import orjson

from bench.common import cpu_seconds, machine, write_section
from streams.runner import Workers, kafka
from streams.settings import StreamSettings, stream_settings
from streams.worker import prepare, wait_until_landed

BATCH_EVENTS = 100
VISITORS = 20_000
WRITE_KEY = "bench-key"
CONFIG = f"""
[collector]
write_keys = {{ "{WRITE_KEY}" = "bench" }}
email_secret = "bench-email-secret-0123"
rate_limit = {{ events_per_second = 1e9, burst = 1000000000 }}

[stream]
session_timeout = "3s"
"""
CAMPAIGNS = [
    ("google", "cpc", "brand"), ("facebook", "paid_social", "summer"),
    ("newsletter", "email", "weekly"), ("linkedin", "paid_social", "b2b"),
    ("bing", "cpc", "generic"), (None, None, None),
]  # fmt: skip


# --- events -----------------------------------------------------------------------------


class Traffic:
    """Fresh 100-event batches: each visitor lands from a campaign, browses, some buy."""

    def __init__(self, seed: int = 7) -> None:
        self.rng = random.Random(seed)
        self.orders = 0

    def event(self, now: datetime) -> dict[str, Any]:
        visitor = f"v-{self.rng.randrange(VISITORS)}"
        # Stamped when sent, as SDKs do: a device's events arrive in order (out-of-order
        # events would be late data, re-crediting conversions, a different workload).
        base: dict[str, Any] = {"anonymousId": visitor, "messageId": uuid.uuid4().hex,
                                "timestamp": now.isoformat()}
        roll = self.rng.random()
        if roll < 0.55:
            source, medium, name = self.rng.choice(CAMPAIGNS)
            query = f"?utm_source={source}&utm_medium={medium}&utm_campaign={name}" if source \
                else ""
            return {**base, "type": "page", "name": "Landing",
                    "context": {"page": {"url": f"https://shop.example/{query}",
                                         "referrer": "https://www.google.com/"},
                                "userAgent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"}}
        if roll < 0.65:
            return {**base, "type": "identify", "userId": f"u-{visitor}",
                    "traits": {"email": f"{visitor}@example.com", "plan": "pro"}}
        if roll < 0.98:
            return {**base, "type": "track", "event": "Product Viewed",
                    "properties": {"sku": f"sku-{self.rng.randrange(500)}", "price": 19.9}}
        self.orders += 1
        return {**base, "type": "track", "event": "Order Completed",
                "properties": {"order_id": f"o-{self.orders}-{uuid.uuid4().hex[:6]}",
                               "revenue": round(self.rng.uniform(10, 300), 2),
                               "currency": "EUR"}}

    def body(self) -> bytes:
        now = datetime.now(UTC)
        return orjson.dumps({"batch": [self.event(now) for _ in range(BATCH_EVENTS)],
                             "sentAt": now.isoformat()})


# --- measuring ------------------------------------------------------------------------------


@dataclass
class Phase:
    name: str
    connections: str
    latencies: list[float] = field(default_factory=list)  # seconds, successful requests
    statuses: Counter[int] = field(default_factory=Counter)
    elapsed: float = 0.0
    collector_cpu: float = 0.0  # CPU-seconds the collector process used in this phase

    @property
    def ok(self) -> int:
        return self.statuses[200]

    @property
    def rps(self) -> float:
        return self.ok / self.elapsed if self.elapsed else 0.0

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000

    def row(self) -> str:
        errors = sum(n for status, n in self.statuses.items() if status != 200)
        per_cpu = self.ok * BATCH_EVENTS / self.collector_cpu if self.collector_cpu else 0.0
        return (f"| {self.name} | {self.connections} | {self.ok:,} | {self.rps:,.0f} | "
                f"{self.rps * BATCH_EVENTS:,.0f} | {self.percentile(0.5):.1f} | "
                f"{self.percentile(0.99):.1f} | {errors} | {per_cpu:,.0f} |")


async def post(session: aiohttp.ClientSession, url: str, body: bytes, phase: Phase,
               started: float) -> None:
    try:
        async with session.post(url, data=body) as response:
            await response.read()
            status = response.status
    except aiohttp.ClientError:
        status = 0  # connection-level failure
    phase.statuses[status] += 1
    if status == 200:
        phase.latencies.append(time.perf_counter() - started)


def new_session(limit: int) -> aiohttp.ClientSession:
    token = base64.b64encode(f"{WRITE_KEY}:".encode()).decode()
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=limit),
        headers={"Authorization": f"Basic {token}", "Content-Type": "application/json"},
        timeout=aiohttp.ClientTimeout(total=30),
    )


async def closed_loop(url: str, traffic: Traffic, connections: int, seconds: float,
                      max_requests: int, name: str) -> Phase:
    """`connections` clients, each sending its next request when the last one is answered."""
    phase = Phase(name, str(connections))
    budget = [max_requests]
    async with new_session(connections) as session:
        begin = time.perf_counter()
        deadline = begin + seconds

        async def client() -> None:
            while time.perf_counter() < deadline and budget[0] > 0:
                budget[0] -= 1
                body = traffic.body()
                await post(session, url, body, phase, time.perf_counter())

        await asyncio.gather(*(client() for _ in range(connections)))
        phase.elapsed = time.perf_counter() - begin
    return phase


async def open_loop(url: str, traffic: Traffic, rate: float, seconds: float,
                    max_requests: int, name: str) -> Phase:
    """Requests start every 1/rate s whatever happens; latency counts from that schedule."""
    phase = Phase(name, "as needed")
    count = min(max_requests, max(1, int(rate * seconds)))
    async with new_session(0) as session:
        begin = time.perf_counter()
        tasks = []
        for index in range(count):
            scheduled = begin + index / rate
            body = traffic.body()
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(post(session, url, body, phase, scheduled)))
        await asyncio.gather(*tasks)
        phase.elapsed = time.perf_counter() - begin
    return phase


async def load(url: str, seconds: float, connections: int, max_requests: int,
               collector_cpu: Callable[[], float]) -> list[Phase]:
    traffic = Traffic()
    await closed_loop(url, traffic, connections, 2.0, max_requests, "warm-up")

    async def measured(phase: Awaitable[Phase]) -> Phase:
        before = collector_cpu()
        done = await phase
        done.collector_cpu = collector_cpu() - before
        return done

    single = await measured(closed_loop(url, traffic, 1, min(seconds, 5.0), max_requests,
                                        "closed loop, one request at a time"))
    peak = await measured(closed_loop(url, traffic, connections, seconds, max_requests,
                                      "closed loop, maximum rate"))
    half = await measured(open_loop(url, traffic, peak.rps / 2, seconds, max_requests,
                                    "open loop at ~50% of the maximum rate"))
    return [single, peak, half]


# --- processes ----------------------------------------------------------------------------


def start_collector(bootstrap: str, config: Path, port: int, log: IO[bytes]
                    ) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "cli.main", "collector", "--broker", bootstrap,
               "--config", str(config), "--port", str(port)]
    return subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log,
                            stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})


def wait_for_line(path: Path, prefix: str, process: subprocess.Popen[bytes],
                  timeout: float = 60.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in path.read_text(errors="replace").splitlines():
            if line.startswith(prefix):
                return line
        if process.poll() is not None:
            raise RuntimeError(f"collector exited:\n{path.read_text(errors='replace')}")
        time.sleep(0.1)
    raise TimeoutError(f"collector did not print {prefix!r} in {timeout:.0f}s")


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def running_stream(workdir: Path, seconds: float, connections: int, max_requests: int,
                   drain_timeout: float) -> tuple[list[Phase], float | None, str]:
    """Broker, worker and collector up; run the load; return the phases, the seconds the
    stream needed after the load to land everything (None: not within drain_timeout), and
    which broker it was."""
    config = workdir / "bench.toml"
    config.write_text(CONFIG)
    settings: StreamSettings = stream_settings({}, session_timeout="3s")
    warehouse = workdir / "warehouse"
    with kafka(None) as (bootstrap, embedded), (workdir / "worker.log").open("wb") as worker_log, \
            (workdir / "collector.log").open("wb") as collector_log:
        broker = "embedded Tansu" if embedded is not None else f"Kafka at {bootstrap}"
        prepare(bootstrap, settings)
        workers = Workers(bootstrap, warehouse, config, log=worker_log)
        workers.start(1)
        collector = start_collector(bootstrap, config, free_port(), collector_log)
        try:
            line = wait_for_line(workdir / "collector.log", "collector listening on", collector)
            url = line.split()[-1] + "/v1/batch"
            print(f"collector at {url}; {broker}; 1 worker; load for {seconds:.0f}s per phase",
                  file=sys.stderr)
            phases = asyncio.run(load(url, seconds, connections, max_requests,
                                      lambda: cpu_seconds(collector.pid)))
            load_done = time.monotonic()
            drained: float | None = None
            try:
                wait_until_landed(bootstrap, settings, timeout=drain_timeout)
                drained = time.monotonic() - load_done
            except TimeoutError:
                pass
        finally:
            collector.terminate()
            collector.wait(timeout=30)
            workers.stop()
    return phases, drained, broker


# --- reporting ------------------------------------------------------------------------------


def section(phases: list[Phase], drained: float | None, broker: str, seconds: float,
            connections: int, drain_timeout: float, load_average: float) -> str:
    info = machine()
    events = sum(p.ok for p in phases) * BATCH_EVENTS
    caught_up = (f"needed {drained:.1f} s more to land all {events:,} events" if drained
                 is not None else f"had not landed all {events:,} events {drain_timeout:.0f} s "
                 "later")
    return "\n".join([
        f"Machine: {info['cores']} cores ({info['cpu']}), {info['memory_gb']} GB RAM, "
        f"Python {info['python']}. Date: {info['date']}. Load average before the run: "
        f"{load_average:.2f}.",
        "",
        f"`POST /v1/batch` with {BATCH_EVENTS}-event batches over loopback while the stream "
        f"runs ({broker} + one worker process, 4 partitions); client: asyncio aiohttp in its "
        f"own process, {seconds:.0f} s per phase, {connections} connections at the maximum. "
        "A request is answered only after the broker acknowledged its envelopes (acks=all). "
        "Broker, worker, collector and client share the cores; the last column is "
        "independent of that sharing.",
        "",
        "| phase | connections | requests | requests/s | events/s | p50 ms | p99 ms | errors "
        "| events per collector CPU-second |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
        *(phase.row() for phase in phases),
        "",
        f"After the load, the one worker {caught_up}: the stream, not the collector, limits "
        "sustained intake on this machine (see the Stream section).",
    ])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=15.0, help="per phase (bound)")
    parser.add_argument("--max-requests", type=int, default=20_000, help="per phase (bound)")
    parser.add_argument("--concurrency", type=int, default=32, help="connections at maximum")
    parser.add_argument("--drain-timeout", type=float, default=600.0,
                        help="how long to wait for the stream to land everything (bound)")
    parser.add_argument("--no-record", action="store_true", help="do not touch BENCHMARKS.md")
    args = parser.parse_args(argv)
    load_average = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-collector-") as tmp:
        phases, drained, broker = running_stream(Path(tmp), args.seconds, args.concurrency,
                                                 args.max_requests, args.drain_timeout)
    text = section(phases, drained, broker, args.seconds, args.concurrency,
                   args.drain_timeout, load_average)
    print(text)
    if not args.no_record:
        write_section("collector", "Collector (`python -m bench collector`)", text)
        print("recorded in BENCHMARKS.md", file=sys.stderr)


if __name__ == "__main__":
    main()
