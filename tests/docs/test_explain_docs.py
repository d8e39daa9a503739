"""Problem 3's written answers on the built page are the text ``archcalc explain`` prints:
both come from the files in archcalc/explain/, with the zoo's numbers put in."""

from __future__ import annotations

import html
import re

import pytest
from docs_helpers import Build
from typer.testing import CliRunner

from archcalc import explain
from archcalc.cli import app


def words(text: str) -> str:
    """Visible text: tags, Markdown marks and repeated whitespace removed."""
    text = html.unescape(re.sub(r"<[^>]+>", "", text))
    return " ".join(re.sub(r"\*|``", "", text).split())


@pytest.mark.parametrize("name", list(explain.TOPICS))
def test_page_and_cli_show_the_same_written_answer(built_docs: Build, name: str) -> None:
    assert built_docs.returncode == 0, built_docs.stderr[-3000:]
    page = words(built_docs.page("problems/problem3"))
    shown = words(CliRunner().invoke(app, ["explain", name]).stdout)
    for part in explain.TOPICS[name].parts:
        text = words(part.text())
        assert text in page
        assert text in shown


@pytest.mark.parametrize(("name", "page"), [("scaling", "problem2"), ("depth-width", "problem5")])
def test_hw3_explain_prints_the_page_s_text_with_archcalc_s_numbers(
        built_docs: Build, name: str, page: str) -> None:
    """Each paragraph (or list item) of an hw3 topic without math, as ``hw3 explain NAME``
    prints it, numbers put in, is on the built page word for word."""
    from trainers import explain as hw3_explain
    from trainers.cli import app as hw3_app

    assert built_docs.returncode == 0, built_docs.stderr[-3000:]
    html = words(built_docs.page(f"problems/{page}"))
    shown = words(CliRunner().invoke(hw3_app, ["explain", name]).stdout)
    source = hw3_explain.topic(name).source()
    numbers = 0  # archcalc values checked
    for block in re.split(r"\n\s*\n", source):
        if block.startswith(".. ") or ":math:" in block:
            continue
        for item in re.split(r"\n(?=- )", block):
            text = words(hw3_explain.terminal_text(item.removeprefix("- ")))
            assert text in shown and text in html, text
            numbers += item.count(":archcalc:`")
    assert numbers >= 6
    assert not re.search(r":archcalc:`", shown)
