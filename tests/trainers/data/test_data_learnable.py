"""The fake data carries a class signal: a nearest-class-mean classifier beats chance clearly,
while the same classifier on shuffled labels stays near chance (so the test can fail)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from trainers.data import load


def _nearest_mean_accuracy(x: torch.Tensor, y: torch.Tensor, xt: torch.Tensor,
                           yt: torch.Tensor) -> float:
    x, xt = x.flatten(1).float(), xt.flatten(1).float()
    means = torch.stack([x[y == c].mean(0) for c in range(10)])
    return (torch.cdist(xt, means).argmin(1) == yt).float().mean().item()


@pytest.mark.parametrize(("name", "layout"), [("cifar10", "python"), ("fashion-mnist", "idx")])
def test_fake_data_is_learnable(name: str, layout: str, root: Path,
                                write_fake: Callable[..., Path]) -> None:
    write_fake(name, layout, n=1000, n_test=500, seed=11)
    ds = load(name, root)
    acc = _nearest_mean_accuracy(ds.train.x, ds.train.y, ds.test.x, ds.test.y)
    shuffled = ds.train.y[torch.randperm(len(ds.train), generator=torch.Generator().manual_seed(0))]
    chance = _nearest_mean_accuracy(ds.train.x, shuffled, ds.test.x, ds.test.y)
    assert acc > 0.5, acc
    assert chance < 0.2, chance
