"""``hw3 run NAME --plan``: the protocol counted (trainings, epochs, images, archcalc's FLOPs)
and a projected wall time from a few timed steps, checked against the measured time of a
reduced run; and the plan line every run starts with."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from hw3_helpers import PluginEnv, builtin_plugin
from hw3_helpers import invoke as hw3

from trainers.counts import model_counts
from trainers.data import fake
from trainers.plan import (
    A100_FP32_FLOPS,
    GPU_UTILIZATION,
    Calibration,
    Plan,
    about,
    duration,
    human_count,
)
from trainers.plugins.cutout.train import graph

TINY = ["--depth", "8", "--batch-size", "8", "--steps", "3", "--epochs", "2", "--M", "1,2",
        "--eval-batch", "50", "--device", "cpu", "--seed", "1"]
N_TRAIN, N_TEST = 100, 50
# Projection against a measured reduced run: a few timed steps stand for a whole run on a
# machine shared with other work, so a factor of 3 either way is the stated tolerance.
TOLERANCE = 3.0


def plan(**changes: object) -> Plan:
    fields: dict[str, object] = dict(
        plugin="p", trainings=2, epochs=10, train_images=1000, eval_images=300,
        flops=4e12, work=1100.0,
        calibration=Calibration("steps", "image", 50, 2.0, 1, "CPU"))
    fields.update(changes)
    return Plan(**fields)  # type: ignore[arg-type]


# -- the arithmetic ------------------------------------------------------------------------
def test_projection_is_the_work_at_the_measured_pace() -> None:
    p = plan()
    assert p.seconds_here == pytest.approx(1100 * 2.0 / 50)
    assert plan(workers=4).seconds_here == pytest.approx(1100 * 2.0 / 50 / 4)
    assert p.seconds_on_gpu == pytest.approx(4e12 / (19.5e12 * 0.4))
    assert (A100_FP32_FLOPS, GPU_UTILIZATION) == (19.5e12, 0.4)
    record = p.record()
    assert record["projected_s"] == pytest.approx(44.0)
    assert record["calibration"]["units"] == 50 and "A100" in record["gpu"]
    json.dumps(record)  # plain data


def test_durations_and_counts_read_as_people_say_them() -> None:
    assert [duration(s) for s in (40, 12 * 60, 3.1 * 3600, 2.5 * 86400)] == \
        ["40 s", "12 min", "3.1 h", "2.5 days"]
    assert about(0.2) == "under 1 s" and about(40) == "≈ 40 s"
    assert [human_count(n) for n in (1.67e15, 31.3e9, 480e3, 288)] == \
        ["1.67 P", "31.3 G", "480 k", "288 "]


def test_plan_lines_fit_80_columns_and_state_warnings() -> None:
    long = plan(warnings=("--epochs 300 is above the homework's limit of 100 epochs per "
                          "training: its results answer a different question",),
                notes=("x " * 60,))
    lines = long.lines()
    assert all(len(line) <= 80 for line in lines), lines
    assert any(line.startswith("WARNING: --epochs 300") for line in lines)


# -- end to end on a small fake CIFAR-10 ---------------------------------------------------
@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PluginEnv]:
    root = tmp_path_factory.mktemp("plan")
    fake.write("cifar10", root / "data", n=N_TRAIN, n_test=N_TEST, seed=1)
    with builtin_plugin(root, "cutout") as found:
        yield found


def test_plan_counts_the_protocol_and_makes_no_run(env: PluginEnv) -> None:
    result = hw3("run", "cutout", "--plan", *TINY)
    assert result.exit_code == 0, result.output
    assert not (env.runs / "cutout").exists()  # nothing trained, nothing stored
    lines = result.output.splitlines()
    assert all(len(line) <= 80 for line in lines), lines
    train_images = 2 * 3 * 8 * (1 + 2)  # epochs x steps x B x sum(M)
    assert f"training images  {train_images:,} (forward and backward)" in result.output
    assert "trainings        2" in result.output and "stand-in data" in result.output
    # a tiny run on a fast machine projects "under 1 s", a slow one "≈ 2 s"
    assert re.search(r"projection: these settings (≈ |under )\d", result.output)
    assert "A100" in result.output


def test_plan_as_json_holds_archcalc_flops(env: PluginEnv) -> None:
    result = hw3("run", "cutout", "--plan", "--format", "json", *TINY)
    assert result.exit_code == 0, result.output
    found = json.loads(result.output)["plan"]
    forward = model_counts(graph(8, "A")).flops
    train_images, eval_images = 2 * 3 * 8 * 3, 2 * 2 * N_TEST
    assert (found["trainings"], found["epochs"]) == (2, 4)
    assert (found["train_images"], found["eval_images"]) == (train_images, eval_images)
    assert found["flops"] == pytest.approx(forward * (3 * train_images + eval_images))
    assert found["calibration"]["seconds"] > 0 and found["projected_s"] > 0


def test_json_without_plan_is_a_usage_error(env: PluginEnv) -> None:
    result = hw3("run", "cutout", "--format", "json", *TINY)
    assert result.exit_code == 2 and "--plan" in result.output


def test_epochs_above_the_homework_limit_are_flagged(env: PluginEnv) -> None:
    result = hw3("run", "cutout", "--plan", "--format", "json",
                 *[a if a != "2" else "101" for a in TINY])
    assert result.exit_code == 0, result.output
    warnings = json.loads(result.output)["warnings"]
    assert any("above the homework's limit of 100" in w for w in warnings)


def test_the_projection_holds_for_a_reduced_run(env: PluginEnv) -> None:
    """The run's own plan line, then its measured time: within the stated tolerance."""
    args = ["--depth", "8", "--batch-size", "16", "--steps", "6", "--epochs", "2",
            "--M", "1,2", "--eval-batch", "50", "--device", "cpu"]
    result = hw3("run", "cutout", *args)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("starting run") and lines[1].startswith("plan: 2 trainings")
    folder = env.newest()
    recorded = json.loads((folder / "results.json").read_text())["plan"]
    projected, measured = recorded["projected_s"], recorded["measured_s"]
    metrics = [json.loads(line) for line in (folder / "metrics.jsonl").open()]
    assert 0 < measured <= metrics[-1]["time_s"] + 1  # the run after its plan line
    assert 1 / TOLERANCE <= projected / measured <= TOLERANCE, (projected, measured)


def test_plan_needs_a_new_run(env: PluginEnv) -> None:
    result = hw3("run", "cutout", "--plan", "--resume", "x")
    assert result.exit_code == 2 and "drop --resume" in result.output


def test_depth_width_and_optimizers_plan_their_sweeps(tmp_path: Path) -> None:
    fake.write("cifar10", tmp_path / "data", n=N_TRAIN, n_test=N_TEST, seed=1)
    with builtin_plugin(tmp_path, "optimizers"):
        result = hw3("run", "optimizers", "--plan", "--format", "json", "--epochs", "3",
                     "--device", "cpu")
    assert result.exit_code == 0, result.output
    found = json.loads(result.output)["plan"]
    assert found["trainings"] == 10 and found["train_images"] == 10 * 3 * N_TRAIN
    with builtin_plugin(tmp_path, "depth-width"):
        result = hw3("run", "depth-width", "--plan", "--format", "json", "--widths", "16,32",
                     "--layers", "1,2", "--unit-budget", "64", "--epochs", "5",
                     "--points", "2000", "--device", "cpu")
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    found = document["plan"]
    assert found["trainings"] == 6  # 16, 32, and four two-layer pairs within 64 units
    assert any("REDUCED run" in w for w in document["warnings"])


def test_settings_that_train_nothing_have_no_cost(env: PluginEnv) -> None:
    result = hw3("run", "cutout", "--plan", "--show", "2", "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert "train nothing" in result.output
    document = json.loads(hw3("run", "cutout", "--plan", "--show", "2", "--format",
                              "json").output)
    assert document["plan"] is None


def test_a_plugin_without_a_plan_says_so(hw3_env: object) -> None:
    result = hw3("run", "tenant", "--plan", "--device", "cpu")
    assert result.exit_code == 2
    assert "cannot project its cost" in result.output
