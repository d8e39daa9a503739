"""Problem 4 of the homework: Cutout and batch augmentation with ResNet-44 on CIFAR-10.

Reproduces: ResNet-44 (He et al. 2016, Sec. 4.2; archcalc spec ``resnet44``, 0.66M
parameters, option-A shortcuts by default, ``--shortcut B`` for the 1x1-conv projections of
Hoffer et al.'s code) trained with batch size B = 64 and batch augmentation (Hoffer et al.
2019): each step makes M copies of each image with independent crop, flip and Cutout
(DeVries & Taylor 2017, 16x16 mask after normalisation), a batch of M x B; M = 1 is the He et
al. baseline without Cutout. SGD momentum 0.9, lr 0.1 (not scaled with M), weight decay 1e-4,
lr / 10 at epochs 50 and 75 of 100 (He et al.'s 32k and 48k of 64k iterations, scaled to the
100-epoch budget). Per epoch: training loss, validation error, cumulative training time;
``hw3 report`` plots validation error against epochs for every M (Hoffer et al. Fig. 3a) and
epochs and wall-clock time to 94% against M. ``hw3 run cutout --show 2`` saves two training
images beside their Cutout versions instead of training.

Result: not yet run on real CIFAR-10 (the development machine has no copy and no GPU); the
tests train a few steps for M = 1 and M = 4 on stand-in data (``hw3 data fake cifar10``).

Speed (benchmarks/bench_cutout.py, B = 64, 1 torch thread on a shared 2-core AMD EPYC,
torch 2.13, no GPU; medians of 20 interleaved repeats): augmentation (crop, flip, normalise,
Cutout of M x B images as one row gather from a normalised padded table, trainers.augment)
243k img/s against 10.4k img/s per-sample (PIL + torchvision-style ops in a DataLoader),
23.5x at M = 8 and 27.4x at M = 32 (target 20x); data + augmentation 1.3 ms of a 6.9 s
ResNet-44 step of 512 images, 0.02% (target < 5%); 75 img/s, 44 GFLOP/s (3 x archcalc's
196 MFLOP forward). Not yet measured on a GPU.

Modules: this one is torch-free (config, so ``hw3 list`` stays light); trainers.augment
(batched crop, flip, normalise, Cutout), cutout_train (model, step with accumulation and
DDP, epoch, evaluation), cutout_run (the trainings, checkpoints, resume, the --show figure
data), cutout_report (plots and summary).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from trainers.api import ReportContext, RunContext, Summary, setting

MS = (1, 2, 4, 8, 16, 32)


@dataclass(frozen=True)
class Config:
    """Problem 4's protocol; plugins.toml [cutout] sets the seed's values and sources."""

    M: tuple[int, ...] = setting(MS, "Copies per image in a batch (batch augmentation); "
                                 "M = 1 is the baseline: standard augmentation, no Cutout.")
    batch_size: int = setting(64, "Images per step before augmentation (B).")
    epochs: int = setting(100, "Epochs per training (the seed allows at most 100).")
    lr: float = setting(0.1, "SGD learning rate (not scaled with M, as in Hoffer et al.).")
    momentum: float = setting(0.9, "SGD momentum.")
    weight_decay: float = setting(1e-4, "Weight decay (L2 in SGD, on every parameter).")
    milestones: tuple[int, ...] = setting((50, 75), "Epochs after which lr is divided by "
                                          "lr_decay's inverse (step schedule).")
    lr_decay: float = setting(0.1, "Factor applied to lr at each milestone.")
    depth: int = setting(44, "ResNet depth 6n+2 (spec resnet-cifar's depth).")
    shortcut: Literal["A", "B"] = setting("A", "Where the shape changes: A zero-pads (He et "
                                          "al., default), B projects with a 1x1 conv + BN "
                                          "(Hoffer et al.'s code).")
    cutout_size: int = setting(16, "Side of the square Cutout mask in pixels (0: none).")
    pad: int = setting(4, "Zero padding before the random crop, in pixels.")
    micro_batch: int = setting(0, "Images per forward/backward pass, gradients accumulated "
                               "to the full M x B step (0: the whole step at once).")
    target_accuracy: float = setting(0.94, "Validation accuracy whose first epoch and "
                                     "wall-clock time are reported.")
    amp: bool = setting(True, "On CUDA: bf16 autocast and channels_last (ignored on CPU).")
    compile: bool = setting(False, "torch.compile the model (CUDA only).")
    eval_batch: int = setting(1000, "Images per forward pass in evaluation (memory only).")
    steps: int = setting(0, "Steps per epoch (0: N / B, every image once); for quick checks.")
    show: int = setting(0, "Only save a figure of this many training images beside their "
                        "Cutout versions, without training (0: train).")

    def __post_init__(self) -> None:
        if not self.M or any(m < 1 for m in self.M) or len(set(self.M)) != len(self.M):
            raise ValueError(f"M must be distinct integers >= 1, got {list(self.M)}")
        for name in ("batch_size", "epochs", "eval_batch"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("micro_batch", "steps", "show", "cutout_size", "pad"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if (self.depth - 2) % 6 or self.depth < 8:
            raise ValueError(f"depth must be 6n+2 with n >= 1, got {self.depth}")
        if not 0 < self.target_accuracy <= 1:
            raise ValueError(f"target_accuracy must be in (0, 1], got {self.target_accuracy}")
        if self.lr <= 0 or self.weight_decay < 0 or not 0 <= self.momentum < 1:
            raise ValueError("need lr > 0, weight_decay >= 0 and momentum in [0, 1)")


class Cutout:
    """The ``cutout`` plugin: one training per M in ``run``, plots and tables in ``report``."""

    name = "cutout"
    summary = ("Problem 4: Cutout and batch augmentation (M copies per image) with ResNet-44 "
               "on CIFAR-10.")
    config_type = Config
    datasets = ("cifar10",)  # checked by the host before a run directory exists

    def run(self, config: Config, ctx: RunContext) -> dict[str, Any]:
        from trainers.plugins.cutout_run import run_all

        return run_all(config, ctx)

    def report(self, results: Mapping[str, Any], ctx: ReportContext) -> Summary:
        from trainers.plugins.cutout_report import summarize

        return summarize(results, ctx)


plugin = Cutout()
