"""``hw3 explain``: the homework's written parts from trainers/explain/, the same files the
problem pages include (no second copy), thinned for the terminal, with --format json."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from trainers import explain

REPO = Path(__file__).resolve().parents[2]
PAGES = {"optimizers": REPO / "docs" / "problems" / "problem1.rst",
         "scaling": REPO / "docs" / "problems" / "problem2.rst",
         "cutout": REPO / "docs" / "problems" / "problem4.rst",
         "depth-width": REPO / "docs" / "problems" / "problem5.rst"}
UNIQUE = {"optimizers": "Nesterov's variant takes the gradient at the look-ahead point",
          "scaling": "the small images cut the compute, not the gradient",
          "cutout": "cutout is dropout at the input with a spatial prior",
          "depth-width": "the two axes rank the networks differently"}


def hw3(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "trainers.cli", *args], capture_output=True,
                          text=True, timeout=120)


def one_line(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize("name", sorted(PAGES))
def test_the_cli_prints_the_text_the_page_includes(name: str) -> None:
    source = explain.topic(name).source()
    assert UNIQUE[name] in one_line(source)
    page = PAGES[name].read_text(encoding="utf-8")
    assert f".. include:: ../../trainers/explain/{explain.TOPICS[name].file}" in page
    assert UNIQUE[name] not in one_line(page)  # included, not copied
    proc = hw3("explain", name)
    assert proc.returncode == 0, proc.stderr
    assert UNIQUE[name] in one_line(proc.stdout)
    assert not re.search(r":(math|protocol|archcalc):`|``|^\.\. ", proc.stdout, re.M)  # thinned
    assert max(len(line) for line in proc.stdout.splitlines()) <= 80


@pytest.mark.parametrize(("name", "cuts"), [("optimizers", 6), ("depth-width", 1)])
def test_every_slice_the_page_cuts_exists_once_in_the_source(name: str, cuts: int) -> None:
    source = explain.topic(name).source()
    page = PAGES[name].read_text(encoding="utf-8")
    marks = set(re.findall(r":(?:start-after|end-before): (\.\. cut: \S+)", page))
    assert len(marks) == cuts
    for mark in marks:
        assert source.count(mark + "\n") == 1, mark


def test_math_keeps_its_latex_and_protocol_values_are_filled_in() -> None:
    text = explain.terminal_text(explain.topic("optimizers").source())
    assert r"G_t &= G_{t-1} + g_t \odot g_t" in text
    from trainers.plugins.cutout.config import Config

    cutout = explain.terminal_text(explain.topic("cutout").source())
    assert f"square of side {Config().cutout_size} pixels" in one_line(cutout)


def totals(model: str, **params: int) -> dict[str, int]:
    """archcalc's totals of a zoo model, asked of its service (not through the role)."""
    from archcalc import service

    report = service.report(model, None, params)
    return {k: getattr(report.totals, k) for k in ("params", "buffers", "macs")}


def test_archcalc_numbers_are_computed_for_the_terminal_as_for_the_page() -> None:
    """Problems 2 and 5 state archcalc's counts; the terminal shows archcalc's values."""
    from trainers.plugins.scaling.config import Config

    depth = one_line(explain.terminal_text(explain.topic("depth-width").source()))
    for layers, widths in ((1, (512,)), (2, (256, 256)), (3, (256, 128, 128))):
        names = {f"w{i + 1}": w for i, w in enumerate(widths)}
        chain = "-".join(map(str, (2, *widths, 1)))
        params = totals("mlp", layers=layers, **names)["params"]
        assert f"{chain}: {params:,} parameters" in depth
    net = totals("resnet50-keras", size=32, channels=1, classes=10)
    scaling = one_line(explain.terminal_text(explain.topic("scaling").source()))
    assert (f"it has {net['params']:,} trainable parameters (plus {net['buffers']:,} "
            "batch-normalisation statistics") in scaling
    assert f"needs {net['macs']:,} multiply-accumulates per image" in scaling
    assert f"for the {Config().epochs} epochs" in scaling
    imagenet = totals("resnet50-keras")
    assert f"1,000 classes has {imagenet['params']:,} parameters" in scaling


def test_json_and_a_list_of_topics() -> None:
    listed = json.loads(hw3("explain", "--format", "json").stdout)
    assert listed["schema_version"] == 1
    assert [t["name"] for t in listed["topics"]] == list(explain.TOPICS)
    for name in ("cutout", "depth-width"):
        doc = json.loads(hw3("explain", name, "--format", "json").stdout)
        assert doc["rst"] == explain.topic(name).source()
        assert UNIQUE[name] in one_line(doc["text"]) and doc["warnings"] == []
        assert doc["text"] == explain.terminal_text(doc["rst"])


def test_an_unknown_topic_is_one_line_and_exit_2() -> None:
    proc = hw3("explain", "dropout")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: no explanation called 'dropout'; known: optimizers, scaling, cutout, "
        "depth-width"]
