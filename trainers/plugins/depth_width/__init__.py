"""Problem 5 of the homework: universal approximators, depth against width.

Reproduces the regression of the Eggholder function f(x1, x2) on [-512, 512]^2 from 100,000
uniform points with noise N(0, 0.3) (0.3 taken as the standard deviation), split 80/20, by
every MLP with 1, 2 or 3 hidden layers of widths from {16, ..., 512} and at most 512 hidden
units in all (6 + 25 + 112 = 143 networks; archcalc spec ``mlp``, ReLU, batch norm on the
2- and 3-layer nets), SGD with Nesterov momentum, batch 1000, 2000 epochs. The report plots
test RMSE against total hidden units and against parameters, and training time against
parameters, and comments on the trade-off.

Command: ``hw3 run depth-width`` (``--epochs 10`` for a reduced run). Measured results and
speed: docs/problems/problem5.rst.

Modules: config (settings), problem (Eggholder, data, scaling, RMSE, the networks and their
archcalc counts), train (one configuration on the device, worker processes), run (the sweep:
resume, storage, results), report (plots and Markdown). This module and config are
torch-free.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from trainers.api import ReportContext, RunContext, Summary
from trainers.plan import Plan
from trainers.plugins.depth_width.config import Config


class DepthWidth:
    name = "depth-width"
    summary = "Problem 5: depth vs width of MLPs regressing the Eggholder function."
    config_type = Config
    reports_partial = True  # each checkpoint keeps the stored networks' results

    def run(self, config: Config, ctx: RunContext) -> dict[str, Any]:
        from trainers.plugins.depth_width.run import run

        return run(config, ctx)

    def plan(self, config: Config, device: str, data_dir: str) -> Plan:
        """The sweep's size and a projected wall time from a few timed steps."""
        from trainers.plugins.depth_width.run import plan

        return plan(config, device, data_dir)

    def report(self, results: Mapping[str, Any], ctx: ReportContext) -> Summary:
        from trainers.plugins.depth_width.report import report

        return report(results, ctx)


plugin = DepthWidth()
