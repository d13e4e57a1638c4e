"""Warehouse maintenance commands: compaction and migration to the current layout."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.options import ConfigOpt, WarehouseOpt, err


def _require(warehouse: Path) -> None:
    from warehouse.layout import exists
    from warehouse.storage import display

    if not exists(warehouse):
        err.print(f"[red]no warehouse at {display(warehouse)}[/red]", soft_wrap=True)
        raise typer.Exit(1)


def compact(
    warehouse: WarehouseOpt = Path("warehouse"),
    table: Annotated[list[str] | None, typer.Option(
        "--table", "-t", help="Table to compact (repeatable); default: every table.")] = None,
    min_files: Annotated[int, typer.Option(
        min=2, help="Leave a day's partition alone with fewer small files than this.")] = 4,
    config: ConfigOpt = None,  # its [warehouse] section is applied by the option itself
) -> None:
    """Merge the many small Parquet files the stream lands into a few large ones per day,
    safely beside running workers and analysts (views dedupe; nothing is reordered or
    dropped). Run it from cron, e.g. hourly; on object storage from any one host at a
    time or several (a lease object in the bucket lets one run at a time)."""
    import duckdb

    from warehouse.compact import compact as run_compaction
    from warehouse.layout import TABLES
    from warehouse.views import create_views

    unknown = sorted(set(table or ()) - set(TABLES))
    if unknown:
        raise typer.BadParameter(f"unknown table(s) {', '.join(unknown)}; known: "
                                 f"{', '.join(TABLES)}")
    _require(warehouse)
    report = run_compaction(warehouse, table, min_files=min_files)
    for name, merged in report.files_merged.items():
        err.print(f"{name}: {merged} files -> {report.files_written[name]} "
                  f"({report.rows[name]:,} rows)", soft_wrap=True)
    if not report.changed:
        err.print("nothing to compact")
    for path, reason in report.unreadable.items():
        err.print(f"[red]cannot read {path}: {reason}; left as it is[/red]", soft_wrap=True)
    try:
        create_views(warehouse)
    except (RuntimeError, duckdb.Error) as exc:  # e.g. the views cannot read that file either
        err.print(f"[red]views not rebuilt: {exc}[/red]", soft_wrap=True)
        raise typer.Exit(1) from None
    if report.unreadable:
        raise typer.Exit(1)


def migrate(
    warehouse: WarehouseOpt = Path("warehouse"),
    config: ConfigOpt = None,  # its [warehouse] section is applied by the option itself
) -> None:
    """Bring a warehouse written by an earlier version to the current layout: split its
    files into date partitions, bring old schemas up to date and rebuild warehouse.duckdb
    (whose views then work wherever the warehouse is moved). Safe to interrupt and repeat;
    stop the workers of the earlier version first."""
    import duckdb

    from warehouse.migrate import migrate as run_migration
    from warehouse.storage import display

    _require(warehouse)
    try:
        report = run_migration(warehouse)
    except (RuntimeError, duckdb.Error, OSError, ValueError) as exc:
        err.print(f"[red]migration stopped: {exc}; run it again once that is fixed[/red]",
                  soft_wrap=True)
        raise typer.Exit(1) from None
    for name, count in report.files_split.items():
        err.print(f"{name}: {count} files split into date partitions", soft_wrap=True)
    for name, count in report.files_conformed.items():
        err.print(f"{name}: {count} files brought to the current schema", soft_wrap=True)
    err.print(f"{display(warehouse)} is current; views rebuilt", soft_wrap=True)


COMMANDS = [compact, migrate]
