"""Options and helpers shared by the command modules."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from streams.logs import LogFormat, resolve_format

err = Console(stderr=True)

WarehouseOpt = Annotated[Path, typer.Option("--warehouse", "-w", help="Warehouse directory.")]
ConfigOpt = Annotated[
    Path | None, typer.Option("--config", "-c", help="TOML config; defaults ship in the package.")
]
BrokerOpt = Annotated[
    str | None,
    typer.Option("--broker", "-b", help="Kafka bootstrap servers; default $KAFKA_BROKER, "
                 "else an embedded Tansu broker on 127.0.0.1."),
]

LogFormatOpt = Annotated[
    str | None,
    typer.Option("--log-format", help="Log lines as 'json' (one object per line) or 'human'; "
                 "default $ATTRIBUTION_LOG_FORMAT, else json."),
]


def log_format_of(flag: str | None) -> LogFormat:
    try:
        return resolve_format(flag)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def read_config_text(path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise typer.BadParameter(f"cannot read config {path}: {exc.strerror}") from None
