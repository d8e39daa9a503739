"""The plugin interface of hw3: what a trainer provides and what the host hands it.

A plugin is small: a name, a one-line summary, a typed config dataclass, ``run`` and
``report``. The host owns discovery, configuration, reporting, storage, checkpoints, devices
and data; :class:`RunContext` is the plugin's only way to reach them, so a plugin never
prints, never opens run files and never parses options. ``report`` works from the stored
results alone, so ``hw3 report RUN`` can redraw every plot without training.

A minimal plugin (registered as ``[project.entry-points."hw3.trainers"] demo =
"pkg.demo:plugin"``)::

    @dataclass(frozen=True)
    class Config:
        epochs: int = setting(10, "Training epochs.")

    class Demo:
        name = "demo"
        summary = "Fits a line."
        config_type = Config

        def run(self, config: Config, ctx: RunContext) -> dict[str, Any]: ...
        def report(self, results: Mapping[str, Any], ctx: ReportContext) -> Summary: ...

    plugin = Demo()
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

if TYPE_CHECKING:
    from trainers.progress import Progress
    from trainers.store import Run, RunInfo

ConfigT = TypeVar("ConfigT")
Results = dict[str, Any]

INTERFACE = ("an object (or a class made without arguments) with name: str, summary: str "
             "(one line), config_type: a dataclass type, run(config, ctx) -> dict and "
             "report(results, ctx) -> Summary; see trainers.api.Trainer")


def setting(default: Any, help: str) -> Any:
    """A config field with its help text; the text becomes the generated CLI option's help."""
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class Summary:
    """What ``report`` returns: Markdown that answers the plugin's questions, and its plots."""

    markdown: str
    plots: tuple[Path, ...] = ()


@dataclass
class RunContext:
    """Everything the host lends a plugin's ``run``.

    ``run`` stores checkpoints (``ctx.run.save_checkpoint`` / ``load_checkpoint``);
    ``progress`` is the only way to show progress, metrics and tables; ``stand_in`` is True
    once the plugin trains on synthetic stand-in data, so every printed result says so.
    """

    run: Run
    progress: Progress
    device: str
    seed: int
    data_dir: Path
    stand_in: bool = False
    resumed: bool = False

    def use_stand_in(self, why: str) -> None:
        """Declare that this run trains on stand-in (synthetic) data; recorded with the run."""
        self.stand_in = True
        self.run.mark_stand_in(why)
        self.progress.set_stand_in(why)

    @property
    def stop_requested(self) -> bool:
        """True after a first Ctrl-C: a long loop may checkpoint early and return."""
        return self.run.stop_requested


@dataclass(frozen=True)
class ReportContext:
    """What ``report`` gets besides the results: the stored run, its config and where plots go."""

    run: RunInfo
    config: Any
    plots_dir: Path
    stand_in: bool

    def metrics(self) -> list[dict[str, Any]]:
        """Every metric record of the run, in order (a torn last line is skipped)."""
        path = self.run.dir / "metrics.jsonl"
        if not path.is_file():
            return []
        records = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return records

    def plot_path(self, name: str) -> Path:
        """Where to save a plot called ``name`` (e.g. ``"loss.png"``)."""
        self.plots_dir.mkdir(parents=True, exist_ok=True)
        return self.plots_dir / name


@runtime_checkable
class Trainer(Protocol[ConfigT]):
    """An hw3 experiment plugin; see the module docstring for a minimal example."""

    name: str
    summary: str
    config_type: type[ConfigT]
    # Optional, both checked by the host before it creates (or resumes) a run directory, so a
    # mistake is one line of advice and leaves no failed run behind:
    # ``datasets = ("cifar10",)`` names the catalog datasets ``run`` reads (they must be on
    # disk); ``def check(self, config, device: str, data_dir: str) -> None`` raises a
    # ConfigError (or another Hw3Error) for settings that fail only on this machine or with
    # outside files.

    def run(self, config: ConfigT, ctx: RunContext) -> Results:
        """Train; return JSON-able results (optional key ``headline``: shown by ``hw3 runs``)."""
        ...

    def report(self, results: Mapping[str, Any], ctx: ReportContext) -> Summary:
        """Plots and a Markdown summary answering the plugin's questions, from results alone."""
        ...
