"""A plain table (title, columns, rows, total, footer) and its writers.

Cells are text or whole numbers; human formats write numbers with thousands separators,
CSV and JSON keep them bare. ``Table`` renders itself in Rich via ``__rich__`` on a terminal;
``to_plain`` draws the same table without Rich when output is piped, so that path never
imports rich.console (a third of ``archcalc vgg19 --table``'s start-up otherwise).
"""

from __future__ import annotations

import csv
import io
import re
from typing import TYPE_CHECKING, Any, Literal

from archcalc.records import Record

if TYPE_CHECKING:
    from rich.console import RenderableType
    from rich.table import Table as RichTable

Cell = str | int
Align = Literal["left", "right", "center"]


class Column(Record):
    name: str
    align: Align = "right"
    wrap: bool = False  # text Rich may wrap on a narrow terminal; numbers never are


class Table(Record):
    title: str
    columns: tuple[Column, ...]
    rows: tuple[tuple[Cell, ...], ...]
    total: tuple[Cell, ...] | None = None
    footer: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()  # every format carries these

    @property
    def notes(self) -> tuple[str, ...]:
        """The footer, then each warning as a line of its own."""
        return (*self.footer, *(f"Warning: {w}" for w in self.warnings))

    @property
    def body(self) -> tuple[tuple[Cell, ...], ...]:
        """Rows followed by the total row, if any."""
        return (*self.rows, self.total) if self.total else self.rows

    def rich_table(self) -> RichTable:
        """The rows as a Rich table (without the footer)."""
        from rich.table import Table as RichTable
        from rich.text import Text

        table = RichTable(title=self.title, title_style="bold")
        for col in self.columns:
            table.add_column(col.name, justify=col.align, no_wrap=not col.wrap,
                             overflow="fold" if col.wrap else "ellipsis")  # nothing cut
        for row in self.rows:
            table.add_row(*(Text(human(c)) for c in row))
        if self.total:
            table.add_section()
            table.add_row(*(Text(human(c)) for c in self.total), style="bold")
        return table

    def __rich__(self) -> RenderableType:
        from rich.console import Group
        from rich.text import Text

        return Group(self.rich_table(), *(Text(line) for line in self.notes))

    def natural_width(self) -> int:
        """Columns needed to print the table without wrapping a cell (one-line cells, a
        space of padding either side, one border between and around columns)."""
        widths = [max([len(c.name), *(len(human(r[i])) for r in self.body)])
                  for i, c in enumerate(self.columns)]
        return sum(w + 3 for w in widths) + 1


def to_plain(table: Table) -> str:
    """The table drawn with box characters, no colour: what a pipe or a file gets."""
    cells = [[c.name for c in table.columns], *([human(c) for c in row] for row in table.body)]
    widths = [max(len(r[i]) for r in cells) for i in range(len(table.columns))]

    def rule(left: str, mid: str, right: str) -> str:
        return left + mid.join("─" * (w + 2) for w in widths) + right

    def line(row: list[str], align: bool = True) -> str:
        return "│ " + " │ ".join(
            _justify(t, w, c.align if align else "center")
            for t, w, c in zip(row, widths, table.columns, strict=True)) + " │"

    out = [table.title.center(len(rule("┌", "┬", "┐"))).rstrip(), rule("┌", "┬", "┐"),
           line(cells[0], align=False), rule("├", "┼", "┤")]
    out += [line(row) for row in cells[1:len(table.rows) + 1]]
    if table.total:
        out += [rule("├", "┼", "┤"), line(cells[-1])]
    out += [rule("└", "┴", "┘"), *table.notes]
    return "\n".join(out) + "\n"


def human(cell: Cell) -> str:
    return f"{cell:,}" if isinstance(cell, int) else cell


def to_markdown(table: Table) -> str:
    marks = {"left": ":--", "right": "--:", "center": ":-:"}
    lines = [f"**{_md(table.title)}**", ""]
    lines.append("| " + " | ".join(_md(c.name) for c in table.columns) + " |")
    lines.append("| " + " | ".join(marks[c.align] for c in table.columns) + " |")
    for row in table.rows:
        lines.append("| " + " | ".join(_md(human(c)) for c in row) + " |")
    if table.total:
        lines.append("| " + " | ".join(f"**{_md(human(c))}**" if human(c) else ""
                                       for c in table.total) + " |")
    if table.notes:
        lines.append("")
        lines.extend(f"- {_md(line)}" for line in table.notes)
    return "\n".join(lines) + "\n"


def _md(text: str) -> str:
    return re.sub(r"([\\*_|`\[\]<>])", r"\\\1", text.strip())


def to_csv(table: Table) -> str:
    """The rows; warnings follow as ``# Warning: ...`` lines (``comment='#'`` in pandas)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(c.name for c in table.columns)
    for row in table.body:
        writer.writerow(str(c) for c in row)
    for warning in table.warnings:
        out.write(f"# Warning: {' '.join(warning.split())}\n")
    return out.getvalue()


_LATEX = {"&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
          "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\\": r"\textbackslash{}",
          "<": r"\textless{}", ">": r"\textgreater{}", "|": r"\textbar{}",
          "\u00d7": r"\texttimes{}", "\u2212": r"\textminus{}", "\u2264": r"\ensuremath{\leq}",
          "\u2265": r"\ensuremath{\geq}", "\u2248": r"\ensuremath{\approx}",
          "\u2192": r"\ensuremath{\rightarrow}", "\u2026": r"\dots{}"}
# Pairs the Computer Modern fonts set as one glyph: an en dash, curly quotes, and the
# Spanish ligatures (and ---, an em dash, is two -- pairs).
_LIGATURES = frozenset({"--", "``", "''", "!`", "?`"})


def latex_escape(text: str) -> str:
    """``text`` as LaTeX prints it literally under the default font encoding (OT1): its
    special characters as commands (OT1 sets ``<``, ``>`` and ``|`` as ¡, ¿ and a dash, so
    ``->`` printed "-¿"), and ``{}`` between the pairs that would form a ligature (``--``
    is an en dash). The one escape every LaTeX writer of archcalc uses."""
    out: list[str] = []
    for i, ch in enumerate(text):
        out.append(_LATEX.get(ch, ch))
        if text[i:i + 2] in _LIGATURES:
            out.append("{}")
    return "".join(out)


def _tex(text: str) -> str:
    """A cell or line: escaped, and guarded so that after ``\\`` a leading ``[`` or ``*``
    is not read as the line break's argument."""
    escaped = latex_escape(text.strip())
    return "{}" + escaped if escaped.startswith(("[", "*")) else escaped


def to_latex(table: Table) -> str:
    spec = "|" + "|".join(c.align[0] for c in table.columns) + "|"
    lines = [r"\begin{table}[ht]", r"\centering", rf"\begin{{tabular}}{{{spec}}}", r"\hline",
             " & ".join(_tex(c.name) for c in table.columns) + r" \\", r"\hline"]
    lines.extend(" & ".join(_tex(human(c)) for c in row) + r" \\ \hline" for row in table.rows)
    if table.total:
        lines.append(r"\hline")
        lines.append(" & ".join(_tex(human(c)) for c in table.total) + r" \\ \hline")
    lines.append(r"\end{tabular}")
    lines.append(rf"\caption{{{_tex(table.title)}}}")
    if table.notes:
        lines.append(r"\par\footnotesize")
        lines.extend(_tex(line) + r"\\" for line in table.notes)
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"


def to_rst(table: Table) -> str:
    cells = [[c.name for c in table.columns], *([human(c) for c in row] for row in table.body)]
    widths = [max(len(r[i]) for r in cells) for i in range(len(table.columns))]

    def rule(ch: str) -> str:
        return "+" + "+".join(ch * (w + 2) for w in widths) + "+"

    def line(row: list[str]) -> str:
        return "| " + " | ".join(_justify(t, w, c.align)
                                 for t, w, c in zip(row, widths, table.columns, strict=True)) + " |"

    grid = [rule("-"), line(cells[0]), rule("=")]
    for row in cells[1:]:
        grid += [line(row), rule("-")]
    out = [f".. table:: {table.title}", "", *(f"   {g}" for g in grid)]
    if table.notes:
        out.append("")
        out.extend(f"- {line}" for line in table.notes)
    return "\n".join(out) + "\n"


def _justify(text: str, width: int, align: Align) -> str:
    if align == "right":
        return text.rjust(width)
    return text.center(width) if align == "center" else text.ljust(width)


def to_dict(table: Table) -> dict[str, Any]:
    """A generic table as JSON-ready data: title, columns, rows, total, footer."""
    return {"title": table.title, "columns": [c.name for c in table.columns],
            "rows": [list(r) for r in table.rows],
            "total": list(table.total) if table.total else None, "footer": list(table.footer),
            "warnings": list(table.warnings)}
