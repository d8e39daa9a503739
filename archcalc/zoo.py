"""The model zoo: ``*.arch`` specs shipped in ``archcalc/zoo``, each citing its source.

A spec may declare ``variant NAME K=V ...`` lines; each variant is a zoo name of its own
(``vgg19`` is ``vgg.arch`` with its block sizes set). Listing reads headers only.
"""

from __future__ import annotations

from dataclasses import replace
from functools import cache
from pathlib import Path

from archcalc.errors import SpecError, UnknownModelError
from archcalc.layers import Graph
from archcalc.records import Record
from archcalc.spec import Header, parse_file, read_header

ZOO_DIR = Path(__file__).parent / "zoo"


class ZooEntry(Record):
    name: str
    file: Path
    overrides: tuple[tuple[str, int], ...]
    source: str


@cache
def files() -> tuple[Path, ...]:
    return tuple(sorted(ZOO_DIR.glob("*.arch")))


@cache
def header(path: Path) -> Header:
    """A zoo file's header, read by the spec parser (the layers below are not read)."""
    return read_header(path)


def _entries_of(path: Path) -> tuple[ZooEntry, ...]:
    """A file's zoo names: its variants, or its model name if it has none."""
    found = header(path)
    variants = found.variants or ((found.model or path.stem, ()),)
    return tuple(ZooEntry(name, path, overrides, found.source) for name, overrides in variants)


@cache
def entries() -> tuple[ZooEntry, ...]:
    """Every zoo name, file by file."""
    return tuple(entry for path in files() for entry in _entries_of(path))


def names() -> list[str]:
    return [e.name for e in entries()]


def _base_name(path: Path) -> str:
    """The spec's own model name: ``vgg`` loads vgg.arch with its default parameters."""
    return header(path).model or path.stem


def load(name: str, **params: int) -> Graph:
    """A zoo model by name (``vgg19``, ``resnet44``...) or a path to a ``.arch`` file.

    ``params`` override the spec's ``param`` values (after the variant's own). Every name
    is in one file only (a test checks), so the files are searched most likely first (the
    longest common start of the name and the file's: vgg19 -> vgg.arch) and the search
    stops at the first that has it: one header read instead of the zoo's."""
    for path in sorted(files(), key=lambda p: -_shared_start(name, p.stem)):
        for entry in _entries_of(path):
            if entry.name == name:
                graph = parse_file(path, {**dict(entry.overrides), **params})
                return _renamed(graph, name)
        if _base_name(path) == name:
            return parse_file(path, params)
    path = Path(name)
    exists = _exists(path)
    if path.suffix == ".arch" or exists:
        if not exists:
            raise SpecError(f"spec file {name!r} does not exist")
        return parse_file(path, params)  # which says what a path that is no file is
    raise UnknownModelError(name, sorted({*names(), *map(_base_name, files())}))


def _exists(path: Path) -> bool:
    """Whether anything is at ``path``; a name too long for a path, or with a NUL, is not."""
    try:
        return path.exists()
    except (OSError, ValueError):
        return False


def _shared_start(a: str, b: str) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def _renamed(graph: Graph, name: str) -> Graph:
    return replace(graph, name=name)
