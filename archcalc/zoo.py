"""The model zoo: ``*.arch`` specs shipped in ``archcalc/zoo``, each citing its source.

A spec may declare ``variant NAME K=V ...`` lines; each variant is a zoo name of its own
(``vgg19`` is ``vgg.arch`` with its block sizes set). Listing reads headers only.
"""

from __future__ import annotations

import re
from dataclasses import replace
from functools import cache
from pathlib import Path

from archcalc.errors import SpecError, UnknownModelError
from archcalc.layers import Graph
from archcalc.records import Record
from archcalc.spec import parse_file

ZOO_DIR = Path(__file__).parent / "zoo"
_HEADER = re.compile(r"^\s*(model|variant|source)\s+(.*?)\s*(?:#.*)?$", re.M)


class ZooEntry(Record):
    name: str
    file: Path
    overrides: tuple[tuple[str, int], ...]
    source: str


@cache
def entries() -> tuple[ZooEntry, ...]:
    """Every zoo name: each spec's variants, or the spec's model name if it has none."""
    found: list[ZooEntry] = []
    for path in sorted(ZOO_DIR.glob("*.arch")):
        text = path.read_text(encoding="utf-8")
        model, source, variants = path.stem, "", []
        for kind, rest in _HEADER.findall(text):
            words = rest.split(";", 1)[0].split()  # the parser ends a statement at ';'
            if kind == "source":
                source = rest
            elif words and kind == "model":
                model = words[0]
            elif words:
                variants.append((words[0], tuple(_pair(p, path) for p in words[1:])))
        if not variants:
            variants = [(model, ())]
        found.extend(ZooEntry(name, path, overrides, source) for name, overrides in variants)
    return tuple(found)


def _pair(text: str, path: Path) -> tuple[str, int]:
    key, _, value = text.partition("=")
    if not re.fullmatch(r"-?[0-9]{1,18}", value):
        raise SpecError(f"{path}: variant parameter {text!r} must be NAME=INTEGER")
    return key, int(value)


def names() -> list[str]:
    return [e.name for e in entries()]


def _base_models() -> dict[str, Path]:
    bases = {}
    for path in sorted(ZOO_DIR.glob("*.arch")):
        m = re.search(r"^\s*model\s+(\S+)", path.read_text(encoding="utf-8"), re.M)
        bases[m.group(1) if m else path.stem] = path
    return bases


def load(name: str, **params: int) -> Graph:
    """A zoo model by name (``vgg19``, ``resnet44``...) or a path to a ``.arch`` file.

    ``params`` override the spec's ``param`` values (after the variant's own)."""
    for entry in entries():
        if entry.name == name:
            graph = parse_file(entry.file, {**dict(entry.overrides), **params})
            return _renamed(graph, name)
    bases = _base_models()
    if name in bases:
        return parse_file(bases[name], params)
    path = Path(name)
    if path.suffix == ".arch" or path.is_file():
        if not path.is_file():
            raise SpecError(f"spec file {name!r} does not exist")
        return parse_file(path, params)
    raise UnknownModelError(name, sorted({*names(), *bases}))


def _renamed(graph: Graph, name: str) -> Graph:
    return replace(graph, name=name)
