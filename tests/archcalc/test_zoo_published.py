"""The torchvision zoo models (issue 12): each spec's parameter count equals the number
torchvision publishes, and its layers agree with arithmetic written out here from the papers.

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
    """BatchNorm's trainable parameters: a scale and a shift per channel."""
    return 2 * c


def weighted_depth(rep: Report) -> int:
    """Convs and FC layers on the main path: the depth in a ResNet's or DenseNet's name
    (projection shortcuts are not counted)."""
    return len([r for r in rep.rows if r.kind in ("conv", "linear")
                and not r.label.startswith("shortcut")])


# AUX: torchvision's InceptionAux (conv0 BasicConv2d 768->128 1x1, conv1 BasicConv2d
# 128->768 5x5, fc 768->1000), which the published inception_v3 count includes
AUX = (768 * 128 + bn(128)) + (5 * 5 * 128 * 768 + bn(768)) + (768 * 1000 + 1000)

# (zoo name, published params, published GFLOPS, citation)
PUBLISHED = [
    ("resnet18", 11_689_512, 1.81,
     "torchvision docs, ResNet18_Weights.IMAGENET1K_V1: num_params 11,689,512, GFLOPS 1.81"),
    ("resnet34", 21_797_672, 3.66,
     "torchvision docs, ResNet34_Weights.IMAGENET1K_V1: num_params 21,797,672, GFLOPS 3.66"),
    ("resnet101", 44_549_160, 7.80,
     "torchvision docs, ResNet101_Weights.IMAGENET1K_V1: num_params 44,549,160, GFLOPS 7.80"),
    ("resnet152", 60_192_808, 11.51,
     "torchvision docs, ResNet152_Weights.IMAGENET1K_V1: num_params 60,192,808, GFLOPS 11.51"),
    ("densenet121", 7_978_856, 2.83,
     "torchvision docs, DenseNet121_Weights.IMAGENET1K_V1: num_params 7,978,856, GFLOPS 2.83"),
    ("squeezenet1.0", 1_248_424, 0.82,
     "torchvision docs, SqueezeNet1_0_Weights.IMAGENET1K_V1: num_params 1,248,424, "
     "GFLOPS 0.82"),
    ("squeezenet1.1", 1_235_496, 0.35,
     "torchvision docs, SqueezeNet1_1_Weights.IMAGENET1K_V1: num_params 1,235,496, "
     "GFLOPS 0.35"),
    ("mobilenet-v2", 3_504_872, 0.30,
     "torchvision docs, MobileNet_V2_Weights.IMAGENET1K_V1: num_params 3,504,872, GFLOPS 0.30"),
    ("inception-v3", 27_161_264 - AUX, 5.71,
     "torchvision docs, Inception_V3_Weights.IMAGENET1K_V1: num_params 27,161,264 with the "
     "auxiliary classifier (GFLOPS 5.71, eval mode: no aux); 23,834,568 without it, "
     "= inception_v3(aux_logits=False, init_weights=False)"),
]


@pytest.mark.parametrize(("name", "params", "gflops", "citation"), PUBLISHED,
                         ids=[p[0] for p in PUBLISHED])
def test_params_equal_the_published_count(name: str, params: int, gflops: float,
                                          citation: str) -> None:
    rep = report(name)
    assert rep.totals.params == params, citation
    assert round(rep.totals.macs / 1e9, 2) == gflops, citation
    assert rep.warnings == ()


# -- ResNet-18/34/101/152 -----------------------------------------------------------------
def resnet_basic_params(blocks: tuple[int, int, int, int]) -> int:
    """He et al. 2016, Table 1 with basic blocks (two 3x3 convs, no bias, BN after each) and
    option B projections (1x1 conv + BN) where the shape changes."""
    total = 7 * 7 * 3 * 64 + bn(64)
    cin = 64
    for w, n in zip((64, 128, 256, 512), blocks, strict=True):
        first = 9 * cin * w + bn(w) + 9 * w * w + bn(w)
        if cin != w:
            first += cin * w + bn(w)  # the projection shortcut
        total += first + (n - 1) * (2 * (9 * w * w + bn(w)))
        cin = w
    return total + 512 * 1000 + 1000


@pytest.mark.parametrize(("name", "blocks"), [("resnet18", (2, 2, 2, 2)),
                                              ("resnet34", (3, 4, 6, 3))])
def test_resnet_basic_by_hand(name: str, blocks: tuple[int, int, int, int]) -> None:
    rep = report(name)
    assert rep.totals.params == resnet_basic_params(blocks)
    convs = rows_of(rep, "conv")
    assert convs[0].params.weights == 7 * 7 * 3 * 64  # conv1, no bias
    assert hwc(convs[0]) == (112, 112, 64)
    assert hwc(rows_of(rep, "pool")[0]) == (56, 56, 64)
    assert rows_of(rep, "linear")[0].params.trainable == 512 * 1000 + 1000
    assert hwc(rows_of(rep, "add")[-1]) == (7, 7, 512)  # conv5_x, before the average pool
    assert len(rows_of(rep, "add")) == sum(blocks)
    assert weighted_depth(rep) == 2 + 2 * sum(blocks) == int(name.removeprefix("resnet"))
    projections = [r for r in convs if r.label.startswith("shortcut")]
    assert [r.params.weights for r in projections] == [64 * 128, 128 * 256, 256 * 512]


@pytest.mark.parametrize(("name", "blocks"), [("resnet101", dict(b4=23)),
                                              ("resnet152", dict(b3=8, b4=36))])
def test_resnet_bottleneck_variants(name: str, blocks: dict[str, int]) -> None:
    rep = report(name)
    assert rep.totals == report("resnet50", **blocks).totals  # the paper's Table 1 columns
    assert weighted_depth(rep) == int(name.removeprefix("resnet"))
    # 2 + 3 * blocks: 3 + 4 + 23 + 3 = 33 blocks (101), 3 + 8 + 36 + 3 = 50 (152)
    assert weighted_depth(rep) == 2 + 3 * len(rows_of(rep, "add"))
    assert rows_of(rep, "conv")[0].params.weights == 7 * 7 * 3 * 64
    assert rows_of(rep, "linear")[0].params.trainable == 2048 * 1000 + 1000
    assert hwc(rows_of(rep, "add")[-1]) == (7, 7, 2048)
    # torchvision's stride placement (v1.5): conv3_1's first 1x1 keeps 56x56
    first = [r for r in rows_of(rep, "conv") if r.in_shape == (256, 56, 56)
             and r.out_shape[0] == 128]
    assert [hwc(r) for r in first] == [(56, 56, 128)]


# -- DenseNet-121 -------------------------------------------------------------------------
def densenet_params(blocks: tuple[int, ...] = (6, 12, 24, 16), k: int = 32,
                    init: int = 64) -> int:
    """Huang et al. 2017, DenseNet-BC: dense layer BN-ReLU-1x1(4k)-BN-ReLU-3x3(k), transition
    BN-ReLU-1x1 halving the channels, final BN and FC; no conv bias."""
    total, c = 7 * 7 * 3 * init + bn(init), init
    for i, n in enumerate(blocks):
        for _ in range(n):
            total += bn(c) + c * 4 * k + bn(4 * k) + 9 * 4 * k * k
            c += k
        if i < len(blocks) - 1:
            total += bn(c) + c * (c // 2)
            c //= 2
    return total + bn(c) + c * 1000 + 1000


def test_densenet121_by_hand() -> None:
    rep = report("densenet121")
    assert rep.totals.params == densenet_params()
    convs = rows_of(rep, "conv")
    assert convs[0].params.weights == 7 * 7 * 3 * 64
    # the first dense layer: 1x1 64 -> 128, 3x3 128 -> 32
    assert [r.params.weights for r in convs[1:3]] == [64 * 128, 3 * 3 * 128 * 32]
    # transitions: 64 + 6*32 = 256 -> 128, 128 + 12*32 = 512 -> 256, 256 + 24*32 = 1024 -> 512
    transitions = [r for r in rows_of(rep, "pool") if r.label == "avgpool2"]
    assert [hwc(r) for r in transitions] == [(28, 28, 128), (14, 14, 256), (7, 7, 512)]
    concats = rows_of(rep, "concat")
    assert len(concats) == 6 + 12 + 24 + 16
    assert hwc(concats[-1]) == (7, 7, 512 + 16 * 32) == (7, 7, 1024)
    assert rows_of(rep, "linear")[0].params.trainable == 1024 * 1000 + 1000
    # 121 = conv1 + 2 convs x 58 dense layers + 3 transitions + FC
    assert weighted_depth(rep) == 1 + 2 * 58 + 3 + 1 == 121


@pytest.mark.parametrize(("params", "overrides", "count"), [
    # torchvision docs: densenet169 14,149,480, densenet201 20,013,928, densenet161 28,681,000
    (dict(b3=32, b4=32), (6, 12, 32, 32), 14_149_480),
    (dict(b3=48, b4=32), (6, 12, 48, 32), 20_013_928),
    (dict(k=48, init=96, b3=36, b4=24), (6, 12, 36, 24), 28_681_000),
], ids=["densenet169", "densenet201", "densenet161"])
def test_densenet_other_columns_of_table1(params: dict[str, int],
                                          overrides: tuple[int, ...], count: int) -> None:
    k, init = params.get("k", 32), params.get("init", 64)
    assert report("densenet121", **params).totals.params == count
    assert densenet_params(overrides, k, init) == count


# -- SqueezeNet 1.0 / 1.1 -----------------------------------------------------------------
FIRES = [(16, 64), (16, 64), (32, 128), (32, 128), (48, 192), (48, 192), (64, 256), (64, 256)]


def fire(cin: int, s: int, e: int) -> int:
    """Iandola et al. 2016, Sec. 3.2: squeeze 1x1, expand 1x1 and 3x3, all with biases."""
    return (cin * s + s) + (s * e + e) + (9 * s * e + e)


def squeezenet_params(conv1: int, c1: int) -> int:
    total = conv1 * conv1 * 3 * c1 + c1
    cin = c1
    for s, e in FIRES:
        total += fire(cin, s, e)
        cin = 2 * e
    return total + 512 * 1000 + 1000  # conv10


@pytest.mark.parametrize(("name", "conv1", "c1", "pools"), [
    # v1.0: 224 -> conv1 7x7/2 (no pad) 109 -> 54 (ceil) after conv1, fire4 and fire8
    ("squeezenet1.0", 7, 96, [(54, 54, 96), (27, 27, 256), (13, 13, 512)]),
    # v1.1: 224 -> conv1 3x3/2 111 -> 55, pools after conv1, fire3 and fire5
    ("squeezenet1.1", 3, 64, [(55, 55, 64), (27, 27, 128), (13, 13, 256)]),
])
def test_squeezenet_by_hand(name: str, conv1: int, c1: int,
                            pools: list[tuple[int, int, int]]) -> None:
    rep = report(name)
    assert rep.totals.params == squeezenet_params(conv1, c1)
    convs = rows_of(rep, "conv")
    assert convs[0].params.trainable == conv1 * conv1 * 3 * c1 + c1
    assert hwc(convs[0])[0] == (224 - conv1) // 2 + 1
    assert [hwc(r) for r in rows_of(rep, "pool")] == pools
    assert [hwc(r)[2] for r in rows_of(rep, "concat")] == [2 * e for _, e in FIRES]
    assert convs[-1].params.trainable == 512 * 1000 + 1000  # conv10, 1x1
    assert hwc(convs[-1]) == (13, 13, 1000)
    assert rep.rows[-1].out_shape == (1000,)  # averaged and flattened: logits
    assert rows_of(rep, "linear") == []  # no fully-connected layer at all
    # 1x1 v 3x3 cost 9x: fire9's expand3x3 has 9x the weights of its expand1x1
    assert convs[-2].params.weights == 9 * convs[-3].params.weights == 9 * 64 * 256


# -- MobileNetV2 --------------------------------------------------------------------------
SETTING = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
           (6, 160, 3, 2), (6, 320, 1, 1)]  # t, c, n, s (Sandler et al. 2018, Table 2)


def mobilenet_v2_params() -> int:
    total, cin = 3 * 3 * 3 * 32 + bn(32), 32
    for t, c, n, _ in SETTING:
        for _ in range(n):
            hidden = t * cin
            if t != 1:
                total += cin * hidden + bn(hidden)  # expansion 1x1
            total += 3 * 3 * hidden + bn(hidden)  # depthwise 3x3: one 3x3 filter per channel
            total += hidden * c + bn(c)  # linear projection 1x1
            cin = c
    return total + 320 * 1280 + bn(1280) + 1280 * 1000 + 1000


def test_mobilenet_v2_by_hand() -> None:
    rep = report("mobilenet-v2")
    assert rep.totals.params == mobilenet_v2_params()
    convs = rows_of(rep, "conv")
    assert convs[0].params.weights == 3 * 3 * 3 * 32 and hwc(convs[0]) == (112, 112, 32)
    assert convs[1].params.weights == 3 * 3 * 1 * 32  # the first depthwise conv
    # identity shortcuts only where stride 1 and in == out: n - 1 per row of Table 2
    adds = rows_of(rep, "add")
    assert len(adds) == sum(n - 1 for _, _, n, _ in SETTING) == 10
    assert rows_of(rep, "zeropad") == [] and not any(
        r.label.startswith("shortcut") for r in rep.rows)
    assert [hwc(r) for r in adds[::3]] == [(56, 56, 24), (14, 14, 64), (14, 14, 96),
                                           (7, 7, 160)]
    assert hwc(convs[-1]) == (7, 7, 1280)
    assert convs[-1].params.weights == 320 * 1280
    assert rows_of(rep, "linear")[0].params.trainable == 1280 * 1000 + 1000
    assert len(rows_of(rep, "act")) == 1 + 2 * 17 - 1 + 1  # ReLU6s; t=1 has no expansion


# -- Inception-v3 -------------------------------------------------------------------------
def basic(cin: int, cout: int, kh: int, kw: int | None = None) -> int:
    """torchvision's BasicConv2d: a conv without bias and a BN."""
    return kh * (kw or kh) * cin * cout + bn(cout)


def inception_a(cin: int, pool: int) -> int:
    return (basic(cin, 64, 1) + basic(cin, 48, 1) + basic(48, 64, 5) + basic(cin, 64, 1)
            + basic(64, 96, 3) + basic(96, 96, 3) + basic(cin, pool, 1))


def inception_b(cin: int) -> int:
    return basic(cin, 384, 3) + basic(cin, 64, 1) + basic(64, 96, 3) + basic(96, 96, 3)


def inception_c(cin: int, c7: int) -> int:
    return (basic(cin, 192, 1)
            + basic(cin, c7, 1) + basic(c7, c7, 1, 7) + basic(c7, 192, 7, 1)
            + basic(cin, c7, 1) + basic(c7, c7, 7, 1) + basic(c7, c7, 1, 7)
            + basic(c7, c7, 7, 1) + basic(c7, 192, 1, 7)
            + basic(cin, 192, 1))


def inception_d(cin: int) -> int:
    return (basic(cin, 192, 1) + basic(192, 320, 3) + basic(cin, 192, 1)
            + basic(192, 192, 1, 7) + basic(192, 192, 7, 1) + basic(192, 192, 3))


def inception_e(cin: int) -> int:
    split = basic(384, 384, 1, 3) + basic(384, 384, 3, 1)
    return (basic(cin, 320, 1) + basic(cin, 384, 1) + split
            + basic(cin, 448, 1) + basic(448, 384, 3) + split + basic(cin, 192, 1))


def inception_v3_params() -> int:
    stem = (basic(3, 32, 3) + basic(32, 32, 3) + basic(32, 64, 3) + basic(64, 80, 1)
            + basic(80, 192, 3))
    mixed = (inception_a(192, 32) + inception_a(256, 64) + inception_a(288, 64)
             + inception_b(288) + inception_c(768, 128) + 2 * inception_c(768, 160)
             + inception_c(768, 192) + inception_d(768) + inception_e(1280)
             + inception_e(2048))
    return stem + mixed + 2048 * 1000 + 1000


def test_inception_v3_by_hand() -> None:
    rep = report("inception-v3")
    assert rep.input_shape == (3, 299, 299)
    assert rep.totals.params == inception_v3_params() == 23_834_568
    assert inception_v3_params() + AUX == 27_161_264  # torchvision's published count
    assert AUX == 3_326_696
    convs = rows_of(rep, "conv")
    assert convs[0].params.weights == 3 * 3 * 3 * 32
    # the stem: 299 -> 149 -> 147 -> 147 -> pool 73 -> 73 -> 71 -> pool 35
    assert [hwc(r) for r in convs[:5]] == [(149, 149, 32), (147, 147, 32), (147, 147, 64),
                                           (73, 73, 80), (71, 71, 192)]
    assert [hwc(r) for r in rows_of(rep, "pool")[:2]] == [(73, 73, 64), (35, 35, 192)]
    modules = [r for r in rows_of(rep, "concat") if r.depth == 0]  # Mixed_5b .. Mixed_7c
    assert [hwc(r) for r in modules] == [
        (35, 35, 256), (35, 35, 288), (35, 35, 288),
        (17, 17, 768), (17, 17, 768), (17, 17, 768), (17, 17, 768), (17, 17, 768),
        (8, 8, 1280), (8, 8, 2048), (8, 8, 2048)]
    # the asymmetric convs of Mixed_6b: 1x7 and 7x1 kernels, 7 taps each
    assert sum(r.params.weights == 1 * 7 * 128 * 128 for r in convs) >= 3
    assert rows_of(rep, "linear")[0].params.trainable == 2048 * 1000 + 1000
    assert len(convs) == 94  # torchvision's inception_v3 without aux: 94 BasicConv2d
