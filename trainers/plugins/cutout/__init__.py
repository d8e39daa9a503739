"""Problem 4 of the homework: Cutout and batch augmentation with ResNet-44 on CIFAR-10.

Reproduces ResNet-44 (He et al. 2016, Sec. 4.2; archcalc spec ``resnet44``, 0.66M
parameters, option-A shortcuts by default, ``--shortcut B`` for the 1x1-conv projections of
Hoffer et al.'s code) trained with batch size B = 64 and batch augmentation (Hoffer et al.
2019): each step makes M copies of each image with independent crop, flip and Cutout
(DeVries & Taylor 2017, 16x16 mask after normalisation), a batch of M x B; M = 1 is the He et
al. baseline without Cutout. The report plots validation error against epochs for every M
(Hoffer et al. Fig. 3a) and epochs and wall-clock time to 94% against M.

Command: ``hw3 run cutout`` (each run first keeps two training images and their Cutout boxes
in its work folder, which its report draws; ``hw3 run cutout --show 2`` saves only that
figure, without training). Measured results and speed: docs/problems/problem4.rst.

Modules: config (settings), augment (batched crop, flip, normalise, Cutout), train (model,
step with accumulation and DDP, epoch, evaluation), examples (part 1's images, kept by each
run), run (the trainings, checkpoints, resume, the --show figure data), report (plots and
summary). This module and config are torch-free.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from trainers.api import ReportContext, RunContext, Summary
from trainers.plan import Plan
from trainers.plugins.cutout.config import Config


class Cutout:
    """The ``cutout`` plugin: one training per M in ``run``, plots and tables in ``report``."""

    name = "cutout"
    summary = ("Problem 4: Cutout and batch augmentation (M copies per image) with ResNet-44 "
               "on CIFAR-10.")
    config_type = Config
    datasets = ("cifar10",)  # checked by the host before a run directory exists
    reports_partial = True  # each checkpoint keeps the finished trainings' results

    def run(self, config: Config, ctx: RunContext) -> dict[str, Any]:
        from trainers.plugins.cutout.run import run_all

        return run_all(config, ctx)

    def plan(self, config: Config, device: str, data_dir: str) -> Plan | None:
        """The protocol's size and a projected wall time from a few timed steps."""
        from trainers.plugins.cutout.run import plan

        return plan(config, device, data_dir)

    def report(self, results: Mapping[str, Any], ctx: ReportContext) -> Summary:
        from trainers.plugins.cutout.report import summarize

        return summarize(results, ctx)


plugin = Cutout()
