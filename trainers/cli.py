"""The ``hw3`` command. Discovery reads entry-point metadata only: no torch, no tensorflow."""

from __future__ import annotations

from importlib.metadata import entry_points

import typer
from rich.console import Console

GROUP = "hw3.trainers"
app = typer.Typer(help="Reproducible training experiments (plugins of group hw3.trainers).",
                  no_args_is_help=True, add_completion=False)


@app.command("list")
def list_plugins() -> None:
    """List the installed experiment plugins without importing them."""
    console = Console()
    found = sorted(entry_points(group=GROUP), key=lambda ep: ep.name)
    if not found:
        console.print(f"no plugins installed in entry-point group {GROUP!r}")
        return
    for ep in found:
        console.print(f"{ep.name}  ({ep.value})")


@app.callback()
def _root() -> None:
    """Keep ``list`` a subcommand even while it is the only one."""


def main() -> None:
    app()
