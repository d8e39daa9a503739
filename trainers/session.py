"""The run lifecycle behind ``hw3 run`` and ``hw3 report``: start, resume, preflight, launch,
summary and export to the docs. Front ends (the CLI, tests, a notebook) fill :class:`Options`
and call :func:`start`; nothing here parses options or prints errors.

A run's settings come in two typed parts: the plugin's config dataclass (layered by
trainers.config) and the host's :class:`HostSettings`, stored together in the run's
config.toml. Everything that can be wrong is found before a run directory exists.

Under torchrun every rank runs the same command line; rank 0 alone creates, locks and writes
the run directory and prints, the other ranks are quiet followers that write nothing and, on
``--resume``, read rank 0's checkpoint.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from trainers import config as cfg
from trainers.api import WORKDIR, ReportContext, RunContext, Summary, Trainer
from trainers.errors import (
    ConfigError,
    DamagedRunError,
    PluginError,
    RunError,
    RunInterrupted,
)
from trainers.plan import Plan
from trainers.progress import Progress
from trainers.reporting import PARTIAL_KEY, partial_banner
from trainers.store import (
    Checkpoints,
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


@dataclass(frozen=True)
class Options:
    """What a user asked of the host for one ``hw3 run`` (None: not given)."""

    config: Path | None = None
    resume: str | None = None
    device: str | None = None
    seed: int | None = None
    deterministic: bool | None = None
    data_dir: Path | None = None
    runs_dir: Path | None = None


@dataclass(frozen=True)
class HostSettings:
    """The host's settings of one run, resolved; config.toml's ``[hw3]`` table."""

    device_requested: str
    device: str
    seed: int
    deterministic: bool
    data_dir: str

    @classmethod
    def resolve(cls, options: Options, saved: Mapping[str, Any]) -> HostSettings:
        """Given options, else the resumed run's saved ones, else the defaults."""
        from trainers import runtime
        from trainers.data.catalog import resolve_data_dir

        device = options.device or saved.get("device_requested", "auto")
        seed = options.seed if options.seed is not None else saved.get("seed", 0)
        deterministic = options.deterministic if options.deterministic is not None \
            else saved.get("deterministic", False)
        data_dir = options.data_dir or saved.get("data_dir")
        for key, value, kind in (("device_requested", device, str), ("seed", seed, int),
                                 ("deterministic", deterministic, bool),
                                 ("data_dir", data_dir, (str, Path, type(None)))):
            if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
                raise ConfigError(f"[hw3] {key}: got {value!r} ({type(value).__name__}); "
                                  "the run's config.toml is damaged")
        check_seed(seed)
        return cls(device_requested=device, device=runtime.select_device(device), seed=seed,
                   deterministic=deterministic, data_dir=str(resolve_data_dir(data_dir)))


SEED_LIMIT = 2**32  # numpy takes 32-bit seeds; plugins add to them


def check_seed(seed: int) -> None:
    if not 0 <= seed < SEED_LIMIT:
        raise ConfigError(f"option --seed: expected an integer from 0 to {SEED_LIMIT - 1}, "
                          f"got {seed}")


def runs_root(explicit: Path | None) -> Path:
    return explicit or Path(os.environ.get(RUNS_ENV) or "runs")


# -- starting and resuming ---------------------------------------------------------------
def build_config(trainer: Trainer[Any], given: Mapping[str, Any], overlay: Path | None,
                 defaults: cfg.Defaults) -> Any:
    """dataclass <- plugins.toml [NAME] <- --config FILE <- options given on the CLI.

    ``given`` holds option values as typed (strings; booleans already parsed)."""
    name = trainer.name
    specs = {s.name: s for s in cfg.field_specs(trainer.config_type)}
    layers = [defaults.layer(name)]
    enabled = defaults.enabled(name)
    if overlay is not None:
        doc = cfg.read_toml(overlay)
        layers.append((str(overlay), cfg.overlay_table(doc, name, str(overlay))))
        if name in doc:
            enabled = cfg.is_enabled(doc, name, str(overlay))
    if not enabled:
        raise PluginError(f"plugin {name!r} is disabled (enabled = false in {defaults.path}); "
                          f"set enabled = true there or in a --config file")
    cli = {k: v if isinstance(v, bool) else cfg.parse_option(specs[k], v)
           for k, v in given.items()}
    return cfg.resolve(trainer.config_type, [*layers, ("command line", cli)])


def start(trainer: Trainer[Any], given: Mapping[str, Any], options: Options,
          defaults: cfg.Defaults | None = None) -> Path | None:
    """Resolve everything that can be wrong before a run directory exists, then launch;
    returns the summary's path (None on a torchrun follower)."""
    from trainers import runtime

    leader = runtime.distributed_rank()[0] == 0
    store = RunStore(runs_root(options.runs_dir))
    if options.resume is not None:
        return resume(trainer, store, given, options, leader=leader)
    config = build_config(trainer, given, options.config, defaults or cfg.Defaults.load())
    settings = HostSettings.resolve(options, {})
    preflight(trainer, config, settings)
    run = store.create(trainer.name) if leader else store.follow(trainer.name)
    return launch(trainer, run, config, settings)


def plan(trainer: Trainer[Any], given: Mapping[str, Any], options: Options,
         defaults: cfg.Defaults | None = None) -> Plan | None:
    """``hw3 run NAME --plan``: the run these options would start, resolved and checked as
    :func:`start` does, counted and timed on a few steps; no run directory is made. None:
    the settings train nothing (``--show``, ``--model-only``)."""
    if options.resume is not None:
        raise ConfigError("--plan states a new run's cost; drop --resume")
    config = build_config(trainer, given, options.config, defaults or cfg.Defaults.load())
    settings = HostSettings.resolve(options, {})
    preflight(trainer, config, settings)
    if getattr(trainer, "plan", None) is None:
        raise PluginError(f"plugin {trainer.name!r} cannot project its cost (it has no plan)")
    return make_plan(trainer, config, settings)


def make_plan(trainer: Trainer[Any], config: Any, settings: HostSettings) -> Plan | None:
    """The plugin's plan for ``config`` on the run's device (None: no plan member, or
    settings that train nothing)."""
    planner = getattr(trainer, "plan", None)
    if planner is None:
        return None
    found = planner(config, settings.device, settings.data_dir)
    return found if isinstance(found, Plan) else None


def resume(trainer: Trainer[Any], store: RunStore, given: Mapping[str, Any], options: Options,
           *, leader: bool = True) -> Path | None:
    """Continue a run with its saved config; --device and --data-dir may change.

    A follower (torchrun rank > 0) opens the same run read-only: rank 0 holds its lock."""
    extra = [f"--{k.replace('_', '-')}" for k in given] + \
        [o for o, v in (("--config", options.config), ("--seed", options.seed),
                        ("--deterministic", options.deterministic)) if v is not None]
    if extra:
        raise ConfigError(f"--resume continues with the run's saved config; drop "
                          f"{', '.join(extra)}")
    run = store.resume(trainer.name, str(options.resume)) if leader else \
        store.follow(trainer.name, str(options.resume))
    config, saved = stored_config(trainer, run.dir)
    settings = HostSettings.resolve(options, saved)
    preflight(trainer, config, settings)
    return launch(trainer, run, config, settings)


def stored_config(trainer: Trainer[Any], folder: Path) -> tuple[Any, dict[str, Any]]:
    """The plugin config and the host's saved settings of the run in ``folder``."""
    path = folder / "config.toml"
    doc = cfg.read_toml(path)
    host, table = doc.get("hw3"), doc.get(trainer.name)
    if not isinstance(host, dict) or not isinstance(table, dict) or \
            host.get("plugin") != trainer.name:
        raise DamagedRunError(f"{path}: damaged: expected an [hw3] table with plugin = "
                              f"{trainer.name!r} and a [{trainer.name}] table, as hw3 wrote "
                              "it; nothing was changed (restore it from a backup, or start "
                              "a new run)")
    source = f"{path} [{trainer.name}]"
    config = cfg.resolve(trainer.config_type, [(source, cfg.plugin_table(doc, trainer.name,
                                                                          source))])
    return config, dict(host)


def preflight(trainer: Trainer[Any], config: Any, settings: HostSettings) -> None:
    """Before a run starts (or resumes): the plugin's declared datasets are on disk and its
    own ``check`` (if any) passes, so a mistake found here leaves no run directory behind."""
    from trainers.data.catalog import require

    for name in getattr(trainer, "datasets", ()):
        require(name, settings.data_dir)
    check = getattr(trainer, "check", None)
    if check is not None:
        check(config, settings.device, settings.data_dir)


# -- one run ---------------------------------------------------------------------------------
def launch(trainer: Trainer[Any], run: Run, config: Any, settings: HostSettings) -> Path | None:
    """Lock the run, train, store results (then mark finished) and write the summary.

    A follower's run writes nothing, and its console is silent, so a torchrun job prints
    and records each line once (rank 0's); a follower returns without a summary.
    """
    from trainers import runtime

    console = RunConsole() if run.writer else RunConsole(quiet=True, force_terminal=False)
    with run:
        if not run.resumed:
            run.write_config(cfg.to_toml({"hw3": {"plugin": trainer.name, **asdict(settings)},
                                          trainer.name: cfg.config_values(config)}))
        progress = Progress(console, sink=run.append_metric)
        ctx = RunContext(progress, Checkpoints(run), run.dir / WORKDIR, run.ref,
                         settings.device, settings.seed, Path(settings.data_dir),
                         resumed=run.resumed, on_stand_in=run.mark_stand_in)
        costs: list[Plan] = []
        begun: list[float] = []

        def begin() -> None:
            progress.note(f"{'resuming' if run.resumed else 'starting'} run {run.ref} "
                          f"({run.dir}) on {settings.device}, seed {settings.seed}")
            cost = make_plan(trainer, config, settings) if run.writer else None
            runtime.seed_everything(settings.seed, settings.deterministic)  # after timing
            if cost is not None:
                costs.append(cost)
                progress.note(cost.line())
                for message in cost.warnings:
                    progress.warn(message)
            begun.append(time.monotonic())

        results = train(trainer, config, ctx, run, begin)
        if costs:  # the projection beside what this run took after it (a whole run only)
            measured = None if run.resumed else round(time.monotonic() - begun[0], 3)
            results["plan"] = {**costs[0].record(), "measured_s": measured}
        if progress.warnings:
            results["warnings"] = list(progress.warnings)
        run.finish(results)
        if not run.writer:
            return None
        summary_path, _ = write_summary(trainer, run_info(run.dir), config=config, locked=True)
    console.print(f"finished {run.ref}; summary: {summary_path}", markup=False,
                  highlight=False)
    return summary_path


class RunConsole(Console):
    """rich's Console, but a closed output pipe (``hw3 run ... | head``) raises
    BrokenPipeError, which leaves the run interrupted, instead of rich's SystemExit(1)."""

    def on_broken_pipe(self) -> None:
        raise BrokenPipeError("the output pipe was closed")


def train(trainer: Trainer[Any], config: Any, ctx: RunContext, run: Run,
          begin: Callable[[], None] = lambda: None) -> dict[str, Any]:
    """``begin`` (the first lines, the plan's calibration, seeding) and the plugin's ``run``
    under the Ctrl-C guard; the run's state follows what happened (a pipe closed or a
    Ctrl-C while the first lines print leaves it interrupted too)."""
    try:
        with interrupt_guard(run, ctx.progress.note), ctx.progress:
            begin()
            results = trainer.run(config, ctx)
    except DamagedRunError:
        run.restore()  # a checkpoint that cannot be resumed from: the run is as it was
        raise
    except BrokenPipeError:  # hw3 run ... | head: the reader left, the run is intact
        run.set_state("interrupted", error="stopped: its output pipe was closed",
                      **_warned(ctx))
        raise
    except KeyboardInterrupt:
        run.set_state("interrupted", **_warned(ctx))
        ctx.progress.note(f"interrupted; continue with: hw3 run {trainer.name} "
                          f"--resume {run.run_id}")
        raise RunInterrupted(run.ref) from None
    except Exception as exc:
        run.set_state("failed", error=f"{type(exc).__name__}: {exc}", **_warned(ctx))
        if isinstance(exc, OSError) and exc.filename is not None:  # a full disk, say
            raise RunError(f"{exc.filename}: {exc.strerror or type(exc).__name__}; the run "
                           "keeps its last checkpoint: once fixed, continue with hw3 run "
                           f"{trainer.name} --resume {run.run_id}") from None
        raise
    if not isinstance(results, dict):
        raise PluginError(f"plugin {trainer.name!r}: run() returned "
                          f"{type(results).__name__}, expected a dict of results")
    return results


def _warned(ctx: RunContext) -> dict[str, Any]:
    """The run's warnings so far, for state.json when it stops without results."""
    return {"warnings": list(ctx.progress.warnings)} if ctx.progress.warnings else {}


# -- summaries and the docs ------------------------------------------------------------------
PARTIAL_STATES = ("interrupted", "failed")  # stopped runs whose checkpoint may hold results


@dataclass(frozen=True)
class Partial:
    """What an unfinished run's report covers: ``finished`` of ``total`` ``unit``."""

    finished: int
    total: int
    unit: str


def stored_results(trainer: Trainer[Any], info: RunInfo) -> tuple[dict[str, Any], Partial | None]:
    """A finished run's results.json; for an interrupted (or failed) run, the results of the
    trainings its last checkpoint holds, which the plugin keeps under
    :data:`trainers.reporting.PARTIAL_KEY` of the checkpoint's extra as each one ends."""
    if info.state == "finished":
        return read_json(info.dir / "results.json"), None
    resume_hint = f"resume with hw3 run {trainer.name} --resume {info.run_id}"
    if info.state not in PARTIAL_STATES:
        raise RunError(f"run {info.ref} is {info.state}; only a finished or stopped run has "
                       "results to report")
    if not getattr(trainer, "reports_partial", False):
        raise RunError(f"run {info.ref} is {info.state}, and plugin {trainer.name!r} keeps no "
                       f"results of unfinished runs; {resume_hint}")
    snapshot = checkpoint_extra(info.dir).get(PARTIAL_KEY)
    if snapshot is None:
        raise RunError(f"run {info.ref} is {info.state} with nothing finished yet; "
                       f"{resume_hint}")
    mark = snapshot.get("partial") if isinstance(snapshot, dict) else None
    try:
        counts = Partial(int(mark["finished"]), int(mark["total"]), str(mark["unit"])) \
            if isinstance(mark, dict) else None
    except (KeyError, TypeError, ValueError):
        counts = None
    if counts is None:
        raise DamagedRunError(f"{info.dir / 'checkpoints'}: its {PARTIAL_KEY!r} has no "
                              f"'partial' count (finished, total, unit); {resume_hint}")
    return dict(snapshot), counts


def checkpoint_extra(folder: Path) -> dict[str, Any]:
    """The plain-data extra of a run's last checkpoint, read without restoring anything
    (``weights_only``, so no code runs); empty when the run has no checkpoint."""
    from trainers.store.checkpoints import damaged, read_pointer

    last = read_pointer(folder / "checkpoints")
    if last is None:
        return {}
    import torch

    path = folder / "checkpoints" / str(last["file"])
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several kinds for a bad file
        raise damaged(path, f"cannot be read as a checkpoint ({exc})") from None
    extra = state.get("extra") if isinstance(state, dict) else None
    if not isinstance(extra, dict):
        raise damaged(path, "holds no 'extra' dict")
    return extra


def write_summary(trainer: Trainer[Any], info: RunInfo, *, locked: bool,
                  config: Any = None) -> tuple[Path, Summary]:
    """Call the plugin's ``report`` on the stored results; write summary.md atomically.
    ``config`` is the run's (read from its config.toml when not given). An interrupted run
    is reported from the trainings it finished, under a PARTIAL banner."""
    lock = Lock(info.dir / ".lock")
    if not locked:
        lock.acquire()
    try:
        results, partial = stored_results(trainer, info)
        if config is None:
            config, _ = stored_config(trainer, info.dir)
        rctx = ReportContext(info, config, info.dir / "plots", info.stand_in)
        source = info.dir / ("results.json" if partial is None else "checkpoints")
        try:
            summary = trainer.report(results, rctx)
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
            raise DamagedRunError(
                f"{source}: does not hold what plugin {trainer.name!r} "
                f"reports on ({type(exc).__name__}: {exc}); rerun the experiment, or restore "
                "the file from a backup") from None
        path = info.dir / "summary.md"
        atomic_write(path, summary_text(info, summary, partial))
    finally:
        lock.release()
    return path, summary


def summary_text(info: RunInfo, summary: Summary, partial: Partial | None = None) -> str:
    """The plugin's Markdown with a partial-run and a stand-in banner, and links to plots it
    did not mention."""
    source = "results.json" if partial is None else "the last checkpoint (partial run)"
    parts = [f"<!-- hw3 report {info.ref}: generated from {source} -->"]
    if partial is not None:
        parts.append(partial_banner(partial.finished, partial.total, partial.unit,
                                    info.plugin, info.run_id))
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


def check_exportable(info: RunInfo) -> None:
    """The docs show finished runs only: a partial one would stand in for the answer."""
    if info.state != "finished":
        raise ConfigError(f"--to: run {info.ref} is {info.state}; the docs show finished "
                          f"runs only (resume it with hw3 run {info.plugin} --resume "
                          f"{info.run_id}, or report it without --to)")


def export_to_docs(trainer: Trainer[Any], info: RunInfo, docs: Path) -> Path:
    """Copy summary.md (under a provenance header) and plots/ to DOCS/results/PLUGIN/."""
    check_exportable(info)
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
        trainer.config_type, [cfg.Defaults.load().layer(trainer.name)]))
    results = read_json(info.dir / "results.json") or {}
    key = next((k for k in ("epochs", "max_epochs") if k in values), None)
    epochs = "(no epochs setting)" if key is None else str(values[key])
    if key is not None and values[key] < protocol.get(key, 0):
        epochs += f" (reduced: the protocol in plugins.toml says {protocol[key]})"
    changed = [f"{k} = {v}" for k, v in values.items() if protocol.get(k) != v]
    rows = [("Run", f"{info.ref}, {info.started} to {info.ended}"),
            ("Dataset", f"stand-in: synthetic data in the real format ({info.stand_in_why})"
             if info.stand_in else "real"),
            ("Hardware", hardware_phrase(results.get("hardware"), host)),
            ("Epochs", epochs), ("Seed", str(host.get("seed", "?"))),
            ("Changed from plugins.toml", "; ".join(changed) or "nothing: the full protocol"),
            ("Refresh", f"hw3 report {info.ref} --to docs")]
    lines = [f"<!-- exported by hw3 report {info.ref} --to docs -->", "",
             "| Provenance | |", "|:--|:--|"]
    lines += [f"| {k} | {v.replace('|', '/')} |" for k, v in rows]
    return "\n".join(lines) + "\n"


def hardware_phrase(recorded: Any, host: Mapping[str, Any]) -> str:
    """A plugin's hardware record as one phrase: its text, or a record's ``description``."""
    from trainers.runtime import hardware_text

    return hardware_text(recorded) or \
        f"device {host.get('device', '?')} (the run records no hardware model)"
