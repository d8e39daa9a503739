"""Report -> the homework table or the full per-layer view, as rich | md | csv | json | latex | rst.

``homework_table`` is Table 1 of the assignment: Layer | Number of Activations (Memory) |
Parameters (Compute), one row per layer that allocates a tensor, an Input row and a TOTAL
row equal to the column sums. ``layer_table`` is every row of the report with shapes,
counts and receptive fields. Both return a :class:`~archcalc.tabular.Table`, which renders
itself in Rich and is written to text by :func:`render`.

JSON of the full view (``report_dict``; keys are only ever added, never changed)::

    {"schema_version": 1, "model": str, "input": [C, H, W] | [C, L] | [N], "convention": str,
     "layers": [{"name": label as written, "path": unique, "kind": str,
                 "output_shape": [C, H, W] | [C, L] | [N], "activations": int, "inplace": bool,
                 "weights": int, "biases": int, "params": weights + biases, "buffers": int,
                 "macs": int, "flops": int,
                 "rf": {"size": [h, w], "stride": [h, w], "padding": [h, w],
                        "center": [h, w]} ([l] each for a sequence model) | null,
                 "head": "main" | the name of the ``head`` block the layer is in}],
     "warnings": [str],
     "heads": {"main": totals, NAME: totals, ...} (empty for a single output),
     "totals": {"activations", "weights", "biases", "params", "buffers", "macs", "flops"}}

``totals.activations`` is the input's elements plus the ``activations`` of every layer
whose ``inplace`` is false; ``rf`` is null for vector-input models and from a layer that
enlarges the map on (the report's warnings say where).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable
from io import StringIO
from typing import TYPE_CHECKING, Any

from archcalc.algebra import RF, fmt_shape
from archcalc.analysis import Memory, Report, Row, Totals
from archcalc.errors import UsageError
from archcalc.layers import Shape
from archcalc.records import Record
from archcalc.schema import SCHEMA_VERSION, envelope
from archcalc.tabular import (
    Column,
    Table,
    to_csv,
    to_dict,
    to_latex,
    to_markdown,
    to_plain,
    to_rst,
)

if TYPE_CHECKING:
    from fractions import Fraction

    from rich.console import RenderableType

DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "float64": 8}


def abbrev(n: int) -> str:
    """Two significant digits with K/M/G/T: 150528 -> 150K, 3211264 -> 3.2M, 4096 -> 4.1K."""
    if n < 1000:
        return str(n)
    rounded = float(f"{n:.2g}")
    for unit, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if rounded >= scale:
            value = rounded / scale
            return (f"{value:.0f}" if value >= 10 else f"{value:.1f}") + unit
    raise AssertionError(n)  # unreachable: n >= 1000


def dtype_bytes(dtype: str) -> int:
    try:
        return DTYPE_BYTES[dtype]
    except KeyError:
        known = ", ".join(DTYPE_BYTES)
        raise UsageError(f"unknown dtype {dtype!r} (choose from {known})") from None


def fmt_bytes(n: int) -> str:
    return f"{n:,} B ({n / 2**20:,.1f} MiB)"


# -- the homework table -------------------------------------------------------------------
def table_label(row: Row) -> str:
    """Paper notation in capitals, as the assignment writes it: CONV3-64, POOL2, FC-4096,
    followed by the options as written."""
    return "  " * row.depth + " ".join((row.title, *row.options))


def memory_cell(shape: Shape) -> str:
    """``224*224*64=3.2M`` for feature maps (H*W*C), the bare count for vectors."""
    n = math.prod(shape)
    if len(shape) == 3:
        c, h, w = shape
        return f"{h}*{w}*{c}={abbrev(n)}"
    return str(n)


def params_cell(row: Row, bias: bool) -> str:
    """``(3*3*3)*64 = 1,728``; with biases ``(3*3*3)*64 + 64 = 1,792``; ``0`` without any."""
    weights = row.params.weights
    biases = row.params.biases if bias else 0
    total = weights + biases
    if total == 0:
        return "0"
    terms = []
    if weights:
        terms.append(str(row.formula) if row.formula is not None else str(weights))
    if biases:
        terms.append(str(biases))
    text = " + ".join(terms)
    return f"{total:,}" if text == str(total) else f"{text} = {total:,}"


def _listed(row: Row) -> bool:
    """The homework's rows: layers with weights, and the allocations it lists (conv, pool,
    FC and joins); an activation's output (soft-max) is named in the footer instead."""
    return row.params.trainable > 0 or (row.homework_row and not row.inplace)


def homework_table(report: Report, bias: bool = False, dtype: str = "float32",
                   batch: int = 1) -> Table:
    """Table 1 of the assignment: memory and weights per layer that allocates a tensor."""
    rows: list[tuple[str, ...]] = [("Input", memory_cell(report.input_shape), "0")]
    acts, params = report.input_elements, 0
    for row in filter(_listed, report.rows):
        rows.append((table_label(row), memory_cell(row.out_shape), params_cell(row, bias)))
        acts += math.prod(row.out_shape)
        params += row.params.weights + (row.params.biases if bias else 0)
    nested = any(r.depth for r in report.rows)  # indented labels read better flush left
    # A long layer label (NASNet's ZEROPAD((0,1),(0,1)) t=0 b=1 l=0 r=1) wraps at its spaces
    # on a narrow terminal; the numbers never do.
    columns = (Column("Layer", "left" if nested else "center", wrap=True),
               Column("Number of Activations (Memory)", "center"),
               Column("Parameters (Compute)", "center"))
    total = ("TOTAL", f"{acts:,}={abbrev(acts)}", f"{params:,}")
    title = f"{report.model} memory and weights (input {fmt_shape(report.input_shape)})"
    return Table(title, columns, tuple(rows), total,
                 _homework_footer(report, bias, acts, params, dtype, batch), report.warnings)


def _homework_footer(report: Report, bias: bool, acts: int, params: int, dtype: str,
                     batch: int) -> tuple[str, ...]:
    unlisted = [r for r in report.rows if not _listed(r)]
    named = sum(r.kind in ("keep", "from") for r in unlisted)  # statements, not layers
    unlisted = [r for r in unlisted if r.kind not in ("keep", "from")]
    in_place = Counter(r.label for r in unlisted if r.inplace)
    allocating = Counter(r.label for r in unlisted if not r.inplace)
    extra = sum(r.activations for r in unlisted if not r.inplace)
    size = dtype_bytes(dtype)
    per = "per image" if batch == 1 else f"per batch of {batch}"
    lines = []
    if in_place:
        listed = ", ".join(f"{label} x{n}" for label, n in in_place.items())
        lines.append(f"Not listed: layers that allocate no new tensor (run in place or as a "
                     f"view): {listed}.")
    if allocating:
        listed = ", ".join(f"{label} x{n}" for label, n in allocating.items())
        lines.append(f"Not listed, as the assignment's table lists no activation outputs: "
                     f"{listed}, allocating {extra:,} more activations (not in the TOTAL).")
    if named:
        lines.append(f"Not listed: {named} keep/from statements (named tensors: no layer, "
                     "no new tensor).")
    lines += heads_line(report)
    lines += _counting_lines(report, bias)
    lines.append(f"Memory {per}, {dtype} ({size} B per number): activations "
                 f"{acts:,} x {size} B{f' x {batch}' if batch > 1 else ''} = "
                 f"{fmt_bytes(acts * size * batch)}; parameters {params:,} x {size} B = "
                 f"{fmt_bytes(params * size)}.")
    return tuple(lines)


class Question(Record):
    """What a homework question counts of a zoo model: the footer states whether the table
    follows it, and which of the zoo's variants the model is."""

    asks: str  # what the question counts, as a clause
    biases: bool  # whether it counts biases
    variant: str = ""  # which variant this is, when the zoo has others for the question


_ALEXNET = "Problem 3.1 counts all of AlexNet's parameters"
QUESTIONS = {  # Problem 3 of the assignment: 3.1 AlexNet (all parameters), 3.2 VGG19
    "vgg19": Question("the assignment's VGG19 table (3.2) counts weights only", biases=False),
    "alexnet": Question(_ALEXNET, biases=True, variant=(
        "alexnet is the paper's two-GPU model (g=2: conv2, conv4 and conv5 see half the "
        "maps); alexnet-ungrouped is the one-tower variant many answer keys use.")),
    "alexnet-ungrouped": Question(_ALEXNET, biases=True, variant=(
        "alexnet-ungrouped is the one-tower variant (every kernel sees all maps) many "
        "answer keys use; alexnet is the paper's two-GPU model.")),
}


def _counting_lines(report: Report, bias: bool) -> list[str]:
    """What the parameter column counts, and whether that is what the homework's question
    on this model counts (VGG19's table: weights only; AlexNet's total: biases too)."""
    question = QUESTIONS.get(report.model)
    biases = sum(r.params.biases for r in report.rows)
    adds = f"--bias adds the {biases:,} biases"
    if question is None:
        rule = "Parameters include biases." if bias else f"Parameters count weights only; {adds}."
    elif bias:
        rule = (f"Parameters include biases, as {question.asks}." if question.biases else
                f"Parameters include biases; {question.asks}: leave out --bias.")
    else:
        rule = (f"Parameters count weights only; {question.asks}: {adds}." if question.biases
                else f"Parameters count weights only, as the assignment asks; {adds}.")
    return [question.variant, rule] if question and question.variant else [rule]


# -- the full per-layer view --------------------------------------------------------------
def _pair(values: tuple[Any, Any]) -> str:
    text = [_num(v) for v in values]
    return text[0] if text[0] == text[1] else f"{text[0]}x{text[1]}"


def _num(value: int | Fraction) -> str:
    return str(int(value)) if value == int(value) else str(float(value))


def _rf_axes(report: Report) -> int:
    """Axes a field has: 2 on a map, 1 on a sequence (the column the field algebra uses)."""
    return 1 if len(report.input_shape) == 2 else 2


def _rf_cells(rf: RF | None, axes: int) -> tuple[str, ...]:
    if rf is None:
        return ("", "", "", "")
    values = (rf.size, rf.stride, rf.padding, rf.center)
    if axes == 1:
        return tuple(_num(v[0]) for v in values)
    return tuple(_pair(v) for v in values)


LAYER_COLUMNS = (
    Column("Path", "left"), Column("Layer", "left"), Column("Output"), Column("Activations"),
    Column("Weights"), Column("Biases"), Column("Params"), Column("Buffers"), Column("MACs"),
    Column("FLOPs"), Column("RF"), Column("RF stride"), Column("RF pad"), Column("RF center"),
)


def layer_table(report: Report, dtype: str = "float32", batch: int = 1) -> Table:
    """Every row of the report, an Input row, totals, and a footer on convention and memory."""
    rows: list[tuple[str | int, ...]] = [
        ("", "input", fmt_shape(report.input_shape), report.input_elements,
         0, 0, 0, 0, 0, 0, "", "", "", "")]
    axes = _rf_axes(report)
    for r in report.rows:
        p = r.params
        rows.append((r.path, "  " * r.depth + r.label, fmt_shape(r.out_shape),
                     "in place" if r.inplace else r.activations, p.weights, p.biases,
                     p.trainable, p.buffers, r.macs, r.flops, *_rf_cells(r.rf, axes)))
    t = report.totals
    total = ("", "TOTAL", "", t.activations, t.weights, t.biases, t.params, t.buffers, t.macs,
             t.flops, "", "", "", "")
    title = (f"{report.model}: input {fmt_shape(report.input_shape)}, "
             f"convention {report.convention.name}")
    return Table(title, LAYER_COLUMNS, tuple(rows), total,
                 _layer_footer(report, dtype, batch), report.warnings)


def heads_line(report: Report) -> list[str]:
    """Per-output totals of a model with ``head`` blocks; none for a single output."""
    heads = report.heads
    if not heads:
        return []
    parts = "; ".join(f"{name} {h.params:,} params, {h.macs:,} MACs, {h.flops:,} FLOPs"
                      for name, h in heads.items())
    return [f"Outputs: {parts} (TOTAL is the whole model)."]


def _layer_footer(report: Report, dtype: str, batch: int) -> tuple[str, ...]:
    size = dtype_bytes(dtype)
    lines = [f"Convention {report.convention.name}: {report.convention.summary}.",
             "Activations: elements each layer allocates; 'in place' layers reuse their "
             "input's memory. RF: receptive field size, effective stride, padding and the "
             "centre of the first output unit's field, in input pixels.",
             *heads_line(report)]
    infer = report.inference_memory(batch, size)
    train = report.training_memory(batch, size)
    lines.append(f"Inference memory (batch {batch}, {dtype}): {fmt_bytes(infer.total)} = "
                 f"{_parts(infer)}; activations are the peak of tensors alive at once "
                 f"during the forward pass ({report.peak_live:,} elements per sample, "
                 "input included).")
    stored = Counter(r.kind for r in report.rows if r.stored)
    kinds = ", ".join(f"{kind} {n}" for kind, n in stored.items())
    lines.append(f"Training memory (batch {batch}, {dtype}, Adam): {fmt_bytes(train.total)} "
                 f"= {_parts(train)}; activations are those kept for the backward pass: the "
                 f"input and the outputs of {sum(stored.values())} layers ({kinds}); "
                 "in-place layers add none.")
    return tuple(lines)


def _parts(mem: Memory) -> str:
    parts = [("weights", mem.weights), ("buffers", mem.buffers),
             ("gradients", mem.gradients), ("optimizer state", mem.optimizer),
             ("activations", mem.activations)]
    return " + ".join(f"{name} {n:,}" for name, n in parts if n)


# -- inception modules side by side -------------------------------------------------------
def _branches(report: Report) -> list[list[Row]]:
    """Rows of each branch of the report's first top-level concat."""
    join = next((r for r in report.rows if r.kind == "concat" and r.depth == 0), None)
    if join is None:
        raise UsageError(f"{report.model} has no top-level concat to compare branches of")
    found: dict[str, list[Row]] = {}
    for row in report.rows:
        rest = row.path.removeprefix(f"{join.path}.b")
        if rest != row.path:
            found.setdefault(rest.split(".")[0], []).append(row)
    return [found[k] for k in sorted(found, key=int)]


def _branch_cells(rows: list[Row]) -> tuple[str, int]:
    layers = " -> ".join(r.label for r in rows if r.kind != "act") or "-"
    return layers, sum(r.macs for r in rows)


def _mac_formula(row: Row) -> str:
    _, h, w = row.out_shape
    return f"{h}*{w}*{row.formula} = {row.macs:,}"


def inception_table(naive: Report, reduced: Report) -> Table:
    """Two inception modules side by side: branches, MACs, output after concatenation."""
    pairs = (_branches(naive), _branches(reduced))
    rows: list[tuple[str | int, ...]] = []
    for i in range(max(len(b) for b in pairs)):
        cells: list[str | int] = [str(i + 1)]
        for branches in pairs:
            cells += _branch_cells(branches[i]) if i < len(branches) else ("", "")
        rows.append(tuple(cells))
    joined = [next(r for r in rep.rows if r.kind == "concat" and r.depth == 0)
              for rep in (naive, reduced)]
    rows.append(("output after concat", fmt_shape(joined[0].out_shape), "",
                 fmt_shape(joined[1].out_shape), ""))
    macs = (naive.totals.macs, reduced.totals.macs)
    # short headers, the models named in the title: at 80 columns the layer columns wrap
    # and no number is cut
    columns = (Column("Branch", "left", wrap=True), Column("naive", "left", wrap=True),
               Column("MACs"), Column("reduction", "left", wrap=True), Column("MACs"))
    title = (f"Inception modules on {fmt_shape(naive.input_shape)} input: naive "
             f"({naive.model}) and reduction ({reduced.model})")
    return Table(title, columns, tuple(rows), ("TOTAL", "", macs[0], "", macs[1]),
                 _inception_footer(naive, reduced, macs))


def _inception_footer(naive: Report, reduced: Report, macs: tuple[int, int]) -> tuple[str, ...]:
    lines = ["MACs: multiply-accumulates of the convolutions, H_out*W_out*(k*k*C_in)*C_out "
             "(pooling and ReLU add comparisons, not MACs):"]
    for rep in (naive, reduced):
        lines += [f"  {rep.model} {r.path} {r.label}: {_mac_formula(r)}"
                  for r in rep.rows if r.kind == "conv"]
    if macs[1]:
        lines.append(f"Saving: {macs[0]:,} / {macs[1]:,} = {macs[0] / macs[1]:.2f}x fewer MACs "
                     f"with dimension reductions ({1 - macs[1] / macs[0]:.0%} less compute).")
    return tuple(lines)


def inception_dict(naive: Report, reduced: Report) -> dict[str, Any]:
    """``archcalc inception --format json``: the table's keys (title, columns, rows, total,
    footer), then each module's branches, output and MACs, and the saving, as numbers."""
    table = inception_table(naive, reduced)
    modules = {}
    for rep in (naive, reduced):
        join = next(r for r in rep.rows if r.kind == "concat" and r.depth == 0)
        modules[rep.model] = {
            "input": list(rep.input_shape), "output": list(join.out_shape),
            "macs": rep.totals.macs, "params": rep.totals.params,
            "branches": [{"layers": [r.label for r in rows if r.kind != "act"],
                          "macs": sum(r.macs for r in rows)} for rows in _branches(rep)]}
    macs = (naive.totals.macs, reduced.totals.macs)
    saving = {"ratio": macs[0] / macs[1], "fraction": 1 - macs[1] / macs[0]} if macs[1] else None
    data = {k: v for k, v in to_dict(table).items() if k != "warnings"}
    return envelope({**data, "modules": modules, "saving": saving},
                    (*naive.warnings, *reduced.warnings))


# -- JSON -------------------------------------------------------------------------------
def _rf_dict(rf: RF | None, axes: int) -> dict[str, list[int | float]] | None:
    if rf is None:
        return None
    return {"size": list(rf.size[:axes]), "stride": list(rf.stride[:axes]),
            "padding": list(rf.padding[:axes]), "center": [float(c) for c in rf.center[:axes]]}


def _layer_dict(row: Row, axes: int) -> dict[str, Any]:
    return {"name": row.label, "path": row.path, "kind": row.kind,
            "output_shape": list(row.out_shape), "activations": row.activations,
            "inplace": row.inplace, "weights": row.params.weights,
            "biases": row.params.biases, "params": row.params.trainable,
            "buffers": row.params.buffers, "macs": row.macs, "flops": row.flops,
            "rf": _rf_dict(row.rf, axes), "head": row.head or "main"}


def _totals_dict(t: Totals) -> dict[str, int]:
    return {"activations": t.activations, "weights": t.weights, "biases": t.biases,
            "params": t.params, "buffers": t.buffers, "macs": t.macs, "flops": t.flops}


def report_dict(report: Report) -> dict[str, Any]:
    """The documented JSON schema of the full view (see the module docstring)."""
    t = report.totals
    return {"schema_version": SCHEMA_VERSION, "model": report.model,
            "input": list(report.input_shape), "convention": report.convention.name,
            "layers": [_layer_dict(r, _rf_axes(report)) for r in report.rows],
            "warnings": list(report.warnings),
            "heads": {name: _totals_dict(h) for name, h in report.heads.items()},
            "totals": _totals_dict(t)}


# -- output -----------------------------------------------------------------------------
def dumps(data: dict[str, Any]) -> str:
    """JSON with two-space indents and lists of numbers on one line."""
    import json  # only --format json needs it; the table path stays lean

    text = json.dumps(data, indent=2)
    return re.sub(r"\[\s*(-?[\d.]+(?:,\s*-?[\d.]+)*)\s*\]",
                  lambda m: "[" + re.sub(r",\s*", ", ", m.group(1)) + "]", text) + "\n"


Writer = Callable[[Table, "dict[str, Any] | None"], str]

# The one list of output formats: the CLI's --format choices and the docs read it.
WRITERS: dict[str, Writer] = {
    "rich": lambda table, _: to_plain(table),  # a terminal gets Rich itself (cli.emit)
    "md": lambda table, _: to_markdown(table),
    "csv": lambda table, _: to_csv(table),
    "json": lambda table, data: dumps(data if data is not None else to_dict(table)),
    "latex": lambda table, _: to_latex(table),
    "rst": lambda table, _: to_rst(table),
}
FORMATS: tuple[str, ...] = tuple(WRITERS)


def render(table: Table, fmt: str, data: dict[str, Any] | None = None) -> str:
    """``table`` as text in ``fmt``; JSON writes ``data`` when given, else the table."""
    writer = WRITERS.get(fmt)
    if writer is None:
        raise UsageError(f"unknown format {fmt!r} (choose from {', '.join(FORMATS)})")
    return writer(table, data)


def to_text(renderable: RenderableType, width: int | None = None) -> str:
    """Rich output without colour, as it appears when piped; a Table at its natural width
    (at least 80 columns) unless ``width`` is given."""
    from rich.console import Console

    if width is None:
        width = max(80, renderable.natural_width()) if isinstance(renderable, Table) else 80
    buffer = StringIO()
    Console(file=buffer, width=width, color_system=None, force_terminal=False,
            legacy_windows=False).print(renderable)
    return "\n".join(line.rstrip() for line in buffer.getvalue().splitlines()) + "\n"
