"""``archcalc explain``: Problem 3's written answers (3.3's proof, 3.4's explanations) come
from one file each, which the CLI prints and the docs page includes.

Each file must read the same as Markdown (what the terminal renders) and as
reStructuredText (what the page includes): both parsers are run and their paragraphs
compared. Its numbers must be archcalc's."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from markdown_it import MarkdownIt
from markdown_it.tree import SyntaxTreeNode
from typer.testing import CliRunner, Result

from archcalc import explain
from archcalc.cli import COMMANDS, app
from archcalc.schema import SCHEMA_VERSION
from archcalc.symbolic import rf_stack

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "problems" / "problem3.rst"
PARTS = [p for t in explain.TOPICS.values() for p in t.parts]


def run(*args: str) -> Result:
    return CliRunner().invoke(app, ["explain", *args])


def words(text: str) -> str:
    """Text with Markdown marks dropped and whitespace made single spaces."""
    return " ".join(re.sub(r"\*|``", "", text).split())


def markdown_paragraphs(text: str) -> list[str]:
    def flat(node: SyntaxTreeNode) -> str:
        if node.type in ("text", "code_inline"):
            return node.content
        if node.type == "softbreak":
            return "\n"
        return "".join(flat(c) for c in node.children)

    tree = SyntaxTreeNode(MarkdownIt("commonmark").parse(text))
    return [flat(n) for n in tree.walk() if n.type == "paragraph"]


@pytest.mark.parametrize("part", PARTS, ids=lambda p: p.file)
def test_each_file_reads_the_same_as_markdown_and_restructuredtext(part: explain.Part) -> None:
    docutils_core = pytest.importorskip("docutils.core", reason="docutils comes with the "
                                        "docs extra (sphinx)")
    source = part.source()
    refs = sorted(set(explain.REFERENCE.findall(source)))
    # each |MODEL:PARAM| as the page defines it, a substitution; here by a marker value
    defs = "".join(f".. |{m}:{p}| replace:: V{i}\n" for i, (m, p) in enumerate(refs))
    tree = docutils_core.publish_doctree(defs + "\n" + source, settings_overrides={
        "report_level": 1, "halt_level": 1, "warning_stream": False})
    kinds = {n.tagname for n in tree.children} - {"substitution_definition"}
    assert kinds <= {"paragraph", "bullet_list"}, kinds  # no heading, no stray block
    rst = [p.astext() for p in tree.findall(lambda n: n.tagname == "paragraph")]
    marked = source
    for i, (m, p) in enumerate(refs):
        marked = marked.replace(f"|{m}:{p}|", f"V{i}")
    assert markdown_paragraphs(marked) == rst


def test_every_part_is_included_by_the_docs_page_once() -> None:
    page = PAGE.read_text(encoding="utf-8")
    included = re.findall(r"^\.\. include:: \.\./\.\./archcalc/explain/(\S+)$", page, re.M)
    assert sorted(included) == sorted(p.file for p in PARTS)
    for part in PARTS:  # under the subsection that the CLI names the same way
        if part.heading:
            heading = page.index(f"\n{part.heading}\n")
            assert heading < page.index(f"archcalc/explain/{part.file}\n")
    for model, param in {r for p in PARTS for r in explain.REFERENCE.findall(p.source())}:
        assert (f".. |{model}:{param}| replace:: :archcalc:`{model}:{param}`") in page


@pytest.mark.parametrize("name", list(explain.TOPICS))
def test_cli_prints_every_sentence_of_its_files(name: str) -> None:
    result = run(name)
    assert result.exit_code == 0, result.output
    shown = words(result.stdout)
    for part in explain.TOPICS[name].parts:
        assert words(part.text()) in shown
        assert part.heading in result.stdout
    assert all(len(line) <= 80 for line in result.stdout.splitlines())


def test_a_unique_sentence_is_in_the_cli_and_on_the_page_source() -> None:
    sentence = "Telescoping from r(0) = 1 gives r(N) = 1 + N(F−1) = NF−N+1."
    assert sentence in words(explain.TOPICS["rf"].parts[0].source())
    assert sentence in words(run("rf").stdout)
    assert sentence not in words(PAGE.read_text(encoding="utf-8"))  # included, not copied


def test_numbers_in_the_text_are_archcalcs() -> None:
    text = explain.TOPICS["rf"].parts[0].text()
    assert f"r = 3·5−3+1 = {rf_stack(3, 5).value}" in text  # question 3.3: 13
    saving = run("inception").stdout
    naive = 32 * 32 * 256 * (128 + 9 * 192 + 25 * 96)  # Figure 1, by hand
    reduced = 32 * 32 * (256 * 128 + 256 * 128 + 9 * 128 * 192 + 256 * 32 + 25 * 32 * 96
                         + 256 * 64)
    assert f"{naive:,} / {reduced:,} = {naive / reduced:.2f}x fewer MACs" in words(saving)
    substituted = explain.TOPICS["inception"].parts[1].text()
    assert "|" not in substituted
    assert "all 256 input channels" in words(substituted)
    assert "only 96 of the output" in words(substituted)


def test_markdown_and_json_formats() -> None:
    md = run("rf", "--format", "md").stdout
    assert md.startswith("# 3.3 Receptive field of stacked convolutions\n")
    assert explain.TOPICS["rf"].parts[0].text().strip() in md
    data = json.loads(run("inception", "--format", "json").stdout)
    assert data["schema_version"] == SCHEMA_VERSION and data["warnings"] == []
    assert [p["file"] for p in data["parts"]] == ["inception-idea.md", "inception-saving.md"]
    assert data["parts"][1]["text"] == explain.TOPICS["inception"].parts[1].text()
    assert data["numbers"] == "archcalc inception" and "fewer MACs" in data["result"]
    listed = json.loads(run("--format", "json").stdout)
    assert [t["name"] for t in listed["topics"]] == ["rf", "inception"]


def test_topics_list_and_unknown_topic() -> None:
    assert "explain" in COMMANDS
    listed = run().stdout
    assert "rf" in listed and "3.4" in listed
    result = run("rff")
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "error: no written answer 'rff'; did you mean 'rf'? (topics: rf, inception)"]


def test_files_ship_beside_the_module() -> None:
    """The wheel takes every file of the archcalc package (hatch's default for a package),
    so the texts must live inside it, next to the module that reads them."""
    for part in PARTS:
        assert part.path.parent == Path(explain.__file__).parent and part.path.is_file()
