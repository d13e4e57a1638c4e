"""The compose stack keeps its warehouse on MinIO, with the workers on it and no shared
volume (checked as files: no Docker engine runs here)."""

from __future__ import annotations

from typing import Any

from tests.test_deploy import compose
from warehouse.storage import s3_parts

WORKERS = ("worker-1", "worker-2")  # each with its own state volume (tests/test_deploy.py)


def test_workers_land_into_minio_and_share_no_volume() -> None:
    services: dict[str, Any] = compose()["services"]
    for name in WORKERS:
        _lands_into_minio(services[name])


def _lands_into_minio(worker: dict[str, Any]) -> None:
    env = worker["environment"]
    assert s3_parts(env["ATTRIBUTION_WAREHOUSE"]) == ("attribution", "warehouse")
    assert env["AWS_ENDPOINT_URL"] == "http://minio:9000"
    assert "--warehouse" not in worker["command"]  # the environment names it
    named = [v for v in worker.get("volumes", []) if not v.startswith(("./", "/"))]
    assert not [v for v in named if "warehouse" in v], named
    assert "warehouse" not in compose().get("volumes", {})
    assert worker["depends_on"]["warehouse-bucket"]["condition"] == (
        "service_completed_successfully")


def test_minio_serves_the_bucket_the_workers_use() -> None:
    services: dict[str, Any] = compose()["services"]
    minio = services["minio"]
    assert minio["image"].startswith("minio/minio:RELEASE.")
    assert minio["command"][:2] == ["server", "/data"]
    user = minio["environment"]["MINIO_ROOT_USER"]
    secret = minio["environment"]["MINIO_ROOT_PASSWORD"]
    for name in WORKERS:
        worker_env = services[name]["environment"]
        assert (worker_env["AWS_ACCESS_KEY_ID"], worker_env["AWS_SECRET_ACCESS_KEY"]) == (
            user, secret)
    bucket = services["warehouse-bucket"]
    script = " ".join(bucket["command"])
    assert f"mc alias set warehouse http://minio:9000 {user} {secret}" in script
    assert "mc mb --ignore-existing warehouse/attribution" in script
    assert bucket["depends_on"]["minio"]["condition"] == "service_healthy"
