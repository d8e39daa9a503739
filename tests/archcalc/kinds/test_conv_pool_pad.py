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
from archcalc.kinds import AdaptivePool, Conv, ConvTranspose, DepthwiseConv, Pad, Upsample
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


# -- explicit zero padding ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected", "title"),
    [
        ("pad1", Pad(1, 1, 1, 1), "ZEROPAD1"),
        ("pad1x2", Pad(1, 1, 2, 2), "ZEROPAD1x2"),  # 1 top and bottom, 2 left and right
        ("pad t=0 b=1 l=0 r=1", Pad(0, 1, 0, 1), "ZEROPAD((0,1),(0,1))"),
        ("zeropad2 bottom=0", Pad(2, 0, 2, 2), "ZEROPAD((2,0),(2,2))"),
        ("pad r=3", Pad(0, 0, 0, 3), "ZEROPAD((0,0),(0,3))"),
    ],
)
def test_pad_notation(text: str, expected: Pad, title: str) -> None:
    layer = only(text)
    assert layer == expected and layer.title() == title


def test_pad_errors_are_located() -> None:
    err = fault("input 8x8x3\npad")
    assert err.message.startswith("pad needs a size (pad1, pad1x2) or sides")
    assert (err.loc.line, err.loc.col) == (2, 1)  # type: ignore[union-attr]
    err = fault("input 8x8x3\npad t=x")
    assert err.message == "top must be a whole number of at least 0, not 'x'"
    assert (err.loc.line, err.loc.col) == (2, 7)  # type: ignore[union-attr]  # under 'x'
    assert fault("input 8x8x3\npad1 q=1").message.startswith("unknown option 'q' for pad1")
    with pytest.raises(SpecError, match="pad needs a feature map"):
        report("input 12\npad1")


def test_pad_counts_nothing_but_allocates() -> None:
    # 8x8x3 padded 0 top, 1 bottom, 2 left, 0 right: 9x10x3 = 270 new elements, no arithmetic
    spec = "input 8x8x3\npad t=0 b=1 l=2 r=0"
    (row,) = report(spec).rows
    assert row.out_shape == (3, 9, 10) and row.activations == 270 and not row.inplace
    assert row.params.trainable == 0 and row.flops == 0
    assert row_macs(spec) == {"full": 0, "torchinfo": 0, "fvcore": 0, "flopcounter": 0}


def test_pad_moves_the_field_start_by_the_top_and_left_padding() -> None:
    # conv3 (field 3, start -1), then pad t=2 l=1: unit (0, 0) is two rows and one column
    # further out, start (-1 - 2, -1 - 1); size and stride unchanged
    rep = report("input 8x8x3\nconv3-4\npad t=2 b=0 l=1 r=0")
    assert rep.rows[1].rf == RF((3, 3), (1, 1), (-3, -2))


def test_pad_formulas() -> None:
    from archcalc.symbolic import layer_formulas

    lines = {r.name: r for r in layer_formulas("pad t=0 b=1 l=2 r=0", (3, 8, 8)).rows}
    assert (lines["H_out"].value, lines["W_out"].value, lines["weights"].value) == (9, 10, 0)
    assert str(lines["H_out"].formula) == "H + P_bottom + P_top"


def test_pad_is_a_homework_row() -> None:
    from archcalc.render import homework_table

    # it allocates a new tensor, so the memory table lists it: 10*10*3 = 300 elements
    table = homework_table(report("input 8x8x3\npad1\nconv3-4 p=0"))
    assert [row[0] for row in table.rows] == ["Input", "ZEROPAD1", "CONV3-4 p=0"]
    assert "300" in str(table.rows[1][1])


# -- conv padding as torch and TensorFlow compute it ----------------------------------------
@pytest.mark.parametrize(
    ("text", "padding", "pad_end"),
    [
        ("conv3-8 p=same", (1, 1), None),  # symmetric: as before
        ("conv4-8 p=same", (1, 1), (2, 2)),  # total 3: 1 top/left, 2 bottom/right
        ("conv2x3-8 p=same", (0, 1), (1, 1)),  # per axis: total 1 and 2
        ("conv2-8 d=3 p=same", (1, 1), (2, 2)),  # dilated span 3*(2-1) = 3
        ("conv4-8 s=2 p=same", (1, 1), (2, 2)),  # any stride (torch allows 'same' at 1 only)
        ("conv3-8 p=valid", (0, 0), None),
    ],
)
def test_conv_same_padding_is_torchs(text: str, padding: tuple[int, int],
                                     pad_end: tuple[int, int] | None) -> None:
    layer = only(text)
    assert isinstance(layer, Conv)
    assert (layer.padding, layer.pad_end, layer.tf_same) == (padding, pad_end, False)


def test_conv_same_with_a_symmetric_span_equals_the_plain_conv() -> None:
    assert only("conv3-8 p=same") == Conv(8, (3, 3), (1, 1), (1, 1))


def test_conv_bad_padding_word_is_located() -> None:
    err = fault("input 8x8x3\nconv3-8 p=half")
    assert err.message == "pad must be a whole number, HxW, same, tf-same or valid, not 'half'"
    assert (err.loc.line, err.loc.col) == (2, 11)  # type: ignore[union-attr]  # under 'half'


def test_conv_even_kernel_same_counts() -> None:
    # conv4-8 p=same on 9x10x3: pads (1, 2) per axis, output 9x10x8 = 720 units;
    # MACs 720 * 4*4*3 = 34,560; biases 720; torchinfo (384 weights + 8 biases) * 90
    # positions = 35,280; fvcore 34,560; FlopCounterMode 2 * 34,560 = 69,120
    spec = "input 9x10x3\nconv4-8 p=same"
    (row,) = report(spec).rows
    assert row.out_shape == (8, 9, 10)
    assert row.params.weights == 4 * 4 * 3 * 8 == 384
    assert row_macs(spec) == {"full": 34_560, "torchinfo": 35_280, "fvcore": 34_560,
                              "flopcounter": 34_560}
    assert report(spec, "flopcounter").rows[0].flops == 69_120
    assert row.rf == RF((4, 4), (1, 1), (-1, -1))  # starts at the top/left pad of 1


def test_conv_same_at_stride_two() -> None:
    # conv4-8 s=2 p=same on 9x9: (9 + 1 + 2 - 4) // 2 + 1 = 5
    (row,) = report("input 9x9x3\nconv4-8 s=2 p=same").rows
    assert row.out_shape == (8, 5, 5)


@pytest.mark.parametrize(
    ("size", "kernel", "stride", "dilation", "pads"),
    [
        # out = ceil(n/s); total = max((out-1)*s + d*(k-1) + 1 - n, 0); top = total // 2
        (10, 3, 2, 1, (0, 1)),  # out 5: 4*2 + 3 - 10 = 1 -> (0, 1)
        (9, 3, 2, 1, (1, 1)),  # out 5: 8 + 3 - 9 = 2
        (8, 1, 2, 1, (0, 0)),  # out 4: 6 + 1 - 8 < 0 -> 0
        (7, 4, 1, 1, (1, 2)),  # out 7: 6 + 4 - 7 = 3
        (7, 3, 1, 2, (2, 2)),  # out 7: 6 + 5 - 7 = 4
        (9, 5, 3, 1, (1, 1)),  # out 3: 6 + 5 - 9 = 2
        (11, 5, 3, 1, (1, 2)),  # out 4: 9 + 5 - 11 = 3
    ],
)
def test_tf_same_padding(size: int, kernel: int, stride: int, dilation: int,
                         pads: tuple[int, int]) -> None:
    from archcalc.kinds.conv import _tf_same

    assert _tf_same(size, kernel, stride, dilation) == pads


def test_tf_same_shapes_fields_and_counts() -> None:
    # conv3-8 s=2 p=tf-same on 10x9x3: rows pad (0, 1), cols (1, 1); output ceil(10/2) = 5,
    # ceil(9/2) = 5; the field starts at the top/left pad: rows 0, cols -1
    layer = only("conv3-8 s=2 p=tf-same")
    assert isinstance(layer, Conv) and layer.tf_same
    assert layer.pads((3, 10, 9)) == ((0, 1), (1, 1))
    (row,) = report("input 10x9x3\nconv3-8 s=2 p=tf-same").rows
    assert row.out_shape == (8, 5, 5)
    assert row.rf == RF((3, 3), (2, 2), (0, -1))
    assert row.macs == 5 * 5 * 8 * 3 * 3 * 3 == 5_400


def test_asymmetric_conv_formula_names_both_pads() -> None:
    from archcalc.symbolic import layer_formulas

    lines = {r.name: r for r in layer_formulas("conv4-8 p=same", (3, 9, 10)).rows}
    assert lines["H_out"].value == 9
    assert "P_bottom + P_top" in str(lines["H_out"].formula)
    assert lines["MACs"].value == 34_560


def test_asymmetric_conv_builds_one_padded_leaf() -> None:
    pytest.importorskip("torch")
    from torch import nn

    from archcalc.backends.modules import PaddedConv2d

    module = only("conv4-8 p=same").torch_module((3, 9, 10))
    assert isinstance(module, PaddedConv2d) and module.pads == (1, 2, 1, 2)  # l, r, t, b
    assert type(only("conv3-8 p=same").torch_module((3, 9, 10))) is nn.Conv2d


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
def test_torch_same_matches_torchs_own_padding_same() -> None:
    torch = pytest.importorskip("torch")
    from torch import nn

    for text, kernel, dilation in (("conv4-3 p=same", 4, 1), ("conv2-3 d=3 p=same", 2, 3)):
        ours = only(text).torch_module((2, 7, 8))
        ref = nn.Conv2d(2, 3, kernel, padding="same", dilation=dilation)
        ours.load_state_dict(ref.state_dict())
        x = torch.randn(1, 2, 7, 8)
        assert torch.allclose(ours(x), ref(x), atol=1e-6), text


def test_tf_same_matches_tensorflow() -> None:
    tf = pytest.importorskip("tensorflow")
    import numpy as np

    from archcalc.kinds.conv import _tf_same

    rng = np.random.default_rng(0)
    for n, k, s in ((10, 3, 2), (9, 4, 2), (11, 5, 3), (7, 2, 1)):
        x = rng.standard_normal((1, n, n + 1, 2)).astype("float32")
        w = rng.standard_normal((k, k, 2, 3)).astype("float32")
        (t, b), (left, right) = _tf_same(n, k, s, 1), _tf_same(n + 1, k, s, 1)
        padded = np.pad(x, ((0, 0), (t, b), (left, right), (0, 0)))
        same = tf.nn.conv2d(x, w, s, "SAME").numpy()
        assert np.allclose(same, tf.nn.conv2d(padded, w, s, "VALID").numpy(), atol=1e-4)


@needs_verify
@pytest.mark.parametrize("spec", [
    # Keras' ResNet50 stem: ZeroPadding2D(3), conv7/2 valid, ZeroPadding2D(1), maxpool3/2;
    # the second pad's border units are wholly padding (their measured field is empty)
    "input 16x16x3\npad3\nconv7-4 s=2 p=0\npad1\nmaxpool3 s=2",
    # Keras' MobileNet before a strided conv: pad 0 top/left, 1 bottom/right, conv3/2 valid
    "input 9x9x2\nconv3-4\npad t=0 b=1 l=0 r=1\nconv3-4 s=2 p=0",
    "input 9x10x3\nconv4-4 p=same\nconv2-4 s=2 p=same\nconv2-3 d=3 p=same",
    "input 10x9x3\nconv3-4 s=2 p=tf-same\nconv4-4 s=2 p=tf-same\nconv2-3 s=3 d=1 p=tf-same",
])
def test_padding_verifies_against_torch(spec: str) -> None:
    assert_verifies(spec)


# -- depthwise convolution -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("conv3-64 g=in", Conv(64, (3, 3), (1, 1), (1, 1), depthwise=True)),
        ("conv3-64 g=IN s=2", Conv(64, (3, 3), (2, 2), (1, 1), depthwise=True)),
        ("dwconv3", DepthwiseConv(0, (3, 3), (1, 1), (1, 1), depthwise=True, multiplier=1)),
        ("dwconv3 s=2 m=2 bias=false",
         DepthwiseConv(0, (3, 3), (2, 2), (1, 1), bias=False, depthwise=True, multiplier=2)),
        ("dwconv3-64", DepthwiseConv(64, (3, 3), (1, 1), (1, 1), depthwise=True)),
        ("dwconv4 p=same",
         DepthwiseConv(0, (4, 4), (1, 1), (1, 1), pad_end=(2, 2), depthwise=True,
                       multiplier=1)),
    ],
)
def test_depthwise_notation(text: str, expected: Conv) -> None:
    assert only(text) == expected


def test_depthwise_titles_and_kinds() -> None:
    assert only("dwconv3").title() == "DWCONV3" and only("dwconv3").kind == "dwconv"
    assert only("dwconv1x7-64").title() == "DWCONV1x7-64"
    assert only("conv3-64 g=in").title() == "CONV3-64" and only("conv3-64 g=in").kind == "conv"


def test_depthwise_errors_are_located() -> None:
    err = fault("input 8x8x4\ndwconv3-8 m=2")
    assert err.message.startswith("give the output channels (dwconv3-64) or a multiplier")
    assert (err.loc.line, err.loc.col) == (2, 11)  # type: ignore[union-attr]
    assert fault("input 8x8x4\ndwconv3 g=2").message.startswith(
        "unknown option 'g' for dwconv3")
    err = fault("input 8x8x4\nconv3-8 g=out")
    assert err.message == ("groups must be a whole number of at least 1, or in (the input "
                           "channels), not 'out'")
    assert (err.loc.line, err.loc.col) == (2, 11)  # type: ignore[union-attr]  # under 'out'
    with pytest.raises(SpecError, match=r"groups=in = 4 must divide both the input channels "
                                        r"\(4\) and the output channels \(10\)"):
        report("input 8x8x4\nconv3-10 g=in")


def test_depthwise_counts() -> None:
    # dwconv3 on 32x32x32: groups 32, one 3x3 filter per channel: weights 3*3*1*32 = 288,
    # biases 32; MACs 32*32*32 outputs * 9 = 294,912; torchinfo (288 + 32) * 1,024 positions
    # = 327,680; fvcore 294,912; FlopCounterMode 2 * 294,912 = 589,824
    spec = "input 32x32x32\ndwconv3"
    (row,) = report(spec).rows
    assert row.out_shape == (32, 32, 32)
    assert (row.params.weights, row.params.biases) == (288, 32)
    assert str(row.formula) == "(3*3*1)*32"
    assert row_macs(spec) == {"full": 294_912, "torchinfo": 327_680, "fvcore": 294_912,
                              "flopcounter": 294_912}
    assert report(spec, "flopcounter").rows[0].flops == 589_824


def test_depthwise_multiplier_and_explicit_channels() -> None:
    # dwconv3 s=2 m=2 on 8x8x4: 8 output channels, 4x4 maps; weights 3*3*1*8 = 72
    (row,) = report("input 8x8x4\ndwconv3 s=2 m=2").rows
    assert row.out_shape == (8, 4, 4) and row.params.weights == 72
    assert str(row.formula) == "(3*3*1)*8"
    # conv3-64 g=in on 16 channels: groups 16, weights 3*3*1*64 = 576, as conv3-64 g=16
    g_in, g_16 = (report(f"input 8x8x16\nconv3-64 {g}").rows[0] for g in ("g=in", "g=16"))
    assert g_in.params == g_16.params and g_in.params.weights == 576
    assert g_in.macs == g_16.macs == 8 * 8 * 64 * 9
    assert report("input 8x8x16\ndwconv3-64").rows[0].params == g_16.params


def test_depthwise_in_the_homework_table() -> None:
    from archcalc.render import homework_table

    table = homework_table(report("input 32x32x32\ndwconv3\nconv1-64"))
    assert table.rows[1] == ("DWCONV3", "32*32*32=33K", "(3*3*1)*32 = 288")
    assert table.rows[2] == ("CONV1-64", "32*32*64=66K", "(1*1*32)*64 = 2,048")


def test_depthwise_formulas() -> None:
    from archcalc.symbolic import layer_formulas

    lines = {r.name: r.value for r in layer_formulas("dwconv3", (32, 8, 8)).rows}
    assert lines["weights"] == 288 and lines["MACs"] == 8 * 8 * 32 * 9 == 18_432


def test_depthwise_builds_a_grouped_conv() -> None:
    pytest.importorskip("torch")
    module = only("dwconv3 m=2").torch_module((4, 8, 8))
    assert (module.in_channels, module.out_channels, module.groups) == (4, 8, 4)


@needs_verify
@pytest.mark.parametrize("spec", [
    # MobileNet v1's separable block (Howard et al. 2017): depthwise 3x3/2, BN, ReLU, 1x1
    "input 9x9x4\ndwconv3 s=2 bias=false\nbn\nrelu\nconv1-8 bias=false",
    "input 9x9x4\ndwconv3 m=2\nconv3-16 g=in\ndwconv4-32 p=same\ndwconv3 s=2 p=tf-same",
])
def test_depthwise_verifies_against_torch(spec: str) -> None:
    assert_verifies(spec)


# -- upsampling --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("upsample2", Upsample((2, 2), "nearest")),
        ("upsample", Upsample((2, 2), "nearest")),  # Keras' UpSampling2D default, 2
        ("upsample s=2x3 mode=bilinear", Upsample((2, 3), "bilinear")),
        ("UPSAMPLE3 mode=BILINEAR", Upsample((3, 3), "bilinear")),
    ],
)
def test_upsample_notation(text: str, expected: Upsample) -> None:
    assert only(text) == expected


def test_upsample_errors_are_located() -> None:
    err = fault("input 8x8x3\nupsample2 s=2")
    assert err.message == "scale given twice (in the name and as s=)"
    assert (err.loc.line, err.loc.col) == (2, 11)  # type: ignore[union-attr]
    err = fault("input 8x8x3\nupsample mode=bicubic")
    assert err.message == "mode must be nearest or bilinear, not 'bicubic'"
    assert (err.loc.line, err.loc.col) == (2, 15)  # type: ignore[union-attr]  # 'bicubic'
    assert fault("input 8x8x3\nupsample0").message.startswith("scale must be a positive")


def test_nearest_upsample_counts() -> None:
    # 4x5x3 -> 8x10x3 = 240 copies: no arithmetic in full; fvcore 1 per output element
    spec = "input 4x5x3\nupsample2"
    (row,) = report(spec).rows
    assert row.out_shape == (3, 8, 10) and row.params.trainable == 0 and row.flops == 0
    assert row_macs(spec) == {"full": 0, "torchinfo": 0, "fvcore": 240, "flopcounter": 0}
    assert report(spec, "fvcore").rows[0].flops == 480


def test_bilinear_upsample_counts() -> None:
    # 4x5x3 -> 8x15x3 = 360 outputs, 4 taps each: 1,440 multiply-adds; full 2 FLOPs each
    # = 2,880 (no MACs: those are conv/linear's); fvcore 1,440
    spec = "input 4x5x3\nupsample s=2x3 mode=bilinear"
    (row,) = report(spec).rows
    assert row.out_shape == (3, 8, 15) and row.ops.interp == 1_440 and row.flops == 2_880
    assert row_macs(spec) == {"full": 0, "torchinfo": 0, "fvcore": 1_440, "flopcounter": 0}


def test_upsample_has_no_receptive_field() -> None:
    # output units 0 and 1 both see input pixel 0: stride 1/2, not representable
    assert only("upsample2").receptive_field(INPUT_RF, (3, 4, 4)) is None
    assert only("upsample1").receptive_field(INPUT_RF, (3, 4, 4)) == INPUT_RF  # identity
    rep = report("input 4x4x3\nconv3-4\nupsample2\nconv3-2")
    assert [r.rf is None for r in rep.rows] == [False, True, True]
    assert rep.warnings == ("<spec>:3:1: upsample2: no receptive field from here on (its "
                            "output units' fields are not one sliding window of its input)",)
    assert only("upsample2").subsampling() is None


def test_upsample_formulas() -> None:
    from archcalc.symbolic import layer_formulas

    lines = {r.name: r.value for r in
             layer_formulas("upsample2 mode=bilinear", (3, 4, 4)).rows}
    assert lines == {"H_out": 8, "weights": 0, "interpolation multiply-adds": 4 * 3 * 8 * 8}


# -- transposed convolution --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("deconv4-64 s=2 p=1", ConvTranspose(64, (4, 4), (2, 2), (1, 1))),
        ("convtranspose3-8 s=2 p=1 op=1",
         ConvTranspose(8, (3, 3), (2, 2), (1, 1), (1, 1))),
        ("deconv3-8 d=2 output_padding=1 g=2 bias=false",
         ConvTranspose(8, (3, 3), (1, 1), (0, 0), (1, 1), (2, 2), 2, False)),
        ("deconv2x4-8", ConvTranspose(8, (2, 4))),  # torch's defaults: stride 1, pad 0
    ],
)
def test_deconv_notation(text: str, expected: ConvTranspose) -> None:
    assert only(text) == expected


def test_deconv_titles() -> None:
    assert only("convtranspose4-64 s=2").title() == "DECONV4-64"
    assert only("deconv2x4-8").title() == "DECONV2x4-8"


def test_deconv_errors_are_located() -> None:
    err = fault("input 5x5x4\ndeconv4-6 s=2 op=2")
    assert err.message == ("output_padding must be smaller than the stride or the dilation "
                           "(torch), not '2'")
    assert (err.loc.line, err.loc.col) == (2, 18)  # type: ignore[union-attr]  # under "2"
    assert fault("input 5x5x4\ndeconv3-6 op=1").message.startswith("output_padding must")
    with pytest.raises(SpecError, match=r"padding 1 crops the whole output \(-1x-1\)"):
        report("input 1x1x4\ndeconv1-4 p=1")
    with pytest.raises(SpecError, match="groups=3 must divide"):
        report("input 5x5x4\ndeconv3-6 g=3")


def test_deconv_counts() -> None:
    # deconv4-6 s=2 p=1 on 5x5x4: out (5-1)*2 - 2 + 3 + 1 = 10 -> 10x10x6;
    # weights 4 * 6 * 4*4 = 384, biases 6;
    # MACs per input position: 5*5 * 384 = 9,600 (fvcore; FlopCounterMode 19,200 FLOPs);
    # torchinfo: (384 + 6) * 10*10 output positions = 39,000;
    # full FLOPs: 2 * 9,600 + 600 bias adds = 19,800
    spec = "input 5x5x4\ndeconv4-6 s=2 p=1"
    (row,) = report(spec).rows
    assert row.out_shape == (6, 10, 10)
    assert (row.params.weights, row.params.biases) == (384, 6)
    assert str(row.formula) == "(4*4*4)*6"
    assert row.flops == 19_800
    assert row_macs(spec) == {"full": 9_600, "torchinfo": 39_000, "fvcore": 9_600,
                              "flopcounter": 9_600}
    assert report(spec, "flopcounter").rows[0].flops == 19_200


def test_grouped_deconv_counts() -> None:
    # deconv3-6 s=2 p=1 op=1 g=2 bias=false on 5x5x4: out (5-1)*2 - 2 + 2 + 1 + 1 = 10;
    # weights 4 * 6/2 * 3*3 = 108; MACs 25 * 108 = 2,700; torchinfo 108 * 100 = 10,800
    spec = "input 5x5x4\ndeconv3-6 s=2 p=1 op=1 g=2 bias=false"
    (row,) = report(spec).rows
    assert row.out_shape == (6, 10, 10) and row.params.trainable == 108
    assert row_macs(spec) == {"full": 2_700, "torchinfo": 10_800, "fvcore": 2_700,
                              "flopcounter": 2_700}


def test_deconv_field() -> None:
    # stride 1: the conv with padding d*(k-1) - p; deconv3 p=1 is conv3 p=1, deconv3 p=0
    # is conv3 p=2 (the output grows by 2), deconv3 d=2 p=0 is conv3 d=2 p=4
    assert only("deconv3-4 p=1").receptive_field(INPUT_RF, (3, 6, 6)) == RF(
        (3, 3), (1, 1), (-1, -1))
    assert only("deconv3-4").receptive_field(INPUT_RF, (3, 6, 6)) == RF(
        (3, 3), (1, 1), (-2, -2))
    assert only("deconv3-4 d=2").receptive_field(INPUT_RF, (3, 6, 6)) == RF(
        (5, 5), (1, 1), (-4, -4))
    # stride 2 interleaves: output units see every other input: no field
    assert only("deconv4-4 s=2 p=1").receptive_field(INPUT_RF, (3, 6, 6)) is None
    assert only("deconv4-4 s=2 p=1").subsampling() is None


def test_deconv_formulas() -> None:
    from archcalc.symbolic import layer_formulas

    lines = {r.name: r for r in layer_formulas("deconv4-6 s=2 p=1", (4, 5, 5)).rows}
    assert {k: v.value for k, v in lines.items()} == {"H_out": 10, "weights": 384,
                                                     "biases": 6, "MACs": 9_600}
    assert str(lines["MACs"].formula) == "C_in*C_out*H*K_h*K_w*W/g"


@needs_verify
@pytest.mark.parametrize("spec", [
    # an encoder-decoder: down by 2, up by a transposed conv and by bilinear upsampling
    "input 8x8x3\nconv3-4 s=2\ndeconv4-6 s=2 p=1\nupsample s=2x3 mode=bilinear\nconv3-2",
    # stride-1 transposed convs keep an exact field, probed row by row
    "input 6x6x4\ndeconv3-6 p=1\ndeconv3-4 d=2 p=1 op=1 g=2 bias=false\ndeconv2-4\n"
    "deconv3-2 p=3",
    "input 5x5x4\ndeconv3-6 s=2 p=1 op=1 g=2 bias=false\nupsample2\nupsample1",
])
def test_upsampling_verifies_against_torch(spec: str) -> None:
    assert_verifies(spec)
