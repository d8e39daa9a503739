"""What a ``cutout`` run shows while it trains (issue 17): step progress inside an epoch with
the whole run's ETA, epoch lines of loss, accuracy and time, warnings for a diverged training
and for epochs above the homework's limit (printed and in the run record), and the count of
finished trainings when a Ctrl-C stops the run. ResNet-8 on a small fake CIFAR-10."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from hw3_helpers import PluginEnv, builtin_plugin
from hw3_helpers import invoke as hw3

from trainers import progress, store
from trainers.data import fake

TINY = ["--depth", "8", "--batch-size", "4", "--steps", "3", "--eval-batch", "50",
        "--device", "cpu"]


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PluginEnv]:
    root = tmp_path_factory.mktemp("cutout-progress")
    fake.write("cifar10", root / "data", n=40, n_test=20, seed=1)
    with builtin_plugin(root, "cutout") as found:
        yield found


def results(env: PluginEnv) -> dict[str, Any]:
    return dict(json.loads((env.newest() / "results.json").read_text()))


def test_steps_show_inside_an_epoch_with_the_run_eta(env: PluginEnv,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(progress, "PLAIN_EVERY_S", 0.0)  # a position line at every step
    result = hw3("run", "cutout", "--M", "1,2", "--epochs", "1", *TINY)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    steps = [line for line in lines if "| steps " in line]
    assert any(line.startswith("[stand-in data] [trainings 0/2 | M=1 0/1 | steps 1/3")
               for line in steps), lines
    assert any("| steps 3/3 | run ETA " in line for line in steps)
    epoch = next(line for line in lines if "epoch 1:" in line)
    assert "train loss" in epoch and "val acc" in epoch and "%, " in epoch
    assert "=" not in epoch.split("]")[-1]  # no key=value pairs
    assert "warnings" not in results(env)


def test_a_diverged_training_is_flagged_in_output_and_record(env: PluginEnv) -> None:
    result = hw3("run", "cutout", "--M", "1", "--epochs", "1", "--lr", "1e6", *TINY)
    assert result.exit_code == 0, result.output
    history = results(env)["trainings"][0]["history"][0]
    assert not history["train_loss"] < 1e3  # a step of 1e6 blows the loss up (or to nan)
    assert "WARNING: M=1 diverged at epoch 1" in result.output
    assert any("M=1 diverged" in w for w in results(env)["warnings"])


def stop_at(monkeypatch: pytest.MonkeyPatch, stop_epoch: int) -> None:
    """A first Ctrl-C just before checkpoint ``stop_epoch``: the run stops there."""
    original = store.Run.save_checkpoint

    def stopping(self: store.Run, epoch: int, *args: Any, **kwargs: Any) -> None:
        self.stop_requested = self.stop_requested or epoch == stop_epoch
        original(self, epoch, *args, **kwargs)  # raises KeyboardInterrupt once stopped

    monkeypatch.setattr(store.Run, "save_checkpoint", stopping)


def test_epochs_above_the_limit_are_flagged_in_a_run(env: PluginEnv,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Flagged from the start; a run stopped early keeps its warnings in state.json."""
    stop_at(monkeypatch, 1)
    result = hw3("run", "cutout", "--M", "1", "--epochs", "101", *TINY)
    assert result.exit_code == 130, result.output
    assert "WARNING: --epochs 101 is above the homework's limit of 100" in result.output
    state = json.loads((env.newest() / "state.json").read_text())
    assert state["state"] == "interrupted"
    assert any("limit of 100" in w for w in state["warnings"])


def test_ctrl_c_at_a_training_end_shows_the_trainings_the_checkpoint_holds(
        env: PluginEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first Ctrl-C stops the run at its next checkpoint: here the one that ends the
    first training. The count shown is the count stored, and the resume says the same."""
    stop_at(monkeypatch, 1)
    result = hw3("run", "cutout", "--M", "1,2", "--epochs", "1", *TINY)
    assert result.exit_code == 130, result.output
    folder = env.newest()
    last = json.loads((folder / "checkpoints" / "last.json").read_text())
    assert last["epoch"] == 1  # training 1 of 2 is stored
    assert "trainings: 1/2 run" in result.output
    assert "interrupted; continue with" in result.output
