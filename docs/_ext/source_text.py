"""Sphinx directives that take page text from the code itself, so the docs cannot drift.

``.. cli-help:: archcalc.cli:app``     every command of a Typer (or click) app, each in its own
   :prog: archcalc                     section with the exact ``--help`` a user sees when
                                       output is piped (hidden commands are left out)
``.. cli-run:: archcalc rf --layers 3 --kernel 5``   a command run in-process at build
                                       time, shown with its output (programs: conf.py's
                                       ``cli_programs``, name -> (app, argument router))
``.. module-docstring:: archcalc.spec``  a module's docstring parsed as reStructuredText
   :start-at: Grammar                    (optionally from the first line starting so)
``:code-value:`trainers.registry:RESERVED```  a module attribute's value in running text (a
                                       collection as its sorted items, each as code)

A command that fails (or whose ``--help`` fails (a plugin that does not load, say) fails the build.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Iterator
from typing import Any, ClassVar

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective

WIDTH = 88  # columns of the rendered help, as in a terminal of that width


def import_object(path: str) -> Any:
    """``package.module:attribute`` -> the object."""
    module_name, _, attr = path.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, attr) if attr else module


def commands(app: Any, prog: str) -> Iterator[tuple[list[str], Any]]:
    """Every (path, command) of ``app``, root first, depth first, in listing order."""
    import typer

    root = typer.main.get_command(app) if isinstance(app, typer.Typer) else app

    def walk(cmd: Any, path: list[str], parent: Any) -> Iterator[tuple[list[str], Any]]:
        yield path, cmd
        if not hasattr(cmd, "list_commands"):
            return
        ctx = cmd.context_class(cmd, info_name=path[-1] if path else prog, parent=parent)
        for name in cmd.list_commands(ctx):
            sub = cmd.get_command(ctx, name)
            if sub is not None and not getattr(sub, "hidden", False):
                yield from walk(sub, [*path, name], ctx)

    yield from walk(root, [], None)


def invoke(app: Any, prog: str, args: list[str]) -> str:
    """``PROG ARGS...`` as printed to a pipe ``WIDTH`` columns wide, without colour;
    RuntimeError if it exits non-zero."""
    from typer.testing import CliRunner

    result = CliRunner().invoke(app, args, prog_name=prog, color=False,
                                env={"COLUMNS": str(WIDTH), "NO_COLOR": "1", "TERM": "dumb"},
                                terminal_width=WIDTH, catch_exceptions=True)
    if result.exit_code != 0:
        detail = result.output.strip() or repr(result.exception)
        raise RuntimeError(f"`{' '.join([prog, *args])}` exited {result.exit_code}: {detail}")
    return "\n".join(line.rstrip() for line in result.output.strip("\n").splitlines())


def help_text(app: Any, prog: str, path: list[str]) -> str:
    """``PROG PATH... --help`` as a user sees it in a pipe."""
    return invoke(app, prog, [*path, "--help"])


class CliHelp(SphinxDirective):
    """``.. cli-help:: MODULE:APP`` with ``:prog:``: one section per command."""

    required_arguments = 1
    option_spec: ClassVar[dict[str, Any]] = {"prog": directives.unchanged_required}

    def run(self) -> list[nodes.Node]:
        prog = self.options.get("prog") or self.arguments[0].split(".")[0]
        try:
            app = import_object(self.arguments[0])
            self.env.note_dependency(inspect.getsourcefile(importlib.import_module(
                self.arguments[0].partition(":")[0])) or "")
            found = [(path, help_text(app, prog, path)) for path, _ in commands(app, prog)]
        except Exception as exc:  # any failure here is a docs build failure, with its cause
            raise self.error(f"cli-help {self.arguments[0]}: {type(exc).__name__}: {exc}"
                             ) from None
        out: list[nodes.Node] = []
        for path, text in found:
            title = " ".join([prog, *path])
            section = nodes.section(ids=[nodes.make_id(f"cli-{title}")],
                                    names=[nodes.fully_normalize_name(title)])
            section += nodes.title(text=title)
            # text, not the default Python lexer (which bolds "for" and opens a string at
            # every apostrophe of the help)
            section += nodes.literal_block(text, text, language="text", classes=["cli-help"])
            self.state.document.note_implicit_target(section)
            out.append(section)
        return out


class CliRun(SphinxDirective):
    """``.. cli-run:: PROG ARGS...``: the command and its output, as a console block."""

    required_arguments = 1
    final_argument_whitespace = True

    def run(self) -> list[nodes.Node]:
        import shlex

        prog, *args = shlex.split(self.arguments[0])
        programs: dict[str, tuple[str, str | None]] = self.config.cli_programs
        if prog not in programs:
            raise self.error(f"cli-run: unknown program {prog!r} (conf.py cli_programs: "
                             f"{', '.join(programs)})")
        app_path, router = programs[prog]
        try:
            app = import_object(app_path)
            argv = import_object(router)(args) if router else args
            output = invoke(app, prog, list(argv))
        except Exception as exc:  # any failure here is a docs build failure, with its cause
            raise self.error(f"cli-run: {type(exc).__name__}: {exc}") from None
        text = f"$ {self.arguments[0]}\n{output}"
        return [nodes.literal_block(text, text, language="console", classes=["cli-run"])]


class ModuleDocstring(SphinxDirective):
    """``.. module-docstring:: MODULE``: the docstring as page text."""

    required_arguments = 1
    option_spec: ClassVar[dict[str, Any]] = {"start-at": directives.unchanged_required}

    def run(self) -> list[nodes.Node]:
        try:
            module = import_object(self.arguments[0])
        except ImportError as exc:
            raise self.error(f"module-docstring: cannot import {self.arguments[0]}: {exc}"
                             ) from None
        text = inspect.getdoc(module) or ""
        if not text:
            raise self.error(f"module-docstring: {self.arguments[0]} has no docstring")
        start = self.options.get("start-at")
        if start:
            lines = text.splitlines()
            at = next((i for i, line in enumerate(lines) if line.startswith(start)), None)
            if at is None:
                raise self.error(f"module-docstring: no line of {self.arguments[0]}'s "
                                 f"docstring starts with {start!r}")
            text = "\n".join(lines[at:])
        if source := inspect.getsourcefile(module):
            self.env.note_dependency(source)
        return self.parse_text_to_nodes(text)


def code_value_role(name: str, rawtext: str, text: str, lineno: int, inliner: Any,
                    options: dict[str, Any] | None = None,
                    content: list[str] | None = None) -> tuple[list[nodes.Node], list[Any]]:
    """``:code-value:`module:attribute```: the attribute's value, read at build time."""
    try:
        value = import_object(text)
    except (ImportError, AttributeError) as exc:
        msg = inliner.reporter.error(f":code-value:`{text}`: {exc}", line=lineno)
        return [inliner.problematic(rawtext, rawtext, msg)], [msg]
    if isinstance(value, set | frozenset | list | tuple):
        items = sorted(value) if isinstance(value, set | frozenset) else list(value)
        out: list[nodes.Node] = []
        for i, item in enumerate(items):
            out += [nodes.Text(", ")] if i else []
            out.append(nodes.literal(str(item), str(item)))
        return out, []
    return [nodes.Text(str(value))], []


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("cli-help", CliHelp)
    app.add_directive("cli-run", CliRun)
    app.add_directive("module-docstring", ModuleDocstring)
    app.add_role("code-value", code_value_role)
    app.add_config_value("cli_programs", {}, "env")
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
