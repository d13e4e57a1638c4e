"""Log output for workers and collectors: one JSON object per line, or human-readable text.

JSON is the default for services (log shippers parse it); ``--log-format human`` or
``ATTRIBUTION_LOG_FORMAT=human`` gives plain lines for a terminal. The same dictConfig
serves ``logging.config`` directly (collector) and Faust's worker (``logging_config=``),
which would otherwise install its own coloured handler.
"""

from __future__ import annotations

import logging
import logging.config
import os
from datetime import UTC, datetime
from typing import Any, Literal

import orjson

LogFormat = Literal["json", "human"]
LOG_FORMAT_ENV = "ATTRIBUTION_LOG_FORMAT"
HUMAN_FORMAT = "[%(asctime)s] [%(process)d] [%(levelname)s] %(name)s: %(message)s"  # as Faust
# Attributes every LogRecord has; anything else was passed with extra={...} and is kept.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """One line per record: time (UTC, ISO), level, logger, message, extras, exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return orjson.dumps(entry, default=repr).decode()


def resolve_format(flag: str | None) -> LogFormat:
    """The flag, else $ATTRIBUTION_LOG_FORMAT, else json; anything unknown is an error."""
    value = (flag or os.environ.get(LOG_FORMAT_ENV) or "json").strip().lower()
    if value not in ("json", "human"):
        raise ValueError(f"log format must be 'json' or 'human', not {value!r}")
    return "json" if value == "json" else "human"


def logging_config(log_format: LogFormat, level: str | int = "INFO") -> dict[str, Any]:
    """A ``logging.config.dictConfig`` dict: one stderr handler on the root logger."""
    formatter: dict[str, Any] = (
        {"()": JsonFormatter} if log_format == "json" else {"format": HUMAN_FORMAT})
    level_name = logging.getLevelName(level) if isinstance(level, int) else level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": formatter},
        "handlers": {"default": {"class": "logging.StreamHandler", "formatter": "default",
                                 "stream": "ext://sys.stderr", "level": level_name}},
        "root": {"handlers": ["default"], "level": level_name},
    }


def setup_logging(log_format: LogFormat, level: str | int = "INFO") -> None:
    logging.config.dictConfig(logging_config(log_format, level))
