"""How the built pages render: --help as plain text, each plot once, the API with its
fields, the theme and MathJax served from the build itself."""

from __future__ import annotations

import dataclasses
import re
from html.parser import HTMLParser

from docs_helpers import DOCS, Build

import archcalc
from archcalc.analysis import Memory, Totals


class Blocks(HTMLParser):
    """The class list of each ``<div>`` that holds a ``--help`` block, the ``<span>``
    classes inside it, and the ``src`` of every ``<img>``."""

    def __init__(self) -> None:
        super().__init__()
        self.help_divs: list[str] = []
        self.help_spans: set[str] = set()
        self.images: list[str] = []
        self._depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        classes = found.get("class") or ""
        if tag == "div" and "cli-help" in classes.split():
            self.help_divs.append(classes)
            self._depth = 1
        elif tag == "div" and self._depth:
            self._depth += 1
        elif tag == "span" and self._depth and classes:
            self.help_spans.add(classes)
        elif tag == "img":
            self.images.append(found.get("src") or "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "div" and self._depth:
            self._depth -= 1


def blocks(html: str) -> Blocks:
    parser = Blocks()
    parser.feed(html)
    return parser


def test_help_blocks_are_plain_text_not_python(built_docs: Build) -> None:
    """Python's lexer bolded keywords ('for', 'in', 'and') and opened a string at every
    apostrophe of the help; the text lexer marks nothing up."""
    found = blocks(built_docs.page("cli"))
    assert len(found.help_divs) >= 10, found.help_divs
    assert all("highlight-text" in c.split() for c in found.help_divs), found.help_divs
    assert not found.help_spans - {"pre"}, found.help_spans  # no k, s2, n ... tokens


def test_each_plot_is_shown_once_as_svg(built_docs: Build) -> None:
    for number in (1, 2, 4, 5):
        images = blocks(built_docs.page(f"problems/problem{number}")).images
        stems = [re.sub(r"\.(png|svg)$", "", src) for src in images]
        assert len(stems) == len(set(stems)), (number, images)
        plots = [src for src in images if "_images/" in src]
        assert all(src.endswith(".svg") for src in plots), (number, plots)


def test_api_page_lists_every_record_field(built_docs: Build) -> None:
    html = built_docs.page("api")
    for name, cls in (("archcalc.Row", archcalc.Row), ("archcalc.Report", archcalc.Report),
                      ("archcalc.Graph", archcalc.Graph),
                      ("archcalc.analysis.Totals", Totals), ("archcalc.analysis.Memory", Memory)):
        start = html.index(f'id="{name}"')
        section = html[start:html.index("</dl>", start)]
        signature = re.sub(r"<[^>]+>", "", section.split("</dt>")[0])
        assert "*args" not in signature, (name, signature)
        text = re.sub(r"<[^>]+>", "", section)
        for f in dataclasses.fields(cls):
            assert f"{f.name} (" in text, (name, f.name)  # ":ivar NAME:" renders "NAME (type)"
    for public in ("parse", "parse_file", "load", "analyze", "verify.verify",
                   "importers.torch.from_torch", "importers.keras.from_keras",
                   "importers.onnx.from_onnx", "writer.to_spec"):
        assert f'id="archcalc.{public}"' in html, public


def test_theme_and_mathjax_come_from_the_build(built_docs: Build) -> None:
    html = built_docs.page("problems/problem3")
    assert "furo" in html
    scripts = re.findall(r'<script[^>]*src="([^"]+)"', html)
    assert not [s for s in scripts if "://" in s], scripts  # nothing from a CDN
    assert any("_static/mathjax/tex-chtml.js" in s for s in scripts), scripts
    assert (built_docs.out / "_static" / "mathjax" / "output" / "chtml" / "fonts").is_dir()


def test_intersphinx_keeps_only_inventories_whose_host_resolves() -> None:
    """Offline (CI has no internet) an unreachable inventory is left out instead of making
    the -W build fail with "failed to reach any of the inventories"."""
    import runpy

    conf = runpy.run_path(str(DOCS / "conf.py"))
    assert conf["reachable"]("https://archcalc-docs-check.invalid/objects") is False
    assert set(conf["intersphinx_mapping"]) <= set(conf["INVENTORIES"]) == {"python", "torch"}
    for name, (url, _) in conf["INVENTORIES"].items():
        assert (name in conf["intersphinx_mapping"]) == conf["reachable"](url)
