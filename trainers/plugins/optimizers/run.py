"""The ten trainings of the ``optimizers`` plugin, one after another, resumable at any epoch.

The run is one sequence of epochs across trainings: the checkpoint after epoch e of training
k is "epoch" k * epochs + e of the run, and carries the finished trainings' records and the
current one's history. A resume rebuilds training k, loads its model, optimizer and RNG
states, and continues; a checkpoint at a training's last epoch starts the next one fresh.
Each epoch records the mean minibatch loss and objective, a full pass of the deterministic
network over the training set, test loss and accuracy, and the training time alone.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from trainers import data as datasets
from trainers.api import RunContext
from trainers.counts import model_counts
from trainers.data import DeviceData
from trainers.plan import TRAIN_FLOPS_PER_FORWARD, Calibration, Plan, time_steps
from trainers.plugins.optimizers.config import Config, hyperparameters
from trainers.plugins.optimizers.report import best_by_variant, result_rows
from trainers.plugins.optimizers.train import (
    SPEC,
    build_mlp,
    deterministic,
    evaluate,
    l2_penalty,
    make_optimizer,
    penalised_weights,
    step_function,
    to_device,
    train_epoch,
)
from trainers.progress import Bar
from trainers.reporting import PARTIAL_KEY, partial_results
from trainers.runtime import Timer, compile_seconds, hardware, keep_freed_memory

Job = tuple[str, str]  # (variant, method)
Snapshot = Callable[[list[dict[str, Any]]], dict[str, Any]]


@dataclass(frozen=True, eq=False)
class Pending:
    """A training a checkpoint left half done: its index, restored states and history."""

    index: int
    model: nn.Sequential
    optimizer: torch.optim.Optimizer
    history: list[dict[str, Any]]


def jobs(config: Config) -> list[Job]:
    """The trainings in order: every method with L2, then every method with dropout."""
    return [(v, m) for v in config.variants for m in config.methods]


def build(config: Config, job: Job, device: str) -> tuple[nn.Sequential, torch.optim.Optimizer]:
    """A fresh model (torch's default initialisation) on ``device`` and its optimizer."""
    variant, method = job
    drop = (config.dropout_input, config.dropout_hidden, config.dropout_hidden)
    model = build_mlp(config.hidden, drop if variant == "dropout" else None,
                      config.dropout_style).to(device)
    return model, make_optimizer(method, model, hyperparameters(config, method),
                                 config.weight_decay)


def run_all(config: Config, ctx: RunContext) -> dict[str, Any]:
    """Train every (variant, method) pair; return the records ``report`` works from."""
    ds = datasets.load("cifar10", ctx.data_dir)
    if ds.synthetic:
        ctx.use_stand_in(ds.summary)
    data = to_device(ds, ctx.device)
    if ctx.device == "cpu":
        keep_freed_memory()
    plan = jobs(config)
    done, pending = restore(config, ctx, plan)

    def snapshot(finished: list[dict[str, Any]]) -> dict[str, Any]:
        """The finished trainings as results, for hw3 report on an interrupted run."""
        return {PARTIAL_KEY: partial_results(assemble(config, ctx, ds.summary, finished),
                                             len(finished), len(plan), "trainings")} \
            if finished else {}

    with ctx.progress.bar("trainings", total=len(plan), unit="run") as bar:
        bar.skip(len(done))
        for k in range(len(done), len(plan)):
            start = pending if pending is not None and pending.index == k else None
            done.append(train_one(config, ctx, data, plan, k, done, start, bar, snapshot))
    results = assemble(config, ctx, ds.summary, done)
    for title, rows in result_rows(done):
        ctx.progress.table(title, rows)
    return results


def restore(config: Config, ctx: RunContext, plan: list[Job]) -> tuple[list[Any], Pending | None]:
    """Finished trainings and the half-done one from the last checkpoint (none: fresh)."""
    last = ctx.checkpoints.last()
    if last is None:
        return [], None
    k = (int(last["epoch"]) - 1) // config.epochs
    model, optimizer = build(config, plan[k], ctx.device)
    state = ctx.checkpoints.load(model, optimizer)
    assert state is not None
    done = list(state.extra["done"])
    if len(done) > k:  # training k had finished: the next one starts fresh
        return done, None
    return done, Pending(k, model, optimizer, list(state.extra["history"]))


def train_one(config: Config, ctx: RunContext, data: DeviceData, plan: list[Job], k: int,
              done: list[Any], pending: Pending | None, trainings: Bar,
              snapshot: Snapshot) -> dict[str, Any]:
    """Train ``plan[k]`` to the last epoch, checkpointing after each; return its record.
    ``trainings`` advances before the last checkpoint, so a Ctrl-C there (which stops at
    it) shows the count the checkpoint holds. Every checkpoint carries ``snapshot`` of the
    trainings finished by then."""
    variant, method = plan[k]
    if pending is None:
        model, optimizer = build(config, plan[k], ctx.device)
        history: list[dict[str, Any]] = []
    else:
        model, optimizer, history = pending.model, pending.optimizer, pending.history
    weights = penalised_weights(model)
    step, how = step_function(optimizer, method, config.step, ctx.device)

    def penalty() -> torch.Tensor:
        return l2_penalty(weights, config.weight_decay)

    n, record, kept = data.x_train.shape[0], None, snapshot(done)
    with ctx.progress.bar(f"{variant} {method}", total=config.epochs, unit="epoch") as bar:
        bar.skip(len(history))
        for epoch in range(len(history) + 1, config.epochs + 1):
            compiled_before = compile_seconds()
            with ctx.progress.bar("steps", total=n, unit="img") as steps, \
                    Timer(ctx.device) as timer:
                loss, objective = train_epoch(model, optimizer, data.x_train, data.y_train,
                                              config.batch_size, penalty, steps.advance, step)
            compiling = compile_seconds() - compiled_before  # first epoch: building kernels
            history.append({**measure(model, data, config, penalty, epoch, loss, objective,
                                      timer.seconds - compiling), "compile_s": compiling})
            ctx.progress.log({"variant": variant, "method": method, **history[-1]},
                             text=epoch_text(history[-1]))
            warn_if_diverged(ctx, f"{variant} {method}", history[-1])
            bar.advance()
            record = training_record(config, plan[k], history, how) \
                if epoch == config.epochs else None
            if record is not None:
                trainings.advance()
            extra = {"done": [*done, record], "history": [], **snapshot([*done, record])} \
                if record is not None else {"done": done, "history": history, **kept}
            ctx.checkpoints.save(k * config.epochs + epoch, model, optimizer, extra=extra)
    assert record is not None
    return record


def measure(model: nn.Sequential, data: DeviceData, config: Config,
            penalty: Callable[[], torch.Tensor], epoch: int, loss: float, objective: float,
            seconds: float) -> dict[str, Any]:
    """One epoch's record: the training pass's means, then the deterministic network's
    full-pass training loss (and objective, with the same penalty) and test results."""
    net = deterministic(model)
    full_loss, full_acc = evaluate(net, data.x_train, data.y_train, config.eval_batch)
    test_loss, test_acc = evaluate(net, data.x_test, data.y_test, config.eval_batch)
    with torch.no_grad():
        reg = float(penalty())
    return {"epoch": epoch, "train_loss": loss, "train_objective": objective,
            "full_train_loss": full_loss, "full_train_objective": full_loss + reg,
            "full_train_acc": full_acc, "test_loss": test_loss, "test_acc": test_acc,
            "train_s": seconds}


DIVERGED_LOSS = 1e3  # cross-entropy over 10 classes starts at ln 10 = 2.3; far above: diverged


def epoch_text(h: dict[str, Any]) -> str:
    """An epoch as people read it. Two training losses, named for what they are: the mean
    over the epoch's minibatches (dropout on, weights moving) and one full pass of the
    finished epoch's deterministic network (``train_loss`` and ``full_train_loss``)."""
    return (f"epoch {h['epoch']}: minibatch loss {h['train_loss']:.4g}, full-pass train "
            f"loss {h['full_train_loss']:.4g}, test acc {h['test_acc']:.1%}, "
            f"{h['train_s']:.1f} s")


def warn_if_diverged(ctx: RunContext, name: str, h: dict[str, Any]) -> None:
    """Flag a training whose loss is not finite or far above chance's (2.3)."""
    bad = [f"{label} {h[key]:.3g}" for key, label in (("train_loss", "minibatch loss"),
                                                     ("test_loss", "test loss"))
           if not math.isfinite(h[key]) or h[key] > DIVERGED_LOSS]
    if bad:
        ctx.progress.warn(f"{name} diverged at epoch {h['epoch']} ({', '.join(bad)}; chance "
                          "is 2.3): its curves are not a comparison of optimizers")


def training_record(config: Config, job: Job, history: list[dict[str, Any]],
                    step: str) -> dict[str, Any]:
    variant, method = job
    return {"variant": variant, "method": method,
            "hyperparameters": hyperparameters(config, method), "optimizer_step": step,
            "train_seconds": math.fsum(h["train_s"] for h in history),
            "history": list(history)}


def assemble(config: Config, ctx: RunContext, data_summary: str,
             done: list[dict[str, Any]]) -> dict[str, Any]:
    counts = model_counts(SPEC, params={"hidden": config.hidden})
    best = best_by_variant(done)
    headline = "; ".join(f"best {v}: {m} {loss:.4g}" for v, (m, loss) in best.items())
    return {"headline": headline, "device": ctx.device, "hardware": hardware(ctx.device).record(),
            "data": data_summary,
            "model": {"spec": SPEC, "hidden": config.hidden, "params": counts.params,
                      "flops_per_sample": counts.flops},
            "trainings": done}


def plan(config: Config, device: str, data_dir: str) -> Plan:
    """The trainings' size, archcalc's FLOPs of the MLP and a projection timed on a few
    real minibatch steps of the first training's model (eager optimizer step)."""
    ds = datasets.load("cifar10", data_dir)
    data = to_device(ds, device)
    n_train, n_test = data.x_train.shape[0], data.x_test.shape[0]
    trainings = jobs(config)
    epochs = len(trainings) * config.epochs
    train_images = epochs * n_train
    eval_images = epochs * (n_train + n_test)  # the full training pass and the test set
    forward = model_counts(SPEC, params={"hidden": config.hidden}).flops
    model, optimizer = build(config, trainings[0], device)
    weights = penalised_weights(model)
    batch = min(config.batch_size, n_train)
    x, y = data.x_train[:batch], data.y_train[:batch]

    def step() -> int:
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.detach() + l2_penalty(weights, config.weight_decay)  # the loop's objective
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return batch

    images, seconds = time_steps(step, device, steps=5)
    cal = Calibration(f"minibatch steps of the {config.hidden}-unit MLP at batch {batch} "
                      f"({trainings[0][1]}, eager)", "image", images, seconds, 1,
                      hardware(device).description)
    notes = (f"{'stand-in' if ds.synthetic else 'real'} data: {n_train:,} training and "
             f"{n_test:,} test images",
             f"each epoch also evaluates the full training set and the test set "
             f"(forward only, counted as 1/{TRAIN_FLOPS_PER_FORWARD} of a training image)",
             "not counted: compiling the optimizer step (rmsprop, rmsprop-nesterov, "
             "adadelta), seconds once per training; it weighs in short runs only")
    return Plan("optimizers", len(trainings), epochs, train_images, eval_images,
                float(forward) * (TRAIN_FLOPS_PER_FORWARD * train_images + eval_images),
                train_images + eval_images / TRAIN_FLOPS_PER_FORWARD, cal, notes=notes)
