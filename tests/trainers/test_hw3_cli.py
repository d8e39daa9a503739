"""``hw3`` end to end with a third-party plugin (tests/trainers/tenant.py) installed by metadata.

Named test_hw3_cli.py, not test_cli.py: tests/archcalc/test_cli.py has that basename and the
test folders are not packages.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hw3_helpers import Hw3Env, install, make_env, write_dist
from typer.testing import CliRunner

from trainers import registry, session, store
from trainers.cli import app

RUN = ["run", "tenant", "--epochs", "4", "--steps", "6", "--step-delay", "0.03",
       "--device", "cpu", "--seed", "7"]


def hw3(*args: str) -> Any:
    result = CliRunner().invoke(app, list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def only_run(env: Hw3Env) -> Path:
    (folder,) = (env.runs / "tenant").iterdir()
    return folder


def stored(folder: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """results.json and the metrics without their wall-clock stamps."""
    results = json.loads((folder / "results.json").read_text())
    lines = (folder / "metrics.jsonl").read_text().splitlines()
    metrics = [{k: v for k, v in json.loads(x).items() if k != "time_s"} for x in lines]
    return results, metrics


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Any]]:
    """The uninterrupted run every interrupted-and-resumed run must reproduce exactly."""
    env = make_env(tmp_path_factory.mktemp("baseline"))
    with pytest.MonkeyPatch.context() as mp:
        install(env, mp)
        assert hw3(*RUN).exit_code == 0
        yield stored(only_run(env))
    registry.reset()


# -- light commands -----------------------------------------------------------------------
PROBE = """
import sys
from trainers.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print("HEAVY", sorted({m.split(".")[0] for m in sys.modules} & {"torch", "tensorflow"}))
"""


@pytest.mark.parametrize("args", [["--help"], ["list"], ["run", "--help"]])
def test_help_and_list_import_no_framework(hw3_env: Hw3Env, args: list[str]) -> None:
    env = hw3_env.subprocess_env()
    env.pop("HW3_PLUGINS")  # every installed plugin, built-in ones too
    out = subprocess.run([sys.executable, "-c", PROBE, *args], env=env, capture_output=True,
                         text=True, timeout=60, check=True).stdout
    assert "HEAVY []" in out
    assert ("tenant" in out) == (args != ["--help"])


def test_data_sub_app_is_mounted(hw3_env: Hw3Env) -> None:
    assert "data" in hw3("--help").stdout
    result = hw3("data", "--help")
    assert result.exit_code == 0 and "fake" in result.stdout


def test_list_shows_package_status_and_import_errors(hw3_env: Hw3Env,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    write_dist(hw3_env.site, "hw3-broken", {"broken": "no_such_module_here:plugin"})
    monkeypatch.setenv("HW3_PLUGINS", "tenant,broken")
    result = hw3("list")
    assert result.exit_code == 0
    assert "tenant" in result.stdout and "hw3-tenant 0.1" in result.stdout
    assert "Tiny MLP regression" in result.stdout
    assert "error: plugin 'broken' from hw3-broken 0.1 failed to import " \
           "(no_such_module_here:plugin): ModuleNotFoundError" in result.stdout
    hw3_env.defaults.write_text("[tenant]\nenabled = false\n")
    assert "disabled" in hw3("list").stdout


def test_run_help_is_generated_from_the_config_dataclass(hw3_env: Hw3Env) -> None:
    out = hw3("run", "tenant", "--help").stdout
    assert "--hidden INT,..." in out and "Hidden layer widths." in out
    assert "--steps INT" in out and "[default: 5]" in out  # plugins.toml beats the dataclass
    assert "--synthetic / --no-synthetic" in out
    assert "--resume RUN" in out and "--config FILE" in out


# -- a run, its store and its report ------------------------------------------------------
def test_run_layers_config_stores_and_reports(hw3_env: Hw3Env, tmp_path: Path) -> None:
    overlay = tmp_path / "over.toml"
    overlay.write_text("[tenant]\nlr = 0.02\nhidden = [8]\n")
    result = hw3("run", "tenant", "--config", str(overlay), "--epochs", "2", "--hidden", "4,4",
                 "--device", "cpu", "--seed", "5")
    assert result.exit_code == 0, result.output
    folder = only_run(hw3_env)
    used = tomllib.loads((folder / "config.toml").read_text())
    assert used["tenant"] == {"epochs": 2, "steps": 5, "batch_size": 16, "hidden": [4, 4],
                              "lr": 0.02, "step_delay": 0.0, "synthetic": True, "fail": False}
    assert used["hw3"]["seed"] == 5 and used["hw3"]["device"] == "cpu"
    results, metrics = stored(folder)
    assert len(results["train_loss"]) == 2 and len(metrics) == 2 * 5 + 2
    assert "[stand-in data]" in result.stdout
    summary = (folder / "summary.md").read_text()
    assert "Stand-in data (generated regression data)" in summary
    assert (folder / "plots" / "loss.png").stat().st_size > 0
    runs = hw3("runs").stdout
    assert "finished" in runs and "stand-in" in runs and "test RMSE" in runs

    (folder / "summary.md").unlink()
    (folder / "plots" / "loss.png").unlink()
    before = (folder / "metrics.jsonl").read_bytes()
    report = hw3("report", folder.name)
    assert report.exit_code == 0
    assert report.stdout == (folder / "summary.md").read_text() == summary
    assert (folder / "plots" / "loss.png").is_file()
    assert (folder / "metrics.jsonl").read_bytes() == before  # no training happened


@pytest.mark.parametrize(("args", "message"), [
    (["run", "tenant", "--epochs", "ten"], "option --epochs: expected an integer, got 'ten'"),
    (["run", "tenant", "--lr", "1", "--hidden", "4,x"], "option --hidden: expected an integer"),
    (["run", "nope"], "unknown plugin 'nope' (known: "),
    (["run", "tenant", "--config", "missing.toml"], "missing.toml: no such config file"),
    (["run", "tenant", "--device", "tpu"], "unknown device 'tpu'"),
    (["run", "tenant", "--resume", "20000101-000000-abcd"], "no such run"),
    (["report", "tenant/20000101-000000-abcd"], "no such run"),
])
def test_user_errors_are_one_line_and_exit_2(hw3_env: Hw3Env, args: list[str],
                                             message: str) -> None:
    result = hw3(*args)
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ") and message in result.stderr
    assert result.stderr.count("\n") == 1
    assert not (hw3_env.runs / "tenant").exists()  # nothing was started


def test_bad_key_in_config_file_names_file_and_key(hw3_env: Hw3Env, tmp_path: Path) -> None:
    overlay = tmp_path / "over.toml"
    overlay.write_text("epoch = 3\n")
    result = hw3("run", "tenant", "--config", str(overlay))
    assert result.exit_code == 2 and f"{overlay}: unknown key 'epoch'" in result.stderr
    hw3_env.defaults.write_text("[tenant]\nsteps = 'five'\n")
    result = hw3("run", "tenant", "--help")
    assert result.exit_code == 2
    assert f"{hw3_env.defaults} [tenant]: key 'steps': expected an integer" in result.stderr


def test_disabled_plugin_runs_only_when_enabled_again(hw3_env: Hw3Env, tmp_path: Path) -> None:
    hw3_env.defaults.write_text("[tenant]\nenabled = false\n")
    result = hw3("run", "tenant", "--epochs", "1", "--device", "cpu")
    assert result.exit_code == 2 and "plugin 'tenant' is disabled" in result.stderr
    overlay = tmp_path / "on.toml"
    overlay.write_text("[tenant]\nenabled = true\nsteps = 2\n")
    assert hw3("run", "tenant", "--config", str(overlay), "--epochs", "1",
               "--device", "cpu").exit_code == 0


def test_a_crashing_plugin_leaves_a_failed_run(hw3_env: Hw3Env) -> None:
    with pytest.raises(RuntimeError, match="told to fail"):
        hw3("run", "tenant", "--fail", "--device", "cpu")
    info = json.loads((only_run(hw3_env) / "state.json").read_text())
    assert info["state"] == "failed" and "told to fail" in info["error"]
    assert "failed" in hw3("runs").stdout


COUNTER = '''
from dataclasses import dataclass
from trainers.api import Summary, setting
from trainers.counts import model_counts

@dataclass(frozen=True)
class Config:
    spec: str = setting("", "An archcalc spec file.")

class Counter:
    name = "counter"
    summary = "Counts an archcalc spec."
    config_type = Config

    def run(self, config, ctx):
        return {"params": model_counts(config.spec).params}

    def report(self, results, ctx):
        return Summary("")

plugin = Counter()
'''


def test_an_archcalc_spec_error_during_a_run_is_one_line(hw3_env: Hw3Env,
                                                          tmp_path: Path) -> None:
    (hw3_env.site / "counter_plugin.py").write_text(COUNTER)
    write_dist(hw3_env.site, "hw3-counter", {"counter": "counter_plugin:plugin"})
    spec = tmp_path / "broken.arch"
    spec.write_text("model broken\ninput 3x32x32\nconv 3x3 -> ???\n")
    env = {**hw3_env.subprocess_env(), "HW3_PLUGINS": "counter"}
    done = subprocess.run([sys.executable, "-m", "trainers.cli", "run", "counter", "--spec",
                           str(spec), "--device", "cpu"], env=env, capture_output=True,
                          text=True, check=False)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("error: ") and "broken.arch:3:" in line
    (run,) = (hw3_env.runs / "counter").iterdir()
    assert json.loads((run / "state.json").read_text())["state"] == "failed"


# -- kill, interrupt, resume --------------------------------------------------------------
def start_child(env: Hw3Env, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen([sys.executable, "-m", "trainers.cli", *RUN],
                                env=env.subprocess_env(), stdout=out, stderr=subprocess.STDOUT)


def wait_for(proc: subprocess.Popen[bytes], env: Hw3Env, ready: Any) -> dict[str, Any]:
    """Poll the run directory until ``ready(last_checkpoint, metric_lines)``."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the run ended before it could be interrupted"
        folders = list((env.runs / "tenant").glob("*/checkpoints/last.json"))
        if folders:
            try:
                last = json.loads(folders[0].read_text())
            except json.JSONDecodeError:
                last = None
            lines = (folders[0].parents[1] / "metrics.jsonl").read_bytes().count(b"\n")
            if last and ready(last, lines):
                return last
        time.sleep(0.005)
    raise AssertionError("timed out waiting for the run")


def test_sigkill_mid_epoch_then_resume_matches(hw3_env: Hw3Env, tmp_path: Path,
                                               baseline: tuple[Any, Any]) -> None:
    proc = start_child(hw3_env, tmp_path / "log")
    last = wait_for(proc, hw3_env, lambda last, lines: lines >= last["metrics_lines"] + 2)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL
    folder = only_run(hw3_env)
    assert "interrupted" in hw3("runs").stdout
    lines = (folder / "metrics.jsonl").read_bytes().count(b"\n")
    assert lines > last["metrics_lines"]  # killed mid-epoch: some steps will be redone
    assert hw3("run", "tenant", "--resume", folder.name, "--epochs", "9").exit_code == 2
    result = hw3("run", "tenant", "--resume", folder.name)
    assert result.exit_code == 0, result.output
    assert "resuming run tenant/" in result.stdout
    assert stored(folder) == baseline
    assert json.loads((folder / "state.json").read_text())["resumes"] == 1
    assert hw3("run", "tenant", "--resume", folder.name).exit_code == 2  # finished


def test_ctrl_c_checkpoints_exits_130_and_resumes(hw3_env: Hw3Env, tmp_path: Path,
                                                  baseline: tuple[Any, Any]) -> None:
    proc = start_child(hw3_env, tmp_path / "log")
    first = wait_for(proc, hw3_env, lambda last, lines: True)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 130
    log = (tmp_path / "log").read_text()
    assert "stopping after the next checkpoint" in log
    assert "continue with: hw3 run tenant --resume" in log
    folder = only_run(hw3_env)
    state = json.loads((folder / "state.json").read_text())
    last = json.loads((folder / "checkpoints" / "last.json").read_text())
    # The signal may land just after a checkpoint, which then is "the next checkpoint".
    assert state["state"] == "interrupted" and last["epoch"] >= first["epoch"]
    assert hw3("run", "tenant", "--resume", str(folder)).exit_code == 0
    assert stored(folder) == baseline


# -- torchrun: rank 0 writes the run, the other ranks follow it ---------------------------
def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under ``folder`` with its bytes and mtime."""
    return {str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def trained(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The results each run in this process trains to, stored or not."""
    seen: list[dict[str, Any]] = []
    real = session.train

    def spy(*args: Any) -> dict[str, Any]:
        seen.append(real(*args))
        return seen[-1]

    monkeypatch.setattr(session, "train", spy)
    return seen


def as_rank(monkeypatch: pytest.MonkeyPatch, rank: int, size: int = 2) -> None:
    monkeypatch.setenv("RANK", str(rank))
    monkeypatch.setenv("WORLD_SIZE", str(size))


def test_a_follower_rank_trains_quietly_and_writes_nothing(
        hw3_env: Hw3Env, monkeypatch: pytest.MonkeyPatch) -> None:
    as_rank(monkeypatch, 1)
    seen = trained(monkeypatch)
    result = hw3("run", "tenant", "--epochs", "2", "--device", "cpu")
    assert result.exit_code == 0
    assert (result.stdout, result.stderr) == ("", "")
    assert len(seen[0]["train_loss"]) == 2  # it did train
    with pytest.raises(RuntimeError, match="told to fail"):  # a crash records no failed run
        hw3("run", "tenant", "--fail", "--device", "cpu")
    assert not hw3_env.runs.exists()
    as_rank(monkeypatch, 0)
    assert hw3("run", "tenant", "--epochs", "1", "--device", "cpu").exit_code == 0
    assert json.loads((only_run(hw3_env) / "state.json").read_text())["state"] == "finished"


def test_followers_resume_from_rank_0s_checkpoint_without_writing(
        hw3_env: Hw3Env, monkeypatch: pytest.MonkeyPatch, baseline: tuple[Any, Any]) -> None:
    original = store.Run.save_checkpoint

    def stopping(self: store.Run, epoch: int, *args: Any, **kwargs: Any) -> None:
        self.stop_requested = self.stop_requested or epoch == 2
        original(self, epoch, *args, **kwargs)

    monkeypatch.setattr(store.Run, "save_checkpoint", stopping)
    assert hw3(*RUN).exit_code == 130
    monkeypatch.setattr(store.Run, "save_checkpoint", original)
    folder = only_run(hw3_env)

    loaded: list[store.Checkpoint | None] = []
    load = store.Follower.load_checkpoint
    monkeypatch.setattr(store.Follower, "load_checkpoint",
                        lambda self, *a: loaded.append(load(self, *a)) or loaded[-1])
    seen = trained(monkeypatch)
    as_rank(monkeypatch, 1)
    rank0 = store.Lock(folder / ".lock")
    rank0.acquire()  # rank 0 holds the run while the followers resume it
    try:
        before = snapshot(folder)
        result = hw3("run", "tenant", "--resume", folder.name)
        assert snapshot(folder) == before
    finally:
        rank0.release()
    assert result.exit_code == 0, result.output
    assert (result.stdout, result.stderr) == ("", "")
    results, _ = baseline
    assert loaded[0] == store.Checkpoint(2, {"history": results["train_loss"][:2]})
    assert seen[0]["train_loss"] == results["train_loss"]  # the run rank 0 continues below

    as_rank(monkeypatch, 0)
    result = hw3("run", "tenant", "--resume", folder.name)
    assert result.exit_code == 0, result.output
    assert "resuming run tenant/" in result.stdout
    assert stored(folder) == baseline
