"""Stream settings: the `[stream]` section of the config file, with defaults for one machine."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from attribution.policy import ConfigError, Duration


class StreamSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    app_id: str = "attribution"
    topic_prefix: str = "attribution"
    partitions: int = Field(default=4, ge=1, le=1024)
    replication_factor: int = Field(default=1, ge=1)
    retention: Duration = timedelta(days=7)  # of the data topics; changelogs keep everything
    store: str = "memory://"  # "rocksdb://" in production (needs the rocksdict extra)
    session_timeout: Duration = timedelta(seconds=10)  # Faust joins after about half of it
    envelope_max_items: int = Field(default=1000, ge=1)
    sink_max_rows: int = Field(default=50_000, ge=1)
    sink_max_seconds: float = Field(default=1.0, gt=0)
    sink_retry_max_seconds: float = Field(default=30.0, gt=0)
    eviction_interval: Duration = timedelta(seconds=30)

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}.{name}"


def stream_settings(raw: dict[str, Any], **overrides: Any) -> StreamSettings:
    try:
        return StreamSettings.model_validate({**raw, **overrides})
    except ValidationError as exc:
        raise ConfigError.from_validation("[stream] settings", exc, "stream") from None
