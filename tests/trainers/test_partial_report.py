"""``hw3 report`` on an interrupted run (issue 17): real tiny runs stopped after N trainings
the way a first Ctrl-C stops them (at a checkpoint), then reported from what finished, under
a PARTIAL banner, with ``partial: true`` in JSON; nothing finished is one line, exit 2."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hw3_helpers import builtin_plugin, install, make_env
from hw3_helpers import invoke as hw3

from trainers import store
from trainers.data import fake

TINY = ["--epochs", "1", "--hidden", "16", "--batch-size", "32", "--eval-batch", "50",
        "--device", "cpu"]


@contextmanager
def stop_at(monkeypatch: pytest.MonkeyPatch, when: Callable[[int], bool]) -> Iterator[None]:
    """A first Ctrl-C arriving just before the checkpoint of ``epoch`` (the run's count)
    for which ``when`` holds: the run saves it, then stops, as it does for a real one."""
    original = store.Run.save_checkpoint

    def stopping(self: store.Run, epoch: int, *args: Any, **kwargs: Any) -> None:
        self.stop_requested = self.stop_requested or when(epoch)
        original(self, epoch, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(store.Run, "save_checkpoint", stopping)
        yield


def ref(run_dir: Path) -> str:
    return f"{run_dir.parent.name}/{run_dir.name}"


def assert_plots_marked(run_dir: Path, count: str) -> None:
    """Every plot says it is partial (SVG keeps its text as text)."""
    svgs = sorted((run_dir / "plots").glob("*.svg"))
    assert svgs
    for svg in svgs:
        assert f"PARTIAL RUN: {count} FINISHED" in svg.read_text(), svg.name


def test_an_interrupted_optimizers_run_reports_what_finished(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake.write("cifar10", tmp_path / "data", n=64, n_test=32, seed=1)
    with builtin_plugin(tmp_path, "optimizers") as env:
        with stop_at(monkeypatch, lambda epoch: epoch == 2):
            run = hw3("run", "optimizers", "--variants", "l2",
                      "--methods", "adam,adagrad,rmsprop", *TINY)
        assert run.exit_code == 130, run.output
        folder = env.newest()
        report = hw3("report", ref(folder))
        assert report.exit_code == 0, report.output
        as_json = hw3("report", ref(folder), "--format", "json")
        docs = hw3("report", ref(folder), "--to", str(tmp_path / "docs"))
        runs = hw3("runs", "--format", "json")
    text = (folder / "summary.md").read_text()
    assert report.output.startswith(text[:40])
    banner = f"PARTIAL run: 2 of 3 trainings finished; resume with hw3 run optimizers " \
             f"--resume {folder.name}"
    assert banner in text.splitlines()[2]  # at the top, under the generated-from comment
    assert "| adam |" in text and "| adagrad |" in text and "| rmsprop |" not in text
    payload = json.loads(as_json.output)
    assert payload["partial"] is True and payload["run"]["state"] == "interrupted"
    assert banner in payload["markdown"]
    assert docs.exit_code == 2 and "finished runs only" in docs.output
    assert not (tmp_path / "docs").exists()
    record = json.loads(runs.output)["runs"][0]
    assert record["state"] == "interrupted" and record["headline"] == ""
    assert_plots_marked(folder, "2 OF 3 TRAININGS")
    assert "(partial run: 2 of 3 trainings finished): a method that did not run" in text


def test_an_interrupted_cutout_run_reports_the_finished_m(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake.write("cifar10", tmp_path / "data", n=40, n_test=20, seed=1)
    with builtin_plugin(tmp_path, "cutout") as env:
        with stop_at(monkeypatch, lambda epoch: epoch == 1):
            run = hw3("run", "cutout", "--M", "1,2", "--epochs", "1", "--depth", "8",
                      "--batch-size", "4", "--steps", "3", "--eval-batch", "50",
                      "--device", "cpu")
        assert run.exit_code == 130, run.output
        folder = env.newest()
        payload = json.loads(hw3("report", ref(folder), "--format", "json").output)
    text = payload["markdown"]
    assert payload["partial"] is True
    assert "PARTIAL run: 1 of 2 trainings finished" in text
    rows = [line for line in text.splitlines() if line.startswith("| 1 |")]
    assert rows and not any(line.startswith("| 2 |") for line in text.splitlines())
    assert "Only the M that finished are compared" in text
    assert {Path(p).name for p in payload["plots"]} >= {"val-error.png", "to-target.png"}
    assert_plots_marked(folder, "1 OF 2 TRAININGS")


def test_an_interrupted_depth_width_sweep_reports_its_stored_networks(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with builtin_plugin(tmp_path, "depth-width") as env:
        with stop_at(monkeypatch, lambda epoch: epoch == 2):  # its epoch: networks stored
            run = hw3("run", "depth-width", "--epochs", "2", "--points", "2000",
                      "--widths", "16,32", "--layers", "1,2", "--unit-budget", "48",
                      "--workers", "1", "--device", "cpu")
        assert run.exit_code == 130, run.output
        folder = env.newest()
        report = hw3("report", ref(folder))
    assert report.exit_code == 0, report.output
    text = (folder / "summary.md").read_text()
    # 16 | 32 | 16-16 | 16-32 | 32-16: five networks, two stored at the stop
    assert "PARTIAL run: 2 of 5 networks finished" in text
    assert "so only the stored networks are compared" in text
    # largest first: both stored networks have two layers, of the three under 48 units
    assert "| 2 | 2 of 3 |" in text and "| 1 |" not in text
    assert_plots_marked(folder, "2 OF 5 NETWORKS")


def test_a_run_stopped_before_any_training_finished_is_one_line_exit_2(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake.write("cifar10", tmp_path / "data", n=64, n_test=32, seed=1)
    with builtin_plugin(tmp_path, "optimizers") as env:
        with stop_at(monkeypatch, lambda epoch: epoch == 1):
            run = hw3("run", "optimizers", "--variants", "l2", "--methods", "adam",
                      *TINY[:1], "2", *TINY[2:])  # two epochs: stopped after the first
        assert run.exit_code == 130, run.output
        folder = env.newest()
        report = hw3("report", ref(folder))
    assert report.exit_code == 2
    lines = report.output.strip().splitlines()
    assert len(lines) == 1 and "nothing finished yet" in lines[0]
    assert f"hw3 run optimizers --resume {folder.name}" in lines[0]
    assert not (folder / "summary.md").exists()


def test_a_plugin_that_keeps_no_partial_results_says_so(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The test tenant checkpoints its epochs but declares no ``reports_partial``."""
    install(make_env(tmp_path), monkeypatch)
    with stop_at(monkeypatch, lambda epoch: epoch == 2):
        run = hw3("run", "tenant", "--epochs", "3")
    assert run.exit_code == 130, run.output
    folder = next((tmp_path / "runs" / "tenant").iterdir())
    report = hw3("report", ref(folder))
    assert report.exit_code == 2
    assert report.output.strip() == (
        f"error: run {ref(folder)} is interrupted, and plugin 'tenant' keeps no results of "
        f"unfinished runs; resume with hw3 run tenant --resume {folder.name}")


def test_an_interrupted_scaling_run_reports_its_finished_job(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake.write("fashion-mnist", tmp_path / "data", n=256, n_test=64, seed=0)
    with builtin_plugin(tmp_path, "scaling") as env:
        with stop_at(monkeypatch, lambda epoch: epoch == 1):  # its epoch: jobs stored
            run = hw3("run", "scaling", "--parts", "strong,weak", "--model", "tiny",
                      "--learners", "1", "--batch-size", "64", "--steps", "4",
                      "--epochs", "1", "--warmup-steps", "3", "--train-samples", "128",
                      "--device", "cpu")
        assert run.exit_code == 130, run.output
        folder = env.newest()
        payload = json.loads(hw3("report", ref(folder), "--format", "json").output)
    text = payload["markdown"]
    assert payload["partial"] is True
    assert "PARTIAL run: 1 of 2 jobs finished" in text
    assert "Only the finished jobs are shown (partial run: 1 of 2 jobs finished)" in text
    assert "| strong-n1-default |" in text and "| weak-n1-default |" not in text
    assert_plots_marked(folder, "1 OF 2 JOBS")


def test_one_finished_training_is_shown_not_ranked_then_resumed_whole(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Stopped inside the second training (the checkpoint of its first epoch carries the
    first training's results); resumed, the run's report is whole again."""
    fake.write("cifar10", tmp_path / "data", n=64, n_test=32, seed=1)
    two_epochs = [*TINY[:1], "2", *TINY[2:]]
    with builtin_plugin(tmp_path, "optimizers") as env:
        with stop_at(monkeypatch, lambda epoch: epoch == 3):
            run = hw3("run", "optimizers", "--variants", "l2", "--methods", "adam,adagrad",
                      *two_epochs)
        assert run.exit_code == 130, run.output
        folder = env.newest()
        partial = json.loads(hw3("report", ref(folder), "--format", "json").output)
        resumed = hw3("run", "optimizers", "--resume", folder.name)
        assert resumed.exit_code == 0, resumed.output
        whole = json.loads(hw3("report", ref(folder), "--format", "json").output)
    text = partial["markdown"]
    assert "PARTIAL run: 1 of 2 trainings finished" in text
    assert "- **l2**: only adam ran; its training loss is" in text
    assert "One method ran for each variant, so this run ranks none: l2: adam (" in text
    assert "the best by final training loss is" not in text
    assert whole["partial"] is False and whole["run"]["state"] == "finished"
    assert "PARTIAL" not in whole["markdown"]
    assert "with l2 the best by final training loss is" in whole["markdown"]
    stored = json.loads((folder / "results.json").read_text())
    assert "partial" not in stored and len(stored["trainings"]) == 2


def test_reports_partial_must_be_a_bool_and_every_builtin_plugin_declares_it() -> None:
    from trainers import registry
    from trainers.plugins.cutout import plugin as cutout
    from trainers.plugins.depth_width import plugin as depth_width
    from trainers.plugins.optimizers import plugin as optimizers
    from trainers.plugins.scaling import plugin as scaling

    for found in (cutout, depth_width, optimizers, scaling):
        assert registry.check(found, found.name) == ""
        assert found.reports_partial is True

    class Claims(type(optimizers)):  # type: ignore[misc]
        reports_partial = "yes"

    assert registry.check(Claims(), "optimizers").startswith(
        "reports_partial is 'yes'; expected reports_partial: bool")
