"""Sphinx directives that run archcalc while the docs build, so no page types a number.

``.. archcalc-table:: vgg19``         the homework's Table 1 form (options bias, input, set,
                                      dtype, batch, no-footer)
``.. archcalc-layers:: alexnet``      the full per-layer view (options input, set,
                                      convention, columns, dtype, batch, no-footer)
``.. archcalc-inception::``           naive vs dimension-reduction module (input, set)
``.. archcalc-rf:: 3 5``              receptive field of N stacked FxF convolutions as math,
                                      from archcalc.symbolic.rf_stack (stride, dilation)
``.. archcalc-zoo::``                 the zoo, as ``archcalc list`` prints it
``:archcalc:`vgg19:params```          one total in running text (params, weights, biases,
                                      buffers, macs, flops, activations; input, output
                                      shape; ``units``: the fully connected chain, e.g.
                                      3072-1000-1000-10; ``filters``: each convolution's
                                      output channels; or a spec parameter's value, e.g.
                                      ``inception-reduction:r3``); parameters after the model:
                                      ``mlp layers=2:params``

Every table comes from the same functions the CLI prints (archcalc.render), so a page can
never disagree with ``archcalc ... --format json``. A bad model name or option is a build
error that says which directive and why; ``sphinx-build -W`` turns it into a failed build.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective

from archcalc import service, zoo
from archcalc.analysis import Report
from archcalc.errors import ArchcalcError, SpecError, UsageError
from archcalc.render import homework_table, inception_table, layer_table
from archcalc.tabular import Cell, Table, human
from trainers.explain.values import archcalc_value as total_value  # hw3 explain's too


# -- archcalc calls: the same service as the command line ------------------------------
def _sets(options: dict[str, Any]) -> dict[str, int]:
    """``:set: depth=20 c1=64`` (spaces or commas between settings)."""
    text = (options.get("set") or "").strip()
    return service.parameters(re.split(r"[\s,]+", text) if text else (), ":set:")


def report_for(model: str, options: dict[str, Any], convention: str = "full") -> Report:
    return service.report(model, service.input_shape(options.get("input"), ":input:"),
                          _sets(options), convention)


def inception_reports(options: dict[str, Any]) -> tuple[Report, Report]:
    """Both modules with ``:set:`` applied to each module that declares the parameter."""
    return service.inception_reports(_sets(options),
                                     service.input_shape(options.get("input"), ":input:"),
                                     ":set:")


def select_columns(table: Table, names: str | None) -> Table:
    """``table`` with only the columns listed (comma-separated, as in the header)."""
    if not names:
        return table
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    known = [c.name for c in table.columns]
    missing = [n for n in wanted if n not in known]
    if missing:
        raise UsageError(f":columns: unknown column {missing[0]!r} (columns: {', '.join(known)})")
    keep = [known.index(n) for n in wanted]

    def pick(row: tuple[Cell, ...]) -> tuple[Cell, ...]:
        return tuple(row[i] for i in keep)

    return Table(table.title, tuple(table.columns[i] for i in keep),
                 tuple(pick(r) for r in table.rows), pick(table.total) if table.total else None,
                 table.footer, table.warnings)


# -- docutils nodes ------------------------------------------------------------------------
def _row(cells: list[str], aligns: list[str], strong: bool = False) -> nodes.row:
    row = nodes.row()
    for text, align in zip(cells, aligns, strict=True):
        entry = nodes.entry(classes=[f"ac-{align}"])
        para = nodes.paragraph()
        para += nodes.strong(text=text) if strong and text else nodes.Text(text)
        entry += para
        row += entry
    return row


def table_nodes(table: Table, footer: bool = True,
                classes: tuple[str, ...] = ("archcalc-table",)) -> list[nodes.Node]:
    """A :class:`archcalc.tabular.Table` as a docutils table (cells exactly as the CLI's
    JSON holds them, numbers with thousands separators) and its footer as a bullet list."""
    aligns = [c.align for c in table.columns]
    node = nodes.table(classes=list(classes))
    node += nodes.title(text=table.title)
    group = nodes.tgroup(cols=len(table.columns))
    node += group
    for i, column in enumerate(table.columns):  # widths matter to the text and LaTeX builders
        group += nodes.colspec(colwidth=max([len(column.name),
                                             *(len(human(r[i])) + 4 for r in table.body)]))
    head = nodes.thead()
    head += _row([c.name for c in table.columns], aligns)
    group += head
    body = nodes.tbody()
    for cells in table.rows:
        body += _row([human(c) for c in cells], aligns)
    if table.total:
        body += _row([human(c) for c in table.total], aligns, strong=True)
    group += body
    out: list[nodes.Node] = [node]
    if footer and table.notes:
        out.append(footer_nodes(table.notes))
    return out


def footer_nodes(lines: tuple[str, ...]) -> nodes.bullet_list:
    """Footer lines as a bullet list; an indented line is a sub-item of the one before."""
    notes = nodes.bullet_list(classes=["archcalc-footer"])
    for line in lines:
        item = nodes.list_item()
        item += nodes.paragraph(text=line.strip())
        parent = notes.children[-1] if len(notes) and line.startswith(" ") else None
        if parent is None:
            notes += item
            continue
        if not isinstance(parent.children[-1], nodes.bullet_list):
            parent += nodes.bullet_list()
        parent.children[-1] += item
    return notes


# -- directives ----------------------------------------------------------------------------
class _ArchcalcDirective(SphinxDirective):
    """Runs ``build``; archcalc's user errors become a located build error."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        try:
            return self.build()
        except (ArchcalcError, ValueError) as exc:
            text = exc.render() if isinstance(exc, SpecError) else str(exc)
            raise self.error(f"{self.name}: {text}") from None

    def build(self) -> list[nodes.Node]:
        raise NotImplementedError


class TableDirective(_ArchcalcDirective):
    """``.. archcalc-table:: MODEL``: the homework table (Table 1 of the assignment)."""

    required_arguments = 1
    option_spec: ClassVar[dict[str, Any]] = {
        "bias": directives.flag, "input": directives.unchanged, "set": directives.unchanged,
        "dtype": directives.unchanged, "batch": directives.positive_int,
        "no-footer": directives.flag}

    def build(self) -> list[nodes.Node]:
        report = report_for(self.arguments[0], self.options)
        table = homework_table(report, "bias" in self.options,
                               self.options.get("dtype", "float32"), self.options.get("batch", 1))
        return table_nodes(table, "no-footer" not in self.options)


class LayersDirective(_ArchcalcDirective):
    """``.. archcalc-layers:: MODEL``: every layer with shapes, counts and receptive field."""

    required_arguments = 1
    option_spec: ClassVar[dict[str, Any]] = {
        "input": directives.unchanged, "set": directives.unchanged,
        "convention": directives.unchanged, "columns": directives.unchanged,
        "dtype": directives.unchanged, "batch": directives.positive_int,
        "no-footer": directives.flag}

    def build(self) -> list[nodes.Node]:
        report = report_for(self.arguments[0], self.options,
                            self.options.get("convention", "full"))
        table = layer_table(report, self.options.get("dtype", "float32"),
                            self.options.get("batch", 1))
        return table_nodes(select_columns(table, self.options.get("columns")),
                           "no-footer" not in self.options)


class InceptionDirective(_ArchcalcDirective):
    """``.. archcalc-inception::``: both modules, branch by branch, and the saving."""

    option_spec: ClassVar[dict[str, Any]] = {
        "input": directives.unchanged, "set": directives.unchanged,
        "no-footer": directives.flag}

    def build(self) -> list[nodes.Node]:
        return table_nodes(inception_table(*inception_reports(self.options)),
                           "no-footer" not in self.options)


class RFDirective(_ArchcalcDirective):
    """``.. archcalc-rf:: N F``: the recurrence, its telescoped sum, the closed form and its
    value, each rendered from the sympy expressions of archcalc.symbolic.rf_stack."""

    required_arguments = 2
    option_spec: ClassVar[dict[str, Any]] = {
        "stride": directives.positive_int, "dilation": directives.positive_int}

    def build(self) -> list[nodes.Node]:
        try:
            layers, kernel = (int(a) for a in self.arguments)
        except ValueError:
            raise UsageError(f"expected two whole numbers N F, got {' '.join(self.arguments)}"
                             ) from None
        return rf_nodes(layers, kernel, self.options.get("stride", 1),
                        self.options.get("dilation", 1))


def rf_latex(layers: int, kernel: int, stride: int = 1, dilation: int = 1) -> list[str]:
    """The lines of the derivation as LaTeX: recurrence, sum = closed form, value."""
    import sympy as sp

    from archcalc.symbolic import F, N, rf_stack

    d = rf_stack(layers, kernel, stride=stride, dilation=dilation)
    r = d.recurrence.lhs.func
    step_var = d.recurrence.lhs.args[0] - 1  # the recurrence is stated for r(l + 1)
    step = sp.simplify(d.recurrence.rhs - r(step_var))
    telescoped = sp.Sum(step, (step_var, 0, N - 1))
    if sp.simplify(1 + telescoped.doit() - d.closed_form) != 0:  # the page must not lie
        raise AssertionError(f"rf_stack's closed form {d.closed_form} is not its sum")
    with sp.evaluate(False):
        substituted = d.closed_form.subs({N: layers, F: kernel})
    return [
        sp.latex(d.recurrence) + r",\qquad r(0) = 1",
        rf"r(N) = 1 + {sp.latex(telescoped)} = {sp.latex(d.closed_form)}",
        rf"r({layers})\big|_{{F={kernel}}} = {sp.latex(substituted, order='rev-lex')} "
        rf"= {d.value}",
    ]


def rf_nodes(layers: int, kernel: int, stride: int, dilation: int) -> list[nodes.Node]:
    from archcalc.symbolic import rf_stack

    value = rf_stack(layers, kernel, stride=stride, dilation=dilation).value
    out: list[nodes.Node] = []
    for tex in rf_latex(layers, kernel, stride, dilation):
        out.append(nodes.math_block(tex, tex, nowrap=False, number=None))
    out.append(nodes.paragraph(
        text=f"So {layers} stacked {kernel}x{kernel} convolutions (stride {stride}, dilation "
             f"{dilation}) see a {value}x{value} patch of their input: the receptive field of "
             f"one {value}x{value} convolution."))
    return out


class ZooDirective(_ArchcalcDirective):
    """``.. archcalc-zoo::``: every zoo name, its spec file, preset and source."""

    def build(self) -> list[nodes.Node]:
        from archcalc.tabular import Column

        rows = tuple((e.name, e.file.name, " ".join(f"{k}={v}" for k, v in e.overrides),
                      e.source) for e in zoo.entries())
        columns = (Column("Model", "left"), Column("Spec", "left"), Column("Preset", "left"),
                   Column("Source", "left"))
        return table_nodes(Table("archcalc zoo", columns, rows))


def archcalc_role(name: str, rawtext: str, text: str, lineno: int, inliner: Any,
                  options: dict[str, Any] | None = None,
                  content: list[str] | None = None) -> tuple[list[nodes.Node], list[Any]]:
    """``:archcalc:`MODEL [NAME=INT ...]:FIELD```: a model's total, computed at build time
    by the function ``hw3 explain`` uses for the same role in its terminal text."""
    try:
        value = total_value(text)
    except ArchcalcError as exc:
        msg = inliner.reporter.error(f":archcalc:`{text}`: {exc}", line=lineno)
        return [inliner.problematic(rawtext, rawtext, msg)], [msg]
    return [nodes.inline(rawtext, value, classes=["archcalc-value"])], []


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("archcalc-table", TableDirective)
    app.add_directive("archcalc-layers", LayersDirective)
    app.add_directive("archcalc-inception", InceptionDirective)
    app.add_directive("archcalc-rf", RFDirective)
    app.add_directive("archcalc-zoo", ZooDirective)
    app.add_role("archcalc", archcalc_role)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}

