"""Stable email pseudonyms: the same address hashes the same after a restart and on every
collector, and a collector that would not know its secret refuses to start.

Over the real broker: collectors in-process (restart on the embedded default) and
`attribution collector` processes (two replicas configured from the environment)."""

from __future__ import annotations

import asyncio
import os
import queue
import stat
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from attribution.policy import ConfigError
from streams.broker import EmbeddedBroker, TopicSpec, create_topics
from streams.collector import CollectorSettings, producer_for, start
from streams.collector.privacy import hash_email
from streams.collector.secret import (
    persisted_secret,
    resolve_email_secret,
    secret_path,
)
from tests.streams.test_collector import auth, post, produced
from tests.streams.test_collector_run import STARTUP_TIMEOUT, read_lines

pytestmark = pytest.mark.asyncio(loop_scope="session")

EMAIL = "Ada.Lovelace@Example.com"
ENV = "TEST_ATTRIBUTION_EMAIL_SECRET"


def resolved(section: dict[str, Any], *, embedded: bool, warehouse: str | Path | None
             ) -> str | None:
    settings = CollectorSettings.from_section(section)
    return resolve_email_secret(settings, embedded_broker=embedded,
                                warehouse=warehouse).email_secret


# --- where the secret comes from -------------------------------------------------------------


async def test_configured_secret_wins_then_the_named_environment_variable(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    literal = {"email_secret": "literal-secret-0123456"}
    assert resolved(literal, embedded=False, warehouse=None) == "literal-secret-0123456"
    monkeypatch.setenv(ENV, "  from-the-environment-0123 ")
    named = {"email_secret_env": ENV}
    assert resolved(named, embedded=False, warehouse=None) == "from-the-environment-0123"
    assert resolved(named, embedded=True, warehouse=tmp_path) == "from-the-environment-0123"
    assert not secret_path(tmp_path).exists()  # a configured secret is never replaced
    with pytest.raises(ConfigError, match="not both"):
        CollectorSettings.from_section({**literal, **named})
    with pytest.raises(ConfigError, match="at least 16"):
        CollectorSettings.from_section({"email_secret": "short"})


@pytest.mark.parametrize(("value", "why"), [(None, "is not set"), ("short", "shorter than 16")])
async def test_a_named_variable_that_is_unset_or_short_is_refused(
        monkeypatch: pytest.MonkeyPatch, value: str | None, why: str) -> None:
    if value is None:
        monkeypatch.delenv(ENV, raising=False)
    else:
        monkeypatch.setenv(ENV, value)
    with pytest.raises(ConfigError, match=why) as caught:
        resolved({"email_secret_env": ENV}, embedded=True, warehouse=None)
    assert f"${ENV}" in str(caught.value)


async def test_without_a_secret_only_the_embedded_local_setup_makes_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="external Kafka broker") as caught:
        resolved({}, embedded=False, warehouse=tmp_path)
    assert "email_secret_env" in str(caught.value) and "hash_emails = false" in str(caught.value)
    # A warehouse in object storage cannot keep one generated secret for every host.
    with pytest.raises(ConfigError, match="not a local directory"):
        resolved({}, embedded=True, warehouse="s3://bucket/warehouse")
    assert resolved({"hash_emails": False}, embedded=False, warehouse=None) is None

    first = resolved({}, embedded=True, warehouse=tmp_path)
    assert first is not None and len(first) == 64
    path = secret_path(tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert resolved({}, embedded=True, warehouse=tmp_path) == first  # kept, not remade


async def test_processes_starting_together_agree_on_one_generated_secret(tmp_path: Path) -> None:
    with ThreadPoolExecutor(8) as pool:
        secrets = set(pool.map(lambda _: persisted_secret(tmp_path), range(16)))
    assert len(secrets) == 1
    assert list(secret_path(tmp_path).parent.iterdir()) == [secret_path(tmp_path)]


async def test_a_damaged_secret_file_stops_the_start_instead_of_being_replaced(
        tmp_path: Path) -> None:
    path = secret_path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text("abc\n")
    with pytest.raises(ConfigError, match="damaged"):
        persisted_secret(tmp_path)
    assert path.read_text() == "abc\n"


# --- across a restart, on the embedded default -----------------------------------------------


async def identify_through_a_collector(bootstrap: str, topic: str, secret: str | None) -> None:
    settings = CollectorSettings(port=0, bootstrap=bootstrap, topic=topic, partitions=1,
                                 write_keys={"wk": "web"}, email_secret=secret)
    producer = producer_for(settings)
    await producer.start()
    running = await start(settings, producer)
    try:
        async with aiohttp.ClientSession() as http:
            status, _, body = await post(http, f"{running.url}/v1/identify",
                                         {"userId": EMAIL, "traits": {"email": EMAIL}},
                                         auth("wk"))
            assert (status, body["accepted"]) == (200, 1)
    finally:
        await running.stop()
        await producer.stop()


async def test_pseudonyms_survive_a_restart_on_the_embedded_default(
        broker: EmbeddedBroker, unique_name: str, tmp_path: Path) -> None:
    """Two starts of the collector as `attribution run` makes it (embedded broker, no
    configured secret) on the same warehouse: one pseudonym."""
    topic = f"{unique_name}.events"
    await create_topics(broker.bootstrap, [TopicSpec(topic, 1)])
    for _start in range(2):
        secret = resolved({}, embedded=True, warehouse=tmp_path)
        await identify_through_a_collector(broker.bootstrap, topic, secret)
    events = [e for _p, events in await produced(broker.bootstrap, topic, 1) for e in events]
    expected = hash_email(EMAIL, secret_path(tmp_path).read_text().strip())
    assert [e["userId"] for e in events] == [expected, expected]
    assert [e["traits"]["email"] for e in events] == [expected, expected]


# --- two `attribution collector` processes, configured from the environment ------------------


def collector_process(bootstrap: str, config: Path, env: dict[str, str]
                      ) -> tuple[subprocess.Popen[str], queue.Queue[str]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "collector", "--broker", bootstrap,
         "--config", str(config), "--port", "0", "--write-key", "wk-replica"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **env}, start_new_session=True,
    )
    assert process.stdout is not None
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=read_lines, args=(process.stdout, lines), daemon=True).start()
    return process, lines


def url_of(process: subprocess.Popen[str], lines: queue.Queue[str]) -> str:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    seen: list[str] = []
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.5)
        except queue.Empty:
            assert process.poll() is None, "\n".join(seen)
            continue
        seen.append(line)
        if line.startswith("collector listening on "):
            return line.split()[-1]
    raise AssertionError("collector did not start:\n" + "\n".join(seen))


def stop(process: subprocess.Popen[str]) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


async def test_two_collector_processes_give_one_pseudonym_and_none_starts_without_a_secret(
        broker: EmbeddedBroker, unique_name: str, tmp_path: Path) -> None:
    config = tmp_path / "collector.toml"
    config.write_text(f'[stream]\ntopic_prefix = "{unique_name}"\npartitions = 1\n'
                      f'[collector]\nemail_secret_env = "{ENV}"\n')
    # No secret in the environment: refused with what to set, before serving anything.
    process, lines = collector_process(broker.bootstrap, config, {})
    assert await asyncio.to_thread(process.wait, 60) == 2
    output = "".join(iter_lines(lines))
    assert f"${ENV}" in output and "not set" in output

    env = {ENV: "replica-shared-email-secret-0123"}
    replicas = [collector_process(broker.bootstrap, config, env) for _ in range(2)]
    try:
        urls = [await asyncio.to_thread(url_of, *replica) for replica in replicas]
        async with aiohttp.ClientSession() as http:
            for url in urls:
                status, _, _ = await post(http, f"{url}/v1/identify", {"userId": EMAIL},
                                          auth("wk-replica"))
                assert status == 200
    finally:
        for process, _lines in replicas:
            stop(process)
    events = [e for _p, events in await produced(broker.bootstrap,
                                                 f"{unique_name}.events", 1) for e in events]
    expected = hash_email(EMAIL, env[ENV])
    assert [e["userId"] for e in events] == [expected, expected]


def iter_lines(lines: queue.Queue[str]) -> list[str]:
    out = []
    while True:
        try:
            out.append(lines.get(timeout=2))
        except queue.Empty:
            return out
