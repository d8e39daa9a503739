"""The zoo: every spec parses and analyzes cleanly, and each model's numbers agree with
arithmetic written out here by hand and with the numbers its source publishes."""

from __future__ import annotations

import importlib.util

import pytest

import archcalc
from archcalc import zoo
from archcalc.analysis import Report, Row


def report(name: str, **params: int) -> Report:
    return archcalc.analyze(archcalc.load(name, **params))


def rows_of(rep: Report, kind: str) -> list[Row]:
    return [r for r in rep.rows if r.kind == kind]


def hwc(row: Row) -> tuple[int, ...]:
    """A row's output as H, W, C (the papers' notation)."""
    c, h, w = row.out_shape
    return (h, w, c)


# -- every registered model -----------------------------------------------------------------
@pytest.mark.parametrize("entry", zoo.entries(), ids=lambda e: e.name)
def test_every_zoo_model_analyzes_cleanly(entry: zoo.ZooEntry) -> None:
    graph = archcalc.load(entry.name)
    rep = archcalc.analyze(graph)
    if entry.name == "unet":  # its first 2x2/2 up-conv: fields of stride 1/2, none from it on
        (warning,) = rep.warnings
        assert "deconv2-512 s=2: no receptive field from here on" in warning
    elif entry.name == "nasnet-mobile":  # joins of fields that Keras offsets on purpose (the
        # factorized reduction samples p at odd pixels beside even ones; correct_pad pads
        # an even map 0/1 before a pool and k//2-1/k//2 before a conv beside it)
        assert rep.warnings and all("are misaligned" in w for w in rep.warnings)
    else:
        assert rep.warnings == ()
    assert graph.name == entry.name
    assert graph.source.strip(), f"{entry.file.name} needs a 'source' line"
    assert graph.source == entry.source  # the registry's header scan and the parser agree
    assert entry.file.read_text(encoding="utf-8").lstrip().startswith("#")  # cites in comments
    assert rep.totals.params > 0 and rep.totals.macs > 0


def test_every_zoo_name_is_in_one_file_only() -> None:
    """load() stops at the first file with the name, searching likely files first: that is
    the whole-zoo search only if no name is in two files (a variant, or a spec's own model
    name, the name 'vgg' of vgg.arch)."""
    owners: dict[str, set[str]] = {}
    for entry in zoo.entries():
        owners.setdefault(entry.name, set()).add(entry.file.name)
    for path in zoo.files():
        owners.setdefault(zoo.header(path).model or path.stem, set()).add(path.name)
    assert {name: files for name, files in owners.items() if len(files) > 1} == {}
    for name in ("vgg19", "vgg", "resnet44", "inception-v3-aux", "densenet121"):
        graph = zoo.load(name)
        assert graph.name == name and graph.file in {str(e.file) for e in zoo.entries()}


def test_headers_are_read_by_the_spec_parser() -> None:
    """A variant after a define would be missed by the header reader: the language puts
    variants first, with a located error."""
    from archcalc.errors import SpecError
    from archcalc.spec import parse

    header = zoo.header(zoo.ZOO_DIR / "vgg.arch")
    assert header.model == "vgg" and ("vgg19", (("n1", 2), ("n2", 2), ("n3", 4), ("n4", 4),
                                                 ("n5", 4))) in header.variants
    with pytest.raises(SpecError, match="'variant' lines come before the first 'define'"):
        parse("input 4x4x3\nparam n = 1\ndefine b() { relu }\nvariant x n=2\nb")


def test_the_zoo_holds_the_expected_models() -> None:
    expected = {
        "alexnet", "alexnet-torchvision", "inception-naive", "inception-reduction",
        "googlenet", "resnet20", "resnet32", "resnet44", "resnet56", "resnet110", "resnet50",
        "resnet50-paper", "resnet50-keras", "mlp-cifar", "mlp-cifar-dropout",
        "resnet18", "resnet34", "resnet101", "resnet152", "densenet121", "squeezenet1.0",
        "squeezenet1.1", "mobilenet-v2", "inception-v3", "inception-v3-aux", "googlenet-aux",
        "shufflenet-v2",
        "mobilenet-v3-large", "efficientnet-b0", "convnext-tiny", "unet",
    }
    assert expected <= set(zoo.names())
    assert len(zoo.names()) == len(set(zoo.names()))


# -- AlexNet ----------------------------------------------------------------------------------
ALEXNET_PAPER = [  # Krizhevsky et al. 2012, Figure 2; groups=2 halves the inputs of 2, 4, 5
    11 * 11 * 3 * 96 + 96,  # conv1: 34,944
    5 * 5 * 48 * 256 + 256,  # conv2, 48 = 96/2 input maps per GPU: 307,456
    3 * 3 * 256 * 384 + 384,  # conv3 sees both GPUs: 885,120
    3 * 3 * 192 * 384 + 384,  # conv4: 663,936
    3 * 3 * 192 * 256 + 256,  # conv5: 442,624
    6 * 6 * 256 * 4096 + 4096,  # FC6: 37,752,832
    4096 * 4096 + 4096,  # FC7: 16,781,312
    4096 * 1000 + 1000,  # FC8: 4,097,000
]


def test_alexnet_paper_params_layer_by_layer() -> None:
    rep = report("alexnet")
    weighted = [r for r in rep.rows if r.kind in ("conv", "linear")]
    assert [r.params.trainable for r in weighted] == ALEXNET_PAPER
    # The homework's (and the usual) published total for the two-GPU AlexNet: 60,965,224.
    assert rep.totals.params == sum(ALEXNET_PAPER) == 60_965_224


def test_alexnet_paper_shapes_and_receptive_field() -> None:
    rep = report("alexnet")
    assert rep.input_shape == (3, 227, 227)
    convs, pools = rows_of(rep, "conv"), rows_of(rep, "pool")
    assert [hwc(r) for r in convs] == [(55, 55, 96), (27, 27, 256), (13, 13, 384),
                                       (13, 13, 384), (13, 13, 256)]
    assert [hwc(r) for r in pools] == [(27, 27, 96), (13, 13, 256), (6, 6, 256)]
    assert len(rows_of(rep, "lrn")) == 2
    # receptive field of pool5 by the recurrence r += (k-1)*j, j *= s:
    # conv1 11 (j 4), pool 11+2*4=19 (j 8), conv2 19+4*8=51, pool 51+2*8=67 (j 16),
    # conv3-5 67+3*2*16=163, pool5 163+2*16=195
    assert pools[-1].rf is not None and pools[-1].rf.size == (195, 195)


def test_alexnet_at_224_is_inconsistent() -> None:
    # the paper's stated 224x224 input with an unpadded 11x11/4 conv cannot give 6x6x256 at
    # FC6: (224-11)//4+1 = 54 -> 26 -> 12 -> 5, so FC6 would have 5*5*256*4096 weights
    rep = archcalc.analyze(archcalc.load("alexnet"), input_shape=(3, 224, 224))
    assert hwc(rows_of(rep, "conv")[0]) == (54, 54, 96)
    assert rows_of(rep, "linear")[0].params.weights == 5 * 5 * 256 * 4096


def test_alexnet_torchvision_params() -> None:
    rep = report("alexnet-torchvision")
    by_hand = [
        11 * 11 * 3 * 64 + 64,  # 23,296
        5 * 5 * 64 * 192 + 192,  # 307,392
        3 * 3 * 192 * 384 + 384,  # 663,936
        3 * 3 * 384 * 256 + 256,  # 884,992
        3 * 3 * 256 * 256 + 256,  # 590,080
        256 * 6 * 6 * 4096 + 4096,
        4096 * 4096 + 4096,
        4096 * 1000 + 1000,
    ]
    weighted = [r for r in rep.rows if r.kind in ("conv", "linear")]
    assert [r.params.trainable for r in weighted] == by_hand
    # sum(p.numel() for p in torchvision.models.alexnet().parameters()) = 61,100,840
    assert rep.totals.params == sum(by_hand) == 61_100_840
    assert [hwc(r) for r in rows_of(rep, "pool")] == [(27, 27, 64), (13, 13, 192), (6, 6, 256)]
    assert rows_of(rep, "lrn") == []
    # torchvision's model card: 0.71 GFLOPS (multiply-accumulates of conv and linear)
    assert round(rep.totals.macs / 1e9, 2) == 0.71


# -- Inception modules (the homework's Figure 1, input 32x32x256) -------------------------------
def branch_totals(rep: Report) -> list[tuple[int, int]]:
    """(params, MACs) of each branch of the single concat."""
    (concat,) = rows_of(rep, "concat")
    out: dict[str, tuple[int, int]] = {}
    for r in rep.rows:
        if r.path.startswith(concat.path + ".b"):
            branch = r.path.split(".")[1]
            p, m = out.get(branch, (0, 0))
            out[branch] = (p + r.params.trainable, m + r.macs)
    return [out[b] for b in sorted(out)]


HW = 32 * 32  # output positions of every conv in the module ("same" padding, stride 1)


def test_inception_naive() -> None:
    rep = report("inception-naive")
    (concat,) = rows_of(rep, "concat")
    assert hwc(concat) == (32, 32, 128 + 192 + 96 + 256) == (32, 32, 672)
    assert branch_totals(rep) == [
        (1 * 1 * 256 * 128 + 128, HW * 1 * 1 * 256 * 128),  # 32,896 / 33,554,432
        (3 * 3 * 256 * 192 + 192, HW * 9 * 256 * 192),  # 442,560 / 452,984,832
        (5 * 5 * 256 * 96 + 96, HW * 25 * 256 * 96),  # 614,496 / 629,145,600
        (0, 0),  # max pool: no weights, no multiply-accumulates
    ]
    assert rep.totals.params == 1_089_952
    assert rep.totals.macs == 1_115_684_864


def test_inception_reduction() -> None:
    rep = report("inception-reduction")
    (concat,) = rows_of(rep, "concat")
    assert hwc(concat) == (32, 32, 128 + 192 + 96 + 64) == (32, 32, 480)
    assert branch_totals(rep) == [
        (256 * 128 + 128, HW * 256 * 128),
        (256 * 128 + 128 + 9 * 128 * 192 + 192, HW * (256 * 128 + 9 * 128 * 192)),
        (256 * 32 + 32 + 25 * 32 * 96 + 96, HW * (256 * 32 + 25 * 32 * 96)),
        (256 * 64 + 64, HW * 256 * 64),
    ]
    assert rep.totals.params == 388_736
    assert rep.totals.macs == 397_410_304
    # the reductions cut the naive module's multiply-accumulates by almost two thirds
    assert rep.totals.macs / report("inception-naive").totals.macs == pytest.approx(0.356, 1e-3)


def test_inception_params_can_be_overridden() -> None:
    rep = report("inception-naive", c1=64)
    assert hwc(rows_of(rep, "concat")[0]) == (32, 32, 64 + 192 + 96 + 256)
    assert branch_totals(rep)[0] == (256 * 64 + 64, HW * 256 * 64)
    rep = report("inception-reduction", r3=96, r5=16, pool_proj=32, size=28, channels=192)
    assert hwc(rows_of(rep, "concat")[0]) == (28, 28, 128 + 192 + 96 + 32)
    assert branch_totals(rep)[1] == (192 * 96 + 96 + 9 * 96 * 192 + 192,
                                     28 * 28 * (192 * 96 + 9 * 96 * 192))
    with pytest.raises(archcalc.SpecError, match="no parameter 'r3'"):
        archcalc.load("inception-naive", r3=64)


# -- GoogLeNet ------------------------------------------------------------------------------------
# Szegedy et al. 2015, Table 1: name, #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj,
# and the table's params (K) and ops (M) columns.
GOOGLENET_TABLE1 = [
    ("3a", 64, 96, 128, 16, 32, 32, 159, 128),
    ("3b", 128, 128, 192, 32, 96, 64, 380, 304),
    ("4a", 192, 96, 208, 16, 48, 64, 364, 73),
    ("4b", 160, 112, 224, 24, 64, 64, 437, 88),
    ("4c", 128, 128, 256, 24, 64, 64, 463, 100),
    ("4d", 112, 144, 288, 32, 64, 64, 580, 119),
    ("4e", 256, 160, 320, 32, 128, 128, 840, 170),
    ("5a", 256, 160, 320, 32, 128, 128, 1072, 54),
    ("5b", 384, 192, 384, 48, 128, 128, 1388, 71),
]


def inception_weights(cin: int, a: int, b: int, c: int, d: int, e: int, f: int) -> int:
    return cin * a + cin * b + 9 * b * c + cin * d + 25 * d * e + cin * f


def test_googlenet_inception_modules_against_table1() -> None:
    rep = report("googlenet")
    concats = [r for r in rep.rows if r.kind == "concat"]
    assert len(concats) == len(GOOGLENET_TABLE1)
    cin, params_off, ops_off = 192, [], []
    for row, (name, a, b, c, d, e, f, table_k, table_mops) in zip(
            concats, GOOGLENET_TABLE1, strict=True):
        inside = [r for r in rep.rows if r.path.startswith(row.path + ".b")]
        weights = inception_weights(cin, a, b, c, d, e, f)
        assert sum(r.params.weights for r in inside) == weights, name
        assert sum(r.params.biases for r in inside) == a + b + c + d + e + f, name
        h = row.out_shape[1]
        assert sum(r.macs for r in inside) == h * h * weights, name
        assert row.out_shape[0] == a + c + e + f, name
        # Table 1 counts weights only, K = 1024
        if abs(weights / 1024 - table_k) > 1.5:
            params_off.append(name)
        if abs(h * h * weights / 1e6 - table_mops) > 1:
            ops_off.append(name)
        cin = a + c + e + f
    # the deviations googlenet.arch documents, no more, no fewer
    assert params_off == ["4a", "4c", "4d", "4e", "5a", "5b"]
    assert ops_off == ["5a"]


def test_googlenet_shapes_and_totals() -> None:
    rep = report("googlenet")
    concats = rows_of(rep, "concat")
    assert [hwc(r)[0] for r in concats] == [28, 28, 14, 14, 14, 14, 14, 7, 7]
    assert [hwc(r) for r in rows_of(rep, "pool")[:2]] == [(56, 56, 64), (28, 28, 192)]
    assert hwc(concats[-1]) == (7, 7, 1024)  # before the 7x7 average pool (Table 1)
    assert hwc(rows_of(rep, "pool")[-1]) == (1, 1, 1024)
    assert len(rows_of(rep, "lrn")) == 2
    stem = [7 * 7 * 3 * 64 + 64, 64 * 64 + 64, 9 * 64 * 192 + 192]  # the 3x3 row: 112K
    assert [r.params.trainable for r in rows_of(rep, "conv")[:3]] == stem
    cin, modules = 192, 0
    for _, a, b, c, d, e, f, _, _ in GOOGLENET_TABLE1:
        modules += inception_weights(cin, a, b, c, d, e, f) + a + b + c + d + e + f
        cin = a + c + e + f
    linear = 1024 * 1000 + 1000
    assert rep.totals.params == sum(stem) + modules + linear == 6_998_552
    # Table 1's params column sums to 6,797.7K (K = 1024): the paper's "about 6.8M";
    # ours differs by the rows the spec lists, mostly conv1 (9.2K vs 2.7K) and 4c/5a
    table_k = 2.7 + 112 + sum(row[7] for row in GOOGLENET_TABLE1) + 1000
    assert table_k == pytest.approx(6797.7)
    assert rep.totals.weights / 1024 == pytest.approx(table_k, rel=0.01)


# -- ResNets for CIFAR-10 -------------------------------------------------------------------------
def resnet_cifar_params(n: int) -> int:
    """He et al. 2016 Sec. 4.2 with option A shortcuts (no parameters), convs without bias,
    BN with a scale and a shift per channel."""
    def block(cin: int, c: int) -> int:  # two 3x3 convs and two BNs
        return 9 * cin * c + 9 * c * c + 2 * (2 * c)
    stem = 3 * 3 * 3 * 16 + 2 * 16
    stages = (n * block(16, 16) + block(16, 32) + (n - 1) * block(32, 32)
              + block(32, 64) + (n - 1) * block(64, 64))
    return stem + stages + 64 * 10 + 10


# Known counts for option A with BN (e.g. the widely used akamaster/pytorch_resnet_cifar10
# table); the paper's Table 6 rounds them to 0.27M, 0.46M, 0.66M, 0.85M and 1.7M.
RESNET_CIFAR = {20: 269_722, 32: 464_154, 44: 658_586, 56: 853_018, 110: 1_727_962}


@pytest.mark.parametrize("depth", sorted(RESNET_CIFAR))
def test_resnet_cifar_params(depth: int) -> None:
    n = (depth - 2) // 6
    rep = report(f"resnet{depth}")
    assert resnet_cifar_params(n) == RESNET_CIFAR[depth]
    assert rep.totals.params == RESNET_CIFAR[depth]
    # 6n+2 weighted layers: 6n convs in the stages, the first conv and the FC layer
    assert len([r for r in rep.rows if r.kind in ("conv", "linear")]) == depth
    assert len(rows_of(rep, "add")) == 3 * n
    assert len(rows_of(rep, "zeropad")) == 2  # option A only where the shape changes
    assert {hwc(r) for r in rows_of(rep, "add")} == {(32, 32, 16), (16, 16, 32), (8, 8, 64)}
    paper = {20: 0.27e6, 32: 0.46e6, 44: 0.66e6, 56: 0.85e6, 110: 1.7e6}[depth]  # Table 6
    assert rep.totals.params == pytest.approx(paper, rel=0.02)


def test_resnet_cifar_macs_by_hand() -> None:
    # resnet20: stem 32*32*27*16; per stage 2n convs at 32x32 (16), 16x16 (32), 8x8 (64);
    # the stride-2 first conv of stages 2 and 3 sees half the input channels
    n, macs = 3, 32 * 32 * 27 * 16
    macs += 2 * n * 32 * 32 * 9 * 16 * 16
    macs += 16 * 16 * 9 * 16 * 32 + (2 * n - 1) * 16 * 16 * 9 * 32 * 32
    macs += 8 * 8 * 9 * 32 * 64 + (2 * n - 1) * 8 * 8 * 9 * 64 * 64
    macs += 64 * 10
    assert report("resnet20").totals.macs == macs == 40_551_040


@pytest.mark.parametrize("depth", [21, 30, 7])
def test_resnet_cifar_depth_must_be_6n_plus_2(depth: int) -> None:
    with pytest.raises(archcalc.SpecError, match="not a whole number"):
        archcalc.load("resnet-cifar", depth=depth)


def test_resnet_cifar_width_and_classes() -> None:
    rep = report("resnet20", width=32, classes=100)
    assert hwc(rows_of(rep, "add")[-1]) == (8, 8, 128)
    assert rows_of(rep, "linear")[0].params.trainable == 128 * 100 + 100


# -- ResNet-50 -----------------------------------------------------------------------------------
STAGES = [(64, 3, 56), (128, 4, 28), (256, 6, 14), (512, 3, 7)]  # width, blocks, output map


def resnet50_params(blocks: tuple[int, ...] = (3, 4, 6, 3), channels: int = 3,
                    classes: int = 1000) -> int:
    total = 7 * 7 * channels * 64 + 2 * 64  # conv1 (no bias) + BN
    cin = 64
    for (w, _, _), n in zip(STAGES, blocks, strict=True):
        body = cin * w + 9 * w * w + w * 4 * w + 2 * (w + w + 4 * w)
        projection = cin * 4 * w + 2 * 4 * w  # 1x1 conv + BN on the first block's shortcut
        rest = 4 * w * w + 9 * w * w + w * 4 * w + 2 * (w + w + 4 * w)
        total += body + projection + (n - 1) * rest
        cin = 4 * w
    return total + 2048 * classes + classes


def resnet50_conv_biases() -> int:
    """One per output channel of each conv, as Keras' ResNet50 has; each conv has a BN."""
    total = 64  # conv1
    for w, n, _ in STAGES:
        total += (w + w + 4 * w) + 4 * w  # first block: body and projection shortcut
        total += (n - 1) * (w + w + 4 * w)
    return total


def resnet50_macs(paper: bool) -> int:
    macs = 112 * 112 * 7 * 7 * 3 * 64
    cin = 64
    for w, n, hw in STAGES:
        first_in = hw if paper or w == 64 else 2 * hw  # map size of the first 1x1's output
        macs += first_in**2 * cin * w  # first 1x1 (stride 2 here in the paper)
        macs += hw**2 * (9 * w * w + w * 4 * w + cin * 4 * w)  # 3x3, last 1x1, projection
        macs += (n - 1) * hw**2 * (4 * w * w + 9 * w * w + w * 4 * w)
        cin = 4 * w
    return macs + 2048 * 1000


def test_resnet50_params_and_macs() -> None:
    tv, paper = report("resnet50"), report("resnet50-paper")
    # sum(p.numel() for p in torchvision.models.resnet50().parameters()) = 25,557,032
    assert tv.totals.params == paper.totals.params == resnet50_params() == 25_557_032
    # BN: a scale and a shift (trainable), a running mean and variance (buffers) per channel
    assert tv.totals.buffers == 2 * (tv.totals.biases - 1000)
    assert tv.totals.macs == resnet50_macs(paper=False) == 4_089_184_256
    assert paper.totals.macs == resnet50_macs(paper=True) == 3_857_973_248
    # torchvision's model card: "GFLOPS 4.09" (really GMACs); the paper's Table 1: 3.8e9
    assert round(tv.totals.macs / 1e9, 2) == 4.09
    assert 3.8e9 <= paper.totals.macs < 3.9e9
    assert hwc(rows_of(tv, "add")[-1]) == (7, 7, 2048)
    assert len(rows_of(tv, "add")) == 16
    assert rows_of(tv, "act")[-1].label == "relu"  # torchvision returns logits
    assert paper.rows[-1].label == "soft-max"


def test_resnet50_keras_has_a_bias_on_every_conv() -> None:
    keras, paper = report("resnet50-keras"), report("resnet50-paper")
    biases = resnet50_conv_biases()
    assert len(rows_of(keras, "conv")) == 53 and biases == 26_560
    assert keras.totals.params == resnet50_params() + biases == 25_583_592
    assert keras.totals.buffers == paper.totals.buffers == 2 * biases  # BN mean, variance
    # Keras' model.summary() of ResNet50(weights=None): total 25,636,712 parameters,
    # 25,583,592 trainable and 53,120 non-trainable (BN's moving mean and variance)
    assert keras.totals.params + keras.totals.buffers == 25_636_712
    assert keras.totals.macs == paper.totals.macs  # biases are additions, not MACs
    projections = [r for r in rows_of(keras, "conv") if r.label.startswith("shortcut")]
    assert [r.params.biases for r in projections] == [256, 512, 1024, 2048]


def test_resnet50_keras_at_32x32x1_with_10_classes() -> None:
    # Keras' ResNet50(weights=None, input_shape=(32, 32, 1), classes=10).count_params() is
    # 23,601,930: trainable parameters plus BN's moving mean and variance (our buffers).
    # The input changes only conv1 (7*7*1*64 weights) and the classes only the FC layer.
    rep = report("resnet50-keras", size=32, channels=1, classes=10)
    trainable = resnet50_params(channels=1, classes=10) + resnet50_conv_biases()
    assert rep.input_shape == (1, 32, 32)
    assert rep.totals.params == trainable == 23_548_810
    assert rep.totals.buffers == 53_120
    assert rep.totals.params + rep.totals.buffers == 23_601_930


@pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None,
                    reason="tensorflow (Keras' backend) is not installed")
def test_resnet50_keras_agrees_with_keras() -> None:
    import keras

    model = keras.applications.ResNet50(weights=None, input_shape=(32, 32, 1), classes=10)
    rep = report("resnet50-keras", size=32, channels=1, classes=10)
    trainable = sum(int(w.shape.num_elements()) for w in model.trainable_weights)
    assert (trainable, model.count_params() - trainable) == (rep.totals.params,
                                                             rep.totals.buffers)
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert sorted(c.count_params() for c in convs) == sorted(
        r.params.trainable for r in rows_of(rep, "conv"))


def test_resnet50_stride_placement() -> None:
    tv, paper = report("resnet50"), report("resnet50-paper")
    # conv3_1: the first 1x1 keeps 56x56 in torchvision and halves it to 28x28 in the paper
    first_1x1 = [r for r in rows_of(tv, "conv") if r.in_shape == (256, 56, 56)
                 and r.out_shape[0] == 128]
    assert [hwc(r) for r in first_1x1] == [(56, 56, 128)]
    first_1x1 = [r for r in rows_of(paper, "conv") if r.in_shape == (256, 56, 56)
                 and r.out_shape[0] == 128]
    assert [hwc(r) for r in first_1x1] == [(28, 28, 128)]


def test_resnet50_depth_params_give_resnet101_and_152() -> None:
    # torchvision's model cards: resnet101 44,549,160 params, 7.80 GFLOPS;
    # resnet152 60,192,808 params, 11.51 GFLOPS
    r101 = report("resnet50", b4=23)
    assert r101.totals.params == resnet50_params((3, 4, 23, 3)) == 44_549_160
    assert round(r101.totals.macs / 1e9, 2) == 7.80
    r152 = report("resnet50", b3=8, b4=36)
    assert r152.totals.params == resnet50_params((3, 8, 36, 3)) == 60_192_808
    assert round(r152.totals.macs / 1e9, 2) == 11.51


# -- MLP of Problem 1 ------------------------------------------------------------------------------
def test_mlp_cifar() -> None:
    by_hand = [32 * 32 * 3 * 1000 + 1000, 1000 * 1000 + 1000, 1000 * 10 + 10]
    plain, dropout = report("mlp-cifar"), report("mlp-cifar-dropout")
    for rep in (plain, dropout):
        assert [r.params.trainable for r in rows_of(rep, "linear")] == by_hand
        assert rep.totals.params == sum(by_hand) == 4_084_010
        assert rep.totals.macs == 3072 * 1000 + 1000 * 1000 + 1000 * 10
        assert rows_of(rep, "linear")[-1].out_shape == (10,)
    assert rows_of(plain, "dropout") == []
    # dropout 0.2 on the input, 0.5 after each hidden layer (Problem 1, part 3)
    kinds = [r.kind for r in dropout.rows if r.kind != "act"]
    assert kinds == ["flatten", "dropout", "linear", "dropout", "linear", "dropout", "linear"]
    assert [r.label for r in rows_of(dropout, "dropout")] == ["dropout-0.2", "dropout-0.5",
                                                              "dropout-0.5"]
