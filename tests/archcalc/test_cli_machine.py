"""The archcalc command line for scripts and shells: ``--format json`` on list, formula and
verify (one versioned envelope), ``--version``, ``python -m archcalc``, shell completion,
and a reader that stops early (``archcalc list | head -1``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from archcalc import zoo
from archcalc.cli import app, route
from archcalc.schema import SCHEMA_VERSION

ROOT = Path(__file__).resolve().parents[2]
TINY = "model tiny\ninput 12x12x3\nconv3-4; relu; maxpool2\nconv3-6 p=0; relu\nFC-5\n"


def run(*args: str) -> Result:
    return CliRunner().invoke(app, route(list(args)))


def as_json(*args: str, code: int = 0) -> dict[str, Any]:
    result = run(*args, "--format", "json")
    assert result.exit_code == code, result.output
    data = json.loads(result.stdout)
    assert isinstance(data, dict)
    assert next(iter(data)) == "schema_version" and data["schema_version"] == SCHEMA_VERSION
    assert isinstance(data["warnings"], list)
    return data


def script(*args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "archcalc", *args], capture_output=True,
                          text=True, timeout=120, cwd=ROOT, **kwargs)


# -- --format json ---------------------------------------------------------------------------
def test_analyze_and_list_share_the_schema_version() -> None:
    assert as_json("mlp-cifar")["schema_version"] == as_json("list")["schema_version"]


def test_list_json_is_the_zoo_as_the_table_shows_it() -> None:
    data = as_json("list")
    assert [m["name"] for m in data["models"]] == zoo.names()
    csv = run("list", "--format", "csv").stdout.splitlines()[1:]  # after the header
    for model, line in zip(data["models"], csv, strict=True):
        preset = " ".join(f"{k}={v}" for k, v in model["preset"].items())
        assert line.startswith(f"{model['name']},{model['spec']},{preset},")
    entries = {e.name: e for e in zoo.entries()}
    for model in data["models"]:
        assert model["preset"] == dict(entries[model["name"]].overrides)
        assert (zoo.ZOO_DIR / model["spec"]).is_file()


@pytest.mark.parametrize(("layer", "shape"), [("conv3-64", "224x224x3"),
                                              ("conv5-16 s=2 p=2 g=4", "32x32x8"),
                                              ("maxpool2 s=2 p=1 ceil=true", "5x5x3"),
                                              ("FC-10", "4096")])
def test_formula_json_agrees_with_the_text_and_the_analysis(layer: str, shape: str) -> None:
    import archcalc

    data = as_json("formula", layer, "--input", shape)
    text = run("formula", layer, "--input", shape).stdout.splitlines()
    assert text[0].startswith(f"{data['layer']} on {shape} -> ")
    values = {f["name"]: f["value"] for f in data["formulas"]}
    for row, line in zip(data["formulas"], text[1:], strict=True):  # one line per formula
        assert line.split("=")[0].strip() == row["name"]
        assert line.endswith(f"= {row['value']:,}")
        if row["formula"] is not None:
            assert row["formula"] in line
    # the numbers are the analysis' own: parse the layer as a one-layer spec
    report = archcalc.analyze(archcalc.parse(f"input {shape}\n{layer}\n"))
    (only,) = report.rows
    assert data["output"] == list(only.out_shape)
    assert values.get("weights", 0) == only.params.weights
    assert values.get("MACs", 0) == only.macs


def test_formula_writes_every_table_format() -> None:
    md = run("formula", "conv3-64", "--input", "8x8x3", "--format", "md").stdout
    assert "| weights |" in md and "1,728 |" in md  # 3*3*3*64


SPEC_TORCH = '''
import torch.nn as nn


def tiny(width: int = 4):
    return nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(width, 6, 3), nn.ReLU(), nn.Flatten(),
                         nn.Linear(6 * 4 * 4, 5))
'''


@pytest.fixture
def tiny_files(tmp_path: Path) -> tuple[Path, Path]:
    spec = tmp_path / "tiny.arch"
    spec.write_text(TINY, encoding="utf-8")
    module = tmp_path / "tinynet.py"
    module.write_text(SPEC_TORCH, encoding="utf-8")
    return spec, module


def _rich_summary(result: Result) -> tuple[int, int]:
    """``N/M checks passed`` of the table output."""
    line = next(x for x in result.stdout.splitlines() if "checks passed" in x)
    passed, total = line.split()[0].split("/")
    return int(passed), int(total)


def test_verify_json_lists_the_checks_the_table_counts(tiny_files: tuple[Path, Path]) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("torchinfo")
    pytest.importorskip("fvcore")
    from archcalc.verify import verify_model

    spec, _ = tiny_files
    data = as_json("verify", str(spec))
    expected = verify_model(str(spec))
    assert data["mode"] == "tools" and data["ok"] is True and data["failed"] == 0
    assert data["model"] == "tiny" and data["input"] == [3, 12, 12]
    assert len(data["checks"]) == len(expected.checks) == data["passed"]
    assert [c["name"] for c in data["checks"]] == [c.name for c in expected.checks]
    assert _rich_summary(run("verify", str(spec))) == (data["passed"], len(data["checks"]))
    params = [c for c in data["checks"] if c["path"] == "" and c["name"].startswith("params")]
    # 12x12 -> conv (same) 12x12x4 -> pool 6x6x4 -> conv (p=0) 4x4x6 = 96 -> FC-5:
    # 3*3*3*4+4 + 3*3*4*6+6 + 96*5+5 = 112 + 222 + 485, counted by hand
    assert params and all(c["expected"] == c["actual"] == 819 for c in params)


@pytest.mark.parametrize(("width", "ok"), [(4, True), (5, False)])
def test_verify_against_json(tiny_files: tuple[Path, Path], width: int, ok: bool) -> None:
    pytest.importorskip("torch")
    spec, module = tiny_files
    data = as_json("verify", str(spec), "--against", f"{module}:tiny", "--arg",
                   f"width={width}", code=0 if ok else 1)
    assert data["mode"] == "against" and data["ok"] is ok
    text = run("verify", str(spec), "--against", f"{module}:tiny", "--arg", f"width={width}")
    assert _rich_summary(text) == (data["passed"], len(data["checks"]))
    numel = next(c for c in data["checks"] if c["name"] == "params (torch numel)")
    assert numel["expected"] == 819
    # width 5: 3*3*3*5+5 + 3*3*5*6+6 + 485 = 140 + 276 + 485
    assert numel["actual"] == (819 if ok else 901)
    if not ok:
        first = next(c for c in data["checks"] if not c["ok"])
        assert first["name"] == "layer" and first["path"] == "1"  # the first conv differs


def test_verify_takes_no_table_format() -> None:
    result = run("verify", "mlp-cifar", "--format", "md")
    assert result.exit_code == 2 and "md" in result.stderr


# -- --version, python -m, completion --------------------------------------------------------
def test_version_is_the_installed_distributions() -> None:
    from importlib.metadata import version

    result = run("--version")
    assert result.exit_code == 0
    assert result.stdout == f"archcalc {version('archcalc-hw3')}\n"


def test_version_from_a_source_checkout(monkeypatch: pytest.MonkeyPatch) -> None:
    """Not installed (PackageNotFoundError): the version pyproject.toml declares, marked."""
    import importlib.metadata

    from archcalc import service

    def missing(name: str) -> str:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", missing)
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert service.version() == f"{declared} (source checkout, not installed)"


def test_python_dash_m_archcalc() -> None:
    proc = script("--version")
    assert proc.returncode == 0 and proc.stdout.startswith("archcalc ")
    proc = script("mlp-cifar", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["totals"] == as_json("mlp-cifar")["totals"]


def test_shell_completion_is_offered_and_completes() -> None:
    help_text = run("--help").stdout
    assert "--install-completion" in help_text and "--show-completion" in help_text
    env = os.environ | {"_ARCHCALC_COMPLETE": "complete_bash", "COMP_WORDS": "archcalc fo",
                        "COMP_CWORD": "1"}
    proc = script(env=env)
    assert proc.returncode == 0 and proc.stdout.split() == ["formula"]
    env |= {"COMP_WORDS": "archcalc list --fo", "COMP_CWORD": "2"}
    assert script(env=env).stdout.split() == ["--format"]


# -- a reader that stops early ---------------------------------------------------------------
@pytest.mark.parametrize("args", [["list"], ["analyze", "vgg19", "--table"],
                                  ["vgg19", "--table"], ["resnet50", "--format", "json"],
                                  ["spec"], ["formula", "conv3-64"],
                                  ["rf", "--layers", "3", "--kernel", "3"]], ids=" ".join)
def test_a_closed_pipe_ends_quietly_with_success(args: list[str]) -> None:
    """``archcalc ... | head -1`` when head has gone: no 'Exception ignored ...
    BrokenPipeError', exit code 0 (Click's own handling exits 1). The pipe is closed
    before archcalc has started, so every write finds it closed."""
    proc = subprocess.Popen([sys.executable, "-m", "archcalc", *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 0, err
    assert err == ""


def test_head_reads_the_first_line() -> None:
    proc = subprocess.run(f"{sys.executable} -m archcalc list | head -1", shell=True,
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0 and proc.stderr == ""
    assert "archcalc zoo" in proc.stdout
