"""A model's dataflow graph -> archcalc's sequences and blocks, for every importer.

An importer turns each operation of a model (a traced torch call, a Keras layer, an ONNX
node) into an :class:`Op`: what it computes on one tensor (layer kinds; none when it passes
its input on), or how it joins several (added, concatenated along channels, or a gate's
``x * f(x)``). :func:`sequences` then writes the graph as archcalc writes a spec: a join's
branches begin where every path to it from the input divides, its immediate dominator, and
run from there to each of its inputs. A graph that is not built of sequences and such joins
(a tensor used on two branches of different joins: torchvision's DenseNet concatenates all
earlier features in every layer) cannot be written as blocks without counting a layer twice,
and is refused.
"""

from __future__ import annotations

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


class _Writer:
    def __init__(self, ops: Sequence[Op], source: Op, model: str) -> None:
        self.model, self.source = model, source
        for i, op in enumerate(ops, start=1):
            op.order = i
        self.idom: dict[Op, Op] = {source: source}
        for op in ops:
            reached = [p for p in op.inputs if p in self.idom]
            if op is not source and reached:
                common = reached[0]
                for p in reached[1:]:
                    common = self.intersect(common, p)
                self.idom[op] = common
        self.placed: set[Op] = set()

    def intersect(self, a: Op, b: Op) -> Op:
        while a is not b:
            while a.order > b.order:
                a = self.idom[a]
            while b.order > a.order:
                b = self.idom[b]
        return a

    def write(self, result: Op) -> Seq:
        return _numbered(self.sequence(self.source, result), "")

    def sequence(self, start: Op, end: Op) -> list[_Written]:
        """What comes after ``start`` up to ``end``, in order: each layer, or a block for
        each join; numbered and built as nodes once the whole is known (:func:`_numbered`)."""
        found: list[_Written] = []
        op = end
        while op is not start:
            if op in self.placed:
                raise self.refuse(op, "its result is used on two paths that do not meet in "
                                      "one join, so blocks would count its layers twice")
            self.placed.add(op)
            if op not in self.idom:
                raise self.refuse(op, "it does not depend on the model's input")
            if op.join is not None:
                found.append((op, self.block(op)))
                op = self.idom[op]
                continue
            found.extend((op, layer) for layer in reversed(op.layers))
            if len(op.inputs) != 1:
                raise self.refuse(op, f"it takes {len(op.inputs)} tensors")
            op = op.inputs[0]
        found.reverse()
        return found

    def block(self, op: Op) -> _Block:
        fork = self.idom[op]
        if op.join == "gate":
            if len(op.inputs) != 2 or fork not in op.inputs:
                raise self.refuse(op, "a product of two computed tensors (archcalc's gate "
                                      "is x * f(x))")
            other = op.inputs[1] if op.inputs[0] is fork else op.inputs[0]
            return _Block("gate", [self.sequence(fork, other)])
        return _Block(op.join or "add", [self.sequence(fork, p) for p in op.inputs])

    def refuse(self, op: Op, why: str) -> UnsupportedModel:
        where = op.where() if callable(op.where) else op.where
        return UnsupportedModel(f"{self.model}: cannot read {where or op.label}: {why}")


@dataclass
class _Block:
    """A join as the writer finds it: its branches (a gate's body alone), not yet built."""

    join: Join
    branches: list[list[_Written]]


_Written = tuple[Op, "Kind | _Block"]  # a layer of an operation, or a join's block


def _numbered(found: list[_Written], prefix: str) -> Seq:
    """The nodes, with paths as the spec parser writes them: 1, 2, 3.b1.1 (a branch), 4.1
    (a body); each node and block built once, here, where its path is known."""
    out = []
    for i, (op, what) in enumerate(found, start=1):
        path = f"{prefix}{i}"
        layer: Kind
        if not isinstance(what, _Block):
            layer = what
        elif what.join == "gate":
            layer = Gate(_numbered(what.branches[0], f"{path}."))
        else:
            branches = tuple(_numbered(b, f"{path}.b{j}.")
                             for j, b in enumerate(what.branches, 1))
            layer = (Concat(branches) if what.join == "concat" else
                     Add(branches, what.join == "add_inplace" and bool(branches[0])))
        out.append(Node(layer, op.label, path, op.loc, (), ""))  # every field: fast
    return tuple(out)
