"""The whole documentation builds with warnings as errors, and its pages say what the code
says: tables equal ``archcalc --format json``, no number is typed into a page by hand, and
every problem and command has its page or section."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import pytest
from docs_helpers import DOCS, Build
from typer.testing import CliRunner

import archcalc.spec
from archcalc.cli import COMMANDS, app, route


class Tables(HTMLParser):
    """Every <table>: its caption and the text of each row's cells."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[tuple[str, list[list[str]]]] = []
        self._text: list[str] | None = None
        self._row: list[str] | None = None
        self._caption: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self.tables.append(("", []))
        elif tag == "caption":
            self._caption = []
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._text = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "caption" and self._caption is not None:
            self.tables[-1] = ("".join(self._caption).strip().rstrip("¶").strip(),
                               self.tables[-1][1])
            self._caption = None
        elif tag in ("td", "th") and self._text is not None and self._row is not None:
            self._row.append("".join(self._text).strip())
            self._text = None
        elif tag == "tr" and self._row is not None:
            self.tables[-1][1].append(self._row)
            self._row = None

    def handle_data(self, data: str) -> None:
        for sink in (self._text, self._caption):
            if sink is not None:
                sink.append(data)


def table(html: str, caption: str) -> list[list[str]]:
    parser = Tables()
    parser.feed(html)
    found = [rows for cap, rows in parser.tables if cap.startswith(caption)]
    assert found, f"no table captioned {caption!r}"
    return found[0]


def cli_json(*args: str) -> dict:
    result = CliRunner().invoke(app, route([*args, "--format", "json"]))
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_docs_build_with_warnings_as_errors(built_docs: Build) -> None:
    assert built_docs.returncode == 0, built_docs.stderr
    for page in ("index", "getting-started", "spec-language", "cli", "plugins", "api",
                 *(f"problems/problem{n}" for n in range(1, 6))):
        assert (built_docs.out / f"{page}.html").is_file(), page


def test_vgg19_table_on_the_page_is_the_cli_json(built_docs: Build) -> None:
    data = cli_json("vgg19", "--table")
    rows = table(built_docs.page("problems/problem3"), "vgg19 memory and weights")
    assert rows[0] == data["columns"]
    assert rows[1:] == [*data["rows"], data["total"]]


def test_alexnet_tables_on_the_page_are_the_cli_json(built_docs: Build) -> None:
    html = built_docs.page("problems/problem3")
    data = cli_json("alexnet", "--table", "--bias")
    assert table(html, "alexnet memory and weights")[1:] == [*data["rows"], data["total"]]
    layers = cli_json("alexnet")
    rows = table(html, "alexnet: input")
    header, body = rows[0], rows[2:-1]  # rows[1] is the input
    assert [r[header.index("Path")] for r in body] == [la["path"] for la in layers["layers"]]
    for key in ("weights", "biases", "params", "macs"):
        column = header.index({"macs": "MACs"}.get(key, key.capitalize()))
        assert [int(r[column].replace(",", "")) for r in body] == \
            [la[key] for la in layers["layers"]], key
        assert int(rows[-1][column].replace(",", "")) == layers["totals"][key]


# Pages that show archcalc numbers: the (model [--set NAME=INT ...], total) each shows in its
# text. Problem 2 shows the network the scaling plugin trains (test_protocol_numbers checks
# that these settings are the plugin's).
SCALING_NET = "resnet50-keras --set size=32 --set channels=1 --set classes=10"
SHOWN = {
    "problems/problem1": [("mlp-cifar", "params")],
    "problems/problem2": [(SCALING_NET, "params"), (SCALING_NET, "macs"),
                          (SCALING_NET, "buffers")],
    "problems/problem3": [("alexnet", "params"), ("alexnet", "weights"), ("vgg19", "params"),
                          ("vgg19", "weights"), ("inception-naive", "macs"),
                          ("inception-reduction", "macs")],
    "problems/problem4": [("resnet44", "params"), ("resnet44", "macs")],
}


@pytest.mark.parametrize("page", sorted(SHOWN))
def test_no_archcalc_number_is_typed_into_a_page(built_docs: Build, page: str) -> None:
    source = (DOCS / f"{page}.rst").read_text(encoding="utf-8")
    html = built_docs.page(page)
    for model, key in SHOWN[page]:
        totals = cli_json(*model.split())["totals"]
        for value in (totals[k] for k in ("params", "weights", "macs") if totals[k] >= 10_000):
            assert f"{value:,}" not in source and str(value) not in source, (model, value)
        assert f"{totals[key]:,}" in html, (page, model, key)  # ... yet the page shows it


def test_rf_derivation_is_on_the_page(built_docs: Build) -> None:
    html = built_docs.page("problems/problem3")
    assert r"N \left(F - 1\right) + 1" in html
    assert re.search(r"r\(3\)\\big\|_\{F=5\} = 3 \\left\(5 - 1\\right\) \+ 1 = 13", html)


def test_every_cli_command_has_its_help_section(built_docs: Build) -> None:
    html = built_docs.page("cli")
    for name in COMMANDS:
        assert f'id="cli-archcalc-{name}"' in html, name
    for name in ("list", "runs", "report", "run", "data"):
        assert f'id="cli-hw3-{name}"' in html, name
    rf_help = CliRunner().invoke(app, ["rf", "--help"], prog_name="archcalc",
                                 terminal_width=88, env={"COLUMNS": "88"}).output
    first_option = next(line for line in rf_help.splitlines() if "--layers" in line).strip()
    assert first_option.split()[0] in html


def test_spec_page_is_the_spec_docstring(built_docs: Build) -> None:
    html = built_docs.page("spec-language")
    doc = archcalc.spec.__doc__ or ""
    grammar_line = next(line for line in doc.splitlines() if "residual [shortcut" in line)
    assert grammar_line.split("{")[0].strip() in html.replace("&lt;", "<")


@pytest.mark.parametrize(("number", "plugin"), [(1, "optimizers"), (2, "scaling"),
                                                 (4, "cutout"), (5, "depth-width")])
def test_experiment_pages_show_results_or_say_there_are_none(
        built_docs: Build, number: int, plugin: str) -> None:
    html = built_docs.page(f"problems/problem{number}")
    if (DOCS / "results" / plugin / "summary.md").is_file():
        assert "Provenance" in html and "No stored run yet" not in html
    else:
        assert "No stored run yet" in html
        assert f"hw3 report {plugin}/RUN_ID --to docs" in html


def test_problem1_answers_every_method(built_docs: Build) -> None:
    html = built_docs.page("problems/problem1")
    for method in ("AdaGrad", "RMSProp", "RMSProp with Nesterov momentum", "AdaDelta",
                   "Adam", "How AdaDelta and Adam differ from RMSProp"):
        assert f">{method}" in html, method


def test_results_folder_holds_only_exports() -> None:
    """docs/results/<plugin>/ is written by hw3 report --to docs: a summary under a
    provenance header, and the plots it links."""
    root = DOCS / "results"
    for folder in sorted(p for p in root.glob("*") if p.is_dir()) if root.is_dir() else []:
        summary = (folder / "summary.md").read_text(encoding="utf-8")
        assert "| Provenance | |" in summary, folder
        for link in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", summary):
            assert (folder / link).is_file(), (folder, link)
