"""Problem 5 of the homework: universal approximators, depth against width.

Reproduces: regression of the Eggholder function f(x1, x2) on [-512, 512]^2 from 100,000
uniform points with noise N(0, 0.3) (0.3 taken as the standard deviation), split 80/20, by
every MLP with 1, 2 or 3 hidden layers of widths from {16, ..., 512} and at most 512 hidden
units in all (6 + 25 + 112 = 143 networks; archcalc spec ``mlp``, ReLU, batch norm on the
2- and 3-layer nets), SGD with Nesterov momentum, batch 1000, 2000 epochs. ``hw3 report``
plots test RMSE against total hidden units (same-total networks averaged) and against
parameters, and training time against parameters, and comments on the trade-off.

Result: the full protocol has not been run (about 17 CPU-hours: ~9 h on the 2-core
development machine; no GPU was available). A reduced run, all 143 networks on the full data
for 10 of the 2000 epochs (``hw3 run depth-width --epochs 10``, seed 0, one run, 2-core AMD
EPYC, torch 2.13 CPU, 2 workers), gave best test RMSE 290.6 for 1 hidden layer (512), 205.7
for 2 (32-256) and 120.9 for 3 (32-128-256), against a target std of 297.7; every 3-layer
net, even 16-16-16 (705 parameters), beat the best 1-layer one (2,049). Two such runs, on a
machine with different loads, gave identical RMSEs. With 20 epochs
(docs/results/depth-width, run 20261129-080600-6126, 5.2 min): 283.8 (512), 170.4 (32-256)
and 104.0 (16-256-128). Whether the 1-layer nets catch up with 2000 epochs is the open
question the full run answers.

Speed (benchmarks/bench_depth_width.py, same machine, 12 networks x 3 epochs on the full data,
fastest of 2 alternating runs): plain DataLoader loop 21.4 s (1.68 network-epochs/s, 12.4
GFLOP/s), this engine 5.3 s (6.81 network-epochs/s, 50.2 GFLOP/s): 4.05x; 2.9x before the
workers were forked instead of spawned (spawning re-imports torch, ~1.5 s per worker).

Modules: this one is torch-free (config, so ``hw3 list`` stays light); problem (Eggholder,
data, scaling, RMSE, the networks and their archcalc counts), engine (one configuration on
the device, worker processes), sweep (the run: resume, storage, results), summary (plots and
Markdown). Not run on a GPU yet: there spawned worker processes share the device.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, Literal

from trainers.api import ReportContext, RunContext, Summary, setting


@dataclass(frozen=True)
class Config:
    """Problem 5's protocol; the defaults are the seed's (plugins.toml repeats them)."""

    points: int = setting(100_000, "Points drawn uniformly (training plus test).")
    train_fraction: float = setting(0.8, "Share of the points used for training.")
    noise_std: float = setting(0.3, "Standard deviation of the Gaussian noise added to f.")
    x_range: float = setting(512.0, "Inputs are uniform in [-x_range, x_range]^2.")
    unit_budget: int = setting(512, "Most hidden units a network may have in all.")
    widths: tuple[int, ...] = setting((16, 32, 64, 128, 256, 512), "Units a hidden layer "
                                      "may have.")
    layers: tuple[int, ...] = setting((1, 2, 3), "Numbers of hidden layers to sweep (1-3).")
    batch_size: int = setting(1000, "Minibatch size (a last partial batch is dropped).")
    epochs: int = setting(2000, "Epochs per network.")
    lr: float = setting(0.01, "Initial SGD learning rate (targets are standardised).")
    momentum: float = setting(0.9, "Nesterov momentum.")
    schedule: Literal["cosine", "constant"] = setting(
        "cosine", "Learning-rate schedule: cosine decays to 0 over the epochs.")
    workers: int = setting(0, "Networks trained at once, one process each (0: one per CPU "
                           "core; 1: in this process).")

    def __post_init__(self) -> None:
        problems = [text for bad, text in (
            (not self.layers or not set(self.layers) <= {1, 2, 3}, "layers must be 1, 2 or 3"),
            (not self.widths or min(self.widths) < 1, "widths must be positive"),
            (self.unit_budget < min(self.widths or (1,)), "unit_budget is below every width"),
            (not 0 < self.train_fraction < 1, "train_fraction must lie in (0, 1)"),
            (round(self.points * self.train_fraction) < self.batch_size or self.batch_size < 2,
             "the training split needs at least one batch, of at least 2 points"),
            (round(self.points * self.train_fraction) >= self.points, "no test points left"),
            (self.noise_std < 0 or self.x_range <= 0, "noise_std >= 0 and x_range > 0"),
            (self.epochs < 1 or self.lr <= 0, "epochs and lr must be positive"),
            (not 0 < self.momentum < 1, "Nesterov momentum must lie in (0, 1)"),
            (self.workers < 0, "workers must be >= 0"),
        ) if bad]
        if problems:
            raise ValueError("; ".join(problems))


PROTOCOL = Config()
PROTOCOL_FIELDS = ("points", "train_fraction", "noise_std", "x_range", "unit_budget", "widths",
                   "layers", "batch_size", "epochs")


def reductions(config: Config) -> list[str]:
    """How ``config`` departs from the seed's protocol (empty: the full experiment)."""
    out = []
    for f in fields(Config):
        if f.name in PROTOCOL_FIELDS and getattr(config, f.name) != getattr(PROTOCOL, f.name):
            out.append(f"{f.name} {_show(getattr(config, f.name))} "
                       f"(protocol {_show(getattr(PROTOCOL, f.name))})")
    return out


def _show(value: Any) -> str:
    return ",".join(map(str, value)) if isinstance(value, tuple) else str(value)


class DepthWidth:
    name = "depth-width"
    summary = "Problem 5: depth vs width of MLPs regressing the Eggholder function."
    config_type = Config

    def run(self, config: Config, ctx: RunContext) -> dict[str, Any]:
        from trainers.plugins.depth_width.sweep import run

        return run(config, ctx)

    def report(self, results: Mapping[str, Any], ctx: ReportContext) -> Summary:
        from trainers.plugins.depth_width.summary import report

        return report(results, ctx)


plugin = DepthWidth()
