"""The plugin interface of hw3: what a trainer provides and what the host hands it.

A plugin is small: a name, a one-line summary, a typed config dataclass, ``run`` and
``report``, and optionally ``datasets``, ``check`` and ``plan`` (:data:`OPTIONAL`). The host owns
discovery, configuration, progress, storage, checkpoints, devices and data; :class:`RunContext`
is the plugin's only way to reach them (a working directory, its checkpoints, the progress
display), so a plugin never prints, never opens the run's own files and never parses options.
The registry checks every member, required and optional, when a plugin loads. ``report``
works from the stored results alone, so ``hw3 report RUN`` can redraw every plot without
training.

A minimal plugin (registered as ``[project.entry-points."hw3.trainers"] demo =
"pkg.demo:plugin"``)::

    @dataclass(frozen=True)
    class Config:
        epochs: int = setting(10, "Training epochs.", cite="the paper's Sec. 4")

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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

if TYPE_CHECKING:
    from trainers.progress import Progress
    from trainers.store import Checkpoint, RunInfo

ConfigT = TypeVar("ConfigT")
ConfigIn = TypeVar("ConfigIn", contravariant=True)
Results = dict[str, Any]
WORKDIR = "work"  # runs/<plugin>/<run-id>/work/: the plugin's own files (ctx.workdir)

INTERFACE = ("an object (or a class made without arguments) with name: str, summary: str "
             "(one line), config_type: a dataclass type, run(config, ctx) -> dict and "
             "report(results, ctx) -> Summary, and optionally the members of "
             "trainers.api.OPTIONAL (datasets, check, plan, reports_partial); see "
             "trainers.api.Trainer")
# Optional members of a Trainer, and the form each must have (the registry checks them).
OPTIONAL = {
    "datasets": "datasets: tuple[str, ...] of dataset names hw3 knows (hw3 data info)",
    "check": "check(config, device: str, data_dir: str) -> None",
    "plan": "plan(config, device: str, data_dir: str) -> trainers.plan.Plan | None "
            "(hw3 run --plan, and the line that opens every run)",
    "reports_partial": "reports_partial: bool, True when run() keeps the results of its "
                       "finished trainings under trainers.reporting.PARTIAL_KEY in each "
                       "checkpoint's extra (hw3 report on an interrupted run)",
}


def setting(default: Any, help: str, *, cite: str = "", ge: float | None = None,
            gt: float | None = None, le: float | None = None, lt: float | None = None) -> Any:
    """A config field: its one default, its help text (the generated CLI option's help) and
    ``cite``, where the value comes from (a paper, the homework, a library default, or "our
    choice"); docs pages and ``--help`` show both. ``ge``, ``gt``, ``le`` and ``lt`` bound a
    number (each item of a tuple): every value, from any layer, is checked against them
    before a run starts (and a float must be finite in any case)."""
    return field(default=default, metadata={"help": help, "cite": cite,
                                            "range": (ge, gt, le, lt)})


@dataclass(frozen=True)
class Summary:
    """What ``report`` returns: Markdown that answers the plugin's questions, and its plots."""

    markdown: str
    plots: tuple[Path, ...] = ()


class Checkpoints(Protocol):
    """A run's checkpoints as a plugin sees them (``ctx.checkpoints``)."""

    @property
    def stop_requested(self) -> bool: ...

    def save(self, epoch: int, model: Any, optimizer: Any = None, scheduler: Any = None,
             extra: Mapping[str, Any] | None = None) -> None:
        """Save model, optimizer, scheduler, RNG states and ``extra`` (plain data) after
        ``epoch`` completed epochs; after a first Ctrl-C, raise KeyboardInterrupt there."""

    def load(self, model: Any, optimizer: Any = None, scheduler: Any = None
             ) -> Checkpoint | None:
        """Restore the last checkpoint into the objects (and the RNGs); None if none."""

    def last(self) -> dict[str, Any] | None:
        """The last checkpoint's ``epoch`` and ``file`` without loading it; None if none."""


@dataclass
class RunContext:
    """Everything the host lends a plugin's ``run``, and nothing more.

    ``workdir`` is the run's folder for the plugin's own files (``work/`` in the run
    directory; the plugin creates it when it needs it); ``checkpoints`` saves and restores
    training state; ``progress`` is the only way to show progress, metrics and tables;
    ``ref`` names the run in messages; ``stand_in`` is True once the plugin trains on
    synthetic stand-in data, so every printed result says so.
    """

    progress: Progress
    checkpoints: Checkpoints
    workdir: Path
    ref: str
    device: str
    seed: int
    data_dir: Path
    resumed: bool = False
    stand_in: bool = False
    on_stand_in: Callable[[str], None] = field(default=lambda why: None, repr=False)

    def use_stand_in(self, why: str) -> None:
        """Declare that this run trains on stand-in (synthetic) data; recorded with the run."""
        self.stand_in = True
        self.on_stand_in(why)
        self.progress.set_stand_in(why)

    @property
    def stop_requested(self) -> bool:
        """True after a first Ctrl-C: a long loop may checkpoint early and return."""
        return self.checkpoints.stop_requested


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

    @property
    def workdir(self) -> Path:
        """The run's folder for the plugin's own files, as ``run`` saw it (``ctx.workdir``):
        what the plugin kept there while training, for its report to read back."""
        return self.run.dir / WORKDIR

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

    def run(self, config: ConfigT, ctx: RunContext) -> Results:
        """Train; return JSON-able results (optional key ``headline``: shown by ``hw3 runs``)."""
        ...

    def report(self, results: Mapping[str, Any], ctx: ReportContext) -> Summary:
        """Plots and a Markdown summary answering the plugin's questions, from results alone."""
        ...


class NeedsData(Protocol):
    """Optional: ``datasets = ("cifar10",)`` names the datasets ``run`` reads; the host checks
    they are on disk before it creates (or resumes) a run directory."""

    datasets: tuple[str, ...]


class Checks(Protocol[ConfigIn]):
    """Optional: ``check`` raises a ConfigError (or another Hw3Error) for settings that fail
    only on this machine or with outside files; the host calls it before a run directory
    exists, so a mistake is one line of advice and leaves no failed run behind."""

    def check(self, config: ConfigIn, device: str, data_dir: str) -> None: ...
