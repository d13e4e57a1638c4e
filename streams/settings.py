"""Stream settings: the `[stream]` section of the config file, with defaults for one machine."""

from __future__ import annotations

import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from attribution.policy import ConfigError, Duration
from streams.envelope import MAX_MESSAGE_BYTES


class StreamSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    app_id: str = "attribution"
    topic_prefix: str = "attribution"
    partitions: int = Field(default=4, ge=1, le=1024)
    # Of every topic the pipeline creates (data topics and Faust's changelogs).
    replication_factor: int = Field(default=1, ge=1)
    # A write acknowledged by acks=all is on at least this many replicas; None: the
    # broker's default (Kafka: 1). Set on the data topics; changelogs take the broker's.
    min_insync_replicas: int | None = Field(default=None, ge=1)
    # Warm copies of each table partition on other workers (Faust), for fast failover.
    standby_replicas: int = Field(default=0, ge=0)
    retention: Duration = timedelta(days=7)  # of the data topics; changelogs keep everything
    store: str = "memory://"  # "rocksdb://" in production (needs the rocksdict extra)
    # Faust's data directory (RocksDB files): "" = <temp dir>/attribution-state/<app_id>,
    # never the working directory. Local state is a cache, rebuilt from the changelogs.
    state_dir: str = ""
    session_timeout: Duration = timedelta(seconds=10)  # Faust joins after about half of it
    envelope_max_items: int = Field(default=1000, ge=1)
    # A stage takes up to this many messages arrived within this many seconds at once.
    stage_batch_messages: int = Field(default=50, ge=1)
    stage_batch_seconds: float = Field(default=0.05, gt=0)
    # Messages the stages send are split to stay under this (Kafka's default limit is 1 MB).
    max_message_bytes: int = Field(default=MAX_MESSAGE_BYTES, ge=1024)
    sink_max_rows: int = Field(default=50_000, ge=1)
    sink_max_seconds: float = Field(default=1.0, gt=0)
    sink_retry_max_seconds: float = Field(default=30.0, gt=0)
    eviction_interval: Duration = timedelta(seconds=30)
    # Worker HTTP endpoint: /metrics, /healthz, /readyz (port 0: any free port, logged).
    ops_host: str = "127.0.0.1"
    ops_port: int = Field(default=0, ge=0, le=65535)
    # `attribution status` exits non-zero past these (records not yet committed; records
    # on the dead-letter topic, None: never).
    alert_max_lag: int = Field(default=10_000, ge=0)
    alert_max_dead_letters: int | None = Field(default=None, ge=0)
    # A worker whose assigned partitions have lag while its committed offsets have not
    # moved for this long is stalled (streams.watchdog); 0 disables the watchdog.
    stall_seconds: float = Field(default=120.0, ge=0)

    @model_validator(mode="after")
    def _isr_within_replication(self) -> StreamSettings:
        if self.min_insync_replicas is not None and (
                self.min_insync_replicas > self.replication_factor):
            raise ValueError(f"min_insync_replicas ({self.min_insync_replicas}) must not exceed "
                             f"replication_factor ({self.replication_factor}): no write "
                             "could ever be acknowledged")
        return self

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}.{name}"

    def state_path(self) -> Path:
        if self.state_dir:
            return Path(self.state_dir).expanduser()
        return Path(tempfile.gettempdir()) / "attribution-state" / self.app_id


def stream_settings(raw: dict[str, Any], **overrides: Any) -> StreamSettings:
    try:
        return StreamSettings.model_validate({**raw, **overrides})
    except ValidationError as exc:
        raise ConfigError.from_validation("[stream] settings", exc, "stream") from None
