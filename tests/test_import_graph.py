"""The import graphs of both packages, read from their source: no cycles. trainers counts
every import (top-level, inside functions and under TYPE_CHECKING), and no module of a plugin
imports its entry module back (the entry module stays the one place that imports the others
lazily). archcalc counts the imports that run when a module loads: its lazy imports inside
functions (sympy, torch, a kind's torch module) run once everything is loaded, and are how
the start-up stays fast."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def modules(package: str) -> dict[str, tuple[Path, bool]]:
    found = {}
    for path in sorted((REPO / package).rglob("*.py")):
        parts = list(path.relative_to(REPO).with_suffix("").parts)
        package = parts[-1] == "__init__"
        found[".".join(parts[:-1] if package else parts)] = (path, package)
    return found


def import_graph(package: str = "trainers", at_load: bool = False) -> dict[str, set[str]]:
    """Module -> the package's modules it imports (``from pkg import sub`` imports
    ``pkg.sub``); ``at_load``: only the imports that run when the module loads."""
    mods = modules(package)
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for name, (path, is_package) in mods.items():
        here = name if is_package else name.rpartition(".")[0]
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in (_at_load(tree) if at_load else ast.walk(tree)):
            if isinstance(node, ast.Import):
                graph[name] |= {a.name for a in node.names if a.name in mods}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = here.split(".")[:len(here.split(".")) - node.level + 1]
                    base = ".".join([*up, base] if base else up)
                for alias in node.names:
                    target = f"{base}.{alias.name}"
                    graph[name].add(target if target in mods else base)
        graph[name] = {t for t in graph[name] if t in mods and t != name}
    return graph


def _at_load(tree: ast.Module) -> list[ast.AST]:
    """The statements that run when the module loads: the module body, less function and
    class bodies and ``if TYPE_CHECKING:`` blocks."""
    found: list[ast.AST] = []
    todo: list[ast.AST] = list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            continue
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            todo.extend(node.orelse)
            continue
        found.append(node)
        todo.extend(ast.iter_child_nodes(node))
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while (w := stack.pop()) != v:
                component.append(w)
            if component:
                found.append(sorted([v, *component]))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


@pytest.mark.parametrize(("package", "at_load", "edge"), [
    ("trainers", False, ("trainers.cli", "trainers.session")),
    ("archcalc", True, ("archcalc.analysis", "archcalc.kinds.base")),
])
def test_the_import_graph_has_no_cycles(package: str, at_load: bool,
                                        edge: tuple[str, str]) -> None:
    graph = import_graph(package, at_load)
    assert edge[1] in graph[edge[0]]  # the graph is really read
    assert cycles(graph) == []


def test_no_plugin_module_imports_its_entry_module() -> None:
    graph = import_graph()
    entries = {m for m in graph if m.startswith("trainers.plugins.") and m.count(".") == 2}
    back = [(m, t) for m, targets in graph.items() for t in targets
            if t in entries and m.startswith(t + ".")]
    assert back == []


def test_the_check_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
