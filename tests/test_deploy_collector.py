"""The deployed collector's email secret, checked as files (no Docker engine here): the
config names an environment variable, compose passes it to the collector and refuses to
start the stack without it, and the collector resolves it (or refuses) from there."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from attribution.defaults import load_config
from attribution.policy import ConfigError
from streams.collector.secret import resolve_email_secret
from streams.collector.settings import CollectorSettings

ROOT = Path(__file__).resolve().parent.parent


def deployed() -> CollectorSettings:
    config = load_config((ROOT / "deploy" / "config.toml").read_text())
    return CollectorSettings.from_section(config.collector)


def collector_service() -> dict[str, Any]:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    service: dict[str, Any] = compose["services"]["collector"]
    return service


def test_the_deployed_secret_comes_from_the_environment_compose_requires() -> None:
    settings = deployed()
    assert settings.hash_emails and settings.email_secret is None
    name = settings.email_secret_env
    assert name is not None
    passed = str(collector_service()["environment"][name])
    # ${VAR:?message}: compose refuses to start without it instead of passing "".
    assert passed.startswith(f"${{{name}:?")


def test_the_deployed_collector_refuses_to_start_without_its_secret(
        monkeypatch: pytest.MonkeyPatch) -> None:
    settings = deployed()
    assert settings.email_secret_env is not None
    monkeypatch.delenv(settings.email_secret_env, raising=False)
    with pytest.raises(ConfigError, match="not set"):
        resolve_email_secret(settings, embedded_broker=False, warehouse=None)
    monkeypatch.setenv(settings.email_secret_env, "a" * 64)
    resolved = resolve_email_secret(settings, embedded_broker=False, warehouse=None)
    assert resolved.email_secret == "a" * 64


def test_the_deployed_slow_client_bounds_are_set() -> None:
    settings = deployed()
    assert settings.header_timeout.total_seconds() <= 30
    assert settings.body_timeout.total_seconds() <= 60
    assert settings.max_connections >= 100
