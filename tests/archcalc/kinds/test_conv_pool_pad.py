"""Adaptive pooling, padding as frameworks do it, depthwise shorthand, upsampling and
transposed convolution: notation, shapes, parameters, operations under each convention,
receptive fields (or why there is none) and formulas, with the arithmetic written out;
each kind verified against torch."""

from __future__ import annotations

import importlib.util

import pytest

import archcalc
from archcalc.algebra import INPUT_RF, RF
from archcalc.analysis import Report
from archcalc.errors import SpecError
from archcalc.kinds import AdaptivePool
from archcalc.kinds.base import Kind
from archcalc.kinds.pool import window_equivalent, window_sum

needs_verify = pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("torch", "torchinfo", "fvcore")),
    reason="the verify extra (torch, torchinfo, fvcore) is not installed")


def only(layer: str) -> Kind:
    (node,) = archcalc.parse(f"input 8x8x3\n{layer}\n").body
    return node.layer


def fault(text: str) -> SpecError:
    with pytest.raises(SpecError) as info:
        archcalc.parse(text, "bad.arch")
    return info.value


def report(spec: str, convention: str = "full") -> Report:
    return archcalc.analyze(archcalc.parse(spec), convention)


def row_macs(spec: str, index: int = 0) -> dict[str, int]:
    """MACs of row ``index`` under each convention."""
    return {name: report(spec, name).rows[index].macs
            for name in ("full", "torchinfo", "fvcore", "flopcounter")}


def assert_verifies(spec: str) -> None:
    from archcalc.verify import verify

    rep = verify(archcalc.parse(spec))
    assert rep.ok, "\n".join(f"{c.name} {c.path}: expected {c.expected}, got {c.actual}"
                             for c in rep.failures)


# -- adaptive pooling ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("adaptiveavgpool7", AdaptivePool("avg", (7, 7))),
        ("aap7", AdaptivePool("avg", (7, 7))),
        ("AdaptiveMaxPool6x6", AdaptivePool("max", (6, 6))),
        ("amp2x3", AdaptivePool("max", (2, 3))),
    ],
)
def test_adaptive_pool_notation(text: str, expected: AdaptivePool) -> None:
    assert only(text) == expected


def test_adaptive_pool_titles() -> None:
    assert only("aap7").title() == "ADAPTIVEAVGPOOL7"
    assert only("amp2x3").title() == "ADAPTIVEMAXPOOL2x3"


def test_adaptive_pool_errors_are_located() -> None:
    err = fault("input 8x8x3\naap0")
    assert err.message.startswith("output size must be a positive whole number")
    assert (err.loc.line, err.loc.col) == (2, 4)  # type: ignore[union-attr]  # under '0'
    err = fault("input 8x8x3\naap7 s=2")
    assert err.message.startswith("unknown option 's' for aap7")
    with pytest.raises(SpecError, match="adaptivepool needs a feature map"):
        report("input 12\naap7")


def test_window_sum_is_the_sum_of_torchs_windows() -> None:
    for size in range(1, 40):
        for out in range(1, 15):
            # torch's adaptive windows: [floor(i*In/Out), ceil((i+1)*In/Out))
            sizes = [-(-(i + 1) * size // out) - i * size // out for i in range(out)]
            assert window_sum(size, out) == sum(sizes), (size, out)
            equivalent = window_equivalent(size, out)
            if equivalent is not None:  # then every window is [i*s, i*s + k)
                k, s = equivalent
                assert all(i * size // out == i * s and sizes[i] == k for i in range(out))


def test_window_equivalent_cases() -> None:
    assert window_equivalent(14, 7) == (2, 2)  # 14 = 2*7: kernel = stride = 2
    assert window_equivalent(7, 7) == (1, 1)  # the identity (VGG at 224 px)
    assert window_equivalent(8, 7) == (2, 1)  # 8 = 1*7 + 1: windows [i, i+1]
    assert window_equivalent(9, 7) is None  # windows 0-1, 1-2, 2-3, 3-5, ...: uneven
    assert window_equivalent(3, 7) is None  # more outputs than inputs


def test_adaptive_avg_pool_counts() -> None:
    # 8 -> 7: windows of 2 on each axis, window sums 8 + 7 - gcd(8, 7) = 14 per axis.
    # Averaging: 3 channels * 14 * 14 = 588 additions and divisions;
    # fvcore: one per input element, 3*8*8 = 192; torchinfo, FlopCounterMode: nothing.
    spec = "input 8x8x3\naap7"
    rep = report(spec)
    (row,) = rep.rows
    assert row.out_shape == (3, 7, 7)
    assert row.params.trainable == row.params.buffers == 0
    assert row.ops.pool == 588 and row.flops == 588
    assert row_macs(spec) == {"full": 0, "torchinfo": 0, "fvcore": 192, "flopcounter": 0}


def test_adaptive_max_pool_counts() -> None:
    # 9 -> 2 rows (windows 0-4, 4-8: 5 + 5 = 10 = 9 + 2 - 1), 8 -> 3 columns (0-2, 2-5,
    # 5-7: 3 + 4 + 3 = 10 = 8 + 3 - 1); comparisons: 4 * (10*10 - 2*3) = 376; fvcore does
    # not count aten::adaptive_max_pool2d
    spec = "input 9x8x4\namp2x3"
    (row,) = report(spec).rows
    assert row.out_shape == (4, 2, 3)
    assert row.ops.pool == 376 and row.flops == 376
    assert row_macs(spec) == {"full": 0, "torchinfo": 0, "fvcore": 0, "flopcounter": 0}


def test_adaptive_pool_field_where_the_windows_slide() -> None:
    # 14 -> 7 is a 2x2 window with stride 2; 8 -> 7 a 2x2 window with stride 1
    assert only("aap7").receptive_field(INPUT_RF, (3, 14, 8)) == RF((2, 2), (2, 1), (0, 0))


def test_adaptive_pool_field_is_undefined_for_uneven_windows() -> None:
    # 9 -> 7: windows of 2 and 3 rows: no (size, stride, start) describes every unit
    assert only("aap7").receptive_field(INPUT_RF, (3, 9, 9)) is None
    rep = report("input 9x9x3\naap7\nconv1-2")
    assert [r.rf for r in rep.rows] == [None, None]
    assert rep.warnings == ("<spec>:2:1: aap7: no receptive field from here on (its output "
                            "units' fields are not one sliding window of its input)",)


def test_adaptive_pool_formulas() -> None:
    from archcalc.symbolic import layer_formulas

    lines = {r.name: r for r in layer_formulas("aap7", (3, 8, 8)).rows}
    assert lines["window ops"].value == 588
    assert str(lines["window ops"].formula) == (
        "C_in*(H + H_out - gcd(H, H_out))*(W + W_out - gcd(W, W_out))")
    assert layer_formulas("amp2x3", (4, 9, 8)).rows[-1].value == 376


VGG16_TORCHVISION = """
input 224x224x3
repeat 2 { conv3-64; relu }
maxpool
repeat 2 { conv3-128; relu }
maxpool
repeat 3 { conv3-256; relu }
maxpool
repeat 3 { conv3-512; relu }
maxpool
repeat 3 { conv3-512; relu }
maxpool
{pool}
flatten
FC-4096; relu; dropout-0.5
FC-4096; relu; dropout-0.5
FC-1000
"""


@pytest.mark.parametrize("pixels", [224, 256, 320])
def test_vgg16_as_torchvision_builds_it_at_any_input(pixels: int) -> None:
    # torchvision.models.vgg16: AdaptiveAvgPool2d((7, 7)) before the classifier, so the
    # first FC always sees 7*7*512 = 25,088 inputs and the model has 138,357,544 parameters
    graph = archcalc.parse(VGG16_TORCHVISION.replace("{pool}", "adaptiveavgpool7"))
    rep = archcalc.analyze(graph, input_shape=(3, pixels, pixels))
    assert rep.totals.params == 138_357_544
    pool = next(r for r in rep.rows if r.kind == "adaptivepool")
    assert pool.in_shape == (512, pixels // 32, pixels // 32) and pool.out_shape == (512, 7, 7)


def test_vgg16_without_the_adaptive_pool_grows_with_the_input() -> None:
    # the paper's VGG16 at 256 px: the first FC sees 8*8*512 = 32,768 inputs,
    # 138,357,544 + (32,768 - 25,088) * 4096 = 169,814,824 parameters (issue 12)
    graph = archcalc.parse(VGG16_TORCHVISION.replace("{pool}", ""))
    assert archcalc.analyze(graph, input_shape=(3, 256, 256)).totals.params == 169_814_824


@needs_verify
@pytest.mark.parametrize("spec", [
    # 9 -> 3 (kernel = stride = 3), 8 -> 7 (kernel 2, stride 1); then 3 -> 2, 7 -> 3:
    # every window slides, so every row's field is probed
    "input 9x8x4\nadaptiveavgpool3x7\nadaptivemaxpool2x3\nconv1-2",
    # 10 -> 7 is uneven: no field from there on, but shapes and counts still checked
    "input 10x13x3\nconv3-4\naap7\nconv3-2 p=0\namp3\nconv1-2",
    # a VGG-shaped stack at 256 px: 8 -> 7 before the classifier
    "input 256x256x3\nconv3-4 s=4\nmaxpool\nmaxpool\nmaxpool\naap7\nflatten\nFC-10",
])
def test_adaptive_pool_verifies_against_torch(spec: str) -> None:
    assert_verifies(spec)
