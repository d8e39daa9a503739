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
         "cutout": REPO / "docs" / "problems" / "problem4.rst"}
UNIQUE = {"optimizers": "Nesterov's variant takes the gradient at the look-ahead point",
          "cutout": "cutout is dropout at the input with a spatial prior"}


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
    assert not re.search(r":(math|protocol):`|``|^\.\. ", proc.stdout, re.M)  # markup thinned
    assert max(len(line) for line in proc.stdout.splitlines()) <= 80


def test_every_slice_the_page_cuts_exists_once_in_the_source() -> None:
    source = explain.topic("optimizers").source()
    page = PAGES["optimizers"].read_text(encoding="utf-8")
    marks = set(re.findall(r":(?:start-after|end-before): (\.\. cut: \S+)", page))
    assert len(marks) == 6
    for mark in marks:
        assert source.count(mark + "\n") == 1, mark


def test_math_keeps_its_latex_and_protocol_values_are_filled_in() -> None:
    text = explain.terminal_text(explain.topic("optimizers").source())
    assert r"G_t &= G_{t-1} + g_t \odot g_t" in text
    from trainers.plugins.cutout.config import Config

    cutout = explain.terminal_text(explain.topic("cutout").source())
    assert f"square of side {Config().cutout_size} pixels" in one_line(cutout)


def test_json_and_a_list_of_topics() -> None:
    listed = json.loads(hw3("explain", "--format", "json").stdout)
    assert listed["schema_version"] == 1
    assert [t["name"] for t in listed["topics"]] == list(explain.TOPICS)
    doc = json.loads(hw3("explain", "cutout", "--format", "json").stdout)
    assert doc["rst"] == explain.topic("cutout").source()
    assert UNIQUE["cutout"] in one_line(doc["text"]) and doc["warnings"] == []


def test_an_unknown_topic_is_one_line_and_exit_2() -> None:
    proc = hw3("explain", "dropout")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: no explanation called 'dropout'; known: optimizers, cutout"]
