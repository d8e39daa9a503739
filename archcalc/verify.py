"""Check a Report against torch: shapes from forward hooks, parameters and buffers from torch
and torchinfo, MACs/FLOPs from torchinfo, fvcore and FlopCounterMode (each against the
convention that reproduces it), and receptive fields from input gradients.

The torch side is built from the same Graph by :mod:`archcalc.backends.torch`, which derives
shapes with torch itself, so a wrong rule in :mod:`archcalc.algebra` shows up as a failed
check here. This module imports no framework; the backend is loaded when ``verify`` runs.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable
from dataclasses import replace
from types import ModuleType
from typing import TYPE_CHECKING

from rich.console import Group
from rich.table import Table
from rich.text import Text

from archcalc.algebra import RF, fmt_shape
from archcalc.analysis import Report, Row, analyze
from archcalc.errors import VerifyUnavailable
from archcalc.kinds.base import extent
from archcalc.layers import Graph, Shape
from archcalc.records import Record
from archcalc.zoo import load

if TYPE_CHECKING:
    from archcalc.backends.measure import Box, ToolCount

NOTES = (
    "buffers: BN running_mean + running_var; torch's num_batches_tracked (one int64 per BN "
    "layer, only used when momentum=None) is deliberately not counted",
    "RF probe: float32 copy, weights 1/fan_in, biases 0, max pool -> avg pool, activations/"
    "LRN/dropout/BN -> identity, values and gradients reset to 0/1 at every row (nothing "
    "underflows); box of non-zero input gradient vs [start, start+size-1] clipped to the "
    "input: edges inside the input must match, clipped edges (*) bound",
)
NO_FIELD_NOTE = (
    "RF probe skips rows without a field (-): from an upsampling layer, a strided transposed "
    "conv or an adaptive pool with uneven windows on, a unit's field is not one sliding "
    "window of the input, so archcalc states none (see the report's warnings)")


class Check(Record):
    """One comparison; ``path`` is the report row, or "" for the whole model."""

    name: str
    path: str
    expected: object
    actual: object
    ok: bool


def _check(name: str, path: str, expected: object, actual: object) -> Check:
    return Check(name, path, expected, actual, expected == actual)


class VerifyReport(Record):
    """Every check of one model at one input size; ``ok`` when all of them pass."""

    model: str
    input_shape: Shape
    checks: tuple[Check, ...]
    notes: tuple[str, ...] = NOTES

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def failures(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if not c.ok)

    def __rich__(self) -> Group:
        """Model-wide checks one per row; per-layer checks as one row per kind when they
        pass, every failure on its own row."""
        table = Table(title=f"verify {self.model} at {fmt_shape(self.input_shape)}")
        for column in ("check", "layer", "expected", "actual", "result"):
            table.add_column(column, justify="right" if column in ("expected", "actual")
                             else "left")
        for name in dict.fromkeys(c.name for c in self.checks):
            _add_rows(table, [c for c in self.checks if c.name == name])
        failed = len(self.failures)
        summary = Text(f"{len(self.checks) - failed}/{len(self.checks)} checks passed"
                       + ("" if self.ok else f", {failed} FAILED"),
                       style="bold green" if self.ok else "bold red")
        return Group(table, summary, *(Text(f"note: {n}", style="dim") for n in self.notes))


def _add_rows(table: Table, checks: list[Check]) -> None:
    passed = [c for c in checks if c.ok]
    if checks[0].path == "" and len(checks) == 1:
        passed = []  # a model-wide check shows its numbers
    elif passed:
        table.add_row(checks[0].name, f"{len(passed)} layers", "", "", "[green]pass[/]")
    for c in checks:
        if c not in passed:
            result = "[green]pass[/]" if c.ok else "[bold red]FAIL[/]"
            table.add_row(c.name, c.path or "model", _fmt(c.expected), _fmt(c.actual), result)


def _fmt(value: object) -> str:
    if isinstance(value, int):
        return f"{value:,}"
    if value is None:
        return "-"
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], tuple):
        (r0, r1), (c0, c1) = value  # a receptive-field box
        return f"rows {r0}-{r1}, cols {c0}-{c1}"
    if isinstance(value, tuple):
        return fmt_shape(value)
    return str(value)


# -- checks -----------------------------------------------------------------------------
def _backend() -> ModuleType:
    for name in ("torch", "torchinfo", "fvcore.nn"):
        try:
            with warnings.catch_warnings():  # fvcore's import warns about torch.jit.script
                warnings.simplefilter("ignore", DeprecationWarning)
                importlib.import_module(name)
        except ImportError:
            raise VerifyUnavailable(f"verify needs torch, torchinfo and fvcore ({name} is "
                                    "missing): pip install 'archcalc-hw3[verify]'") from None
    return importlib.import_module("archcalc.backends.measure")


def verify(graph: Graph, input_shape: Shape | None = None, probe_rf: bool = True
           ) -> VerifyReport:
    """Build ``graph`` in torch and compare every number archcalc derives for it."""
    backend = _backend()
    reports = {name: analyze(graph, name, input_shape)
               for name in ("full", "torchinfo", "fvcore", "flopcounter")}
    from archcalc.backends.torch import build_module

    model = build_module(graph, input_shape)
    mult_adds, params = backend.torchinfo_counts(model)
    shapes, flops = backend.shapes_and_flops(model)
    checks = [*_shape_checks(reports["full"], shapes),
              *_param_checks(reports["full"], backend.parameter_counts(model), params),
              *_op_checks(reports, mult_adds, backend.fvcore_count(model), flops)]
    notes: tuple[str, ...] = NOTES
    if probe_rf:
        full = reports["full"]
        probed = {r.path for r in _fielded(full)}
        checks += _rf_checks(full, backend.probe_fields(model, probed))
        if len(full.input_shape) > 1 and any(r.rf is None for r in full.rows):
            notes += (NO_FIELD_NOTE,)
    return VerifyReport(graph.name, reports["full"].input_shape, tuple(checks), notes)


def verify_model(name_or_path: str, input_shape: Shape | None = None,
                 params: dict[str, int] | None = None, probe_rf: bool = True) -> VerifyReport:
    """:func:`verify` for a zoo name or a spec file, with ``param`` overrides."""
    return verify(load(name_or_path, **(params or {})), input_shape, probe_rf)


AGAINST_NOTE = (
    "against: the spec's layers with weights or buffers, in order, beside the model's, read "
    "by torch.fx (archcalc.from_torch): kind, output shape, weights, biases and buffers; and "
    "the totals, with the model's parameters counted by torch itself (numel)")


def against(graph: Graph, model: Graph, numel: tuple[int, int] | None = None,
            input_shape: Shape | None = None) -> VerifyReport:
    """Whether ``graph`` (a hand-written spec) describes ``model`` (the graph read from the
    model it claims to be), layer by layer; ``numel``: the model's own (parameters,
    buffers). The first layer that differs is the first failed per-layer check."""
    shape = input_shape or graph.input_shape
    ours = analyze(graph, "full", shape)
    theirs = analyze(replace(model, input_shape=shape), "full")
    mine, real = _weighted(ours), _weighted(theirs)
    checks = [_check("layers with weights", "", len(mine), len(real))]
    for i, row in enumerate(mine):
        other = real[i] if i < len(real) else None
        checks.append(Check("layer", row.path, _layer_view(row),
                            None if other is None else _layer_view(other),
                            other is not None and _same_layer(row, other)))
    checks.append(_check("output shape", "", ours.rows[-1].out_shape, theirs.rows[-1].out_shape))
    checks.append(_check("params (the model read)", "", ours.totals.params,
                         theirs.totals.params))
    checks.append(_check("buffers (the model read)", "", ours.totals.buffers,
                         theirs.totals.buffers))
    if numel is not None:
        checks.append(_check("params (torch numel)", "", ours.totals.params, numel[0]))
        checks.append(_check("buffers (BN running mean+var)", "", ours.totals.buffers, numel[1]))
    return VerifyReport(graph.name, shape, tuple(checks), (AGAINST_NOTE,))


def _weighted(report: Report) -> list[Row]:
    return [r for r in report.rows if r.params.trainable or r.params.buffers]


def _layer_view(row: Row) -> str:
    p = row.params
    return (f"{row.label} -> {fmt_shape(row.out_shape)}, {p.weights:,}w {p.biases:,}b"
            + (f" {p.buffers:,} buffers" if p.buffers else ""))


def _same_layer(a: Row, b: Row) -> bool:
    return (a.kind, a.out_shape, a.params) == (b.kind, b.out_shape, b.params)


def _shape_checks(report: Report, shapes: dict[str, Shape]) -> list[Check]:
    checks = [_check("output shape", r.path, r.out_shape, shapes.get(r.path))
              for r in report.rows]
    rows = {r.path for r in report.rows}
    return checks + [_check("output shape", p, None, s) for p, s in shapes.items()
                     if p not in rows]


def _param_checks(report: Report, torch_counts: tuple[int, int], params: ToolCount
                  ) -> list[Check]:
    totals = report.totals
    trainable, buffers = torch_counts
    return [_check("params (torch numel)", "", totals.params, trainable),
            _check("params (torchinfo total_params)", "", totals.params, params.total),
            _check("buffers (BN running mean+var)", "", totals.buffers, buffers),
            *_layer_checks("layer params (torchinfo)", report.rows, params,
                           lambda r: r.params.trainable)]


def _op_checks(reports: dict[str, Report], mult_adds: ToolCount, fvcore: ToolCount,
               flops: int) -> list[Check]:
    ti, fv = reports["torchinfo"], reports["fvcore"]
    return [_check("MACs (torchinfo total_mult_adds)", "", ti.totals.macs, mult_adds.total),
            _check("MACs (fvcore total)", "", fv.totals.macs, fvcore.total),
            _check("FLOPs (torch FlopCounterMode)", "", reports["flopcounter"].totals.flops,
                   flops),
            *_layer_checks("layer MACs (torchinfo)", ti.rows, mult_adds, lambda r: r.macs),
            *_layer_checks("layer MACs (fvcore)", fv.rows, fvcore, lambda r: r.macs)]


def _layer_checks(name: str, rows: tuple[Row, ...], counts: ToolCount,
                  value: Callable[[Row], int]) -> list[Check]:
    """Rows whose module is a leaf; containers' rows count only their join."""
    return [_check(name, r.path, value(r), counts.layers[r.path]) for r in rows
            if r.path in counts.layers]


def _rf_checks(report: Report, fields: dict[str, tuple[Box | None, Box | None]]
               ) -> list[Check]:
    checks: list[Check] = []
    if len(report.input_shape) == 1:
        return checks  # a vector model has no fields
    in_hw = extent(report.input_shape)
    for row in _fielded(report):
        assert row.rf is not None
        first, last = fields.get(row.path, (None, None))
        for name, unit, actual in (("RF first unit", None, first),
                                   ("RF last unit", extent(row.out_shape), last)):
            expected = ExpectedField.of(row.rf, in_hw, unit)
            checks.append(Check(name, row.path, expected, actual, expected.admits(actual)))
    return checks


def _fielded(report: Report) -> list[Row]:
    """Rows with a receptive field on a map (or a sequence) like the input's: those probed."""
    rank = len(report.input_shape)
    return [r for r in report.rows if r.rf is not None and len(r.out_shape) == rank > 1]


class ExpectedField(Record):
    """One unit's algebraic field [start, start+size-1] per axis, clipped to the input.

    An edge inside the input is exact: the corner taps of every layer reach it. A clipped
    edge is only an outer bound: dilation holes, or positions that exist only as padding in
    a later layer, can leave the pixels next to the border unreached (conv3 d=2 p=1 reaches
    pixels 1 and 3, not 0, of the field [-1, 3])."""

    box: Box | None  # None: the field lies wholly in the padding
    clipped: tuple[tuple[bool, bool], tuple[bool, bool]]

    @staticmethod
    def of(rf: RF, in_hw: tuple[int, ...], last_of: tuple[int, ...] | None = None
           ) -> ExpectedField:
        """The field of unit (0, 0), or of the last unit of a ``last_of`` (H, W) map."""
        axes, clipped = [], []
        for a in range(2):
            lo = rf.start[a] + ((last_of[a] - 1) * rf.stride[a] if last_of else 0)
            hi = lo + rf.size[a] - 1
            axes.append((max(lo, 0), min(hi, in_hw[a] - 1)))
            clipped.append((lo < 0, hi > in_hw[a] - 1))
        empty = any(lo > hi for lo, hi in axes)
        return ExpectedField(None if empty else (axes[0], axes[1]),
                             (clipped[0], clipped[1]))

    def admits(self, actual: Box | None) -> bool:
        """Whether the measured box fits. An empty measured field is admitted where the
        expected one is clipped: the unit may lie wholly in a later layer's padding (the
        border units of a ``pad`` row after a conv, Keras' ZeroPadding2D), which the
        field algebra, counting padding positions as units, cannot tell apart."""
        if actual is None:
            return self.box is None or any(any(axis) for axis in self.clipped)
        if self.box is None:
            return False
        for (lo, hi), (a_lo, a_hi), (c_lo, c_hi) in zip(self.box, actual, self.clipped,
                                                        strict=True):
            if not lo <= a_lo <= a_hi <= hi:
                return False
            if (a_lo != lo and not c_lo) or (a_hi != hi and not c_hi):
                return False
        return True

    def __str__(self) -> str:
        if self.box is None:
            return "-"
        (r0, r1), (c0, c1) = self.box
        (rc0, rc1), (cc0, cc1) = (("*" if c else "" for c in axis) for axis in self.clipped)
        return f"rows {r0}{rc0}-{r1}{rc1}, cols {c0}{cc0}-{c1}{cc1}"
