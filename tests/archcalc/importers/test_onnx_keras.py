"""archcalc model.onnx on Keras models exported by tf2onnx: keras.applications families
with random weights in every variable (as a trained model: no zero bias or shift for tf2onnx
to drop), exported once each.

tf2onnx folds batch norm into the convolutions, so the ONNX graph holds conv biases where
Keras holds BN parameters and moving statistics: its parameters cannot be Keras'
``count_params()``. What equals what, each side computed without archcalc's importer:

* parameters: the elements of the initializers the graph's layers read (numpy on the
  proto), not counting scalars (clip bounds, rescaling factors) and shape constants;
* multiply-accumulates: archcalc's ``from_keras`` MACs of the Keras model (folding changes
  no conv or dense work), plus one per output element of each multiply by per-channel
  constants (a batch norm tf2onnx could not fold, read as a 1x1 depthwise conv);
* shapes: every row's output shape is onnx's shape inference of its node's output, the
  convolutions' and dense layers' output shapes are Keras' own, and the input is Keras'
  (channels first);
* the graph written as a spec parses back to the same totals.

Families tf2onnx cannot export into a graph archcalc reads are refused in one line naming
the node; ``test_refused_families`` says why for each.
"""

from __future__ import annotations

import functools
import math
import os
from collections import Counter
from typing import Any

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
np = pytest.importorskip("numpy")
onnx = pytest.importorskip("onnx")
tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")
tf2onnx = pytest.importorskip("tf2onnx")

import archcalc  # noqa: E402
from archcalc.algebra import Params  # noqa: E402
from archcalc.analysis import Report  # noqa: E402
from archcalc.importers.dataflow import UnsupportedModel  # noqa: E402
from archcalc.importers.keras import keras_graph  # noqa: E402
from archcalc.importers.onnx import onnx_graph  # noqa: E402
from archcalc.kinds import Conv, Rescale  # noqa: E402
from archcalc.layers import walk  # noqa: E402
from archcalc.writer import to_spec  # noqa: E402

slow = pytest.mark.slow
M32 = (32, 32, 3)
SHAPES = {"InceptionV3": (75, 75, 3), "Xception": (71, 71, 3)}  # the smallest they take
# read, and heavy to export (several seconds each on two cores): marked slow, still run by
# make test
# One family per kind of graph tf2onnx writes; MobileNet, ResNet50V2, EfficientNetV2B0 and
# VGG16 read too (checked once: they add no new op, and VGG16's export alone takes 40 s)
FAMILIES = ["MobileNetV2", "MobileNetV3Small", "ResNet50", "DenseNet121", "EfficientNetB0",
            "InceptionV3", "Xception",
            "NASNetMobile"]  # NASNet: Cropping2D as Slice, cells written with named tensors
HEAVY = {"DenseNet121", "NASNetMobile"}
SHAPE_ONLY = ("Reshape", "Pad", "Squeeze", "Unsqueeze", "Clip", "Slice")  # inputs 1.. are settings


@functools.cache
def exported(family: str) -> tuple[Any, Any]:
    """The Keras model, with random weights, and its tf2onnx export (opset 17)."""
    shape = SHAPES.get(family, M32)
    model = getattr(keras.applications, family)(weights=None, input_shape=shape)
    rng = np.random.default_rng(0)
    model.set_weights([rng.uniform(0.5, 1.5, w.shape).astype(w.dtype)
                       for w in model.get_weights()])  # variances too: all positive
    return model, converted(model, shape)


def converted(model: Any, shape: tuple[int, ...]) -> Any:
    """tf2onnx's export (opset 17) of a Keras model taking one NHWC image."""
    spec = (tf.TensorSpec((None, *shape), tf.float32, name="input"),)
    proto, _ = tf2onnx.convert.from_keras(model, input_signature=spec, opset=17)
    return proto


def initializer_elements(proto: Any) -> int:
    """The elements of every initializer a node reads as an operand, once per read:
    scalars and the settings of shape operations left out."""
    sizes = {t.name: math.prod(t.dims) for t in proto.graph.initializer}
    total = 0
    for node in proto.graph.node:
        for i, name in enumerate(node.input):
            if name in sizes and sizes[name] > 1 and not (node.op_type in SHAPE_ONLY and i):
                total += sizes[name]
    return total


def inferred_shapes(proto: Any) -> dict[str, tuple[int, ...]]:
    """One sample's shape of every tensor, by onnx's shape inference at batch size 1."""
    model = onnx.ModelProto()
    model.CopyFrom(proto)
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 1
    inferred = onnx.shape_inference.infer_shapes(model).graph
    return {v.name: tuple(d.dim_value for d in v.type.tensor_type.shape.dim)[1:]
            for v in [*inferred.value_info, *inferred.output]}


def per_channel_products(proto: Any, shapes: dict[str, tuple[int, ...]]) -> int:
    """Output elements of each Mul of a tensor by an initializer of several elements."""
    sizes = {t.name: math.prod(t.dims) for t in proto.graph.initializer}
    return sum(math.prod(shapes[n.output[0]]) for n in proto.graph.node
               if n.op_type == "Mul" and any(sizes.get(x, 0) > 1 for x in n.input))


def keras_shapes(model: Any) -> tuple[Counter[tuple[int, ...]], list[tuple[int, ...]]]:
    """The output shapes (channels first) of the Keras convolutions (a separable one's
    depthwise half and pointwise half), and of its dense layers."""
    convs: Counter[tuple[int, ...]] = Counter()
    dense = []
    for layer in model.layers:
        h, w, c = (int(d) for d in layer.output.shape[1:]) if len(
            layer.output.shape) == 4 else (0, 0, 0)
        if isinstance(layer, keras.layers.SeparableConv2D):  # depthwise, then pointwise
            convs[(int(layer.input.shape[-1]) * layer.depth_multiplier, h, w)] += 1
        if isinstance(layer, keras.layers.Conv2D | keras.layers.DepthwiseConv2D
                      | keras.layers.SeparableConv2D):
            convs[(c, h, w)] += 1
        if isinstance(layer, keras.layers.Dense):
            dense.append((int(layer.output.shape[-1]),))
    return convs, dense


def node_of(label: str, proto: Any) -> Any:
    (node,) = [n for n in proto.graph.node if f"{n.op_type} {n.name}" == label]
    return node


def assert_shapes(report: Report, proto: Any, shapes: dict[str, tuple[int, ...]]) -> int:
    """Each layer row's output shape against onnx's for its node; the rows compared."""
    compared = 0
    for row in report.rows:
        if row.kind in ("add", "concat", "gate", "input", "keep", "from") or not row.label:
            continue
        node = node_of(row.label, proto)
        theirs = shapes[node.output[0]]
        if len(theirs) == 3 and theirs[-1] == row.out_shape[0] and row.label.startswith(
                ("Mul", "Add")) and theirs != row.out_shape:
            theirs = (theirs[2], theirs[0], theirs[1])  # before the Transpose to NCHW
        if row.kind in ("flatten",) or node.op_type == "MatMul":
            theirs = (math.prod(theirs),)
        assert row.out_shape == theirs, row.label
        compared += 1
    return compared


def family_param(name: str) -> Any:
    return pytest.param(name, id=name, marks=[slow] if name in HEAVY else [])


@pytest.mark.parametrize("family", [family_param(f) for f in FAMILIES])
def test_keras_family_exported_by_tf2onnx(family: str) -> None:
    model, proto = exported(family)
    graph = onnx_graph(proto, name=family)
    report = archcalc.analyze(graph)
    shapes = inferred_shapes(proto)
    h, w, c = SHAPES.get(family, M32)
    assert report.rows[0].in_shape == (c, h, w)
    assert report.rows[-1].out_shape == (int(model.output.shape[-1]),)

    assert report.totals.params == initializer_elements(proto)
    assert report.totals.buffers == 0  # no moving statistics survive folding
    keras_macs = archcalc.analyze(keras_graph(model)).totals.macs
    assert report.totals.macs == keras_macs + per_channel_products(proto, shapes)

    assert assert_shapes(report, proto, shapes) > len(proto.graph.node) // 3
    convs, dense = keras_shapes(model)
    assert Counter(r.out_shape for r in report.rows if r.kind == "conv") == convs
    assert [r.out_shape for r in report.rows if r.kind == "linear"] == dense
    # written as a spec (archcalc to-spec: the SAME pads tf2onnx writes out are p=tf-same),
    # it parses back to the same numbers
    assert archcalc.analyze(archcalc.parse(to_spec(graph))).totals == report.totals


def test_mobilenet_v2_rows_say_what_the_graph_computes() -> None:
    """The rows a user reads: relu6 from Clip(0, 6); every Conv2D (Keras: no bias, then
    BN) a conv with a bias, the BN's shift; the batch norms after the depthwise convs
    (tf2onnx cannot fold them) 1x1 depthwise convs with a bias, C factors and C shifts; a
    fully connected head with its bias."""
    model, proto = exported("MobileNetV2")
    graph = onnx_graph(proto)
    rows = archcalc.analyze(graph).rows
    convs = [n.layer for n in walk(graph.body) if type(n.layer) is Conv]
    depthwise = [c for c in convs if c.groups > 1]
    keras_convs = [la for la in model.layers if type(la) is keras.layers.Conv2D]
    assert not any(la.use_bias for la in keras_convs)
    assert len(convs) - len(depthwise) == len(keras_convs)
    assert all(c.bias for c in convs if c.groups == 1)
    assert not any(c.bias for c in depthwise)
    keras_depthwise = [la for la in model.layers
                       if isinstance(la, keras.layers.DepthwiseConv2D)]
    affine = [r for r in rows if r.kind == "dwconv"]
    assert len(affine) == len(depthwise) == len(keras_depthwise)
    assert all(r.params == Params(r.out_shape[0], r.out_shape[0], 0) for r in affine)
    relu6 = [la for la in model.layers if isinstance(la, keras.layers.ReLU)]
    assert sum(r.kind == "act" and r.title == "RELU6" for r in rows) == len(relu6)
    (head,) = [r for r in rows if r.kind == "linear"]
    assert head.params == Params(1280 * 1000, 1000, 0)


def test_rescaling_and_normalization_before_the_transpose() -> None:
    """EfficientNetB0 preprocesses channels-last, before tf2onnx's Transpose: Rescaling
    (a scalar Mul) is a rescale by its factor, Normalization (an Add and a Mul by 3
    constants each) one 1x1 depthwise conv with a bias: 6 parameters, as the graph holds
    them (Keras: the adapted mean, variance and count, 7 non-trainable weights)."""
    model, proto = exported("EfficientNetB0")
    graph = onnx_graph(proto)
    rows = archcalc.analyze(graph).rows
    assert [r.kind for r in rows[:3]] == ["rescale", "dwconv", "conv"]
    rescale = graph.body[0].layer
    assert isinstance(rescale, Rescale) and rescale.offset == 0
    (rescaling,) = [la for la in model.layers if isinstance(la, keras.layers.Rescaling)]
    assert math.isclose(rescale.scale, rescaling.scale, rel_tol=1e-6)
    assert rows[1].params == Params(3, 3, 0) and rows[1].in_shape == (3, 32, 32)


def test_layer_norm_as_arithmetic_is_refused() -> None:
    """Keras' LayerNormalization (ConvNeXt's) is exported as its arithmetic, a ReduceMean
    over the channels, which no rule reads: refused in one line naming the node. A small
    model stands in for ConvNeXt, whose export takes 25 s and is refused at such a node."""
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 1)(inputs)
    x = keras.layers.LayerNormalization(epsilon=1e-6)(x)
    outputs = keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(x))
    proto = converted(keras.Model(inputs, outputs), (8, 8, 3))
    with pytest.raises(UnsupportedModel, match=r"cannot read node .*\(ReduceMean\): a mean "
                       "over axes") as exc:
        onnx_graph(proto)
    assert "\n" not in str(exc.value)
