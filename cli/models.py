"""Model commands: data-driven models landed as credits, re-attribution under a new config."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
from rich.table import Table

from attribution.policy import Config, ConfigError
from cli.options import ConfigOpt, WarehouseOpt, err, read_config_text

if TYPE_CHECKING:
    from warehouse.datadriven import PolicyResult


def _progress() -> Progress:
    return Progress(
        "[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), console=err, disable=not err.is_terminal, transient=True,
    )


def _load_config(text: str | None) -> Config:
    from attribution.defaults import load_config

    try:
        return load_config(text)
    except ConfigError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None


def datadriven(
    warehouse: WarehouseOpt = Path("warehouse"),
    model: Annotated[str, typer.Option("--model", "-m", help="markov or shapley.")] = "markov",
    order: Annotated[
        int, typer.Option("--order", "-k", help="Markov chain order, 1 to 4 (states are the "
                          "last K channels).")
    ] = 1,
    policy: Annotated[
        list[str] | None,
        typer.Option("--policy", "-p", help="Policy to model (repeatable); default: every "
                     "policy with credits."),
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Compute a data-driven model (Markov removal effects or Shapley values) over every
    journey of the warehouse, converting and not, and land it as a model in the credits
    table (model `markov_o1` to `markov_o4`, or `shapley`), fitted so each conversion sums
    to 1 and its value and each channel to the model's totals; where the model asks more
    than a channel's conversions hold, the closest fit lands and the gaps are printed (and
    kept in the datadriven_fit view). Re-running replaces the previous rows; run it again
    after `attribution reattribute`."""
    import duckdb

    from warehouse.datadriven import model_name, run_datadriven

    try:
        name = model_name(model, order)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    if model == "shapley" and order != 1:
        err.print("[yellow]--order applies to markov only; ignored[/yellow]")
    loaded = _load_config(read_config_text(config))
    try:
        with _progress() as bar:
            task = bar.add_task(f"{name}: reading the warehouse", total=None)

            def step(what: str) -> None:
                bar.update(task, advance=1, description=f"{name}: {what}")

            results = run_datadriven(warehouse, loaded, model, order, policy, step,
                                     total=lambda steps: bar.update(task, total=steps))
    except (ValueError, FileNotFoundError, duckdb.Error) as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None

    if not results:
        err.print("[yellow]no conversions with credits to model[/yellow]")
    out = Console()
    for result in results:
        _print_result(out, result)


_VALUE_TOTALS = {"markov": "value removal effects", "shapley": "Shapley values of the value game"}


def _print_result(out: Console, result: PolicyResult) -> None:
    table = Table(
        title=f"{result.policy} / {result.model}: {result.converting} converting and "
        f"{result.non_converting} non-converting journeys, {result.rows} credit rows",
        title_justify="left",
        caption="landed = sum of the landed rows; model value = the model's "
        f"{_VALUE_TOTALS[result.model.split('_')[0]]}",
        caption_justify="left",
    )
    gaps = not result.fitted  # the gap columns only when there are gaps
    columns = {"weight": "weight", "model_conversions": "model conversions",
               "credit": "landed credit", **({"conversions_gap": "gap"} if gaps else {}),
               "model_value": "model value", "credited_value": "landed value",
               **({"value_gap": "gap"} if gaps else {})}
    table.add_column("channel")
    for label in columns.values():
        table.add_column(label, justify="right")
    for row in result.channels.iter_rows(named=True):
        table.add_row(row["channel"], *(_number(row[key], 4 if key == "weight" else 2)
                                        for key in columns))
    out.print(table)
    if not result.fitted:
        out.print(f"[yellow]{_infeasibility(result)}[/yellow]")


def _infeasibility(result: PolicyResult) -> str:
    """Which channels the landed rows could not fit to the model, and by how much."""
    misses = []
    for row in result.channels.iter_rows(named=True):
        if row["fitted"]:
            continue
        gaps = [f"{what} {_signed(row[gap])} ({row[gap] / row[model]:+.1%})" if row[model]
                else f"{what} {_signed(row[gap])}"
                for what, gap, model in (("credit", "conversions_gap", "model_conversions"),
                                         ("value", "value_gap", "model_value"))
                if not abs(row[gap]) <= 1e-9 * max(abs(row[model]), 1e-300)]
        misses.append(f"{row['channel']}: {', '.join(gaps)}")
    return (
        f"{result.model} asks some channels for more than the conversions on their paths can "
        "give, so the landed rows are the closest fit (each conversion still sums to 1 and "
        "to its value) and differ from the model by: " + "; ".join(misses)
        + ". See the view datadriven_fit."
    )


def _signed(value: float) -> str:
    return f"{round(value, 2) + 0.0:+,.2f}"


def _number(value: float | None, digits: int) -> str:
    # round() then + 0.0 turns a solver's -1e-17 into 0.00 rather than -0.00
    return "" if value is None else f"{round(value, digits) + 0.0:,.{digits}f}"


def _parse_since(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"--since {text!r} is no date (YYYY-MM-DD) or ISO time") from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def reattribute(
    warehouse: WarehouseOpt = Path("warehouse"),
    config: Annotated[
        Path, typer.Option("--config", "-c", help="The new TOML config (merged over the "
                           "shipped defaults).")
    ] = Path("attribution.toml"),
    since: Annotated[
        str | None,
        typer.Option(help="Only conversions at or after this date or ISO time (UTC unless "
                     "it says otherwise)."),
    ] = None,
) -> None:
    """Re-credit the landed history (touches, conversions, identity links) under a new
    config: new routing, windows and models. Each changed conversion gets a new version
    (reason "reattribution"); nothing is deleted, and conversions whose credits would not
    change are left alone, so a repeated run adds nothing."""
    import duckdb

    from warehouse.reattribute import reattribute as run_reattribute

    text = read_config_text(config)
    assert text is not None
    loaded = _load_config(text)
    when = _parse_since(since)
    try:
        with _progress() as bar:
            task = bar.add_task("reading the warehouse", total=None)

            def total(count: int) -> None:
                bar.update(task, total=count, description="re-crediting conversions")

            summary = run_reattribute(warehouse, loaded, text, when,
                                      progress=lambda n: bar.advance(task, n), total=total)
    except (FileNotFoundError, duckdb.Error) as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    err.print(
        f"{summary.considered} conversions re-credited: {summary.reattributed} got a new "
        f"version ({summary.rerouted} re-routed to another policy), {summary.unchanged} "
        f"unchanged, {summary.skipped} skipped (no policy in the new config); "
        f"{summary.credits} credit rows in {len(summary.files)} file(s)"
    )
    if summary.reattributed:
        err.print("data-driven models stay on the old versions: run `attribution datadriven` "
                  "again to see them in the credits view")


COMMANDS = [datadriven, reattribute]
