"""``hw3 data``: fetch, fake and inspect datasets. Mounted by trainers.cli as ``data``.

Imports stay light (no numpy, no torch) until a command actually needs them, so that
``hw3 --help`` is quick; ``fake`` needs numpy, and says which extra installs it when it is
missing. Errors are trainers.errors classes; the hw3 CLI edge prints them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from trainers import schema
from trainers.data import catalog
from trainers.registry import Needs, require

# Writing stand-in data needs numpy (in the train and scaling extras, as every plugin's data).
FAKE_NEEDS = Needs("train", ("numpy",))

if TYPE_CHECKING:
    from rich.progress import TaskID

app = typer.Typer(help="Fetch, fake and inspect the datasets (cifar10, fashion-mnist).",
                  no_args_is_help=True, add_completion=False)

DataDir = Annotated[Path | None, typer.Option(
    "--data-dir", help="Dataset root; default $HW3_DATA, else ~/.cache/hw3.")]
Name = Annotated[str, typer.Argument(help="Dataset: cifar10 or fashion-mnist.")]
LayoutOpt = Annotated[str | None, typer.Option(
    "--layout", help="cifar10: python (default) or binary; fashion-mnist: idx.")]


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB"):
        if size < 1024:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


@app.command()
def fetch(name: Name, data_dir: DataDir = None, layout: LayoutOpt = None,
          force: Annotated[bool, typer.Option(help="Download even if present.")] = False,
          ) -> None:
    """Download the official files, check their MD5s and extract them safely."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

    from trainers.data import fetch as fetching

    with Progress("{task.description}", BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                  console=Console(stderr=True)) as bar:
        tasks: dict[str, TaskID] = {}

        def progress(filename: str, done: int, total: int | None) -> None:
            if filename not in tasks:
                tasks[filename] = bar.add_task(filename, total=total)
            bar.update(tasks[filename], completed=done)

        folder = fetching.fetch(name, data_dir, layout, progress=progress, force=force)
    typer.echo(f"{name}: {folder}")


@app.command()
def fake(name: Name,
         n: Annotated[int, typer.Option("--n", help="Training images.")] = 1000,
         n_test: Annotated[int | None, typer.Option(
             "--n-test", help="Test images; default n // 5.")] = None,
         seed: Annotated[int, typer.Option(help="Seed: equal seeds give equal files.")] = 0,
         layout: LayoutOpt = None, data_dir: DataDir = None,
         force: Annotated[bool, typer.Option(help="Overwrite real data too.")] = False,
         ) -> None:
    """Write synthetic stand-in data in the official on-disk format (for offline use)."""
    require(FAKE_NEEDS, "hw3 data fake")
    from trainers.data import fake as faking

    folder = faking.write(name, data_dir, n, n_test=n_test, seed=seed, layout=layout,
                          force=force)
    typer.echo(f"{name}: wrote synthetic stand-in data to {folder} (see {catalog.MARKER})")


@app.command()
def info(name: Name, data_dir: DataDir = None,
         fmt: Annotated[str, typer.Option(
             "--format", metavar="FORMAT",
             help="table or json (schema_version, layouts, warnings).")] = "table") -> None:
    """Show what is on disk for a dataset: files, sizes, real or synthetic."""
    if schema.wants_json(fmt):
        layouts = [{"layout": st.layout.name, "folder": str(st.folder),
                    "complete": st.complete, "synthetic": st.synthetic,
                    "files": {f: st.sizes.get(f) for f in st.layout.files},
                    "missing": list(st.missing), "bytes": sum(st.sizes.values())}
                   for st in catalog.status(name, data_dir)]
        warnings = [f"{d['layout']}: synthetic stand-in data, not the real dataset"
                    for d in layouts if d["complete"] and d["synthetic"]]
        typer.echo(schema.dumps({"dataset": name,
                                 "data_dir": str(catalog.resolve_data_dir(data_dir)),
                                 "layouts": layouts}, warnings))
        return
    table = Table(title=f"{name} under {catalog.resolve_data_dir(data_dir)}")
    for column in ("layout", "folder", "files", "size", "data"):
        table.add_column(column)
    for st in catalog.status(name, data_dir):
        kind = "synthetic" if st.synthetic else "real"
        what = (kind if st.complete else
                f"incomplete: missing {', '.join(st.missing)}" if st.sizes else "absent")
        table.add_row(st.layout.name, str(st.folder),
                      f"{len(st.sizes)}/{len(st.layout.files)}",
                      _size(sum(st.sizes.values())), what)
    console = Console()
    if not console.is_terminal:  # pipes and tests: keep long paths on one line
        console = Console(width=200)
    console.print(table)
