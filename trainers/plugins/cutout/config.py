"""Problem 4's settings: batch augmentation, the ResNet and its SGD schedule.

Every value is written here once, with its source beside it (``cite``); torch-free, so
``hw3 list`` stays light.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from trainers.api import setting

MS = (1, 2, 4, 8, 16, 32)


@dataclass(frozen=True)
class Config:
    """Problem 4's protocol: each default is the value a run uses, its source beside it
    (``cite``); plugins.toml only enables the plugin or overrides a value."""

    M: tuple[int, ...] = setting(MS, "Copies per image in a batch (batch augmentation); "
                                 "M = 1 is the baseline: standard augmentation, no Cutout.",
        cite="Hoffer et al. 2019, batch augmentation; M = 1 is the baseline without Cutout")
    batch_size: int = setting(64, "Images per step before augmentation (B).",
        ge=1, cite="the seed's B")
    epochs: int = setting(100, "Epochs per training (the seed allows at most 100).",
        ge=1, cite="the seed's limit")
    lr: float = setting(0.1, "SGD learning rate (not scaled with M, as in Hoffer et al.).",
        gt=0, cite="Hoffer et al. 2019: not scaled with M")
    momentum: float = setting(0.9, "SGD momentum.",
        ge=0, lt=1, cite="He et al. 2016, Sec. 4.2")
    weight_decay: float = setting(1e-4, "Weight decay (L2 in SGD, on every parameter).",
        ge=0, cite="He et al. 2016, Sec. 4.2")
    milestones: tuple[int, ...] = setting((50, 75), "Epochs after which lr is divided by "
                                          "lr_decay's inverse (step schedule).",
        ge=1, cite="He et al.'s 32k and 48k of 64k iterations scaled to 100 epochs (Hoffer's "
                   "81/122/164 need 200; not in the seed)")
    lr_decay: float = setting(0.1, "Factor applied to lr at each milestone.",
        gt=0, le=1, cite="He et al. 2016, Sec. 4.2")
    depth: int = setting(44, "ResNet depth 6n+2 (spec resnet-cifar's depth).",
        cite="the homework: ResNet-44, 0.66M parameters (archcalc resnet44)")
    shortcut: Literal["A", "B"] = setting("A", "Where the shape changes: A zero-pads (He et "
                                          "al., default), B projects with a 1x1 conv + BN "
                                          "(Hoffer et al.'s code).",
        cite="He et al.'s zero-pad (A); B: 1x1 conv + BN as in Hoffer et al.'s code")
    cutout_size: int = setting(16, "Side of the square Cutout mask in pixels (0: none).",
        ge=0, le=32, cite="DeVries & Taylor 2017, CIFAR-10")
    pad: int = setting(4, "Zero padding before the random crop, in pixels.",
        ge=0, le=32, cite="He et al. 2016, Sec. 4.2: 4-pixel padding, random 32x32 crop")
    micro_batch: int = setting(0, "Images per forward/backward pass, gradients accumulated "
                               "to the full M x B step (0: the whole step at once).",
        ge=0, cite="not part of the protocol (same gradient; memory only)")
    target_accuracy: float = setting(0.94, "Validation accuracy whose first epoch and "
                                     "wall-clock time are reported.",
        gt=0, le=1, cite="the homework")
    amp: bool = setting(True, "On CUDA: bf16 autocast and channels_last (ignored on CPU).",
        cite="not part of the protocol (CUDA speed)")
    compile: bool = setting(False, "torch.compile the model (CUDA only).",
        cite="not part of the protocol (CUDA speed)")
    eval_batch: int = setting(1000, "Images per forward pass in evaluation (memory only).",
        ge=1, cite="not part of the protocol (memory only)")
    steps: int = setting(0, "Steps per epoch (0: N / B, every image once); for quick checks.",
        ge=0, cite="not part of the protocol (quick checks)")
    show: int = setting(0, "Only save a figure of this many training images beside their "
                        "Cutout versions, without training (0: train).",
        ge=0, cite="not part of the protocol")

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


