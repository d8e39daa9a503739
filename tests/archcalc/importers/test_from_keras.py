"""archcalc.from_keras on models nobody here wrote: every keras.applications family that
builds offline (``weights=None``, small inputs), each built once. archcalc's trainable
parameters equal the sizes of the model's trainable weights, its buffers the non-trainable
ones (BN moving statistics, Normalization's mean, variance and count), together
``count_params()``, every layer's output shape equals Keras' (channels first), and the graph
written as a spec parses back to the same rows. NASNet, whose cells read the two cells
before them (not series-parallel), is written with named tensors where blocks cannot.

Then hand-written models for the layers and settings the applications do not use, the
refusals, and the command line (``archcalc keras FILE.py:FACTORY``, ``archcalc model.keras``).
"""

from __future__ import annotations

import importlib.util
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
keras = pytest.importorskip("keras")
layers = keras.layers

import archcalc  # noqa: E402
from archcalc.analysis import Report  # noqa: E402
from archcalc.cli import app, route  # noqa: E402
from archcalc.importers.dataflow import UnsupportedModel  # noqa: E402
from archcalc.importers.keras import keras_graph  # noqa: E402
from archcalc.layers import walk  # noqa: E402
from archcalc.writer import to_spec  # noqa: E402

slow = pytest.mark.slow
M32, M75 = (32, 32, 3), (75, 75, 3)

# (factory in keras.applications, input HxWxC): the smallest input each family accepts,
# or a small one: building all of them takes about a minute on two cores, the heaviest
# (slow) half of it.


def family(name: str, shape: tuple[int, int, int] = M32, heavy: bool = False) -> Any:
    return pytest.param(name, shape, id=name, marks=[slow] if heavy else [])


FAMILIES = [
    family("VGG16"), family("VGG19"),
    family("ResNet50"), family("ResNet101", heavy=True), family("ResNet152", heavy=True),
    family("ResNet50V2"), family("ResNet101V2", heavy=True),
    family("ResNet152V2", heavy=True),
    family("InceptionV3", M75), family("InceptionResNetV2", M75, heavy=True),
    family("Xception", (71, 71, 3)),
    family("MobileNet"), family("MobileNetV2"), family("MobileNetV3Small"),
    family("MobileNetV3Large"),
    family("DenseNet121"), family("DenseNet169", heavy=True),
    family("DenseNet201", heavy=True),
    family("EfficientNetB0"), family("EfficientNetB1"), family("EfficientNetB2"),
    family("EfficientNetB3"), family("EfficientNetB4", heavy=True),
    family("EfficientNetB5", heavy=True), family("EfficientNetB6", heavy=True),
    family("EfficientNetB7", heavy=True),
    family("EfficientNetV2B0"), family("EfficientNetV2B1"), family("EfficientNetV2B2"),
    family("EfficientNetV2B3"), family("EfficientNetV2S", heavy=True),
    family("EfficientNetV2M", heavy=True), family("EfficientNetV2L", heavy=True),
    family("ConvNeXtTiny"), family("ConvNeXtSmall", heavy=True),
    family("ConvNeXtBase", heavy=True), family("ConvNeXtLarge", heavy=True),
    # not ConvNeXtXLarge: the same blocks, 350 million weights to initialise
    # every cell reads the previous two cells' outputs: written with named tensors
    family("NASNetMobile", heavy=True), family("NASNetLarge", heavy=True),
]


def weight_sizes(model: Any) -> tuple[int, int]:
    """(trainable, non-trainable) weight elements, as Keras holds them."""
    def size(weights: list[Any]) -> int:
        return sum(math.prod(int(d) for d in w.shape) for w in weights)
    return size(model.trainable_weights), size(model.non_trainable_weights)


def channels_first(shape: Any) -> tuple[int, ...]:
    dims = tuple(int(d) for d in tuple(shape)[1:])
    return (dims[-1], *dims[:-1])


def all_layers(model: Any) -> list[Any]:
    """The model's layers, those of nested models (ConvNeXt's stem) in their place."""
    found: list[Any] = []
    for layer in model.layers:
        found.extend(all_layers(layer) if isinstance(layer, keras.Model) else [layer])
    return found


def assert_matches(model: Any, report: Report) -> int:
    """Totals against the weights and every layer's shape against Keras'; the number of
    layers compared."""
    trainable, fixed = weight_sizes(model)
    assert (report.totals.params, report.totals.buffers) == (trainable, fixed)
    assert report.totals.params + report.totals.buffers == model.count_params()
    last = {row.label: row for row in report.rows}  # a layer's last row is its output
    compared = 0
    for layer in all_layers(model):
        if layer.name not in last:  # the input, a linear activation, a folded constant op,
            # a Multiply (the gate's join row is labelled "mul", as in a spec)
            assert not layer.weights, f"{layer.name} has weights but no row"
            continue
        row, expected = last[layer.name], channels_first(layer.output.shape)
        if (isinstance(layer, layers.GlobalAveragePooling2D) and not layer.keepdims
                and row.out_shape == (*expected, 1, 1)):
            # followed by a Reshape to (1, 1, C): archcalc keeps the pooled map
            expected = row.out_shape
        assert row.out_shape == expected, f"{layer.name} ({type(layer).__name__})"
        compared += 1
    return compared


# -- keras.applications -----------------------------------------------------------------
def assert_round_trips(graph: archcalc.Graph, report: Report) -> None:
    """Written as a spec (``archcalc to-spec``), the graph parses back to the same rows."""
    text = to_spec(graph)
    again = archcalc.analyze(archcalc.parse(text, file="<written>"))
    assert [(r.kind, r.in_shape, r.out_shape, r.params, r.ops) for r in again.rows] == [
        (r.kind, r.in_shape, r.out_shape, r.params, r.ops) for r in report.rows]
    assert again.totals == report.totals


@pytest.mark.parametrize(("family", "shape"), FAMILIES)
def test_application_family(family: str, shape: tuple[int, int, int]) -> None:
    model = getattr(keras.applications, family)(weights=None, input_shape=shape)
    graph = keras_graph(model)
    report = archcalc.analyze(graph)
    assert report.rows[0].in_shape == (shape[2], shape[0], shape[1])
    assert assert_matches(model, report) > len(model.layers) // 2
    assert report.totals.macs > 0
    assert_round_trips(graph, report)
    # named tensors only where blocks cannot write the graph: NASNet's cells
    named = any(n.layer.kind in ("keep", "from") for n in walk(graph.body))
    assert named == family.startswith("NASNet")


def test_mobilenet_v3_hard_sigmoid_is_one_layer() -> None:
    """relu6(x + 3) * (1/6), written with tensor arithmetic, is one hard sigmoid: no
    rescale is left but the model's own Rescaling."""
    model = keras.applications.MobileNetV3Small(weights=None, input_shape=M32)
    rows = archcalc.from_keras(model).rows
    products = [op for op in model.operations if type(op).__name__ == "Multiply"
                and type(op).__module__.startswith("keras.src.ops")]
    hard = [r for r in rows if r.kind == "act" and r.title == "HARDSIGMOID"]
    assert len(hard) == len(products) > 0
    rescaling = [layer.name for layer in model.layers if isinstance(layer, layers.Rescaling)]
    assert [r.label for r in rows if r.kind == "rescale"] == rescaling


@slow
def test_nasnet_cells_read_the_two_before_them_by_name() -> None:
    """NASNet's graph is not series-parallel: the parts that blocks cannot write are
    written with named tensors, each name one of the model's own layer names, kept once
    and read only after it is kept; each layer's weights are counted once, in its rows."""
    model = keras.applications.NASNetMobile(weights=None, input_shape=M32)
    graph = keras_graph(model)
    named = [(n.layer.kind, n.layer.name) for n in walk(graph.body)
             if n.layer.kind in ("keep", "from")]
    kept = [name for kind, name in named if kind == "keep"]
    assert len(kept) == len(set(kept)) > 0
    assert set(kept) <= {layer.name for layer in all_layers(model)}
    assert {name for kind, name in named if kind == "from"} == set(kept)
    for name in kept:
        assert named.index(("keep", name)) < named.index(("from", name))
    counted: dict[str, int] = {}
    for row in archcalc.analyze(graph).rows:  # a separable conv is two rows, one label
        p = row.params
        counted[row.label] = counted.get(row.label, 0) + p.weights + p.biases + p.buffers
    assert {layer.name: counted.get(layer.name, 0) for layer in all_layers(model)} == {
        layer.name: layer.count_params() for layer in all_layers(model)}


# -- hand-written models ----------------------------------------------------------------
def every_layer() -> Any:
    """One of each layer the applications leave out, and settings they do not use."""
    norm = layers.Normalization(name="adapted")
    norm.adapt(keras.ops.ones((2, 17, 16, 3)))
    x = inputs = keras.Input((17, 16, 3))
    x = norm(x)
    x = layers.Normalization(mean=[0.5, 0.4, 0.3], variance=[0.1, 0.2, 0.3], name="given")(x)
    x = layers.Rescaling(1 / 127.5, offset=-1)(x)
    x = layers.ZeroPadding2D(((0, 1), (2, 0)))(x)  # 18x18
    x = layers.SeparableConv2D(8, 3, strides=2, padding="same", depth_multiplier=2,
                               activation="relu")(x)  # 9x9
    x = layers.MaxPooling2D(3, strides=2, padding="same")(x)  # 9 odd: (1, 1) -> 5
    x = layers.UpSampling2D(2)(x)  # 10
    x = layers.AveragePooling2D(3, strides=2, padding="same")(x)  # 10 even: (0, 1) -> 5
    x = layers.Conv2D(12, 2, padding="same", dilation_rate=2, groups=4)(x)
    x = layers.BatchNormalization(center=False, scale=False)(x)
    x = layers.LeakyReLU(0.1)(x)
    x = layers.PReLU(shared_axes=[1, 2])(layers.ELU()(x))  # a slope per channel
    a = layers.Conv2D(6, 1)(x)
    b = layers.Cropping2D(((1, 1), (1, 1)))(layers.ZeroPadding2D(1)(x))
    x = layers.Concatenate()([a, layers.DepthwiseConv2D(1)(b)])
    se = layers.GlobalMaxPooling2D(keepdims=True)(x)
    se = layers.Dense(18, activation="sigmoid")(layers.Dense(4)(se))  # on a map: 1x1 convs
    x = layers.Multiply()([x, se])
    x = layers.ReLU(max_value=6.0)(layers.LayerNormalization()(x))
    x = layers.Dropout(0.2)(layers.Flatten()(x))
    x = layers.Dense(10)(x)
    return keras.Model(inputs, layers.Softmax()(x), name="every_layer")


def sequence_model() -> Any:
    """A 1-D network: causal and 'same' Conv1D, 1-D pooling and global pooling."""
    x = inputs = keras.Input((40, 4))
    x = layers.Conv1D(8, 3, padding="causal", dilation_rate=2, activation="gelu")(x)
    x = layers.MaxPooling1D(2)(x)
    y = layers.Conv1D(8, 5, padding="same", use_bias=False)(x)
    x = layers.Add()([x, y])
    x = layers.AveragePooling1D(3, strides=2, padding="same")(x)
    x = layers.GlobalAveragePooling1D()(x)
    return keras.Model(inputs, layers.Dense(3)(x), name="sequence")


def decoder_model() -> Any:
    """A U-Net's up path: transposed convs 'valid' and 'same' (a kernel shorter than the
    stride, an even and an odd one), and the copy of an encoder map beside it."""
    x = inputs = keras.Input((12, 10, 3))
    e = layers.Conv2D(8, 3)(x)  # 10x8
    d = layers.Conv2DTranspose(8, 2, strides=2)(layers.MaxPooling2D()(e))  # 10x8
    x = layers.Concatenate()([e, d])
    u = layers.Conv2DTranspose(4, 3, strides=2, padding="same", activation="relu")(x)
    v = layers.Conv2DTranspose(4, 1, strides=2)(x)  # 'valid' pads the end: 20x16
    w = layers.Conv2DTranspose(4, 4, strides=2, padding="same", output_padding=1)(x)  # 19
    x = layers.Concatenate()([u, v, layers.ZeroPadding2D(((1, 0), (1, 0)))(w)])
    return keras.Model(inputs, layers.Conv2DTranspose(2, 3)(x), name="decoder")


def sequential_model() -> Any:
    return keras.Sequential([keras.Input((8, 8, 1)), layers.Conv2D(4, 3), layers.Flatten(),
                             layers.Dense(2)], name="small")


@pytest.mark.parametrize("build", [every_layer, sequence_model, decoder_model,
                                   sequential_model])
def test_hand_written_model(build: Callable[[], Any]) -> None:
    model = build()
    report = archcalc.from_keras(model)
    assert assert_matches(model, report) >= len(model.layers) - 2  # the input, a gate
    assert_round_trips(keras_graph(model), report)


def test_kinds_the_layers_become() -> None:
    graph = keras_graph(every_layer())
    kinds = [node.layer.kind for node in graph.body]
    assert kinds[:5] == ["standardize", "standardize", "rescale", "pad", "dwconv"]
    assert {"concat", "gate", "upsample", "layernorm", "dropout", "flatten"} <= set(kinds)
    report = archcalc.analyze(graph)
    rows = {row.label: row for row in report.rows}
    assert rows["adapted"].params.buffers == 2 * 3 + 1  # mean, variance and count
    assert rows["given"].params.buffers == 0  # constants given: no weights


@pytest.mark.skipif(any(importlib.util.find_spec(m) is None
                        for m in ("torch", "torchinfo", "fvcore")),
                    reason="the verify extra (torch, torchinfo, fvcore) is not installed")
@pytest.mark.parametrize("build", [every_layer, decoder_model])
def test_imported_graph_verifies_against_torch(build: Callable[[], Any]) -> None:
    from archcalc.verify import verify

    result = verify(keras_graph(build()))
    assert result.ok, [f"{c.name} {c.path}: {c.expected} != {c.actual}"
                       for c in result.failures]


# -- refusals -----------------------------------------------------------------------------
def one_layer(layer: Any, shape: tuple[int, ...] = (8, 8, 3)) -> Any:
    inputs = keras.Input(shape)
    return keras.Model(inputs, layer(inputs), name="one")


@pytest.mark.parametrize(("layer", "message"), [
    (layers.GaussianNoise(0.1, name="noisy"),
     "layer 'noisy' (keras.layers.regularization.gaussian_noise.GaussianNoise): no rule"),
    (layers.BatchNormalization(center=False, name="bn"), "center=False, scale=True"),
    (layers.Reshape((4, 16, 3), name="r"), "reshape of (3, 8, 8)"),
    (layers.Conv2D(4, 3, activation="softplus", name="c"), "activation 'softplus'"),
    (layers.Concatenate(axis=1, name="cat"), "concatenation along axis 1"),
    (layers.PReLU(name="p"), "192 slopes"),  # Keras' default: one per element
])
def test_unknown_layer_or_setting_is_refused_by_name(layer: Any, message: str) -> None:
    model = (one_layer(lambda x: layer([x, x])) if isinstance(layer, layers.Concatenate)
             else one_layer(layer))
    with pytest.raises(UnsupportedModel, match=r"^one: cannot read ") as exc:
        keras_graph(model)
    assert message in str(exc.value)


def test_arithmetic_with_a_number_is_a_rescale() -> None:
    def body(x: Any) -> Any:
        return 1.0 - layers.Conv2D(2, 1)(x / 255.0) * 2

    kinds = [node.layer for node in keras_graph(one_layer(body)).body]
    assert [k.kind for k in kinds] == ["rescale", "conv", "rescale", "rescale"]
    assert [(k.scale, k.offset) for k in kinds if k.kind == "rescale"] == [
        (1 / 255, 0.0), (2.0, 0.0), (-1.0, 1.0)]
    with pytest.raises(UnsupportedModel, match=r"no rule for keras\.ops\.numpy\.TrueDivide"):
        keras_graph(one_layer(lambda x: 2.0 / x))


def test_shared_weights_are_refused() -> None:
    dense = layers.Dense(4, name="shared")
    with pytest.raises(UnsupportedModel, match=r"'shared' .* called 2 times"):
        keras_graph(one_layer(lambda x: dense(dense(x)), (4,)))


def test_models_of_two_inputs_or_without_a_graph_are_refused() -> None:
    a, b = keras.Input((4,)), keras.Input((4,))
    with pytest.raises(UnsupportedModel, match="one input"):
        keras_graph(keras.Model([a, b], layers.Add()([a, b])))

    class Subclassed(keras.Model):
        def call(self, x: Any) -> Any:
            return x

    with pytest.raises(UnsupportedModel, match="subclassed"):
        keras_graph(Subclassed())


# -- command line -------------------------------------------------------------------------
SMALL_KERAS = """\
import keras
from keras import layers


def build(classes=10, input_shape=(32, 32, 3)):
    x = inputs = keras.Input(input_shape)
    x = layers.Conv2D(16, 3, padding="same", use_bias=False)(x)
    x = layers.ReLU()(layers.BatchNormalization()(x))
    y = layers.Conv2D(16, 3, padding="same", activation="relu")(x)
    x = layers.Add()([x, y])
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, layers.Dense(classes, activation="softmax")(x))


def noisy():
    inputs = keras.Input((8, 8, 3))
    return keras.Model(inputs, layers.GaussianNoise(0.1, name="noise")(inputs))
"""


@pytest.fixture
def nets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "nets.py").write_text(SMALL_KERAS, encoding="utf-8")
    return tmp_path


def run(*args: str) -> Any:
    from typer.testing import CliRunner

    return CliRunner().invoke(app, route(list(args)))


def test_cli_reads_a_factory(nets: Path) -> None:
    result = run("keras", "nets.py:build", "--arg", "classes=5", "--input", "16x16x3",
                 "--format", "csv")
    assert result.exit_code == 0, result.output
    total = next(line for line in result.stdout.splitlines() if ",TOTAL," in line)
    # conv 3*3*3*16 + BN 2*16 + conv 3*3*16*16 + 16 + dense 16*5 + 5
    assert f",{432 + 32 + 2304 + 16 + 80 + 5}," in total


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # numpy 2 inside keras.saving
def test_cli_reads_a_saved_model(nets: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(nets))
    import nets as module  # written by the fixture

    module.build().save("small.keras")
    assert route(["small.keras", "--table"]) == ["keras", "small.keras", "--table"]
    result = run("small.keras", "--table")
    assert result.exit_code == 0, result.output
    assert "CONV3-16" in result.stdout
    written = run("to-spec", "small.keras")
    assert written.exit_code == 0, written.output
    assert written.stdout.startswith("model small\n") and "conv3-16 p=tf-same" in written.stdout


def test_cli_refuses_an_unknown_layer_in_one_line(nets: Path) -> None:
    result = run("keras", "nets.py:noisy")
    assert result.exit_code == 2
    assert "layer 'noise'" in result.output and "GaussianNoise" in result.output
    assert "Traceback" not in result.output


# -- values -------------------------------------------------------------------------------
@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="needs torch")
@pytest.mark.parametrize(("op", "size", "kernel", "stride"), [
    ("avg", 5, 3, 1), ("avg", 6, 3, 2), ("avg", 7, 2, 2), ("max", 6, 3, 2), ("max", 7, 3, 2)])
def test_same_pooling_computes_what_keras_computes(op: str, size: int, kernel: int,
                                                   stride: int) -> None:
    """TensorFlow's SAME pooling as archcalc writes it (padding, ceil mode, and averages of
    the covered inputs only) gives Keras' values, and sums exactly the covered inputs."""
    import numpy as np
    import torch

    pool = (layers.AveragePooling2D if op == "avg" else layers.MaxPooling2D)(
        kernel, stride, padding="same")
    model = one_layer(pool, (size, size, 2))
    graph = keras_graph(model)
    (node,) = graph.body
    x = np.random.default_rng(0).normal(size=(1, size, size, 2)).astype("float32")
    expected = np.asarray(model(x)).transpose(0, 3, 1, 2)
    got = node.layer.torch_module((2, size, size))(torch.from_numpy(x.transpose(0, 3, 1, 2)))
    np.testing.assert_allclose(got.detach().numpy(), expected, rtol=1e-5, atol=1e-6)
    if op == "avg":
        (row,) = archcalc.analyze(graph).rows
        covered = sum(min(i * stride - p + kernel, size) - max(i * stride - p, 0)
                      for i in range(-(-size // stride))
                      for p in [max((-(-size // stride) - 1) * stride + kernel - size, 0) // 2])
        assert row.ops.pool == 2 * covered * covered
