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
