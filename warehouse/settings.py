"""The ``[warehouse]`` config section: where the warehouse is and how to reach object storage.

    [warehouse]
    path = "s3://attribution/warehouse"  # or a directory; --warehouse, $ATTRIBUTION_WAREHOUSE win
    endpoint_url = "http://minio:9000"    # S3-compatible stores; default: botocore's resolution
    region = "us-east-1"
    profile = "analytics"                 # a profile of ~/.aws/config
    addressing_style = "path"             # path | virtual | auto
    lock_lease = "60s"                    # the cross-host maintenance lock (warehouse.lock)

Credentials are never read from here: they come from the environment, the AWS shared files
or an instance role, as with any AWS tool.
"""

from __future__ import annotations

import tomllib
from datetime import timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from attribution.policy import ConfigError, Duration

DEFAULT_PATH = "warehouse"


class WarehouseSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str = DEFAULT_PATH
    endpoint_url: str | None = None
    region: str | None = None
    profile: str | None = None
    addressing_style: Literal["path", "virtual", "auto"] | None = None
    lock_lease: Duration = Field(default=timedelta(seconds=60))


def warehouse_settings(raw: dict[str, Any]) -> WarehouseSettings:
    try:
        return WarehouseSettings.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError.from_validation("[warehouse] settings", exc, "warehouse") from None


def settings_from_text(config_text: str | None) -> WarehouseSettings:
    """The ``[warehouse]`` section of a user's config file (defaults when absent)."""
    if config_text is None:
        return WarehouseSettings()
    try:
        data = tomllib.loads(config_text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config is not valid TOML: {exc}") from None
    section = data.get("warehouse", {})
    if not isinstance(section, dict):
        raise ConfigError("[warehouse] must be a table")
    return warehouse_settings(section)


def apply(settings: WarehouseSettings) -> None:
    """Make this process reach object storage as ``settings`` say."""
    from warehouse import lock, s3

    s3.configure(s3.S3Options(endpoint_url=settings.endpoint_url, region=settings.region,
                              profile=settings.profile,
                              addressing_style=settings.addressing_style))
    lock.set_lease(settings.lock_lease.total_seconds())
