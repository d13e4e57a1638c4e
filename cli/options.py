"""Options and helpers shared by the command modules."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from streams.logs import LogFormat, resolve_format

if TYPE_CHECKING:
    from warehouse.settings import WarehouseSettings

err = Console(stderr=True)

WAREHOUSE_ENV = "ATTRIBUTION_WAREHOUSE"


def _apply_config(ctx: typer.Context, param: typer.CallbackParam,
                  value: Path | None) -> Path | None:
    """Reach object storage as the config's ``[warehouse]`` section says (endpoint, region,
    profile, lock lease), for every command that takes ``--config``."""
    if value is not None:
        from warehouse.settings import apply

        apply(_warehouse_settings(value))
    return value


def _resolve_warehouse(ctx: typer.Context, param: typer.CallbackParam, value: Path) -> Path:
    """``--warehouse``, else ``$ATTRIBUTION_WAREHOUSE``, else ``[warehouse] path`` of the
    ``--config`` file, else the command's default. An ``s3://bucket/prefix`` URL arrives as
    a Path (``s3:/bucket/prefix``); ``warehouse.storage`` reads it back as the URL."""
    source = ctx.get_parameter_source(param.name or "warehouse")
    config = ctx.params.get("config")  # set when --config came first on the command line
    # (typer vendors click, so compare by name)
    if source is not None and source.name == "DEFAULT" and isinstance(config, Path):
        settings = _warehouse_settings(config)
        if "path" in settings.model_fields_set:
            return Path(settings.path)
    return value


def _warehouse_settings(config: Path) -> WarehouseSettings:
    from attribution.policy import ConfigError
    from warehouse.settings import settings_from_text

    try:
        return settings_from_text(read_config_text(config))
    except ConfigError as exc:
        raise typer.BadParameter(str(exc)) from None


WarehouseOpt = Annotated[Path, typer.Option(
    "--warehouse", "-w", envvar=WAREHOUSE_ENV, callback=_resolve_warehouse,
    help="Warehouse: a directory or s3://bucket/prefix; default $ATTRIBUTION_WAREHOUSE, "
         "else [warehouse] path of --config.")]
ConfigOpt = Annotated[
    Path | None, typer.Option("--config", "-c", callback=_apply_config,
                              help="TOML config; defaults ship in the package.")
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
