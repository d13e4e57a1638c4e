"""The production stack files, checked without a Docker engine (none runs here)."""

from __future__ import annotations

import subprocess
import sys
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


def kafka_brokers() -> dict[str, dict[str, Any]]:
    return {name: service for name, service in compose()["services"].items()
            if name.startswith("kafka")}


def workers() -> dict[str, dict[str, Any]]:
    return {name: service for name, service in compose()["services"].items()
            if name.startswith("worker")}


def stream_config() -> Any:
    return stream_settings(load_config((ROOT / "deploy" / "config.toml").read_text()).stream)


def test_three_kraft_brokers_from_the_official_image_form_one_quorum() -> None:
    brokers = kafka_brokers()
    assert len(brokers) == 3
    ids = {str(service["environment"]["KAFKA_NODE_ID"]) for service in brokers.values()}
    voters = {f"{service['environment']['KAFKA_NODE_ID']}@{name}:9093"
              for name, service in brokers.items()}
    for name, service in brokers.items():
        env = service["environment"]
        assert service["image"].startswith("apache/kafka:")
        assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
        assert set(env["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(",")) == voters
        assert env["KAFKA_ADVERTISED_LISTENERS"] == f"PLAINTEXT://{name}:9092"
        assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
        assert any(v.endswith(":/var/lib/kafka/data") for v in service["volumes"])
    assert len(ids) == 3
    assert len({service["environment"]["CLUSTER_ID"] for service in brokers.values()}) == 1
    data = [v.split(":")[0] for service in brokers.values() for v in service["volumes"]]
    assert len(set(data)) == 3  # a log directory per broker


def test_replication_3_and_min_isr_2_everywhere() -> None:
    """What the stack promises: one broker can be lost without losing an acknowledged
    event. The project's topics get it from [stream], the rest from the brokers' defaults."""
    settings = stream_config()
    assert (settings.replication_factor, settings.min_insync_replicas) == (3, 2)
    for service in kafka_brokers().values():
        env = service["environment"]
        assert int(env["KAFKA_DEFAULT_REPLICATION_FACTOR"]) == settings.replication_factor
        assert int(env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"]) == 3
        assert int(env["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"]) == 3
        assert int(env["KAFKA_MIN_INSYNC_REPLICAS"]) == settings.min_insync_replicas
        assert int(env["KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"]) == 2


def test_worker_and_collector_are_built_here_and_run_real_commands() -> None:
    services = compose()["services"]
    commands = {c.name or getattr(c.callback, "__name__", "") for c in app.registered_commands}
    bootstrap = ",".join(f"{name}:9092" for name in sorted(kafka_brokers()))
    for name in ("worker-1", "worker-2", "collector"):
        service = services[name]
        assert service["build"] == "."
        assert service["command"][0] in commands
        assert service["command"][service["command"].index("--broker") + 1] == bootstrap
        brokers = {dep: cond["condition"] for dep, cond in service["depends_on"].items()
                   if dep in kafka_brokers()}
        assert brokers == dict.fromkeys(kafka_brokers(), "service_healthy")
    assert len(workers()) >= 2


def test_each_worker_keeps_its_own_state_volume_with_a_standby() -> None:
    settings = stream_config()
    assert settings.standby_replicas == 1
    state_volumes = []
    for service in workers().values():
        mounts = dict(v.split(":")[:2] for v in service["volumes"])
        by_target = {target: source for source, target in mounts.items()}
        assert by_target[settings.state_dir] in compose()["volumes"]  # named: kept
        state_volumes.append(by_target[settings.state_dir])
        assert "worker" in service["networks"]["default"]["aliases"]  # found by Prometheus
    assert len(set(state_volumes)) == len(state_volumes)  # RocksDB directories never shared


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


def dockerfile_steps() -> list[str]:
    """Instructions of the Dockerfile, continuation lines joined, comments dropped."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    return [line.strip() for line in text.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def test_dockerfile_copies_every_package_and_installs_rocksdb() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "packages"]
    for top in {p.split(".")[0] for p in packages}:
        assert f"COPY {top} ./{top}" in dockerfile, top
    assert ".[rocksdb]" in dockerfile
    assert 'ENTRYPOINT ["attribution"]' in dockerfile


def test_dockerfile_installs_dependencies_before_copying_the_source() -> None:
    """Docker reuses a layer while its inputs are unchanged: everything up to the
    dependency install may only read pyproject.toml and the script that lists them."""
    steps = dockerfile_steps()
    install = next(i for i, step in enumerate(steps) if "pip install -r" in step)
    copied_before = [step.split()[1] for step in steps[:install] if step.startswith("COPY")]
    assert copied_before == ["pyproject.toml", "deploy/requirements.py"]
    project_install = next(step for step in steps if "pip install" in step and "'." in step)
    assert "--no-deps" in project_install
    assert steps.index(project_install) > max(
        i for i, step in enumerate(steps) if step.startswith("COPY"))


def test_requirements_script_lists_every_runtime_dependency() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    done = subprocess.run([sys.executable, str(ROOT / "deploy" / "requirements.py"),
                           str(ROOT / "pyproject.toml")], capture_output=True, text=True,
                          check=True)
    assert done.stdout.split() == [*project["dependencies"],
                                   *project["optional-dependencies"]["rocksdb"]]
