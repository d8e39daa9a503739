"""Problem 2 of the homework: strong and weak scaling of ResNet-50 with tf.distribute.

Reproduces ResNet-50 (``keras.applications.ResNet50``, weights=None, 10 classes; archcalc
``resnet50-keras``) on FashionMNIST zero-padded from 28x28x1 to 32x32x1, effective batch 256
(strong) or 64 per learner (weak), N in {1, 2, 4, 8, 16}; ``MirroredStrategy`` in one node
with each cross-device op, ``MultiWorkerMirroredStrategy`` with AUTO / RING / NCCL on worker
processes it launches itself or on the hosts of a cluster file, and a performance/cost model
that extends the measurements past one machine; plots of measured runs overlay the model.

Command: ``hw3 run scaling`` (``--model-only`` plots the model alone; ``--cluster FILE
--task N`` on each host of a real cluster). Measured results and harness overhead:
docs/problems/problem2.rst.

Modules: config (settings), perf (cost model), jobs (the plan), train (devices, data, model,
training loop), cluster (worker processes, BackupAndRestore), hosts (cluster files,
TF_CONFIG), run (orchestration; a checkpoint after every job, so ``--resume`` runs only the
missing ones), report (plots and answers). This module and config are TensorFlow-free.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from trainers.api import ReportContext, RunContext, Summary
from trainers.plan import Plan
from trainers.plugins.scaling.config import Config


class Scaling:
    """The ``scaling`` plugin: jobs (or the model alone) in ``run``, plots in ``report``."""

    name = "scaling"
    summary = ("Problem 2: strong and weak scaling of ResNet-50 on FashionMNIST with "
               "tf.distribute, plus an all-reduce cost model.")
    config_type = Config
    reports_partial = True  # each checkpoint keeps the finished jobs' results

    def check(self, config: Config, device: str, data_dir: str) -> None:
        """Before the run directory exists: FashionMNIST on disk (unless only the model is
        plotted) and a readable cluster file with this task in it."""
        from trainers.data.catalog import require
        from trainers.errors import ConfigError
        from trainers.plugins.scaling import hosts, jobs

        if not config.model_only:
            try:
                jobs.plan(config)  # every learner count splits its batch and its nodes
            except ValueError as exc:
                raise ConfigError(f"{type(config).__name__}: {exc}") from None
            require("fashion-mnist", data_dir)
        if config.cluster:
            hosts.read(config.cluster, config.task)

    def run(self, config: Config, ctx: RunContext) -> dict[str, Any]:
        from trainers.plugins.scaling.run import run_all

        return run_all(config, ctx)

    def plan(self, config: Config, device: str, data_dir: str) -> Plan | None:
        """The jobs' size and a projected wall time from a short timed job."""
        from trainers.plugins.scaling.run import cost_plan

        return cost_plan(config, data_dir)

    def report(self, results: Mapping[str, Any], ctx: ReportContext) -> Summary:
        from trainers.plugins.scaling.report import summarize

        return summarize(results, ctx)


plugin = Scaling()
