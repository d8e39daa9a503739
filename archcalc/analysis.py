"""Graph -> Report: one row per layer (and per join), totals, warnings and memory."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from archcalc.algebra import (
    INPLACE_ACTIVATIONS,
    INPUT_RF,
    RF,
    Ops,
    Params,
    merge_rfs,
    operations,
    output_shape,
    parameters,
    receptive_field,
    shortcut_layers,
    weight_formula,
)
from archcalc.algebra import fmt_shape as _fmt
from archcalc.conventions import Convention, get_convention
from archcalc.errors import Loc, SpecError, UsageError
from archcalc.layers import (
    Activation,
    Concat,
    Conv,
    Dropout,
    Flatten,
    Graph,
    Layer,
    Node,
    Residual,
    Seq,
    Shape,
    ZeroPadShortcut,
)


@dataclass(frozen=True)
class Row:
    path: str
    label: str
    kind: str
    depth: int
    in_shape: Shape
    out_shape: Shape
    params: Params
    ops: Ops
    macs: int
    flops: int
    rf: RF | None
    inplace: bool  # allocates no new tensor at inference (in-place activation, view, dropout)
    stored: bool  # output kept for the backward pass in training
    formula: str  # weight count written out, e.g. (3*3*3)*64
    loc: Loc | None = None

    @property
    def activations(self) -> int:
        return math.prod(self.out_shape)


@dataclass(frozen=True)
class Totals:
    activations: int
    weights: int
    biases: int
    params: int
    buffers: int
    macs: int
    flops: int


@dataclass(frozen=True)
class Memory:
    """Bytes, with the layers each part includes spelled out by ``explain``."""

    batch: int
    dtype_bytes: int
    weights: int
    buffers: int
    gradients: int
    optimizer: int
    activations: int  # stored for backward (training) or peak live (inference)

    @property
    def total(self) -> int:
        return self.weights + self.buffers + self.gradients + self.optimizer + self.activations


@dataclass(frozen=True)
class Report:
    model: str
    source: str
    input_shape: Shape
    convention: Convention
    rows: tuple[Row, ...]
    warnings: tuple[str, ...]
    peak_live: int  # elements per sample simultaneously live at inference, input included

    @property
    def input_elements(self) -> int:
        return math.prod(self.input_shape)

    @property
    def totals(self) -> Totals:
        params = sum((r.params for r in self.rows), Params())
        return Totals(
            activations=self.input_elements + sum(
                r.activations for r in self.rows if not r.inplace),
            weights=params.weights,
            biases=params.biases,
            params=params.trainable,
            buffers=params.buffers,
            macs=sum(r.macs for r in self.rows),
            flops=sum(r.flops for r in self.rows),
        )

    def inference_memory(self, batch: int = 1, dtype_bytes: int = 4) -> Memory:
        """Forward only: weights, buffers, and the peak of live activations."""
        t = self.totals
        return Memory(batch, dtype_bytes, t.params * dtype_bytes, t.buffers * dtype_bytes,
                      0, 0, self.peak_live * batch * dtype_bytes)

    def training_memory(self, batch: int = 1, dtype_bytes: int = 4,
                        optimizer_states: int = 2) -> Memory:
        """Weights + gradients + optimizer state (2 per parameter for Adam, 1 for SGD with
        momentum) + every activation kept for backward (rows with ``stored``) and the input."""
        t = self.totals
        stored = self.input_elements + sum(r.activations for r in self.rows if r.stored)
        return Memory(batch, dtype_bytes, t.params * dtype_bytes, t.buffers * dtype_bytes,
                      t.params * dtype_bytes, optimizer_states * t.params * dtype_bytes,
                      stored * batch * dtype_bytes)


@dataclass(frozen=True)
class _Derived:
    """What a leaf layer's row holds that depends only on the layer and its input shape."""

    out: Shape
    params: Params
    ops: Ops
    macs: int
    flops: int
    inplace: bool
    formula: str


@dataclass
class _Walker:
    convention: Convention
    rows: list[Row] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # Repeated blocks (every ResNet stage) meet the same layer at the same shape many times.
    derived: dict[tuple[Layer, Shape], _Derived] = field(default_factory=dict)

    def derive(self, node: Node, shape: Shape) -> _Derived:
        key = (node.layer, shape)
        found = self.derived.get(key)
        if found is None:
            layer = node.layer
            out = output_shape(layer, shape, node.loc)
            ops = operations(layer, shape, out)
            found = _Derived(out, parameters(layer, shape), ops, self.convention.macs(ops),
                             self.convention.flops(ops), _inplace(layer),
                             weight_formula(layer, shape))
            self.derived[key] = found
        return found

    def seq(self, nodes: Seq, shape: Shape, rf: RF | None, depth: int, held: int,
            pinned: int) -> tuple[Shape, RF | None, int]:
        """Walk a sequence; returns its output shape, field and peak live elements.

        ``held``: elements kept alive by enclosing joins; ``pinned``: the sequence's input,
        if it must outlive the first layer (a residual or concat input)."""
        peak = held + math.prod(shape)
        for i, node in enumerate(nodes):
            extra = held + (pinned if i else 0)
            shape, rf, node_peak = self.node(node, shape, rf, depth, extra)
            peak = max(peak, node_peak)
        return shape, rf, peak

    def node(self, node: Node, shape: Shape, rf: RF | None, depth: int,
             held: int) -> tuple[Shape, RF | None, int]:
        layer = node.layer
        if isinstance(layer, Concat):
            return self.concat(node, layer, shape, rf, depth, held)
        if isinstance(layer, Residual):
            return self.residual(node, layer, shape, rf, depth, held)
        d = self.derive(node, shape)
        new_rf = receptive_field(layer, rf, shape) if rf is not None else None
        self.rows.append(Row(
            path=node.path, label=node.label, kind=layer.kind, depth=depth, in_shape=shape,
            out_shape=d.out, params=d.params, ops=d.ops, macs=d.macs, flops=d.flops, rf=new_rf,
            inplace=d.inplace, stored=not d.inplace or isinstance(layer, Dropout),
            formula=d.formula, loc=node.loc))
        live = held + math.prod(shape) + (0 if d.inplace else math.prod(d.out))
        return d.out, new_rf, live

    def add_join(self, node: Node, label: str, kind: str, depth: int, in_shape: Shape,
                 out: Shape, rf: RF | None, inplace: bool, ops: Ops) -> None:
        """The row of a concatenation or residual addition: no parameters of its own."""
        self.rows.append(Row(
            path=node.path, label=label, kind=kind, depth=depth, in_shape=in_shape,
            out_shape=out, params=Params(), ops=ops, macs=self.convention.macs(ops),
            flops=self.convention.flops(ops), rf=rf, inplace=inplace, stored=not inplace,
            formula="", loc=node.loc))

    def concat(self, node: Node, layer: Concat, shape: Shape, rf: RF | None, depth: int,
               held: int) -> tuple[Shape, RF | None, int]:
        outs, rfs, peak, done = [], [], 0, 0
        for branch in layer.branches:
            out, branch_rf, branch_peak = self.seq(branch, shape, rf, depth + 1, held + done,
                                                   math.prod(shape))
            outs.append(out)
            rfs.append(branch_rf)
            done += math.prod(out)
            peak = max(peak, branch_peak)
        joined = _concat_shape(outs, node.loc)
        merged = self.merge(rfs, node, "concat branches")
        self.add_join(node, node.label, "concat", depth, shape, joined, merged, False, Ops())
        return joined, merged, max(peak, held + done + math.prod(joined))

    def residual(self, node: Node, layer: Residual, shape: Shape, rf: RF | None, depth: int,
                 held: int) -> tuple[Shape, RF | None, int]:
        x = math.prod(shape)
        body_out, body_rf, peak = self.seq(layer.body, shape, rf, depth + 1, held, x)
        shortcut = tuple(
            Node(sc, _shortcut_label(sc), f"{node.path}.s{i}", node.loc)
            for i, sc in enumerate(shortcut_layers(layer.shortcut, shape, body_out, node.loc,
                                                   layer.shortcut_bias), start=1))
        sc_out, sc_rf, sc_peak = self.seq(shortcut, shape, rf, depth + 1,
                                          held + math.prod(body_out), 0)
        if sc_out != body_out:
            raise SpecError(f"shortcut gives {_fmt(sc_out)} but the body gives "
                            f"{_fmt(body_out)}; they cannot be added", node.loc)
        merged = self.merge([body_rf, sc_rf], node, "residual paths")
        elements = math.prod(body_out)
        self.add_join(node, "add", "add", depth, shape, body_out, merged, True,
                      Ops(add=elements))
        live = held + elements + math.prod(sc_out)
        return body_out, merged, max(peak, sc_peak, live)

    def merge(self, rfs: list[RF | None], node: Node, what: str) -> RF | None:
        if any(rf is None for rf in rfs):
            return None
        merged, aligned = merge_rfs(rfs)  # type: ignore[arg-type]
        if not aligned:
            detail = "; ".join(f"centre {_fmt_center(rf)} stride {rf.stride[0]}" for rf in rfs)
            self.warnings.append(f"{node.loc}: {what} are misaligned ({detail})")
        return merged


def _inplace(layer: Layer) -> bool:
    if isinstance(layer, Activation):
        return layer.fn in INPLACE_ACTIVATIONS
    return isinstance(layer, Dropout | Flatten)


def _shortcut_label(layer: Layer) -> str:
    if isinstance(layer, ZeroPadShortcut):
        return f"shortcut A (subsample {layer.stride[0]}, zero-pad to {layer.out_channels})"
    if isinstance(layer, Conv):
        bias = "true" if layer.bias else "false"
        return f"shortcut conv1-{layer.out_channels} s={layer.stride[0]} bias={bias}"
    return f"shortcut {layer.kind}"


def _concat_shape(shapes: list[Shape], loc: Loc) -> Shape:
    ranks = {len(s) for s in shapes}
    if ranks == {1}:
        return (sum(s[0] for s in shapes),)
    spatial = {s[1:] for s in shapes if len(s) == 3}
    if ranks != {3} or len(spatial) != 1:
        listed = ", ".join(_fmt(s) for s in shapes)
        raise SpecError(f"concat branches must agree in height and width: {listed}", loc)
    return (sum(s[0] for s in shapes), *shapes[0][1:])


def _fmt_center(rf: RF) -> str:
    return "(" + ", ".join(str(float(c)) for c in rf.center) + ")"


def analyze(graph: Graph, convention: str | Convention = "full",
            input_shape: Shape | None = None) -> Report:
    """Derive every row of ``graph``; ``input_shape`` (C, H, W) overrides the spec's."""
    conv = convention if isinstance(convention, Convention) else get_convention(convention)
    shape = graph.input_shape if input_shape is None else tuple(input_shape)
    if len(shape) not in (1, 3) or not all(type(d) is int and d > 0 for d in shape):
        raise UsageError(f"input shape must be (C, H, W) or (N,) of positive whole numbers, "
                         f"not {shape}")
    walker = _Walker(conv)
    rf = INPUT_RF if len(shape) == 3 else None
    _, _, peak = walker.seq(graph.body, shape, rf, 0, 0, 0)
    return Report(graph.name, graph.source, shape, conv, tuple(walker.rows),
                  tuple(walker.warnings), peak)
