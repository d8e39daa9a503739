"""Problem 1 of the homework: five adaptive learning-rate methods on CIFAR-10.

Reproduces the seed's MLP 3072-1000-1000-10 (ReLU, archcalc spec ``mlp-cifar``, batch 128,
200 epochs) trained with AdaGrad, RMSProp, RMSProp+Nesterov, AdaDelta and Adam, first with an
L2 penalty (part 2), then with dropout 0.2 on the input and 0.5 on the hidden layers plus L2
(part 3): ten trainings, seed 0. The report plots training loss against epochs, names the
best method of each part from the numbers, compares training time with and without dropout
and tabulates the test accuracy of all ten networks (classic dropout: test weights scaled by
the keep probability).

Command: ``hw3 run optimizers`` (then ``hw3 report optimizers/RUN_ID``). Measured results
and speed: docs/problems/problem1.rst.

Modules: config (settings), train (model, optimizers, objective, data on the device, one
epoch), run (the ten trainings, checkpoints, resume), report (plots, tables, summary), optim
(RMSProp with Nesterov momentum), dropout (classic and inverted dropout). This module and
config are torch-free, so ``hw3 list`` stays light.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from trainers.api import ReportContext, RunContext, Summary
from trainers.plan import Plan
from trainers.plugins.optimizers.config import Config


class Optimizers:
    """The ``optimizers`` plugin: ten trainings in ``run``, plots and tables in ``report``."""

    name = "optimizers"
    summary = ("Problem 1: AdaGrad, RMSProp, RMSProp+Nesterov, AdaDelta and Adam on a CIFAR-10 "
               "MLP, with L2 and with dropout.")
    config_type = Config
    datasets = ("cifar10",)  # checked by the host before a run directory exists
    reports_partial = True  # each checkpoint keeps the finished trainings' results

    def check(self, config: Config, device: str, data_dir: str) -> None:
        """Before the run directory exists: a compiled step needs a compiler here."""
        from trainers.plugins.optimizers.train import check_step

        check_step(config.step, config.methods, device)

    def run(self, config: Config, ctx: RunContext) -> dict[str, Any]:
        from trainers.plugins.optimizers.run import run_all

        return run_all(config, ctx)

    def plan(self, config: Config, device: str, data_dir: str) -> Plan:
        """The protocol's size and a projected wall time from a few timed steps."""
        from trainers.plugins.optimizers.run import plan

        return plan(config, device, data_dir)

    def report(self, results: Mapping[str, Any], ctx: ReportContext) -> Summary:
        from trainers.plugins.optimizers.report import summarize

        return summarize(results, ctx)


plugin = Optimizers()
