"""What a plugin needs beyond hw3's core, seen from an install that lacks it.

A module is made missing the way Python itself supports (``sys.modules[name] = None``: its
import raises ModuleNotFoundError and ``find_spec`` finds nothing) in a fresh interpreter that
then runs the real ``hw3`` entry point, so the error path is the one a user meets.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from hw3_helpers import REPO

from trainers.registry import EXTRAS, NEEDS

BLOCKED_HW3 = """
import sys
for name in sys.argv[1].split(","):
    sys.modules[name] = None
from trainers.cli import main
main(sys.argv[2:])
"""
# Distribution names in pyproject.toml -> the module hw3 checks for.
IMPORT_NAME = {"tensorflow-cpu": "tensorflow"}


def hw3_without(modules: str, *args: str, tmp: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HW3_RUNS": str(tmp / "runs"), "HW3_DATA": str(tmp / "data"),
           "COLUMNS": "80", "PYTHONPATH": str(REPO)}
    env.pop("HW3_PLUGINS", None)
    env.pop("HW3_PLUGINS_TOML", None)
    return subprocess.run([sys.executable, "-c", BLOCKED_HW3, modules, *args], env=env,
                          capture_output=True, text=True, timeout=120)


def test_extras_list_the_modules_pyproject_installs() -> None:
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    for extra, modules in EXTRAS.items():
        names = {re.split(r"[<>=!~ \[;]", req, maxsplit=1)[0] for req in extras[extra]}
        installs = {IMPORT_NAME.get(n, n) for n in names}
        assert set(modules) <= installs, (extra, set(modules) - installs)
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
        "entry-points"]["hw3.trainers"]
    assert set(NEEDS) == set(declared.values())  # every built-in plugin declares its needs


@pytest.mark.parametrize(("plugin", "extra", "blocked"), [
    ("optimizers", "train", "torch"), ("cutout", "train", "tensorboard"),
    ("depth-width", "train", "matplotlib"), ("scaling", "scaling", "tensorflow")])
def test_a_run_without_its_extra_is_one_line_naming_the_install(
        tmp_path: Path, plugin: str, extra: str, blocked: str) -> None:
    done = hw3_without(blocked, "run", plugin, "--epochs", "1", tmp=tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert f"pip install 'archcalc-hw3[{extra}]'" in done.stderr
    assert blocked in done.stderr and done.stdout == ""
    assert not (tmp_path / "runs").exists()  # refused before a run directory exists


def test_list_shows_what_each_plugin_needs_and_what_is_missing(tmp_path: Path) -> None:
    done = hw3_without("torch", "list", tmp=tmp_path)
    assert done.returncode == 0, done.stderr
    blocks = {b.split()[0]: b for b in re.split(r"\n(?=\S)", done.stdout) if b.strip()}
    for name in ("optimizers", "cutout", "depth-width"):
        assert blocks[name].split()[1] == "missing"
        assert "needs [train]: torch (missing), numpy, matplotlib" in \
            " ".join(blocks[name].split())
    assert "needs [scaling]: tensorflow, torch (missing)" in " ".join(blocks["scaling"].split())
    assert "optimizers: torch not installed: pip install 'archcalc-hw3[train]'" in done.stdout
    assert max(map(len, done.stdout.splitlines())) <= 80
    assert "HEAVY" not in done.stdout

    doc = json.loads(hw3_without("torch", "list", "--format", "json", tmp=tmp_path).stdout)
    plugins = {p["name"]: p for p in doc["plugins"]}
    assert plugins["optimizers"]["status"] == "missing"
    assert plugins["optimizers"]["modules"] == {"torch": False, "numpy": True,
                                                "matplotlib": True, "tensorboard": True}
    assert plugins["scaling"]["install"] == "pip install 'archcalc-hw3[scaling]'"
    assert len(doc["warnings"]) == 4


def test_list_with_everything_installed_says_ok(tmp_path: Path) -> None:
    doc = json.loads(hw3_without("no_such_module_at_all", "list", "--format", "json",
                                 tmp=tmp_path).stdout)
    assert {p["status"] for p in doc["plugins"]} == {"ok"}
    assert doc["warnings"] == [] and doc["schema_version"] == 1


def test_data_fake_without_numpy_is_one_line(tmp_path: Path) -> None:
    done = hw3_without("numpy", "data", "fake", "cifar10", "--n", "10", tmp=tmp_path)
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert "hw3 data fake needs numpy" in done.stderr
    assert "pip install 'archcalc-hw3[train]'" in done.stderr
    assert not (tmp_path / "data").exists()


def test_report_without_matplotlib_is_one_line(tmp_path: Path) -> None:
    folder = tmp_path / "runs" / "optimizers" / "20990101-000000-abcd"
    folder.mkdir(parents=True)
    (folder / "config.toml").write_text('[hw3]\nplugin = "optimizers"\n')
    (folder / "state.json").write_text('{"state": "finished"}')
    (folder / "results.json").write_text("{}")
    done = hw3_without("matplotlib", "report", "optimizers/20990101-000000-abcd", tmp=tmp_path)
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert "hw3 report optimizers/20990101-000000-abcd needs matplotlib" in done.stderr
    assert not (folder / "summary.md").exists()
