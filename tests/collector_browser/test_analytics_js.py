"""End to end in a real browser: @segment/analytics-next (from the npm registry) in headless
Chromium, configured with only ``cdnURL`` = our collector, sends a UTM page view, an identify
and an ``Order Completed``; the page contacts no other host, the three events reach Kafka
scrubbed, and a stream worker lands them as a touch and a credited conversion. And its
retries: a 503 is retried until the event is stored, once; a 400 is not retried.

Needs ``chromium`` (Debian package) and ``npm``: skipped with the reason when either is
absent, except under CI (``CI=true``), where that is a failure (``.ci/run`` installs them).
The npm package is installed once into ~/.cache/attribution-engine/.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, NoReturn

import orjson
import pytest
from aiohttp import web
from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.broker import EmbeddedBroker, TopicSpec, create_topics
from streams.collector import CollectorSettings, producer_for, start
from streams.collector.privacy import hash_email
from streams.envelope import decode_envelope
from streams.routing import partition_for
from tests.streams.pipeline import Pipeline
from tests.streams.test_collector_e2e import assert_credited_journey, landed

pytestmark = pytest.mark.asyncio(loop_scope="session")

ANALYTICS_NEXT_VERSION = "1.84.3"
WRITE_KEY = "browser-key"
SECRET = "browser-email-secret-0123"
PAGE = Path(__file__).with_name("page.html")
RETRY_PAGE = Path(__file__).with_name("retry.html")
CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "/usr/bin/chromium")
REPORT_TIMEOUT = 60.0  # generous bound for a cold browser start on a loaded CI machine


def unavailable(reason: str) -> NoReturn:
    """Skip on a developer machine; fail under CI, where the browser test must run."""
    if os.environ.get("CI", "").strip().lower() in ("true", "1", "yes"):
        pytest.fail(f"{reason}; CI must run the browser test (.ci/run installs chromium)",
                    pytrace=False)
    pytest.skip(reason)


def chromium_path() -> str | None:
    for candidate in CHROMIUM_CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return found
    return None


def analytics_next_dir() -> Path:
    """The UMD build of @segment/analytics-next, installed from the npm registry once."""
    cache = Path.home() / ".cache" / "attribution-engine" / f"ajs-{ANALYTICS_NEXT_VERSION}"
    umd = cache / "node_modules" / "@segment" / "analytics-next" / "dist" / "umd"
    if (umd / "index.js").is_file():
        return umd
    npm = shutil.which("npm")
    if npm is None:
        unavailable("npm is not installed: cannot fetch @segment/analytics-next")
    cache.mkdir(parents=True, exist_ok=True)
    installed = subprocess.run(
        [npm, "install", "--prefix", str(cache), "--no-audit", "--no-fund", "--no-save",
         f"@segment/analytics-next@{ANALYTICS_NEXT_VERSION}"],
        capture_output=True, text=True, timeout=300, check=False,
    )
    if installed.returncode != 0:
        unavailable(f"npm could not install @segment/analytics-next@{ANALYTICS_NEXT_VERSION}:"
                    f"\n{installed.stderr[-2000:]}")
    return umd


@pytest.fixture(scope="module")
def chromium() -> str:
    found = chromium_path()
    if found is None:
        unavailable("chromium is not installed (Debian package `chromium`)")
    return found


@pytest.fixture(scope="module")
def analytics_next(chromium: str) -> Path:
    return analytics_next_dir()


@pytest.fixture(scope="module")
def browser_pipeline(analytics_next: Path, tmp_path_factory: pytest.TempPathFactory
                     ) -> Iterator[Pipeline]:
    """Its own broker and a stream worker (the tests/streams session broker is not in scope)."""
    with EmbeddedBroker() as broker:
        pipeline = Pipeline(broker.bootstrap, f"browser-{uuid.uuid4().hex[:8]}",
                            tmp_path_factory.mktemp("browser"), partitions=2)
        pipeline.workers.start(1)  # joins the group while the browser starts
        try:
            yield pipeline
        finally:
            pipeline.close()


class Site:
    """The shop's own web server: the page, the analytics.js files and a /report sink."""

    def __init__(self, umd: Path, page: Path = PAGE):
        self.umd = umd
        self.page_file = page
        self.collector_url = ""
        self.report: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.app = web.Application()
        self.app.router.add_get("/", self.page)
        self.app.router.add_post("/report", self.receive_report)
        self.app.router.add_static("/ajs/", umd)
        self.runner = web.AppRunner(self.app, access_log=None)
        self.url = ""

    async def start(self) -> None:
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        host, port = self.runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"

    async def page(self, request: web.Request) -> web.Response:
        html = self.page_file.read_text().replace("__COLLECTOR__", self.collector_url)
        return web.Response(text=html.replace("__WRITE_KEY__", WRITE_KEY), content_type="text/html")

    async def receive_report(self, request: web.Request) -> web.Response:
        if not self.report.done():
            self.report.set_result(orjson.loads(await request.read()))
        return web.Response(text="ok")


@pytest.fixture
async def site(analytics_next: Path) -> AsyncIterator[Site]:
    shop = Site(analytics_next)
    await shop.start()
    yield shop
    await shop.runner.cleanup()


@contextlib.asynccontextmanager
async def headless_chromium(binary: str, url: str) -> AsyncIterator[asyncio.subprocess.Process]:
    with tempfile.TemporaryDirectory(prefix="collector-chromium-") as profile:
        process = await asyncio.create_subprocess_exec(
            binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--no-first-run", "--no-default-browser-check", f"--user-data-dir={profile}",
            # Any host but loopback fails to resolve: the page cannot reach the internet.
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            url,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            yield process
        finally:
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, 9)
                await process.wait()


async def topic_events(bootstrap: str, topic: str, partitions: int
                       ) -> list[tuple[int, dict[str, Any]]]:
    """(partition, event) for every event in the topic, read up to the fetched high
    watermarks (the stream's identity answers share the topic: they carry no "type")."""
    assigned = [TopicPartition(topic, p) for p in range(partitions)]
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                fetch_max_wait_ms=20)
    await consumer.start()
    out: list[tuple[int, dict[str, Any]]] = []
    try:
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        for _round in range(500):
            batches = await consumer.getmany(*assigned, timeout_ms=50)
            for records in batches.values():
                for record in records:
                    assert record.value is not None
                    envelope = orjson.loads(record.value)
                    if "events" in envelope:
                        out.extend((record.partition, e)
                                   for e in decode_envelope(record.value))
            marks = [consumer.highwater(tp) for tp in assigned]
            positions = [await consumer.position(tp) for tp in assigned]
            if all(m is not None and p >= m for m, p in zip(marks, positions, strict=True)):
                return out
        raise AssertionError(f"could not read {topic} to its end")
    finally:
        await consumer.stop()


async def test_analytics_next_in_headless_chromium(
    site: Site, browser_pipeline: Pipeline, chromium: str
) -> None:
    topic = browser_pipeline.settings.topic("events")
    settings = CollectorSettings(port=0, bootstrap=browser_pipeline.bootstrap, topic=topic,
                                 write_keys={WRITE_KEY: "web"}, email_secret=SECRET,
                                 cors_origins=[site.url])
    producer = producer_for(settings)
    await producer.start()
    collector = await start(settings, producer)
    site.collector_url = collector.url
    try:
        landing = f"{site.url}/?utm_source=google&utm_medium=cpc&utm_campaign=brand&gclid=g-1"
        async with headless_chromium(chromium, landing):
            report = await asyncio.wait_for(site.report, REPORT_TIMEOUT)
    finally:
        await collector.stop()
        await producer.stop()

    assert report["failures"] == []
    assert report["delivered"] == ["page", "identify", "track"]
    contacted = report["requested"] + report["resources"]
    assert contacted, "the page reported no requests at all"
    strangers = [u for u in contacted if not u.startswith((site.url, collector.url))]
    assert strangers == []
    assert f"{collector.url}/v1/projects/{WRITE_KEY}/settings" in contacted

    partitions = browser_pipeline.partitions
    events = await topic_events(browser_pipeline.bootstrap, topic, partitions)
    anonymous_id = report["anonymousId"]
    assert {p for p, _ in events} == {partition_for(anonymous_id, partitions)}
    by_type = {e["type"]: e for _, e in events}
    assert sorted(by_type) == ["identify", "page", "track"]
    page = by_type["page"]
    assert page["context"]["campaign"] == {"source": "google", "medium": "cpc", "name": "brand"}
    assert "gclid=g-1" in page["context"]["page"]["url"]
    assert page["context"]["ip"] == "127.0.0.0"
    assert "HeadlessChrome" in page["context"]["userAgent"]
    identify = by_type["identify"]
    assert identify["userId"] == "user-77"
    assert identify["traits"]["email"] == hash_email("shopper@example.com", SECRET)
    order = by_type["track"]
    assert order["event"] == "Order Completed" and order["properties"]["revenue"] == 99.5
    assert all(e["source"] == "web" and e["sentAt"] and e["receivedAt"] for e in by_type.values())
    assert b"shopper@example.com" not in orjson.dumps([e for _, e in events])

    # Through the stream: the UTM landing is a Paid Search touch, the order a conversion of
    # the identified shopper, credited to that touch.
    await asyncio.to_thread(browser_pipeline.wait)
    assert_credited_journey(landed(browser_pipeline.warehouse, anonymous_id, "o-77"),
                            channel="Paid Search", campaign="brand", order_id="o-77",
                            value=99.5, currency="EUR", person="user-77")


@pytest.fixture
async def retry_site(analytics_next: Path) -> AsyncIterator[Site]:
    shop = Site(analytics_next, RETRY_PAGE)
    await shop.start()
    yield shop
    await shop.runner.cleanup()


async def test_analytics_next_retries_a_503_until_stored_once_and_never_a_400(
    retry_site: Site, chromium: str
) -> None:
    """The collector's topic is missing at first (503 with Retry-After): analytics.js retries
    with its backoff; once the topic is created from its declaration the event is stored,
    once. The invalid event (negative revenue) is answered 400 once and not asked again."""
    with EmbeddedBroker() as broker:
        topic = f"browser-retry-{uuid.uuid4().hex[:8]}"
        settings = CollectorSettings(port=0, bootstrap=broker.bootstrap, topic=topic,
                                     partitions=1, write_keys={WRITE_KEY: "web"},
                                     email_secret=SECRET, cors_origins=[retry_site.url],
                                     retry_after_seconds=1, topic_check_interval="0.2s")
        producer = producer_for(settings)
        await producer.start()
        collector = await start(settings, producer)
        retry_site.collector_url = collector.url
        stats = collector.state.stats
        try:
            async with headless_chromium(chromium, retry_site.url):
                report = await asyncio.wait_for(retry_site.report, REPORT_TIMEOUT)
                assert report == {"queued": True}
                deadline = asyncio.get_running_loop().time() + REPORT_TIMEOUT
                while stats.requests[503] < 3:  # both events refused, one asked again
                    assert asyncio.get_running_loop().time() < deadline, stats.snapshot()
                    await asyncio.sleep(0.1)
                await create_topics(broker.bootstrap, [TopicSpec(topic, 1)])
                while stats.requests[200] < 1 or stats.requests[400] < 1:
                    assert asyncio.get_running_loop().time() < deadline, stats.snapshot()
                    await asyncio.sleep(0.1)
                await asyncio.sleep(3)  # room for a retry that must not come
        finally:
            await collector.stop()
            await producer.stop()
        events = await topic_events(broker.bootstrap, topic, 1)
    assert [e["messageId"] for _, e in events] == ["ajs-retry-good"]  # stored once
    assert stats.requests[400] == 1  # the invalid event: answered once, never retried
    assert stats.snapshot()["rejected"]
    retried = stats.registry.get_sample_value("attribution_collector_retried_requests_total")
    assert retried is not None and retried >= 1  # analytics.js marked its retries
