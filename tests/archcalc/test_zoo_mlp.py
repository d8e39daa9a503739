"""The parametric ``mlp`` spec (Problem 5): its counts against arithmetic written out by hand,
batch norm exactly on the 2- and 3-layer nets, and the guard on the number of layers."""

from __future__ import annotations

import itertools

import pytest

import archcalc
from archcalc.errors import SpecError


def hand_params(widths: tuple[int, ...]) -> int:
    """Linear layers 2 -> w1 -> ... -> 1 with biases, plus 2 BN parameters per hidden unit
    when there are two or more hidden layers."""
    dims = (2, *widths, 1)
    linear = sum(a * b + b for a, b in itertools.pairwise(dims))
    return linear + (2 * sum(widths) if len(widths) >= 2 else 0)


def load(widths: tuple[int, ...]) -> archcalc.Graph:
    params = {"layers": len(widths), **{f"w{i}": w for i, w in enumerate(widths, 1)}}
    return archcalc.load("mlp", **params)


@pytest.mark.parametrize("widths", [(16,), (512,), (64, 32), (256, 256), (16, 32, 64),
                                    (128, 256, 128)])
def test_mlp_params_match_hand_arithmetic(widths: tuple[int, ...]) -> None:
    assert archcalc.analyze(load(widths)).totals.params == hand_params(widths)


def test_mlp_worked_examples() -> None:
    assert hand_params((512,)) == 2 * 512 + 512 + 512 + 1 == 2049
    assert archcalc.analyze(load((64, 32))).totals.params == 2497  # the spec's comment


@pytest.mark.parametrize(("widths", "bn"), [((64,), 0), ((64, 32), 2), ((64, 32, 16), 3)])
def test_mlp_batch_norm_only_on_deeper_nets(widths: tuple[int, ...], bn: int) -> None:
    kinds = [r.kind for r in archcalc.analyze(load(widths)).rows]
    assert kinds.count("bn") == bn
    assert kinds.count("linear") == len(widths) + 1
    assert kinds.count("act") == len(widths)


@pytest.mark.parametrize("layers", [0, 4, 5, -1])
def test_mlp_rejects_other_depths(layers: int) -> None:
    with pytest.raises(SpecError, match="not a whole number"):
        archcalc.load("mlp", layers=layers)
