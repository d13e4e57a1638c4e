"""The production stack files, checked without a Docker engine (none runs here)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import yaml

from attribution.defaults import load_config
from cli.main import app
from streams.collector.settings import CollectorSettings
from streams.settings import stream_settings

ROOT = Path(__file__).resolve().parent.parent


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


def test_kafka_runs_in_kraft_mode_from_the_official_image() -> None:
    kafka = compose()["services"]["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    env = kafka["environment"]
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"].startswith(f"{env['KAFKA_NODE_ID']}@kafka:")
    assert "kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"]


def test_worker_and_collector_are_built_here_and_run_real_commands() -> None:
    services = compose()["services"]
    commands = {c.name or getattr(c.callback, "__name__", "") for c in app.registered_commands}
    for name in ("worker", "collector"):
        service = services[name]
        assert service["build"] == "."
        assert service["command"][0] in commands
        assert "kafka:9092" in service["command"]
        assert service["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert services["worker"]["deploy"]["replicas"] >= 2


def test_deploy_config_is_valid_for_every_stage() -> None:
    text = (ROOT / "deploy" / "config.toml").read_text()
    config = load_config(text)
    settings = stream_settings(config.stream)
    assert settings.store == "rocksdb://"
    collector = CollectorSettings.from_section(config.collector)
    assert collector.write_keys
    services = compose()["services"].values()
    mounted = {v.split(":")[1] for s in services for v in s.get("volumes", [])}
    assert "/etc/attribution/config.toml" in mounted


def test_dockerfile_copies_every_package_and_installs_rocksdb() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "packages"]
    for top in {p.split(".")[0] for p in packages}:
        assert f"COPY {top} ./{top}" in dockerfile, top
    assert ".[rocksdb]" in dockerfile
    assert 'ENTRYPOINT ["attribution"]' in dockerfile
