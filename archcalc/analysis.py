"""Graph -> Report: one row per layer (and per join), totals, warnings and memory."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import cast

from archcalc.algebra import INPUT_RF, RF, Ops, Params, merge_rfs
from archcalc.conventions import Convention, get_convention
from archcalc.errors import Loc, SpecError, UsageError, suggest
from archcalc.kinds.base import Block, Kind, WeightFormula, output_at, rules_at, uncolumn
from archcalc.kinds.blocks import Add
from archcalc.kinds.heads import Head
from archcalc.kinds.names import From, Keep
from archcalc.layers import Graph, Node, Seq, Shape, walk
from archcalc.records import Record


class Row(Record):
    """One layer (or a block's join) of a :class:`Report`, with everything counted for it."""

    path: str  # where the layer sits: 3, or 1.b2.3 (block 1, branch 2, layer 3)
    label: str  # the layer as the spec writes it, e.g. conv3-64 p=1
    kind: str  # the kind's family: conv, linear, pool, act, bn, concat, ...
    depth: int  # nesting level of the layer in the spec's blocks (0: the top level)
    in_shape: Shape  # input shape (C, H, W) or (N,) for one sample
    out_shape: Shape  # output shape, as in_shape
    params: Params  # weights, biases and buffers
    ops: Ops  # what the layer computes for one sample, by category
    macs: int  # multiply-accumulates for one sample
    flops: int  # floating-point operations for one sample, under the report's convention
    rf: RF | None  # receptive field reached at this layer; None where it is not defined
    inplace: bool  # allocates no new tensor at inference (in-place activation, view, dropout)
    stored: bool  # output kept for the backward pass in training
    formula: WeightFormula | None  # weight count written out, e.g. (3*3*3)*64
    title: str  # the homework table's notation, e.g. CONV3-64
    options: tuple[str, ...]  # OPTION=VALUE words as written
    homework_row: bool  # a row of the homework table when it allocates (conv, pool, FC)
    loc: Loc | None = None  # the spec text the layer comes from, where there is one
    head: str = ""  # the extra output (``head NAME { }``) the row belongs to; "" the main one

    @property
    def activations(self) -> int:
        return math.prod(self.out_shape)


class Totals(Record):
    """A whole model's counts for one sample (:attr:`Report.totals`)."""

    activations: int  # elements of every allocated output, the input included
    weights: int  # trainable weights
    biases: int  # trainable biases
    params: int  # weights + biases
    buffers: int  # non-trainable state, e.g. batch norm's running mean and variance
    macs: int  # multiply-accumulates
    flops: int  # floating-point operations, under the report's convention


class Memory(Record):
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


class Report(Record):
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
        """The whole model: every row, extra output heads included."""
        return _totals(self.rows, self.input_elements)

    @property
    def heads(self) -> dict[str, Totals]:
        """Totals per output: ``main`` (the rows outside any head, the input included) and
        each ``head NAME { }`` (its own rows). They add up to :attr:`totals`."""
        names = dict.fromkeys(r.head for r in self.rows if r.head)
        if not names:
            return {}
        main = _totals([r for r in self.rows if not r.head], self.input_elements)
        return {"main": main, **{n: _totals([r for r in self.rows if r.head == n], 0)
                                 for n in names}}

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


def _totals(rows: Sequence[Row], input_elements: int) -> Totals:
    params = sum((r.params for r in rows), Params())
    return Totals(
        activations=input_elements + sum(r.activations for r in rows if not r.inplace),
        weights=params.weights,
        biases=params.biases,
        params=params.trainable,
        buffers=params.buffers,
        macs=sum(r.macs for r in rows),
        flops=sum(r.flops for r in rows),
    )


class _Derived(Record):
    """What a leaf layer's row holds that depends only on the layer and its input shape,
    and the rules that gave it (:func:`~archcalc.kinds.base.rules_at`), for the field."""

    rule: Kind
    at: Shape
    title: str
    out: Shape
    in_elements: int
    out_elements: int
    params: Params
    ops: Ops
    macs: int
    flops: int
    inplace: bool
    stored: bool
    formula: WeightFormula | None


@dataclass
class Walker:
    """Walks a graph in order, making a row per layer and per join; blocks
    (:class:`~archcalc.kinds.base.Block`) call back into :meth:`seq`, :meth:`add_join` and
    :meth:`merge` for their contents."""

    convention: Convention
    rows: list[Row] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # Repeated blocks (every ResNet stage) meet the same layer at the same shape many times
    # (the parser shares a layer between its copies). Keyed by the layer's identity, which
    # spares hashing its fields per row; the entry holds the layer, so no other takes its id.
    derived: dict[tuple[int, Shape], tuple[Kind, _Derived]] = field(default_factory=dict)
    head: str = ""  # the output head being walked ("" the main path)
    names: Names = field(default_factory=lambda: Names())  # ``keep``/``from`` tensors

    @contextmanager
    def in_head(self, name: str) -> Iterator[None]:
        """Rows made inside belong to the output head ``name``."""
        outer, self.head = self.head, name
        try:
            yield
        finally:
            self.head = outer

    def derive(self, node: Node, shape: Shape) -> _Derived:
        """The layer's row at ``shape``, but for its place (path, depth, field), computed
        once per layer and shape (:meth:`node` looks in :attr:`derived` first)."""
        key = (id(node.layer), shape)
        entry = self.derived.get(key)
        if entry is None:
            rule, at = rules_at(node.layer, shape, node.loc)
            out = output_at(rule, at, shape, node.loc)
            ops = rule.operations(at, out)
            out = out if at is shape else uncolumn(out)
            found = _Derived(rule, at, node.layer.title(), out, math.prod(shape),
                             math.prod(out), rule.parameters(at), ops, self.convention.macs(ops),
                             self.convention.flops(ops), not rule.allocates(), rule.stored(),
                             rule.weight_formula(at))
            self.derived[key] = entry = (node.layer, found)
        return entry[1]

    def seq(self, nodes: Seq, shape: Shape, rf: RF | None, depth: int, held: int,
            pinned: int) -> tuple[Shape, RF | None, int]:
        """Walk a sequence; returns its output shape, field and peak live elements.

        ``held``: elements kept alive by enclosing joins; ``pinned``: the sequence's input,
        if it must outlive the first layer (a residual or concat input)."""
        if self.names.used:
            self.names.enter()
            outside = self.names.held_outside()  # a kept tensor the enclosing block holds
            pinned = 0 if outside else pinned
            peak = held + (0 if outside else math.prod(shape))
        else:  # no names: nothing is held outside
            peak = held + math.prod(shape)
        for i, node in enumerate(nodes):
            extra = held + (pinned if i else 0)
            shape, rf, node_peak = self.node(node, shape, rf, depth, extra)
            peak = max(peak, node_peak)
        return shape, rf, peak

    def node(self, node: Node, shape: Shape, rf: RF | None, depth: int,
             held: int) -> tuple[Shape, RF | None, int]:
        layer = node.layer
        if layer.container:
            if not self.names.used:  # no names: no keep/from, nothing held, no inplace fault
                return cast(Block, layer).walk(self, node, shape, rf, depth, held)
            if isinstance(layer, Keep | From):
                return layer.walk(self, node, shape, rf, depth, held)
            extra = self.names.hold()
            if isinstance(layer, Add) and layer.inplace and _ends_named(layer.branches[0]):
                raise SpecError("add inplace=true sums into its first branch's tensor, which "
                                "is a named one here (keep/from): it would overwrite it; "
                                "drop inplace=true or reorder the branches", node.loc)
            before = set(self.names.pending)
            with self.names.block(keeps_input=isinstance(layer, Head)):
                out, out_rf, peak = cast(Block, layer).walk(self, node, shape, rf, depth,
                                                            held + extra)
            # a tensor kept inside and read after the block is live at its join, which the
            # block's own rules do not know of
            late = sum(n for t, n in self.names.pending.items() if t not in before)
            return out, out_rf, peak + late
        extra = self.names.extra() if self.names.used else 0
        entry = self.derived.get((id(layer), shape))
        d = self.derive(node, shape) if entry is None else entry[1]
        new_rf = None
        if rf is not None:
            new_rf = d.rule.receptive_field(rf, d.at)
            if new_rf is None:
                self.warnings.append(f"{node.loc}: {node.label}: no receptive field from here "
                                     "on (its output units' fields are not one sliding window "
                                     "of its input)")
        self.rows.append(Row(  # by position, Row's fields in order: the hot path
            node.path, node.label, layer.kind, depth, shape, d.out, d.params, d.ops, d.macs,
            d.flops, new_rf, d.inplace, d.stored, d.formula, node.title or d.title,
            node.options, layer.homework_row, node.loc, self.head))
        if not self.names.used:  # the lines below without names: nothing named, held or later
            return d.out, new_rf, held + d.in_elements + (0 if d.inplace else d.out_elements)
        in_place = d.inplace and not self.names.needed_later()  # else it would clobber one
        read = 0 if self.names.held_outside() else d.in_elements
        live = held + extra + read + (0 if in_place else d.out_elements)
        self.names.step(in_place)
        return d.out, new_rf, live

    def keep(self, node: Node, layer: Keep, shape: Shape, rf: RF | None, depth: int,
             held: int) -> tuple[Shape, RF | None, int]:
        """``keep NAME``: the current tensor, named; a row that allocates nothing."""
        self.names.keep(node.path, layer.name, shape, rf)
        self.add_join(node, layer, node.label, depth, shape, shape, rf, Ops())
        named = 0 if self.names.held_outside() else math.prod(shape)
        return shape, rf, held + self.names.extra() + named

    def read(self, node: Node, layer: From, shape: Shape, depth: int,
             held: int) -> tuple[Shape, RF | None, int]:
        """``from NAME``: the tensor kept as NAME becomes the current one (its shape and
        field); a SpecError at the node if no tensor is kept under that name yet."""
        name = layer.name
        found = self.names.bound.get(name)
        if found is None:
            raise SpecError(f"no tensor is kept as {name!r} before this 'from'"
                            f"{suggest(name, list(self.names.bound))} (name one with "
                            f"'keep {name}')", node.loc)
        dropped = (0 if self.names.current == found.tensor or self.names.held_outside()
                   else math.prod(shape))
        self.names.read(name)
        self.add_join(node, layer, node.label, depth, shape, found.shape, found.rf, Ops())
        named = 0 if self.names.held_outside() else math.prod(found.shape)
        live = held + self.names.extra() + dropped + named
        return found.shape, found.rf, live

    def add_join(self, node: Node, block: Block, label: str, depth: int, in_shape: Shape,
                 out: Shape, rf: RF | None, ops: Ops, kind: str | None = None) -> None:
        """The row of a block's join (concatenation, addition): no parameters of its own."""
        inplace = not block.allocates()
        self.rows.append(Row(  # by position, as in node()
            node.path, label, kind or block.kind, depth, in_shape, out, Params(), ops,
            self.convention.macs(ops), self.convention.flops(ops), rf, inplace, not inplace,
            None, block.title(), node.options, block.homework_row, node.loc, self.head))

    def merge(self, rfs: list[RF | None], node: Node, what: str) -> RF | None:
        if any(rf is None for rf in rfs):
            return None
        merged, aligned = merge_rfs(rfs)  # type: ignore[arg-type]
        if not aligned:
            detail = "; ".join(f"centre {_fmt_center(rf)} stride {rf.stride[0]}"
                               for rf in rfs if rf is not None)
            self.warnings.append(f"{node.loc}: {what} are misaligned ({detail})")
        return merged


class _Bound(Record):
    """A named tensor: what identifies it (the path of the ``keep`` that first named it),
    its shape and its field."""

    tensor: str
    shape: Shape
    rf: RF | None


@dataclass
class Names:
    """The walker's environment of named tensors, and what they keep alive.

    Memory: a kept tensor stays live from its ``keep`` to its last ``from`` (counted by
    :meth:`plan` before the walk, in the order the walk runs), on top of whatever the path
    holds; it is not counted twice while it is also the tensor flowing along the path (the
    input of the next layer), and an in-place layer on it while a later ``from`` still
    reads it counts as allocating (in place it would overwrite the kept tensor). A block holds
    the kept tensors live at its entry (its input among them) through its whole walk, and
    the layers inside do not count them again. The peak is exact along sequences and where
    blocks neither start on a kept tensor nor read one; otherwise it is an upper bound, by
    at most the kept tensors the block reads: a block's own rules may count its input or a
    branch's output again (a residual's identity shortcut at the join, a branch that is
    ``from p``), a tensor read for the last time inside a block stays held until the
    block's join, and one kept inside a block and read after it is added to the block's
    peak. Never below: nothing a later ``from`` reads goes uncounted."""

    bound: dict[str, _Bound] = field(default_factory=dict)  # name -> tensor
    reads: dict[str, int] = field(default_factory=dict)  # keep path -> froms reading it
    left: dict[str, int] = field(default_factory=dict)  # tensor -> reads still to come
    pending: dict[str, int] = field(default_factory=dict)  # tensor -> elements, read later
    current: str | None = None  # the named tensor flowing along the path, if it is one
    entries: list[str | None] = field(default_factory=list)  # blocks' inputs, innermost last
    held: dict[str, int] = field(default_factory=dict)  # tensors enclosing blocks hold
    entering: tuple[str, ...] = ()  # what the last :meth:`hold` marked
    # Whether the graph has a keep or from (:meth:`plan`, before the walk): without, every
    # method below is a no-op or 0, and the walker's hot path skips them.
    used: bool = False

    def plan(self, body: Seq) -> None:
        """How many ``from`` statements read each ``keep``'s tensor, in the walk's order."""
        self.used = _names_in(body)
        if not self.used:
            return
        last: dict[str, str] = {}
        for node in walk(body):
            if isinstance(node.layer, Keep):
                last[node.layer.name] = node.path
            elif isinstance(node.layer, From) and node.layer.name in last:
                keep = last[node.layer.name]
                self.reads[keep] = self.reads.get(keep, 0) + 1

    def extra(self) -> int:
        """Elements of pending kept tensors not counted elsewhere."""
        if not self.pending:
            return 0
        return sum(n for t, n in self.pending.items()
                   if t != self.current and t not in self.held)

    def held_outside(self) -> bool:
        """Whether the current tensor is one an enclosing block holds (counted there)."""
        return self.current is not None and self.current in self.held

    def hold(self) -> int:
        """At a block's entry: the kept tensors still to be read, its input among them, are
        held through the block (marked until :meth:`block` ends); their elements."""
        new = {t: n for t, n in self.pending.items() if t not in self.held}
        self.held.update(new)
        self.entering = tuple(new)
        return sum(new.values())

    def needed_later(self) -> bool:
        return self.current is not None and self.current in self.pending

    def enter(self) -> None:
        """A sequence starts on its block's input (the walk's input at the top)."""
        if self.entries:
            self.current = self.entries[-1]

    def step(self, in_place: bool) -> None:
        """After a layer: its output is a new, unnamed tensor unless it ran in place."""
        if not in_place:
            self.current = None

    @contextmanager
    def block(self, keeps_input: bool) -> Iterator[None]:
        """Within a block: its input is where its sequences start, and what :meth:`hold`
        marked is held; after it, the join's new tensor flows on (a head passes its input
        on)."""
        entry, marked = self.current, self.entering
        self.entries.append(entry)
        try:
            yield
        finally:
            self.entries.pop()
            for tensor in marked:
                del self.held[tensor]
            self.current = entry if keeps_input else None

    def keep(self, path: str, name: str, shape: Shape, rf: RF | None) -> None:
        tensor = self.current or path
        self.bound[name] = _Bound(tensor, shape, rf)
        self.left[tensor] = self.left.get(tensor, 0) + self.reads.get(path, 0)
        if self.left[tensor]:
            self.pending[tensor] = math.prod(shape)
        self.current = tensor

    def read(self, name: str) -> None:
        tensor = self.bound[name].tensor
        self.left[tensor] = max(self.left.get(tensor, 0) - 1, 0)
        if not self.left[tensor]:
            self.pending.pop(tensor, None)  # its last reader: it flows on the path now
        self.current = tensor


def _names_in(seq: Seq) -> bool:
    """Whether a ``keep`` or ``from`` is in ``seq``, blocks included: a loop over the nodes,
    cheaper than :func:`~archcalc.layers.walk`'s generators for the graphs without."""
    for node in seq:
        layer = node.layer
        if layer.container and (isinstance(layer, Keep | From)
                                or any(_names_in(inner) for inner in layer.sequences())):
            return True
    return False


def _ends_named(seq: Seq) -> bool:
    """Whether a sequence's output is a named tensor (it ends with ``keep`` or ``from``)."""
    return bool(seq) and isinstance(seq[-1].layer, Keep | From)


def _fmt_center(rf: RF) -> str:
    return "(" + ", ".join(str(float(c)) for c in rf.center) + ")"


def analyze(graph: Graph, convention: str | Convention = "full",
            input_shape: Shape | None = None) -> Report:
    """Derive every row of ``graph``; ``input_shape`` (C, H, W), (C, L) or (N,) overrides
    the spec's."""
    conv = convention if isinstance(convention, Convention) else get_convention(convention)
    shape = graph.input_shape if input_shape is None else tuple(input_shape)
    if len(shape) not in (1, 2, 3) or not all(type(d) is int and d > 0 for d in shape):
        raise UsageError(f"input shape must be (C, H, W), (C, L) or (N,) of positive whole "
                         f"numbers, not {shape}")
    walker = Walker(conv)
    walker.names.plan(graph.body)
    rf = INPUT_RF if len(shape) > 1 else None
    _, _, peak = walker.seq(graph.body, shape, rf, 0, 0, 0)
    return Report(graph.name, graph.source, shape, conv, tuple(walker.rows),
                  tuple(walker.warnings), peak)
