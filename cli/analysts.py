"""Analyst commands: ad spend import, headline KPIs, the HTML report.

``COMMANDS`` are plain commands; ``GROUPS`` are sub-command groups (``attribution spend
import``) that cli/main.py adds with ``app.add_typer``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from attribution.policy import ConfigError
from cli.options import ConfigOpt, WarehouseOpt, err, read_config_text

_SHOWN_BAD_ROWS = 20



def _say(text: str) -> None:
    """A message on stderr, never wrapped (paths and reasons stay greppable)."""
    err.print(text, soft_wrap=True)


spend_app = typer.Typer(name="spend", help="Ad spend: import cost, impressions and clicks.",
                        no_args_is_help=True)


@spend_app.callback()
def spend_group() -> None:
    """Ad spend: import cost, impressions and clicks per date, channel and campaign."""
    # a callback keeps `spend` a group even while it has a single command


@spend_app.command("import")
def spend_import(
    file: Annotated[Path, typer.Argument(help="CSV: date, channel, campaign, cost, currency, "
                                              "impressions, clicks (header row first).")],
    warehouse: WarehouseOpt = Path("warehouse"),
    broker: Annotated[str | None, typer.Option(
        "--broker", "-b", help="Send the rows through the stream (its landing topic on this "
                               "Kafka broker) instead of landing them directly.")] = None,
    config: ConfigOpt = None,
) -> None:
    """Import ad spend; re-importing a (date, channel, campaign) replaces its numbers.

    Bad rows are reported (line number, reason) and kept in the `rejected` view; good rows land.

    Exit code 0: every row landed; 1: some rows were rejected; 2: the file is unreadable.
    """
    from warehouse.spend import SpendFileError, land_spend, read_spend_file
    from warehouse.storage import display
    from warehouse.views import ensure_views

    if not file.is_file():
        raise typer.BadParameter(f"no such file: {file}")
    try:
        parsed = read_spend_file(file)
    except SpendFileError as exc:
        _say(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    for bad in parsed.bad[:_SHOWN_BAD_ROWS]:
        _say(f"[yellow]{file.name}, line {bad.line}[/yellow]: {bad.reason}")
    if len(parsed.bad) > _SHOWN_BAD_ROWS:
        _say(f"[yellow]... and {len(parsed.bad) - _SHOWN_BAD_ROWS} more (see the "
                  "`rejected` view)[/yellow]")
    if parsed.ignored_columns:
        _say(f"ignored column(s): {', '.join(parsed.ignored_columns)}")
    if broker:
        topic = _send_to_stream(broker, parsed, read_config_text(config))
        _say(f"sent {len(parsed.rows)} spend rows ({len(parsed.bad)} rejected) to {topic}")
    else:
        land_spend(warehouse, parsed)
        ensure_views(warehouse)
        _say(f"landed {len(parsed.rows)} spend rows ({len(parsed.bad)} rejected) in "
             f"{display(warehouse)}")
    if parsed.bad:
        raise typer.Exit(1)


def _send_to_stream(broker: str, parsed: Any, config_text: str | None) -> str:
    from attribution.defaults import load_config
    from streams.broker import broker_from_env, create_topics
    from streams.settings import stream_settings
    from streams.topics import topic_specs
    from warehouse.spend import produce_spend

    bootstrap = broker_from_env(broker)
    assert bootstrap is not None  # the flag is given
    try:
        settings = stream_settings(load_config(config_text).stream)
    except ConfigError as exc:
        _say(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    topic = settings.topic("landing")

    async def send() -> None:
        await create_topics(bootstrap, topic_specs(settings))  # no-op when the stream runs
        await produce_spend(bootstrap, topic, parsed, settings.envelope_max_items)

    asyncio.run(send())
    return topic


def report(
    warehouse: WarehouseOpt = Path("warehouse"),
    out: Annotated[Path, typer.Option("--out", "-o", help="HTML file to write.")] = Path(
        "report.html"),
    config: ConfigOpt = None,  # its [warehouse] section is applied by the option itself
) -> None:
    """Write a self-contained HTML report (plots inline; opens without a network)."""
    from warehouse.report import write_report

    try:
        path = write_report(warehouse, out)
    except FileNotFoundError as exc:
        _say(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    _say(f"wrote {path}")


def kpis(
    warehouse: WarehouseOpt = Path("warehouse"),
    config: ConfigOpt = None,  # its [warehouse] section is applied by the option itself
) -> None:
    """Print the headline KPIs of the warehouse."""
    try:
        print_headline_kpis(warehouse)
    except FileNotFoundError as exc:
        _say(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None


def print_headline_kpis(warehouse: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    from warehouse.report import headline_kpis

    table = Table(show_header=False, title="Headline KPIs", title_justify="left")
    for label, value in headline_kpis(warehouse):
        table.add_row(label, value)
    Console().print(table)


COMMANDS: list[Callable[..., Any]] = [report, kpis]
GROUPS: list[typer.Typer] = [spend_app]
