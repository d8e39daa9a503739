"""hw3's outputs for people and programs: --version, python -m trainers, --format json on
list, runs, report and data info, hw3 runs at 80 columns and in a pipe, and damaged run
files named as such."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hw3_helpers import REPO, Hw3Env
from typer.testing import CliRunner

from trainers import cli, schema

RUN = ["run", "tenant", "--epochs", "2", "--steps", "2", "--device", "cpu", "--seed", "3"]


def hw3(*args: str, columns: int = 120) -> Any:
    result = CliRunner().invoke(cli.app, list(args), env={"COLUMNS": str(columns)})
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def as_json(*args: str) -> dict[str, Any]:
    result = hw3(*args, "--format", "json")
    assert result.exit_code == 0, result.output
    doc: dict[str, Any] = json.loads(result.stdout)
    assert doc["schema_version"] == schema.SCHEMA_VERSION and isinstance(doc["warnings"], list)
    return doc


def fake_run(runs: Path, plugin: str, run_id: str, results: dict[str, Any] | None) -> Path:
    """A run directory as the store writes it (state.json, config.toml, results.json)."""
    folder = runs / plugin / run_id
    folder.mkdir(parents=True)
    (folder / "config.toml").write_text(f'[hw3]\nplugin = "{plugin}"\n')
    state = "finished" if results is not None else "interrupted"
    (folder / "state.json").write_text(json.dumps({"state": state, "started": "2099"}))
    if results is not None:
        (folder / "results.json").write_text(json.dumps(results))
    return folder


@pytest.fixture
def finished(hw3_env: Hw3Env) -> Iterator[Path]:
    """One finished tenant run (stand-in data)."""
    assert hw3(*RUN).exit_code == 0
    (folder,) = (hw3_env.runs / "tenant").iterdir()
    yield folder


def test_version_is_the_installed_distributions() -> None:
    from importlib.metadata import version

    result = hw3("--version")
    assert result.exit_code == 0 and result.stdout == f"hw3 {version('archcalc-hw3')}\n"


def test_version_from_a_source_checkout_reads_pyproject(monkeypatch: pytest.MonkeyPatch
                                                        ) -> None:
    import importlib.metadata

    def not_installed(name: str) -> str:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", not_installed)
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert cli.version() == f"{declared} (source checkout, not installed)"


def test_python_dash_m_trainers_and_completion() -> None:
    env = {**os.environ, "COLUMNS": "80"}
    done = subprocess.run([sys.executable, "-m", "trainers", "--help"], capture_output=True,
                          text=True, timeout=60, env=env, check=True)
    assert done.stdout.startswith("Usage: hw3 ")
    assert "--install-completion" in done.stdout and "--version" in done.stdout


def test_list_json(hw3_env: Hw3Env) -> None:
    doc = as_json("list")
    plugins = {p["name"]: p for p in doc["plugins"]}
    tenant = plugins.pop("tenant")
    assert tenant["status"] == "ok" and tenant["summary"].startswith("Tiny MLP")
    assert tenant["package"] == "hw3-tenant 0.1" and tenant["extra"] is None
    assert {p["status"] for p in plugins.values()} <= {"blocked"}  # HW3_PLUGINS=tenant
    assert len(doc["warnings"]) == len(plugins)  # "not loaded" for each blocked one


def test_runs_and_report_json(finished: Path) -> None:
    doc = as_json("runs")
    (run,) = doc["runs"]
    assert run["ref"] == f"tenant/{finished.name}" and run["dir"] == str(finished)
    assert (run["state"], run["data"], run["stand_in"]) == ("finished", "stand-in", True)
    assert run["headline"] and doc["warnings"] == []

    report = as_json("report", run["ref"])
    assert report["markdown"] == (finished / "summary.md").read_text()
    assert report["plots"] and all(Path(p).is_file() for p in report["plots"])
    assert report["run"] == run
    assert "stand-in data" in report["warnings"][0]


def test_data_info_json(hw3_env: Hw3Env) -> None:
    assert hw3("data", "fake", "fashion-mnist", "--n", "20").exit_code == 0
    doc = as_json("data", "info", "fashion-mnist")
    (idx,) = doc["layouts"]
    assert idx["complete"] and idx["synthetic"] and idx["missing"] == []
    folder = Path(idx["folder"])
    assert idx["files"] == {f: (folder / f).stat().st_size for f in idx["files"]}
    assert idx["bytes"] == sum(idx["files"].values())
    assert "synthetic stand-in" in doc["warnings"][0]


def test_runs_at_80_columns_never_cut_ids(hw3_env: Hw3Env) -> None:
    refs = [f"scaling/20991231-235959-{i:04x}" for i in range(3)]
    for i, ref in enumerate(refs):
        fake_run(hw3_env.runs, *ref.split("/"),
                 {"headline": "model only: 4 learner counts " + "word " * 30,
                  "model_only": True} if i == 0 else None)
    out = hw3("runs", columns=80).stdout
    lines = out.splitlines()
    assert all(ref in lines for ref in refs)  # each id whole, on a line of its own
    assert max(map(len, lines[1:])) <= 80
    assert "finished; data: none (model only)" in out
    assert "real" not in out  # neither the model-only run nor the interrupted ones


def test_runs_into_head_exits_0_quietly(hw3_env: Hw3Env) -> None:
    for i in range(1500):  # more than a pipe buffer holds: hw3 meets the closed pipe
        fake_run(hw3_env.runs, "tenant", f"20990101-000000-{i:04x}", None)
    done = subprocess.run(["bash", "-o", "pipefail", "-c",
                           f"{sys.executable} -m trainers runs | head -1"],
                          env=hw3_env.subprocess_env(), capture_output=True, text=True,
                          timeout=120)
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.startswith("runs in ")


@pytest.mark.parametrize("text", [b"{{{", b'{"state": "fin', b"\xff\xfe", b"", b"null"])
def test_a_state_file_that_is_not_json_is_damaged(finished: Path, text: bytes) -> None:
    (finished / "state.json").write_bytes(text)
    doc = as_json("runs")
    assert doc["runs"][0]["state"] == "damaged" and "state.json" in doc["runs"][0]["error"]
    assert doc["warnings"] == [f"tenant/{finished.name}: damaged: {doc['runs'][0]['error']}"]
    resumed = hw3("run", "tenant", "--resume", finished.name)
    assert resumed.exit_code == 2 and "state.json" in resumed.stderr
    assert (finished / "state.json").read_bytes() == text  # nothing rewritten


def test_a_config_toml_that_is_a_folder_is_named(finished: Path) -> None:
    (finished / "config.toml").unlink()
    (finished / "config.toml").mkdir()
    result = hw3("report", finished.name)
    assert result.exit_code == 2 and result.stderr.count("\n") == 1
    assert f"{finished / 'config.toml'}: is a directory, not a file" in result.stderr
    assert "no such run" not in result.stderr
    assert as_json("runs")["runs"][0]["state"] == "damaged"
