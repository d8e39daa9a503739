"""The modern zoo models (issue 12, part 2): ShuffleNetV2, MobileNetV3-Large, EfficientNet-B0
and ConvNeXt-T. Each spec's parameter count equals the number torchvision publishes, and its
layers agree with arithmetic written out here from the papers and torchvision's code.

Published numbers are the "num_params" (and "GFLOPS", which are multiply-accumulates) of the
torchvision model docs' table of classification weights
(https://pytorch.org/vision/stable/models.html), i.e. ``sum(p.numel() for p in
model.parameters())`` of ``torchvision.models.<name>()``. The torch checks of these models
(verify_model at a small input) are in test_verify.py, SMALL_INPUTS.
"""

from __future__ import annotations

import pytest

import archcalc
from archcalc.analysis import Report, Row


def report(name: str, **params: int) -> Report:
    return archcalc.analyze(archcalc.load(name, **params))


def rows_of(rep: Report, kind: str) -> list[Row]:
    return [r for r in rep.rows if r.kind == kind]


def hwc(row: Row) -> tuple[int, ...]:
    """A row's output as H, W, C (the papers' notation)."""
    c, h, w = row.out_shape
    return (h, w, c)


def bn(c: int) -> int:
    """BatchNorm's (or LayerNorm's) trainable parameters: a scale and a shift per channel."""
    return 2 * c


def se(c: int, sq: int) -> int:
    """Squeeze-and-excitation on c channels through sq: two 1x1 convs with biases."""
    return (c * sq + sq) + (sq * c + c)


def body_params(rep: Report, block: Row) -> int:
    """The trainable parameters of the rows inside a block's row (a gate, a residual)."""
    return sum(r.params.trainable for r in rep.rows if r.path.startswith(block.path + "."))


def probability(row: Row) -> float:
    """A stochastic-depth row's p, as its spec writes it."""
    (option,) = (o for o in row.options if o.startswith("p="))
    return float(option.removeprefix("p="))


# (zoo name, published params, published GFLOPS, citation)
PUBLISHED = [
    ("shufflenet-v2", 2_278_604, 0.14,
     "torchvision docs, ShuffleNet_V2_X1_0_Weights.IMAGENET1K_V1: num_params 2,278,604, "
     "GFLOPS 0.14"),
    ("mobilenet-v3-large", 5_483_032, 0.22,
     "torchvision docs, MobileNet_V3_Large_Weights.IMAGENET1K_V1: num_params 5,483,032, "
     "GFLOPS 0.22"),
    ("efficientnet-b0", 5_288_548, 0.39,
     "torchvision docs, EfficientNet_B0_Weights.IMAGENET1K_V1: num_params 5,288,548, "
     "GFLOPS 0.39"),
    ("convnext-tiny", 28_589_128, 4.46,
     "torchvision docs, ConvNeXt_Tiny_Weights.IMAGENET1K_V1: num_params 28,589,128, "
     "GFLOPS 4.46"),
]


@pytest.mark.parametrize(("name", "params", "gflops", "citation"), PUBLISHED,
                         ids=[p[0] for p in PUBLISHED])
def test_params_equal_the_published_count(name: str, params: int, gflops: float,
                                          citation: str) -> None:
    rep = report(name)
    assert rep.totals.params == params, citation
    assert round(rep.totals.macs / 1e9, 2) == gflops, citation
    assert rep.warnings == ()
    assert rep.input_shape == (3, 224, 224)
    assert rep.rows[-1].out_shape == (1000,)  # logits


# -- ShuffleNetV2 x1.0 --------------------------------------------------------------------
STAGES = [(116, 4), (232, 8), (464, 4)]  # Ma et al. 2018, Table 5 (1x): channels, units


def shufflenet_v2_params() -> int:
    total, cin = 3 * 3 * 3 * 24 + bn(24), 24  # Conv1
    for c, n in STAGES:
        b = c // 2  # each branch gives half the unit's output channels
        # down-sampling unit (Fig. 3d): left 3x3 depthwise on cin + 1x1 cin -> b; right
        # 1x1 cin -> b, 3x3 depthwise, 1x1 b -> b; each conv followed by BN
        total += (9 * cin + bn(cin) + cin * b + bn(b)
                  + cin * b + bn(b) + 9 * b + bn(b) + b * b + bn(b))
        # basic units (Fig. 3c): only the second half's branch has weights
        total += (n - 1) * (b * b + bn(b) + 9 * b + bn(b) + b * b + bn(b))
        cin = c
    return total + 464 * 1024 + bn(1024) + 1024 * 1000 + 1000  # Conv5, FC


def test_shufflenet_v2_by_hand() -> None:
    rep = report("shufflenet-v2")
    assert rep.totals.params == shufflenet_v2_params()
    convs = rows_of(rep, "conv")
    # Conv1: 3x3x3 weights per filter, 24 filters, no bias = 648; 224 -> 112
    assert convs[0].params.weights == 3 * 3 * 3 * 24 == 648
    assert hwc(convs[0]) == (112, 112, 24)
    assert hwc(rows_of(rep, "pool")[0]) == (56, 56, 24)
    # the first down-sampling unit's left branch: a depthwise 3x3 on all 24 input channels
    # (one 3x3 filter each: 216 weights), then 24 -> 58
    assert [r.params.weights for r in convs[1:3]] == [9 * 24, 24 * 58] == [216, 1392]
    # every unit ends in a shuffle: 16 units; the last of each stage at the stage's output
    shuffles = rows_of(rep, "shuffle")
    assert len(shuffles) == sum(n for _, n in STAGES) == 16
    assert [hwc(shuffles[i]) for i in (3, 11, 15)] == [(28, 28, 116), (14, 14, 232),
                                                        (7, 7, 464)]
    assert len(rows_of(rep, "split")) == sum(n - 1 for _, n in STAGES) == 13
    # Conv5: 464 -> 1024 on 7x7, no bias; FC 1024 -> 1000 with bias = 1,025,000
    assert convs[-1].params.weights == 464 * 1024 and hwc(convs[-1]) == (7, 7, 1024)
    assert rows_of(rep, "linear")[0].params.trainable == 1024 * 1000 + 1000 == 1_025_000


# -- MobileNetV3-Large --------------------------------------------------------------------
# Howard et al. 2019, Table 1 (torchvision's bneck_conf rows): k, exp, out, SE, NL, s
BNECK = [
    (3, 16, 16, False, "RE", 1), (3, 64, 24, False, "RE", 2), (3, 72, 24, False, "RE", 1),
    (5, 72, 40, True, "RE", 2), (5, 120, 40, True, "RE", 1), (5, 120, 40, True, "RE", 1),
    (3, 240, 80, False, "HS", 2), (3, 200, 80, False, "HS", 1),
    (3, 184, 80, False, "HS", 1), (3, 184, 80, False, "HS", 1),
    (3, 480, 112, True, "HS", 1), (3, 672, 112, True, "HS", 1),
    (5, 672, 160, True, "HS", 2), (5, 960, 160, True, "HS", 1), (5, 960, 160, True, "HS", 1),
]


def make_divisible(v: float, divisor: int = 8) -> int:
    """torchvision's _make_divisible (from the TensorFlow reference): the multiple of divisor
    nearest v, at least divisor, raised by one divisor where that would lose over 10%."""
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


def mobilenet_v3_large_params() -> int:
    total, cin = 3 * 3 * 3 * 16 + bn(16), 16  # stem
    for k, exp, out, use_se, _, _ in BNECK:
        if exp != cin:
            total += cin * exp + bn(exp)  # 1x1 expansion
        total += k * k * exp + bn(exp)  # kxk depthwise: one kxk filter per channel
        if use_se:
            total += se(exp, make_divisible(exp // 4))
        total += exp * out + bn(out)  # linear 1x1 projection
        cin = out
    # last conv 160 -> 960, classifier FC 960 -> 1280 and 1280 -> 1000
    return total + 160 * 960 + bn(960) + 960 * 1280 + 1280 + 1280 * 1000 + 1000


def test_mobilenet_v3_large_by_hand() -> None:
    rep = report("mobilenet-v3-large")
    assert rep.totals.params == mobilenet_v3_large_params()
    convs = rows_of(rep, "conv")
    assert convs[0].params.weights == 3 * 3 * 3 * 16 == 432 and hwc(convs[0]) == (112, 112, 16)
    assert rows_of(rep, "bn")[0].label == "bn eps=0.001"
    # the squeeze widths of the spec are _make_divisible(exp // 4, 8): 72 // 4 = 18 and
    # 120 // 4 = 30 round to 16 and 32, and 16 < 0.9 * 18, so 18 -> 24
    gates = rows_of(rep, "gate")
    squeezes = [make_divisible(exp // 4) for _, exp, _, use_se, _, _ in BNECK if use_se]
    assert squeezes == [24, 32, 32, 120, 168, 168, 240, 240]
    assert len(gates) == len(squeezes)
    # the first SE block: 72 -> 24 -> 72, each 1x1 conv with bias:
    # 72*24 + 24 + 24*72 + 72 = 1752 + 1800 = 3552
    assert body_params(rep, gates[0]) == se(72, 24) == 3552
    assert [body_params(rep, g) for g in gates] == [se(exp, sq) for exp, sq in zip(
        [exp for _, exp, _, use_se, _, _ in BNECK if use_se], squeezes, strict=True)]
    # each SE: ReLU after the squeeze, hard-sigmoid after the excitation
    assert [r.label for r in rep.rows if r.kind == "act" and r.path.startswith(
        tuple(g.path + "." for g in gates))] == ["relu", "hardsigmoid"] * len(gates)
    # identity shortcuts where s = 1 and in = out: 10 of the 15 blocks
    adds = rows_of(rep, "add")
    assert len(adds) == 10
    # ReLU in the RE rows, hard-swish in the HS rows: 2 per block (1 for the first, which has
    # no expansion) + the SE's ReLUs; hard-swish also after the stem, last conv and first FC
    acts = [r.label for r in rows_of(rep, "act")]
    assert acts.count("hardswish") == 1 + 2 * 9 + 1 + 1
    assert acts.count("relu") == 1 + 2 * 5 + 8  # 8 SE ReLUs
    # last conv 160 -> 960 on 7x7; classifier 960 -> 1280 -> 1000
    assert convs[-1].params.weights == 160 * 960 and hwc(convs[-1]) == (7, 7, 960)
    assert [r.params.trainable for r in rows_of(rep, "linear")] == [
        960 * 1280 + 1280, 1280 * 1000 + 1000] == [1_230_080, 1_281_000]


# -- EfficientNet-B0 ----------------------------------------------------------------------
# Tan & Le 2019, Table 1 (torchvision's MBConvConfig rows): t, k, s, cin, c, n
MBCONV = [(1, 3, 1, 32, 16, 1), (6, 3, 2, 16, 24, 2), (6, 5, 2, 24, 40, 2),
          (6, 3, 2, 40, 80, 3), (6, 5, 1, 80, 112, 3), (6, 5, 2, 112, 192, 4),
          (6, 3, 1, 192, 320, 1)]


def mbconv(t: int, k: int, cin: int, c: int) -> int:
    e = t * cin  # already a multiple of 8 for B0: _make_divisible changes nothing
    expand = cin * e + bn(e) if t != 1 else 0
    # SE squeezes to a quarter of the block's INPUT channels: max(1, cin // 4)
    return expand + k * k * e + bn(e) + se(e, max(1, cin // 4)) + e * c + bn(c)


def efficientnet_b0_params() -> int:
    total = 3 * 3 * 3 * 32 + bn(32)  # stem
    for t, k, _, cin, c, n in MBCONV:
        total += mbconv(t, k, cin, c) + (n - 1) * mbconv(t, k, c, c)
    return total + 320 * 1280 + bn(1280) + 1280 * 1000 + 1000  # last conv, FC


def test_efficientnet_b0_by_hand() -> None:
    rep = report("efficientnet-b0")
    assert rep.totals.params == efficientnet_b0_params()
    convs = rows_of(rep, "conv")
    assert convs[0].params.weights == 3 * 3 * 3 * 32 == 864 and hwc(convs[0]) == (112, 112, 32)
    assert rows_of(rep, "bn")[0].label == "bn"  # torch's default eps 1e-5
    gates = rows_of(rep, "gate")
    assert len(gates) == sum(n for *_, n in MBCONV) == 16
    # block 0 (t = 1, 32 -> 16): SE 32 -> 8 -> 32 = 32*8 + 8 + 8*32 + 32 = 552
    assert body_params(rep, gates[0]) == se(32, 8) == 552
    # block 1 (16 -> 24, expanded to 96): SE 96 -> 16 // 4 = 4 -> 96 (the input's quarter,
    # not the expanded map's): 96*4 + 4 + 4*96 + 96 = 868
    assert body_params(rep, gates[1]) == se(96, 4) == 868
    # block 12 (192 -> 192, expanded to 1152): SE 1152 -> 48 -> 1152 = 111,792
    assert body_params(rep, gates[12]) == se(1152, 48) == 111_792
    assert all(r.label in ("silu", "sigmoid") for r in rows_of(rep, "act"))
    # identity shortcuts on the n - 1 later blocks of each row, each ending in stochastic
    # depth with p = 0.2 * j / 16 for block j of the 16 (torchvision's schedule)
    adds = rows_of(rep, "add")
    assert len(adds) == sum(n - 1 for *_, n in MBCONV) == 9
    drops = rows_of(rep, "stochasticdepth")
    assert [probability(r) for r in drops] == pytest.approx([0.2 * j / 16 for j in (
        2, 4, 6, 7, 9, 10, 12, 13, 14)])
    assert all(r.params.trainable == 0 and r.macs == 0 for r in drops)
    # last conv 320 -> 1280 on 7x7; FC 1280 -> 1000 = 1,281,000
    assert convs[-1].params.weights == 320 * 1280 and hwc(convs[-1]) == (7, 7, 1280)
    assert rows_of(rep, "linear")[0].params.trainable == 1280 * 1000 + 1000 == 1_281_000


# -- ConvNeXt-T ---------------------------------------------------------------------------
WIDTHS, DEPTHS = (96, 192, 384, 768), (3, 3, 9, 3)  # Liu et al. 2022, ConvNeXt-T


def convnext_block(c: int) -> int:
    """7x7 depthwise conv with bias, LayerNorm, Linear c -> 4c, Linear 4c -> c (both with
    bias), layer scale (c factors)."""
    return (49 * c + c) + bn(c) + (c * 4 * c + 4 * c) + (4 * c * c + c) + c


def convnext_tiny_params() -> int:
    total = 4 * 4 * 3 * 96 + 96 + bn(96)  # stem: patchify conv with bias, LayerNorm2d
    for i, (c, n) in enumerate(zip(WIDTHS, DEPTHS, strict=True)):
        total += n * convnext_block(c)
        if i < 3:
            total += bn(c) + 2 * 2 * c * 2 * c + 2 * c  # LayerNorm2d, 2x2/2 conv with bias
    return total + bn(768) + 768 * 1000 + 1000  # head: LayerNorm2d, FC


def test_convnext_tiny_by_hand() -> None:
    rep = report("convnext-tiny")
    assert rep.totals.params == convnext_tiny_params()
    convs = rows_of(rep, "conv")
    # stem: 4x4x3 weights per filter, 96 filters, with bias: 4608 + 96; 224 / 4 = 56
    assert convs[0].params.weights == 4 * 4 * 3 * 96 == 4608 and convs[0].params.biases == 96
    assert hwc(convs[0]) == (56, 56, 96)
    # the first block: 7x7 depthwise 96 (4704 + 96), 96 -> 384 (36,864 + 384),
    # 384 -> 96 (36,864 + 96), layer scale 96: 79,296 with its LayerNorm's 192
    first = rows_of(rep, "add")[0]
    assert body_params(rep, first) == convnext_block(96) == 79_296
    assert [r.params.trainable for r in convs[1:4]] == [4800, 37_248, 36_960]
    adds = rows_of(rep, "add")
    assert len(adds) == sum(DEPTHS) == 18
    assert [hwc(adds[i]) for i in (2, 5, 14, 17)] == [(56, 56, 96), (28, 28, 192),
                                                       (14, 14, 384), (7, 7, 768)]
    assert [r.params.trainable for r in rows_of(rep, "layerscale")] == [
        c for c, n in zip(WIDTHS, DEPTHS, strict=True) for _ in range(n)]
    # LayerNorms: stem, one per block, three downsamplings, head; all eps 1e-6
    norms = rows_of(rep, "layernorm")
    assert len(norms) == 1 + 18 + 3 + 1
    assert all(r.label == "layernorm eps=1e-6" for r in norms)
    # downsampling convs: 2x2/2, 4*c*2c + 2c
    downs = [r for r in convs if r.label.startswith("conv2-")]
    assert [r.params.trainable for r in downs] == [4 * c * 2 * c + 2 * c for c in WIDTHS[:3]]
    # stochastic depth p = 0.1 * j / 17 for block j of the 18, written to 4 places
    drops = rows_of(rep, "stochasticdepth")
    assert [probability(r) for r in drops] == pytest.approx(
        [0.1 * j / 17 for j in range(18)], abs=5e-5)
    assert probability(drops[-1]) == 0.1
    # head: pooled to 1x1, LayerNorm2d(768) = 1536, FC 768 -> 1000 = 769,000
    assert norms[-1].out_shape == (768, 1, 1) and norms[-1].params.trainable == 1536
    assert rows_of(rep, "linear")[0].params.trainable == 768 * 1000 + 1000 == 769_000
