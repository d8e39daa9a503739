"""Every run's metrics.csv and TensorBoard event files, beside metrics.jsonl: written by the
store for any plugin, read back with the csv module and TensorBoard's own EventAccumulator,
and kept equal to metrics.jsonl across a resume that cuts it back."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hw3_helpers import Hw3Env
from typer.testing import CliRunner

from trainers import store
from trainers.cli import app
from trainers.store.logs import MetricLogs, scalars, series_name

RUN = ["run", "tenant", "--epochs", "3", "--steps", "2", "--device", "cpu", "--seed", "1"]
# TensorBoard's reader, in a child whose TensorFlow is blocked (tensorboard then uses its
# stub, as on a machine without TensorFlow): every TensorBoard run's scalars as JSON.
READ_EVENTS = """
import json, sys
sys.modules["tensorflow"] = None
from tensorboard.backend.event_processing.event_multiplexer import EventMultiplexer
mux = EventMultiplexer()
mux.AddRunsFromDirectory(sys.argv[1])
mux.Reload()
out = {}
for run, tags in mux.Runs().items():
    acc = mux.GetAccumulator(run)
    out[run] = {tag: [[e.step, e.value] for e in acc.Scalars(tag)] for tag in tags["scalars"]}
print(json.dumps(out))
"""


def hw3(*args: str) -> Any:
    result = CliRunner().invoke(app, list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def jsonl(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (folder / "metrics.jsonl").read_text().splitlines()]


def csv_rows(folder: Path) -> list[dict[str, str]]:
    with open(folder / "metrics.csv", newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def events(folder: Path) -> dict[str, dict[str, list[list[float]]]]:
    done = subprocess.run([sys.executable, "-c", READ_EVENTS, str(folder)], check=True,
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    found: dict[str, dict[str, list[list[float]]]] = json.loads(done.stdout)
    return found


def expected_curves(records: list[dict[str, Any]]) -> dict[str, dict[str, list[list[float]]]]:
    """What TensorBoard should show, derived from metrics.jsonl by the mapping's rules."""
    curves: dict[str, dict[str, list[list[float]]]] = {}
    points: dict[str, int] = {}
    for r in records:
        run = series_name(r) if "epoch" in r else ""
        index = points.get(run, 0)
        points[run] = index + 1
        step = index if "step" in r or "epoch" not in r else r["epoch"]
        for tag, value in scalars(r).items():
            curves.setdefault(run or ".", {}).setdefault(tag, []).append([step, value])
    return curves


def assert_views_match(folder: Path) -> None:
    records = jsonl(folder)
    rows = csv_rows(folder)
    assert len(rows) == len(records)
    for row, record in zip(rows, records, strict=True):
        assert {k: v for k, v in row.items() if v != ""} == \
            {k: str(v) for k, v in record.items()}
    found = events(folder / "tensorboard")
    want = expected_curves(records)
    assert found.keys() == want.keys()
    for run, tags in want.items():
        assert found[run].keys() == tags.keys()
        for tag, points in tags.items():
            assert [s for s, _ in found[run][tag]] == [s for s, _ in points]
            assert [v for _, v in found[run][tag]] == pytest.approx([v for _, v in points],
                                                                    rel=1e-6)  # float32


def test_a_run_writes_csv_and_tensorboard_beside_metrics(hw3_env: Hw3Env) -> None:
    assert hw3(*RUN).exit_code == 0
    (folder,) = (hw3_env.runs / "tenant").iterdir()
    assert_views_match(folder)
    curves = events(folder / "tensorboard")["."]
    assert [s for s, _ in curves["train_loss"]] == [1, 2, 3]  # epochs on the x axis
    assert len(curves["loss"]) == 3 * 2  # one point per step, steps counted


def test_a_resume_cuts_csv_and_tensorboard_with_metrics(hw3_env: Hw3Env,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    original = store.Run.save_checkpoint

    def crash_after_epoch_2(self: store.Run, epoch: int, *args: Any, **kwargs: Any) -> None:
        original(self, epoch, *args, **kwargs)
        if epoch == 2:  # metrics of epoch 3 are written after this checkpoint, then lost
            self.append_metric({"epoch": 3, "step": 0, "loss": 123.0})
            raise RuntimeError("power cut")

    monkeypatch.setattr(store.Run, "save_checkpoint", crash_after_epoch_2)
    with pytest.raises(RuntimeError):
        hw3(*RUN)
    monkeypatch.setattr(store.Run, "save_checkpoint", original)
    (folder,) = (hw3_env.runs / "tenant").iterdir()
    assert csv_rows(folder)[-1]["loss"] == "123.0"  # the lost epoch is in every view

    assert hw3("run", "tenant", "--resume", folder.name).exit_code == 0
    assert "123.0" not in (folder / "metrics.csv").read_text()
    assert_views_match(folder)


def test_labels_name_the_tensorboard_run_and_new_columns_rewrite_the_csv(tmp_path: Path
                                                                       ) -> None:
    records = [{"variant": "l2", "method": "adam", "epoch": 1, "test_acc": 0.5, "time_s": 3.0},
               {"M": 4, "epoch": 1, "val_loss": 2.0},
               {"key": "2x64", "layers": 2, "params": 4353, "test_rmse": 0.25}]
    logs = MetricLogs(tmp_path, records[:1])
    for record in records[1:]:
        logs.append(record)
    logs.close()
    rows = csv_rows(tmp_path)
    assert list(rows[0]) == ["variant", "method", "epoch", "test_acc", "time_s", "M",
                             "val_loss", "key", "layers", "params", "test_rmse"]
    assert rows[1]["M"] == "4" and rows[1]["variant"] == ""
    found = events(tmp_path / "tensorboard")
    assert found == {"l2-adam": {"test_acc": [[1, 0.5]]}, "M-4": {"val_loss": [[1, 2.0]]},
                     ".": {"layers": [[0, 2.0]], "params": [[0, 4353.0]],
                           "test_rmse": [[0, 0.25]]}}
