"""``archcalc rf`` in the homework's form (question 3.3: NF - N + 1 for a stride-1 stack) and
in every output format the tables have (md, LaTeX, JSON with the schema version...).

Expected fields come from composing one layer at a time (archcalc.algebra's RF.step) and
from the homework's formula written out here, never from the derivation under test."""

from __future__ import annotations

import csv
import io
import json

import pytest
from typer.testing import CliRunner, Result

from archcalc.algebra import INPUT_RF
from archcalc.cli import app
from archcalc.render import FORMATS
from archcalc.schema import SCHEMA_VERSION
from archcalc.symbolic import rf_stack


def composed(layers: int, kernel: int, stride: int = 1, dilation: int = 1) -> int:
    rf = INPUT_RF
    for _ in range(layers):
        rf = rf.step((kernel, kernel), (stride, stride), (0, 0), (dilation, dilation))
    return rf.size[0]


def run(*args: str) -> Result:
    return CliRunner().invoke(app, ["rf", *args])


@pytest.mark.parametrize(("layers", "kernel", "dilation"),
                         [(3, 5, 1), (3, 3, 1), (1, 7, 1), (5, 2, 1), (3, 3, 2), (4, 5, 3)])
def test_stride_one_is_written_in_the_homeworks_form(layers: int, kernel: int,
                                                     dilation: int) -> None:
    derivation = rf_stack(layers, kernel, dilation=dilation)
    spans = dilation * (kernel - 1) + 1  # the side a dilated kernel covers
    by_homework = layers * spans - layers + 1  # N F - N + 1
    assert derivation.value == by_homework == composed(layers, kernel, 1, dilation)
    steps = dict(derivation.steps())
    assert steps["homework's form"].startswith("r(N) = NF" + ("" if dilation == 1 else "'"))
    assert steps[f"N={layers}, F={kernel}"] == (
        f"r = {layers}*{spans} - {layers} + 1 = {by_homework}: one {by_homework}x"
        f"{by_homework} convolution")


def test_seed_question_3_3_three_5x5_layers() -> None:
    lines = run("--layers", "3", "--kernel", "5").stdout.splitlines()
    assert "  homework's form: r(N) = NF - N + 1" in lines
    assert "  N=3, F=5:        r = 3*5 - 3 + 1 = 13: one 13x13 convolution" in lines
    assert all(len(line) <= 80 for line in lines)


def test_strides_have_no_homework_form() -> None:
    derivation = rf_stack(3, 3, stride=2, dilation=2)
    assert derivation.homework_form is None
    assert "homework's form" not in dict(derivation.steps())
    # 1 + D(F-1)(1 + 2 + 4) = 1 + 2*2*7
    assert derivation.value == 29 == composed(3, 3, 2, 2)


def test_json_has_the_schema_version_and_the_numbers() -> None:
    data = json.loads(run("--layers", "3", "--kernel", "5", "--format", "json").stdout)
    assert data["schema_version"] == SCHEMA_VERSION
    assert (data["layers"], data["kernel"], data["stride"], data["dilation"]) == (3, 5, 1, 1)
    assert data["field"] == 3 * 5 - 3 + 1
    assert data["homework_form"] == "NF - N + 1"
    assert data["closed_form"] == "N*(F - 1) + 1"
    assert data["warnings"] == []
    strided = json.loads(run("--layers", "3", "--kernel", "3", "--stride", "2",
                             "--format", "json").stdout)
    assert strided["homework_form"] is None and strided["field"] == composed(3, 3, 2)


def test_markdown_and_latex_hold_every_step() -> None:
    steps = rf_stack(3, 5).steps()
    md = run("--layers", "3", "--kernel", "5", "--format", "md").stdout
    assert "| homework's form | r(N) = NF - N + 1 |" in md
    assert r"| N=3, F=5 | r = 3\*5 - 3 + 1 = 13: one 13x13 convolution |" in md
    tex = run("--layers", "3", "--kernel", "5", "--format", "latex").stdout
    for step, expression in steps:
        assert f"{step} & {expression} \\\\ \\hline" in tex
    assert r"\caption{Receptive field of 3 stacked 5x5 convolutions (stride 1, dilation 1)}" \
        in tex


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_is_written(fmt: str) -> None:
    result = run("--layers", "3", "--kernel", "5", "--format", fmt)
    assert result.exit_code == 0, result.output
    assert "13" in result.stdout
    if fmt == "csv":
        rows = list(csv.reader(io.StringIO(result.stdout)))
        assert rows[0] == ["Step", "Expression"] and len(rows) == 1 + len(
            rf_stack(3, 5).steps())


def test_a_bad_format_is_one_line_and_exit_2() -> None:
    result = run("--layers", "3", "--kernel", "5", "--format", "pdf")
    assert result.exit_code == 2
    assert len(result.output.strip().splitlines()) == 1
