"""`attribution`: the one command that fronts the engine."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Annotated

import typer

from cli import analysts, batch, collector, maintenance, models, ops, privacy, stream

app = typer.Typer(
    name="attribution",
    help="Real-time marketing attribution for B2C and B2B: collect, stitch, credit, analyse.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="markdown",  # docstrings wrap to the terminal, `code` shows as code
)

DISTRIBUTION = "attribution-engine"  # [project] name in pyproject.toml


def installed_version() -> str:
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


def _print_version(wanted: bool) -> None:
    if wanted:
        print(f"attribution {installed_version()}")
        raise typer.Exit()


@app.callback()
def main_options(
    show_version: Annotated[bool, typer.Option(
        "--version", help="Print the version and exit.", callback=_print_version,
        is_eager=True)] = False,
) -> None:
    """Options of `attribution` itself (before a command)."""


for module in (batch, stream, collector, analysts, models, privacy, ops, maintenance):
    for command in module.COMMANDS:
        app.command()(command)
    for group in getattr(module, "GROUPS", ()):
        app.add_typer(group)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
