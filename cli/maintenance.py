"""Warehouse maintenance commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.options import WarehouseOpt, err


def compact(
    warehouse: WarehouseOpt = Path("warehouse"),
    table: Annotated[list[str] | None, typer.Option(
        "--table", "-t", help="Table to compact (repeatable); default: every table.")] = None,
    min_files: Annotated[int, typer.Option(
        min=2, help="Leave a table alone with fewer small files than this.")] = 4,
) -> None:
    """Merge the many small Parquet files the stream lands into a few large ones, safely
    beside running workers and analysts (views dedupe; nothing is reordered or dropped).
    Run it from cron, e.g. hourly."""
    import duckdb

    from warehouse.compact import compact as run_compaction
    from warehouse.layout import TABLES
    from warehouse.views import create_views

    unknown = sorted(set(table or ()) - set(TABLES))
    if unknown:
        raise typer.BadParameter(f"unknown table(s) {', '.join(unknown)}; known: "
                                 f"{', '.join(TABLES)}")
    if not warehouse.is_dir():
        err.print(f"[red]no warehouse at {warehouse}[/red]")
        raise typer.Exit(1)
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


COMMANDS = [compact]
