"""The graph a spec describes: nodes (a layer as written, where it was written) in sequences.

The layer kinds themselves, with their rules, are in :mod:`archcalc.kinds`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from archcalc.errors import Loc
from archcalc.records import Record

if TYPE_CHECKING:
    from archcalc.kinds.base import Kind

Pair = tuple[int, int]
Shape = tuple[int, ...]  # (C, H, W) for feature maps, (N,) for vectors


class Node(Record):
    """One layer as written: ``path`` is unique in the graph, ``label`` is the notation
    (name and options as written, parameters substituted), ``options`` its OPTION=VALUE
    words alone; ``title`` replaces the kind's homework-table name (a shortcut's layers)."""

    layer: Kind
    label: str
    path: str
    loc: Loc
    options: tuple[str, ...] = ()
    title: str = ""


Seq = tuple[Node, ...]


class Graph(Record):
    name: str
    input_shape: Shape
    body: Seq
    source: str = ""
    params: tuple[tuple[str, int], ...] = ()
    file: str = "<spec>"


def walk(seq: Seq) -> Iterator[Node]:
    """Every node in order, containers before their contents."""
    for node in seq:
        yield node
        for inner in node.layer.sequences():
            yield from walk(inner)
