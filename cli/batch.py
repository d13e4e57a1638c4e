"""Batch commands: wire schema, replay into the warehouse, SQL, synthetic traffic."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

from attribution.policy import ConfigError
from cli.options import ConfigOpt, WarehouseOpt, err, read_config_text


def schema(
    as_json: Annotated[bool, typer.Option("--json", help="Print the JSON Schema.")] = True,
) -> None:
    """Print the JSON Schema of the wire format (Segment Tracking API events)."""
    from schemas.wire import wire_json_schema

    sys.stdout.write(orjson.dumps(wire_json_schema(), option=orjson.OPT_INDENT_2).decode() + "\n")


def replay(
    events: Annotated[
        list[Path], typer.Argument(help="JSON Lines (.jsonl, .jsonl.gz) or Parquet.")
    ],
    warehouse: WarehouseOpt = Path("warehouse"),
    config: ConfigOpt = None,
    workers: Annotated[int | None, typer.Option(
        min=1, help="Worker processes (default: one per core; small inputs run in one).")] = None,
) -> None:
    """Run the attribution core over event files and land the result in the warehouse."""
    from warehouse.replay import replay as run_replay

    for path in events:
        if not path.is_file():
            raise typer.BadParameter(f"no such file: {path}")
    text = read_config_text(config)
    from streams.gc_tuning import tune_gc
    from warehouse.inputs import total_size

    tune_gc()
    try:
        with Progress(
            "[progress.description]{task.description}", BarColumn(), DownloadColumn(),
            TimeRemainingColumn(), console=err, disable=not err.is_terminal, transient=True,
        ) as bar:
            task = bar.add_task("replaying", total=total_size(events))
            summary, result = run_replay(events, warehouse, text,
                                         progress=lambda n: bar.advance(task, n),
                                         workers=workers)
    except ConfigError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    for rejected in result.rejected[:20]:
        err.print(f"[yellow]skipped {rejected.position}[/yellow]: {rejected.reason}")
    if summary.rejected > 20:
        err.print(f"[yellow]... and {summary.rejected - 20} more (see the `rejected` view)")
    err.print(
        f"read {summary.events_read} events ({summary.duplicates} duplicate messageIds, "
        f"{summary.rejected} rejected): {summary.touches} touches, {summary.conversions} "
        f"conversions, {summary.credits} credits -> {summary.warehouse}/warehouse.duckdb"
    )


def sql(
    query: Annotated[str, typer.Argument(help="SQL to run against the warehouse views.")],
    warehouse: WarehouseOpt = Path("warehouse"),
    fmt: Annotated[str, typer.Option("--format", "-f", help="table, csv or json")] = "table",
    config: ConfigOpt = None,
) -> None:
    """Run a read-only SQL query against the warehouse (a directory or s3://bucket/prefix)
    and print the result."""
    import duckdb

    from warehouse.query import format_result, run_query

    if fmt not in ("table", "csv", "json"):
        raise typer.BadParameter("--format must be table, csv or json")
    try:
        columns, rows = run_query(warehouse, query)
    except (duckdb.Error, FileNotFoundError) as exc:
        err.print(f"[red]{exc}[/red]", soft_wrap=True)  # unwrapped: commands stay copyable
        raise typer.Exit(1) from None
    sys.stdout.write(format_result(columns, rows, fmt))  # type: ignore[arg-type]


def generate(
    out: Annotated[Path, typer.Option("--out", "-o", help="JSON Lines file to write.")] = Path(
        "events.jsonl"
    ),
    seed: Annotated[int, typer.Option(help="Random seed; same seed, same bytes.")] = 42,
    visitors: Annotated[int, typer.Option(help="B2C visitors.")] = 2000,
    accounts: Annotated[int, typer.Option(help="B2B accounts.")] = 40,
    days: Annotated[int, typer.Option(help="Days of traffic.")] = 60,
    spend: Annotated[Path | None, typer.Option(help="Also write spend rows to this CSV.")] = None,
    invalid_rate: Annotated[float, typer.Option(help="Share of deliberately invalid lines.")] = 0.0,
    touch_heavy: Annotated[bool, typer.Option(
        help="Every B2C page a campaign landing (a touch); about 6% of visitors buy.")] = False,
) -> None:
    """Write realistic synthetic B2C and B2B traffic as wire-format JSON Lines."""
    from traffic.generate import TrafficSpec, write_jsonl, write_spend_csv

    spec = TrafficSpec(seed=seed, b2c_visitors=visitors, b2b_accounts=accounts, days=days,
                       invalid_rate=invalid_rate, touch_heavy=touch_heavy)
    out.parent.mkdir(parents=True, exist_ok=True)
    if spend is not None:
        spend.parent.mkdir(parents=True, exist_ok=True)
    lines = write_jsonl(spec, out)
    err.print(f"wrote {lines} events to {out}")
    if spend is not None:
        rows = write_spend_csv(spec, spend)
        err.print(f"wrote {rows} spend rows to {spend}")




COMMANDS = [schema, replay, sql, generate]
