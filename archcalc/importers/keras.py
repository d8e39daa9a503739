"""A Keras model -> an archcalc graph, and the report ``analyze`` gives for it.

A Functional (or Sequential) model already is a graph: each layer call is a node with its
input tensors. The importer walks it from the output back to the input, turns each call
into an :class:`~archcalc.importers.dataflow.Op` built from the layer's own configuration
(``Conv2D(64, 3, strides=2, padding="same", use_bias=False)`` is ``conv3-64 s=2 p=tf-same
bias=false``), and :func:`~archcalc.importers.dataflow.sequences` writes the joins as blocks,
as for torch: ``Add`` an ``add``, ``Concatenate`` along channels a ``concat``,
``Multiply([x, f(x)])`` a ``gate``, InceptionResNetV2's ``x + scale * f(x)`` an ``add``
(its multiplies by the constant scale are not counted). Nested models (ConvNeXt's stem is a
Sequential) are read in place. Keras shapes are channels-last, (H, W, C); archcalc's are
channels-first.

Where Keras writes one layer as two of archcalc's, it gets both: a Conv2D or Dense with an
``activation=`` is the layer and then its activation; SeparableConv2D is a depthwise conv
(no bias) and a 1x1 conv; GlobalAveragePooling2D without ``keepdims`` pools and flattens,
except where a Reshape to (1, 1, C) follows (EfficientNet's squeeze-and-excitation), which
keeps the pooled map instead. Dense on a feature map (ConvNeXt) is a 1x1 convolution;
Conv2DTranspose torch's ConvTranspose2d with the padding and output padding that give
Keras' output size.
Arithmetic with a number (``x / 255``, ``x - 1``) is a ``rescale``, as Keras' Rescaling,
except MobileNetV3's ``relu6(x + 3) / 6``, which is one hard sigmoid.

Padding: 'same' convolutions are TensorFlow's SAME (``tf_same``, resolved per input size);
'same' pooling has no such option, so its padding is resolved here from the layer's input
size: symmetric padding, or one more at the bottom/right as torch's ceil mode; average
pooling then divides by the input elements a window covers (``count-pad=false``), as
TensorFlow does.

A graph that is not built of sequences and such joins (NASNet's cells take the two previous
cells' outputs) is written with named tensors where blocks cannot write it (``keep`` /
``from``, named after the Keras layers). Anything else is refused with the layer's name and
class, never counted as zero: an unknown layer, settings archcalc has no rule for, or a
layer whose weights are shared by several calls (archcalc would count them once per
call).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, Literal

import keras

from archcalc.analysis import Report, analyze
from archcalc.errors import Loc
from archcalc.importers.dataflow import Imported, Join, Op, UnsupportedModel, sequences, skip
from archcalc.kinds import (
    Activation,
    BatchNorm,
    Conv,
    ConvTranspose,
    DepthwiseConv,
    Dropout,
    Flatten,
    GlobalPool,
    Kind,
    LayerNorm,
    LayerScale,
    Linear,
    Pad,
    Pool,
    PReLU,
    Rescale,
    Standardize,
    Upsample,
)
from archcalc.kinds.pad import Crop
from archcalc.layers import Graph, Seq, Shape

Pair = tuple[int, int]
PoolOp = Literal["max", "avg"]
L = keras.layers


def from_keras(model: Any, convention: str = "full", name: str | None = None,
               skip_unknown: bool = False) -> Report:
    """The report of a Keras model (Functional or Sequential, built with a fixed input
    size) for one sample, as :func:`archcalc.analyze` gives for a spec. ``skip_unknown``:
    layers without a rule that keep their input's shape count as zero, each named in the
    report's warnings."""
    if not skip_unknown:
        return analyze(keras_graph(model, name), convention)
    return read_keras(model, name, skip_unknown=True).report(convention)


def keras_graph(model: Any, name: str | None = None) -> Graph:
    """``model``'s layers and joins as an archcalc graph (see the module docstring)."""
    return read_keras(model, name).graph


def read_keras(model: Any, name: str | None = None, skip_unknown: bool = False) -> Imported:
    """:func:`keras_graph`, and the layers ``skip_unknown`` passed over."""
    label = str(name or getattr(model, "name", type(model).__name__))
    if not isinstance(model, keras.Model):
        raise UnsupportedModel(f"{label}: {type(model).__name__} is not a keras.Model")
    try:
        inputs, outputs = list(model.inputs), list(model.outputs)
    except (AttributeError, ValueError):  # a subclassed model, or a Sequential never built
        inputs = outputs = []
    if len(inputs) != 1 or len(outputs) != 1:
        raise UnsupportedModel(
            f"{label}: archcalc reads Functional or built Sequential models of one input and "
            f"one output (this one has {len(inputs)} inputs and {len(outputs)} outputs; a "
            "subclassed model has no graph to read)")
    shape = channels_first(inputs[0].shape, label)
    importer = _Importer(label, skip_unknown)
    body = importer.body(inputs[0], outputs[0])
    graph = Graph(label, shape, body, source=f"keras {type(model).__name__} {model.name}",
                  file=f"<keras {label}>")
    return Imported(graph, tuple(importer.skipped))


def channels_first(shape: Sequence[int | None], model: str) -> Shape:
    """A Keras tensor's (batch, H, W, C) -> (C, H, W); (batch, L, C) -> (C, L); (batch, N)."""
    dims = tuple(shape)[1:]
    if not dims or any(d is None for d in dims):
        raise UnsupportedModel(f"{model}: the input size is not fixed ({tuple(shape)}); "
                               "build the model with input_shape=(H, W, C)")
    sizes = tuple(int(d) for d in dims if d is not None)
    return (sizes[-1], *sizes[:-1])


# -- layers -> layer kinds ----------------------------------------------------------------
class _Refused(Exception):
    """A known layer with settings archcalc has no rule for; the importer adds where."""


class _NoRule(_Refused):
    """A layer archcalc has no rule for at all: what ``skip_unknown`` may pass over."""


def _pair(value: int | Sequence[int]) -> Pair:
    if isinstance(value, int):
        return (value, value)
    if len(value) == 1:
        return (int(value[0]), int(value[0]))
    return (int(value[0]), int(value[1]))


_ACTIVATIONS = {
    "relu": "relu", "relu6": "relu6", "elu": "elu", "gelu": "gelu", "silu": "silu",
    "swish": "silu", "sigmoid": "sigmoid", "tanh": "tanh", "softmax": "softmax",
    "hard_sigmoid": "hardsigmoid", "hard_silu": "hardswish", "hard_swish": "hardswish",
    "mish": "mish", "leaky_relu": "leakyrelu"}


def _activation(fn: Any) -> list[Kind]:
    """A layer's ``activation``: none for 'linear', else one pointwise layer."""
    name = getattr(fn, "__name__", str(fn))
    if name == "linear":
        return []
    if name not in _ACTIVATIONS:
        raise _Refused(f"activation {name!r} (archcalc has "
                       f"{', '.join(sorted(_ACTIVATIONS))} and linear)")
    return [Activation(_ACTIVATIONS[name])]


def _channels_last(layer: Any) -> None:
    if getattr(layer, "data_format", "channels_last") != "channels_last":
        raise _Refused("data_format='channels_first' (archcalc reads channels-last Keras "
                       "models)")


def _padding(layer: Any, rank: int) -> tuple[list[Kind], bool]:
    """(layers before the conv, TensorFlow SAME) for a conv's ``padding``."""
    if layer.padding == "valid":
        return [], False
    if layer.padding == "same":
        return [], True
    if layer.padding == "causal" and rank == 1:
        span = layer.dilation_rate[0] * (layer.kernel_size[0] - 1)
        return [Pad(0, 0, span, 0)], False
    raise _Refused(f"padding={layer.padding!r}")


def _conv(layer: Any, in_shape: Shape) -> list[Kind]:
    _channels_last(layer)
    rank = len(layer.kernel_size)
    before, same = _padding(layer, rank)
    conv = Conv(layer.filters, _pair(layer.kernel_size), _pair(layer.strides), (0, 0),
                _pair(layer.dilation_rate), layer.groups, layer.use_bias, tf_same=same)
    return [*before, conv, *_activation(layer.activation)]


def _depthwise(layer: Any, in_shape: Shape) -> list[Kind]:
    _channels_last(layer)
    before, same = _padding(layer, len(layer.kernel_size))
    conv = DepthwiseConv(0, _pair(layer.kernel_size), _pair(layer.strides), (0, 0),
                         _pair(layer.dilation_rate), 1, layer.use_bias, tf_same=same,
                         depthwise=True, multiplier=layer.depth_multiplier)
    return [*before, conv, *_activation(layer.activation)]


def _separable(layer: Any, in_shape: Shape) -> list[Kind]:
    """A depthwise conv without bias, then a 1x1 conv with the layer's bias."""
    _channels_last(layer)
    before, same = _padding(layer, len(layer.kernel_size))
    depthwise = DepthwiseConv(0, _pair(layer.kernel_size), _pair(layer.strides), (0, 0),
                              _pair(layer.dilation_rate), 1, False, tf_same=same,
                              depthwise=True, multiplier=layer.depth_multiplier)
    pointwise = Conv(layer.filters, (1, 1), bias=layer.use_bias)
    return [*before, depthwise, pointwise, *_activation(layer.activation)]


def _deconv(layer: Any, in_shape: Shape) -> list[Kind]:
    """Conv2DTranspose as torch's ConvTranspose2d: 'valid' crops nothing; 'same' (output
    n*s) crops d*(k-1) + 1 - s, half from each side and the odd one back as output padding
    (counts and shapes exact; Keras crops the odd pixel at the start instead, so the values
    are shifted by a pixel there)."""
    _channels_last(layer)
    kernel, stride = _pair(layer.kernel_size), _pair(layer.strides)
    dilation = _pair(layer.dilation_rate)
    given = None if layer.output_padding is None else _pair(layer.output_padding)
    pads, extra = [], []
    for k, s, d, i in zip(kernel, stride, dilation, (0, 1), strict=True):
        span = d * (k - 1) + 1
        if layer.padding == "valid":  # n*s + max(span - s, 0): a short kernel pads the end
            p, e = 0, max(s - span, 0) if given is None else given[i]
        elif given is not None:
            p, e = span // 2, given[i]
        else:
            p = max(-(-(span - s) // 2), 0)
            e = s + 2 * p - span
        if e >= max(s, d):
            raise _Refused(f"padding={layer.padding!r} with kernel {k} and stride {s}: torch "
                           "cannot write it (output padding must be less than the stride)")
        pads.append(p)
        extra.append(e)
    conv = ConvTranspose(layer.filters, kernel, stride, (pads[0], pads[1]),
                         (extra[0], extra[1]), dilation, 1, layer.use_bias)
    return [conv, *_activation(layer.activation)]


def _dense(layer: Any, in_shape: Shape) -> list[Kind]:
    """Dense on a vector; on a map or sequence it acts on the channels: a 1x1 conv."""
    if len(in_shape) == 1:
        kind: Kind = Linear(layer.units, layer.use_bias)
    else:
        kind = Conv(layer.units, (1, 1), bias=layer.use_bias)
    return [kind, *_activation(layer.activation)]


def _last_axis(layer: Any, axis: Any, in_shape: Shape) -> None:
    axes = [axis] if isinstance(axis, int) else list(axis)
    rank = len(in_shape) + 1
    if [a % rank for a in axes] != [rank - 1]:
        raise _Refused(f"axis={axis} (archcalc normalises the channels, the last axis)")


def _batch_norm(layer: Any, in_shape: Shape) -> list[Kind]:
    _last_axis(layer, layer.axis, in_shape)
    if layer.scale and not layer.center:
        raise _Refused("center=False, scale=True (archcalc's batch norm learns a shift with "
                       "its scale, a shift alone, or neither)")
    if getattr(layer, "renorm", False):
        raise _Refused("renorm=True")
    return [BatchNorm(layer.epsilon, layer.center, layer.scale or not layer.center)]


def _layer_norm(layer: Any, in_shape: Shape) -> list[Kind]:
    _last_axis(layer, layer.axis, in_shape)
    if layer.center != layer.scale or getattr(layer, "rms_scaling", False):
        raise _Refused(f"center={layer.center}, scale={layer.scale} (archcalc's layer norm "
                       "has both a learnt scale and shift, or neither)")
    return [LayerNorm(layer.epsilon, layer.center)]


def _pool(op: PoolOp) -> Callable[[Any, Shape], list[Kind]]:
    def rule(layer: Any, in_shape: Shape) -> list[Kind]:
        _channels_last(layer)
        kernel, stride = _pair(layer.pool_size), _pair(layer.strides or layer.pool_size)
        if layer.padding == "valid":
            return [Pool(op, kernel, stride)]
        sizes = in_shape[1:]  # (H, W), or (L,): a sequence's sizes are written once, (k, k)
        pads = [_same(n, k, s) for n, k, s in zip(sizes, kernel, stride, strict=False)]
        if any(after - before not in (0, 1) for before, after in pads):
            raise _Refused(f"padding='same' resolves to {pads} here, which archcalc's "
                           "pooling cannot write")
        ceil = any(after > before for before, after in pads)
        # TensorFlow averages the covered inputs only (the windows past the end in ceil
        # mode are clipped by torch as well)
        return [Pool(op, kernel, stride, (pads[0][0], pads[-1][0]), ceil,
                     count_pad=op == "max")]  # max pooling has no divisor
    return rule


def _same(size: int, kernel: int, stride: int) -> Pair:
    """(before, after) padding of TensorFlow's SAME pooling along one axis: output
    ceil(size/stride), the odd pixel after (as Conv's ``tf_same``)."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return (total // 2, total - total // 2)


def _global_pool(op: PoolOp) -> Callable[[Any, Shape], list[Kind]]:
    def rule(layer: Any, in_shape: Shape) -> list[Kind]:
        _channels_last(layer)
        pool = GlobalPool(op)
        return [pool] if layer.keepdims else [pool, Flatten()]
    return rule


def _flatten(layer: Any, in_shape: Shape) -> list[Kind]:
    return [Flatten()] if len(in_shape) > 1 else []


def _reshape(layer: Any, in_shape: Shape) -> list[Kind]:
    """To a vector: flattening; (1, 1, C) after global pooling: see _Importer.fold."""
    target = tuple(layer.target_shape)
    if len(target) == 3 and target[:2] == (1, 1):
        return []  # checked, with the pooling before it, in _Importer.fold_reshape
    if len(target) == 1 and target[0] in (-1, math.prod(in_shape)):
        return [Flatten()] if len(in_shape) > 1 else []
    raise _Refused(f"reshape of {in_shape} (channels first) to {target} (archcalc reshapes "
                   "only by flattening, and to (1, 1, C) right after global pooling)")


def _zero_pad(layer: Any, in_shape: Shape) -> list[Kind]:
    _channels_last(layer)
    padding = layer.padding
    if len(padding) == 2 and isinstance(padding[0], int):  # ZeroPadding1D (start, end)
        return [Pad(0, 0, padding[0], padding[1])]
    (top, bottom), (left, right) = padding
    return [Pad(top, bottom, left, right)]


def _crop(layer: Any, in_shape: Shape) -> list[Kind]:
    _channels_last(layer)
    (top, bottom), (left, right) = layer.cropping
    return [Crop(top, bottom, left, right)]


def _upsample(layer: Any, in_shape: Shape) -> list[Kind]:
    _channels_last(layer)
    if layer.interpolation not in ("nearest", "bilinear"):
        raise _Refused(f"interpolation={layer.interpolation!r} (archcalc upsamples nearest or "
                       "bilinear)")
    return [Upsample(_pair(layer.size), layer.interpolation)]


def _relu(layer: Any, in_shape: Shape) -> list[Kind]:
    top = None if layer.max_value is None else float(layer.max_value)
    if float(layer.threshold) != 0.0 or top not in (None, 6.0):
        raise _Refused(f"max_value={layer.max_value}, threshold={layer.threshold} (archcalc "
                       "has relu, relu6 and leaky relu)")
    if float(layer.negative_slope) != 0.0:
        if top is not None:
            raise _Refused("a leaky relu with a max_value")
        return [Activation("leakyrelu")]
    return [Activation("relu" if top is None else "relu6")]


def _softmax(layer: Any, in_shape: Shape) -> list[Kind]:
    _last_axis(layer, layer.axis, in_shape)
    return [Activation("softmax")]


def _rescaling(layer: Any, in_shape: Shape) -> list[Kind]:
    scale, offset = layer.scale, layer.offset
    if not all(isinstance(v, int | float) for v in (scale, offset)):
        raise _Refused("a scale or offset per channel (archcalc rescales by one number)")
    return [Rescale(float(scale), float(offset))]


def _normalization(layer: Any, in_shape: Shape) -> list[Kind]:
    _last_axis(layer, layer.axis, in_shape)
    if layer.invert:
        raise _Refused("invert=True")
    return [Standardize(adapted=bool(layer.weights))]


def _layer_scale(layer: Any, in_shape: Shape) -> list[Kind]:
    return [LayerScale()]


def _leaky(layer: Any, in_shape: Shape) -> list[Kind]:
    return [Activation("leakyrelu")]


def _prelu(layer: Any, in_shape: Shape) -> list[Kind]:
    """One slope per channel (``shared_axes`` all but the channels) or one in all; Keras'
    default, a slope per element, has no archcalc kind."""
    alpha = tuple(int(d) for d in layer.alpha.shape)
    if any(d != 1 for d in alpha[:-1]):
        raise _Refused(f"{math.prod(alpha)} slopes (archcalc's PReLU has one, or one per "
                       "channel: shared_axes over every axis but the channels)")
    return [PReLU(per_channel=alpha[-1] > 1)]


_RULES: dict[type, Callable[[Any, Shape], list[Kind]]] = {
    L.Conv1D: _conv, L.Conv2D: _conv, L.DepthwiseConv2D: _depthwise,
    L.SeparableConv2D: _separable, L.Conv2DTranspose: _deconv, L.Dense: _dense,
    L.BatchNormalization: _batch_norm, L.LayerNormalization: _layer_norm,
    L.MaxPooling1D: _pool("max"), L.MaxPooling2D: _pool("max"),
    L.AveragePooling1D: _pool("avg"), L.AveragePooling2D: _pool("avg"),
    L.GlobalAveragePooling1D: _global_pool("avg"), L.GlobalAveragePooling2D: _global_pool("avg"),
    L.GlobalMaxPooling1D: _global_pool("max"), L.GlobalMaxPooling2D: _global_pool("max"),
    L.Flatten: _flatten, L.Reshape: _reshape,
    L.Dropout: lambda layer, shape: [Dropout(float(layer.rate))],
    L.SpatialDropout1D: lambda layer, shape: [Dropout(float(layer.rate))],
    L.SpatialDropout2D: lambda layer, shape: [Dropout(float(layer.rate))],
    L.ZeroPadding1D: _zero_pad, L.ZeroPadding2D: _zero_pad, L.Cropping2D: _crop,
    L.UpSampling2D: _upsample,
    L.Activation: lambda layer, shape: _activation(layer.activation),
    L.ReLU: _relu, L.LeakyReLU: _leaky, L.Softmax: _softmax, L.PReLU: _prelu,
    L.ELU: lambda layer, shape: [Activation("elu")],
    L.Identity: lambda layer, shape: [],
    L.Rescaling: _rescaling, L.Normalization: _normalization,
}


def _application_layers() -> dict[type, Callable[[Any, Shape], list[Kind]]]:
    """Layers keras.applications defines for itself (private modules: absent, not fatal)."""
    rules: dict[type, Callable[[Any, Shape], list[Kind]]] = {}
    try:
        from keras.src.applications.convnext import LayerScale as KerasLayerScale
    except ImportError:
        pass
    else:
        rules[KerasLayerScale] = _layer_scale
    return rules


_RULES.update(_application_layers())


def _joins() -> dict[type, Join]:
    joins: dict[type, Join] = {L.Add: "add", L.Concatenate: "concat", L.Multiply: "gate"}
    try:  # InceptionResNetV2's x + scale * f(x)
        from keras.src.applications.inception_resnet_v2 import CustomScaleLayer
    except ImportError:
        pass
    else:
        joins[CustomScaleLayer] = "add"
    return joins


_JOINS = _joins()
_TENSOR_OPS: dict[str, Join] = {"Add": "add", "Multiply": "gate"}  # keras.ops on two tensors


def _near(arithmetic: tuple[str, Rescale], name: str, scale: float, offset: float) -> bool:
    """Whether ``arithmetic`` is the call ``name`` rescaling by ``scale`` and ``offset``."""
    called, rescale = arithmetic
    return called == name and math.isclose(rescale.scale, scale) and math.isclose(
        rescale.offset, offset, abs_tol=1e-12)


# -- the graph ----------------------------------------------------------------------------
class _Importer:
    """One model: every layer call becomes an :class:`Op`, in an order where each comes
    after its inputs; :func:`sequences` writes them as blocks."""

    def __init__(self, model: str, skip_unknown: bool = False) -> None:
        self.model = model
        self.skip_unknown = skip_unknown
        self.skipped: list[str] = []  # warnings: the layers passed over
        self.ops: list[Op] = []
        self.made: dict[int, Op] = {}  # id(KerasTensor) -> the op that computes it
        self.keep: list[Any] = []  # the tensors keyed by id, alive while they are keys
        self.calls: dict[Op, tuple[Any, Any]] = {}  # op -> (Keras layer or operation, node)
        self.constant: dict[Op, tuple[str, Rescale]] = {}  # arithmetic with a number
        self.used: dict[Op, int] = {}

    def body(self, source: Any, result: Any) -> Seq:
        first = Op("input", Loc(f"<keras {self.model}>", 0, 1, "input"))
        self.add(source, first)
        self.resolve(result)
        self.fold()
        return sequences(self.ops, first, self.made[id(result)], self.model)

    def add(self, tensor: Any, op: Op) -> None:
        self.made[id(tensor)] = op
        self.keep.append(tensor)
        if op not in self.used:
            self.used[op] = 0
            self.ops.append(op)

    def resolve(self, tensor: Any) -> None:
        """The op of ``tensor`` and of everything it is computed from (depth first, without
        recursion: a deep model has thousands of layers in one chain)."""
        stack: list[tuple[Any, bool]] = [(tensor, False)]
        while stack:
            t, ready = stack.pop()
            if id(t) in self.made:
                continue
            operation, node_index, _ = t._keras_history
            node = operation._inbound_nodes[node_index]
            if node.is_input:
                raise UnsupportedModel(f"{self.model}: cannot read input {operation.name!r}: "
                                       "archcalc reads models of one input")
            if not ready:
                stack.append((t, True))
                stack.extend((x, False) for x in reversed(node.input_tensors))
                continue
            inputs = [self.made[id(x)] for x in node.input_tensors]
            if isinstance(operation, keras.Model):
                self.inline(operation, node, inputs, t)
                continue
            if len(node.output_tensors) != 1:
                raise UnsupportedModel(f"{self.model}: cannot read {self.where(operation)}: "
                                       f"it gives {len(node.output_tensors)} tensors")
            calls = len(operation._inbound_nodes)
            if calls > 1 and getattr(operation, "weights", None):
                raise UnsupportedModel(
                    f"{self.model}: cannot read {self.where(operation)}: it is called "
                    f"{calls} times with the same weights, which archcalc would count "
                    f"{calls} times")
            op = self.op(operation, node, inputs, len(self.ops))
            for p in op.inputs:
                self.used[p] += 1
            self.add(t, op)

    def inline(self, model: Any, node: Any, inputs: list[Op], tensor: Any) -> None:
        """A nested model's layers in place of its call."""
        if len(model._inbound_nodes) != 1 or len(model.inputs) != 1 or len(inputs) != 1:
            raise UnsupportedModel(f"{self.model}: cannot read {self.where(model)}: a nested "
                                   "model is read when it is called once, on one tensor")
        inner_in, inner_out = model.inputs[0], model.outputs[0]
        self.made[id(inner_in)] = inputs[0]
        self.keep.append(inner_in)
        self.resolve(inner_out)
        self.made[id(tensor)] = self.made[id(inner_out)]
        self.keep.append(tensor)

    def op(self, operation: Any, node: Any, inputs: list[Op], index: int) -> Op:
        made = Op(operation.name, Loc(f"<keras {self.model}>", index, 1, operation.name),
                  tuple(inputs), where=self.where(operation))
        self.calls[made] = (operation, node)
        in_shape = channels_first(node.input_tensors[0].shape, self.model)
        try:
            made.join = self.join(operation, node, len(inputs))
            if made.join is None:
                made.layers = tuple(self.leaf(operation, node, made, in_shape))
        except _NoRule as exc:
            if not self.skip_unknown:
                raise self.refuse(operation, str(exc)) from None
            out_shape = channels_first(node.output_tensors[0].shape, self.model)
            self.skipped.append(skip(self.model, self.where(operation), str(exc), in_shape,
                                     out_shape))
        except _Refused as exc:
            raise self.refuse(operation, str(exc)) from None
        return made

    def join(self, operation: Any, node: Any, tensors: int) -> Join | None:
        cls = type(operation)
        if cls in _JOINS:
            if cls is L.Concatenate:
                rank = len(node.input_tensors[0].shape)
                if operation.axis % rank != rank - 1:
                    raise _Refused(f"concatenation along axis {operation.axis} (archcalc "
                                   "joins channels, the last axis)")
            if tensors < 2 and cls is not L.Concatenate:
                raise _Refused(f"a join of {tensors} tensor")
            if _JOINS[cls] == "gate" and tensors != 2:
                raise _Refused(f"a product of {tensors} tensors (archcalc's gate is x * f(x))")
            return _JOINS[cls]
        if tensors >= 2 and cls.__module__.startswith("keras.src.ops"):
            if cls.__name__ in _TENSOR_OPS:
                return _TENSOR_OPS[cls.__name__]
            raise _Refused(f"keras.ops.{cls.__name__} on {tensors} tensors")
        return None

    def leaf(self, operation: Any, node: Any, made: Op, in_shape: Shape) -> list[Kind]:
        rule = _RULES.get(type(operation))
        if rule is not None:
            return rule(operation, in_shape)
        cls = type(operation)
        if cls.__module__.startswith("keras.src.ops"):
            rescale = self.arithmetic(cls.__name__, node.arguments.args)
            if rescale is not None:
                self.constant[made] = cls.__name__, rescale
                return [rescale]
        raise _NoRule(f"no rule for {cls.__module__.replace('keras.src.', 'keras.')}."
                      f"{cls.__qualname__}")

    def arithmetic(self, name: str, args: Sequence[Any]) -> Rescale | None:
        """``x * c``, ``x / c``, ``x + c``, ``x - c``, ``c - x`` or ``-x`` with a number
        ``c``: x * scale + offset, as Keras' Rescaling; None for anything else."""
        if name == "Negative" and len(args) == 1:
            return Rescale(-1.0, 0.0)
        if len(args) != 2 or sum(isinstance(a, keras.KerasTensor) for a in args) != 1:
            return None
        first = isinstance(args[0], keras.KerasTensor)
        c = args[1] if first else args[0]
        if isinstance(c, bool) or not isinstance(c, int | float):
            return None
        c = float(c)
        if name == "Multiply":
            return Rescale(c, 0.0)
        if name == "Add":
            return Rescale(1.0, c)
        if name == "Subtract":
            return Rescale(1.0, -c) if first else Rescale(-1.0, c)
        if name in ("TrueDivide", "Divide") and first and c != 0.0:
            return Rescale(1 / c, 0.0)
        return None

    def fold(self) -> None:
        """Patterns of several Keras calls that are one archcalc layer: ``relu6(x + 3) / 6``
        (MobileNetV3's hard sigmoid), and global pooling reshaped to (1, 1, C)."""
        for op in self.ops:
            operation, _ = self.calls.get(op, (None, None))
            if isinstance(operation, L.Reshape):
                self.fold_reshape(op, operation)
        for op in list(self.constant):
            self.fold_hard_sigmoid(op)

    def fold_reshape(self, op: Op, operation: Any) -> None:
        target = tuple(operation.target_shape)
        if len(target) != 3 or target[:2] != (1, 1):
            return
        source = op.inputs[0]
        layers = list(source.layers)
        if (self.used[source] != 1 or len(layers) != 2 or not isinstance(layers[0], GlobalPool)
                or not isinstance(layers[1], Flatten)):
            raise self.refuse(operation, f"reshape to {target} (archcalc reads it only right "
                                         "after global pooling: the pooled map, kept)")
        source.layers, op.layers = (layers[0],), ()

    def fold_hard_sigmoid(self, op: Op) -> None:
        """If ``op`` is the ``* (1/6)`` of relu6(x + 3) / 6, it becomes the hard sigmoid and
        the + 3 and the relu6 pass their input on."""
        if not _near(self.constant[op], "Multiply", 1 / 6, 0.0):
            return
        relu = op.inputs[0]
        if (len(relu.inputs) != 1 or self.used[relu] != 1
                or list(relu.layers) != [Activation("relu6")]):
            return
        plus = relu.inputs[0]
        if plus not in self.constant or not _near(self.constant[plus], "Add", 1.0, 3.0) \
                or self.used[plus] != 1:
            return
        plus.layers, relu.layers, op.layers = (), (), (Activation("hardsigmoid"),)

    # -- where ----------------------------------------------------------------------------
    def where(self, operation: Any) -> str:
        cls = type(operation)
        module = cls.__module__.replace("keras.src.", "keras.")
        return f"layer {operation.name!r} ({module}.{cls.__qualname__})"

    def refuse(self, operation: Any, why: str) -> UnsupportedModel:
        return UnsupportedModel(f"{self.model}: cannot read {self.where(operation)}: {why}")
