"""The monitoring stack files (Prometheus, Grafana) checked without Docker: every metric a
dashboard panel or scrape relies on exists in the code's registries, ports line up."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import orjson
import yaml

from attribution.defaults import load_config
from streams.collector.settings import CollectorSettings
from streams.collector.stats import CollectorStats
from streams.metrics import WorkerMetrics
from streams.settings import stream_settings

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
METRIC = re.compile(r"\b((?:attribution|faust|process)_[a-z0-9_]+)")


def load_yaml(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(path.read_text())
    return loaded


def exposed_names() -> set[str]:
    """Every sample name the worker's and the collector's /metrics can show."""
    names: set[str] = set()
    for registry in (WorkerMetrics().registry, CollectorStats().registry):
        for family in registry.collect():
            suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_count", "_sum"],
                        "gauge": [""], "summary": ["_count", "_sum", ""]}.get(family.type, [""])
            names.update(family.name + suffix for suffix in suffixes)
    return names


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = orjson.loads(
        (DEPLOY / "grafana" / "dashboards" / "attribution.json").read_bytes())
    return loaded


def test_every_dashboard_query_uses_metrics_the_code_exposes() -> None:
    names = exposed_names()
    panels = [p for p in dashboard()["panels"] if p["type"] != "row"]
    used: set[str] = set()
    for panel in panels:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            found = METRIC.findall(target["expr"])
            assert found, target["expr"]
            used.update(found)
    assert used - names == set()
    # The list: each of these is on the dashboard.
    for wanted in ("attribution_envelopes_in_total", "attribution_items_in_total",
                   "attribution_consumer_lag", "attribution_conversions_credited_total",
                   "attribution_rows_landed_total", "attribution_parquet_files_written_total",
                   "attribution_sink_flush_seconds_bucket", "attribution_dead_letters_total",
                   "attribution_collector_requests_total",
                   "attribution_collector_request_seconds_bucket", "attribution_state_keys",
                   "attribution_evictions_total", "process_resident_memory_bytes",
                   "attribution_sink_failing"):
        assert wanted in used, wanted


def test_dashboard_structure_is_what_grafana_loads() -> None:
    board = dashboard()
    assert board["uid"] and board["title"] and isinstance(board["schemaVersion"], int)
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    datasource = load_yaml(DEPLOY / "grafana" / "provisioning" / "datasources" /
                           "prometheus.yml")["datasources"][0]
    for panel in board["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24 and grid["h"] > 0
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == datasource["uid"]
            assert {t["refId"] for t in panel["targets"]} == {
                chr(65 + i) for i in range(len(panel["targets"]))}


def test_grafana_provisioning_points_at_the_mounted_dashboards() -> None:
    grafana = load_yaml(ROOT / "docker-compose.yml")["services"]["grafana"]
    mounts = {v.split(":")[0]: v.split(":")[1] for v in grafana["volumes"]}
    assert mounts["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"
    provider = load_yaml(DEPLOY / "grafana" / "provisioning" / "dashboards" /
                         "attribution.yml")["providers"][0]
    assert mounts["./deploy/grafana/dashboards"] == provider["options"]["path"]
    datasource = load_yaml(DEPLOY / "grafana" / "provisioning" / "datasources" /
                           "prometheus.yml")["datasources"][0]
    assert datasource["url"] == "http://prometheus:9090"


def test_prometheus_scrapes_every_worker_and_the_collector_on_their_ports() -> None:
    services = load_yaml(ROOT / "docker-compose.yml")["services"]
    config = load_config((DEPLOY / "config.toml").read_text())
    stream = stream_settings(config.stream)
    collector = CollectorSettings.from_section(config.collector)
    assert stream.ops_host == "0.0.0.0" and stream.ops_port > 0
    workers = [service for name, service in services.items() if name.startswith("worker")]
    assert workers
    for worker in workers:
        assert str(stream.ops_port) in worker["expose"]
        assert f":{stream.ops_port}/healthz" in " ".join(worker["healthcheck"]["test"])
        # DNS service discovery below resolves the alias every worker container carries.
        assert "worker" in worker["networks"]["default"]["aliases"]
    mount = "./deploy/prometheus.yml:/etc/prometheus/prometheus.yml:ro"
    assert mount in services["prometheus"]["volumes"]
    jobs = {job["job_name"]: job for job in
            load_yaml(DEPLOY / "prometheus.yml")["scrape_configs"]}
    worker_sd = jobs["worker"]["dns_sd_configs"][0]
    assert worker_sd["names"] == ["worker"] and worker_sd["port"] == stream.ops_port
    assert jobs["collector"]["static_configs"][0]["targets"] == [f"collector:{collector.port}"]
    assert all(job.get("metrics_path", "/metrics") == "/metrics" for job in jobs.values())
