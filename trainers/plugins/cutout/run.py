"""The trainings of the ``cutout`` plugin, one per M, resumable at any epoch; and the data of
the ``--show`` figure.

The run is one sequence of epochs across trainings: the checkpoint after epoch e of training
k is "epoch" k * epochs + e, carrying the finished trainings' records and the current one's
history. Under torchrun (``WORLD_SIZE`` > 1) each rank joins a process group (NCCL on CUDA,
gloo on CPU), wraps the model in DDP and augments its share of every step.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from trainers import data as datasets
from trainers.api import RunContext
from trainers.counts import model_counts
from trainers.data import DeviceData
from trainers.plan import TRAIN_FLOPS_PER_FORWARD, Calibration, Plan, time_steps
from trainers.plugins.cutout import examples
from trainers.plugins.cutout.augment import Augment
from trainers.plugins.cutout.config import Config
from trainers.plugins.cutout.train import (
    StepPlan,
    World,
    augmentation_generator,
    build,
    evaluate,
    graph,
    make_optimizer,
    train_epoch,
    train_step,
)
from trainers.progress import Bar
from trainers.reporting import PARTIAL_KEY, partial_results
from trainers.runtime import Timer, hardware, keep_freed_memory

Opt = tuple[torch.optim.SGD, torch.optim.lr_scheduler.MultiStepLR]
Snapshot = Callable[[list[dict[str, Any]]], dict[str, Any]]


def recipe(config: Config, m: int) -> Augment:
    """Standard augmentation; Cutout only with batch augmentation (M > 1)."""
    return Augment(pad=config.pad, cutout=config.cutout_size if m > 1 else 0)


def run_all(config: Config, ctx: RunContext) -> dict[str, Any]:
    """Train one ResNet per M (or draw the --show examples); return the records. A training
    run first keeps two examples of its Cutout in its work folder (examples.py)."""
    ds = datasets.load("cifar10", ctx.data_dir)
    if ds.synthetic:
        ctx.use_stand_in(ds.summary)
    if config.show:
        return show_examples(ds.train.x, config, ds.summary)
    world = setup_world(ctx.device)
    if world.rank == 0 and config.cutout_size:  # part 1's images, before any training
        examples.keep(ctx.workdir, ds.train.x, config.cutout_size, ctx.seed, ds.summary)
    cuda = ctx.device.startswith("cuda")
    if ctx.device == "cpu":
        keep_freed_memory()
    data = datasets.on_device(ds, ctx.device)
    done, pending = restore(config, ctx, world)
    if config.epochs > EPOCH_LIMIT:
        ctx.progress.warn(epoch_warning(config.epochs))

    def snapshot(finished: list[dict[str, Any]]) -> dict[str, Any]:
        """The finished trainings as results, for hw3 report on an interrupted run."""
        return {PARTIAL_KEY: partial_results(assemble(config, ctx, ds.summary, finished),
                                             len(finished), len(config.M), "trainings")} \
            if finished else {}

    with ctx.progress.bar("trainings", total=len(config.M), unit="run") as bar:
        bar.skip(len(done))
        for k in range(len(done), len(config.M)):
            start = pending if pending is not None and pending[0] == k else None
            done.append(train_one(config, ctx, data, k, done, start, world, cuda, bar,
                                  snapshot))
    return assemble(config, ctx, ds.summary, done)


def setup_world(device: str) -> World:
    """Join torchrun's process group when there is one."""
    world = World.from_env()
    if world.size > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    return world


def new_training(config: Config, ctx: RunContext, world: World,
                 cuda: bool) -> tuple[nn.Module, Opt]:
    model = build(config.depth, config.shortcut, ctx.device)
    if cuda and config.amp:
        model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    opt = make_optimizer(model, config.lr, config.momentum, config.weight_decay,
                         config.milestones, config.lr_decay)
    return model, opt


def wrap(model: nn.Module, config: Config, world: World, cuda: bool) -> nn.Module:
    """DDP and torch.compile around the model, as configured."""
    if world.size > 1:
        model = nn.parallel.DistributedDataParallel(model)
    if cuda and config.compile:
        model = torch.compile(model)  # type: ignore[assignment]
    return model


Pending = tuple[int, nn.Module, Opt, list[dict[str, Any]]]


def restore(config: Config, ctx: RunContext,
            world: World) -> tuple[list[dict[str, Any]], Pending | None]:
    """Finished trainings and the half-done one from the last checkpoint (none: fresh)."""
    last = ctx.checkpoints.last()
    if last is None:
        return [], None
    k = (int(last["epoch"]) - 1) // config.epochs
    model, (opt, sched) = new_training(config, ctx, world, ctx.device.startswith("cuda"))
    state = ctx.checkpoints.load(model, opt, sched)
    assert state is not None
    done = list(state.extra["done"])
    if len(done) > k:
        return done, None
    return done, (k, model, (opt, sched), list(state.extra["history"]))


def train_one(config: Config, ctx: RunContext, data: DeviceData, k: int,
              done: list[dict[str, Any]], pending: Pending | None, world: World,
              cuda: bool, trainings: Bar, snapshot: Snapshot) -> dict[str, Any]:
    """Train M = config.M[k] for every epoch, checkpointing after each; return its record.
    ``trainings`` advances before the last checkpoint, so a Ctrl-C there (which stops at
    it) shows the count the checkpoint holds. Every checkpoint carries ``snapshot`` of the
    trainings finished by then."""
    m = config.M[k]
    if pending is None:
        model, (opt, sched) = new_training(config, ctx, world, cuda)
        history: list[dict[str, Any]] = []
    else:
        _, model, (opt, sched), history = pending
    net = wrap(model, config, world, cuda)
    plan = StepPlan(m, recipe(config, m), config.micro_batch, cuda and config.amp,
                    cuda and config.amp)
    record: dict[str, Any] | None = None
    kept = snapshot(done)
    steps = config.steps or len(data.y_train) // config.batch_size
    with ctx.progress.bar(f"M={m}", total=config.epochs, unit="epoch") as bar:
        bar.skip(len(history))
        for epoch in range(len(history) + 1, config.epochs + 1):
            draws = augmentation_generator(ctx.device, ctx.seed, world.rank, k, epoch)
            with ctx.progress.bar("steps", total=steps, unit="step") as step_bar, \
                    Timer(ctx.device) as timer:
                loss = train_epoch(net, opt, data.x_train, data.y_train, config.batch_size,
                                   plan, config.steps, world, draws, step_bar.advance)
            sched.step()
            history.append(measure(net, data, config, plan, epoch, loss, timer.seconds,
                                   history))
            ctx.progress.log({"M": m, **history[-1]}, text=epoch_text(history[-1]))
            warn_if_diverged(ctx, m, history[-1])
            bar.advance()
            record = training_record(config, m, history) if epoch == config.epochs else None
            if record is not None:
                trainings.advance()
            extra = {"done": [*done, record], "history": [], **snapshot([*done, record])} \
                if record is not None else {"done": done, "history": history, **kept}
            ctx.checkpoints.save(k * config.epochs + epoch, model, opt, sched, extra)
    assert record is not None
    return record


def measure(model: nn.Module, data: DeviceData, config: Config, plan: StepPlan, epoch: int,
            loss: float, seconds: float, history: list[dict[str, Any]]) -> dict[str, Any]:
    """One epoch's record: training loss, validation loss, accuracy and error, and the
    cumulative training time (evaluation excluded)."""
    val_loss, val_acc = evaluate(model, data.x_test, data.y_test, plan.recipe,
                                 config.eval_batch, plan.amp)
    before = history[-1]["train_time_s"] if history else 0.0
    return {"epoch": epoch, "train_loss": loss, "val_loss": val_loss, "val_acc": val_acc,
            "val_error": 1 - val_acc, "train_time_s": before + seconds}


DIVERGED_LOSS = 1e3  # cross-entropy over 10 classes starts at ln 10 = 2.3; far above: diverged


def epoch_text(h: dict[str, Any]) -> str:
    """An epoch as people read it: the losses, the accuracy and the time."""
    return (f"epoch {h['epoch']}: train loss {h['train_loss']:.4g}, val loss "
            f"{h['val_loss']:.4g}, val acc {h['val_acc']:.1%}, {h['train_time_s']:.1f} s "
            "training so far")


def warn_if_diverged(ctx: RunContext, m: int, h: dict[str, Any]) -> None:
    """Flag a training whose loss is not finite or far above chance's: its errors and its
    time to target would otherwise read as results."""
    bad = [f"{name} {h[key]:.3g}" for key, name in (("train_loss", "training loss"),
                                                   ("val_loss", "validation loss"))
           if not math.isfinite(h[key]) or h[key] > DIVERGED_LOSS]
    if bad:
        ctx.progress.warn(f"M={m} diverged at epoch {h['epoch']} ({', '.join(bad)}; chance "
                          "is 2.3): its results are not a measurement of Cutout; lower "
                          "--lr or check the data")


def time_to_target(history: list[dict[str, Any]], target: float) -> dict[str, Any]:
    """The first epoch (and cumulative time) at ``target`` accuracy, else the best accuracy
    and the time for all epochs, marked ``reached: False``."""
    for h in history:
        if h["val_acc"] >= target:
            return {"reached": True, "epoch": h["epoch"], "time_s": h["train_time_s"],
                    "acc": h["val_acc"]}
    best = max(history, key=lambda h: h["val_acc"])
    return {"reached": False, "epoch": best["epoch"], "acc": best["val_acc"],
            "time_s": history[-1]["train_time_s"]}


def training_record(config: Config, m: int, history: list[dict[str, Any]]) -> dict[str, Any]:
    return {"M": m, "batch": m * config.batch_size, "cutout": recipe(config, m).cutout,
            "history": list(history),
            "target": time_to_target(history, config.target_accuracy)}


def assemble(config: Config, ctx: RunContext, data_summary: str,
             done: list[dict[str, Any]]) -> dict[str, Any]:
    counts = model_counts(graph(config.depth, config.shortcut))
    parts = [f"M={t['M']}: {'' if t['target']['reached'] else 'best '}"
             f"{t['target']['acc']:.3f} @ {t['target']['time_s']:.0f}s" for t in done]
    return {"headline": "; ".join(parts), "device": ctx.device,
            "hardware": hardware(ctx.device).record(), "data": data_summary,
            "target_accuracy": config.target_accuracy,
            "model": {"spec": f"resnet{config.depth}", "shortcut": config.shortcut,
                      "params": counts.params, "flops_per_sample": counts.flops},
            "trainings": done}


def show_examples(x: torch.Tensor, config: Config, data_summary: str) -> dict[str, Any]:
    """``config.show`` training images (uint8, as lists) and one Cutout box for each."""
    drawn = examples.pick(x, config.show, config.cutout_size or 16)
    return {"headline": f"{len(drawn['index'])} Cutout examples", "data": data_summary,
            "examples": drawn}


def plan(config: Config, device: str, data_dir: str) -> Plan | None:
    """The trainings' size, archcalc's FLOPs and a projection timed on a few real steps of
    the real ResNet at M = 1 (Cutout on) on ``device``; None for ``--show``."""
    if config.show:
        return None
    ds = datasets.load("cifar10", data_dir)
    n_train, n_test = len(ds.train), len(ds.test)
    steps = config.steps or n_train // config.batch_size
    train_images = config.epochs * steps * config.batch_size * sum(config.M)
    eval_images = len(config.M) * config.epochs * n_test
    forward = model_counts(graph(config.depth, config.shortcut)).flops
    model = build(config.depth, config.shortcut, device)
    opt, _ = make_optimizer(model, config.lr, config.momentum, config.weight_decay,
                            config.milestones, config.lr_decay)
    step_plan = StepPlan(1, recipe(config, 2), config.micro_batch)
    x = ds.train.x[:config.batch_size].to(device)
    y = ds.train.y[:config.batch_size].to(device)

    def step() -> int:
        train_step(model, opt, x, y, step_plan)
        return len(y)

    images, seconds = time_steps(step, device)
    notes = [f"{'stand-in' if ds.synthetic else 'real'} data: {n_train:,} training and "
             f"{n_test:,} test images" + (f" (CIFAR-10 has {CIFAR10_SIZES[0]:,} and "
                                          f"{CIFAR10_SIZES[1]:,}: the real protocol is "
                                          "larger)" if n_train < CIFAR10_SIZES[0] else "")]
    notes += [f"evaluation counted as 1/{TRAIN_FLOPS_PER_FORWARD} of a training image"
              " per image; each M's step costs M x B images"]
    cal = Calibration(f"train_step of ResNet-{config.depth} at B = {len(y)}, M = 1",
                      "image", images, seconds, 1, hardware(device).description)
    return Plan("cutout", len(config.M), len(config.M) * config.epochs, train_images,
                eval_images, float(forward) * (TRAIN_FLOPS_PER_FORWARD * train_images +
                                               eval_images),
                train_images + eval_images / TRAIN_FLOPS_PER_FORWARD, cal, notes=tuple(notes),
                warnings=(epoch_warning(config.epochs),) if config.epochs > EPOCH_LIMIT else ())


CIFAR10_SIZES = (50_000, 10_000)  # training and test images (Krizhevsky 2009)
EPOCH_LIMIT = 100  # the homework: "Do not run any experiment for more than 100 epochs"


def epoch_warning(epochs: int) -> str:
    return (f"--epochs {epochs} is above the homework's limit of {EPOCH_LIMIT} epochs per "
            "training: its results answer a different question")
