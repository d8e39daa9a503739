"""Plots and the Markdown summary of the ``cutout`` plugin, from stored results alone."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from trainers import plots
from trainers.api import ReportContext, Summary
from trainers.plugins.cutout.augment import CIFAR10_MEAN
from trainers.runtime import hardware_text

EXPLAIN = (
    "Cutout (DeVries & Taylor 2017) zeroes one square region of every training image after "
    "normalisation, so the region holds the dataset mean. Unlike dropout, which drops single "
    "units (in convolutional layers mostly repaired by their correlated neighbours), it "
    "removes a contiguous region of the input, so the network must use the whole context of "
    "an object rather than one discriminative part; it costs no parameters and almost no "
    "compute, and combines with other augmentation. Batch augmentation (Hoffer et al. 2019) "
    "puts M differently augmented copies of each image in one batch of M x B.")


def summarize(results: Mapping[str, Any], ctx: ReportContext) -> Summary:
    if "examples" in results:
        path = draw_examples(results["examples"], ctx)
        return Summary(f"# Cutout examples\n\n{EXPLAIN}\n\n![examples]({_link(path, ctx)})\n\n"
                       f"Data: {results['data']}.", (path,))
    trainings = results["trainings"]
    paths = (*draw_error(trainings, ctx), *draw_target(trainings, results, ctx))
    model = results["model"]
    text = "\n\n".join([
        "# Problem 4: Cutout and batch augmentation, ResNet on CIFAR-10", EXPLAIN,
        f"Model: {model['spec']} (shortcut {model['shortcut']}), {model['params']:,} "
        f"parameters, {model['flops_per_sample']:,} FLOPs per image forward (archcalc). "
        f"Hardware: {hardware_text(results['hardware'])}. Data: {results['data']}.",
        "## Time to target accuracy\n\n" + target_table(trainings, results["target_accuracy"]),
        "## Per epoch\n\n" + epoch_table(trainings),
        *(f"![{p.stem}]({_link(p, ctx)})" for p in paths if p.suffix == ".png")])
    return Summary(text, tuple(paths))


def _link(path: Path, ctx: ReportContext) -> str:
    """``path`` relative to the run directory, where summary.md lies."""
    return os.path.relpath(path, ctx.run.dir)


def target_table(trainings: Sequence[Mapping[str, Any]], target: float) -> str:
    """One row per M: epoch and wall-clock to ``target``, or best accuracy, said as such."""
    rows = ["| M | Cutout | images per step | reached | epoch | accuracy | training time |",
            "|--:|--:|--:|:--|--:|--:|--:|"]
    for t in trainings:
        r = t["target"]
        what = f"yes, {target:.0%}" if r["reached"] else f"no: best accuracy, time for " \
            f"all {len(t['history'])} epochs"
        rows.append(f"| {t['M']} | {t['cutout'] or 'none'} | {t['batch']} | {what} | {r['epoch']} "
                    f"| {r['acc']:.4f} | {r['time_s']:.1f} s |")
    return "\n".join(rows)


def epoch_table(trainings: Sequence[Mapping[str, Any]]) -> str:
    rows = ["| M | epoch | training loss | validation error | cumulative training time |",
            "|--:|--:|--:|--:|--:|"]
    rows += [f"| {t['M']} | {h['epoch']} | {h['train_loss']:.4f} | {h['val_error']:.4f} "
             f"| {h['train_time_s']:.1f} s |" for t in trainings for h in t["history"]]
    return "\n".join(rows)


def _finish(fig: Any, ctx: ReportContext, name: str) -> list[Path]:
    if ctx.stand_in:
        plots.stamp_synthetic(fig)
    return plots.save_figure(fig, ctx.plot_path(name))


def draw_error(trainings: Sequence[Mapping[str, Any]], ctx: ReportContext) -> list[Path]:
    """Validation error against epochs, one line per M (Hoffer et al. Fig. 3a)."""
    fig, ax = plots.subplots()
    with plots.style():
        for t in trainings:
            ax.plot([h["epoch"] for h in t["history"]], [h["val_error"] for h in t["history"]],
                    marker="o" if len(t["history"]) < 10 else None, label=f"M={t['M']}")
        ax.set(xlabel="epoch", ylabel="validation error", title="Validation error by M")
        ax.legend()
    return _finish(fig, ctx, "val-error")


def draw_target(trainings: Sequence[Mapping[str, Any]], results: Mapping[str, Any],
                ctx: ReportContext) -> list[Path]:
    """Epochs and wall-clock time to the target accuracy against M; hollow: not reached
    (best accuracy's epoch, time for all epochs)."""
    fig, axes = plots.subplots(1, 2, figsize=(9, 3.6))
    ms = [t["M"] for t in trainings]
    reached = [t["target"]["reached"] for t in trainings]
    with plots.style():
        for ax, key, label in ((axes[0], "epoch", "epochs"), (axes[1], "time_s", "seconds")):
            values = [t["target"][key] for t in trainings]
            ax.plot(ms, values, color="0.6", zorder=1)
            ax.scatter(ms, values, zorder=2, facecolors=["C0" if r else "none" for r in reached],
                       edgecolors="C0")
            ax.set_xscale("log", base=2)
            ax.minorticks_off()
            ax.set(xlabel="M", ylabel=label, xticks=ms, xticklabels=[str(m) for m in ms])
        target = results["target_accuracy"]
        axes[0].set_title(f"Epochs to {target:.0%} (hollow: not reached)")
        axes[1].set_title(f"Training time to {target:.0%}")
    return _finish(fig, ctx, "to-target")


def cutout_image(image: np.ndarray, box: Sequence[int]) -> np.ndarray:
    """The uint8 image with the box at the dataset mean, as Cutout after normalisation."""
    out = image.copy()
    mean = np.rint(np.array(CIFAR10_MEAN) * 255).astype(np.uint8)
    y1, y2, x1, x2 = box
    out[:, y1:y2, x1:x2] = mean[:, None, None]
    return out


def draw_examples(examples: Mapping[str, Any], ctx: ReportContext) -> Path:
    """Each image beside its Cutout version; returns the PNG."""
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
    return _finish(fig, ctx, "cutout-examples")[0]
