"""Rendering: the homework table against the seed's Table 1 and hand arithmetic, the full
view's column sums, the JSON schema, and every output format."""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

import archcalc
from archcalc import service, zoo
from archcalc.analysis import Report
from archcalc.render import (
    FORMATS,
    abbrev,
    homework_table,
    inception_table,
    layer_table,
    render,
    report_dict,
)
from archcalc.tabular import Table

GOLDEN = Path(__file__).parent / "golden"
TINY_SPEC = """\
model tiny
input 8x8x3
conv3-4 bias=false; bn; relu
residual { conv3-4; relu; conv3-4 }
relu
concat { branch { conv1-2 } branch { maxpool3 s=1 p=1 } }
gap
FC-10
"""

def shown(report: Report, fmt: str, **options: Any) -> str:
    """What ``archcalc MODEL --format FMT`` prints when piped (the CLI's own view)."""
    table, data = service.view(report, fmt, **options)
    return render(table, fmt, data)



def vgg19() -> Report:
    return archcalc.analyze(archcalc.load("vgg19"))


def zoo_report(name: str) -> Report:
    return archcalc.analyze(archcalc.load(name))


# -- abbreviations ------------------------------------------------------------------------
@pytest.mark.parametrize(("n", "text"), [
    (150528, "150K"), (802816, "800K"), (3211264, "3.2M"), (401408, "400K"), (4096, "4.1K"),
    (999, "999"), (1000, "1.0K"), (25088, "25K"), (16543184, "17M"), (999_999, "1.0M"),
    (19_632_062_464, "20G"),
])
def test_abbreviations_keep_two_significant_digits(n: int, text: str) -> None:
    assert abbrev(n) == text


# -- the homework table: golden files ------------------------------------------------------
def test_vgg19_homework_table_text_golden(golden: Callable[[str, str], None]) -> None:
    golden("vgg19_table.txt", render(homework_table(vgg19()), "rich"))  # what a pipe gets


def test_vgg19_homework_table_markdown_golden(golden: Callable[[str, str], None]) -> None:
    golden("vgg19_table.md", render(homework_table(vgg19()), "md"))


def test_tiny_model_json_golden(golden: Callable[[str, str], None]) -> None:
    report = archcalc.analyze(archcalc.parse(TINY_SPEC, "tiny.arch"))
    golden("tiny.json", shown(report, "json"))


def test_tiny_json_golden_numbers_by_hand() -> None:
    data = json.loads((GOLDEN / "tiny.json").read_text(encoding="utf-8"))
    hw = 8 * 8
    weights = 3 * 3 * 3 * 4 + 4 + 2 * (3 * 3 * 4 * 4) + 4 * 2 + 6 * 10  # conv, bn, res, 1x1, FC
    macs = hw * 4 * 27 + 2 * hw * 4 * 36 + hw * 2 * 4 + 60
    activations = 3 * hw + 4 * (4 * hw) + 2 * hw + 4 * hw + 6 * hw + 6 + 10  # relu/add in place
    assert data["totals"] == {"activations": activations, "weights": weights,
                              "biases": 4 + 4 + 4 + 2 + 10, "params": weights + 24,
                              "buffers": 2 * 4, "macs": macs, "flops": data["totals"]["flops"]}
    by_path = {layer["path"]: layer for layer in data["layers"]}
    assert by_path["6"]["output_shape"] == [2 + 4, 8, 8]  # concat of conv1-2 and the pool
    assert by_path["4"]["kind"] == "add" and by_path["4"]["inplace"]
    assert by_path["4.3"]["rf"]["size"] == [7, 7]  # three 3x3 convs: 3 * 2 + 1
    assert by_path["7"]["rf"] == {"size": [16, 16], "stride": [1, 1], "padding": [4, 4],
                                  "center": [3.5, 3.5]}  # 9x9 fields over an 8x8 map


# -- the homework table: the golden's numbers, checked by hand -----------------------------
def golden_md_rows() -> list[tuple[str, str, str]]:
    """Rows of the markdown golden (TOTAL last), markdown escapes and bold removed."""
    rows = []
    for line in (GOLDEN / "vgg19_table.md").read_text(encoding="utf-8").splitlines():
        if not line.startswith("| ") or line.startswith(("| Layer", "| :")):
            continue
        cells = [c.strip().replace("\\", "").strip("*") for c in line.strip("|").split(" | ")]
        rows.append((cells[0], cells[1], cells[2]))
    return rows


def memory_value(cell: str) -> int:
    """``224*224*64=3.2M`` -> 3211264, checking the abbreviation; ``4096`` -> 4096."""
    expr, _, short = cell.partition("=")
    value = math.prod(int(d.replace(",", "")) for d in expr.split("*"))
    if short:
        assert abbrev(value) == short, cell
    return value


def params_value(cell: str) -> int:
    """``(3*3*3)*64 + 64 = 1,792`` -> 1792, checking the written-out formula."""
    formula, _, value = cell.rpartition(" = ")
    number = int(value.replace(",", ""))
    if formula:
        terms = [math.prod(int(d) for d in re.findall(r"\d+", t)) for t in formula.split(" + ")]
        assert sum(terms) == number, cell
    return number


# The homework's Table 1 (VGG19 memory and parameters), the cells it fills in, by row (0 = Input).
SEED_CELLS = {
    0: ("Input", "224*224*3=150K", "0"),
    1: ("CONV3-64", "224*224*64=3.2M", "(3*3*3)*64 = 1,728"),
    2: ("CONV3-64", "224*224*64=3.2M", "(3*3*64)*64 = 36,864"),
    3: ("POOL2", "112*112*64=800K", "0"),
    6: ("POOL2", "56*56*128=400K", "0"),
    8: ("CONV3-256", "56*56*256=800K", "(3*3*256)*256 = 589,824"),
    11: ("POOL2", None, "0"),
    12: ("CONV3-512", "28*28*512=400K", "(3*3*256)*512 = 1,179,648"),
    14: ("CONV3-512", "28*28*512=400K", None),
    16: ("POOL2", None, "0"),
    21: ("POOL2", None, "0"),
    22: ("FC", "4096", None),
    23: ("FC", "4096", "4096*4096 = 16,777,216"),
    24: ("FC", "1000", None),
}


def test_vgg19_golden_matches_the_seed_table() -> None:
    rows = golden_md_rows()
    for index, (layer, memory, params) in SEED_CELLS.items():
        assert rows[index][0].startswith(layer), (index, rows[index])
        assert memory is None or rows[index][1] == memory, (index, rows[index])
        assert params is None or rows[index][2] == params, (index, rows[index])


def test_vgg19_golden_numbers_by_hand() -> None:
    rows = golden_md_rows()
    # Hand arithmetic, seed Table 1 and Simonyan & Zisserman Table 1, column E.
    assert 224 * 224 * 64 == 3_211_264 and abbrev(3_211_264) == "3.2M"
    assert (3 * 3 * 3) * 64 == 1_728 and (3 * 3 * 64) * 64 == 36_864
    assert (3 * 3 * 256) * 256 == 589_824 and (3 * 3 * 256) * 512 == 1_179_648
    assert 4096 * 4096 == 16_777_216
    activations = (224 * 224 * 3 + 2 * 224 * 224 * 64 + 112 * 112 * 64 + 2 * 112 * 112 * 128
                   + 56 * 56 * 128 + 4 * 56 * 56 * 256 + 28 * 28 * 256 + 4 * 28 * 28 * 512
                   + 14 * 14 * 512 + 4 * 14 * 14 * 512 + 7 * 7 * 512
                   + 4096 + 4096 + 1000)  # FC-4096, FC-4096, FC-1000; no soft-max row
    assert activations == 16_542_184
    weights = (3 * 3 * 3 * 64 + 3 * 3 * 64 * 64 + 3 * 3 * 64 * 128 + 3 * 3 * 128 * 128
               + 3 * 3 * 128 * 256 + 3 * 3 * 3 * 256 * 256 + 3 * 3 * 256 * 512
               + 7 * 3 * 3 * 512 * 512 + 7 * 7 * 512 * 4096 + 4096 * 4096 + 4096 * 1000)
    assert weights == 143_667_240 - (2 * 64 + 2 * 128 + 4 * 256 + 8 * 512 + 2 * 4096 + 1000)
    total = rows[-1]
    assert total[0] == "TOTAL"
    assert total[1] == f"{activations:,}={abbrev(activations)}"
    assert total[2] == f"{weights:,}"


def test_vgg19_golden_columns_sum_to_total() -> None:
    *rows, total = golden_md_rows()
    assert sum(memory_value(r[1]) for r in rows) == int(total[1].split("=")[0].replace(",", ""))
    assert sum(params_value(r[2]) for r in rows) == int(total[2].replace(",", ""))


def test_the_text_golden_has_the_same_cells_as_the_markdown() -> None:
    text = (GOLDEN / "vgg19_table.txt").read_text(encoding="utf-8")
    for _, memory, params in golden_md_rows():
        assert memory in text and params in text


@pytest.mark.parametrize("name", zoo.names())
@pytest.mark.parametrize("bias", [False, True])
def test_every_homework_table_sums_to_its_total(name: str, bias: bool) -> None:
    report = zoo_report(name)
    table = homework_table(report, bias=bias)
    assert table.total is not None
    unlisted = sum(r.activations for r in report.rows  # soft-max: named in the footer
                   if not r.inplace and not r.homework_row and not r.params.trainable)
    assert sum(memory_value(str(r[1])) for r in table.rows) == (
        report.totals.activations - unlisted)
    params = report.totals.params if bias else report.totals.weights
    assert sum(params_value(str(r[2])) for r in table.rows) == params
    assert table.total[2] == f"{params:,}"


def test_bias_flag_writes_the_bias_term() -> None:
    rows = homework_table(vgg19(), bias=True).rows
    assert rows[1] == ("CONV3-64", "224*224*64=3.2M", "(3*3*3)*64 + 64 = 1,792")
    assert rows[23][2] == "4096*4096 + 4096 = 16,781,312"
    assert rows[24][2] == "4096*1000 + 1000 = 4,097,000"
    assert homework_table(vgg19(), bias=True).total == ("TOTAL", "16,542,184=17M",
                                                        "143,667,240")


def test_in_place_layers_are_hidden_and_explained() -> None:
    table = homework_table(vgg19())
    labels = [r[0] for r in table.rows]
    assert "RELU" not in labels and not any(lbl.startswith("DROPOUT") for lbl in labels)
    assert "relu x18" in table.footer[0] and "dropout-0.5 x2" in table.footer[0]
    assert any("66,168,736 B" in line for line in table.footer)  # 16,542,184 x 4 B
    assert "SOFT-MAX" not in labels  # the homework's rows: Input, CONV, POOL2, FC and TOTAL
    assert "soft-max x1, allocating 1,000 more activations (not in the TOTAL)" in table.footer[1]


def test_memory_footer_follows_dtype_and_batch() -> None:
    footer = " ".join(homework_table(vgg19(), dtype="float16", batch=8).footer)
    assert f"{16_542_184 * 2 * 8:,} B" in footer and "per batch of 8" in footer


# -- the full per-layer view --------------------------------------------------------------
@pytest.mark.parametrize("name", zoo.names())
def test_every_layer_table_sums_to_its_total(name: str) -> None:
    table = layer_table(zoo_report(name))
    assert table.total is not None
    for col in range(3, 10):
        column = [r[col] for r in table.rows if isinstance(r[col], int)]
        assert sum(column) == table.total[col], table.columns[col].name


def test_layer_table_footer_names_convention_and_memory() -> None:
    report = archcalc.analyze(archcalc.load("resnet20"), "fvcore")
    footer = "\n".join(layer_table(report).footer)
    assert report.convention.summary in footer
    assert "Inference memory" in footer and "Training memory" in footer
    assert "kept for the backward pass" in footer and "peak" in footer
    expected = report.training_memory(1, 4).total
    assert f"{expected:,} B" in footer


def test_layer_table_shows_receptive_fields() -> None:
    rows = {r[0]: r for r in layer_table(vgg19()).rows}
    assert rows["1.2.1"][10:14] == ("5", "1", "2", "0")  # two 3x3 convs see 5x5
    assert rows["10"][10:12] == ("268", "32")


# -- JSON ---------------------------------------------------------------------------------
LAYER_KEYS = {"name", "path", "kind", "output_shape", "activations", "inplace", "weights",
              "biases", "params", "buffers", "macs", "flops", "rf", "head"}
TOTAL_KEYS = {"activations", "weights", "biases", "params", "buffers", "macs", "flops"}


@pytest.mark.parametrize("name", zoo.names())
def test_json_schema(name: str) -> None:
    report = zoo_report(name)
    data = json.loads(shown(report, "json"))
    assert set(data) == {"schema_version", "model", "input", "convention", "layers", "warnings",
                         "heads", "totals"}
    assert set(data["heads"]) == (set() if not report.heads else {"main", *report.heads})
    assert data["warnings"] == list(report.warnings)
    assert data["model"] == name and data["convention"] == "full"
    assert data["input"] == list(report.input_shape)
    assert set(data["totals"]) == TOTAL_KEYS
    layers = data["layers"]
    assert len({layer["path"] for layer in layers}) == len(layers)
    for layer in layers:
        assert set(layer) == LAYER_KEYS
        assert layer["params"] == layer["weights"] + layer["biases"]
        assert len(layer["output_shape"]) in (1, 3)
        rf = layer["rf"]
        if len(report.input_shape) == 1:  # a vector input has no spatial field
            assert rf is None
            continue
        row = next(r for r in report.rows if r.path == layer["path"])
        if rf is None:  # after an enlarging layer: the report says the field stops there
            assert row.rf is None and any("no receptive field" in w for w in report.warnings)
            continue
        assert set(rf) == {"size", "stride", "padding", "center"}
        assert all(len(v) == 2 for v in rf.values())
    totals = data["totals"]
    for key in ("weights", "biases", "params", "buffers", "macs", "flops"):
        assert sum(layer[key] for layer in layers) == totals[key], key
    allocated = sum(layer["activations"] for layer in layers if not layer["inplace"])
    assert math.prod(data["input"]) + allocated == totals["activations"]


def test_json_rf_is_null_for_vector_input() -> None:
    report = archcalc.analyze(archcalc.parse("input 3072\nFC-100; relu\nFC-10\n"))
    data = report_dict(report)
    assert data["input"] == [3072]
    assert [layer["rf"] for layer in data["layers"]] == [None, None, None]
    assert data["layers"][0]["output_shape"] == [100]


# -- formats ------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("table", [True, False])
def test_every_format_renders(fmt: str, table: bool) -> None:
    text = shown(vgg19(), fmt, table=table)
    assert text.endswith("\n") and "\x1b" not in text
    assert "143,652,544" in text or "143652544" in text or fmt == "json"


def test_csv_is_machine_readable() -> None:
    rows = list(csv.reader(io.StringIO(shown(vgg19(), "csv"))))
    assert rows[0][:4] == ["Path", "Layer", "Output", "Activations"]
    assert rows[-1][1] == "TOTAL" and rows[-1][6] == "143667240"


def test_rst_grid_lines_are_aligned() -> None:
    lines = [ln for ln in shown(vgg19(), "rst", table=True).splitlines()
             if ln.startswith("   +") or ln.startswith("   |")]
    assert len({len(ln) for ln in lines}) == 1


def test_latex_escapes_and_closes() -> None:
    text = render(Table("a_b & c", (), (), None, ("50% of #1",)), "latex")
    assert r"a\_b \& c" in text and r"50\% of \#1" in text
    assert text.rstrip().endswith(r"\end{table}")


def test_markdown_escapes_asterisks() -> None:
    assert r"| CONV3-64 | 224\*224\*64=3.2M | (3\*3\*3)\*64 = 1,728 |" in render(
        homework_table(vgg19()), "md")


def test_rich_renders_itself_without_colour() -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, width=200, color_system=None)
    console.print(homework_table(vgg19()))
    out = buffer.getvalue()
    assert "\x1b" not in out and "TOTAL" in out and "(3*3*3)*64 = 1,728" in out


# -- inception ----------------------------------------------------------------------------
def test_inception_comparison_by_hand() -> None:
    naive, reduced = (zoo_report(n) for n in ("inception-naive", "inception-reduction"))
    table = inception_table(naive, reduced)
    hw = 32 * 32
    naive_macs = hw * (256 * 128 + 3 * 3 * 256 * 192 + 5 * 5 * 256 * 96)
    reduced_macs = hw * (256 * 128 + 256 * 128 + 3 * 3 * 128 * 192 + 256 * 32
                         + 5 * 5 * 32 * 96 + 256 * 64)
    assert table.total == ("TOTAL", "", naive_macs, "", reduced_macs)
    assert ("output after concat", "32x32x672", "", "32x32x480", "") in table.rows
    assert table.rows[1][2] == hw * 3 * 3 * 256 * 192
    assert table.rows[1][4] == hw * (256 * 128 + 3 * 3 * 128 * 192)
    assert f"{naive_macs / reduced_macs:.2f}x" in table.footer[-1]
    assert "32*32*(3*3*128)*192 = 226,492,416" in "\n".join(table.footer)


@pytest.mark.parametrize("name", zoo.names())
def test_homework_table_fits_an_80_column_terminal(name: str) -> None:
    """On a terminal 80 wide, long layer labels (NASNet's padding and pooling options)
    wrap at their spaces rather than widen the table or cut a number."""
    table = homework_table(archcalc.analyze(archcalc.load(name)))
    buffer = io.StringIO()
    Console(file=buffer, width=80, color_system=None).print(table.rich_table())
    lines = buffer.getvalue().splitlines()
    assert max(len(line) for line in lines) <= 80
    assert "…" not in buffer.getvalue()
    for _, memory, params in table.rows:  # every number whole on one line
        assert any(memory in line for line in lines)
        assert any(params in line for line in lines)
