"""The trainings of the ``cutout`` plugin, one per M, resumable at any epoch; and the data of
the ``--show`` figure.

The run is one sequence of epochs across trainings: the checkpoint after epoch e of training
k is "epoch" k * epochs + e, carrying the finished trainings' records and the current one's
history. Under torchrun (``WORLD_SIZE`` > 1) each rank joins a process group (NCCL on CUDA,
gloo on CPU), wraps the model in DDP and augments its share of every step.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from trainers import data as datasets
from trainers.api import RunContext
from trainers.counts import model_counts
from trainers.data import DeviceData
from trainers.plugins.cutout.augment import Augment, cutout_boxes
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
)
from trainers.runtime import Timer, hardware, keep_freed_memory

Opt = tuple[torch.optim.SGD, torch.optim.lr_scheduler.MultiStepLR]


def recipe(config: Config, m: int) -> Augment:
    """Standard augmentation; Cutout only with batch augmentation (M > 1)."""
    return Augment(pad=config.pad, cutout=config.cutout_size if m > 1 else 0)


def run_all(config: Config, ctx: RunContext) -> dict[str, Any]:
    """Train one ResNet per M (or draw the --show examples); return the records."""
    ds = datasets.load("cifar10", ctx.data_dir)
    if ds.synthetic:
        ctx.use_stand_in(ds.summary)
    if config.show:
        return show_examples(ds.train.x, config, ds.summary)
    world = setup_world(ctx.device)
    cuda = ctx.device.startswith("cuda")
    if ctx.device == "cpu":
        keep_freed_memory()
    data = datasets.on_device(ds, ctx.device)
    done, pending = restore(config, ctx, world)
    with ctx.progress.bar("trainings", total=len(config.M), unit="run") as bar:
        bar.advance(len(done))
        for k in range(len(done), len(config.M)):
            start = pending if pending is not None and pending[0] == k else None
            done.append(train_one(config, ctx, data, k, done, start, world, cuda))
            bar.advance()
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
              cuda: bool) -> dict[str, Any]:
    """Train M = config.M[k] for every epoch, checkpointing after each; return its record."""
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
    with ctx.progress.bar(f"M={m}", total=config.epochs, unit="epoch") as bar:
        bar.advance(len(history))
        for epoch in range(len(history) + 1, config.epochs + 1):
            draws = augmentation_generator(ctx.device, ctx.seed, world.rank, k, epoch)
            with Timer(ctx.device) as timer:
                loss = train_epoch(net, opt, data.x_train, data.y_train, config.batch_size,
                                   plan, config.steps, world, draws)
            sched.step()
            history.append(measure(net, data, config, plan, epoch, loss, timer.seconds,
                                   history))
            ctx.progress.log({"M": m, **history[-1]})
            bar.advance()
            record = training_record(config, m, history) if epoch == config.epochs else None
            extra = {"done": [*done, record], "history": []} if record is not None \
                else {"done": done, "history": history}
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
    n, _, h, w = x.shape
    pick = torch.randperm(n)[:config.show]
    boxes = cutout_boxes(len(pick), h, w, config.cutout_size or 16)
    return {"headline": f"{len(pick)} Cutout examples", "data": data_summary,
            "examples": {"index": pick.tolist(), "images": x[pick].tolist(),
                         "boxes": boxes.tolist(), "size": config.cutout_size or 16}}
