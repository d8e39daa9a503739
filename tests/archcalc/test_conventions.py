"""archcalc.conventions: each preset on a small model counted by hand."""

from __future__ import annotations

import pytest

import archcalc
from archcalc.algebra import Ops
from archcalc.analysis import Report
from archcalc.conventions import CONVENTIONS, get_convention
from archcalc.errors import UsageError

TINY = """\
input 8x8x3
conv3-4
bn
relu
maxpool
gap
FC-2
soft-max
"""
# Counted by hand, per layer:
#   conv3-4 (same pad): 8*8*4 = 256 outputs * 3*3*3 = 27 -> 6,912 MACs, 256 bias adds
#   bn: 256 elements normalised, 2*4 = 8 affine parameters
#   relu: 256 evaluations
#   maxpool 2x2: 4x4x4 = 64 outputs * 3 comparisons = 192
#   gap (avg over 4x4): 4 outputs * 16 = 64 (adds + divide); 64 input elements
#   FC-2 on 4 features: 4*2 = 8 MACs, 2 bias adds
#   soft-max on 2: 2 * 3 = 6
CONV_MACS, FC_MACS = 6912, 8
BIAS = 256 + 2
NORM, NORM_PARAMS = 256, 8
ACT = 256 + 6
POOL = 192 + 64
GAP_INPUTS = 64


def tiny(convention: str) -> Report:
    return archcalc.analyze(archcalc.parse(TINY, "tiny.arch"), convention)


def test_the_registry() -> None:
    assert list(CONVENTIONS) == ["full", "torchinfo", "fvcore", "flopcounter"]
    for name, conv in CONVENTIONS.items():
        assert conv.name == name
        assert conv.summary and "\n" not in conv.summary
        assert get_convention(name) is conv


def test_unknown_convention_lists_the_choices() -> None:
    with pytest.raises(UsageError, match=r"unknown convention 'ptflops' \(choose from full, "
                                         r"torchinfo, fvcore, flopcounter\)"):
        get_convention("ptflops")
    with pytest.raises(UsageError):
        archcalc.analyze(archcalc.parse(TINY), "ptflops")


def test_full_counts_everything() -> None:
    totals = tiny("full").totals
    assert totals.macs == CONV_MACS + FC_MACS == 6920
    # 2 per MAC + bias adds + BN 2/element + activations + pooling
    assert totals.flops == 2 * 6920 + BIAS + 2 * NORM + ACT + POOL == 15_128


def test_torchinfo_counts_parameters_times_positions() -> None:
    # conv weights*positions (= MACs) + bias*positions + linear and BN parameters
    totals = tiny("torchinfo").totals
    assert totals.macs == 6920 + BIAS + NORM_PARAMS == 7186
    assert totals.flops == 2 * 7186


def test_fvcore_counts_bn_and_adaptive_pooling_but_no_bias() -> None:
    # BN with affine: 2 per element in eval mode; adaptive avg pool: 1 per input element
    totals = tiny("fvcore").totals
    assert totals.macs == 6920 + 2 * NORM + GAP_INPUTS == 7496
    assert totals.flops == 2 * 7496


def test_flopcounter_counts_only_matmuls_and_convs() -> None:
    totals = tiny("flopcounter").totals
    assert (totals.macs, totals.flops) == (6920, 2 * 6920)


def test_per_row_numbers_follow_the_convention() -> None:
    bn = tiny("fvcore").rows[1]
    assert bn.kind == "bn" and bn.macs == 512  # 256 + 256 (affine)
    bn = tiny("torchinfo").rows[1]
    assert bn.macs == 8 and bn.flops == 16
    relu = tiny("full").rows[2]
    assert (relu.macs, relu.flops) == (0, 256)


@pytest.mark.parametrize(
    ("name", "macs", "flops"),
    [
        # residual add of 4 elements and a 3-element LRN (size 5: 9 + 3 = 12 each)
        ("full", 0, 4 + 36),
        ("torchinfo", 0, 0),
        ("fvcore", 0, 0),
        ("flopcounter", 0, 0),
    ],
)
def test_adds_and_lrn_count_only_in_full(name: str, macs: int, flops: int) -> None:
    conv = CONVENTIONS[name]
    ops = Ops(add=4, lrn=36)
    assert (conv.macs(ops), conv.flops(ops)) == (macs, flops)


def test_bn_without_affine() -> None:
    ops = Ops(norm=10)  # affine=False: no affine share, no parameters
    assert CONVENTIONS["fvcore"].macs(ops) == 10
    assert CONVENTIONS["torchinfo"].macs(ops) == 0
    assert CONVENTIONS["full"].flops(ops) == 20
