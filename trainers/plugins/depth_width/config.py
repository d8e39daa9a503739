"""Problem 5's settings: the Eggholder data, the sweep of networks and SGD.

Every value is written here once, with its source beside it (``cite``); torch-free, so
``hw3 list`` stays light.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Literal

from trainers.api import setting


@dataclass(frozen=True)
class Config:
    """Problem 5's protocol: each default is the value a run uses, its source beside it
    (``cite``); plugins.toml only enables the plugin or overrides a value."""

    points: int = setting(100_000, "Points drawn uniformly (training plus test).",
        ge=2, cite="the homework")
    train_fraction: float = setting(0.8, "Share of the points used for training.",
        gt=0, lt=1, cite="the homework: 80/20 split")
    noise_std: float = setting(0.3, "Standard deviation of the Gaussian noise added to f.",
        ge=0, le=1e6, cite="the homework's N(0, 0.3), read as the standard deviation")
    x_range: float = setting(512.0, "Inputs are uniform in [-x_range, x_range]^2.",
        gt=0, le=1e6, cite="the Eggholder function's usual domain [-512, 512]^2")
    unit_budget: int = setting(512, "Most hidden units a network may have in all.",
        ge=1, cite="the homework")
    widths: tuple[int, ...] = setting((16, 32, 64, 128, 256, 512), "Units a hidden layer "
                                      "may have.",
        ge=1, cite="the homework")
    layers: tuple[int, ...] = setting((1, 2, 3), "Numbers of hidden layers to sweep (1-3).",
        ge=1, le=3, cite="the homework: 1 to 3 hidden layers (6 + 25 + 112 = 143 networks)")
    batch_size: int = setting(1000, "Minibatch size (a last partial batch is dropped).",
        ge=2, cite="the homework")
    epochs: int = setting(2000, "Epochs per network.",
        ge=1, cite="the homework")
    lr: float = setting(0.01, "Initial SGD learning rate (targets are standardised).",
        gt=0, cite="our choice (not in the seed; 0.05 stalled 128-128 at 60 epochs)")
    momentum: float = setting(0.9, "Nesterov momentum.",
        gt=0, lt=1, cite="our value (the seed names Nesterov SGD, not its momentum)")
    schedule: Literal["cosine", "constant"] = setting(
        "cosine", "Learning-rate schedule: cosine decays to 0 over the epochs.",
        cite="our choice (not in the seed)")
    workers: int = setting(0, "Networks trained at once, one process each (0: one per CPU "
                           "core; 1: in this process).",
        ge=0, cite="not part of the protocol (0: one per core)")

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


