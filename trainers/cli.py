"""The ``hw3`` command: list, run, runs, report, and the ``data`` sub-app.

``hw3 run NAME`` is a lazy group: each plugin becomes a command whose options are generated
from its config dataclass, so no plugin writes flags. ``hw3 list`` and ``hw3 --help`` read
metadata and import plugins, which import frameworks only inside ``run``; the data sub-app
and the run machinery (torch, through runtime and checkpoints) load only when used. User
mistakes (any Hw3Error) become one line on stderr and exit code 2; Ctrl-C exits 130.

``hw3 run`` runs unchanged under torchrun: every rank trains, but only rank 0 (``RANK``,
``WORLD_SIZE``) creates, locks and writes the run directory and prints; the other ranks are
quiet followers that write nothing and, on ``--resume``, read rank 0's checkpoint.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from typer.core import TyperGroup

from trainers import config as cfg
from trainers.api import ReportContext, RunContext, Summary, Trainer
from trainers.errors import ConfigError, Hw3Error, PluginError, RunError
from trainers.progress import Progress, make_table
from trainers.registry import ENV, registry
from trainers.store import (
    Lock,
    Run,
    RunInfo,
    RunStore,
    atomic_write,
    interrupt_guard,
    read_json,
    run_info,
)

RUNS_ENV = "HW3_RUNS"
DATA_HELP = "Datasets: fetch, fake (synthetic stand-ins) and info for cifar10, fashion-mnist."
EXAMPLES = ("hw3 list", "hw3 run NAME --help", "hw3 run NAME --epochs 2 --seed 1",
            "hw3 run NAME --resume RUN", "hw3 runs", "hw3 report RUN",
            "hw3 data fake cifar10 --n 500")


# -- the edge: user mistakes -> one line + exit 2 ----------------------------------------
@contextmanager
def edge() -> Iterator[None]:
    """Turn hw3's user errors into a message on stderr and exit code 2."""
    try:
        yield
    except Hw3Error as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


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
        rows = [(e.name, e.summary if e.status == "ok" else f"[{e.status}] {e.error}")
                for e in registry().entries() if e.status != "blocked"]
        with formatter.section("Plugins"):
            formatter.write_dl(rows or [("(none)", "no plugins in entry-point group "
                                                    "hw3.trainers (see hw3 list)")])


app = typer.Typer(
    cls=Hw3Group, name="hw3", no_args_is_help=True, add_completion=False,
    rich_markup_mode=None,
    help="Reproducible training experiments: plugins of entry-point group hw3.trainers.",
    epilog="Examples:\n\n\b\n" + "\n".join(f"  {e}" for e in EXAMPLES))
run_app = typer.Typer(
    cls=RunGroup, no_args_is_help=True, add_completion=False, rich_markup_mode=None,
    help="Run a plugin: hw3 run NAME [OPTIONS]; options come from its config (NAME --help).")
app.add_typer(run_app, name="run")

RunsDir = Annotated[Path | None, typer.Option(
    "--runs-dir", metavar="DIR", help=f"Where runs live; default ${RUNS_ENV}, else ./runs.")]


def runs_root(explicit: Path | None) -> Path:
    return explicit or Path(os.environ.get(RUNS_ENV) or "runs")


# -- hw3 list ----------------------------------------------------------------------------
@app.command("list")
def list_cmd() -> None:
    """The installed plugins, their package, status and summary (broken ones with errors)."""
    console = Console()
    entries = registry().entries()
    if not entries:
        console.print("no plugins installed in entry-point group 'hw3.trainers'")
        return
    path = cfg.defaults_path()
    doc = cfg.read_toml(path) if path.is_file() else {}
    rows = [{"plugin": e.name, "status": _status(e.status, doc, e.name, path),
             "package": e.package, "summary": e.summary} for e in entries]
    console.print(make_table("hw3 plugins", rows))
    for e in entries:
        if e.status == "error":
            console.print(f"error: {e.error}", markup=False, highlight=False, soft_wrap=True)
        elif e.status == "blocked":
            console.print(f"{e.name}: not loaded ({ENV} does not list it)", markup=False)


def _status(status: str, doc: dict[str, Any], name: str, path: Path) -> str:
    if status == "ok" and not cfg.is_enabled(doc, name, str(path)):
        return "disabled"
    return status


# -- hw3 run NAME --------------------------------------------------------------------------
@dataclass(frozen=True)
class Host:
    """The options of ``hw3 run`` that belong to the host, not to a plugin's config."""

    config: Path | None = None
    resume: str | None = None
    device: str | None = None
    seed: int | None = None
    deterministic: bool | None = None
    data_dir: Path | None = None
    runs_dir: Path | None = None


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
    defaults = _defaults_doc()
    shown = cfg.resolve(trainer.config_type, [_defaults_layer(trainer.name, defaults)])
    params = [_option(s, getattr(shown, s.name)) for s in specs]
    params += [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None,
                                 annotation=hint) for name, hint in HOST_OPTIONS.items()]

    def command(**values: Any) -> None:
        host = Host(**{k: values.pop(k) for k in HOST_OPTIONS})
        given = {k: v for k, v in values.items() if v is not None}
        start(trainer, {s.name: s for s in specs}, given, host)

    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in params}
    sub = typer.Typer(add_completion=False, rich_markup_mode=None)
    sub.command(trainer.name, help=f"{trainer.summary}\n\nDefaults: the dataclass, then "
                f"plugins.toml [{trainer.name}], then --config, then these options.")(command)
    return typer.main.get_command(sub)


def _option(spec: cfg.FieldSpec, default: Any) -> inspect.Parameter:
    help_text = f"{spec.help}  [default: {_shown(spec, default)}]".strip()
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


def _defaults_doc() -> tuple[Path, dict[str, Any]]:
    path = cfg.defaults_path()
    return path, cfg.read_toml(path) if path.is_file() else {}


def _defaults_layer(name: str, defaults: tuple[Path, dict[str, Any]]) -> cfg.Layer:
    path, doc = defaults
    return f"{path} [{name}]", cfg.plugin_table(doc, name, str(path))


def build_config(trainer: Trainer[Any], specs: dict[str, cfg.FieldSpec],
                 given: dict[str, Any], overlay: Path | None) -> Any:
    """dataclass <- plugins.toml [NAME] <- --config FILE <- options given on the CLI."""
    name, defaults = trainer.name, _defaults_doc()
    layers = [_defaults_layer(name, defaults)]
    enabled = cfg.is_enabled(defaults[1], name, str(defaults[0]))
    if overlay is not None:
        doc = cfg.read_toml(overlay)
        layers.append((str(overlay), cfg.overlay_table(doc, name, str(overlay))))
        if name in doc:
            enabled = cfg.is_enabled(doc, name, str(overlay))
    if not enabled:
        raise PluginError(f"plugin {name!r} is disabled (enabled = false in {defaults[0]}); "
                          f"set enabled = true there or in a --config file")
    cli = {k: v if isinstance(v, bool) else cfg.parse_option(specs[k], v)
           for k, v in given.items()}
    return cfg.resolve(trainer.config_type, [*layers, ("command line", cli)])


def start(trainer: Trainer[Any], specs: dict[str, cfg.FieldSpec], given: dict[str, Any],
          host: Host) -> None:
    """Resolve everything that can be wrong before a run directory exists, then launch.

    Under torchrun every rank gets this same command line; rank 0 alone creates the run,
    the others follow it without writing (one run directory per job, not one per rank).
    """
    from trainers import runtime

    leader = runtime.distributed_rank()[0] == 0
    store = RunStore(runs_root(host.runs_dir))
    if host.resume is not None:
        resume(trainer, store, given, host, leader=leader)
        return
    config = build_config(trainer, specs, given, host.config)
    settings = _settings(host, {})
    preflight(trainer, config, settings)
    run = store.create(trainer.name) if leader else store.follow(trainer.name)
    launch(trainer, run, config, settings)


def resume(trainer: Trainer[Any], store: RunStore, given: dict[str, Any], host: Host, *,
           leader: bool = True) -> None:
    """Continue a run with its saved config; --device and --data-dir may change.

    A follower (torchrun rank > 0) opens the same run read-only: rank 0 holds its lock."""
    extra = [f"--{k.replace('_', '-')}" for k in given] + \
        [o for o, v in (("--config", host.config), ("--seed", host.seed),
                        ("--deterministic", host.deterministic)) if v is not None]
    if extra:
        raise ConfigError(f"--resume continues with the run's saved config; drop "
                          f"{', '.join(extra)}")
    run = store.resume(trainer.name, str(host.resume)) if leader else \
        store.follow(trainer.name, str(host.resume))
    doc = cfg.read_toml(run.dir / "config.toml")
    source = f"{run.dir / 'config.toml'} [{trainer.name}]"
    config = cfg.resolve(trainer.config_type,
                         [(source, cfg.plugin_table(doc, trainer.name, source))])
    settings = _settings(host, doc.get("hw3", {}))
    preflight(trainer, config, settings)
    launch(trainer, run, config, settings)


def preflight(trainer: Trainer[Any], config: Any, settings: dict[str, Any]) -> None:
    """Before a run starts (or resumes): the plugin's declared datasets are on disk and its
    own ``check`` (if any) passes, so a mistake found here leaves no run directory behind."""
    from trainers.data.catalog import require

    for name in getattr(trainer, "datasets", ()):
        require(name, settings["data_dir"])
    check = getattr(trainer, "check", None)
    if check is not None:
        check(config, settings["device"], settings["data_dir"])


def _settings(host: Host, saved: dict[str, Any]) -> dict[str, Any]:
    """Host settings: given options, else the resumed run's saved ones, else defaults."""
    from trainers import runtime
    from trainers.data.catalog import resolve_data_dir

    device = host.device or str(saved.get("device_requested", "auto"))
    data_dir = host.data_dir or saved.get("data_dir")
    return {"device_requested": device, "device": runtime.select_device(device),
            "seed": host.seed if host.seed is not None else int(saved.get("seed", 0)),
            "deterministic": bool(host.deterministic if host.deterministic is not None
                                  else saved.get("deterministic", False)),
            "data_dir": str(resolve_data_dir(data_dir))}


def launch(trainer: Trainer[Any], run: Run, config: Any, host: dict[str, Any]) -> None:
    """Lock the run, train, store results (then mark finished) and write the report.

    A follower's run writes nothing, and its console is silent, so a torchrun job prints
    and records each line once (rank 0's); a follower returns without a summary.
    """
    from trainers import runtime

    console = Console() if run.writer else Console(quiet=True, force_terminal=False)
    with run:
        if not run.resumed:
            run.write_config(cfg.to_toml({"hw3": {"plugin": trainer.name, **host},
                                          trainer.name: cfg.config_values(config)}))
        runtime.seed_everything(host["seed"], host["deterministic"])
        progress = Progress(console, sink=run.append_metric)
        ctx = RunContext(run, progress, host["device"], host["seed"], Path(host["data_dir"]),
                         resumed=run.resumed)
        progress.note(f"{'resuming' if run.resumed else 'starting'} run {run.ref} "
                      f"({run.dir}) on {host['device']}, seed {host['seed']}")
        results = _train(trainer, config, ctx)
        run.finish(results)
        if not run.writer:
            return
        summary_path, _ = write_summary(trainer, run_info(run.dir), locked=True)
    console.print(f"finished {run.ref}; summary: {summary_path}", markup=False,
                  highlight=False)


def _train(trainer: Trainer[Any], config: Any, ctx: RunContext) -> dict[str, Any]:
    run = ctx.run
    try:
        with interrupt_guard(run, ctx.progress.note), ctx.progress:
            results = trainer.run(config, ctx)
    except KeyboardInterrupt:
        run.set_state("interrupted")
        ctx.progress.note(f"interrupted; continue with: hw3 run {trainer.name} "
                          f"--resume {run.run_id}")
        raise typer.Exit(130) from None
    except Exception as exc:
        run.set_state("failed", error=f"{type(exc).__name__}: {exc}")
        raise
    if not isinstance(results, dict):
        raise PluginError(f"plugin {trainer.name!r}: run() returned "
                          f"{type(results).__name__}, expected a dict of results")
    return results


# -- hw3 runs / hw3 report -----------------------------------------------------------------
@app.command("runs")
def runs_cmd(runs_dir: RunsDir = None) -> None:
    """Past runs: state (running, finished, failed, interrupted), data and key result."""
    root = runs_root(runs_dir)
    found = RunStore(root).runs()
    console = Console()
    if not found:
        console.print(f"no runs under {root}", markup=False)
        return
    rows = [{"run": r.ref, "state": r.state, "started": r.started,
             "data": "stand-in" if r.stand_in else "real",
             "result": r.headline or r.error} for r in found]
    console.print(make_table(f"runs in {root}", rows))


@app.command("report")
def report_cmd(run: Annotated[str, typer.Argument(
        metavar="RUN", help="plugin/run-id, a run id, or a run directory.")],
               runs_dir: RunsDir = None,
               to: Annotated[Path | None, typer.Option(
                   "--to", metavar="DOCS", help="Also copy the summary, under a provenance "
                   "header, and the plots to DOCS/results/PLUGIN/ (replacing what was "
                   "there), e.g. --to docs.")] = None) -> None:
    """Regenerate a finished run's plots and Markdown summary from its stored results."""
    info = RunStore(runs_root(runs_dir)).find(run)
    trainer = registry().get(info.plugin)
    path, summary = write_summary(trainer, info, locked=False)
    typer.echo(path.read_text(encoding="utf-8"), nl=False)
    for plot in summary.plots:
        typer.echo(f"plot: {plot}", err=True)
    if to is not None:
        typer.echo(f"docs: {export_to_docs(trainer, info, to)}", err=True)


def export_to_docs(trainer: Trainer[Any], info: RunInfo, docs: Path) -> Path:
    """Copy summary.md (under a provenance header) and plots/ to DOCS/results/PLUGIN/."""
    import shutil

    target = docs / "results" / info.plugin
    staging = target.with_name(f".{info.plugin}.export")
    shutil.rmtree(staging, ignore_errors=True)
    if (info.dir / "plots").is_dir():
        shutil.copytree(info.dir / "plots", staging / "plots")
    summary = (info.dir / "summary.md").read_text(encoding="utf-8")
    atomic_write(staging / "summary.md", provenance(trainer, info) + "\n" + summary)
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return target


def provenance(trainer: Trainer[Any], info: RunInfo) -> str:
    """A Markdown table: run id, dataset (real or stand-in), hardware, epochs, changes."""
    doc = cfg.read_toml(info.dir / "config.toml")
    host, values = doc.get("hw3", {}), doc.get(info.plugin, {})
    protocol = cfg.config_values(cfg.resolve(
        trainer.config_type, [_defaults_layer(trainer.name, _defaults_doc())]))
    results = read_json(info.dir / "results.json") or {}
    key = next((k for k in ("epochs", "max_epochs") if k in values), None)
    epochs = "(no epochs setting)" if key is None else str(values[key])
    if key is not None and values[key] < protocol.get(key, 0):
        epochs += f" (reduced: the protocol in plugins.toml says {protocol[key]})"
    changed = [f"{k} = {v}" for k, v in values.items() if protocol.get(k) != v]
    rows = [("Run", f"{info.ref}, {info.started} to {info.ended}"),
            ("Dataset", f"stand-in: synthetic data in the real format ({info.stand_in_why})"
             if info.stand_in else "real"),
            ("Hardware", _hardware(results.get("hardware"), host)),
            ("Epochs", epochs), ("Seed", str(host.get("seed", "?"))),
            ("Changed from plugins.toml", "; ".join(changed) or "nothing: the full protocol"),
            ("Refresh", f"hw3 report {info.ref} --to docs")]
    lines = [f"<!-- exported by hw3 report {info.ref} --to docs -->", "",
             "| Provenance | |", "|:--|:--|"]
    lines += [f"| {k} | {v.replace('|', '/')} |" for k, v in rows]
    return "\n".join(lines) + "\n"


def _hardware(recorded: Any, host: dict[str, Any]) -> str:
    """A plugin's hardware record as one phrase: its text, or a record's ``description``."""
    from trainers.runtime import hardware_text

    return hardware_text(recorded) or \
        f"device {host.get('device', '?')} (the run records no hardware model)"


def write_summary(trainer: Trainer[Any], info: RunInfo, *, locked: bool) -> tuple[Path, Summary]:
    """Call the plugin's ``report`` on the stored results; write summary.md atomically."""
    if info.state != "finished":
        raise RunError(f"run {info.ref} is {info.state}; only a finished run has results")
    lock = Lock(info.dir / ".lock")
    if not locked:
        lock.acquire()
    try:
        doc = cfg.read_toml(info.dir / "config.toml")
        source = f"{info.dir / 'config.toml'} [{trainer.name}]"
        config = cfg.resolve(trainer.config_type,
                             [(source, cfg.plugin_table(doc, trainer.name, source))])
        rctx = ReportContext(info, config, info.dir / "plots", info.stand_in)
        summary = trainer.report(read_json(info.dir / "results.json"), rctx)
        path = info.dir / "summary.md"
        atomic_write(path, summary_text(info, summary))
    finally:
        lock.release()
    return path, summary


def summary_text(info: RunInfo, summary: Summary) -> str:
    """The plugin's Markdown with a stand-in banner and links to plots it did not mention."""
    parts = [f"<!-- hw3 report {info.ref}: generated from results.json -->"]
    if info.stand_in:
        why = f" ({info.stand_in_why})" if info.stand_in_why else ""
        parts.append(f"> **Stand-in data{why}.** These numbers come from synthetic data, "
                     "not from the real dataset.")
    parts.append(summary.markdown.strip())
    links = [p for p in summary.plots if p.name not in summary.markdown]
    if links:
        parts.append("## Plots\n\n" + "\n".join(
            f"- ![{p.stem}]({_relative(p, info.dir)})" for p in links))
    return "\n\n".join(parts) + "\n"


def _relative(path: Path, base: Path) -> str:
    try:
        return str(path.resolve().relative_to(base.resolve()))
    except ValueError:
        return str(path)


def main(argv: list[str] | None = None) -> None:
    """The ``hw3`` script."""
    app(args=argv, prog_name="hw3")


if __name__ == "__main__":
    main()
