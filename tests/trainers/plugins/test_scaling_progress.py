"""What a ``scaling`` run shows (issue 17): steps inside a job that trains in another
process, the plan line first, a warning when throughput is timed on fewer steps than the
warm-up, no TensorFlow start-up notices, numbers in full, and the jobs count at a Ctrl-C."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hw3_helpers import REPO, PluginEnv, builtin_plugin
from hw3_helpers import invoke as hw3
from rich.console import Console

from trainers import progress, store
from trainers.config import resolve
from trainers.data import fake
from trainers.plugins.scaling import cluster
from trainers.plugins.scaling.config import Config
from trainers.plugins.scaling.jobs import plan
from trainers.plugins.scaling.run import short_timing, warn_if_short
from trainers.plugins.scaling.train import TrainSpec
from trainers.progress import Progress

TINY = ["--model", "tiny", "--learners", "1", "--batch-size", "64", "--steps", "4", "--epochs", "1",
        "--warmup-steps", "3", "--train-samples", "128", "--device", "cpu"]


def test_a_worker_reports_its_steps_to_the_parent(tmp_path: Path) -> None:
    seen: list[int] = []
    watch = cluster.step_watch(tmp_path, seen.append)
    assert watch is not None
    watch()
    assert seen == [0]  # nothing written yet: step 0, no error
    report = cluster.step_reporter(tmp_path)
    report(1)
    report(2)  # within STEP_EVERY_S of the first: not written
    watch()
    assert seen == [0, 1]
    cluster.write_step(tmp_path, 7)  # the worker's last word
    watch()
    assert seen == [0, 1, 7]


def test_throughput_on_fewer_steps_than_the_warm_up_is_flagged() -> None:
    out = io.StringIO()
    shown = Progress(Console(file=out, width=100))
    warn_if_short(shown, {"key": "strong-n1-default", "status": "ok", "timed_steps": 1}, 3)
    warn_if_short(shown, {"key": "weak-n1-default", "status": "ok", "timed_steps": 5}, 3)
    assert len(shown.warnings) == 1 and "timed on 1 step(s)" in shown.warnings[0]
    config: Config = resolve(Config, [("test", {"model": "tiny", "learners": [1, 2],
                                                "steps": 4, "warmup_steps": 3})])
    spec = TrainSpec("tiny", 32, 1, 4, 3, 0.01, 0, "", 0)
    assert "of" in short_timing(config, spec, 1000, plan(config))[0]
    longer: Config = resolve(Config, [("test", {"model": "tiny", "steps": 10,
                                                "warmup_steps": 3})])
    assert short_timing(longer, TrainSpec("tiny", 32, 1, 10, 3, 0.01, 0, "", 0), 1000,
                        plan(longer)) == ()


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PluginEnv]:
    root = tmp_path_factory.mktemp("scaling-progress")
    fake.write("fashion-mnist", root / "data", n=256, n_test=64, seed=0)
    with builtin_plugin(root, "scaling") as found:
        yield found


def test_a_run_shows_its_plan_steps_and_warnings_without_tf_notices(env: PluginEnv) -> None:
    environ = {**os.environ, "HW3_PLUGINS": "scaling", "HW3_RUNS": str(env.runs),
               "HW3_DATA": str(env.data), "HW3_PLUGINS_TOML": str(REPO / "plugins.toml"),
               "PYTHONPATH": str(REPO), "COLUMNS": "120"}
    code = ("import trainers.progress as p, sys; p.PLAIN_EVERY_S = 0.0; "
            "from trainers.cli import main; main(sys.argv[1:])")
    run = subprocess.run([sys.executable, "-c", code, "run", "scaling", "--parts", "strong",
                          *TINY], capture_output=True, text=True, env=environ, timeout=400)
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    assert lines[1].startswith("plan: 1 trainings, 1 epochs, 256 images")
    assert any("| strong-n1-default 4/4" in line for line in lines), lines
    assert "WARNING: strong-n1-default: throughput timed on 1 step(s)" in run.stdout
    for notice in ("oneDNN custom operations", "absl::InitializeLog"):
        assert notice not in run.stdout + run.stderr
    results = json.loads(next(env.runs.glob("scaling/*/results.json")).read_text())
    assert any("timed on 1 step(s)" in w for w in results["warnings"])
    assert results["plan"]["train_images"] == 4 * 64  # 4 steps at the strong batch of 64
    assert "e+" not in run.stdout  # numbers in full


def test_ctrl_c_after_a_job_shows_the_jobs_its_checkpoint_holds(
        env: PluginEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    original = store.Run.save_checkpoint

    def stopping(self: store.Run, epoch: int, *args: Any, **kwargs: Any) -> None:
        self.stop_requested = self.stop_requested or epoch == 1
        original(self, epoch, *args, **kwargs)

    monkeypatch.setattr(store.Run, "save_checkpoint", stopping)
    monkeypatch.setattr(progress, "PLAIN_EVERY_S", 3600.0)
    result = hw3("run", "scaling", "--parts", "strong,weak", *TINY)
    assert result.exit_code == 130, result.output
    assert "jobs: 1/2 job" in result.output
    ledger = env.newest() / "checkpoints" / "last.json"
    assert json.loads(ledger.read_text())["epoch"] == 1  # one job's record is stored
