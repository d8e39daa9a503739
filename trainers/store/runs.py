"""Runs: create, resume, find and list run directories (:class:`RunStore`, :class:`RunInfo`),
and the :class:`Run` one process writes (state, config, metrics, results, checkpoints).

Every file is replaced whole (files.py) and a writer holds the run's lock (lock.py). A run
becomes ``finished`` only after results.json is on disk, so a half-written run is never
reported as finished. Metric appends are single ``write`` calls; each checkpoint records how
many metric lines it covers, and a resume cuts metrics.jsonl back to that line, but only once
checkpoints/last.json and the checkpoint it names have been read and checked: a damaged run
file is reported (DamagedRunError: the file, what is wrong, how to recover) and nothing of
the run is deleted, cut or marked.

Under torchrun every rank runs the same command; only rank 0 holds a :class:`Run`. The other
ranks hold a :class:`Follower`: same interface, nothing created, locked or written, and
checkpoints read from rank 0's directory when resuming.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from trainers.errors import RunError
from trainers.store.checkpoints import (
    LAST,
    Checkpoint,
    damaged,
    load_state,
    read_pointer,
    save_state,
)
from trainers.store.files import atomic_write, read_json
from trainers.store.lock import Lock, lock_holder
from trainers.store.logs import MetricLogs, read_records

STATES = ("running", "finished", "failed", "interrupted")
DAMAGED = "damaged"  # a run whose state.json or config.toml is unreadable: listed, never resumed


# -- reading runs ----------------------------------------------------------------------
@dataclass(frozen=True)
class RunInfo:
    """A stored run as ``hw3 runs`` shows it; ``state`` already accounts for dead writers."""

    plugin: str
    run_id: str
    dir: Path
    state: str
    started: str = ""
    ended: str = ""
    stand_in: bool = False
    stand_in_why: str = ""
    error: str = ""
    headline: str = ""
    model_only: bool = False  # results say no data was read at all (e.g. a cost model only)

    @property
    def ref(self) -> str:
        return f"{self.plugin}/{self.run_id}"

    @property
    def data(self) -> str:
        """What the run's numbers come from, as ``hw3 runs`` labels it: real data only when
        the run finished on it; "-" when the run stopped before saying."""
        if self.model_only:
            return "none (model only)"
        if self.stand_in:
            return "stand-in"
        return "real" if self.state == "finished" else "-"


def read_meta(folder: Path) -> dict[str, Any] | str:
    """state.json as a dict (empty if there is none yet), or what is wrong with it. It is
    always replaced whole, so text that is not JSON is damage, never a torn write."""
    path = folder / "state.json"
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        return f"state.json cannot be read ({exc.strerror or type(exc).__name__})"
    except UnicodeDecodeError:
        return "state.json is not UTF-8 text"
    try:
        meta = json.loads(text)
    except ValueError as exc:
        return f"state.json is not valid JSON ({exc})"
    if not isinstance(meta, dict):
        return f"state.json is not a JSON object (got {type(meta).__name__})"
    return meta


def config_problem(folder: Path) -> str:
    """What is wrong with a run's config.toml as a file (empty: a regular file, or none;
    a run without one is never found)."""
    path = folder / "config.toml"
    if path.is_file() or not path.exists():
        return ""
    return "config.toml is a directory, not a file" if path.is_dir() else \
        "config.toml is not a regular file"


def run_info(folder: Path) -> RunInfo:
    """Read a run directory; a 'running' run whose lock is free was interrupted, and one
    whose state.json or config.toml is unreadable is 'damaged' (its error says why)."""
    meta = read_meta(folder)
    problem = meta if isinstance(meta, str) else config_problem(folder)
    if problem or isinstance(meta, str):
        return RunInfo(folder.parent.name, folder.name, folder, DAMAGED, error=problem)
    results = read_json(folder / "results.json")
    state = recorded_state(meta, results)
    if state == "running" and lock_holder(folder / ".lock") is None:
        state = "interrupted"
    finished = state == "finished"
    return RunInfo(folder.parent.name, folder.name, folder, state, str(meta.get("started", "")),
                   str(meta.get("ended", "")), bool(meta.get("stand_in", False)),
                   str(meta.get("stand_in_why", "")), str(meta.get("error", "")),
                   headline(results) if finished else "",
                   finished and isinstance(results, dict) and results.get("model_only") is True)


def recorded_state(meta: Mapping[str, Any], results: Any) -> str:
    """The state as stored (no lock probe); 'finished' without readable results is
    'incomplete'."""
    state = str(meta.get("state", "interrupted"))
    return "incomplete" if state == "finished" and not isinstance(results, dict) else state


def headline(results: Any) -> str:
    """A run's key result: ``results["headline"]``, else its first scalar entry."""
    if not isinstance(results, dict):
        return ""
    if "headline" in results:
        return str(results["headline"])
    for key, value in results.items():
        if isinstance(value, int | float | str | bool):
            return f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}"
    return ""


class RunStore:
    """The runs root: create, resume, find and list runs."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def create(self, plugin: str) -> Run:
        for _ in range(100):
            folder = self.root / plugin / new_run_id()
            try:
                folder.mkdir(parents=True)
            except FileExistsError:
                continue
            return Run(folder, resumed=False)
        raise RunError(f"could not create a new run directory under {self.root / plugin}")

    def resume(self, plugin: str, ref: str) -> Run:
        info = self.find(ref, plugin)
        _check_resumable(plugin, info.ref, info.plugin, info.state)
        return Run(info.dir, resumed=True)

    def follow(self, plugin: str, ref: str | None = None) -> Follower:
        """The run as a rank > 0 of a torchrun job holds it: ``ref`` None for a new run
        (rank 0 creates the directory; the follower's path is never made or read), else the
        run rank 0 resumes, whose checkpoints the follower reads.

        Read-only on purpose: no directory, no lock, not even ``run_info``, whose shared
        flock probe of ``.lock`` could make rank 0's non-blocking lock fail if both met.
        """
        if ref is None:
            return Follower(self.root / plugin / "follower", resumed=False)
        folder = self.locate(ref, plugin)
        meta = read_meta(folder)
        state = DAMAGED if isinstance(meta, str) else \
            recorded_state(meta, read_json(folder / "results.json"))
        _check_resumable(plugin, f"{folder.parent.name}/{folder.name}", folder.parent.name,
                         state)
        return Follower(folder, resumed=True)

    def find(self, ref: str, plugin: str | None = None) -> RunInfo:
        """``ref`` is a run directory, ``plugin/run-id`` or a run id (unique across plugins)."""
        return run_info(self.locate(ref, plugin))

    def locate(self, ref: str, plugin: str | None = None) -> Path:
        """The directory of run ``ref`` (as :meth:`find` takes it), without reading it."""
        candidates = [Path(ref), self.root / ref]
        if plugin:
            candidates.append(self.root / plugin / ref)
        for folder in candidates:
            if (folder / "config.toml").exists():
                return _checked(folder)
        matches = [p for p in self.root.glob(f"*/{ref}") if (p / "config.toml").exists()]
        if len(matches) == 1:
            return _checked(matches[0])
        found = "several plugins have it" if matches else "no such run"
        raise RunError(f"run {ref!r}: {found} under {self.root} (see hw3 runs)")

    def runs(self) -> list[RunInfo]:
        folders = [p.parent for p in self.root.glob("*/*/config.toml")]
        return sorted((run_info(p) for p in folders), key=lambda r: (r.started, r.ref))


def _checked(folder: Path) -> Path:
    """``folder`` if its config.toml is a file; else the damage, named (not "no such run")."""
    problem = config_problem(folder)
    if problem:
        raise damaged(folder / "config.toml", problem.removeprefix("config.toml "),
                      "restore it from a backup; hw3 reads a run's settings from it")
    return folder


def _check_resumable(plugin: str, ref: str, owner: str, state: str) -> None:
    if owner != plugin:
        raise RunError(f"run {ref} belongs to plugin {owner!r}, not {plugin!r}")
    if state == "finished":
        raise RunError(f"run {ref} already finished; nothing to resume")
    if state == DAMAGED:
        raise RunError(f"run {ref}: its state.json is damaged (hw3 runs says how); restore "
                       "it from a backup, or delete it to let --resume rewrite it")


def new_run_id() -> str:
    """Sortable and unique enough: ``20250101-120000-1a2b``."""
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(2)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S")


# -- writing one run -------------------------------------------------------------------
class Run:
    """A run directory held by this process; use as a context manager to hold its lock."""

    writer = True  # this process records the run (False: a Follower, see there)

    def __init__(self, folder: Path, *, resumed: bool) -> None:
        self.dir = folder
        self.plugin, self.run_id = folder.parent.name, folder.name
        self.resumed = resumed
        self.stop_requested = False
        self._lock = Lock(folder / ".lock")
        self._metrics_fd: int | None = None
        self._lines = 0
        self._meta: dict[str, Any] = {}
        self._old: bytes | None = None  # state.json as this process found it
        self._cut_to: int | None = None  # metric lines to keep, once the resume is sure
        self._restored = False
        self._logs: MetricLogs | None = None  # metrics.csv and TensorBoard, made on first use

    @property
    def ref(self) -> str:
        return f"{self.plugin}/{self.run_id}"

    def __enter__(self) -> Run:
        self._lock.acquire()
        try:
            self._open()
        except BaseException:
            self._lock.release()
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._meta.get("state") == "running" and not self._restored:  # a crash
            self.set_state("interrupted" if kind is None or issubclass(kind, KeyboardInterrupt)
                           else "failed", error=repr(exc) if exc else "")
        if self._metrics_fd is not None:
            os.close(self._metrics_fd)
            self._metrics_fd = None
        if self._logs is not None:
            self._logs.close()
            self._logs = None
        self._lock.release()

    def _open(self) -> None:
        """Check what a resume reads (state.json, checkpoints/last.json, metrics.jsonl)
        before writing anything; metrics.jsonl is cut back to the checkpoint only when the
        run goes on from it (:meth:`_settle`)."""
        old = read_meta(self.dir)
        if isinstance(old, str):
            raise damaged(self.dir / "state.json", old, "restore it from a backup, or "
                          "delete it to let --resume rewrite it")
        with contextlib.suppress(FileNotFoundError):
            self._old = (self.dir / "state.json").read_bytes()
        self._meta = {"plugin": self.plugin, "run_id": self.run_id, "started": _now(),
                      "stand_in": False, "resumes": 0, **old}
        metrics = self.dir / "metrics.jsonl"
        lines = metrics.read_bytes().count(b"\n") if metrics.is_file() else 0
        if self.resumed:
            resumes = self._meta["resumes"]
            self._meta["resumes"] = (resumes if isinstance(resumes, int) else 0) + 1
            last = self.last_checkpoint()
            orphans = sorted((self.dir / "checkpoints").glob("epoch-*.pt"))
            if last is None and orphans:  # a restart from epoch 0 would delete them
                raise damaged(self.dir / "checkpoints" / LAST,
                              f"is missing, but {orphans[-1].name} is there",
                              f"write it as {{\"file\": \"{orphans[-1].name}\", \"epoch\": N, "
                              "\"metrics_lines\": L}, or remove checkpoints/ to restart from "
                              "epoch 0")
            self._cut_to = last["metrics_lines"] if last else 0
            if self._cut_to > lines:
                raise damaged(self.dir / "checkpoints" / LAST,
                              f"says its checkpoint covers {self._cut_to} metric lines, but "
                              f"metrics.jsonl has {lines}")
        self._metrics_fd = os.open(metrics, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._lines = lines
        self.set_state("running", pid=os.getpid(), error="", ended="")

    def _settle(self) -> None:
        """On a resume, cut metrics.jsonl back to the checkpoint's lines: done on the first
        write or once the checkpoint has loaded, never before the resume is known to work."""
        if self._cut_to is None or self._metrics_fd is None:
            return
        os.close(self._metrics_fd)
        self._metrics_fd = None
        self._cut_metrics(self._cut_to)
        metrics = self.dir / "metrics.jsonl"
        self._metrics_fd = os.open(metrics, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._lines, self._cut_to = self._cut_to, None
        if self._logs is not None:
            self._logs.close()
            self._logs = None
        self._metric_logs()  # metrics.csv and TensorBoard cut back with it

    def restore(self) -> None:
        """Put state.json back as this process found it (a resume that could not start)."""
        self._restored = True
        if self._old is None:
            (self.dir / "state.json").unlink(missing_ok=True)
        else:
            atomic_write(self.dir / "state.json", self._old)

    def set_state(self, state: str, **fields: Any) -> None:
        assert state in STATES, state
        self._meta.update(fields, state=state)
        atomic_write(self.dir / "state.json", json.dumps(self._meta, indent=1) + "\n")

    def mark_stand_in(self, why: str) -> None:
        self.set_state(self._meta.get("state", "running"), stand_in=True, stand_in_why=why)

    def write_config(self, text: str) -> None:
        atomic_write(self.dir / "config.toml", text)

    def append_metric(self, record: Mapping[str, Any]) -> None:
        """One line of metrics.jsonl, written by one ``write`` call."""
        assert self._metrics_fd is not None, "run not open"
        self._settle()
        assert self._metrics_fd is not None
        logs = self._metric_logs()  # built from the lines before this one
        os.write(self._metrics_fd, (json.dumps(record) + "\n").encode("utf-8"))
        self._lines += 1
        logs.append(record)

    def _metric_logs(self) -> MetricLogs:
        """metrics.csv and the TensorBoard files, rebuilt from metrics.jsonl when this process
        first writes (or cuts) it, so they always show what metrics.jsonl holds."""
        if self._logs is None:
            self._logs = MetricLogs(self.dir, read_records(self.dir / "metrics.jsonl"))
        return self._logs

    def _cut_metrics(self, lines: int) -> None:
        path = self.dir / "metrics.jsonl"
        if path.is_file():
            kept = path.read_bytes().split(b"\n")[:lines]
            atomic_write(path, b"".join(line + b"\n" for line in kept))

    def finish(self, results: Mapping[str, Any]) -> None:
        """Store results, then (only then) mark the run finished."""
        text = self._results_json(results)
        self._settle()
        atomic_write(self.dir / "results.json", text + "\n")
        self.set_state("finished", ended=_now())

    def _results_json(self, results: Mapping[str, Any]) -> str:
        try:
            return json.dumps(results, indent=1, sort_keys=False)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"results of {self.plugin!r} are not JSON-able: {exc}") from exc

    # -- checkpoints -------------------------------------------------------------------
    def save_checkpoint(self, epoch: int, model: Any, optimizer: Any = None,
                        scheduler: Any = None, extra: Mapping[str, Any] | None = None) -> None:
        """Save the state after ``epoch`` completed epochs; after a first Ctrl-C, stop here.

        Saves model, optimizer and scheduler state dicts, the RNG states of python, numpy and
        torch, and ``extra`` (plain data), then points checkpoints/last.json at the file.
        """
        assert self._metrics_fd is not None, "run not open"
        self._settle()
        assert self._metrics_fd is not None
        os.fsync(self._metrics_fd)
        folder = self.dir / "checkpoints"
        name = f"epoch-{epoch:06d}.pt"
        save_state(folder / name, epoch, model, optimizer, scheduler, dict(extra or {}))
        atomic_write(folder / LAST, json.dumps({"file": name, "epoch": epoch,
                                                "metrics_lines": self._lines}) + "\n")
        for old in folder.glob("epoch-*.pt"):
            if old.name != name:
                old.unlink(missing_ok=True)
        if self.stop_requested:
            raise KeyboardInterrupt(f"stopped after the checkpoint of epoch {epoch}")

    def last_checkpoint(self) -> dict[str, Any] | None:
        """checkpoints/last.json checked (``file``, ``epoch``, ``metrics_lines``); None if
        there is none; DamagedRunError if it is damaged."""
        return read_pointer(self.dir / "checkpoints")

    def load_checkpoint(self, model: Any, optimizer: Any = None,
                        scheduler: Any = None) -> Checkpoint | None:
        """Restore the last checkpoint into the given objects (and the RNGs); None if none."""
        last = self.last_checkpoint()
        if last is None:
            return None
        path = self.dir / "checkpoints" / str(last["file"])
        epoch, extra = load_state(path, model, optimizer, scheduler, last["epoch"])
        self._settle()
        return Checkpoint(epoch, extra)

    def request_stop(self) -> bool:
        """First Ctrl-C: stop at the next checkpoint. False if this run never checkpoints."""
        self.stop_requested = True
        return (self.dir / "checkpoints" / LAST).exists()


class Follower(Run):
    """A run as a rank > 0 of a torchrun job holds it: it trains, rank 0 records.

    torchrun starts every rank with the same command line, so without this each rank would
    create (or, resuming, fight over the lock of) a run directory. A follower creates, locks
    and writes nothing: state, config, metrics, checkpoints and results go nowhere (rank 0
    records the same run), so a Ctrl-C or a crash on a follower cannot touch rank 0's files
    either. Resuming, it reads the checkpoint from the shared run directory, so every rank
    starts from the one rank 0 loads. Stop requests behave as the writer's (stop after the
    next checkpoint), so on Ctrl-C all ranks leave at the same epoch and none waits in a
    collective for a rank that already quit.
    """

    writer = False

    def __init__(self, folder: Path, *, resumed: bool) -> None:
        super().__init__(folder, resumed=resumed)
        self._checkpointed = False  # whether save_checkpoint ran (rank 0 saved one)

    def __enter__(self) -> Follower:
        return self  # no lock: rank 0 holds it

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        return None

    def set_state(self, state: str, **fields: Any) -> None:
        assert state in STATES, state
        self._meta.update(fields, state=state)  # kept in memory only

    def write_config(self, text: str) -> None:
        return None

    def append_metric(self, record: Mapping[str, Any]) -> None:
        self._lines += 1

    def finish(self, results: Mapping[str, Any]) -> None:
        self._results_json(results)  # fail as rank 0 would on results it cannot store
        self.set_state("finished", ended=_now())

    def save_checkpoint(self, epoch: int, model: Any, optimizer: Any = None,
                        scheduler: Any = None, extra: Mapping[str, Any] | None = None) -> None:
        """Nothing is saved (rank 0 saves the same state); a requested stop still stops."""
        self._checkpointed = True
        if self.stop_requested:
            raise KeyboardInterrupt(f"stopped after the checkpoint of epoch {epoch}")

    def last_checkpoint(self) -> dict[str, Any] | None:
        """Rank 0's last checkpoint when resuming; a new run's follower has none to read."""
        return super().last_checkpoint() if self.resumed else None

    def request_stop(self) -> bool:
        self.stop_requested = True
        return self._checkpointed or \
            (self.resumed and (self.dir / "checkpoints" / LAST).exists())


class Checkpoints:
    """The part of a run a plugin may use (``ctx.checkpoints``): save and load its
    checkpoints, and see whether a Ctrl-C asked it to stop. Never the run's own files."""

    def __init__(self, run: Run) -> None:
        self._run = run

    def save(self, epoch: int, model: Any, optimizer: Any = None, scheduler: Any = None,
             extra: Mapping[str, Any] | None = None) -> None:
        """See :meth:`Run.save_checkpoint`; after a first Ctrl-C this raises KeyboardInterrupt."""
        self._run.save_checkpoint(epoch, model, optimizer, scheduler, extra)

    def load(self, model: Any, optimizer: Any = None, scheduler: Any = None
             ) -> Checkpoint | None:
        """Restore the last checkpoint into the given objects (and the RNGs); None if none."""
        return self._run.load_checkpoint(model, optimizer, scheduler)

    def last(self) -> dict[str, Any] | None:
        """The last checkpoint's pointer (``epoch``, ``file``) without loading it."""
        return self._run.last_checkpoint()

    @property
    def stop_requested(self) -> bool:
        return self._run.stop_requested
