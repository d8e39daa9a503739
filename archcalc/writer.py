"""Graph -> spec text that parses back to the same numbers: ``archcalc to-spec``.

Each layer is written as its kind writes itself (:meth:`~archcalc.kinds.base.Kind.spec`),
less the options that parse back to the same layer (``conv3-64`` rather than ``conv3-64 s=1
p=1 d=1 bias=true g=1``); blocks get their braces and bodies; and where the graph repeats
itself, runs of identical statements are folded: one layer as ``relu x2``, anything longer
as ``repeat N { ... }`` (ResNet's stages of identical blocks).
"""

from __future__ import annotations

from functools import cache

from archcalc.algebra import fmt_shape
from archcalc.kinds import Block, From, Gate, Head, Keep, Kind, Residual
from archcalc.kinds.blocks import Parallel
from archcalc.layers import Graph, Seq

INDENT = "  "


def to_spec(graph: Graph) -> str:
    """The spec of ``graph``: its name, source, input and body."""
    lines = [f"model {_word(graph.name)}"]
    if graph.source:
        lines.append(f"source {graph.source}")
    lines.append(f"input {fmt_shape(graph.input_shape)}")
    lines += _sequence(graph.body)
    return "\n".join(lines) + "\n"


@cache
def written(layer: Kind) -> str:
    """``layer`` as a spec writes it, with only the options it needs."""
    words = layer.spec().split()
    for option in list(words[1:]):
        shorter = [w for w in words if w != option]
        if _parsed(" ".join(shorter)) == layer:
            words = shorter
    return " ".join(words)


def _parsed(text: str) -> Kind | None:
    from archcalc.errors import SpecError
    from archcalc.spec import parse

    try:
        return parse(f"input 1\n{text}\n", file="<writer>").body[0].layer
    except SpecError:
        return None


def _word(name: str) -> str:
    return "-".join(name.split()) or "model"


# -- statements ---------------------------------------------------------------------------
def _sequence(seq: Seq) -> list[str]:
    """The statements of ``seq``, runs of identical ones folded."""
    statements = [_statement(node.layer) for node in seq]
    lines: list[str] = []
    i = 0
    while i < len(statements):
        period, count = _longest_run(statements, i)
        run = statements[i:i + period]
        if count == 1:
            lines += run[0]
        elif period == 1 and len(run[0]) == 1 and not isinstance(seq[i].layer, Block):
            lines.append(f"{run[0][0]} x{count}")  # ``xN`` is a layer's; keep/from repeat
        else:
            lines.append(f"repeat {count} {{")
            lines += [INDENT + line for statement in run for line in statement]
            lines.append("}")
        i += period * count
    return lines


def _longest_run(statements: list[list[str]], start: int) -> tuple[int, int]:
    """(period, count) of the run of identical groups at ``start`` covering the most
    statements (count 1: none repeats)."""
    best = (1, 1)
    for period in range(1, (len(statements) - start) // 2 + 1):
        group = statements[start:start + period]
        count = 1
        while statements[start + count * period:start + (count + 1) * period] == group:
            count += 1
        if count > 1 and period * count > best[0] * best[1]:
            best = (period, count)
    return best


def _statement(layer: Kind) -> list[str]:
    """One statement's lines: a layer's one line, or a block's header, body and brace."""
    if not isinstance(layer, Block):
        return [written(layer)]
    header = layer.spec()
    if isinstance(layer, Keep | From):
        return [header]  # ``keep p``, ``from p``: a statement of one line, no body
    if isinstance(layer, Parallel):
        inner = []
        for branch in layer.branches:
            body = _sequence(branch)
            inner += ([f"branch {{ {body[0]} }}"] if len(body) == 1 and "{" not in body[0]
                      else ["branch { }"] if not body
                      else ["branch {", *(INDENT + line for line in body), "}"])
        return [f"{header} {{", *(INDENT + line for line in inner), "}"]
    if isinstance(layer, Residual | Gate | Head):
        return [f"{header} {{", *(INDENT + line for line in _sequence(layer.body)), "}"]
    raise TypeError(f"no writer for the block {layer.kind!r}")
