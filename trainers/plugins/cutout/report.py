"""Plots and the Markdown summary of the ``cutout`` plugin, from stored results alone."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from trainers import plots
from trainers.api import ReportContext, Summary
from trainers.plugins.cutout import examples
from trainers.plugins.cutout.augment import CIFAR10_MEAN
from trainers.reporting import (
    RUN_SHOWN,
    human,
    partial_note,
    reduced_banner,
    reductions,
    seconds,
)
from trainers.runtime import hardware_text

EXPLAIN = (
    "Cutout (DeVries & Taylor 2017) zeroes one square region of every training image after "
    "normalisation, so the region holds the dataset mean. Unlike dropout, which drops single "
    "units (in convolutional layers mostly repaired by their correlated neighbours), it "
    "removes a contiguous region of the input, so the network must use the whole context of "
    "an object rather than one discriminative part; it costs no parameters and almost no "
    "compute, and combines with other augmentation. Batch augmentation (Hoffer et al. 2019) "
    "puts M differently augmented copies of each image in one batch of M x B.")


WHERE = f"work/{examples.FILE}"  # in the run directory
REDUCIBLE = ("epochs", "steps", "M", "batch_size", "cutout_size")


def summarize(results: Mapping[str, Any], ctx: ReportContext) -> Summary:
    if "examples" in results:
        path = draw_examples(results["examples"], ctx)
        return Summary(f"# Cutout examples\n\n{EXPLAIN}\n\n![examples]({_link(path, ctx)})\n\n"
                       f"Data: {results['data']}.", (path,))
    trainings = results["trainings"]
    partial = partial_note(results)
    paths = [*draw_error(trainings, ctx, partial),
             *draw_target(trainings, results, ctx, partial)]
    model = results["model"]
    target = results["target_accuracy"]
    text = "\n\n".join([
        "# Problem 4: Cutout and batch augmentation, ResNet on CIFAR-10", EXPLAIN,
        f"Model: {model['spec']} (shortcut {model['shortcut']}), {model['params']:,} "
        f"parameters, {model['flops_per_sample']:,} FLOPs per image forward (archcalc). "
        f"Hardware: {hardware_text(results['hardware'])}. Data: {results['data']}.",
        reduced_banner(reductions(ctx.config, REDUCIBLE), ctx.stand_in),
        f"## Epochs and time to {target:.0%}, or accuracy and time after the last epoch\n\n"
        + target_table(trainings, target),
        "## Why batch augmentation helps\n\n" + answer(trainings, target, partial),
        "## Per epoch\n\n" + epoch_table(trainings),
        *(f"![{p.stem}]({_link(p, ctx)})" for p in paths if p.suffix == ".png"),
        examples_section(ctx, paths, partial)])
    return Summary(text, tuple(paths))


def examples_section(ctx: ReportContext, paths: list[Path], partial: str = "") -> str:
    """Part 1's images beside their Cutout versions, as this run kept them when it started
    (examples.py); a run that kept none (made before runs did, or Cutout off) says so."""
    head = "## Cutout examples (part 1)\n\n"
    if ctx.config.cutout_size == 0:
        return head + "This run used no Cutout (cutout_size 0), so it has no examples."
    try:
        found = examples.load(ctx.workdir)
    except examples.BadExamples as exc:
        return head + (f"The examples this run kept are damaged: {WHERE} {exc}. The "
                       "results above do not depend on them; `hw3 run cutout --show 2` "
                       "draws two training images and their Cutout versions on their own.")
    if found is None:
        return head + (f"This run has no Cutout examples ({WHERE} is missing; runs made "
                       "before each training kept its own have none). `hw3 run cutout "
                       "--show 2` "
                       "draws two training images and their Cutout versions on their own.")
    path = draw_examples(found, ctx, partial)
    paths.append(path)
    size = found["size"]
    return head + (f"{len(found['index'])} training images of this run's data and their "
                   f"Cutout versions ({size}x{size} mask at a random centre, filled with the "
                   f"dataset mean), drawn with the run's seed {found.get('seed', '?')} "
                   f"when it started.\n\n![examples]({_link(path, ctx)})")


def _link(path: Path, ctx: ReportContext) -> str:
    """``path`` relative to the run directory, where summary.md lies."""
    return os.path.relpath(path, ctx.run.dir)


def target_table(trainings: Sequence[Mapping[str, Any]], target: float) -> str:
    """One row per M: epochs and wall time to ``target`` where reached, and always the
    accuracy and time after the last epoch (the homework's 100, or fewer when reduced)."""
    rows = [f"| M | Cutout | images per step | epochs to {target:.0%} | time to {target:.0%} "
            "| epochs run | accuracy after the last | time for all |",
            "|--:|--:|--:|--:|--:|--:|--:|--:|"]
    for t in trainings:
        r, last = t["target"], t["history"][-1]
        to_epochs = str(r["epoch"]) if r["reached"] else "not reached"
        to_time = seconds(r["time_s"]) if r["reached"] else "-"
        rows.append(f"| {t['M']} | {t['cutout'] or 'none'} | {t['batch']} | {to_epochs} | "
                    f"{to_time} | {last['epoch']} | {1 - last['val_error']:.2%} | "
                    f"{seconds(last['train_time_s'])} |")
    return "\n".join(rows)


def answer(trainings: Sequence[Mapping[str, Any]], target: float, partial: str = "") -> str:
    """Why batch augmentation helps: the mechanism, and what this run's numbers show (of a
    partial run: the M that finished only)."""
    base = next((t for t in trainings if t["M"] == 1), None)
    lines = ["Each step sees M differently cut-out copies of its B images: more views of the "
             "same images per step, a gradient averaged over more varied samples, and a "
             "stronger regulariser, at M times the compute per step (Hoffer et al. report "
             "reaching a given accuracy in fewer epochs as M grows)."]
    if base is None:
        return lines[0] + f"\n\n{RUN_SHOWN} has no M = 1 baseline to compare with."
    acc0 = 1 - base["history"][-1]["val_error"]
    for t in trainings:
        if t is base:
            continue
        acc = 1 - t["history"][-1]["val_error"]
        time_ratio = t["history"][-1]["train_time_s"] / base["history"][-1]["train_time_s"]
        verdict = "above" if acc > acc0 else "below" if acc < acc0 else "equal to"
        lines.append(f"- {RUN_SHOWN}, M = {t['M']} ends at {acc:.2%}, {verdict} M = 1's "
                     f"{acc0:.2%}, for {time_ratio:.1f}x its training time.")
    if partial:
        lines.append(f"- Only the M that finished are compared ({partial}).")
    reached = [t["M"] for t in trainings if t["target"]["reached"]]
    lines.append(f"- {target:.0%} was reached by M = {', '.join(map(str, reached))}." if reached
                 else f"- No training reached {target:.0%}, so the run cannot say which M "
                      "gets there in fewer epochs.")
    return lines[0] + "\n\n" + "\n".join(lines[1:])


def epoch_table(trainings: Sequence[Mapping[str, Any]]) -> str:
    rows = ["| M | epoch | training loss | validation error | cumulative training time |",
            "|--:|--:|--:|--:|--:|"]
    rows += [f"| {t['M']} | {h['epoch']} | {human(h['train_loss'])} | {h['val_error']:.2%} "
             f"| {seconds(h['train_time_s'])} |" for t in trainings for h in t["history"]]
    return "\n".join(rows)


def _finish(fig: Any, ctx: ReportContext, name: str, partial: str = "") -> list[Path]:
    if partial:
        fig.suptitle(partial.upper(), fontsize="small", color="0.3")
    if ctx.stand_in:
        plots.stamp_synthetic(fig)
    return plots.save_figure(fig, ctx.plot_path(name))


def draw_error(trainings: Sequence[Mapping[str, Any]], ctx: ReportContext,
               partial: str = "") -> list[Path]:
    """Validation error against epochs, one line per M (Hoffer et al. Fig. 3a), on [0, 1]."""
    fig, ax = plots.subplots()
    with plots.style():
        for i, t in enumerate(trainings):
            look = plots.series_style(i)
            if len(t["history"]) >= 10:
                look["marker"] = None
            ax.plot([h["epoch"] for h in t["history"]], [h["val_error"] for h in t["history"]],
                    label=f"M={t['M']}", **look)
        ax.set(xlabel="epoch", title="Validation error by M")
        plots.fraction_axis(ax, "validation error")
        plots.integer_ticks(ax, "x")
        plots.place_legend(ax)
    return _finish(fig, ctx, "val-error", partial)


def draw_target(trainings: Sequence[Mapping[str, Any]], results: Mapping[str, Any],
                ctx: ReportContext, partial: str = "") -> list[Path]:
    """Left: epochs to the target where any M reached it, else the accuracy after the last
    epoch against the target; right: training time (to the target, or for all epochs)."""
    fig, axes = plots.subplots(1, 2, figsize=(9, 3.6))
    ms = [t["M"] for t in trainings]
    reached = [bool(t["target"]["reached"]) for t in trainings]
    target = results["target_accuracy"]
    times = [t["target"]["time_s"] if t["target"]["reached"] else t["history"][-1][
        "train_time_s"] for t in trainings]
    with plots.style():
        left, right = axes
        if any(reached):
            plots.grouped_bars(left, [str(m) for m in ms], {"epochs": [
                t["target"]["epoch"] if t["target"]["reached"] else None for t in trainings]},
                missing="not reached")
            left.set(ylabel=f"epochs to {target:.0%}", title=f"Epochs to {target:.0%}")
            plots.integer_ticks(left, "y")
        else:
            accs = [1 - t["history"][-1]["val_error"] for t in trainings]
            left.bar(range(len(ms)), accs, color=plots.PALETTE[0])
            left.axhline(target, color="0.3", linestyle="--")
            left.text(len(ms) - 0.5, target, f"target {target:.0%}", ha="right",
                      va="bottom", fontsize="small")
            left.set_xticks(range(len(ms)), [str(m) for m in ms])
            plots.fraction_axis(left, "accuracy after the last epoch")
            left.set_title(f"{target:.0%} not reached: final accuracy")
        right.bar(range(len(ms)), times, color=[plots.PALETTE[0] if r else plots.PALETTE[1]
                                                 for r in reached])
        right.set_xticks(range(len(ms)), [str(m) for m in ms])
        right.set(ylabel="training time (s)", title=(
            f"Time to {target:.0%} (orange: not reached, all epochs)" if any(reached)
            else "Training time, all epochs"))
        for ax in axes:
            ax.set_xlabel("M (copies per image)")
            ax.grid(axis="x", visible=False)
    return _finish(fig, ctx, "to-target", partial)


def cutout_image(image: np.ndarray, box: Sequence[int]) -> np.ndarray:
    """The uint8 image with the box at the dataset mean, as Cutout after normalisation."""
    out = image.copy()
    mean = np.rint(np.array(CIFAR10_MEAN) * 255).astype(np.uint8)
    y1, y2, x1, x2 = box
    out[:, y1:y2, x1:x2] = mean[:, None, None]
    return out


def draw_examples(examples: Mapping[str, Any], ctx: ReportContext, partial: str = "") -> Path:
    """Each image beside its Cutout version; returns the PNG. Of a partial run it says so,
    as every plot of that run does (a figure copied elsewhere keeps the mark)."""
    images = np.array(examples["images"], dtype=np.uint8)
    n = len(images)
    fig, axes = plots.subplots(n, 2, figsize=(4, 2 * n), squeeze=False)
    for row, (image, box) in enumerate(zip(images, examples["boxes"], strict=True)):
        for col, shown in enumerate((image, cutout_image(image, box))):
            ax = axes[row][col]
            ax.imshow(shown.transpose(1, 2, 0), interpolation="nearest")
            ax.set_axis_off()
            ax.set_title(("original" if col == 0 else f"Cutout {examples['size']}x"
                          f"{examples['size']}") + f" #{examples['index'][row]}", fontsize=8)
    return _finish(fig, ctx, "cutout-examples", partial)[0]
