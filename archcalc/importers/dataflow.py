"""A model's dataflow graph -> archcalc's sequences and blocks, for every importer.

An importer turns each operation of a model (a traced torch call, a Keras layer, an ONNX
node) into an :class:`Op`: what it computes on one tensor (layer kinds; none when it passes
its input on), or how it joins several (added, concatenated along channels, or a gate's
``x * f(x)``). :func:`sequences` then writes the graph as archcalc writes a spec: a join's
branches begin where every path to it from the input divides, its immediate dominator, and
run from there to each of its inputs.

A graph that is not built of sequences and such joins (a tensor used on branches of
different joins: torchvision's DenseNet concatenates all earlier features in every layer,
NASNet's cells read the two cells before them) cannot be written as blocks alone without
counting a layer twice. Where a block's branches would reach the same operation twice, the
part from where the block's paths divide to its join is written with named tensors instead
(the smallest such part: outer blocks stay blocks): its operations once each, in
topological order; one whose result a single operation reads is written inside it (a
layer before it, or a branch of its join); any other result is kept (``keep NAME``), and a
branch or layer that reads it later begins ``from NAME`` unless it is the current tensor.
Graphs of sequences and blocks are written exactly as before, without names.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Literal

from archcalc.algebra import fmt_shape
from archcalc.errors import ArchcalcError, Loc
from archcalc.kinds import Add, Concat, Gate, Kind
from archcalc.layers import Graph, Node, Seq, Shape
from archcalc.records import Record

if TYPE_CHECKING:
    from archcalc.analysis import Report

Join = Literal["add", "add_inplace", "concat", "gate"]


class UnsupportedModel(ArchcalcError):
    """An operation archcalc has no rule for, or a graph it cannot write as blocks."""


class Imported(Record):
    """An imported model's graph and the operations ``--skip-unknown`` passed over (one
    warning each), which its report must show."""

    graph: Graph
    skipped: tuple[str, ...] = ()

    def report(self, convention: str = "full") -> Report:
        """:func:`archcalc.analyze` of the graph, the skipped operations first among its
        warnings."""
        from archcalc.analysis import analyze

        report = analyze(self.graph, convention)
        return replace(report, warnings=(*self.skipped, *report.warnings))


def skip(model: str, where: str, why: str, in_shape: Shape | None,
         out_shape: Shape | None) -> str:
    """The warning for an operation without a rule (``why``) that ``--skip-unknown``
    passes over as zero cost: only one whose output is known to have its input's shape,
    which the layers after it then see unchanged; any other is still refused."""
    refused = f"{model}: cannot read {where}: {why}"
    if in_shape is None or out_shape is None:
        raise UnsupportedModel(f"{refused}; its output shape is unknown, so --skip-unknown "
                               "cannot pass it over")
    if tuple(in_shape) != tuple(out_shape):
        raise UnsupportedModel(f"{refused}; it changes the shape {fmt_shape(in_shape)} -> "
                               f"{fmt_shape(out_shape)}, and --skip-unknown passes over only "
                               "operations that keep it")
    return (f"skipped {where}: {why}; counted as zero cost (no parameters, no MACs), its "
            f"output the shape of its input, {fmt_shape(in_shape)}")


@dataclass(eq=False)  # an operation is itself, wherever it is used
class Op:
    """One operation: ``inputs`` are the tensors it reads, in order; a one-input op computes
    ``layers`` (in order; none: it passes its input on); a join has ``join`` instead."""

    label: str  # the model's own name for it: a module path, a layer name
    loc: Loc
    inputs: Sequence[Op] = ()
    layers: Sequence[Kind] = ()
    join: Join | None = None
    where: str | Callable[[], str] = ""  # how errors name it (the label if empty); a
    # function is asked only for an error: most operations never need their name written
    order: int = field(default=0)  # position in a topological order, set by sequences


def sequences(ops: Sequence[Op], source: Op, result: Op, model: str) -> Seq:
    """The layers and blocks from ``source`` (the input) to ``result``; ``ops`` in a
    topological order."""
    return _Writer(ops, source, model).write(result)


class _Shared(Exception):
    """An operation reached a second time: blocks would count its layers twice."""

    def __init__(self, op: Op) -> None:
        super().__init__(op.label)
        self.op = op


class _Writer:
    def __init__(self, ops: Sequence[Op], source: Op, model: str) -> None:
        self.model, self.source = model, source
        for i, op in enumerate(ops, start=1):
            op.order = i
            if op.join == "concat" and len(op.inputs) == 1:  # torch.cat([x]): x itself
                op.join = None
        self.idom: dict[Op, Op] = {source: source}
        for op in ops:
            reached = [p for p in op.inputs if p in self.idom]
            if op is not source and reached:
                common = reached[0]
                for p in reached[1:]:
                    common = self.intersect(common, p)
                self.idom[op] = common
        self.placed: dict[Op, int] = {}  # op -> when it was placed: how many were before
        self.any_named = False  # whether a region is written with named tensors

    def intersect(self, a: Op, b: Op) -> Op:
        while a is not b:
            while a.order > b.order:
                a = self.idom[a]
            while b.order > a.order:
                b = self.idom[b]
        return a

    def write(self, result: Op) -> Seq:
        try:
            found = self.sequence(self.source, result)
        except _Shared:
            found = self.named(self.source, result, 0)
        names: dict[Op, str] = {}
        if self.any_named:  # name the tensors a ``from`` reads; the other keeps go
            read = {what.op for _, what in _walk(found)
                    if isinstance(what, _Name) and what.verb == "from"}
            names = _names(sorted(read, key=lambda op: op.order))
            found = _pruned(found, read)
        return _numbered(found, "", names)

    def sequence(self, start: Op, end: Op) -> list[_Written]:
        """What comes after ``start`` up to ``end``, in order: each layer, or a block for
        each join; numbered and built as nodes once the whole is known (:func:`_numbered`)."""
        found: list[_Written] = []
        placed = self.placed
        op = end
        while op is not start:
            if op in placed:
                raise _Shared(op)
            placed[op] = len(placed)
            if op not in self.idom:
                raise self.refuse(op, "it does not depend on the model's input")
            if op.join is not None:
                written = self.block(op)
                if isinstance(written, list):
                    found.extend(reversed(written))
                else:
                    found.append(written)
                op = self.idom[op]
                continue
            found.extend((op, layer) for layer in reversed(op.layers))
            if len(op.inputs) != 1:
                raise self.refuse(op, f"it takes {len(op.inputs)} tensors")
            op = op.inputs[0]
        found.reverse()
        return found

    def block(self, op: Op) -> _Written | list[_Written]:
        """The join as one block of branches from where its paths divide; where a branch
        reaches what another already holds (not series-parallel), what lies between the
        two written with named tensors instead (:meth:`named`)."""
        fork, mark = self.idom[op], self.placed[op]
        try:
            if op.join == "gate":
                other = self.gated(op, fork)
                return (op, _Block("gate", [self.sequence(fork, other)]))
            return (op, _Block(op.join or "add", [self.sequence(fork, p) for p in op.inputs]))
        except _Shared as exc:
            if self.placed[exc.op] < mark:  # placed before this block: an outer one's case
                raise
            return self.named(fork, op, mark)

    def gated(self, op: Op, fork: Op) -> Op:
        """A gate's computed input, ``f(x)`` of ``x * f(x)`` (``x``: where paths divide)."""
        if len(op.inputs) != 2 or fork not in op.inputs:
            raise self.refuse(op, "a product of two computed tensors (archcalc's gate "
                                  "is x * f(x))")
        return op.inputs[1] if op.inputs[0] is fork else op.inputs[0]

    # -- named tensors --------------------------------------------------------------------
    def named(self, start: Op, end: Op, mark: int) -> list[_Written]:
        """Every operation from ``start`` to ``end`` once, in topological order: one whose
        result only one operation reads is written inside it (a layer before it, a branch
        of its join); any other result is kept under a name, and what reads it later
        begins ``from`` that name (where it is not already the current tensor)."""
        region = self.region(start, end)
        for op in region:
            if self.placed.get(op, mark) < mark:  # also on an outer block's path
                raise _Shared(op)
        for op in region:
            self.placed.setdefault(op, len(self.placed))  # as placed after ``mark``
        uses: dict[Op, int] = {op: 0 for op in region}
        inner: set[Op] = set()  # read once, where a chain can hold it
        for op in region:
            held = (self.gated(op, self.idom[op]),) if op.join == "gate" else op.inputs
            for p in op.inputs:
                if p in uses:
                    uses[p] += 1
            for p in held:
                if p in uses:
                    inner.add(p)
        absorbed = {op for op in region if uses[op] == 1 and op in inner and op is not end}
        chains = _Chains(self, absorbed)
        found: list[_Written] = [(start, _Name("keep", start))]
        for op in region:
            if op not in absorbed:
                found.extend(chains.head(op))
                if op is not end:  # nothing here reads the end (a region after it keeps it)
                    found.append((op, _Name("keep", op)))
        self.any_named = True
        return self.resolve(found, start)

    def region(self, start: Op, end: Op) -> list[Op]:
        """The operations on paths from ``start`` to ``end`` (``end`` too), in order;
        ``start`` dominates ``end``, so nothing else feeds them."""
        seen, stack = {end}, [end]
        while stack:
            op = stack.pop()
            if op not in self.idom:
                raise self.refuse(op, "it does not depend on the model's input")
            for p in op.inputs:
                if p is not start and p not in seen:
                    seen.add(p)
                    stack.append(p)
        return sorted(seen, key=lambda op: op.order)

    def resolve(self, found: list[_Written], current: Op) -> list[_Written]:
        """``found`` without each ``from`` that names the tensor already current."""
        out: list[_Written] = []
        for op, what in found:
            if isinstance(what, _Name):
                if what.verb == "from" and what.op is current:
                    continue
                current = what.op
            elif isinstance(what, _Block):
                what = _Block(what.join, [self.resolve(b, current) for b in what.branches])
                current = op
            else:
                current = op
            out.append((op, what))
        return out

    def refuse(self, op: Op, why: str) -> UnsupportedModel:
        where = op.where() if callable(op.where) else op.where
        return UnsupportedModel(f"{self.model}: cannot read {where or op.label}: {why}")


class _Chains:
    """The writing of a named region's operations: each not ``absorbed`` (a head) with the
    chain of those it alone reads, back to a named tensor."""

    def __init__(self, writer: _Writer, absorbed: set[Op]) -> None:
        self.writer, self.absorbed = writer, absorbed

    def head(self, op: Op) -> list[_Written]:
        """A head: its own layers or block, after the chain it reads."""
        if op.join is not None:
            return self.join(op)
        if len(op.inputs) != 1:
            raise self.writer.refuse(op, f"it takes {len(op.inputs)} tensors")
        return [*self.chain(op.inputs[0]), *((op, layer) for layer in op.layers)]

    def join(self, op: Op) -> list[_Written]:
        if op.join == "gate":  # x * f(x): x current, f(x) the body
            x = self.writer.idom[op]
            body = self.chain(self.writer.gated(op, x))
            return [(x, _Name("from", x)), (op, _Block("gate", [body]))]
        return [(op, _Block(op.join or "add", [self.chain(p) for p in op.inputs]))]

    def chain(self, tip: Op) -> list[_Written]:
        """What makes ``tip`` current: a ``from`` its named tensor, or the operations
        written only for it, from the named tensor they begin at (or from a join's block,
        whose branches say where they begin); without recursion, as a chain may be long."""
        found: list[_Written] = []
        op = tip
        while op in self.absorbed:
            if op.join is not None:
                found.extend(reversed(self.join(op)))
                break
            found.extend((op, layer) for layer in reversed(op.layers))
            if len(op.inputs) != 1:
                raise self.writer.refuse(op, f"it takes {len(op.inputs)} tensors")
            op = op.inputs[0]
        else:
            found.append((op, _Name("from", op)))
        found.reverse()
        return found


@dataclass
class _Block:
    """A join as the writer finds it: its branches (a gate's body alone), not yet built."""

    join: Join
    branches: list[list[_Written]]


@dataclass(frozen=True)
class _Name:
    """``keep`` (name the current tensor, ``op``'s result) or ``from`` (make it current)."""

    verb: Literal["keep", "from"]
    op: Op


_Written = tuple[Op, "Kind | _Block | _Name"]  # a layer of an operation, a join's block,
# or a named tensor


def _walk(found: list[_Written]) -> list[_Written]:
    """Every item, those inside blocks too."""
    out: list[_Written] = []
    for item in found:
        out.append(item)
        if isinstance(item[1], _Block):
            for branch in item[1].branches:
                out.extend(_walk(branch))
    return out


def _pruned(found: list[_Written], read: set[Op]) -> list[_Written]:
    """``found`` without the ``keep`` of a tensor no ``from`` reads."""
    out: list[_Written] = []
    for op, what in found:
        if isinstance(what, _Name) and what.verb == "keep" and what.op not in read:
            continue
        if isinstance(what, _Block):
            what = _Block(what.join, [_pruned(b, read) for b in what.branches])
        out.append((op, what))
    return out


def _names(ops: list[Op]) -> dict[Op, str]:
    """A name for each tensor from its operation's label: the shortest end of its module
    path that no other named tensor's path ends with (``denselayer1_conv2``), as an
    identifier that is not a word of the spec language (``input`` is ``input_tensor``); a
    number after it where two labels are the same."""
    from archcalc.spec import RESERVED_WORDS  # the language's words are no names

    paths = {op: _path(op.label) for op in ops}
    ends = Counter(tuple(path[-k:]) for path in paths.values()
                   for k in range(1, len(path) + 1))
    names: dict[Op, str] = {}
    taken: set[str] = set()
    for op, path in paths.items():
        k = next((k for k in range(1, len(path)) if ends[tuple(path[-k:])] == 1), len(path))
        base = "_".join(path[-k:])
        if not base[0].isalpha():
            base = f"t_{base}"
        if base.lower() in RESERVED_WORDS:
            base = f"{base}_tensor"
        name, n = base, 1
        while name in taken:
            n += 1
            name = f"{base}_{n}"
        names[op] = name
        taken.add(name)
    return names


def _path(label: str) -> list[str]:
    """The words of a label's module path: torch's ``Conv2d features.conv0`` (a module;
    ``Conv2d_0`` where the path ends in an index) or ``cat_2 in features`` (a call), a
    Keras layer's name, ONNX's ``MaxPool /features/pool0/MaxPool`` (the type left out)."""
    words = label.split(" ")
    if len(words) == 3 and words[1] == "in":
        words = words[:1]
    parts = re.findall(r"[A-Za-z0-9_]+", words[-1]) or ["t"]
    if len(words) == 2 and len(parts) > 1 and parts[-1] == words[0]:  # ONNX: /pool0/MaxPool
        parts.pop()
    if len(words) == 2 and parts[-1][0].isdigit():
        parts[-1] = f"{words[0]}_{parts[-1]}"
    return parts


def _numbered(found: list[_Written], prefix: str, names: dict[Op, str]) -> Seq:
    """The nodes, with paths as the spec parser writes them: 1, 2, 3.b1.1 (a branch), 4.1
    (a body); each node and block built once, here, where its path is known."""
    out = []
    for i, (op, what) in enumerate(found, start=1):
        path = f"{prefix}{i}"
        layer: Kind
        label = op.label
        if not isinstance(what, (_Block, _Name)):
            layer = what
        elif isinstance(what, _Name):
            layer, label = _name_node(what.verb, names[what.op])
        elif what.join == "gate":
            layer = Gate(_numbered(what.branches[0], f"{path}.", names))
        else:
            branches = tuple(_numbered(b, f"{path}.b{j}.", names)
                             for j, b in enumerate(what.branches, 1))
            layer = (Concat(branches) if what.join == "concat" else
                     Add(branches, what.join == "add_inplace" and bool(branches[0])))
        out.append(Node(layer, label, path, op.loc, (), ""))  # every field: fast
    return tuple(out)


def _name_node(verb: str, name: str) -> tuple[Kind, str]:
    """The ``keep NAME`` or ``from NAME`` layer and its label."""
    from archcalc.kinds import From, Keep

    return (Keep(name=name) if verb == "keep" else From(name=name)), f"{verb} {name}"
