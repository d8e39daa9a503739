"""The symbolic algebra must agree with the numeric one and with closed forms by hand."""

from __future__ import annotations

import pytest
import sympy as sp

from archcalc.algebra import INPUT_RF
from archcalc.errors import SpecError, UsageError
from archcalc.symbolic import F, N, layer_formulas, rf_stack


def test_three_5x5_layers_see_13x13() -> None:
    # Seed Problem 3.3: N(F-1)+1 = 3*4+1 = 13.
    derivation = rf_stack(3, 5)
    assert derivation.value == 13
    assert sp.simplify(derivation.closed_form - (N * (F - 1) + 1)) == 0
    assert "N*(F - 1) + 1" in "\n".join(derivation.lines())


@pytest.mark.parametrize("layers", [1, 2, 4, 7])
@pytest.mark.parametrize("kernel", [1, 3, 5, 11])
@pytest.mark.parametrize("stride", [1, 2, 3])
@pytest.mark.parametrize("dilation", [1, 2])
def test_closed_form_matches_layer_by_layer_composition(layers: int, kernel: int, stride: int,
                                                        dilation: int) -> None:
    rf = INPUT_RF
    for _ in range(layers):
        rf = rf.step((kernel, kernel), (stride, stride), (0, 0), (dilation, dilation))
    assert rf_stack(layers, kernel, stride, dilation).value == rf.size[0]


def test_stride_two_closed_form_is_geometric() -> None:
    # r(N) = 1 + (F-1)(1 + 2 + ... + 2^(N-1)) = 1 + (F-1)(2^N - 1)
    closed = rf_stack(3, 3, stride=2).closed_form
    assert sp.simplify(closed - (1 + (F - 1) * (2**N - 1))) == 0


def test_rejects_non_positive_arguments() -> None:
    with pytest.raises(UsageError, match="--kernel"):
        rf_stack(3, 0)


def test_conv_formulas_written_out() -> None:
    formulas = {r.name: r.value for r in layer_formulas("conv3-64", (3, 224, 224)).rows}
    assert formulas["weights"] == 3 * 3 * 3 * 64
    assert formulas["biases"] == 64
    assert formulas["MACs"] == 224 * 224 * 64 * 3 * 3 * 3
    assert formulas["H_out"] == (224 + 2 * 1 - 3) // 1 + 1


def test_grouped_strided_conv_formulas() -> None:
    # AlexNet conv2 on one GPU pair: 48 input channels per group.
    formulas = {r.name: r.value for r in layer_formulas("conv5-256 p=2 g=2",
                                                         (96, 27, 27)).rows}
    assert formulas["weights"] == 5 * 5 * 48 * 256
    assert formulas["MACs"] == 27 * 27 * 256 * 5 * 5 * 48
    stride2 = {r.name: r.value for r in layer_formulas("conv11-96 s=4 p=0", (3, 227, 227)).rows}
    assert stride2["H_out"] == (227 - 11) // 4 + 1 == 55


def test_linear_pool_and_bn_formulas() -> None:
    fc = {r.name: r.value for r in layer_formulas("FC-4096", (512, 7, 7)).rows}
    assert fc["weights"] == 7 * 7 * 512 * 4096 and fc["MACs"] == fc["weights"]
    pool = {r.name: r.value for r in layer_formulas("maxpool", (64, 224, 224)).rows}
    assert pool["H_out"] == 112 and pool["window ops"] == 112 * 112 * 64 * 3
    ceil = {r.name: r.value for r in layer_formulas("maxpool3 s=2 ceil=true",
                                                     (64, 112, 112)).rows}
    assert ceil["H_out"] == -(-(112 - 3) // 2) + 1 == 56
    bn = {r.name: r.value for r in layer_formulas("bn", (16, 32, 32)).rows}
    assert bn == {"weights": 16, "biases": 16, "buffers": 32}


def test_formula_of_a_bad_layer_is_a_spec_error() -> None:
    with pytest.raises(SpecError, match="unknown layer"):
        layer_formulas("conx3-64", (3, 32, 32))
