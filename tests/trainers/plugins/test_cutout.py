"""The ``cutout`` plugin (Problem 4): config, the archcalc-built ResNet and its shortcut
option, gradient accumulation, DDP on two gloo ranks, and ``hw3 run`` / ``hw3 report`` /
``--show`` end to end on a small fake CIFAR-10 (a ResNet-8 there, to stay quick)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.multiprocessing as mp
from hw3_helpers import REPO, PluginEnv, builtin_plugin
from hw3_helpers import invoke as hw3
from torch import nn

from trainers import store
from trainers.config import read_toml, resolve
from trainers.counts import model_counts, trainable_parameters
from trainers.data import fake
from trainers.errors import ConfigError
from trainers.plugins.cutout.augment import Augment
from trainers.plugins.cutout.config import MS, Config
from trainers.plugins.cutout.run import time_to_target
from trainers.plugins.cutout.train import (
    StepPlan,
    World,
    augmentation_generator,
    build,
    graph,
    make_optimizer,
    train_epoch,
    train_step,
)

SMALL = ["--epochs", "2", "--steps", "2", "--depth", "8", "--batch-size", "8",
         "--eval-batch", "100", "--device", "cpu", "--seed", "2"]


# -- config and model ----------------------------------------------------------------------
def test_plugins_toml_sets_the_protocol() -> None:
    path = REPO / "plugins.toml"
    table = {k: v for k, v in read_toml(path)["cutout"].items() if k != "enabled"}
    config: Config = resolve(Config, [(str(path), table)])
    assert config.M == MS and (config.batch_size, config.epochs, config.depth) == (64, 100, 44)
    assert (config.lr, config.momentum, config.weight_decay) == (0.1, 0.9, 1e-4)
    assert (config.milestones, config.lr_decay, config.shortcut) == ((50, 75), 0.1, "A")
    assert (config.cutout_size, config.pad, config.micro_batch) == (16, 4, 0)


@pytest.mark.parametrize(("change", "message"), [
    ({"M": [2, 2]}, "M must be"), ({"M": [0]}, "M must be"), ({"depth": 45}, "depth"),
    ({"epochs": 0}, "epochs"), ({"micro_batch": -1}, "micro_batch"),
    ({"target_accuracy": 1.5}, "target_accuracy"), ({"shortcut": "C"}, "shortcut"),
])
def test_config_rejects_bad_values(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        resolve(Config, [("test", change)])


def test_resnet44_comes_from_the_spec_with_either_shortcut() -> None:
    a = build(44, "A", "cpu")
    assert trainable_parameters(a) == model_counts("resnet44").params
    assert 0.655e6 < trainable_parameters(a) < 0.665e6  # He et al. Table 6: 0.66M
    b = build(44, "B", "cpu")
    projections = [m for m in b.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1)]
    assert [p.out_channels for p in projections] == [32, 64]
    extra = 16 * 32 + 32 * 64 + 2 * (32 + 64)  # two 1x1 convs and their BN
    assert trainable_parameters(b) == trainable_parameters(a) + extra
    assert model_counts(graph(44, "B")).params == trainable_parameters(b)
    assert b(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


def test_time_to_target_or_best_accuracy_stated_as_such() -> None:
    history = [{"epoch": e, "val_acc": a, "train_time_s": 10.0 * e}
               for e, a in enumerate([0.5, 0.95, 0.9, 0.96], start=1)]
    assert time_to_target(history, 0.94) == {"reached": True, "epoch": 2, "time_s": 20.0,
                                              "acc": 0.95}
    assert time_to_target(history, 0.97) == {"reached": False, "epoch": 4, "acc": 0.96,
                                              "time_s": 40.0}


# -- accumulation and DDP ------------------------------------------------------------------
def data(n: int = 32, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return (torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=gen),
            torch.randint(0, 10, (n,), generator=gen))


def flat(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def test_accumulation_gives_the_full_batch_step() -> None:
    """With BatchNorm on running statistics (eval mode) every sample is independent, so
    micro-batches of 5 (a ragged last one) must give the full step's gradients and weights."""
    x, y = data(8)
    results = []
    for micro in (0, 5):
        torch.manual_seed(4)
        model = build(8, "A", "cpu").eval()
        opt, _ = make_optimizer(model, 0.1, 0.9, 1e-4, (), 0.1)
        loss = train_step(model, opt, x, y, StepPlan(2, Augment(), micro))
        grads = torch.cat([p.grad.flatten() for p in model.parameters()])
        results.append((float(loss), grads, flat(model)))
    (loss0, g0, w0), (loss1, g1, w1) = results
    assert math.isclose(loss0, loss1, rel_tol=1e-5)
    torch.testing.assert_close(g1, g0, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(w1, w0, rtol=1e-5, atol=1e-6)
    assert g0.abs().sum() > 0


def _ddp_worker(rank: int, folder: str) -> None:
    torch.set_num_threads(1)
    torch.distributed.init_process_group("gloo", init_method=f"file://{folder}/rendezvous",
                                         rank=rank, world_size=2)
    torch.manual_seed(0)  # same weights, same permutations on both ranks
    model = build(8, "A", "cpu")
    before = flat(model)
    net = nn.parallel.DistributedDataParallel(model)
    opt, _ = make_optimizer(model, 0.1, 0.9, 1e-4, (), 0.1)
    x, y = data(16)
    draws = augmentation_generator("cpu", 0, rank, 0, 1)  # independent augmentation per rank
    train_epoch(net, opt, x, y, 8, StepPlan(2, Augment(), micro_batch=4), steps=2,
                world=World(rank, 2), generator=draws)
    torch.save({"before": before, "after": flat(model)}, f"{folder}/rank{rank}.pt")
    torch.distributed.destroy_process_group()


def test_each_rank_and_epoch_augments_with_its_own_reproducible_stream() -> None:
    def draws(*key: int) -> list[int]:
        return torch.randint(0, 1 << 30, (4,), generator=augmentation_generator("cpu", *key)
                             ).tolist()

    assert draws(0, 0, 0, 1) == draws(0, 0, 0, 1)  # a resumed epoch draws as before
    streams = [draws(0, 0, 0, 1), draws(0, 1, 0, 1), draws(0, 0, 1, 1), draws(0, 0, 0, 2),
               draws(1, 0, 0, 1)]  # rank, training, epoch and seed each change it
    assert len({tuple(s) for s in streams}) == len(streams)


@pytest.mark.parametrize(("env", "world"), [
    ({}, World(0, 1)), ({"RANK": "1", "WORLD_SIZE": "2"}, World(1, 2)),
    ({"RANK": "3"}, World(0, 1)), ({"RANK": "1", "WORLD_SIZE": "1"}, World(0, 1)),
])
def test_world_comes_from_torchrun_variables(env: dict[str, str], world: World,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("RANK", "WORLD_SIZE"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert World.from_env() == world


@pytest.mark.parametrize("env", [{"RANK": "2", "WORLD_SIZE": "2"},
                                 {"RANK": "x", "WORLD_SIZE": "2"}])
def test_world_rejects_impossible_torchrun_variables(env: dict[str, str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError, match="RANK"):
        World.from_env()


def test_ddp_ranks_keep_identical_weights(tmp_path: Path) -> None:
    mp.spawn(_ddp_worker, args=(str(tmp_path),), nprocs=2, join=True)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1))
    assert torch.equal(r0["before"], r1["before"])
    assert torch.equal(r0["after"], r1["after"])
    assert not torch.allclose(r0["after"], r0["before"])


# -- hw3 run / report end to end -----------------------------------------------------------
@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PluginEnv]:
    """A small fake CIFAR-10, the repository's plugins.toml, only this plugin loaded."""
    root = tmp_path_factory.mktemp("cutout")
    fake.write("cifar10", root / "data", n=100, n_test=50, seed=1)
    with builtin_plugin(root, "cutout") as found:
        yield found


@pytest.fixture(scope="module")
def baseline(env: PluginEnv) -> Path:
    result = hw3("run", "cutout", "--M", "1,4", *SMALL)
    assert result.exit_code == 0, result.output
    return env.newest()


def test_run_trains_each_m_and_says_it_is_stand_in_data(baseline: Path) -> None:
    results = json.loads((baseline / "results.json").read_text())
    assert [(t["M"], t["batch"], t["cutout"]) for t in results["trainings"]] == \
        [(1, 8, 0), (4, 32, 16)]
    for t in results["trainings"]:
        assert [h["epoch"] for h in t["history"]] == [1, 2]
        times = [h["train_time_s"] for h in t["history"]]
        assert 0 < times[0] < times[1]  # cumulative
        assert all(math.isfinite(h["train_loss"]) and 0 <= h["val_error"] <= 1
                   for h in t["history"])
        assert t["target"]["reached"] is False  # 2 epochs: best accuracy, stated as such
    assert results["model"]["params"] == model_counts("resnet-cifar", params={"depth": 8}).params
    assert json.loads((baseline / "state.json").read_text())["stand_in"] is True
    assert json.loads((baseline / "checkpoints" / "last.json").read_text())["epoch"] == 4


def test_report_draws_the_plots_and_the_tables(baseline: Path) -> None:
    for old in (baseline / "plots").iterdir():
        old.unlink()
    result = hw3("report", str(baseline))
    assert result.exit_code == 0, result.output
    for name in ("val-error", "to-target"):
        for suffix in (".png", ".svg"):
            assert (baseline / "plots" / (name + suffix)).stat().st_size > 1000
    text = (baseline / "summary.md").read_text()
    for part in ("Stand-in data", "Epochs and time to", "not reached",
                 "(plots/val-error.png)", "| 4 | 2 |"):
        assert part in text


def test_an_interrupted_run_resumes_to_the_same_weights(env: PluginEnv, baseline: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    original = store.Run.save_checkpoint

    def stopping(self: store.Run, epoch: int, *args: Any, **kwargs: Any) -> None:
        self.stop_requested = self.stop_requested or epoch == 3
        original(self, epoch, *args, **kwargs)

    monkeypatch.setattr(store.Run, "save_checkpoint", stopping)
    assert hw3("run", "cutout", "--M", "1,4", *SMALL).exit_code == 130
    folder = env.newest()
    monkeypatch.setattr(store.Run, "save_checkpoint", original)
    assert hw3("run", "cutout", "--resume", folder.name).exit_code == 0
    resumed, expected = (json.loads((f / "results.json").read_text())["trainings"]
                         for f in (folder, baseline))
    for a, b in zip(resumed, expected, strict=True):
        assert [h["val_loss"] for h in a["history"]] == [h["val_loss"] for h in b["history"]]
        assert [h["train_loss"] for h in a["history"]] == [h["train_loss"] for h in b["history"]]


def test_show_saves_images_beside_their_cutout_versions(env: PluginEnv) -> None:
    result = hw3("run", "cutout", "--show", "2", "--device", "cpu")
    assert result.exit_code == 0, result.output
    folder = env.newest()
    examples = json.loads((folder / "results.json").read_text())["examples"]
    assert len(examples["images"]) == 2 and len(examples["boxes"]) == 2
    assert (folder / "plots" / "cutout-examples.png").stat().st_size > 1000
    assert "Cutout examples" in (folder / "summary.md").read_text()
    assert not (folder / "checkpoints").exists()


def test_torchrun_two_ranks_record_one_run(tmp_path: Path) -> None:
    """``hw3 run cutout`` under torchrun, 2 gloo ranks: rank 0 alone writes and prints."""
    fake.write("cifar10", tmp_path / "data", n=100, n_test=50, seed=1)
    with builtin_plugin(tmp_path, "cutout") as found:
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
        proc = subprocess.run(
            [sys.executable, "-m", "torch.distributed.run", "--standalone",
             "--nproc-per-node", "2", "-m", "trainers.cli", "run", "cutout", "--M", "2",
             *SMALL, "--epochs", "1"],
            env=env, cwd=tmp_path, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (folder,) = (found.runs / "cutout").iterdir()
    assert json.loads((folder / "state.json").read_text())["state"] == "finished"
    results = json.loads((folder / "results.json").read_text())
    assert [(t["M"], len(t["history"])) for t in results["trainings"]] == [(2, 1)]
    assert (folder / "summary.md").is_file()
    assert [p.name for p in (folder / "work").iterdir()] == ["cutout-examples.json"]
    assert "![examples](plots/cutout-examples.png)" in (folder / "summary.md").read_text()
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    assert len(lines) == len(set(lines)), proc.stdout  # nothing printed twice
    assert proc.stdout.count("starting run") == proc.stdout.count("finished cutout/") == 1
    assert "Traceback" not in proc.stderr, proc.stderr
