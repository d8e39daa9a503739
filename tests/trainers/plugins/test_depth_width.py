"""depth-width (Problem 5): the Eggholder data, the enumeration, RMSE units, the engine, and
a reduced sweep through ``hw3 run`` / ``--resume`` / ``hw3 report`` with the installed plugin."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from trainers import registry
from trainers.cli import app
from trainers.counts import model_counts
from trainers.plugins.depth_width import train as eng
from trainers.plugins.depth_width.config import Config, reductions
from trainers.plugins.depth_width.problem import (
    GLOBAL_MINIMUM,
    Arch,
    DataSpec,
    Scaler,
    eggholder,
    enumerate_archs,
    make_data,
    per_depth,
    rmse,
)
from trainers.plugins.depth_width.report import spearman, tradeoff

REPO = Path(__file__).resolve().parents[3]
TINY = ["--epochs", "3", "--points", "5000", "--widths", "16,32", "--unit-budget", "48",
        "--device", "cpu", "--seed", "3"]
TINY_KEYS = {"16", "32", "16-16", "16-32", "32-16", "16-16-16"}
PLOTS = ("rmse_vs_units", "rmse_vs_params", "time_vs_params")


# -- the task -------------------------------------------------------------------------------
def test_eggholder_global_minimum() -> None:
    (x1, x2), value = GLOBAL_MINIMUM
    assert round(float(eggholder(x1, x2)), 4) == value == -959.6407
    grid = np.linspace(-512, 512, 201)
    assert eggholder(*np.meshgrid(grid, grid)).min() > value  # nothing on a grid goes lower


def test_eggholder_by_hand() -> None:
    assert float(eggholder(0.0, 0.0)) == pytest.approx(-47 * math.sin(math.sqrt(47)), abs=1e-12)
    x1, x2 = 100.0, -200.0  # -(x2+47) sin(sqrt|x2+x1/2+47|) - x1 sin(sqrt|x1-(x2+47)|)
    hand = 153 * math.sin(math.sqrt(103)) - 100 * math.sin(math.sqrt(253))
    assert float(eggholder(x1, x2)) == pytest.approx(hand, abs=1e-12)


def test_data_split_range_noise_and_seed() -> None:
    spec = DataSpec(20_000, 0.8, 0.3, 512.0, seed=5)
    data = make_data(spec)
    assert (len(data.x_train), len(data.x_test)) == (16_000, 4_000)
    assert np.abs(data.x_train).max() <= 512 and np.abs(data.x_train).max() > 500
    noise = data.y_train - eggholder(data.x_train[:, 0], data.x_train[:, 1])
    assert noise.std() == pytest.approx(0.3, rel=0.03) and abs(noise.mean()) < 0.01
    again = make_data(spec)
    assert np.array_equal(data.y_test, again.y_test)
    assert not np.array_equal(data.y_test, make_data(DataSpec(20_000, 0.8, 0.3, 512.0, 6)).y_test)
    scaler = Scaler.fit(data, 512.0)
    assert np.abs(scaler.x(data.x_train)).max() <= 1.0
    z = scaler.y(data.y_train)
    assert z.mean() == pytest.approx(0, abs=1e-9) and z.std() == pytest.approx(1, abs=1e-9)


def test_rmse_is_in_original_units() -> None:
    scaler = Scaler(512.0, y_mean=-7.5, y_std=250.0)
    y = np.array([-900.0, -10.0, 0.0, 30.0, 400.0, 12.5])
    signs = np.array([1, -1, 1, -1, 1, -1])
    pred = scaler.y(y + 3.0 * signs)  # the net's outputs, standardised, each off by 3 units
    assert rmse(pred, y, scaler) == pytest.approx(3.0, abs=1e-9)
    assert rmse(scaler.y(y), y, scaler) == pytest.approx(0.0, abs=1e-9)


def test_full_enumeration_counts() -> None:
    archs = enumerate_archs((16, 32, 64, 128, 256, 512), (1, 2, 3), 512)
    assert per_depth(archs) == {1: 6, 2: 25, 3: 112}
    assert all(a.units <= 512 for a in archs) and len(set(archs)) == len(archs) == 143
    keys = {a.key for a in archs}
    assert {"512", "16-256", "256-16", "256-256", "128-256-128"} <= keys
    assert not {"512-16", "256-256-16"} & keys

    def count(depth: int, budget: int) -> int:  # an independent recursion over layers
        if depth == 0:
            return 1
        return sum(count(depth - 1, budget - w) for w in (16, 32, 64, 128, 256, 512)
                   if w <= budget)

    assert [count(d, 512) for d in (1, 2, 3)] == [6, 25, 112]


def test_counts_come_from_the_archcalc_spec() -> None:
    arch = Arch((64, 32))
    assert model_counts("mlp", params=arch.spec_params()).params == 2497
    model = eng.build(arch, seed=1, device="cpu")
    assert sum(p.numel() for p in model.parameters()) == 2497
    same = eng.build(arch, seed=1, device="cpu")
    assert all(a.equal(b) for a, b in zip(model.parameters(), same.parameters(), strict=True))


def test_config_rejects_a_broken_protocol() -> None:
    with pytest.raises(ValueError, match="layers must be 1, 2 or 3"):
        Config(layers=(4,))
    with pytest.raises(ValueError, match="momentum"):
        Config(momentum=0.0)
    with pytest.raises(ValueError, match="at least one batch"):
        Config(points=1000)
    assert reductions(Config()) == []
    assert reductions(Config(epochs=3)) == ["epochs 3 (protocol 2000)"]


# -- the engine -------------------------------------------------------------------------------
def jobs(keys: list[str], epochs: int = 2) -> list[eng.Job]:
    spec = DataSpec(3000, 0.8, 0.3, 512.0, seed=2)
    hyper = eng.Hyper(500, epochs, 0.01, 0.9, "cosine")
    return [eng.Job(Arch.parse(k), eng.job_seed(2, Arch.parse(k)), hyper, spec, "cpu")
            for k in keys]


def run_all(batch: list[eng.Job], workers: int) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    epochs: list[int] = []
    eng.run_jobs(batch, workers, lambda r: found.__setitem__(r["key"], r), epochs.append,
                 lambda: False)
    assert sum(epochs) == sum(j.hyper.epochs for j in batch)
    return found


def test_worker_processes_match_training_in_process() -> None:
    import torch

    batch = jobs(["16", "32-16", "16-16-16"])
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in a worker, so the arithmetic is the same
    try:
        inline = run_all(batch, workers=1)
    finally:
        torch.set_num_threads(threads)
    pooled = run_all(list(reversed(batch)), workers=2)
    for key, record in inline.items():
        assert pooled[key]["test_rmse"] == pytest.approx(record["test_rmse"], rel=1e-6)
        assert pooled[key]["train_rmse"] == pytest.approx(record["train_rmse"], rel=1e-6)
        assert record["epochs"] == 2 and not record["diverged"]


def test_a_failing_worker_raises_with_its_traceback() -> None:
    bad = jobs(["16", "16-16-16-16"])  # four layers: the spec's guard fails in the worker
    with pytest.raises(eng.WorkerError, match=r"16-16-16-16(.|\n)*not a whole number"):
        run_all(bad, workers=2)


def test_divergence_is_recorded_not_hidden() -> None:
    (job,) = jobs(["16-16"], epochs=3)
    job = eng.Job(job.arch, job.seed, eng.Hyper(500, 3, 1e30, 0.9, "constant"), job.data, "cpu")
    record = eng.train(job)
    assert record["diverged"] and record["test_rmse"] is None and record["epochs"] < 3


# -- the summary text -------------------------------------------------------------------------
def rec(key: str, rmse_: float, params: int, time_s: float) -> dict[str, Any]:
    a = Arch.parse(key)
    return {"key": key, "layers": a.depth, "units": a.units, "test_rmse": rmse_,
            "train_rmse": rmse_, "params": params, "train_time_s": time_s}


def test_tradeoff_is_computed_from_the_numbers() -> None:
    records = [rec("512", 100.0, 2049, 10.0), rec("64-64-64", 80.0, 8900, 30.0),
               rec("16-16-16", 120.0, 705, 20.0)]
    text = tradeoff(records)
    assert "(64-64-64: RMSE 80.00, 8,900 parameters) has lower test RMSE" in text
    assert "0.80x the error for 4.3x the parameters and 3.0x the training time" in text
    assert "1 of 2 3-layer networks beat the best 1-layer one" in text
    assert "smallest of them, 64-64-64" in text
    assert "CPU time" not in text  # no CPU times recorded: no claim about waiting
    for r in records:
        r["train_cpu_s"] = r["train_time_s"] / 2
    assert "wall time was 2.00x its CPU time" in tradeoff(records, on_cpu=True)
    assert "CPU time" not in tradeoff(records, on_cpu=False)  # a GPU's wall time is not CPU's
    assert spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 2, 3], [10, 20, 20]) == pytest.approx(0.866, abs=1e-3)  # tied ranks


# -- end to end through the installed plugin ------------------------------------------------------
def hw3(*args: str) -> Any:
    result = CliRunner().invoke(app, list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


@pytest.fixture
def runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """hw3 with only this plugin, the repository's plugins.toml and a private runs folder."""
    monkeypatch.setenv("HW3_PLUGINS", "depth-width")
    monkeypatch.setenv("HW3_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("HW3_PLUGINS_TOML", str(REPO / "plugins.toml"))
    monkeypatch.setenv("HW3_DATA", str(tmp_path / "data"))
    registry.reset()
    yield tmp_path / "runs"
    registry.reset()


def only_run(runs: Path) -> Path:
    (folder,) = (runs / "depth-width").iterdir()
    return folder


def test_reduced_sweep_end_to_end_and_report(runs: Path) -> None:
    result = hw3("run", "depth-width", *TINY, "--workers", "2")
    assert result.exit_code == 0, result.output
    assert "REDUCED run" in result.output
    folder = only_run(runs)
    results = json.loads((folder / "results.json").read_text())
    assert {r["key"] for r in results["configs"]} == TINY_KEYS
    assert results["networks_per_depth"] == {"1": 2, "2": 3, "3": 1}
    assert results["headline"].endswith("[reduced run]")
    assert "epochs 3 (protocol 2000)" in results["reduced"]
    for r in results["configs"]:
        arch = Arch.parse(r["key"])
        assert r["params"] == model_counts("mlp", params=arch.spec_params()).params
        assert r["epochs"] == 3 and r["train_time_s"] > 0
        assert 0.3 < r["test_rmse"] < 1.2 * results["data"]["y_std"]
    assert len((folder / "metrics.jsonl").read_text().splitlines()) == 6
    for name in PLOTS:
        (folder / "plots" / f"{name}.png").unlink()
    (folder / "summary.md").unlink()
    again = hw3("report", f"depth-width/{folder.name}")
    assert again.exit_code == 0, again.output
    assert all((folder / "plots" / f"{n}.{ext}").stat().st_size > 1000 for n in PLOTS
               for ext in ("png", "svg"))
    summary = (folder / "summary.md").read_text()
    assert "**Reduced run**" in summary and "| 48 |" in summary
    assert "## Trade-off" in summary and "plots/time_vs_params.png" in summary


def test_resume_trains_only_the_unfinished(runs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    trained: list[str] = []
    real = eng.train
    budget = [2]  # trainings allowed before a simulated Ctrl-C

    def counted(job: eng.Job, progress: Any = None) -> dict[str, Any]:
        if budget[0] == 0:
            raise KeyboardInterrupt
        budget[0] -= 1
        trained.append(job.arch.key)
        return real(job, progress)

    monkeypatch.setattr(eng, "train", counted)
    assert hw3("run", "depth-width", *TINY, "--workers", "1").exit_code == 130
    folder = only_run(runs)
    assert json.loads((folder / "state.json").read_text())["state"] == "interrupted"
    stored = [json.loads(x) for x in (folder / "metrics.jsonl").read_text().splitlines()]
    assert [m["key"] for m in stored] == trained
    budget[0] = 100
    assert hw3("run", "depth-width", "--resume", folder.name).exit_code == 0
    assert sorted(trained[2:]) == sorted(TINY_KEYS - set(trained[:2]))
    results = json.loads((folder / "results.json").read_text())
    by_key = {r["key"]: r for r in results["configs"]}
    assert set(by_key) == TINY_KEYS and results["session"]["configs"] == 4
    for m in stored:  # the records stored before the interruption are the ones reported
        assert by_key[m["key"]]["test_rmse"] == m["test_rmse"]


def test_spawned_workers_as_on_a_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """A GPU run spawns its workers (CUDA cannot be forked); the same path, on the CPU."""
    monkeypatch.setattr(eng, "start_method", lambda device: "spawn")
    batch = jobs(["16", "16-16"], epochs=1)
    assert run_all(batch, workers=2).keys() == {"16", "16-16"}
