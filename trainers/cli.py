"""The ``hw3`` command: list, run, runs, report, and the ``data`` sub-app.

This module maps options to the session layer (trainers.session) and errors to messages;
it does no work of its own. ``hw3 run NAME`` is a lazy group: each plugin becomes a command
whose options are generated from its config dataclass, so no plugin writes flags. ``hw3
list`` and ``hw3 --help`` read metadata and import plugins, which import frameworks only
inside ``run``; the data sub-app and the run machinery (torch, through runtime and
checkpoints) load only when used. User mistakes (any Hw3Error, and archcalc's errors met
during a run) become one line on stderr and exit code 2; Ctrl-C exits 130.
"""

from __future__ import annotations

import functools
import inspect
import sys
import textwrap
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from typer.core import TyperGroup

from trainers import config as cfg
from trainers import schema, session
from trainers.api import Trainer
from trainers.errors import ConfigError, Hw3Error, RunInterrupted
from trainers.registry import ENV, Entry, Needs, registry, require
from trainers.store import RunInfo, RunStore

DATA_HELP = "Datasets: fetch, fake (synthetic stand-ins) and info for cifar10, fashion-mnist."
EXAMPLES = ("hw3 list", "hw3 run NAME --help", "hw3 run NAME --epochs 2 --seed 1",
            "hw3 run NAME --resume RUN", "hw3 runs", "hw3 report RUN",
            "hw3 data fake cifar10 --n 500")


# -- the edge: user mistakes -> one line + exit 2 ----------------------------------------
@contextmanager
def edge() -> Iterator[None]:
    """Turn user errors (hw3's, and archcalc's met during a run) into one line on stderr and
    exit code 2; a run stopped by Ctrl-C exits 130. Anything else is a bug: a traceback."""
    try:
        yield
    except RunInterrupted:
        raise typer.Exit(130) from None
    except BrokenPipeError:  # hw3 run ... | head: the reader left; say nothing more
        quiet_stdout()
        raise typer.Exit(141) from None
    except Exception as exc:
        if isinstance(exc, OSError) and exc.filename is not None:
            typer.echo(f"error: {os_problem(exc)}", err=True)
            raise typer.Exit(2) from None
        if not user_error(exc):
            raise
        typer.echo(f"error: {one_line(str(exc))}", err=True)
        raise typer.Exit(2) from None


def one_line(text: str) -> str:
    return " ".join(text.split())


def os_problem(exc: OSError) -> str:
    """An environment failure (a path that is a file, a directory, unwritable, a full disk)
    as one line naming the path."""
    where = str(exc.filename) + (f" -> {exc.filename2}" if exc.filename2 else "")
    return one_line(f"{where}: {exc.strerror or type(exc).__name__}")


def quiet_stdout() -> None:
    """Point stdout at /dev/null so flushing at exit does not raise a second broken pipe."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout is not a real file (a test's capture)
        pass


class PipeConsole(Console):
    """A Console whose closed pipe raises the BrokenPipeError it is (rich's own handler
    exits 1), for :func:`listing` and ``edge`` to handle."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        raise BrokenPipeError


def listing(command: Callable[..., None]) -> Callable[..., None]:
    """A command that only prints (list, runs, report): ``hw3 runs | head -1`` got what it
    asked for, so a reader that leaves early is exit 0, quietly. (A run stopped that way
    did not finish: ``edge`` exits 141.)"""

    @functools.wraps(command)
    def printing(*args: Any, **kwargs: Any) -> None:
        try:
            command(*args, **kwargs)
        except BrokenPipeError:
            quiet_stdout()
            raise typer.Exit(0) from None

    return printing


def user_error(exc: BaseException) -> bool:
    """An Hw3Error, or an archcalc error (a bad spec, an unknown model). archcalc is never
    imported for this: if it is not loaded, the error cannot be one of its own."""
    if isinstance(exc, Hw3Error):
        return True
    archcalc = sys.modules.get("archcalc.errors")
    return archcalc is not None and isinstance(exc, archcalc.ArchcalcError)


class Hw3Group(TyperGroup):
    """The root: every command runs inside ``edge``; ``data`` is imported only when used."""

    def invoke(self, ctx: Any) -> Any:
        with edge():
            return super().invoke(ctx)

    def list_commands(self, ctx: Any) -> list[str]:
        return [*super().list_commands(ctx), "data"]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name != "data":
            return super().get_command(ctx, cmd_name)
        from trainers.data.cli import app as data_app

        command = typer.main.get_command(data_app)
        command.name = "data"
        return command

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        limit = formatter.width - 12
        rows = [(name, cmd.get_short_help_str(limit))
                for name, cmd in self.commands.items() if not cmd.hidden]
        with formatter.section("Commands"):
            formatter.write_dl([*rows, ("data", DATA_HELP)])


class RunGroup(TyperGroup):
    """``hw3 run NAME``: one generated command per plugin, built on first use."""

    def list_commands(self, ctx: Any) -> list[str]:
        reg = registry()
        return [n for n in reg.names() if not reg.blocked(n)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        return plugin_command(registry().get(cmd_name))  # PluginError lists the known ones

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        rows = [(e.name, e.summary if e.status == "ok" else f"[{e.status}] {e.error}"
                 if e.status == "error" else f"[{e.status}] {_note(e)}")
                for e in registry().entries() if e.status != "blocked"]
        with formatter.section("Plugins"):
            formatter.write_dl(rows or [("(none)", "no plugins in entry-point group "
                                                    "hw3.trainers (see hw3 list)")])


app = typer.Typer(
    cls=Hw3Group, name="hw3", no_args_is_help=True,
    rich_markup_mode=None,
    help="Reproducible training experiments: plugins of entry-point group hw3.trainers.",
    epilog="Examples:\n\n\b\n" + "\n".join(f"  {e}" for e in EXAMPLES))
run_app = typer.Typer(
    cls=RunGroup, no_args_is_help=True, add_completion=False, rich_markup_mode=None,
    help="Run a plugin: hw3 run NAME [OPTIONS]; options come from its config (NAME --help).")
app.add_typer(run_app, name="run")

FormatOpt = Annotated[str, typer.Option(
    "--format", metavar="FORMAT", help="table (for people) or json (for programs; "
    "schema_version and warnings in every document).")]


def emit_json(document: dict[str, Any], warnings: list[str] | None = None) -> None:
    """One JSON document on stdout in hw3's envelope (trainers.schema)."""
    typer.echo(schema.dumps(document, warnings or []))


def table_or_json(fmt: str) -> bool:
    """True for json; a ConfigError for anything but table or json."""
    return schema.wants_json(fmt)


def version() -> str:
    """hw3's version: the installed distribution's, else pyproject.toml's in a source
    checkout (said so, since nothing installed it)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed_version

    from trainers.registry import DISTRIBUTION

    try:
        return installed_version(DISTRIBUTION)
    except PackageNotFoundError:
        import tomllib

        pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
        try:
            found = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["version"]
        except (OSError, ValueError, KeyError):
            return "unknown (not installed)"
        return f"{found} (source checkout, not installed)"


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"hw3 {version()}")
        raise typer.Exit()


@app.callback()
def _root(show: Annotated[bool, typer.Option(
        "--version", is_eager=True, callback=_show_version,
        help="Print hw3's version and exit.")] = False) -> None:
    pass


RunsDir = Annotated[Path | None, typer.Option(
    "--runs-dir", metavar="DIR",
    help=f"Where runs live; default ${session.RUNS_ENV}, else ./runs.")]


# -- hw3 list ----------------------------------------------------------------------------
@app.command("list")
@listing
def list_cmd(fmt: FormatOpt = "table") -> None:
    """The installed plugins: status, what each needs beyond the core, package, summary."""
    as_json = table_or_json(fmt)
    entries = registry().entries()
    defaults = cfg.Defaults.load()
    notes = [_note(e) for e in entries if _note(e)]
    if as_json:
        emit_json({"plugins": [_plugin_record(e, _status(e.status, defaults, e.name))
                               for e in entries]}, notes)
        return
    console = PipeConsole()
    if not entries:
        console.print("no plugins installed in entry-point group 'hw3.trainers'")
        return
    width = min(console.width, 100)
    for e in entries:  # a block per plugin, not a table: nothing is cut at 80 columns
        lines = [f"{e.name:<14} {_status(e.status, defaults, e.name):<9} {e.package}"]
        for text in (e.summary, _needs_text(e)):
            lines += textwrap.wrap(text, width, initial_indent="  ", subsequent_indent="  ",
                                   break_long_words=False, break_on_hyphens=False)
        console.print("\n".join(lines), markup=False, highlight=False, soft_wrap=True)
    for note in notes:
        console.print(note, markup=False, highlight=False, soft_wrap=True)


def _needs_text(entry: Entry) -> str:
    """``needs [train]: torch, matplotlib (missing)``: the extra and each module's state."""
    if entry.needs is None:
        return "needs: nothing declared beyond hw3's core"
    needs = entry.needs
    mods = [f"{m} (missing)" if m in entry.missing else m for m in needs.modules]
    state = "" if entry.missing else " (installed)"
    extra = f"{needs.distribution}[{needs.extra}]" if needs.by_distribution else \
        f"[{needs.extra}]"  # a third-party plugin's extra is its own package's
    if not mods:
        return f"needs {extra}: its package's metadata lists nothing for that extra"
    return f"needs {extra}: {', '.join(mods)}{state}"


def _note(entry: Entry) -> str:
    if entry.status == "error":
        return f"error: {entry.error}"
    if entry.status == "blocked":
        return f"{entry.name}: not loaded ({ENV} does not list it)"
    if entry.missing and entry.needs is not None:
        return f"{entry.name}: {', '.join(entry.missing)} not installed: {entry.needs.install}"
    return ""


def _plugin_record(entry: Entry, status: str) -> dict[str, Any]:
    needs = entry.needs
    return {"name": entry.name, "status": status, "entry_point": entry.value,
            "package": entry.package, "summary": entry.summary, "error": entry.error,
            "extra": needs.extra if needs else None,
            "modules": {m: m not in entry.missing for m in needs.modules} if needs else {},
            "checked_as": ("distribution" if needs.by_distribution else "module")
            if needs else None,
            "install": needs.install if needs else None}


def _status(status: str, defaults: cfg.Defaults, name: str) -> str:
    if status == "ok" and not defaults.enabled(name):
        return "disabled"
    return status


# -- hw3 run NAME --------------------------------------------------------------------------
HOST_OPTIONS: dict[str, Any] = {
    "config": Annotated[Path | None, typer.Option(
        "--config", metavar="FILE",
        help="A TOML file overlaying plugins.toml ([NAME] table or plain keys).")],
    "resume": Annotated[str | None, typer.Option(
        "--resume", metavar="RUN", help="Continue an interrupted run (id or directory).")],
    "device": Annotated[str | None, typer.Option(
        "--device", metavar="DEVICE", help="auto, cpu, cuda, cuda:N or mps.  [default: auto]")],
    "seed": Annotated[int | None, typer.Option(
        "--seed", metavar="INT", help="Random seed.  [default: 0]")],
    "deterministic": Annotated[bool | None, typer.Option(
        "--deterministic/--no-deterministic",
        help="Deterministic torch kernels (slower).  [default: no]")],
    "data_dir": Annotated[Path | None, typer.Option(
        "--data-dir", metavar="DIR", help="Dataset root; default $HW3_DATA, else ~/.cache/hw3.")],
    "runs_dir": RunsDir,
}


def plugin_command(trainer: Trainer[Any]) -> Any:
    """A click command for ``trainer``: one option per config field, plus the host options."""
    specs = cfg.field_specs(trainer.config_type)
    defaults = cfg.Defaults.load()  # read once: for the help text and for the run
    shown = cfg.resolve(trainer.config_type, [defaults.layer(trainer.name)])
    params = [_option(s, getattr(shown, s.name)) for s in specs]
    params += [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None,
                                 annotation=hint) for name, hint in HOST_OPTIONS.items()]
    params += [inspect.Parameter("plan", inspect.Parameter.KEYWORD_ONLY, default=False,
                                 annotation=PlanOpt),
               inspect.Parameter("fmt", inspect.Parameter.KEYWORD_ONLY, default="table",
                                 annotation=FormatOpt)]

    def command(**values: Any) -> None:
        registry().require(trainer.name, f"hw3 run {trainer.name}")
        as_json, show_plan = table_or_json(values.pop("fmt")), values.pop("plan")
        options = session.Options(**{k: values.pop(k) for k in HOST_OPTIONS})
        given = {k: v for k, v in values.items() if v is not None}
        if show_plan:
            print_plan(trainer.name, session.plan(trainer, given, options, defaults), as_json)
        elif as_json:
            raise ConfigError("hw3 run prints its progress for people; --format json goes "
                              "with --plan (a finished run: hw3 report RUN)")
        else:
            session.start(trainer, given, options, defaults)

    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in params}
    sub = typer.Typer(add_completion=False, rich_markup_mode=None)
    sub.command(trainer.name, help=f"{trainer.summary}\n\nDefaults: the dataclass, then "
                f"plugins.toml [{trainer.name}], then --config, then these options.")(command)
    return typer.main.get_command(sub)


PlanOpt = Annotated[bool, typer.Option(
    "--plan", help="Only state the protocol (trainings, epochs, images, FLOPs) and its "
    "projected wall time from a few timed steps; trains nothing, stores nothing.")]


def print_plan(name: str, plan: Any, as_json: bool) -> None:
    """``hw3 run NAME --plan``: the plan's lines, or its record as JSON."""
    if as_json:
        emit_json({"plugin": name, "plan": None if plan is None else plan.record()},
                  [] if plan is None else list(plan.warnings))
    elif plan is None:
        typer.echo(f"{name}: these settings train nothing; there is no cost to project")
    else:
        typer.echo("\n".join(plan.lines()))


def _option(spec: cfg.FieldSpec, default: Any) -> inspect.Parameter:
    source = f" (source: {spec.cite})" if spec.cite else ""
    limits = f"; {spec.range_text}" if spec.range_text else ""
    help_text = f"{spec.help}{source}  [default: {_shown(spec, default)}{limits}]".strip()
    if spec.kind is bool and not spec.sequence:
        decl = f"{spec.option}/--no-{spec.option[2:]}"
        hint: Any = Annotated[bool | None, typer.Option(decl, help=help_text)]
    else:
        hint = Annotated[str | None, typer.Option(spec.option, metavar=spec.metavar,
                                                  help=help_text)]
    return inspect.Parameter(spec.name, inspect.Parameter.KEYWORD_ONLY, default=None,
                             annotation=hint)


def _shown(spec: cfg.FieldSpec, default: Any) -> str:
    """A default as it would be typed: ``2,4,8`` for tuples, ``true`` for booleans."""
    if spec.sequence:
        return ",".join(map(str, default))
    return str(default).lower() if spec.kind is bool else str(default)


# -- hw3 runs / hw3 report -----------------------------------------------------------------
@app.command("runs")
@listing
def runs_cmd(runs_dir: RunsDir = None, fmt: FormatOpt = "table") -> None:
    """Past runs: state (running, finished, failed, interrupted), data and key result."""
    as_json = table_or_json(fmt)
    root = session.runs_root(runs_dir)
    found = RunStore(root).runs()
    if as_json:
        emit_json({"runs_dir": str(root), "runs": [_run_record(r) for r in found]},
                  [f"{r.ref}: damaged: {r.error}" for r in found if r.state == "damaged"])
        return
    console = PipeConsole()
    if not found:
        console.print(f"no runs under {root}", markup=False)
        return
    console.print(f"runs in {root}", markup=False, highlight=False, soft_wrap=True)
    width = min(console.width, 100)
    for r in found:  # the id on a line of its own: never cut, whatever the width
        lines = [r.ref, f"  {r.state}; data: {r.data}; started {r.started or '?'}"]
        lines += textwrap.wrap(r.headline or r.error, width, initial_indent="  ",
                               subsequent_indent="  ", break_long_words=False)
        console.print("\n".join(lines), markup=False, highlight=False, soft_wrap=True)


def _run_record(info: RunInfo) -> dict[str, Any]:
    return {"ref": info.ref, "plugin": info.plugin, "run_id": info.run_id,
            "dir": str(info.dir), "state": info.state, "started": info.started,
            "ended": info.ended, "data": info.data, "stand_in": info.stand_in,
            "stand_in_why": info.stand_in_why, "model_only": info.model_only,
            "headline": info.headline, "error": info.error}


@app.command("report")
@listing
def report_cmd(run: Annotated[str, typer.Argument(
        metavar="RUN", help="plugin/run-id, a run id, or a run directory.")],
               runs_dir: RunsDir = None,
               to: Annotated[Path | None, typer.Option(
                   "--to", metavar="DOCS", help="Also copy the summary, under a provenance "
                   "header, and the plots to DOCS/results/PLUGIN/ (replacing what was "
                   "there), e.g. --to docs.")] = None,
               fmt: FormatOpt = "table") -> None:
    """Regenerate a run's plots and Markdown summary from its stored results (an
    interrupted run's from the trainings it finished, marked partial)."""
    as_json = table_or_json(fmt)
    if to is not None and to.exists() and not to.is_dir():
        raise ConfigError(f"--to {to}: not a directory")
    info = RunStore(session.runs_root(runs_dir)).find(run)
    if to is not None:
        session.check_exportable(info)
    trainer = registry().get(info.plugin)
    needs = registry().needs(info.plugin)
    if needs is not None:  # plots need matplotlib, nothing else of the run's frameworks
        extra = "train" if needs.by_distribution else needs.extra  # hw3's plots: hw3's extra
        require(Needs(extra, ("matplotlib",)), f"hw3 report {info.ref}")
    path, summary = session.write_summary(trainer, info, locked=False)
    docs = session.export_to_docs(trainer, info, to) if to is not None else None
    if as_json:
        emit_json({"run": _run_record(info), "partial": info.state != "finished",
                   "summary": str(path),
                   "markdown": path.read_text(encoding="utf-8"),
                   "plots": [str(p) for p in summary.plots],
                   "docs": None if docs is None else str(docs)},
                  [f"{info.ref}: stand-in data: {info.stand_in_why or 'synthetic'}"]
                  if info.stand_in else [])
        return
    typer.echo(path.read_text(encoding="utf-8"), nl=False)
    for plot in summary.plots:
        typer.echo(f"plot: {plot}", err=True)
    if docs is not None:
        typer.echo(f"docs: {docs}", err=True)


# -- hw3 explain ------------------------------------------------------------------------------
@app.command("explain")
@listing
def explain_cmd(name: Annotated[str | None, typer.Argument(
        metavar="[NAME]", help="optimizers, scaling, cutout or depth-width; none: list "
        "them.")] = None, fmt: FormatOpt = "table") -> None:
    """The homework's written parts (update rules, scaling, Cutout, depth against width),
    as in the docs, with the numbers the docs compute."""
    from trainers import explain

    as_json = table_or_json(fmt)
    if name is None:
        if as_json:
            emit_json({"topics": [{"name": t.name, "title": t.title}
                                  for t in explain.TOPICS.values()]})
            return
        for t in explain.TOPICS.values():
            typer.echo(f"{t.name}\n  {t.title}")
        return
    found = explain.topic(name)
    text = explain.terminal_text(found.source())
    if as_json:
        emit_json({"name": found.name, "title": found.title, "text": text,
                   "rst": found.source()})
        return
    typer.echo(f"{found.title}\n\n{text}", nl=False)


def main(argv: list[str] | None = None) -> None:
    """The ``hw3`` script."""
    app(args=argv, prog_name="hw3")


if __name__ == "__main__":
    main()
