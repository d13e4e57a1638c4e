"""`attribution`: the one command that fronts the engine."""

from __future__ import annotations

import typer

from cli import analysts, batch, collector, maintenance, models, ops, privacy, stream

app = typer.Typer(
    name="attribution",
    help="Real-time marketing attribution for B2C and B2B: collect, stitch, credit, analyse.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="markdown",  # docstrings wrap to the terminal, `code` shows as code
)

for module in (batch, stream, collector, analysts, models, privacy, ops, maintenance):
    for command in module.COMMANDS:
        app.command()(command)
    for group in getattr(module, "GROUPS", ()):
        app.add_typer(group)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
