"""A ``cutout`` training run keeps part 1's examples (two training images and a Cutout box
each, at the run's Cutout size and seed) in its own work folder when it starts; an
interrupted run has them, a resumed run keeps them byte for byte, and ``hw3 report`` draws
the run's own examples, not those of a ``--show`` run lying beside it. A run without them
(made before runs kept them) reports with a note. ResNet-8 on a small fake CIFAR-10."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from hw3_helpers import PluginEnv, builtin_plugin
from hw3_helpers import invoke as hw3

from trainers import data as datasets
from trainers import store
from trainers.data import fake
from trainers.plugins.cutout import report

TINY = ["--M", "1,2", "--epochs", "2", "--depth", "8", "--batch-size", "4", "--steps", "2",
        "--eval-batch", "50", "--device", "cpu", "--cutout-size", "8", "--seed", "5"]
STORED = Path("work") / "cutout-examples.json"


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PluginEnv]:
    root = tmp_path_factory.mktemp("cutout-examples")
    fake.write("cifar10", root / "data", n=40, n_test=20, seed=1)
    with builtin_plugin(root, "cutout") as found:
        yield found


@pytest.fixture(scope="module")
def stopped(env: PluginEnv) -> Path:
    """A run stopped by a Ctrl-C at its first checkpoint (epoch 1 of M = 1)."""
    original = store.Run.save_checkpoint

    def stopping(self: store.Run, epoch: int, *args: Any, **kwargs: Any) -> None:
        self.stop_requested = True
        original(self, epoch, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(store.Run, "save_checkpoint", stopping)
        result = hw3("run", "cutout", *TINY)
    assert result.exit_code == 130, result.output
    return env.newest()


def kept(folder: Path) -> dict[str, Any]:
    return dict(json.loads((folder / STORED).read_text()))


def test_an_interrupted_run_already_has_its_examples(env: PluginEnv, stopped: Path) -> None:
    assert json.loads((stopped / "state.json").read_text())["state"] == "interrupted"
    record = kept(stopped)
    assert (record["size"], record["seed"]) == (8, 5)  # the run's --cutout-size and --seed
    assert "SYNTHETIC" in record["data"]
    train = datasets.load("cifar10", env.data).train.x
    assert len(record["index"]) == len(set(record["index"])) == 2
    for i, image in zip(record["index"], record["images"], strict=True):
        assert train[i].tolist() == image  # the training images themselves, uint8
    for y1, y2, x1, x2 in record["boxes"]:  # an 8x8 square, clipped at the border only
        assert 0 <= y1 < y2 <= 32 and 0 <= x1 < x2 <= 32
        assert y2 - y1 == 8 or y1 == 0 or y2 == 32
        assert x2 - x1 == 8 or x1 == 0 or x2 == 32


def test_a_resumed_run_keeps_the_examples_it_started_with(env: PluginEnv,
                                                          stopped: Path) -> None:
    before = (stopped / STORED).stat()
    text = (stopped / STORED).read_text()
    result = hw3("run", "cutout", "--resume", stopped.name)
    assert result.exit_code == 0, result.output
    after = (stopped / STORED).stat()
    assert (stopped / STORED).read_text() == text
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_the_same_seed_draws_the_same_examples_and_another_seed_others(
        env: PluginEnv, stopped: Path) -> None:
    """A fresh run with the same settings keeps the same examples; seed 6 picks others."""
    assert hw3("run", "cutout", *TINY).exit_code == 0
    assert kept(env.newest())["index"] == kept(stopped)["index"]
    other = [*TINY[:-1], "6"]
    assert hw3("run", "cutout", *other).exit_code == 0
    assert kept(env.newest())["seed"] == 6
    assert kept(env.newest())["boxes"] != kept(stopped)["boxes"]


def test_the_report_draws_the_run_s_own_examples_not_a_show_run_beside_it(
        env: PluginEnv, stopped: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert hw3("run", "cutout", "--show", "2", "--device", "cpu",
               "--seed", "9").exit_code == 0
    drawn: list[Mapping[str, Any]] = []
    real = report.draw_examples

    def spy(examples: Mapping[str, Any], ctx: Any, partial: str = "") -> Path:
        drawn.append(examples)
        return real(examples, ctx, partial)

    monkeypatch.setattr(report, "draw_examples", spy)
    result = hw3("report", str(stopped))
    assert result.exit_code == 0, result.output
    assert drawn == [kept(stopped)]
    text = (stopped / "summary.md").read_text()
    assert "![examples](plots/cutout-examples.png)" in text
    assert "8x8 mask" in text and "seed 5" in text
    assert (stopped / "plots" / "cutout-examples.png").stat().st_size > 1000


def test_a_run_without_examples_reports_with_a_note(env: PluginEnv, stopped: Path) -> None:
    """As a run made before runs kept examples: the report says so, in one paragraph."""
    (stopped / STORED).unlink()
    (stopped / "plots" / "cutout-examples.png").unlink(missing_ok=True)
    result = hw3("report", str(stopped))
    assert result.exit_code == 0, result.output
    text = (stopped / "summary.md").read_text()
    assert "This run has no Cutout examples (work/cutout-examples.json is missing" in text
    assert "hw3 run cutout --show 2" in text
    assert "cutout-examples.png" not in text
    assert not (stopped / "plots" / "cutout-examples.png").exists()
    assert "| 2 | 16 |" not in text and "| 2 | 8 | 8 |" in text  # the trainings still report


def test_a_damaged_examples_file_is_named_and_the_rest_reports(env: PluginEnv,
                                                              stopped: Path) -> None:
    (stopped / STORED).write_text('{"index": [0], "images": [[[[300]]]], "boxes": [[0, 1, 0, '
                                  '1]], "size": 8}')
    result = hw3("report", str(stopped))
    assert result.exit_code == 0, result.output
    text = (stopped / "summary.md").read_text()
    assert ("The examples this run kept are damaged: work/cutout-examples.json does not "
            "hold one (C, H, W) uint8 image per index.") in text
    assert "Traceback" not in result.output
