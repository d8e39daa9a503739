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
"""

from __future__ import annotations

from collections.abc import Sequence
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
    Upsample,
)
from archcalc.kinds.norm import LRN
from archcalc.layers import Graph, Shape

_ACTIVATIONS = {"Relu": "relu", "LeakyRelu": "leakyrelu", "Elu": "elu", "Sigmoid": "sigmoid",
                "Tanh": "tanh", "HardSwish": "hardswish", "HardSigmoid": "hardsigmoid",
                "Mish": "mish", "Gelu": "gelu", "Softmax": "softmax"}
_PASS = ("Identity", "Dropout")  # Dropout is the identity in an exported inference graph


def onnx_graph(source: str | Path | Any, input_size: Sequence[int] | None = None,
               name: str | None = None) -> Graph:
    """The graph of an ONNX model (a path or a loaded ``onnx.ModelProto``); ``input_size``
    (C, H, W) overrides the model's own input dimensions (needed where they are symbolic)."""
    return read_onnx(source, input_size, name).graph


def read_onnx(source: str | Path | Any, input_size: Sequence[int] | None = None,
              name: str | None = None, skip_unknown: bool = False) -> Imported:
    """:func:`onnx_graph`, and the nodes ``skip_unknown`` passed over."""
    model = onnx.load(str(source)) if isinstance(source, str | Path) else source
    label = name or (Path(source).stem if isinstance(source, str | Path) else
                     model.graph.name or "onnx")
    reader = _Reader(model.graph, label, list(model.opset_import), skip_unknown)
    graph = reader.graph(input_size)
    return Imported(graph, tuple(reader.skipped))


def from_onnx(source: str | Path | Any, input_size: Sequence[int] | None = None,
              convention: str = "full", skip_unknown: bool = False) -> Any:
    return read_onnx(source, input_size, skip_unknown=skip_unknown).report(convention)


class _Refused(Exception):
    """A known op with settings archcalc has no rule for."""


class _NoRule(_Refused):
    """An op archcalc has no rule for at all: what ``skip_unknown`` may pass over."""


class _Reader:
    def __init__(self, graph: Any, model: str, opsets: list[Any],
                 skip_unknown: bool = False) -> None:
        self.opsets = opsets
        self.skip_unknown = skip_unknown
        self.skipped: list[str] = []  # warnings: the nodes passed over
        self.inferred: dict[str, Shape | None] | None = None  # by onnx, when first needed
        self.g, self.model = graph, model
        self.weights = {t.name: tuple(t.dims) for t in graph.initializer}
        self.constants = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
        for node in graph.node:
            if node.op_type == "Constant":
                for a in node.attribute:
                    if a.name == "value":
                        self.constants[node.output[0]] = numpy_helper.to_array(a.t)
        self.shape_values = self.find_shape_values()

    def graph(self, input_size: Sequence[int] | None) -> Graph:
        inputs = [i for i in self.g.input if i.name not in self.weights]
        if len(inputs) != 1 or len(self.g.output) != 1:
            raise UnsupportedModel(f"{self.model}: {len(inputs)} inputs and "
                                   f"{len(self.g.output)} outputs; archcalc reads models of "
                                   "one input and one output")
        shape = tuple(input_size) if input_size else self.declared_shape(inputs[0])
        self.input, self.shape = inputs[0], shape
        source = Op("input", Loc(f"<onnx {self.model}>", 0, 1, inputs[0].name))
        ops, producer = [source], {inputs[0].name: source}
        for i, node in enumerate(self.g.node, start=1):
            if node.output[0] in self.shape_values or node.op_type == "Constant":
                continue
            tensors = [producer[x] for x in node.input if x in producer]
            op = self.op(node, i, tensors)
            ops.append(op)
            producer[node.output[0]] = op
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
        graph = helper.make_graph(nodes, "static", [self.input],
                                  [helper.make_tensor_value_info(o, 0, None) for o in wanted],
                                  list(self.g.initializer))
        model = helper.make_model(graph, opset_imports=self.opsets)
        values: list[Any] = list(ReferenceEvaluator(model).run(
            None, {self.input.name: np.zeros((1, *self.shape), dtype=np.float32)}))
        self.constants.update(zip(wanted, values, strict=True))
        return self.constants[name]

    def declared_shape(self, value: Any) -> Shape:
        dims = [d.dim_value for d in value.type.tensor_type.shape.dim][1:]
        if not dims or not all(dims):
            raise UnsupportedModel(f"{self.model}: the input's size is not fixed in the model "
                                   "(give --input)")
        return tuple(dims)

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
                    self.constants[node.output[0]] = self.constants[inputs[0]]
        return found

    # -- nodes --------------------------------------------------------------------------------
    def op(self, node: Any, index: int, tensors: list[Op]) -> Op:
        where = f"node {node.name or index!r} ({node.op_type})"
        loc = Loc(f"<onnx {self.model}>", index, 1, f"{node.op_type} {node.name}")
        made = Op(f"{node.op_type} {node.name}".strip(), loc, tuple(tensors), where=where)
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
            for dim, size in zip(dims, (1, *self.shape), strict=False):
                dim.Clear()
                dim.dim_value = size
            model = helper.make_model(graph, opset_imports=self.opsets)
            try:
                inferred = shape_inference.infer_shapes(model).graph
            except Exception:  # onnx's own checks: then no shape is known
                inferred = graph
            self.inferred = {v.name: self.known(v) for v in
                             [*inferred.input, *inferred.value_info, *inferred.output]}
        return self.inferred.get(name) if name else None

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
            if kind == "Softmax" and self.attr(node, "axis", 1) not in (1, -3):
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
        return [Conv(shape[0], kernel, self.spatial(node, "strides", 1, rank), begin,
                     self.spatial(node, "dilations", 1, rank), self.attr(node, "group", 1),
                     len(node.input) > 2 and bool(node.input[2]), end, same)]

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
        if end is not None:
            raise _Refused("asymmetric pads")
        if op == "avg" and any(begin) and not self.attr(node, "count_include_pad", 0):
            raise _Refused("count_include_pad=0 (archcalc averages over the padded window)")
        pair = (kernel[0], kernel[-1])
        return [Pool(op, pair, self.spatial(node, "strides", 1, rank), begin,  # type: ignore[arg-type]
                     bool(self.attr(node, "ceil_mode", 0)))]

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

    def read_Reshape(self, node: Any) -> list[Kind]:
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
