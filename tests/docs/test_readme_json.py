"""The README's JSON example is what ``archcalc vgg19 --format json`` writes: the same keys
at every level, and the same values for the layer and totals it shows."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


def readme_example() -> dict[str, Any]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("### JSON schema (`--format json`)", 1)[1]
    block = re.search(r"```json\n(.*?)```", section, re.S)
    assert block is not None, "no ```json block under the README's JSON schema heading"
    example: dict[str, Any] = json.loads(block.group(1))
    return example


def shape(value: Any) -> Any:
    """The keys of every object, recursively (lists by their first item)."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value and isinstance(value[0], dict | list) else []
    return None


def test_readme_json_example_matches_the_real_output() -> None:
    example = readme_example()
    done = subprocess.run([sys.executable, "-m", "archcalc", example["model"], "--format",
                           "json"], capture_output=True, text=True, timeout=120, check=True,
                          cwd=REPO)
    real = json.loads(done.stdout)
    assert list(example) == list(real)  # same keys, same order
    assert shape(example) == shape(real)
    assert example["layers"] == real["layers"][:len(example["layers"])]
    assert {k: v for k, v in example.items() if k != "layers"} == \
        {k: v for k, v in real.items() if k != "layers"}
