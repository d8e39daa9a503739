"""What a ``depth-width`` sweep shows (issue 17): the plan line, one readable line per
network, the whole sweep's ETA from its epochs, and warnings (a reduced sweep, a diverged
network) printed and kept in results.json."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from hw3_helpers import builtin_plugin
from hw3_helpers import invoke as hw3

from trainers import progress

SWEEP = ["--epochs", "4", "--points", "2000", "--widths", "16,32", "--layers", "1,2",
         "--unit-budget", "48", "--workers", "1", "--device", "cpu"]


@pytest.fixture
def runs(tmp_path: Path) -> Iterator[Path]:
    with builtin_plugin(tmp_path, "depth-width") as env:
        yield env.runs


def test_a_sweep_shows_its_plan_networks_and_eta(runs: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(progress, "PLAIN_EVERY_S", 0.0)
    result = hw3("run", "depth-width", *SWEEP)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[1].startswith("plan: 5 trainings, 20 epochs")  # 16, 32, 16-16, 16-32, 32-16
    network = [line for line in lines if "] network 16:" in line]
    assert network and "test RMSE" in network[0] and "params" in network[0]
    assert any("| run ETA " in line for line in lines)
    assert "WARNING: REDUCED run, not the full protocol" in result.output
    (folder,) = (runs / "depth-width").iterdir()
    results = json.loads((folder / "results.json").read_text())
    assert any(w.startswith("REDUCED run") for w in results["warnings"])
    assert results["plan"]["trainings"] == len(results["configs"]) == 5


def test_a_diverged_network_is_flagged(runs: Path) -> None:
    result = hw3("run", "depth-width", *SWEEP, "--lr", "1e12", "--schedule", "constant")
    assert result.exit_code == 0, result.output
    (folder,) = (runs / "depth-width").iterdir()
    results = json.loads((folder / "results.json").read_text())
    diverged = [c["key"] for c in results["configs"] if c["diverged"]]
    assert diverged  # a step of 1e12 on standardised targets
    assert f"WARNING: network {diverged[0]} diverged" in result.output
    assert any(f"network {diverged[0]} diverged" in w for w in results["warnings"])


def test_a_pipe_closed_after_the_first_line_leaves_the_run_resumable(tmp_path: Path) -> None:
    """``hw3 run depth-width | head -1``: the plan line meets a closed pipe; the run is
    interrupted (resumable), not failed, and no traceback is printed."""
    import os
    import subprocess
    import sys

    from hw3_helpers import REPO

    env = {**os.environ, "HW3_PLUGINS": "depth-width", "HW3_RUNS": str(tmp_path / "runs"),
           "HW3_PLUGINS_TOML": str(REPO / "plugins.toml"), "HW3_DATA": str(tmp_path),
           "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "trainers.cli", "run", "depth-width",
                             *SWEEP], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline().startswith(b"starting run")
    proc.stdout.close()  # the reader leaves, as head -1 does
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=300) == 141, err
    assert "Traceback" not in err and "Exception ignored" not in err, err
    (folder,) = (tmp_path / "runs" / "depth-width").iterdir()
    assert json.loads((folder / "state.json").read_text())["state"] == "interrupted"
