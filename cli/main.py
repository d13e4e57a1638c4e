"""`attribution`: the one command that fronts the engine."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

from attribution.policy import ConfigError

app = typer.Typer(
    name="attribution",
    help="Real-time marketing attribution for B2C and B2B: collect, stitch, credit, analyse.",
    no_args_is_help=True,
    add_completion=False,
)
err = Console(stderr=True)

WarehouseOpt = Annotated[Path, typer.Option("--warehouse", "-w", help="Warehouse directory.")]
ConfigOpt = Annotated[
    Path | None, typer.Option("--config", "-c", help="TOML config; defaults ship in the package.")
]


def read_config_text(path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise typer.BadParameter(f"cannot read config {path}: {exc.strerror}") from None


@app.command()
def schema(
    as_json: Annotated[bool, typer.Option("--json", help="Print the JSON Schema.")] = True,
) -> None:
    """Print the JSON Schema of the wire format (Segment Tracking API events)."""
    from schemas.wire import wire_json_schema

    sys.stdout.write(orjson.dumps(wire_json_schema(), option=orjson.OPT_INDENT_2).decode() + "\n")


@app.command()
def replay(
    events: Annotated[
        list[Path], typer.Argument(help="JSON Lines (.jsonl, .jsonl.gz) or Parquet.")
    ],
    warehouse: WarehouseOpt = Path("warehouse"),
    config: ConfigOpt = None,
) -> None:
    """Run the attribution core over event files and land the result in the warehouse."""
    from warehouse.replay import replay as run_replay

    for path in events:
        if not path.is_file():
            raise typer.BadParameter(f"no such file: {path}")
    text = read_config_text(config)
    from warehouse.inputs import total_size

    try:
        with Progress(
            "[progress.description]{task.description}", BarColumn(), DownloadColumn(),
            TimeRemainingColumn(), console=err, disable=not err.is_terminal, transient=True,
        ) as bar:
            task = bar.add_task("replaying", total=total_size(events))
            summary, result = run_replay(events, warehouse, text,
                                         progress=lambda n: bar.advance(task, n))
    except ConfigError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    for rejected in result.rejected[:20]:
        err.print(f"[yellow]skipped {rejected.position}[/yellow]: {rejected.reason}")
    if len(result.rejected) > 20:
        err.print(f"[yellow]... and {len(result.rejected) - 20} more (see the `rejected` view)")
    err.print(
        f"read {summary.events_read} events ({summary.duplicates} duplicate messageIds, "
        f"{summary.rejected} rejected): {summary.touches} touches, {summary.conversions} "
        f"conversions, {summary.credits} credits -> {summary.warehouse}/warehouse.duckdb"
    )


@app.command()
def sql(
    query: Annotated[str, typer.Argument(help="SQL to run against the warehouse views.")],
    warehouse: WarehouseOpt = Path("warehouse"),
    fmt: Annotated[str, typer.Option("--format", "-f", help="table, csv or json")] = "table",
) -> None:
    """Run a read-only SQL query against the warehouse and print the result."""
    import duckdb

    from warehouse.query import format_result, run_query

    if fmt not in ("table", "csv", "json"):
        raise typer.BadParameter("--format must be table, csv or json")
    try:
        columns, rows = run_query(warehouse, query)
    except (duckdb.Error, FileNotFoundError) as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    sys.stdout.write(format_result(columns, rows, fmt))  # type: ignore[arg-type]


@app.command()
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
) -> None:
    """Write realistic synthetic B2C and B2B traffic as wire-format JSON Lines."""
    from traffic.generate import TrafficSpec, write_jsonl, write_spend_csv

    spec = TrafficSpec(seed=seed, b2c_visitors=visitors, b2b_accounts=accounts, days=days,
                       invalid_rate=invalid_rate)
    out.parent.mkdir(parents=True, exist_ok=True)
    if spend is not None:
        spend.parent.mkdir(parents=True, exist_ok=True)
    lines = write_jsonl(spec, out)
    err.print(f"wrote {lines} events to {out}")
    if spend is not None:
        rows = write_spend_csv(spec, spend)
        err.print(f"wrote {rows} spend rows to {spend}")


BrokerOpt = Annotated[
    str | None,
    typer.Option("--broker", "-b", help="Kafka bootstrap servers; default $KAFKA_BROKER, "
                 "else an embedded Tansu broker on 127.0.0.1."),
]


@app.command()
def worker(
    broker: BrokerOpt = None,
    warehouse: WarehouseOpt = Path("warehouse"),
    config: ConfigOpt = None,
    partitions: Annotated[int | None, typer.Option(help="Partitions of new topics.")] = None,
    session_timeout: Annotated[
        float | None, typer.Option(help="Consumer session timeout, seconds.")] = None,
    loglevel: Annotated[str, typer.Option(help="Faust log level.")] = "WARNING",
) -> None:
    """Run one stream worker against a broker (start several to scale out)."""
    from streams.broker import broker_from_env
    from streams.worker import run_worker

    bootstrap = broker_from_env(broker)
    if bootstrap is None:
        raise typer.BadParameter("give --broker or set KAFKA_BROKER (`attribution run` starts "
                                 "an embedded broker)")
    overrides: dict[str, object] = {}
    if partitions is not None:
        overrides["partitions"] = partitions
    if session_timeout is not None:
        overrides["session_timeout"] = session_timeout
    run_worker(bootstrap, warehouse, read_config_text(config), loglevel, **overrides)


def _write_stream_config(path: Path, base: Path | None, **stream: object) -> Path:
    """A config file for child workers: the user's config plus `[stream]` overrides."""
    text = read_config_text(base) or ""
    lines = [f"{key} = {orjson.dumps(value).decode()}" for key, value in stream.items()]
    if "[stream]" in text:
        raise typer.BadParameter("give stream settings either in --config or as flags")
    path.write_text(text + "\n[stream]\n" + "\n".join(lines) + "\n", encoding="utf-8")
    return path


@app.command()
def demo(
    warehouse: WarehouseOpt = Path("demo-warehouse"),
    visitors: Annotated[int, typer.Option(help="B2C visitors to generate.")] = 2000,
    accounts: Annotated[int, typer.Option(help="B2B accounts to generate.")] = 40,
    seed: Annotated[int, typer.Option(help="Random seed of the traffic.")] = 42,
    timeout: Annotated[float, typer.Option(help="Give up waiting after this many s.")] = 300,
) -> None:
    """The main job end to end on the embedded default: broker, worker, traffic, report."""
    import asyncio
    import shutil
    import time

    from streams.loader import produce_events
    from streams.runner import Workers, kafka
    from streams.settings import stream_settings
    from streams.worker import prepare, wait_until_landed
    from traffic.generate import TrafficSpec, generate_events
    from warehouse.views import create_views

    started = time.monotonic()
    shutil.rmtree(warehouse, ignore_errors=True)
    warehouse.mkdir(parents=True)
    settings = stream_settings({}, session_timeout=4, partitions=4)
    config = _write_stream_config(warehouse / "stream.toml", None, session_timeout="4s",
                                  partitions=4)
    with kafka(None) as (bootstrap, _), (warehouse / "worker.log").open("wb") as log:
        err.print(f"embedded Kafka-compatible broker (Tansu) on {bootstrap}")
        prepare(bootstrap, settings)
        workers = Workers(bootstrap, warehouse, config, log=log)
        workers.start(1)
        try:
            spec = TrafficSpec(seed=seed, b2c_visitors=visitors, b2b_accounts=accounts)
            sent = asyncio.run(produce_events(bootstrap, settings.topic("events"),
                                              settings.partitions, generate_events(spec)))
            err.print(f"produced {sent} generated events into {settings.topic('events')}")
            waited = wait_until_landed(bootstrap, settings, timeout=timeout)
            err.print(f"stream caught up and landed everything in {waited:.1f}s")
        finally:
            workers.stop()
    create_views(warehouse)
    _print_report(warehouse)
    err.print(f"demo finished in {time.monotonic() - started:.1f}s; explore it with "
              f"`attribution sql --warehouse {warehouse} \"select * from channel_performance\"`")


REPORT_QUERIES = {
    "B2C (person journeys, 7-day click / 1-day view): credited revenue by channel": """
        PIVOT (SELECT channel, model, credited_value FROM channel_performance
               WHERE policy = 'b2c')
        ON model USING round(sum(credited_value), 0) GROUP BY channel ORDER BY channel""",
    "B2B (account journeys, 365 days, all contacts): credited won revenue by channel": """
        PIVOT (SELECT channel, model, credited_value FROM credits
               WHERE policy = 'b2b' AND conversion_kind = 'opportunity_won')
        ON model USING round(sum(credited_value), 0) GROUP BY channel ORDER BY channel""",
    "Conversions, touches and credit versions landed": """
        SELECT policy, count(DISTINCT conversion_id) AS conversions,
               count(DISTINCT touch_event_id) AS credited_touches,
               max(version) AS highest_version
        FROM credits GROUP BY policy ORDER BY policy""",
}


def _print_report(warehouse: Path) -> None:
    from rich.table import Table

    from warehouse.query import run_query

    out = Console()
    for title, query in REPORT_QUERIES.items():
        columns, rows = run_query(warehouse, query)
        table = Table(title=title, title_justify="left")
        for column in columns:
            table.add_column(column, justify="left" if column in ("channel", "policy")
                             else "right")
        for row in rows:
            table.add_row(*("" if v is None else f"{v:,.0f}" if isinstance(v, float) else str(v)
                            for v in row))
        out.print(table)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
