"""An ONNX model (``archcalc model.onnx``) -> an archcalc graph, for anything any framework
exports.

ONNX lists its nodes in topological order with their attributes, and its weights as
initializers: each node archcalc has a rule for becomes that layer kind, built from its
attributes and weight shapes (``Conv`` with a 64x3x7x7 weight, strides 2 and pads 3 is
``conv7-64 s=2 p=3``); ``Add``, ``Concat`` (axis 1) and ``Mul`` (``x * f(x)``) join paths
(:mod:`archcalc.importers.dataflow`). Shape arithmetic that exporters write for
``x.view(x.size(0), -1)`` (Shape, Gather, Unsqueeze, Concat of sizes) is followed to the
``Reshape`` it feeds and is no layer. A node without a rule is one line naming it; asked
to (``skip_unknown``), one whose output keeps its input's shape (by onnx's shape
inference) is passed over as zero cost instead, and named among the report's warnings.

Keras models exported by tf2onnx are read as their ONNX graph computes, which is not the
Keras model layer for layer:

* the input is channels-last (NHWC): elementwise preprocessing by constants may come first,
  then a ``Transpose`` to NCHW, which is the input's layout, not a layer (the input shape
  is C, H, W, as everywhere in archcalc);
* batch norm is folded into the convolution before it (its weights, and its shift as the
  conv's bias): the report has conv biases where Keras has BN parameters and moving
  statistics, so its parameters are the ONNX initializers', not ``count_params()``;
* ``Mul``/``Add``/``Sub``/``Div`` of a tensor by constants are affine maps: consecutive
  ones by scalars are one ``rescale`` (Keras' Rescaling); by per-channel constants (a batch
  norm tf2onnx cannot fold, after a depthwise conv or a concatenation; Keras'
  Normalization) at most one factor and one shift are ``x * s + b`` per channel, which is
  what a 1x1 depthwise convolution computes, and is read as one (``dwconv1``, with a bias
  where there is a shift): the C factors are its weights and the C shifts its biases,
  counted as parameters, as the graph holds them (initializers, beside the conv weights),
  and each element costs one multiply-accumulate;
* a Conv's explicit pads that are TensorFlow's SAME for its input size (one more at the
  end) are read as SAME (``p=tf-same``), so the graph writes as a spec; SAME pooling's one
  more at the end is torch's ceil mode, and its average (``count_include_pad=0``) divides
  by the inputs each window covers (``count-pad=false``), as the Keras importer reads it;
* ``MatMul`` by a 2-D initializer (then ``Add`` of a bias) is a fully connected layer,
  ``Clip(0, 6)`` relu6, ``Sigmoid`` then ``Mul`` a gate (swish); ``Squeeze`` after global
  pooling flattens, and a ``Reshape`` back to the pooled map (squeeze-and-excitation) or to
  the shape it already has is no layer.

Only initializers' dimensions are read, and the values of the few small constants a rule
needs (pads, clip bounds, scalar factors): a model saved with external data is read without
its data file (``onnx.load(..., load_external_data=False)``), so a model of any size reads
in the time its graph takes.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator, MutableMapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnx
from onnx import helper, numpy_helper

from archcalc.errors import Loc
from archcalc.importers.dataflow import Imported, Join, Op, UnsupportedModel, sequences, skip
from archcalc.kinds import (
    Activation,
    BatchNorm,
    Conv,
    ConvTranspose,
    DepthwiseConv,
    Flatten,
    GlobalPool,
    GroupNorm,
    InstanceNorm,
    Kind,
    LayerNorm,
    Linear,
    Pad,
    Pool,
    PReLU,
    Rescale,
    Upsample,
)
from archcalc.kinds.norm import LRN
from archcalc.kinds.pad import Crop
from archcalc.layers import Graph, Shape

_ACTIVATIONS = {"Relu": "relu", "LeakyRelu": "leakyrelu", "Elu": "elu", "Sigmoid": "sigmoid",
                "Tanh": "tanh", "HardSwish": "hardswish", "HardSigmoid": "hardsigmoid",
                "Mish": "mish", "Gelu": "gelu", "Softmax": "softmax"}
_PASS = ("Identity", "Dropout")  # Dropout is the identity in an exported inference graph
_ARITHMETIC = ("Mul", "Add", "Sub", "Div")
_TO_NCHW, _TO_NHWC = [0, 3, 1, 2], [0, 2, 3, 1]


def onnx_graph(source: str | Path | Any, input_size: Sequence[int] | None = None,
               name: str | None = None) -> Graph:
    """The graph of an ONNX model (a path or a loaded ``onnx.ModelProto``); ``input_size``
    (C, H, W) overrides the model's own input dimensions (needed where they are symbolic)."""
    return read_onnx(source, input_size, name).graph


def _load(path: Path) -> Any:
    """The file's model without its external data; a file that is not an ONNX model (a
    protobuf of another kind, text, a truncated download) is one line naming it."""
    from google.protobuf.message import DecodeError

    try:
        model = onnx.load(str(path), load_external_data=False)
    except DecodeError as exc:
        raise UnsupportedModel(f"{path} is not an ONNX model: {exc}") from None
    if not model.graph.node:
        raise UnsupportedModel(f"{path} is not an ONNX model: it holds no graph nodes")
    return model


def read_onnx(source: str | Path | Any, input_size: Sequence[int] | None = None,
              name: str | None = None, skip_unknown: bool = False) -> Imported:
    """:func:`onnx_graph`, and the nodes ``skip_unknown`` passed over. A file's external
    data is not loaded (only the small constants a rule needs are read from it)."""
    if isinstance(source, str | Path):
        model = _load(Path(source))
        base_dir = str(Path(source).parent)
    else:
        model, base_dir = source, ""
    label = name or (Path(source).stem if isinstance(source, str | Path) else
                     model.graph.name or "onnx")
    reader = _Reader(model.graph, label, list(model.opset_import), skip_unknown, base_dir)
    graph = reader.graph(input_size)
    return Imported(graph, tuple(reader.skipped))


def from_onnx(source: str | Path | Any, input_size: Sequence[int] | None = None,
              convention: str = "full", skip_unknown: bool = False) -> Any:
    return read_onnx(source, input_size, skip_unknown=skip_unknown).report(convention)


class _Refused(Exception):
    """A known op with settings archcalc has no rule for."""


class _NoRule(_Refused):
    """An op archcalc has no rule for at all: what ``skip_unknown`` may pass over."""


class _Constants(MutableMapping[str, Any]):
    """The values of initializers and Constant nodes, each converted from the proto when
    first read: the rules read a few small constants, never the weights. One held in
    external data is read alone from its file, and a file that is not there is one line."""

    def __init__(self, tensors: dict[str, Any], base_dir: str, model: str) -> None:
        self.tensors, self.base_dir, self.model = tensors, base_dir, model
        self.loaded: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        if name not in self.loaded:
            self.loaded[name] = self.load(self.tensors[name])
        return self.loaded[name]

    def load(self, tensor: Any) -> Any:
        from onnx.external_data_helper import load_external_data_for_tensor, uses_external_data

        if uses_external_data(tensor):
            copy = onnx.TensorProto()
            copy.CopyFrom(tensor)
            try:
                load_external_data_for_tensor(copy, self.base_dir)
            except (OSError, ValueError, onnx.checker.ValidationError):
                raise UnsupportedModel(f"{self.model}: the value of {tensor.name!r}, which a "
                                       "rule needs, is in external data that cannot be read"
                                       ) from None
            tensor = copy
        return numpy_helper.to_array(tensor)

    def alias(self, name: str, original: str) -> None:
        """``name`` holds ``original``'s value (an Identity), read only if ever needed."""
        self.tensors[name] = self.tensors[original]
        if original in self.loaded:
            self.loaded[name] = self.loaded[original]

    def __setitem__(self, name: str, value: Any) -> None:
        self.loaded[name] = value
        self.tensors.setdefault(name, None)

    def __delitem__(self, name: str) -> None:
        del self.tensors[name]
        self.loaded.pop(name, None)

    def __contains__(self, name: object) -> bool:
        return name in self.tensors

    def __iter__(self) -> Iterator[str]:
        return iter(self.tensors)

    def __len__(self) -> int:
        return len(self.tensors)


@dataclass
class _Step:
    """One ``Mul``/``Add``/``Sub``/``Div`` of a tensor by a constant: ``x * c``, ``x + c``,
    ``c - x`` (``negate``)... ``channels``: the constant is per channel (None: a scalar,
    whose ``value`` is read)."""

    op: str
    channels: int | None
    value: float = 0.0
    negate: bool = False


@dataclass
class _Run:
    """Consecutive steps on one tensor, as one affine layer: by scalars, ``x * scale +
    offset`` (a ``rescale``); by per-channel constants, at most one factor and one shift
    (``scaled``, ``shifted``): a 1x1 depthwise conv, with a bias where there is a shift."""

    channels: int | None
    scale: float = 1.0
    offset: float = 0.0
    scaled: bool = False
    shifted: bool = False

    def absorb(self, step: _Step) -> bool:
        """Whether ``step`` continues the run (then it is applied)."""
        if step.channels != self.channels:
            return False
        if self.channels is None:
            value = step.value
            if step.op == "Mul":
                self.scale, self.offset = self.scale * value, self.offset * value
            elif step.op == "Div":
                self.scale, self.offset = self.scale / value, self.offset / value
            elif step.negate:
                self.scale, self.offset = -self.scale, value - self.offset
            else:
                self.offset += value if step.op == "Add" else -value
            return True
        factor = step.op in ("Mul", "Div")
        if (self.scaled if factor else self.shifted) or step.negate:
            return False
        self.scaled, self.shifted = self.scaled or factor, self.shifted or not factor
        return True

    def layers(self) -> list[Kind]:
        if self.channels is None:
            return [Rescale(self.scale, self.offset)]
        if not self.scaled:
            raise _Refused("a per-channel shift without a factor (archcalc has no layer of "
                           "biases alone)")
        return [DepthwiseConv(0, (1, 1), bias=self.shifted, depthwise=True, multiplier=1)]


class _Reader:
    def __init__(self, graph: Any, model: str, opsets: list[Any],
                 skip_unknown: bool = False, base_dir: str = "") -> None:
        self.opsets = opsets
        self.skip_unknown = skip_unknown
        self.skipped: list[str] = []  # warnings: the nodes passed over
        self.inferred: dict[str, Shape | None] | None = None  # by onnx, when first needed
        self.ranks: dict[str, int] = {}  # with it: their number of dimensions
        self.g, self.model = graph, model
        self.weights = {t.name: tuple(t.dims) for t in graph.initializer}
        tensors: dict[str, Any] = {t.name: t for t in graph.initializer}
        for node in graph.node:
            if node.op_type == "Constant":
                for a in node.attribute:
                    if a.name == "value":
                        tensors[node.output[0]] = a.t
        self.constants = _Constants(tensors, base_dir, model)
        self.uses = Counter([x for n in graph.node for x in n.input] +
                            [o.name for o in graph.output])
        self.consumers: dict[str, list[Any]] = {}
        for node in graph.node:
            for x in node.input:
                self.consumers.setdefault(x, []).append(node)
        self.initializers = {t.name for t in graph.initializer}
        self.shape_values = self.find_shape_values()
        self.channels_last: set[str] = set()  # tensors before tf2onnx's Transpose to NCHW
        self.runs: dict[Op, _Run] = {}  # affine layers, completed after the last node
        self.squeezed: dict[Op, Shape | None] = {}  # Squeeze ops, and the shapes they took
        self.linear: dict[Op, int] = {}  # MatMul ops without a bias yet: their outputs

    def graph(self, input_size: Sequence[int] | None) -> Graph:
        inputs = [i for i in self.g.input if i.name not in self.weights]
        if len(inputs) != 1 or len(self.g.output) != 1:
            raise UnsupportedModel(f"{self.model}: {len(inputs)} inputs and "
                                   f"{len(self.g.output)} outputs; archcalc reads models of "
                                   "one input and one output")
        self.input = inputs[0]
        self.channels_last = self.find_channels_last(inputs[0].name)
        shape = tuple(input_size) if input_size else self.declared_shape(inputs[0])
        self.shape = shape
        self.onnx_shape = ((*shape[1:], shape[0]) if self.channels_last and len(shape) == 3
                           else shape)  # the input's dimensions as the graph holds them
        source = Op("input", Loc(f"<onnx {self.model}>", 0, 1, inputs[0].name))
        ops, producer = [source], {inputs[0].name: source}
        for i, node in enumerate(self.g.node, start=1):
            if node.output[0] in self.shape_values or node.op_type == "Constant":
                continue
            tensors = [producer[x] for x in node.input if x in producer]
            fused = self.fuse(node, i, tensors)
            if fused is not None:
                producer[node.output[0]] = fused
                if fused is not tensors[0]:
                    ops.append(fused)
                continue
            op = self.op(node, i, tensors)
            ops.append(op)
            producer[node.output[0]] = op
            if node.op_type == "Squeeze":
                self.squeezed[op] = self.shape_of(node.input[0])
            if node.op_type == "MatMul":
                self.linear[op] = self.weights[node.input[1]][1]
        for op, run in self.runs.items():
            try:
                op.layers = run.layers()
            except _Refused as exc:
                raise UnsupportedModel(f"{self.model}: cannot read {op.where}: {exc}"
                                       ) from None
        result = producer.get(self.g.output[0].name)
        if result is None:
            raise UnsupportedModel(f"{self.model}: the output does not depend on the input")
        body = sequences(ops, source, result, self.model)
        return Graph(self.model, shape, body, source=f"onnx graph {self.g.name}",
                     file=f"<onnx {self.model}>")

    def static(self, name: str) -> Any:
        """The value of a tensor computed from shapes and constants only (the pads an
        exporter computes for F.pad), by onnx's reference evaluator on those nodes alone,
        for an input of the model's shape (only its shape is read)."""
        if name in self.constants:
            return self.constants[name]
        import numpy as np
        from onnx.reference import ReferenceEvaluator

        nodes = [n for n in self.g.node if all(o in self.shape_values for o in n.output)
                 or n.op_type == "Constant"]
        wanted = [o for n in nodes for o in n.output if o not in self.constants]
        used = {x for n in nodes for x in n.input} & self.initializers
        graph = helper.make_graph(nodes, "static", [self.input],
                                  [helper.make_tensor_value_info(o, 0, None) for o in wanted],
                                  [numpy_helper.from_array(np.asarray(self.constants[x]), x)
                                   for x in sorted(used)])
        model = helper.make_model(graph, opset_imports=self.opsets)
        values: list[Any] = list(ReferenceEvaluator(model).run(
            None, {self.input.name: np.zeros((1, *self.onnx_shape), dtype=np.float32)}))
        self.constants.update(zip(wanted, values, strict=True))
        return self.constants[name]

    def declared_shape(self, value: Any) -> Shape:
        dims = [d.dim_value for d in value.type.tensor_type.shape.dim][1:]
        if not dims or not all(dims):
            raise UnsupportedModel(f"{self.model}: the input's size is not fixed in the model "
                                   "(give --input)")
        if self.channels_last and len(dims) == 3:
            return (dims[2], dims[0], dims[1])
        return tuple(dims)

    def find_channels_last(self, name: str) -> set[str]:
        """The input and the tensors computed from it by elementwise arithmetic with
        constants, where a Transpose to NCHW follows (tf2onnx's export of a channels-last
        Keras model, its preprocessing first); none for a channels-first model."""
        chain, tensor = {name}, name
        while True:
            users = self.consumers.get(tensor, [])
            if len(users) != 1:
                return set()
            node = users[0]
            if node.op_type == "Transpose" and list(self.attr(node, "perm", [])) == _TO_NCHW:
                return chain
            if node.op_type not in _ARITHMETIC or any(
                    x not in self.constants for x in node.input if x != tensor):
                return set()
            tensor = node.output[0]
            chain.add(tensor)

    def find_shape_values(self) -> set[str]:
        """Outputs computed from shapes, constants and weights only (``x.size(0)``, a
        reshape's target, an Identity copy of a BN's running mean, the pads an exporter
        computes for F.pad): no layer's data."""
        found: set[str] = set()
        for node in self.g.node:
            inputs = [x for x in node.input if x]
            static = inputs and all(x in found or x in self.constants for x in inputs)
            if node.op_type == "Shape" or static:
                found.update(node.output)
                if node.op_type == "Identity" and inputs[0] in self.weights:
                    self.weights[node.output[0]] = self.weights[inputs[0]]
                    self.constants.alias(node.output[0], inputs[0])
        return found

    # -- nodes --------------------------------------------------------------------------------
    @staticmethod
    def where(node: Any, index: int) -> str:
        return f"node {node.name or index!r} ({node.op_type})"

    def new_op(self, node: Any, index: int, tensors: list[Op]) -> Op:
        loc = Loc(f"<onnx {self.model}>", index, 1, f"{node.op_type} {node.name}")
        return Op(f"{node.op_type} {node.name}".strip(), loc, tuple(tensors),
                  where=self.where(node, index))

    def fuse(self, node: Any, index: int, tensors: list[Op]) -> Op | None:
        """The op ``node`` belongs to where it is not a layer of its own: a step of an
        affine run (the op of a new run where it begins one), a fully connected layer's
        bias, a Reshape back to the map a Squeeze took; None for any other node."""
        names = [x for x in node.input
                 if x and x not in self.constants and x not in self.shape_values]
        if len(tensors) != 1 or len(names) != 1:
            return None
        prev, data = tensors[0], names[0]
        alone = self.uses[data] == 1  # no other node reads the tensor between them
        if node.op_type in _ARITHMETIC:
            step = self.step(node, index, data)
            run = self.runs.get(prev)
            if run is not None and alone and run.absorb(step):
                return prev
            if (node.op_type == "Add" and alone and prev in self.linear
                    and step.channels == self.linear[prev]):
                prev.layers = [Linear(self.linear.pop(prev), True)]
                return prev
            op, run = self.new_op(node, index, tensors), _Run(step.channels)
            if not run.absorb(step):
                raise UnsupportedModel(f"{self.model}: cannot read {self.where(node, index)}: "
                                       "c - x with a per-channel c")
            self.runs[op] = run
            return op
        if node.op_type == "Reshape" and alone and prev in self.squeezed:
            taken = self.squeezed.pop(prev)
            if taken is not None and self.shape_of(node.output[0]) == taken:
                prev.layers = []  # squeeze-and-excitation's pooled map, as it was
                return prev
        return None

    def step(self, node: Any, index: int, data: str) -> _Step:
        """``node`` as arithmetic on tensor ``data`` by its constant operand: a scalar (its
        value read), or one value per channel (of the channels' axis: the last before the
        Transpose to NCHW, the first after it)."""
        import numpy as np

        kind = node.op_type
        const = next(x for x in node.input if x != data)
        second = node.input[1] == data
        where = f"{self.model}: cannot read {self.where(node, index)}"
        if kind == "Div" and second:
            raise UnsupportedModel(f"{where}: c / x, which is not affine")
        tensor = self.constants.tensors.get(const)
        dims = tuple(tensor.dims) if tensor is not None else np.shape(self.constants[const])
        negate = kind == "Sub" and second
        if math.prod(dims) == 1:
            value = float(np.asarray(self.constants[const]).reshape(()))
            return _Step(kind, None, value, negate)
        shape = self.shape_of(data)
        if shape is None or len(dims) > len(shape) + 1:
            raise UnsupportedModel(f"{where}: a constant of shape {list(dims)} on a tensor "
                                   "of unknown shape")
        padded = (1,) * (len(shape) + 1 - len(dims)) + dims
        axis = -1 if data in self.channels_last else 0
        channels = shape[axis]
        if padded[0] != 1 or padded[1:][axis] != channels or math.prod(dims) != channels:
            raise UnsupportedModel(f"{where}: a constant of shape {list(dims)} on "
                                   f"{list(shape)} (archcalc reads scalars and constants "
                                   "per channel)")
        return _Step(kind, channels, 0.0, negate)

    def op(self, node: Any, index: int, tensors: list[Op]) -> Op:
        where = self.where(node, index)
        made = self.new_op(node, index, tensors)
        loc = made.loc
        join = self.join(node, tensors)
        if join is not None:
            return Op(made.label, loc, tuple(tensors), join=join, where=where)
        try:
            layers = self.layers(node)
        except _NoRule as exc:
            if not self.skip_unknown:
                raise UnsupportedModel(f"{self.model}: cannot read {where}: {exc}") from None
            data = next((x for x in node.input if x and x not in self.shape_values), None)
            self.skipped.append(skip(self.model, where, str(exc), self.shape_of(data),
                                     self.shape_of(node.output[0])))
            layers = []
        except _Refused as exc:
            raise UnsupportedModel(f"{self.model}: cannot read {where}: {exc}") from None
        return Op(made.label, loc, tuple(tensors), tuple(layers), where=where)

    def shape_of(self, name: str | None) -> Shape | None:
        """One sample's shape of tensor ``name`` by onnx's shape inference, run once on
        the graph with the input's size fixed; None where it cannot tell."""
        if self.inferred is None:
            from onnx import shape_inference

            graph = onnx.GraphProto()
            graph.CopyFrom(self.g)
            (value,) = [i for i in graph.input if i.name == self.input.name]
            dims = value.type.tensor_type.shape.dim
            for dim, size in zip(dims, (1, *self.onnx_shape), strict=False):
                dim.Clear()
                dim.dim_value = size
            model = helper.make_model(graph, opset_imports=self.opsets)
            try:
                inferred = shape_inference.infer_shapes(model).graph
            except Exception:  # onnx's own checks: then no shape is known
                inferred = graph
            values = [*graph.value_info, *graph.output, *inferred.input,
                      *inferred.value_info, *inferred.output]  # inferred last: they win
            self.inferred = {v.name: self.known(v) for v in values}
            self.ranks = {v.name: len(v.type.tensor_type.shape.dim) - 1 for v in values
                          if v.type.tensor_type.HasField("shape")}
        return self.inferred.get(name) if name else None

    def rank_of(self, name: str) -> int | None:
        """One sample's number of dimensions of tensor ``name``, known even where some of
        its sizes are not (as the model declares its output)."""
        self.shape_of(name)
        return self.ranks.get(name)

    @staticmethod
    def known(value: Any) -> Shape | None:
        dims = value.type.tensor_type.shape.dim
        sizes = [d.dim_value if d.HasField("dim_value") else 0 for d in dims][1:]
        return tuple(sizes) if sizes and all(sizes) else None

    def join(self, node: Any, tensors: list[Op]) -> Join | None:
        if node.op_type == "Concat" and tensors:
            if self.attr(node, "axis", 1) not in (1, -3):
                raise UnsupportedModel(f"{self.model}: cannot read node {node.name!r}: Concat "
                                       "along another axis than the channels")
            return "concat"
        if len(tensors) < 2:
            return None
        if node.op_type in ("Add", "Sum"):
            return "add"
        if node.op_type == "Mul":
            return "gate"
        raise UnsupportedModel(f"{self.model}: cannot read node {node.name!r}: no rule for "
                               f"{node.op_type} on {len(tensors)} tensors")

    def attr(self, node: Any, name: str, default: Any) -> Any:
        for a in node.attribute:
            if a.name == name:
                return helper.get_attribute_value(a)
        return default

    def layers(self, node: Any) -> list[Kind]:
        kind = node.op_type
        if kind in _PASS:
            return []
        if kind in _ACTIVATIONS:
            if kind == "Softmax" and not self.channel_axis(node):
                raise _Refused("softmax over another axis than the channels")
            return [Activation(_ACTIVATIONS[kind])]
        if kind == "Clip":
            low, high = (self.value(node, i) for i in (1, 2))
            if (low, high) != (0.0, 6.0):
                raise _Refused(f"Clip to [{low}, {high}] (archcalc has relu6 = [0, 6])")
            return [Activation("relu6")]
        method = getattr(self, f"read_{kind}", None)
        if method is None:
            raise _NoRule(f"no rule for {kind}")
        result: list[Kind] = method(node)
        return result

    def channel_axis(self, node: Any) -> bool:
        """Whether a Softmax's axis is the channels (the features of a vector): its default
        is the last axis from opset 13, and 1 before."""
        opset = max((o.version for o in self.opsets if o.domain in ("", "ai.onnx")),
                    default=13)
        axis = int(self.attr(node, "axis", -1 if opset >= 13 else 1))
        rank = self.rank_of(node.input[0]) or self.rank_of(node.output[0]) or 3
        return axis % (rank + 1) == 1

    def value(self, node: Any, index: int) -> float | None:
        if len(node.input) <= index or not node.input[index]:
            return None
        return float(self.constants[node.input[index]])

    def weight(self, node: Any, index: int = 1) -> tuple[int, ...]:
        name = node.input[index] if len(node.input) > index else ""
        if name not in self.weights:
            raise _Refused("its weight is computed, not an initializer")
        return self.weights[name]

    def spatial(self, node: Any, name: str, default: int, rank: int) -> tuple[int, int]:
        values = list(self.attr(node, name, [default] * rank))
        return (values[0], values[-1]) if rank == 2 else (values[0], values[0])

    def pads(self, node: Any, rank: int) -> tuple[tuple[int, int], tuple[int, int] | None]:
        """(begin pads, end pads where they differ); ONNX lists all begins, then all ends."""
        if self.attr(node, "auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
            raise _Refused("auto_pad (give explicit pads)")
        pads = list(self.attr(node, "pads", [0] * 2 * rank))
        begin, end = pads[:rank], pads[rank:]
        pair = (begin[0], begin[-1])
        end_pair = (end[0], end[-1])
        return pair, (None if end_pair == pair else end_pair)

    def read_Conv(self, node: Any) -> list[Kind]:
        shape = self.weight(node)
        rank = len(shape) - 2
        auto = self.attr(node, "auto_pad", b"NOTSET")
        auto = auto.decode() if isinstance(auto, bytes) else auto
        same = auto == "SAME_UPPER"  # TensorFlow's SAME: the odd pixel at the end
        if auto not in ("NOTSET", "VALID", "SAME_UPPER"):
            raise _Refused(f"auto_pad {auto} (archcalc pads as SAME_UPPER or explicitly)")
        begin, end = ((0, 0), None) if auto != "NOTSET" else self.pads(node, rank)
        kernel = (shape[2], shape[-1]) if rank == 2 else (shape[2], shape[2])
        stride = self.spatial(node, "strides", 1, rank)
        dilation = self.spatial(node, "dilations", 1, rank)
        if end is not None and rank == 2 and (begin, end) == self.tf_same(
                node.input[0], kernel, stride, dilation):
            begin, end, same = (0, 0), None, True  # tf2onnx's SAME, written out for a size
        return [Conv(shape[0], kernel, stride, begin, dilation, self.attr(node, "group", 1),
                     len(node.input) > 2 and bool(node.input[2]), end, same)]

    def tf_same(self, data: str, kernel: tuple[int, int], stride: tuple[int, int],
                dilation: tuple[int, int]) -> tuple[tuple[int, int], tuple[int, int]] | None:
        """TensorFlow's SAME padding (top, left) and (bottom, right) of a conv on tensor
        ``data``, where its size is known: output ceil(n / s), the odd pixel at the end."""
        shape = self.shape_of(data)
        if shape is None or len(shape) != 3:
            return None
        totals = [max((-(-n // s) - 1) * s + (k - 1) * d + 1 - n, 0)
                  for n, k, s, d in zip(shape[1:], kernel, stride, dilation, strict=True)]
        return ((totals[0] // 2, totals[1] // 2),
                (totals[0] - totals[0] // 2, totals[1] - totals[1] // 2))

    def read_ConvTranspose(self, node: Any) -> list[Kind]:
        shape = self.weight(node)
        begin, end = self.pads(node, 2)
        if end is not None:
            raise _Refused("asymmetric pads")
        group = self.attr(node, "group", 1)
        return [ConvTranspose(shape[1] * group, (shape[2], shape[3]),
                              self.spatial(node, "strides", 1, 2), begin,
                              self.spatial(node, "output_padding", 0, 2),
                              self.spatial(node, "dilations", 1, 2), group,
                              len(node.input) > 2 and bool(node.input[2]))]

    def read_BatchNormalization(self, node: Any) -> list[Kind]:
        return [BatchNorm(float(self.attr(node, "epsilon", 1e-5)), True)]

    def read_InstanceNormalization(self, node: Any) -> list[Kind]:
        return [InstanceNorm(float(self.attr(node, "epsilon", 1e-5)), True)]

    def read_LayerNormalization(self, node: Any) -> list[Kind]:
        return [LayerNorm(float(self.attr(node, "epsilon", 1e-5)), len(node.input) > 1)]

    def read_GroupNormalization(self, node: Any) -> list[Kind]:
        return [GroupNorm(eps=float(self.attr(node, "epsilon", 1e-5)), affine=True,
                          groups=int(self.attr(node, "num_groups", 1)))]

    def read_LRN(self, node: Any) -> list[Kind]:
        return [LRN(int(self.attr(node, "size", 5)), float(self.attr(node, "alpha", 1e-4)),
                    float(self.attr(node, "beta", 0.75)), float(self.attr(node, "bias", 1.0)))]

    def read_PRelu(self, node: Any) -> list[Kind]:
        slopes = self.weight(node)
        return [PReLU(int(max(slopes, default=1)) > 1)]

    def read_pool(self, node: Any, op: str) -> list[Kind]:
        kernel = list(self.attr(node, "kernel_shape", []))
        rank = len(kernel)
        if any(d != 1 for d in self.attr(node, "dilations", [1] * rank)):
            raise _Refused("dilated pooling")
        begin, end = self.pads(node, rank)
        ceil = bool(self.attr(node, "ceil_mode", 0))
        if end is not None:  # TensorFlow's SAME: one more at the end, as torch's ceil mode
            if ceil or any(e - b not in (0, 1) for b, e in zip(begin, end, strict=True)):
                raise _Refused("asymmetric pads other than one more at the end")
            ceil = True
        # count_include_pad=0 (tf2onnx's SAME average pooling): divided by the covered inputs
        count_pad = (op == "max" or (not any(begin) and end is None)
                     or bool(self.attr(node, "count_include_pad", 0)))
        pair = (kernel[0], kernel[-1])
        return [Pool(op, pair, self.spatial(node, "strides", 1, rank), begin,  # type: ignore[arg-type]
                     ceil, count_pad)]

    def read_MaxPool(self, node: Any) -> list[Kind]:
        return self.read_pool(node, "max")

    def read_AveragePool(self, node: Any) -> list[Kind]:
        return self.read_pool(node, "avg")

    def read_GlobalAveragePool(self, node: Any) -> list[Kind]:
        return [GlobalPool("avg")]

    def read_GlobalMaxPool(self, node: Any) -> list[Kind]:
        return [GlobalPool("max")]

    def read_ReduceMean(self, node: Any) -> list[Kind]:
        axes = self.attr(node, "axes", None)
        if axes is None and len(node.input) > 1:
            axes = [int(a) for a in self.constants[node.input[1]]]
        if set(axes or ()) not in ({2, 3}, {-1, -2}, {2}, {-1}):
            raise _Refused(f"a mean over axes {axes} (archcalc averages over the map)")
        pool = GlobalPool("avg", mean=True)
        return [pool] if self.attr(node, "keepdims", 1) else [pool, Flatten()]

    def read_Flatten(self, node: Any) -> list[Kind]:
        if self.attr(node, "axis", 1) != 1:
            raise _Refused("Flatten at another axis than 1")
        return [Flatten()]

    def read_Transpose(self, node: Any) -> list[Kind]:
        """The channels-last input's Transpose to NCHW is its layout; a Transpose back to
        NHWC right before a flatten (Keras' Flatten of a map) orders the same elements."""
        perm = list(self.attr(node, "perm", []))
        if perm == _TO_NCHW and node.input[0] in self.channels_last:
            return []
        users = self.consumers.get(node.output[0], [])
        if (perm == _TO_NHWC and len(users) == 1 and users[0].op_type in ("Reshape", "Flatten")
                and len(self.shape_of(users[0].output[0]) or (0, 0)) == 1):
            return []
        raise _Refused(f"a Transpose of the feature map (perm {perm}); archcalc reads "
                       "channels-first maps")

    def read_Squeeze(self, node: Any) -> list[Kind]:
        axes = self.attr(node, "axes", None)
        if axes is None and len(node.input) > 1:
            axes = [int(a) for a in self.constants[node.input[1]]]
        shape = self.shape_of(node.input[0])
        if (shape is not None and len(shape) == 3 and shape[1:] == (1, 1)
                and sorted(axes or ()) in ([2, 3], [-2, -1])):
            return [Flatten()]
        raise _Refused(f"a squeeze of axes {axes} (archcalc squeezes a pooled 1x1 map)")

    def read_MatMul(self, node: Any) -> list[Kind]:
        shape = self.weight(node)
        data = self.shape_of(node.input[0])
        if len(shape) != 2 or data is None or len(data) != 1:
            raise _Refused("a MatMul other than of a vector by a 2-D weight (a fully "
                           "connected layer)")
        return [Linear(shape[1], False)]

    def read_Reshape(self, node: Any) -> list[Kind]:
        before, after = self.shape_of(node.input[0]), self.shape_of(node.output[0])
        if before is not None and before == after:
            return []  # tf2onnx's reshape of a 1x1 map to (-1, C, 1, 1)
        if after is not None and len(after) == 1:
            return [Flatten()]
        target = self.constants.get(node.input[1])
        if target is not None and len(target) == 2 and int(target[1]) == -1:
            return [Flatten()]
        if node.input[1] in self.shape_values:
            return [Flatten()]  # (x.size(0), -1), computed from the input's shape
        raise _Refused(f"a reshape to {target} (archcalc reshapes only by flattening)")

    def read_Gemm(self, node: Any) -> list[Kind]:
        if not self.attr(node, "transB", 0) or self.attr(node, "transA", 0):
            raise _Refused("Gemm without transB=1 (a fully connected layer's weight is "
                           "[out, in])")
        shape = self.weight(node)
        return [Linear(shape[0], len(node.input) > 2 and bool(node.input[2]))]

    def read_Pad(self, node: Any) -> list[Kind]:
        mode = self.attr(node, "mode", b"constant")
        if mode not in (b"constant", "constant"):
            raise _Refused(f"{mode!r} padding (archcalc pads with zeros)")
        pads = [int(p) for p in (self.static(node.input[1]) if len(node.input) > 1
                                 else self.attr(node, "pads", []))]
        if len(pads) != 8 or any(pads[i] for i in (0, 1, 4, 5)):
            raise _Refused("padding other than of the map's height and width")
        return [Pad(pads[2], pads[6], pads[3], pads[7])]

    def read_Slice(self, node: Any) -> list[Kind]:
        """A slice of the map's height and width by constants (Keras' Cropping2D, as
        tf2onnx writes it) is a crop; any other slice is refused."""
        shape = self.shape_of(node.input[0])
        if shape is None or len(shape) != 3:
            raise _Refused("a slice of a tensor other than a map of known size")
        values = [[int(v) for v in self.static(node.input[i])]
                  if len(node.input) > i and node.input[i] else None for i in range(1, 5)]
        starts, ends, axes, steps = values
        if starts is None or ends is None:
            raise _Refused("a slice without constant starts and ends")
        axes = axes or list(range(len(starts)))
        if any(step != 1 for step in steps or ()):
            raise _Refused("a strided slice")
        cut = {2: [0, 0], 3: [0, 0]}  # axis: pixels off its start, off its end
        for start, end, axis in zip(starts, ends, axes, strict=True):
            axis %= 4
            size = (1, *shape)[axis]
            begin = min(max(start + size if start < 0 else start, 0), size)
            stop = min(max(end + size if end < 0 else end, 0), size)
            if axis in cut:
                cut[axis] = [begin, size - stop]
            elif (begin, stop) != (0, size):
                raise _Refused(f"a slice of axis {axis} (archcalc crops height and width)")
        return [Crop(cut[2][0], cut[2][1], cut[3][0], cut[3][1])]

    def read_Resize(self, node: Any) -> list[Kind]:
        mode = self.attr(node, "mode", b"nearest")
        mode = mode.decode() if isinstance(mode, bytes) else mode
        scales = self.constants.get(node.input[2]) if len(node.input) > 2 else None
        if scales is None or len(scales) != 4 or mode not in ("nearest", "linear"):
            raise _Refused("a resize other than by constant scales, nearest or linear")
        h, w = float(scales[2]), float(scales[3])
        if h != int(h) or w != int(w):
            raise _Refused(f"scales {h}, {w} (whole factors only)")
        return [Upsample((int(h), int(w)), "nearest" if mode == "nearest" else "bilinear")]
