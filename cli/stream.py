"""Stream commands: workers, the embedded demo."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.console import Console

from cli.options import (
    BrokerOpt,
    ConfigOpt,
    LogFormatOpt,
    WarehouseOpt,
    err,
    log_format_of,
    read_config_text,
)


def worker(
    broker: BrokerOpt = None,
    warehouse: WarehouseOpt = Path("warehouse"),
    config: ConfigOpt = None,
    partitions: Annotated[int | None, typer.Option(help="Partitions of new topics.")] = None,
    session_timeout: Annotated[
        float | None, typer.Option(help="Consumer session timeout, seconds.")] = None,
    loglevel: Annotated[str, typer.Option(help="Faust log level.")] = "WARNING",
    log_format: LogFormatOpt = None,
    ops_port: Annotated[int | None, typer.Option(
        min=0, max=65535, help="Port of /metrics, /healthz, /readyz (0: any free port); "
        "default [stream] ops_port.")] = None,
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
    if ops_port is not None:
        overrides["ops_port"] = ops_port
    run_worker(bootstrap, warehouse, read_config_text(config), loglevel,
               log_format_of(log_format), **overrides)


def _write_stream_config(path: Path, base: Path | None, **stream: object) -> Path:
    """A config file for child workers: the user's config plus `[stream]` overrides."""
    text = read_config_text(base) or ""
    lines = [f"{key} = {orjson.dumps(value).decode()}" for key, value in stream.items()]
    if "[stream]" in text:
        raise typer.BadParameter("give stream settings either in --config or as flags")
    path.write_text(text + "\n[stream]\n" + "\n".join(lines) + "\n", encoding="utf-8")
    return path


def demo(
    warehouse: WarehouseOpt = Path("demo-warehouse"),
    visitors: Annotated[int, typer.Option(help="B2C visitors to generate.")] = 2000,
    accounts: Annotated[int, typer.Option(help="B2B accounts to generate.")] = 40,
    seed: Annotated[int, typer.Option(help="Random seed of the traffic.")] = 42,
    timeout: Annotated[float, typer.Option(help="Give up waiting after this many s.")] = 300,
    workers: Annotated[int | None, typer.Option(
        min=1, help="Stream worker processes (default: one per core).")] = None,
) -> None:
    """The main job end to end on the embedded default: broker, workers, traffic, report."""
    import asyncio
    import shutil
    import time

    from cli.analysts import print_headline_kpis
    from streams.loader import produce_events
    from streams.runner import Workers, default_workers, kafka
    from streams.settings import stream_settings
    from streams.worker import prepare, wait_until_landed
    from traffic.generate import TrafficSpec, generate_events
    from traffic.spend import write_spend
    from warehouse.report import write_report
    from warehouse.spend import import_spend
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
        pool = Workers(bootstrap, warehouse, config, log=log)
        pool.start(workers or default_workers())
        try:
            spec = TrafficSpec(seed=seed, b2c_visitors=visitors, b2b_accounts=accounts)
            sent = asyncio.run(produce_events(bootstrap, settings.topic("events"),
                                              settings.partitions, generate_events(spec)))
            err.print(f"produced {sent} generated events into {settings.topic('events')}")
            waited = wait_until_landed(bootstrap, settings, timeout=timeout)
            err.print(f"stream caught up and landed everything in {waited:.1f}s")
        finally:
            pool.stop()
    spend = warehouse / "spend.csv"  # the ad cost of the generated campaigns, for ROAS
    write_spend(spec, spend)
    import_spend(warehouse, spend)
    create_views(warehouse)
    _print_report(warehouse)
    print_headline_kpis(warehouse)
    report = write_report(warehouse, warehouse / "report.html")
    err.print(f"wrote the HTML report {report}")
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

    out = Console(width=max(Console().width, 110))  # the tables are wider than 80 columns
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


COMMANDS = [worker, demo]
