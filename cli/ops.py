"""Operations commands: `attribution status` (a probe for cron, Kubernetes or a human)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import orjson
import typer
from rich.console import Console
from rich.table import Table

from cli.options import BrokerOpt, ConfigOpt, err, read_config_text

if TYPE_CHECKING:
    from streams.status import StreamStatus

EXIT_ALERT = 1
EXIT_UNREACHABLE = 2


def status(
    broker: BrokerOpt = None,
    config: ConfigOpt = None,
    warehouse: Annotated[Path | None, typer.Option(
        "--warehouse", "-w", help="Also report the newest landed file and the workers' "
        "announced endpoints from this warehouse.")] = None,
    max_lag: Annotated[int | None, typer.Option(
        min=0, help="Alert (exit 1) above this many uncommitted records; default [stream] "
        "alert_max_lag.")] = None,
    max_dead_letters: Annotated[int | None, typer.Option(
        min=0, help="Alert (exit 1) above this many dead-letter records; default [stream] "
        "alert_max_dead_letters (none).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON, not tables.")] = False,
) -> None:
    """Topics, partitions, end and committed offsets, lag of the stream's consumer group,
    workers, dead letters, replication, last landed file. Exit 1 past the thresholds or
    when a topic is replicated less than `[stream] replication_factor`, 2 if the broker
    cannot be reached."""
    import asyncio

    from aiokafka.errors import KafkaError

    from attribution.defaults import load_config
    from attribution.policy import ConfigError
    from streams.broker import BrokerError, broker_from_env
    from streams.settings import stream_settings
    from streams.status import gather_status

    bootstrap = broker_from_env(broker)
    if bootstrap is None:
        raise typer.BadParameter("give --broker or set KAFKA_BROKER")
    try:
        settings = stream_settings(load_config(read_config_text(config)).stream)
    except ConfigError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(EXIT_UNREACHABLE) from None
    try:
        found = asyncio.run(asyncio.wait_for(gather_status(bootstrap, settings, warehouse), 60))
    except (KafkaError, BrokerError, OSError, TimeoutError) as exc:
        err.print(f"[red]cannot read the stream's status from {bootstrap}: {exc!r}[/red]")
        raise typer.Exit(EXIT_UNREACHABLE) from None
    problems = found.problems(settings.alert_max_lag if max_lag is None else max_lag,
                              settings.alert_max_dead_letters if max_dead_letters is None
                              else max_dead_letters)
    if as_json:
        print(orjson.dumps({**found.as_json(), "problems": problems},
                           option=orjson.OPT_INDENT_2).decode())
    else:
        _print_tables(found, problems)
    if problems:
        raise typer.Exit(EXIT_ALERT)


def _print_tables(found: StreamStatus, problems: list[str]) -> None:
    out = Console(width=max(Console().width, 160))  # topic names are long; keep them whole
    table = Table(title=f"consumer group {found.group}", title_justify="left")
    for column in ("topic", "partition", "end offset", "committed", "lag"):
        table.add_column(column, justify="left" if column == "topic" else "right",
                         no_wrap=column == "topic")
    for p in found.partitions:
        committed = "-" if not p.consumed else "none" if p.committed is None else str(p.committed)
        lag = f"[red]{p.lag}[/red]" if p.lag else "0"
        table.add_row(p.topic, str(p.partition), str(p.end_offset), committed,
                      lag if p.consumed else "-")
    out.print(table)
    summary = Table(show_header=False, title="summary", title_justify="left")
    summary.add_row("total lag", str(found.lag))
    summary.add_row("dead-letter records", str(found.dead_letters))
    lowest = min((r.replicas for r in found.replication), default=0)
    summary.add_row("replication", f"configured {found.replication_factor}, lowest topic "
                    f"{lowest}" + ("" if lowest >= found.replication_factor else " [red]![/red]"))
    summary.add_row("group members", "\n".join(found.members) or "(none)")
    summary.add_row("workers answering", "\n".join(found.workers) or "(none announced)")
    summary.add_row("last landed file",
                    found.last_landed.isoformat(timespec="seconds") if found.last_landed
                    else "(none)")
    summary.add_row("status", "[red]" + "; ".join(problems) + "[/red]" if problems else "ok")
    out.print(summary)


COMMANDS = [status]
