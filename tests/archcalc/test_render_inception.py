"""``archcalc inception`` (questions 3.4 (b) and (c)) in every output format: the JSON carries
the schema version, each module's branches, output and MACs, and the saving as numbers, all
checked against the homework's Figure 1 worked by hand here; md and LaTeX hold the rows."""

from __future__ import annotations

import io
import json

import pytest
from typer.testing import CliRunner, Result

from archcalc.cli import app
from archcalc.render import FORMATS
from archcalc.schema import SCHEMA_VERSION

HW = 32 * 32  # every branch keeps the 32x32 map of the 32x32x256 input
NAIVE = [HW * 256 * 128, HW * 3 * 3 * 256 * 192, HW * 5 * 5 * 256 * 96, 0]
REDUCED = [HW * 256 * 128, HW * (256 * 128 + 3 * 3 * 128 * 192),
           HW * (256 * 32 + 5 * 5 * 32 * 96), HW * 256 * 64]


def run(*args: str) -> Result:
    return CliRunner().invoke(app, ["inception", *args])


def test_json_answers_b_and_c_with_the_schema_version() -> None:
    data = json.loads(run("--format", "json").stdout)
    assert data["schema_version"] == SCHEMA_VERSION
    naive, reduced = data["modules"]["inception-naive"], data["modules"]["inception-reduction"]
    assert naive["input"] == reduced["input"] == [256, 32, 32]
    assert naive["output"] == [128 + 192 + 96 + 256, 32, 32]  # the pool keeps its 256 maps
    assert reduced["output"] == [128 + 192 + 96 + 64, 32, 32]
    assert [b["macs"] for b in naive["branches"]] == NAIVE
    assert [b["macs"] for b in reduced["branches"]] == REDUCED
    assert (naive["macs"], reduced["macs"]) == (sum(NAIVE), sum(REDUCED))
    assert reduced["branches"][1]["layers"] == ["conv1-128", "conv3-192 p=1"]
    assert data["saving"]["ratio"] == pytest.approx(sum(NAIVE) / sum(REDUCED))
    assert data["saving"]["fraction"] == pytest.approx(1 - sum(REDUCED) / sum(NAIVE))
    # the table's own keys stay (the docs' directive reads them)
    assert data["total"] == ["TOTAL", "", sum(NAIVE), "", sum(REDUCED)]
    keys = list(data)
    assert keys[0] == "schema_version" and keys[-1] == "warnings"


def test_markdown_rows() -> None:
    md = run("--format", "md").stdout
    assert (f"| 3 | conv5-96 p=2 | {NAIVE[2]:,} | conv1-32 -\\> conv5-96 p=2 | "
            f"{REDUCED[2]:,} |") in md
    assert f"| **TOTAL** |  | **{sum(NAIVE):,}** |  | **{sum(REDUCED):,}** |" in md


def test_latex_rows_print_arrows_not_inverted_question_marks() -> None:
    tex = run("--format", "latex").stdout
    assert (f"2 & conv3-192 p=1 & {NAIVE[1]:,} & conv1-128 -\\textgreater{{}} conv3-192 p=1 "
            f"& {REDUCED[1]:,} \\\\ \\hline") in tex.splitlines()
    assert "->" not in tex and "H\\_out" in tex


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_is_written(fmt: str) -> None:
    result = run("--format", fmt)
    assert result.exit_code == 0, result.output
    assert f"{sum(REDUCED):,}" in result.stdout or str(sum(REDUCED)) in result.stdout


def test_a_80_column_terminal_wraps_layers_and_cuts_no_number() -> None:
    from rich.console import Console

    from archcalc import service
    from archcalc.render import inception_table

    table = inception_table(*service.inception_reports({}))
    assert table.natural_width() > 80  # so the wrapping is what is under test
    buffer = io.StringIO()
    Console(file=buffer, width=80, color_system=None).print(table)
    out = buffer.getvalue()
    assert max(len(line) for line in out.splitlines()) <= 80 and "…" not in out
    for number in [*NAIVE, *REDUCED, sum(NAIVE), sum(REDUCED)]:
        assert f"{number:,}" in out
    assert "inception-naive" in out and "inception-reduction" in out  # the title names them
