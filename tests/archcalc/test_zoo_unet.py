"""The 2015 U-Net (issue 12): Ronneberger, Fischer & Brox, "U-Net: Convolutional Networks for
Biomedical Image Segmentation", MICCAI 2015, Fig. 1. Parameters written out conv by conv,
the map sizes of every level as Fig. 1 labels them, the copy-and-crop amounts and the
classes parameter. The torch check (verify_model at 188x188) is in test_verify.py,
SMALL_INPUTS."""

from __future__ import annotations

import pytest

import archcalc
from archcalc.analysis import Report, Row


def report(input_shape: tuple[int, int, int] | None = None, **params: int) -> Report:
    return archcalc.analyze(archcalc.load("unet", **params), input_shape=input_shape)


def rows_of(rep: Report, kind: str) -> list[Row]:
    return [r for r in rep.rows if r.kind == kind]


def hwc(row: Row) -> tuple[int, ...]:
    c, h, w = row.out_shape
    return (h, w, c)


def conv(k: int, cin: int, cout: int) -> int:
    """A k x k conv (or 2x2 up-conv) with a bias: k*k*cin*cout weights + cout biases."""
    return k * k * cin * cout + cout


# Contracting path, two 3x3 convs per level
ENCODER = [
    3 * 3 * 1 * 64 + 64,  # 640
    3 * 3 * 64 * 64 + 64,  # 36,928
    3 * 3 * 64 * 128 + 128,  # 73,856
    3 * 3 * 128 * 128 + 128,  # 147,584
    3 * 3 * 128 * 256 + 256,  # 295,168
    3 * 3 * 256 * 256 + 256,  # 590,080
    3 * 3 * 256 * 512 + 512,  # 1,180,160
    3 * 3 * 512 * 512 + 512,  # 2,359,808
    3 * 3 * 512 * 1024 + 1024,  # 4,719,616
    3 * 3 * 1024 * 1024 + 1024,  # 9,438,208
]
# Expansive path: per level an up-conv 2x2 halving the channels, then two 3x3 convs on the
# concatenation (twice the up-conv's channels); the final 1x1 conv to 2 classes
DECODER = [
    2 * 2 * 1024 * 512 + 512,  # 2,097,664
    3 * 3 * 1024 * 512 + 512,  # 4,719,104
    3 * 3 * 512 * 512 + 512,  # 2,359,808
    2 * 2 * 512 * 256 + 256,  # 524,544
    3 * 3 * 512 * 256 + 256,  # 1,179,904
    3 * 3 * 256 * 256 + 256,  # 590,080
    2 * 2 * 256 * 128 + 128,  # 131,200
    3 * 3 * 256 * 128 + 128,  # 295,040
    3 * 3 * 128 * 128 + 128,  # 147,584
    2 * 2 * 128 * 64 + 64,  # 32,832
    3 * 3 * 128 * 64 + 64,  # 73,792
    3 * 3 * 64 * 64 + 64,  # 36,928
    1 * 1 * 64 * 2 + 2,  # 130
]


def test_parameters_by_hand() -> None:
    assert sum(ENCODER) == 18_842_048
    assert sum(DECODER) == 12_188_610
    # 31,030,658. The figure 31,031,685 sometimes quoted for the 2-class U-Net is 1,027
    # more than this sum of Fig. 1's layers (no conv of the figure accounts for 1,027).
    assert sum(ENCODER) + sum(DECODER) == 31_030_658
    rep = report()
    assert rep.totals.params == 31_030_658
    assert rep.totals.buffers == 0
    # biases: 2*(64+128+256+512) + 2*1024 in the contracting path, 3*(512+256+128+64) in
    # the expansive one, 2 in the last conv
    assert rep.totals.biases == 2 * (64 + 128 + 256 + 512) + 2 * 1024 + 3 * 960 + 2 == 6850


def test_each_layer_has_the_hand_count() -> None:
    rep = report()
    counted = [r.params.trainable for r in rep.rows if r.kind in ("conv", "deconv")]
    # the spec's order: the contracting path down to the bottom, then the expansive one
    assert counted == ENCODER + DECODER
    assert [conv(3, 1, 64), conv(2, 1024, 512), conv(1, 64, 2)] == [640, 2_097_664, 130]


def test_sizes_per_level_follow_fig_1() -> None:
    rep = report()
    convs = [hwc(r) for r in rows_of(rep, "conv")]
    # contracting path: 572 -> 570 -> 568, pool 284 -> 282 -> 280, 140 -> 138 -> 136,
    # 68 -> 66 -> 64, 32 -> 30 -> 28
    assert convs[:10] == [(570, 570, 64), (568, 568, 64), (282, 282, 128), (280, 280, 128),
                          (138, 138, 256), (136, 136, 256), (66, 66, 512), (64, 64, 512),
                          (30, 30, 1024), (28, 28, 1024)]
    # expansive path: up 56 -> 54 -> 52, up 104 -> 102 -> 100, up 200 -> 198 -> 196,
    # up 392 -> 390 -> 388, 1x1 to 388x388x2
    assert convs[10:] == [(54, 54, 512), (52, 52, 512), (102, 102, 256), (100, 100, 256),
                          (198, 198, 128), (196, 196, 128), (390, 390, 64), (388, 388, 64),
                          (388, 388, 2)]
    assert [hwc(r) for r in rows_of(rep, "deconv")] == [
        (56, 56, 512), (104, 104, 256), (200, 200, 128), (392, 392, 64)]
    assert [hwc(r) for r in rows_of(rep, "pool")] == [
        (284, 284, 64), (140, 140, 128), (68, 68, 256), (32, 32, 512)]
    # the concatenations: cropped copy + up-conv, twice the up-conv's channels
    assert [hwc(r) for r in rows_of(rep, "concat")] == [
        (56, 56, 1024), (104, 104, 512), (200, 200, 256), (392, 392, 128)]
    assert rep.rows[-1].out_shape == (2, 388, 388)


def test_copy_and_crop_amounts_follow_fig_1() -> None:
    rep = report()
    crops = rows_of(rep, "crop")
    # Fig. 1: 568 -> 392, 280 -> 200, 136 -> 104, 64 -> 56: (in - out) / 2 per side
    assert [(r.in_shape[1], r.out_shape[1]) for r in crops] == [
        (568, 392), (280, 200), (136, 104), (64, 56)]
    assert [r.title for r in crops] == ["CROP88", "CROP40", "CROP16", "CROP4"]
    assert [(568 - 392) // 2, (280 - 200) // 2, (136 - 104) // 2, (64 - 56) // 2] == [
        88, 40, 16, 4]
    assert all(r.inplace for r in crops)  # slices: views of the encoder maps


@pytest.mark.parametrize("m", [4, 5, 28])
def test_crops_fit_every_input_16m_plus_124(m: int) -> None:
    # m: the bottom map after its convs; the output is the decoder's 16m - 60
    n = 16 * m + 124
    rep = report((1, n, n))
    assert rep.rows[-1].out_shape == (2, 16 * m - 60, 16 * m - 60)


def test_classes_parameter() -> None:
    rep = report(classes=5)
    assert rep.rows[-1].out_shape == (5, 388, 388)
    assert rep.totals.params == 31_030_658 - conv(1, 64, 2) + conv(1, 64, 5)
