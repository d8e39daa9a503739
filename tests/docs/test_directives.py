"""The directives' tables are the CLI's numbers, and bad directives fail the build."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import sympy as sp
from archcalc_directives import (
    footer_nodes,
    inception_reports,
    report_for,
    rf_latex,
    select_columns,
    table_nodes,
    total_value,
)
from docs_helpers import mini_project, sphinx_build
from docutils import nodes
from typer.testing import CliRunner

from archcalc import zoo
from archcalc.cli import app, route
from archcalc.render import homework_table, inception_table, layer_table
from archcalc.symbolic import rf_stack

MODELS = zoo.names()


def cli_json(*args: str) -> Any:
    result = CliRunner().invoke(app, route([*args, "--format", "json"]))
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def rows_of(table_node: nodes.table) -> list[list[str]]:
    """Body rows (total included) of a generated table, as the cell texts."""
    body = next(iter(table_node.findall(nodes.tbody)))
    return [[entry.astext() for entry in row.findall(nodes.entry)]
            for row in body.findall(nodes.row)]


def header_of(table_node: nodes.table) -> list[str]:
    head = next(iter(table_node.findall(nodes.thead)))
    return [entry.astext() for entry in head.findall(nodes.entry)]


def number(text: str) -> int:
    return int(text.replace(",", ""))


@pytest.mark.parametrize("bias", [False, True], ids=["weights", "bias"])
@pytest.mark.parametrize("model", MODELS)
def test_homework_table_is_the_cli_json(model: str, bias: bool) -> None:
    data = cli_json(model, "--table", *(["--bias"] if bias else []))
    table = table_nodes(homework_table(report_for(model, {}), bias))[0]
    assert header_of(table) == data["columns"]
    assert rows_of(table) == [*data["rows"], data["total"]]


@pytest.mark.parametrize("model", MODELS)
def test_layer_table_numbers_are_the_cli_json(model: str) -> None:
    data = cli_json(model)
    table = table_nodes(layer_table(report_for(model, {})))[0]
    header = header_of(table)
    rows = rows_of(table)
    layers, total = rows[1:-1], rows[-1]  # first row: the input
    assert len(layers) == len(data["layers"])
    columns = {"Weights": "weights", "Biases": "biases", "Params": "params",
               "Buffers": "buffers", "MACs": "macs", "FLOPs": "flops"}
    for cells, layer in zip(layers, data["layers"], strict=True):
        assert cells[header.index("Path")] == layer["path"]
        for column, key in columns.items():
            assert number(cells[header.index(column)]) == layer[key], (layer["path"], key)
    for column, key in columns.items():
        assert number(total[header.index(column)]) == data["totals"][key]


def test_set_and_input_options_reach_archcalc() -> None:
    data = cli_json("vgg", "--set", "n1=1", "--set", "n5=2", "--input", "32x32x3", "--table")
    report = report_for("vgg", {"set": "n1=1 n5=2", "input": "32x32x3"})
    assert rows_of(table_nodes(homework_table(report))[0]) == [*data["rows"], data["total"]]


def test_columns_option_keeps_the_named_columns_in_order() -> None:
    table = select_columns(layer_table(report_for("alexnet", {})), "Params,Layer")
    assert [c.name for c in table.columns] == ["Params", "Layer"]
    assert table.total == (cli_json("alexnet")["totals"]["params"], "TOTAL")


def test_inception_table_is_the_cli_json() -> None:
    data = cli_json("inception")
    table = table_nodes(inception_table(*inception_reports({})))[0]
    expected = [[str(c) if isinstance(c, str) else f"{c:,}" for c in row]
                for row in [*data["rows"], data["total"]]]
    assert rows_of(table) == expected


def test_indented_footer_lines_become_sub_items() -> None:
    notes = footer_nodes(("MACs:", "  a: 1", "  b: 2", "Saving: 3"))
    assert [item.children[0].astext() for item in notes.children] == ["MACs:", "Saving: 3"]
    nested = notes.children[0].children[1]
    assert isinstance(nested, nodes.bullet_list)
    assert [item.astext() for item in nested.children] == ["a: 1", "b: 2"]


@pytest.mark.parametrize(("layers", "kernel", "stride"), [(3, 5, 1), (3, 3, 1), (4, 7, 1),
                                                          (3, 3, 2)])
def test_rf_math_is_rendered_from_rf_stack(layers: int, kernel: int, stride: int) -> None:
    derivation = rf_stack(layers, kernel, stride=stride)
    recurrence, closed, value = rf_latex(layers, kernel, stride)
    assert recurrence.startswith(sp.latex(derivation.recurrence))
    assert closed.endswith(f"= {sp.latex(derivation.closed_form)}")
    assert value.endswith(f"= {derivation.value}")
    if stride == 1:  # the seed's claim, checked independently: N F - N + 1
        assert derivation.value == layers * kernel - layers + 1


def test_role_values_are_the_cli_totals() -> None:
    totals = cli_json("vgg19")["totals"]
    assert total_value("vgg19:params") == f"{totals['params']:,}"
    assert total_value("vgg19:weights") == f"{totals['weights']:,}"
    mlp = cli_json("mlp", "--set", "layers=2", "--set", "w1=256", "--set", "w2=256")
    assert total_value("mlp layers=2 w1=256 w2=256:params") == f"{mlp['totals']['params']:,}"
    assert total_value("inception-naive:output") == "32x32x672"
    assert total_value("alexnet:input") == "227x227x3"


BAD = {
    "archcalc-table": (".. archcalc-table:: nosuchnet",
                       "archcalc-table: unknown model 'nosuchnet'"),
    "archcalc-layers": (".. archcalc-layers:: alexnet\n   :columns: Layer,Colour",
                        "archcalc-layers: :columns: unknown column 'Colour'"),
    "archcalc-inception": (".. archcalc-inception::\n   :set: nope=3",
                           "archcalc-inception: :set: nope: neither inception module"),
    "archcalc-rf": (".. archcalc-rf:: three 5", "archcalc-rf: expected two whole numbers"),
    "role": ("Total :archcalc:`vgg19:colour`.", "unknown field 'colour'"),
    "hw3-settings": (".. hw3-settings:: optimizers\n   :keys: no_such_*",
                     "hw3-settings optimizers: no setting matches 'no_such_*'"),
    "hw3-results": (".. hw3-results:: broken", "summary.md links 'plots/gone.png'"),
}


def test_bad_directives_fail_the_build_with_clear_errors(tmp_path: Path) -> None:
    body = "\n\n".join(f"{name}\n{'-' * len(name)}\n\n{rst}" for name, (rst, _) in BAD.items())
    src = mini_project(tmp_path / "src", f"Bad\n===\n\n{body}\n", {
        "results/broken/summary.md": "# broken\n\n![gone](plots/gone.png)\n"})
    build = sphinx_build(src, tmp_path / "html")
    assert build.returncode != 0
    for name, (_, message) in BAD.items():
        lines = [line for line in build.stderr.splitlines() if message in line]
        assert lines, f"{name}: no error {message!r} in:\n{build.stderr}"
        assert "index.rst" in lines[0], lines[0]  # errors say where


def test_a_good_mini_project_builds(tmp_path: Path) -> None:
    """The same harness passes when nothing is wrong (so the test above fails for cause)."""
    src = mini_project(tmp_path / "src", "Good\n====\n\n.. archcalc-table:: vgg11\n\n"
                       ".. archcalc-rf:: 2 3\n\n:archcalc:`vgg11:params`\n")
    build = sphinx_build(src, tmp_path / "html")
    assert build.returncode == 0, build.stderr
    html = build.page("index")
    assert f"{cli_json('vgg11')['totals']['params']:,}" in html
