"""What an ``optimizers`` run prints (issue 17): epoch lines that name both training losses
for what they are, no third-party notice from compiling the optimizer step (dynamo's
"Profiler record function ... will be ignored"), and the trainings count at a Ctrl-C."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hw3_helpers import REPO, builtin_plugin
from hw3_helpers import invoke as hw3

from trainers import store
from trainers.data import fake

NOTICE = "Profiler record function"
RUN = ["--variants", "l2", "--methods", "rmsprop", "--step", "compile", "--epochs", "1",
       "--hidden", "16", "--batch-size", "32", "--eval-batch", "50", "--device", "cpu"]
BARE_COMPILE = """
import torch
model = torch.nn.Linear(4, 2)
opt = torch.optim.RMSprop(model.parameters(), lr=0.1)
model(torch.ones(3, 4)).sum().backward()
torch.compile(opt.step)()
"""


def test_the_compiled_step_prints_no_profiler_notice(tmp_path: Path) -> None:
    """A run that compiles RMSprop's step prints no dynamo notice, while the same compile
    outside the plugin does (so the check can fail)."""
    fake.write("cifar10", tmp_path / "data", n=64, n_test=32, seed=1)
    env = {"HW3_PLUGINS": "optimizers", "HW3_RUNS": str(tmp_path / "runs"),
           "HW3_DATA": str(tmp_path / "data"), "HW3_PLUGINS_TOML": str(REPO / "plugins.toml"),
           "COLUMNS": "120", "PYTHONPATH": str(REPO)}
    full = {**os.environ, **env}
    run = subprocess.run([sys.executable, "-m", "trainers.cli", "run", "optimizers", *RUN],
                         capture_output=True, text=True, env=full, timeout=300, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    results = next((tmp_path / "runs" / "optimizers").glob("*/results.json"))
    assert json.loads(results.read_text())["trainings"][0]["optimizer_step"] == "compiled"
    assert NOTICE not in run.stdout + run.stderr
    bare = subprocess.run([sys.executable, "-c", BARE_COMPILE], capture_output=True,
                          text=True, env=full, timeout=300)
    assert bare.returncode == 0, bare.stderr
    assert NOTICE in bare.stderr  # what the plugin keeps out


def test_epoch_lines_name_both_training_losses(tmp_path: Path) -> None:
    fake.write("cifar10", tmp_path / "data", n=64, n_test=32, seed=1)
    with builtin_plugin(tmp_path, "optimizers"):
        result = hw3("run", "optimizers", "--variants", "l2", "--methods", "adam",
                     "--epochs", "1", "--hidden", "16", "--batch-size", "32",
                     "--eval-batch", "50", "--device", "cpu")
    assert result.exit_code == 0, result.output
    line = next(x for x in result.output.splitlines() if "epoch 1:" in x)
    assert "minibatch loss" in line and "full-pass train loss" in line
    assert "test acc" in line and "full_train_loss=" not in line


def test_ctrl_c_at_a_training_end_shows_the_stored_count(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake.write("cifar10", tmp_path / "data", n=64, n_test=32, seed=1)
    original = store.Run.save_checkpoint

    def stopping(self: store.Run, epoch: int, *args: Any, **kwargs: Any) -> None:
        self.stop_requested = self.stop_requested or epoch == 1
        original(self, epoch, *args, **kwargs)

    monkeypatch.setattr(store.Run, "save_checkpoint", stopping)
    with builtin_plugin(tmp_path, "optimizers") as env:
        result = hw3("run", "optimizers", "--variants", "l2", "--methods", "adam,adagrad",
                     "--epochs", "1", "--hidden", "16", "--batch-size", "32",
                     "--eval-batch", "50", "--device", "cpu")
        assert result.exit_code == 130, result.output
        last = json.loads((env.newest() / "checkpoints" / "last.json").read_text())
    assert last["epoch"] == 1
    assert "trainings: 1/2 run" in result.output


def test_a_diverged_training_is_flagged(tmp_path: Path) -> None:
    fake.write("cifar10", tmp_path / "data", n=64, n_test=32, seed=1)
    with builtin_plugin(tmp_path, "optimizers") as env:
        result = hw3("run", "optimizers", "--variants", "l2", "--methods", "adagrad",
                     "--adagrad-lr", "1e9", "--epochs", "1", "--hidden", "16",
                     "--batch-size", "32", "--eval-batch", "50", "--device", "cpu")
        assert result.exit_code == 0, result.output
        results = json.loads((env.newest() / "results.json").read_text())
    loss = results["trainings"][0]["history"][0]["train_loss"]
    assert not loss < 1e3  # steps of 1e9 blow the loss up (or to nan)
    assert "WARNING: l2 adagrad diverged at epoch 1" in result.output
    assert any("l2 adagrad diverged" in w for w in results["warnings"])
