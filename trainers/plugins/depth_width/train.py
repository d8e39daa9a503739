"""The sweep engine: one configuration trained with its data on the device, and a pool of
worker processes that trains several configurations at once.

Why it is fast: the data set is generated once per process and kept on the device; an epoch
gathers it by one on-device permutation and its batches are slices of that (no DataLoader,
no per-sample indexing); the loss is read back once per epoch, not per step. On a CPU each
worker process is pinned to its own core with one torch thread, so the configurations run
side by side instead of fighting over threads; on a GPU the same processes share the device
(their small kernels interleave; one tiny MLP alone cannot fill a GPU). A configuration's
batch order and initialisation depend only on the seed and its widths, so its result does
not depend on which worker trains it, or in what order.
"""

from __future__ import annotations

import math
import os
import queue
import signal
import sys
import time
import traceback
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import torch
from torch import nn

from trainers.counts import build_model
from trainers.plugins.depth_width.problem import SPEC, Arch, DataSpec, Scaler, make_data, rmse
from trainers.runtime import Timer

Record = dict[str, Any]
EVAL_CHUNK = 20_000  # rows per forward pass in evaluation (memory only)
PROGRESS_S = 0.5  # a worker reports finished epochs at most this often


@dataclass(frozen=True)
class Hyper:
    """The optimisation settings every configuration shares."""

    batch_size: int
    epochs: int
    lr: float
    momentum: float
    schedule: str  # "cosine" (to 0 over the epochs, stepped per epoch) or "constant"


@dataclass(frozen=True)
class Job:
    """One configuration to train; plain data, so it can cross to a worker process."""

    arch: Arch
    seed: int
    hyper: Hyper
    data: DataSpec
    device: str


def job_seed(base: int, arch: Arch) -> int:
    """A seed of the run's seed and the widths alone (stable across processes and orders)."""
    return zlib.crc32(f"{base}:{arch.key}".encode())


# -- data on the device -------------------------------------------------------------------
@dataclass(frozen=True)
class ScaledData:
    """Scaled float32 tensors on the device, and the original targets for RMSE."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_train_orig: np.ndarray
    y_test_orig: np.ndarray
    scaler: Scaler


@lru_cache(maxsize=2)
def device_data(spec: DataSpec, device: str) -> ScaledData:
    """The data set of ``spec`` on ``device``, made once per process."""
    data = make_data(spec)
    scaler = Scaler.fit(data, spec.x_range)

    def put(a: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(a, dtype=torch.float32).to(device)

    return ScaledData(put(scaler.x(data.x_train)), put(scaler.y(data.y_train)).unsqueeze(1),
                      put(scaler.x(data.x_test)), data.y_train, data.y_test, scaler)


# -- one configuration ----------------------------------------------------------------------
def build(arch: Arch, seed: int, device: str) -> nn.Module:
    """The spec's network with torch's default initialisation drawn from ``seed``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_model(SPEC, arch.spec_params())
    return model.to(device)


def optimizer(model: nn.Module, hyper: Hyper,
              ) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler | None]:
    opt = torch.optim.SGD(model.parameters(), lr=hyper.lr, momentum=hyper.momentum,
                          nesterov=True, foreach=True)
    if hyper.schedule == "cosine":
        return opt, torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=hyper.epochs)
    return opt, None


def train(job: Job, progress: Callable[[int], None] | None = None) -> Record:
    """Train one configuration; ``progress(n)`` hears of every ``n`` finished epochs."""
    data = device_data(job.data, job.device)
    model = build(job.arch, job.seed, job.device)
    opt, sched = optimizer(model, job.hyper)
    gen = torch.Generator(device=job.device).manual_seed(job.seed)
    cpu = time.process_time()
    with Timer(job.device) as timer:
        epochs = fit(model, opt, sched, data, job.hyper, gen, progress)
    cpu = time.process_time() - cpu  # beside wall time: shows waiting on a busy machine
    diverged = epochs < job.hyper.epochs
    return {"key": job.arch.key, "widths": list(job.arch.widths), "layers": job.arch.depth,
            "units": job.arch.units, "epochs": epochs, "diverged": diverged,
            "train_time_s": round(timer.seconds, 4), "train_cpu_s": round(cpu, 4),
            "seed": job.seed,
            **({"test_rmse": None, "train_rmse": None} if diverged else evaluate(model, data))}


def fit(model: nn.Module, opt: torch.optim.Optimizer,
        sched: torch.optim.lr_scheduler.LRScheduler | None, data: ScaledData, hyper: Hyper,
        gen: torch.Generator, progress: Callable[[int], None] | None) -> int:
    """SGD over slices of a fresh on-device permutation each epoch (the last partial batch is
    dropped: batch norm needs more than one sample); returns the epochs run, fewer only if
    the loss stopped being finite."""
    n, bs = data.x_train.shape[0], hyper.batch_size
    ends = range(bs, n + 1, bs)
    if not ends:
        raise ValueError(f"{n} training points make no batch of {bs}")
    model.train()
    for epoch in range(hyper.epochs):
        perm = torch.randperm(n, generator=gen, device=data.x_train.device)
        xs, ys = data.x_train[perm], data.y_train[perm]
        for end in ends:
            loss = nn.functional.mse_loss(model(xs[end - bs:end]), ys[end - bs:end])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if sched is not None:
            sched.step()
        if not math.isfinite(loss.item()):  # one sync per epoch
            return epoch
        if progress is not None:
            progress(1)
    return hyper.epochs


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor) -> np.ndarray:
    model.eval()
    parts = [model(x[i:i + EVAL_CHUNK]).double().cpu().numpy() for i in
             range(0, x.shape[0], EVAL_CHUNK)]
    return np.concatenate(parts).ravel() if parts else np.zeros(0)


def evaluate(model: nn.Module, data: ScaledData) -> dict[str, float]:
    """Training and test RMSE in the original units, with batch norm's running statistics."""
    return {"test_rmse": rmse(predict(model, data.x_test), data.y_test_orig, data.scaler),
            "train_rmse": rmse(predict(model, data.x_train), data.y_train_orig, data.scaler)}


# -- many configurations --------------------------------------------------------------------
class WorkerError(RuntimeError):
    """A worker process failed; the message holds its traceback or exit code."""


def default_workers(device: str) -> int:
    """One process per usable CPU core (on a GPU, they share the device)."""
    if device.startswith("mps"):
        return 1
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else \
        os.cpu_count() or 1


def run_jobs(jobs: Sequence[Job], workers: int, on_done: Callable[[Record], None],
             on_epochs: Callable[[int], None], stop: Callable[[], bool]) -> None:
    """Train ``jobs``, calling ``on_done`` as each finishes; one worker trains in this
    process, more train in worker processes. ``stop()`` true: raise KeyboardInterrupt."""
    if workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            if stop():
                raise KeyboardInterrupt("stop requested")
            on_done(train(job, on_epochs))
        return
    _pooled(jobs, min(workers, len(jobs)), on_done, on_epochs, stop)


def _pooled(jobs: Sequence[Job], workers: int, on_done: Callable[[Record], None],
            on_epochs: Callable[[int], None], stop: Callable[[], bool]) -> None:
    import multiprocessing as mp

    context: Any = mp.get_context(start_method(jobs[0].device))  # fork or spawn: both have Process
    tasks, out = context.Queue(), context.Queue()
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    procs = [context.Process(target=_worker, args=(i, cores, tasks, out), daemon=True)
             for i in range(workers)]
    try:
        for p in procs:  # before the first put: the queue's feeder thread is not forked
            p.start()
        for job in [*jobs, *[None] * workers]:
            tasks.put(job)
        _collect(len(jobs), out, procs, on_done, on_epochs, stop)
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()
        for p in procs:
            if p.pid is not None:
                p.join(timeout=10)


def start_method(device: str) -> str:
    """fork on a Linux CPU: a worker starts in milliseconds, not the ~1.5 s of importing
    torch again, and (as in DataLoader workers) it sets one thread before any torch work.
    spawn elsewhere: CUDA cannot survive a fork, and macOS forks are unsafe."""
    return "fork" if device == "cpu" and sys.platform == "linux" else "spawn"


def _collect(remaining: int, out: Any, procs: Sequence[Any], on_done: Callable[[Record], None],
             on_epochs: Callable[[int], None], stop: Callable[[], bool]) -> None:
    while remaining:
        if stop():
            raise KeyboardInterrupt("stop requested")
        try:
            kind, payload = out.get(timeout=PROGRESS_S)
        except queue.Empty:
            dead = [p for p in procs if p.exitcode not in (None, 0)]
            if dead:
                raise WorkerError(f"worker {dead[0].name} died with exit code "
                                  f"{dead[0].exitcode}") from None
            continue
        if kind == "epochs":
            on_epochs(payload)
        elif kind == "done":
            remaining -= 1
            on_done(payload)
        else:
            raise WorkerError(payload)


class _Throttled:
    """Sums finished epochs and sends them at most every PROGRESS_S seconds."""

    def __init__(self, out: Any) -> None:
        self.out, self.pending, self.last = out, 0, time.monotonic()

    def __call__(self, n: int) -> None:
        self.pending += n
        if time.monotonic() - self.last >= PROGRESS_S:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            self.out.put(("epochs", self.pending))
        self.pending, self.last = 0, time.monotonic()


def _worker(index: int, cores: list[int], tasks: Any, out: Any) -> None:
    """A worker process: pinned to one core, one torch thread, Ctrl-C left to the parent."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if cores and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {cores[index % len(cores)]})
    torch.set_num_threads(1)
    while (job := tasks.get()) is not None:
        progress = _Throttled(out)
        try:
            record = train(job, progress)
        except Exception:  # any failure goes back to the parent with its traceback
            out.put(("error", f"configuration {job.arch.key}: {traceback.format_exc()}"))
            return
        progress.flush()
        out.put(("done", record))
