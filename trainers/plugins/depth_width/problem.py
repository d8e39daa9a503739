"""Problem 5's task, torch-free: the Eggholder data, the scaling, RMSE and the networks.

The networks are the archcalc spec ``mlp`` (archcalc/zoo/mlp.arch) with its widths set, so
parameter and FLOP counts come from archcalc, never from a formula written here.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

SPEC = "mlp"  # archcalc zoo name of the parametric network
GLOBAL_MINIMUM = ((512.0, 404.2319), -959.6407)  # f(512, 404.2319), to 4 decimals


def eggholder(x1: Any, x2: Any) -> Any:
    """f(x1, x2) = -(x2 + 47) sin(sqrt|x2 + x1/2 + 47|) - x1 sin(sqrt|x1 - (x2 + 47)|)."""
    x1, x2 = np.asarray(x1, dtype=np.float64), np.asarray(x2, dtype=np.float64)
    return (-(x2 + 47.0) * np.sin(np.sqrt(np.abs(x2 + x1 / 2.0 + 47.0)))
            - x1 * np.sin(np.sqrt(np.abs(x1 - (x2 + 47.0)))))


# -- data -------------------------------------------------------------------------------
@dataclass(frozen=True)
class DataSpec:
    """Everything that fixes the data set: any process regenerates the same points from it."""

    points: int
    train_fraction: float
    noise_std: float  # y = f + N(0, noise_std^2): the seed's N(0, 0.3) read as a std
    x_range: float
    seed: int

    @property
    def n_train(self) -> int:
        return round(self.points * self.train_fraction)


@dataclass(frozen=True)
class Data:
    """Inputs (n, 2) and noisy targets (n,) in original units, float64."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def make_data(spec: DataSpec) -> Data:
    """Points uniform on [-x_range, x_range]^2 with noisy Eggholder targets; the points are
    i.i.d., so the first ``n_train`` are a random training split and the rest the test set."""
    rng = np.random.default_rng(spec.seed)
    x = rng.uniform(-spec.x_range, spec.x_range, size=(spec.points, 2))
    y = eggholder(x[:, 0], x[:, 1]) + rng.normal(0.0, spec.noise_std, size=spec.points)
    n = spec.n_train
    return Data(x[:n], y[:n], x[n:], y[n:])


@dataclass(frozen=True)
class Scaler:
    """Inputs to [-1, 1] by the known range; targets standardised by the training set."""

    x_range: float
    y_mean: float
    y_std: float

    @classmethod
    def fit(cls, data: Data, x_range: float) -> Scaler:
        return cls(x_range, float(data.y_train.mean()), float(data.y_train.std()))

    def x(self, x: np.ndarray) -> np.ndarray:
        return x / self.x_range

    def y(self, y: np.ndarray) -> np.ndarray:
        return (y - self.y_mean) / self.y_std

    def y_original(self, y_scaled: np.ndarray) -> np.ndarray:
        return np.asarray(y_scaled, dtype=np.float64) * self.y_std + self.y_mean


def rmse(pred_scaled: np.ndarray, y: np.ndarray, scaler: Scaler) -> float:
    """RMSE in the original units of f of predictions made in standardised units."""
    err = scaler.y_original(np.ravel(pred_scaled)) - np.ravel(y)
    return float(np.sqrt(np.mean(err * err)))


# -- networks ---------------------------------------------------------------------------
@dataclass(frozen=True, order=True)
class Arch:
    """One network of the sweep: its hidden-layer widths, input side first."""

    widths: tuple[int, ...]

    @property
    def depth(self) -> int:
        return len(self.widths)

    @property
    def units(self) -> int:
        return sum(self.widths)

    @property
    def key(self) -> str:
        return "-".join(map(str, self.widths))

    def spec_params(self) -> dict[str, int]:
        """The ``param`` values of the ``mlp`` spec for this network."""
        return {"layers": self.depth, **{f"w{i}": w for i, w in enumerate(self.widths, 1)}}

    @classmethod
    def parse(cls, key: str) -> Arch:
        return cls(tuple(int(w) for w in key.split("-")))


def enumerate_archs(widths: Iterable[int], depths: Iterable[int], budget: int,
                    ) -> tuple[Arch, ...]:
    """Every network of the given depths whose widths come from ``widths`` and whose hidden
    units sum to at most ``budget``; ordered by depth, then widths."""
    sizes = sorted(set(widths))
    found = [Arch(w) for d in sorted(set(depths)) for w in itertools.product(sizes, repeat=d)
             if sum(w) <= budget]
    return tuple(sorted(found, key=lambda a: (a.depth, a.widths)))


def per_depth(archs: Sequence[Arch]) -> dict[int, int]:
    """How many networks each depth has."""
    counts: dict[int, int] = {}
    for a in archs:
        counts[a.depth] = counts.get(a.depth, 0) + 1
    return counts


@dataclass(frozen=True)
class ArchCounts:
    """archcalc's per-sample numbers for one network (forward pass, ``full`` convention)."""

    params: int
    flops: int


def arch_counts(arch: Arch) -> ArchCounts:
    from trainers.counts import model_counts

    counts = model_counts(SPEC, params=arch.spec_params())
    return ArchCounts(counts.params, counts.flops)
