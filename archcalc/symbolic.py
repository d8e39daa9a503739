"""The algebra over sympy symbols: receptive-field closed forms and per-layer formulas.

Closed forms are derived, not stored: ``rf_stack`` telescopes the per-layer receptive-field
recurrence into a sympy sum and evaluates it; ``layer_formulas`` writes each count over named
symbols and substitutes the layer's numbers. Imported only by the symbolic commands (sympy is slow
to import).
"""

from __future__ import annotations

import math
from typing import Any

import sympy as sp

from archcalc.algebra import fmt_shape
from archcalc.errors import UsageError, shorten
from archcalc.kinds.base import Block, output_at, rules_at, uncolumn
from archcalc.layers import Shape
from archcalc.records import Record
from archcalc.spec import parse
from archcalc.tabular import Column, Table

N, F, S, D = sp.symbols("N F S D", positive=True, integer=True)


class RFDerivation(Record):
    """How a stack of identical convolutions grows its receptive field."""

    layers: int
    kernel: int
    stride: int
    dilation: int
    recurrence: sp.Eq  # r(l+1) in terms of r(l)
    closed_form: sp.Expr  # r(N) over N, F (and D, S where they are not 1)
    value: int

    @property
    def dilated(self) -> int:
        """The side F' = D(F - 1) + 1 a dilated kernel spans (F itself without dilation)."""
        return self.dilation * (self.kernel - 1) + 1

    @property
    def homework_form(self) -> str | None:
        """The assignment's form of the closed form, NF - N + 1 (over the dilated side
        F'); None with strides, where the field grows geometrically instead."""
        if self.stride != 1:
            return None
        if self.dilation == 1:
            return "NF - N + 1"
        return f"NF' - N + 1, F' = D(F - 1) + 1 = {self.dilated}"

    def steps(self) -> list[tuple[str, str]]:
        """The derivation as (step, expression) pairs, the rows of every output format."""
        n, f, v = self.layers, self.kernel, self.value
        rows = [("per layer", "r(l+1) = r(l) + D*(F - 1)*S**l, r(0) = 1"),
                (f"S={self.stride}, D={self.dilation}",
                 f"{sp.sstr(self.recurrence.lhs)} = {sp.sstr(self.recurrence.rhs)}"),
                ("closed form", f"r(N) = {sp.sstr(self.closed_form)}")]
        value = f"r = {v}"
        if self.homework_form is not None:
            rows.append(("homework's form", f"r(N) = {self.homework_form}"))
            value = f"r = {n}*{self.dilated} - {n} + 1 = {v}"
        rows.append((f"N={n}, F={f}", f"{value}: one {v}x{v} convolution"))
        return rows

    def lines(self) -> list[str]:
        width = max(len(step) for step, _ in self.steps()) + 1
        return [self.title, *(f"  {step + ':':<{width}} {expr}" for step, expr in self.steps()),
                *(f"  {note}" for note in self.notes)]

    @property
    def title(self) -> str:
        return (f"Receptive field of {self.layers} stacked {self.kernel}x{self.kernel} "
                f"convolutions (stride {self.stride}, dilation {self.dilation})")

    @property
    def notes(self) -> tuple[str, ...]:
        return ("r(l): the side of the input patch one unit after l layers sees (r(0) = 1).",
                "Each layer adds D(F - 1) times S**l, the product of the strides before it.",
                "Summed by sympy, checked by whole numbers (Araujo et al. 2019, Distill).")

    def table(self) -> Table:
        """The derivation as a table: the CLI writes it in every format the tables have."""
        return Table(self.title, (Column("Step", "left"), Column("Expression", "left")),
                     tuple(self.steps()), footer=self.notes)

    def data(self) -> dict[str, Any]:
        """The numbers and expressions for JSON (``archcalc rf --format json``)."""
        return {"layers": self.layers, "kernel": self.kernel, "stride": self.stride,
                "dilation": self.dilation,
                "recurrence": f"{sp.sstr(self.recurrence.lhs)} = "
                              f"{sp.sstr(self.recurrence.rhs)}",
                "closed_form": sp.sstr(self.closed_form), "homework_form": self.homework_form,
                "field": self.value, "steps": [list(step) for step in self.steps()]}


def rf_stack(layers: int, kernel: int, stride: int = 1, dilation: int = 1) -> RFDerivation:
    """Telescope r(l+1) = r(l) + D(F-1) S^l, r(0) = 1 over N layers of an F x F kernel:
    r(N) = 1 + sum_{l=0}^{N-1} D(F-1) S^l, summed symbolically."""
    for name, value in (("layers", layers), ("kernel", kernel), ("stride", stride),
                        ("dilation", dilation)):
        if value < 1:
            raise UsageError(f"--{name} must be a positive whole number, not {value}")
    field = _field(layers, kernel, stride, dilation)  # before sympy sees a huge number
    r = sp.Function("r")
    l_ = sp.Symbol("l", integer=True, nonnegative=True)
    step = D * (F - 1) * S**l_
    known = {S: stride, D: dilation}
    recurrence = sp.Eq(r(l_ + 1), r(l_) + step.subs(known))
    solution = 1 + sp.summation(step.subs(known), (l_, 0, N - 1))
    closed = sp.factor_terms(sp.expand(sp.simplify(solution)))
    closed = sp.collect(closed, N) if stride == 1 else closed
    value = int(closed.subs({N: layers, F: kernel}))
    assert value == field, (value, field)  # the closed form and the recurrence agree
    if stride == 1:  # and the assignment's NF' - N + 1, F' = D(F - 1) + 1
        homework = (N * F - N + 1).subs(F, dilation * (F - 1) + 1)
        assert sp.expand(homework - closed) == 0, (homework, closed)
    return RFDerivation(layers, kernel, stride, dilation, recurrence, closed, value)


MAX_FIELD = 10**18


def _field(layers: int, kernel: int, stride: int, dilation: int) -> int:
    """r(N) = 1 + D(F-1)(1 + S + ... + S^(N-1)) by whole numbers, refused past MAX_FIELD
    (before S^N is computed: 2^20000 has 6,000 digits)."""
    too_large = UsageError(f"the receptive field of {layers} layers (kernel {kernel}, stride "
                           f"{stride}, dilation {dilation}) is larger than 10^18; use fewer "
                           "layers or a smaller stride")
    if stride > 1 and layers * math.log2(stride) > 64:
        raise too_large
    strides = layers if stride == 1 else (stride**layers - 1) // (stride - 1)
    value = 1 + dilation * (kernel - 1) * strides
    if value > MAX_FIELD:
        raise too_large
    return value


class FormulaLine(Record):
    name: str
    formula: sp.Expr
    value: int


class LayerFormulas(Record):
    label: str
    in_shape: Shape
    out_shape: Shape
    rows: tuple[FormulaLine, ...]

    def lines(self) -> list[str]:
        head = f"{self.label} on {fmt_shape(self.in_shape)} -> {fmt_shape(self.out_shape)}"
        width = max((len(r.name) for r in self.rows), default=0)
        body = [f"  {r.name:<{width}} = " + (f"{r.value:,}" if r.formula.is_number else
                                              f"{sp.sstr(r.formula)} = {r.value:,}")
                for r in self.rows]
        return [head, *body]


Ci, Co, Hin, Win, Ho, Wo, Kh, Kw, P, St, Dl, G, Nin, Nout = sp.symbols(
    "C_in C_out H W H_out W_out K_h K_w P S D g N_in N_out", positive=True, integer=True)


def layer_formulas(label: str, in_shape: Shape) -> LayerFormulas:
    """Parameter and MAC formulas of one layer written in spec notation, e.g. ``conv3-64``."""
    graph = parse(f"input {fmt_shape(in_shape)}\n{label}\n", file="<formula>")
    if len(graph.body) != 1 or isinstance(graph.body[0].layer, Block):
        raise UsageError(f"{shorten(label)!r} is not a single layer (a block, a repeat or "
                         "several statements); 'archcalc formula' shows one layer's formulas")
    node = graph.body[0]
    rule, at = rules_at(node.layer, in_shape, node.loc)
    out = output_at(rule, at, in_shape, node.loc)
    rows = rule.formulas(at, out)
    for row in rows:  # the symbolic and the numeric algebra must agree on the shape
        assert row.name != "H_out" or row.value == out[1], (row, out)
    if at is not in_shape:  # a sequence: the twin's column is the sequence, width 1
        rows = [_along_sequence(row) for row in rows if row.name != "W_out"]
        out = uncolumn(out)
    counted = rule.parameters(at)
    checks = {"weights": counted.weights, "biases": counted.biases, "buffers": counted.buffers}
    for row in rows:  # the symbolic and the numeric algebra must agree
        assert row.name not in checks or row.value == checks[row.name], row
    return LayerFormulas(node.label, in_shape, out, tuple(rows))


L, Lo, K = sp.symbols("L L_out K", positive=True, integer=True)


def _along_sequence(row: FormulaLine) -> FormulaLine:
    """A twin's formula on the one-column map (C, L, 1), written for the sequence: the
    width's symbols are 1, and the height's are the sequence's (H -> L, K_h -> K, a top
    side is the start and a bottom side the end)."""
    formula = row.formula.subs({Win: 1, Wo: 1, Kw: 1}).subs({Hin: L, Ho: Lo, Kh: K})
    sides = {s: sp.Symbol(s.name.replace("_top", "_start").replace("_bottom", "_end"),
                          **s.assumptions0)
             for s in formula.free_symbols if s.name.endswith(("_top", "_bottom"))}
    return FormulaLine(row.name.replace("H_out", "L_out"), formula.subs(sides), row.value)


def line(name: str, formula: sp.Expr, values: dict[Any, int]) -> FormulaLine:
    """A formula and its value with the layer's numbers substituted."""
    return FormulaLine(name, formula, int(formula.subs(values)))


def zero_weights() -> list[FormulaLine]:
    """The one line of a layer without weights."""
    return [FormulaLine("weights", sp.Integer(0), 0)]
