"""archcalc.algebra: each rule against arithmetic written out by hand."""

from __future__ import annotations

import dataclasses
from fractions import Fraction

import pytest

from archcalc.algebra import INPUT_RF, RF, Ops, Params, fmt_shape, merge_rfs
from archcalc.errors import Loc, SpecError
from archcalc.kinds import (
    LRN,
    Activation,
    BatchNorm,
    Conv,
    Dropout,
    Flatten,
    GlobalPool,
    Linear,
    Pool,
    Residual,
    ShortcutKind,
    ZeroPadShortcut,
)
from archcalc.kinds.base import WeightFormula
from archcalc.layers import Node

HERE = Loc("t.arch", 7, 3, "  the layer")


def conv(out: int, k: int, s: int = 1, p: int = 0, d: int = 1, g: int = 1,
         bias: bool = True) -> Conv:
    return Conv(out, (k, k), (s, s), (p, p), (d, d), g, bias)


# -- shapes ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("size", "k", "s", "p", "d", "expected"),
    [
        (224, 7, 2, 3, 1, 112),  # (224 + 2*3 - 1*(7-1) - 1) // 2 + 1 = 223 // 2 + 1 = 112
        (32, 3, 1, 1, 1, 32),  # (32 + 2 - 2 - 1) // 1 + 1 = 32
        (5, 3, 2, 0, 1, 2),  # (5 - 2 - 1) // 2 + 1 = 1 + 1 = 2
        (6, 3, 2, 0, 1, 2),  # (6 - 3) // 2 + 1 = 1 + 1 = 2 (floor drops the last column)
        (227, 11, 4, 0, 1, 55),  # AlexNet: (227 - 11) // 4 + 1 = 54 + 1 = 55
        (7, 3, 1, 0, 2, 3),  # dilated span 2*(3-1)+1 = 5: 7 - 5 + 1 = 3
        (9, 3, 1, 2, 2, 9),  # pad 2 restores: 9 + 4 - 5 + 1 = 9
        (3, 3, 1, 0, 1, 1),  # a kernel exactly the size of its input
    ],
)
def test_conv_output_follows_the_floor_formula(size: int, k: int, s: int, p: int, d: int,
                                               expected: int) -> None:
    assert (size + 2 * p - d * (k - 1) - 1) // s + 1 == expected  # the formula, as written
    assert conv(8, k, s, p, d).output_shape((3, size, size), HERE) == (8, expected, expected)


def test_conv_axes_are_independent() -> None:
    layer = Conv(4, (1, 7), (2, 1), (0, 3))
    # H: (10 - 1) // 2 + 1 = 5;  W: (20 + 6 - 7) // 1 + 1 = 20
    assert layer.output_shape((3, 10, 20), HERE) == (4, 5, 20)


@pytest.mark.parametrize(
    ("size", "k", "s", "p", "floor", "ceil"),
    [
        # GoogLeNet 3x3/2 pools: floor((112-3)/2)+1 = 55, ceil(109/2)+1 = 56
        (112, 3, 2, 0, 55, 56),
        (56, 3, 2, 0, 27, 28),
        (14, 3, 2, 0, 6, 7),
        (8, 2, 2, 0, 4, 4),  # exact fit: no difference
        # ceil would give ceil((5 + 2 - 2) / 2) + 1 = 4, but the 4th window would start at
        # padded index 6 = 5 + 1, inside the right padding: torch drops it, so 3
        (5, 2, 2, 1, 3, 3),
    ],
)
def test_pool_ceil_mode(size: int, k: int, s: int, p: int, floor: int, ceil: int) -> None:
    for mode, expected in ((False, floor), (True, ceil)):
        pool = Pool("max", (k, k), (s, s), (p, p), mode)
        assert pool.output_shape((16, size, size), HERE) == (16, expected, expected)


def test_pool_padding_more_than_half_the_kernel_is_refused() -> None:
    assert Pool("max", (3, 3), (1, 1), (1, 1)).output_shape((1, 4, 4), HERE) == (1, 4, 4)
    with pytest.raises(SpecError, match="pool padding 2 is more than half the kernel 3"):
        Pool("max", (3, 3), (1, 1), (2, 2)).output_shape((1, 4, 4), HERE)


def test_kernel_larger_than_its_padded_input_is_refused_with_the_location() -> None:
    with pytest.raises(SpecError) as info:
        conv(8, 5).output_shape((3, 4, 4), HERE)
    assert info.value.message == "kernel 5 is larger than the padded input height (4 + 2*0 = 4)"
    assert info.value.loc == HERE
    with pytest.raises(SpecError, match="kernel 9 is larger"):  # dilated span 4*(3-1)+1
        conv(8, 3, d=4, p=1).output_shape((3, 6, 6), HERE)  # 6 + 2 = 8 < 9
    with pytest.raises(SpecError, match=r"width \(2 \+ 2\*0 = 2\)"):
        Pool("max", (1, 3), (1, 1)).output_shape((1, 5, 2), HERE)


def test_groups_must_divide_both_channel_counts() -> None:
    assert conv(6, 3, p=1, g=3).output_shape((6, 4, 4), HERE) == (6, 4, 4)
    with pytest.raises(SpecError, match=r"groups=4 must divide both the input channels \(6\) "
                                        r"and the output channels \(8\)"):
        conv(8, 3, p=1, g=4).output_shape((6, 4, 4), HERE)
    with pytest.raises(SpecError, match="groups=3"):
        conv(8, 3, p=1, g=3).output_shape((6, 4, 4), HERE)  # 3 divides 6 but not 8


def test_spatial_layers_need_feature_maps() -> None:
    for layer in (conv(8, 1), Pool("max"), GlobalPool(), LRN(), ZeroPadShortcut(4)):
        with pytest.raises(SpecError, match=r"needs a feature map .* got a vector of 10"):
            layer.output_shape((10,), HERE)


def test_shape_preserving_and_flattening_layers() -> None:
    x = (8, 5, 6)
    for layer in (BatchNorm(), Activation("relu"), Dropout(), LRN()):
        assert layer.output_shape(x, HERE) == x
    assert GlobalPool("max").output_shape(x, HERE) == (8, 1, 1)
    assert Flatten().output_shape(x, HERE) == (8 * 5 * 6,)
    assert Linear(10).output_shape(x, HERE) == (10,)
    assert Linear(10).output_shape((240,), HERE) == (10,)
    # option A subsamples every 2nd row: ceil(5 / 2) = 3, ceil(6 / 2) = 3
    assert ZeroPadShortcut(16, (2, 2)).output_shape(x, HERE) == (16, 3, 3)


# -- parameters -----------------------------------------------------------------------------
def test_conv_parameters() -> None:
    # VGG's first layer: (3*3*3)*64 = 1,728 weights and 64 biases
    assert conv(64, 3, p=1).parameters((3, 224, 224)) == Params(1728, 64, 0)
    assert conv(64, 3, p=1, bias=False).parameters((3, 8, 8)) == Params(1728, 0, 0)
    # grouped: each filter sees 32 / 4 = 8 channels: 64 * 8 * 3 * 3 = 4,608
    assert conv(64, 3, p=1, g=4).parameters((32, 8, 8)) == Params(4608, 64, 0)
    assert Conv(10, (1, 7)).parameters((4, 8, 8)) == Params(10 * 4 * 1 * 7, 10, 0)


def test_linear_parameters_flatten_a_feature_map() -> None:
    # VGG's FC-4096 after 7x7x512: 25,088 * 4,096 = 102,760,448 weights
    assert Linear(4096).parameters((512, 7, 7)) == Params(102_760_448, 4096, 0)
    assert Linear(10, bias=False).parameters((100,)) == Params(1000, 0, 0)


def test_batchnorm_parameters_and_buffers() -> None:
    # gamma and beta (64 each) are trained; running mean and variance (64 each) are buffers
    assert BatchNorm().parameters((64, 8, 8)) == Params(64, 64, 128)
    assert BatchNorm(affine=False).parameters((64, 8, 8)) == Params(0, 0, 128)
    assert BatchNorm().parameters((100,)) == Params(100, 100, 200)  # BatchNorm1d


def test_parameter_free_layers() -> None:
    for layer in (Pool("max"), GlobalPool(), Activation(), Dropout(), Flatten(), LRN(),
                  ZeroPadShortcut(8)):
        assert layer.parameters((4, 8, 8)) == Params()


def test_params_arithmetic() -> None:
    total = Params(10, 2, 4) + Params(5, 1, 0)
    assert total == Params(15, 3, 4)
    assert total.trainable == 18


def test_weight_formula_strings() -> None:
    assert str(conv(64, 3).weight_formula((3, 32, 32))) == "(3*3*3)*64"
    assert str(conv(64, 3, g=4).weight_formula((32, 8, 8))) == "(3*3*8)*64"
    linear = Linear(4096).weight_formula((512, 7, 7))
    assert str(linear) == "7*7*512*4096"  # H*W*C as fmt_shape
    assert linear == WeightFormula(((7, 7, 512, 4096),)) and linear.value == 102_760_448
    assert str(Linear(10).weight_formula((100,))) == "100*10"
    assert str(BatchNorm().weight_formula((64, 8, 8))) == "64"  # scales; shifts are biases
    assert BatchNorm(affine=False).weight_formula((64, 8, 8)) is None
    assert Activation().weight_formula((64, 8, 8)) is None


# -- operations -----------------------------------------------------------------------------
def test_conv_macs_and_bias_adds() -> None:
    # 32x32x64 outputs, each a 3*3*3 = 27-term dot product: 65,536 * 27 = 1,769,472 MACs
    ops = conv(64, 3, p=1).operations((3, 32, 32), (64, 32, 32))
    assert ops == Ops(macs=1_769_472, bias=65_536)
    assert conv(64, 3, p=1, bias=False).operations((3, 32, 32), (64, 32, 32)).bias == 0
    # grouped: 27 -> (32/4)*9 = 72 terms per output, 64*8*8 = 4,096 outputs
    assert conv(64, 3, p=1, g=4).operations((32, 8, 8), (64, 8, 8)).macs == 4096 * 72


def test_linear_macs() -> None:
    assert Linear(10).operations((512, 2, 2), (10,)) == Ops(macs=2048 * 10, bias=10)


def test_batchnorm_ops() -> None:
    ops = BatchNorm().operations((4, 3, 3), (4, 3, 3))
    assert ops == Ops(norm=36, norm_affine=36, norm_params=8)  # 4*3*3 elements, 2*4 params
    assert BatchNorm(affine=False).operations((4, 3, 3), (4, 3, 3)) == Ops(norm=36)


def test_activation_ops() -> None:
    assert Activation("relu").operations((2, 3, 3), (2, 3, 3)) == Ops(act=18)
    assert Activation("softmax").operations((10,), (10,)) == Ops(act=30)  # exp, sum, divide


def test_pool_ops() -> None:
    # 2x2 windows over 1x4x4 -> 2x2 outputs: max needs 3 comparisons each, avg 3 adds + 1 div
    assert Pool("max").operations((1, 4, 4), (1, 2, 2)) == Ops(pool=4 * 3)
    assert Pool("avg").operations((1, 4, 4), (1, 2, 2)) == Ops(pool=4 * 4)
    # global average over 3x5x5: 3 outputs of 25 inputs; fvcore counts the 75 inputs
    assert GlobalPool("avg").operations((3, 5, 5), (3, 1, 1)) == Ops(pool=75, pool_inputs=75)
    assert GlobalPool("max").operations((3, 5, 5), (3, 1, 1)) == Ops(pool=3 * 24)


def test_lrn_ops() -> None:
    # size 5: 5 squares + 4 adds, then scale/offset, power, divide: 9 + 3 = 12 per element
    assert LRN(size=5).operations((2, 2, 2), (2, 2, 2)) == Ops(lrn=8 * 12)


def test_free_layers_do_no_ops() -> None:
    for layer in (Dropout(), Flatten()):
        assert layer.operations((2, 2, 2), (2, 2, 2)) == Ops()


def test_ops_add_fieldwise() -> None:
    total = Ops(macs=1, bias=2, act=3) + Ops(macs=10, add=4, lrn=5)
    assert total == Ops(macs=11, bias=2, act=3, add=4, lrn=5)
    # astuple must list every field (new categories are added to both)
    assert len(total.astuple()) == len(dataclasses.fields(Ops))


# -- receptive field ------------------------------------------------------------------------
def test_rf_recurrence_on_a_plain_stack() -> None:
    # Araujo et al.: r <- r + (k - 1) * j;  start <- start - p * j;  j <- j * s
    rf = conv(8, 3, p=1).receptive_field(INPUT_RF, (3, 16, 16))
    assert rf == RF((3, 3), (1, 1), (-1, -1))  # 1 + 2*1; 0 - 1*1
    rf = conv(8, 3, p=1).receptive_field(rf, (8, 16, 16))
    assert rf == RF((5, 5), (1, 1), (-2, -2))  # 3 + 2*1; -1 - 1*1
    rf = Pool("max").receptive_field(rf, (8, 16, 16))
    assert rf == RF((6, 6), (2, 2), (-2, -2))  # 5 + 1*1; j = 1*2
    rf = conv(8, 3, p=1).receptive_field(rf, (8, 8, 8))
    assert rf == RF((10, 10), (2, 2), (-4, -4))  # 6 + 2*2; -2 - 1*2
    assert rf.padding == (4, 4)
    assert rf.center == (Fraction(1, 2), Fraction(1, 2))  # -4 + (10 - 1)/2


def test_rf_with_dilation() -> None:
    # dilation 2: span 2*(3-1)+1 = 5; dilation 4: span 9
    rf = conv(8, 3, p=2, d=2).receptive_field(INPUT_RF, (3, 16, 16))
    assert rf == RF((5, 5), (1, 1), (-2, -2))
    rf = conv(8, 3, p=4, d=4).receptive_field(rf, (8, 16, 16))
    assert rf == RF((13, 13), (1, 1), (-6, -6))  # 5 + 8; -2 - 4
    assert rf.center == (0, 0)


def test_rf_per_axis_and_strided() -> None:
    rf = Conv(4, (7, 1), (2, 1), (3, 0)).receptive_field(INPUT_RF, (3, 8, 8))
    assert rf == RF((7, 1), (2, 1), (-3, 0))
    rf = Conv(4, (3, 3), (2, 2), (1, 1)).receptive_field(rf, (4, 4, 8))
    # H: 7 + 2*2 = 11, start -3 - 1*2 = -5, j = 4;  W: 1 + 2*1 = 3, start -1, j = 2
    assert rf == RF((11, 3), (4, 2), (-5, -1))


def test_rf_of_option_a_shortcut_and_spreading_layers() -> None:
    rf = ZeroPadShortcut(8, (2, 2)).receptive_field(INPUT_RF, (4, 8, 8))
    assert rf == RF((1, 1), (2, 2), (0, 0))  # a 1x1 window with stride 2
    base = RF((10, 10), (2, 2), (-4, -4))
    # a global pool over a 4x4 map joins 4 fields 2 apart: 10 + 3*2 = 16
    assert GlobalPool().receptive_field(base, (8, 4, 4)) == RF((16, 16), (2, 2), (-4, -4))
    assert Flatten().receptive_field(base, (8, 4, 3)) == RF((16, 14), (2, 2), (-4, -4))
    assert Linear(5).receptive_field(base, (8, 1, 1)) == base
    assert Linear(5).receptive_field(base, (8,)) == base  # a vector: nothing to spread
    for layer in (BatchNorm(), Activation(), Dropout(), LRN()):
        assert layer.receptive_field(base, (8, 4, 4)) == base


def test_merge_of_aligned_fields() -> None:
    a = RF((3, 3), (1, 1), (-1, -1))  # centre 0
    b = RF((5, 5), (1, 1), (-2, -2))  # centre 0
    merged, aligned = merge_rfs([a, b])
    assert aligned
    assert merged == RF((5, 5), (1, 1), (-2, -2))  # union [-2, 2]


def test_merge_of_misaligned_fields() -> None:
    a = RF((1, 1), (2, 2), (0, 0))  # centre 0
    b = RF((2, 2), (2, 2), (0, 0))  # centre 0.5
    merged, aligned = merge_rfs([a, b])
    assert not aligned
    assert merged == RF((2, 2), (2, 2), (0, 0))  # union [0, 1]
    _, aligned = merge_rfs([RF((3, 3), (1, 1), (-1, -1)), RF((3, 3), (2, 2), (-1, -1))])
    assert not aligned  # same centre, different stride
    merged, _ = merge_rfs([RF((3, 1), (1, 1), (-1, 0)), RF((1, 5), (1, 1), (4, -2))])
    assert merged == RF((6, 5), (1, 1), (-1, -2))  # H: [-1, 4]; W: [-2, 2]


# -- shortcuts ------------------------------------------------------------------------------
def conv_node(layer: Conv) -> Node:
    return Node(layer, "conv", "1", HERE)


STRIDE_2 = (conv_node(conv(32, 3, s=2, p=1)),)  # a body that halves the map
STRIDE_1 = (conv_node(conv(16, 3, p=1)),)


def shortcut_layers(kind: ShortcutKind, in_shape: tuple[int, ...], out_shape: tuple[int, ...],
                    bias: bool = False, body: tuple[Node, ...] = STRIDE_2) -> tuple:
    """The shortcut's layers alone (their labels are the walker's business)."""
    block = Residual(body, kind, bias)
    return tuple(layer for layer, _ in block.shortcut_layers(in_shape, out_shape, HERE))


def test_identity_shortcut() -> None:
    assert shortcut_layers("identity", (16, 8, 8), (16, 8, 8)) == ()
    with pytest.raises(SpecError) as info:
        shortcut_layers("identity", (16, 8, 8), (32, 4, 4))
    assert info.value.message == ("residual body changes the shape 8x8x16 -> 4x4x32; an "
                                  "identity shortcut cannot add them (use shortcut=A, B or C)")
    assert info.value.loc == HERE


def test_option_a_and_b_are_identity_when_the_shape_is_kept() -> None:
    for kind in ("A", "B"):
        assert shortcut_layers(kind, (16, 8, 8), (16, 8, 8), body=STRIDE_1) == ()  # type: ignore[arg-type]


def test_option_a_subsamples_and_zero_pads() -> None:
    assert shortcut_layers("A", (16, 32, 32), (32, 16, 16)) == (ZeroPadShortcut(32, (2, 2)),)
    with pytest.raises(SpecError, match="shortcut A can only add channels, not reduce 32 to 16"):
        shortcut_layers("A", (32, 8, 8), (16, 8, 8), body=STRIDE_1)


def test_option_b_and_c_project() -> None:
    projection = (Conv(32, (1, 1), (2, 2), (0, 0), bias=False), BatchNorm())
    assert shortcut_layers("B", (16, 32, 32), (32, 16, 16)) == projection
    assert shortcut_layers("C", (16, 32, 32), (32, 16, 16)) == projection
    assert shortcut_layers("C", (16, 8, 8), (16, 8, 8), body=STRIDE_1) == (
        Conv(16, (1, 1), (1, 1), (0, 0), bias=False), BatchNorm())


def test_shortcut_stride_comes_from_the_body_not_from_the_shapes() -> None:
    # A stride-2 body on a 1x1 map keeps 1x1: the shortcut still has stride 2 (ResNet-18's
    # last stage at 16 px), so its receptive field steps as the body's does.
    assert shortcut_layers("B", (256, 1, 1), (512, 1, 1))[0].stride == (2, 2)
    # Two strided layers multiply: 2 * 2 = 4, whatever the map sizes.
    body = (conv_node(conv(8, 3, s=2, p=1)), conv_node(conv(16, 3, s=2, p=1)))
    assert shortcut_layers("A", (4, 7, 7), (16, 2, 2), body=body) == (
        ZeroPadShortcut(16, (4, 4)),)
    # A body that pools globally has no stride for a shortcut to follow.
    gap = (Node(GlobalPool(), "gap", "1", HERE),)
    with pytest.raises(SpecError, match="no fixed stride"):
        shortcut_layers("B", (16, 8, 8), (16, 1, 1), body=gap)


def test_projection_bias_goes_to_the_projection_conv() -> None:
    assert shortcut_layers("B", (16, 32, 32), (32, 16, 16), bias=True) == (
        Conv(32, (1, 1), (2, 2), (0, 0), bias=True), BatchNorm())
    assert shortcut_layers("C", (16, 8, 8), (16, 8, 8), bias=True, body=STRIDE_1)[0] == Conv(
        16, (1, 1), bias=True)
    assert shortcut_layers("B", (16, 8, 8), (16, 8, 8), bias=True, body=STRIDE_1) == ()


def test_projection_shortcuts_join_feature_maps_only() -> None:
    for kind in ("A", "B", "C"):
        with pytest.raises(SpecError, match="join feature maps or sequences, not vectors"):
            shortcut_layers(kind, (16,), (8,))  # type: ignore[arg-type]


def test_fmt_shape() -> None:
    assert fmt_shape((3, 224, 225)) == "224x225x3"
    assert fmt_shape((10,)) == "10"
    assert fmt_shape((16, 100)) == "100x16"  # a sequence: LxC, as the input line
