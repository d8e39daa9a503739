"""Sphinx directives that show hw3's settings and stored results, never typed-in numbers.

``.. hw3-results:: optimizers``   what ``hw3 report RUN --to docs`` copied to
   :run: hw3 run optimizers       docs/results/optimizers/ (summary.md with its provenance
                                  header, and plots); without it, a note that no stored run
                                  exists and the commands that make one (``:run:`` sets the
                                  first)
``.. hw3-settings:: optimizers``  a plugin's settings as ``hw3 run`` resolves them: config
   :keys: adam_*, epochs          dataclass defaults (overridden where plugins.toml says),
                                  with each field's help and source

``:protocol:`scaling:batch_size```  one setting's value in running text, as ``hw3 run``
                                  resolves it (``256``; a whole number of five digits or more
                                  with thousands separators, a list as ``1, 2, 4, 8, 16``)

A results folder whose Markdown links a missing plot, a plugin that is declared but does not
load, a ``:keys:`` pattern that matches nothing or a ``:protocol:`` setting that does not
exist fails the build.
"""

from __future__ import annotations

import fnmatch
import inspect
import posixpath
import re
from pathlib import Path
from typing import Any, ClassVar

from docutils import nodes
from docutils.parsers.rst import directives
from markdown_nodes import markdown_to_nodes
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective

RESULTS = "results"  # docs/results/<plugin>/, written by `hw3 report RUN --to docs`


def results_dir(srcdir: str | Path, plugin: str) -> Path:
    return Path(srcdir) / RESULTS / plugin


def file_links_as_downloads(tree: nodes.Element, resolve: Any, docname: str) -> None:
    """A summary's link to one of its own files (``[SVG](plots/x.svg)``) as a Sphinx download,
    which copies the file into the build: a plain relative link would point nowhere there."""
    from sphinx import addnodes

    for ref in list(tree.findall(nodes.reference)):
        uri = str(ref.get("refuri", ""))
        if not uri or uri.startswith("#") or re.match(r"[a-z]+:", uri):
            continue
        download = addnodes.download_reference("", "", reftarget=resolve(uri), refdoc=docname,
                                               refexplicit=True, refdomain="", reftype="download")
        download += nodes.literal("", "", *ref.children, classes=["xref", "download"])
        ref.replace_self(download)


def show_each_plot_once(tree: nodes.Element, srcdir: Path) -> None:
    """Each plot once, as the best format the builder shows: a PNG with an SVG beside it
    becomes ``plot.*`` (Sphinx picks SVG for HTML, PNG for LaTeX), and a later image of the
    same plot in another format is dropped, with a list item or list it leaves empty."""
    seen: set[str] = set()
    for image in list(tree.findall(nodes.image)):
        uri = str(image["uri"])
        stem, ext = posixpath.splitext(uri)
        if uri.startswith("/") and ext in (".png", ".svg") and \
                all((srcdir / f"{stem[1:]}{e}").is_file() for e in (".png", ".svg")):
            image["uri"] = f"{stem}.*"
        if stem in seen:
            parent = image.parent
            image.parent.remove(image)
            while isinstance(parent, nodes.Element) and not parent.children and \
                    isinstance(parent, nodes.paragraph | nodes.list_item | nodes.bullet_list):
                grand = parent.parent
                grand.remove(parent)
                parent = grand
        seen.add(stem)
    for heading in [n for n in tree.children if isinstance(n, nodes.rubric)]:
        after = tree.children[tree.index(heading) + 1:]
        if not after or isinstance(after[0], nodes.rubric):  # a heading left with nothing
            tree.remove(heading)


class ResultsDirective(SphinxDirective):
    """``.. hw3-results:: PLUGIN``: the exported summary and plots, or how to make them."""

    required_arguments = 1
    option_spec: ClassVar[dict[str, Any]] = {"run": directives.unchanged_required}

    def run(self) -> list[nodes.Node]:
        plugin = self.arguments[0]
        folder = results_dir(self.env.srcdir, plugin)
        summary = folder / "summary.md"
        if not summary.is_file():
            return self.missing(plugin)
        self.env.note_dependency(str(summary))

        def image_uri(src: str) -> str:
            if re.match(r"[a-z]+://", src):
                return src
            relative = posixpath.normpath(posixpath.join(RESULTS, plugin, src))
            if src.startswith("/") or not relative.startswith(f"{RESULTS}/{plugin}/") \
                    or not (Path(self.env.srcdir) / relative).is_file():
                raise ValueError(f"{summary} links {src!r}, which is not a file in {folder}")
            self.env.note_dependency(str(Path(self.env.srcdir) / relative))
            return "/" + relative  # Sphinx reads a leading / as the source directory

        try:
            body = markdown_to_nodes(summary.read_text(encoding="utf-8"), image_uri)
            box = nodes.container(classes=["hw3-results"])
            box.extend(body)
            file_links_as_downloads(box, image_uri, self.env.docname)
        except ValueError as exc:
            raise self.error(f"hw3-results {plugin}: {exc}") from None
        show_each_plot_once(box, Path(self.env.srcdir))
        return [box]

    def missing(self, plugin: str) -> list[nodes.Node]:
        run = self.options.get("run", f"hw3 run {plugin}")
        note = nodes.admonition(classes=["hw3-no-run"])
        note += nodes.title(text="No stored run yet")
        note += nodes.paragraph(text=(
            f"No run of the {plugin} plugin has been exported to these docs "
            f"(docs/{RESULTS}/{plugin}/ does not exist), so this section shows no results; "
            "none are made up. These two commands produce them:"))
        commands = (f"{run}    # trains; prints the run id (see hw3 runs)\n"
                    f"hw3 report {plugin}/RUN_ID --to docs")
        note += nodes.literal_block(commands, commands, language="console")
        note += nodes.paragraph(text=(
            "The second copies the run's Markdown summary and plots to "
            f"docs/{RESULTS}/{plugin}/ under a header naming its run id, dataset (real, or "
            "the synthetic stand-in), hardware and epochs; rebuilding the docs shows them "
            "here. Rerunning it with a newer run replaces them."))
        return [note]


# -- settings ------------------------------------------------------------------------------
def shown(value: Any, separators: bool = False) -> str:
    """A setting as text; ``separators``: 100000 as 100,000 (running text, not tables)."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list | tuple):
        return ", ".join(shown(v, separators) for v in value)
    if separators and isinstance(value, float) and value.is_integer():
        value = int(value)  # 512.0 reads as 512 in a sentence
    if separators and isinstance(value, int) and abs(value) >= 10_000:
        return f"{value:,}"
    return str(value)


def protocol_value(text: str) -> str:
    """The text of ``:protocol:`PLUGIN:SETTING```: the value ``hw3 run PLUGIN`` uses (the
    config dataclass default, or plugins.toml's override), so no page types it."""
    from trainers import config as cfg
    from trainers.errors import Hw3Error
    from trainers.registry import registry

    plugin, sep, name = (part.strip() for part in text.partition(":"))
    if not sep or not plugin or not name:
        raise Hw3Error("expected PLUGIN:SETTING, e.g. scaling:batch_size")
    if plugin not in registry().names():
        raise Hw3Error(f"no plugin {plugin!r} is installed (plugins: "
                       f"{', '.join(registry().names())})")
    defaults = cfg.Defaults.load()
    config_type = registry().get(plugin).config_type
    config = cfg.resolve(config_type, [defaults.layer(plugin)])
    names = [spec.name for spec in cfg.field_specs(config_type)]
    if name not in names:
        raise Hw3Error(f"{plugin} has no setting {name!r} (settings: {', '.join(names)})")
    return shown(getattr(config, name), separators=True)


def registry_config(text: str) -> Any:
    """The config dataclass of ``:protocol:``'s plugin (for the rebuild dependency)."""
    from trainers.registry import registry

    return registry().get(text.partition(":")[0].strip()).config_type


def protocol_role(name: str, rawtext: str, text: str, lineno: int, inliner: Any,
                  options: dict[str, Any] | None = None,
                  content: list[str] | None = None) -> tuple[list[nodes.Node], list[Any]]:
    """``:protocol:`PLUGIN:SETTING```: a setting's value, read while the docs build."""
    from trainers.config import defaults_path
    from trainers.errors import Hw3Error

    try:
        value = protocol_value(text)
    except Hw3Error as exc:
        msg = inliner.reporter.error(f":protocol:`{text}`: {exc}", line=lineno)
        return [inliner.problematic(rawtext, rawtext, msg)], [msg]
    env = inliner.document.settings.env
    env.note_dependency(str(defaults_path()))
    env.note_dependency(inspect.getsourcefile(registry_config(text)) or "")
    return [nodes.inline(rawtext, value, classes=["protocol-value"])], []


def settings_rows(plugin: str) -> tuple[list[tuple[str, str, str, str]], str]:
    """Rows (setting, value, set by, meaning and source) and a note when the plugin is not
    installed. Every value and its source come from the plugin's config dataclass, where
    they are written once; plugins.toml only overrides."""
    from trainers import config as cfg
    from trainers.errors import Hw3Error
    from trainers.registry import registry

    defaults = cfg.Defaults.load()
    _, table = defaults.layer(plugin)
    if plugin not in registry().names():
        if plugin not in defaults.doc:
            raise Hw3Error(f"no plugin {plugin!r} is installed and {defaults.path} has no "
                           f"[{plugin}] table")
        rows = [(k, shown(v), "plugins.toml", "") for k, v in table.items()]
        return rows, (f"The {plugin} plugin is not installed where these docs were built, "
                      "so only plugins.toml's overrides are shown.")
    config_type = registry().get(plugin).config_type  # a broken plugin fails the build
    config = cfg.resolve(config_type, [defaults.layer(plugin)])
    rows = []
    for spec in cfg.field_specs(config_type):
        meaning = f"{spec.help} Source: {spec.cite}." if spec.cite else spec.help
        rows.append((spec.name, shown(getattr(config, spec.name)),
                     "plugins.toml" if spec.name in table else "config default", meaning))
    return rows, ""


class SettingsDirective(SphinxDirective):
    """``.. hw3-settings:: PLUGIN``: the values ``hw3 run PLUGIN`` uses unless overridden."""

    required_arguments = 1
    option_spec: ClassVar[dict[str, Any]] = {"keys": directives.unchanged_required}

    def run(self) -> list[nodes.Node]:
        from archcalc_directives import table_nodes

        from archcalc.tabular import Column, Table
        from trainers.config import defaults_path
        from trainers.errors import Hw3Error

        plugin = self.arguments[0]
        self.env.note_dependency(str(defaults_path()))
        try:
            rows, note = settings_rows(plugin)
        except Hw3Error as exc:
            raise self.error(f"hw3-settings {plugin}: {exc}") from None
        if "keys" in self.options:
            patterns = [p.strip() for p in self.options["keys"].split(",") if p.strip()]
            for pattern in patterns:
                if not any(fnmatch.fnmatchcase(r[0], pattern) for r in rows):
                    raise self.error(f"hw3-settings {plugin}: no setting matches {pattern!r} "
                                     f"(settings: {', '.join(r[0] for r in rows)})")
            rows = [r for r in rows if any(fnmatch.fnmatchcase(r[0], p) for p in patterns)]
        columns = (Column("Setting", "left"), Column("Value", "left"),
                   Column("Set by", "left"), Column("Meaning", "left"))
        footer = (note,) if note else ()
        return table_nodes(Table(f"hw3 run {plugin}: settings", columns, tuple(rows),
                                 footer=footer), classes=("archcalc-table", "hw3-settings"))


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("hw3-results", ResultsDirective)
    app.add_directive("hw3-settings", SettingsDirective)
    app.add_role("protocol", protocol_role)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
