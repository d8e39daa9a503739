"""The ``scaling`` plugin (Problem 2): the cost model against hand-computed values, the plan,
Keras' ResNet-50 against archcalc, and on a tiny CNN with a few steps: strong and weak jobs on
2 logical CPU devices, every single-node all-reduce, 1, 2 and 4 learners in one run (each job
in its own process), a 2-worker RING job, the BackupAndRestore kill test, ``--model-only``
and ``hw3 report``'s plots."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hw3_helpers import REPO, PluginEnv, builtin_plugin, invoke

from trainers.config import read_toml, resolve
from trainers.data import fake
from trainers.plugins.scaling import perf
from trainers.plugins.scaling.config import Config
from trainers.plugins.scaling.jobs import plan

QUICK = ["--model", "tiny", "--learners", "1,2", "--all-reduce-learners", "1,2", "--steps", "8",
         "--epochs", "1", "--warmup-steps", "2", "--device", "cpu"]
GB = 1e9


# -- the model -------------------------------------------------------------------------------
def test_allreduce_costs_match_hand_computed_values() -> None:
    link = perf.Link("t", 10 * GB, 1e-5)
    m = 100e6  # 100 MB of gradients
    assert perf.allreduce_seconds("ring", 1, m, link) == 0.0
    # ring, N=4: 2*3/4 * 0.01 s + 2*3 * 10 us = 0.015 + 0.00006
    assert perf.allreduce_seconds("ring", 4, m, link) == pytest.approx(0.01506)
    assert perf.allreduce_seconds("nccl", 4, m, link) == pytest.approx(0.01506)
    # reduction to one device, N=4: 2*3 * (0.01 + 0.00001) = 0.06006
    assert perf.allreduce_seconds("reduction-to-one-device", 4, m, link) == \
        pytest.approx(0.06006)
    # hierarchical copy, N=8: 2*3 * (0.01 + 0.00001) = 0.06006; N=5 rounds up to 3 levels
    assert perf.allreduce_seconds("hierarchical-copy", 8, m, link) == pytest.approx(0.06006)
    assert perf.allreduce_seconds("hierarchical-copy", 5, m, link) == pytest.approx(0.06006)
    with pytest.raises(ValueError, match="unknown all-reduce"):
        perf.allreduce_seconds("gossip", 2, m, link)


def test_prediction_time_throughput_and_cost_by_hand() -> None:
    sys_ = perf.System(perf.Link("in", 10 * GB, 0.0), perf.Link("net", 1 * GB, 0.0), 2, 0.45)
    # 2 learners, 128 each, 1 ms per image: compute 0.128 s; ring in-node 2*1/2*0.1/10 = 0.01
    p = perf.predict(2, 128, 1e-3, 0.1 * GB, sys_, samples=25_600, epochs=1)
    assert p.iteration_s == pytest.approx(0.138)
    assert p.images_per_s == pytest.approx(256 / 0.138)
    assert p.train_s == pytest.approx(100 * 0.138)  # 25,600 / 256 = 100 iterations
    assert p.cost_usd == pytest.approx(13.8 / 3600 * 2 * 0.45)
    # 4 learners exceed 2 per node: the ring crosses the 1 GB/s network, 2*3/4*0.1 = 0.15
    assert perf.predict(4, 64, 1e-3, 0.1 * GB, sys_, 25_600, 1).allreduce_s == \
        pytest.approx(0.15)
    assert perf.cost_usd(3600, 8, 0.45) == pytest.approx(3.6)
    assert perf.weak_efficiency(0.1, 0.125) == pytest.approx(0.8)
    assert perf.gradient_bytes(23_544_970) == 94_179_880


def test_compute_model_fits_one_learner_steps_by_hand() -> None:
    # (64, 0.1 s) and (256, 0.25 s): slope 0.15 / 192 s per image, fixed 0.1 - 64 x slope = 0.05
    c = perf.fit_compute([(64, 0.1), (256, 0.25)])
    assert c.per_image_s == pytest.approx(0.15 / 192) and c.fixed_s == pytest.approx(0.05)
    assert c.seconds(128) == pytest.approx(0.05 + 128 * 0.15 / 192)
    assert perf.fit_compute([(256, 0.2), (256, 0.3)]) == perf.Compute(0.0, 0.25 / 256)
    assert perf.fit_compute([(64, 0.3), (256, 0.2)]) == perf.Compute(0.0, 0.5 / 320)  # noise
    with pytest.raises(ValueError, match="no one-learner"):
        perf.fit_compute([])
    # two learners on one device: its arithmetic for both batches, the fixed latency once
    sys_ = perf.System(perf.Link("in", 10 * GB, 0.0), perf.Link("net", 1 * GB, 0.0), 8, 1.0)
    p = perf.predict(2, 64, 1e-3, 0.1 * GB, sys_, 25_600, 1, fixed_s=0.01, shared=2)
    assert p.compute_s == pytest.approx(0.01 + 2 * 0.064)
    assert p.iteration_s == pytest.approx(0.138 + 0.01)  # + ring: 2 * 1/2 * 0.1 GB / 10 GB/s


def test_presets_are_nominal_line_rates() -> None:
    assert perf.LINKS["10gbe"].bandwidth == 1.25e9
    assert perf.LINKS["25gbe"].bandwidth == 3.125e9
    assert perf.LINKS["100gbe"].bandwidth == 12.5e9
    assert {"pcie", "nvlink"} <= set(perf.LINKS)


# -- the plan --------------------------------------------------------------------------------
def defaults() -> Config:
    path = REPO / "plugins.toml"
    table = {k: v for k, v in read_toml(path)["scaling"].items() if k != "enabled"}
    return resolve(Config, [(str(path), table)])  # type: ignore[no-any-return]


def test_the_seed_protocol_plans_the_seeds_jobs() -> None:
    jobs = plan(defaults())
    strong = [j for j in jobs if j.part == "strong"]
    weak = [j for j in jobs if j.part == "weak"]
    assert [j.global_batch for j in strong] == [256] * 5
    assert [j.per_learner_batch for j in strong] == [256, 128, 64, 32, 16]
    assert [j.global_batch for j in weak] == [64, 128, 256, 512, 1024]
    assert [(j.strategy, j.comm, j.nodes) for j in strong][-1] == ("multi-worker", "auto", 2)
    assert len([j for j in jobs if j.part == "all-reduce"]) == 12
    assert [j.comm for j in jobs if j.part == "multi-worker"] == ["auto", "nccl", "ring"]


def test_keras_resnet50_matches_archcalc() -> None:
    from trainers.plugins.scaling import train
    from trainers.plugins.scaling.run import archcalc_counts

    model = train.build_model("resnet50", 32)
    counts = archcalc_counts(defaults())
    trainable = sum(int(v.shape.num_elements()) for v in model.trainable_weights)
    assert model.count_params() == 23_601_930
    assert trainable == counts["params"] == 23_548_810  # shortcut-conv biases included
    assert model.count_params() - trainable == counts["buffers"] == 53_120  # BN mean, var


def test_importing_the_plugin_does_not_import_tensorflow() -> None:
    """``hw3 list`` and the cluster-file reader stay light."""
    code = ("import sys, trainers.plugins.scaling, trainers.plugins.scaling.hosts; "
            "print('tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


SPLIT = """
from trainers.plugins.scaling import train
hw = train.setup_devices(2)
tf = train.tf_module()
strategy, _ = train.mirrored(hw["devices"], "default")
batch = (tf.reshape(tf.range(12.0), (6, 2)), tf.range(6))

def seen(x, y):
    return tf.distribute.get_replica_context().replica_id_in_sync_group, y, x[:, 0]

per_replica = tf.function(lambda: strategy.run(seen, args=train.split(strategy, batch, 2)))()
for r, y, x in zip(*(strategy.experimental_local_results(v) for v in per_replica)):
    print(int(r), y.numpy().tolist(), x.numpy().tolist())
"""


def test_each_local_replica_gets_its_own_slice_of_the_host_batch() -> None:
    out = subprocess.run([sys.executable, "-c", SPLIT], capture_output=True, text=True,
                         check=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert out.stdout.splitlines() == ["0 [0, 1, 2] [0.0, 2.0, 4.0]",
                                       "1 [3, 4, 5] [6.0, 8.0, 10.0]"]


# -- hw3 run / report ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PluginEnv]:
    root = tmp_path_factory.mktemp("scaling")
    fake.write("fashion-mnist", root / "data", n=600, n_test=60, seed=1)
    with builtin_plugin(root, "scaling") as found:
        yield found


def hw3(*args: str) -> Any:
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture(scope="module")
def single_node(env: PluginEnv) -> dict[str, Any]:
    hw3("run", "scaling", *QUICK, "--parts", "strong,weak,all-reduce")
    return dict(json.loads((env.newest() / "results.json").read_text()))


def test_strong_and_weak_jobs_on_two_logical_devices(single_node: dict[str, Any]) -> None:
    hw = single_node["hardware"]
    assert hw["logical"] and hw["device_kind"] == "CPU" and hw["physical_devices"] == 1
    jobs = {j["key"]: j for j in single_node["jobs"]}
    for part, batches in (("strong", (256, 128)), ("weak", (64, 64))):
        for n, b in zip((1, 2), batches, strict=True):
            j = jobs[f"{part}-n{n}-default"]
            assert j["status"] == "ok" and j["per_learner_batch"] == b
            assert j["images_per_s"] > 0 and j["timed_steps"] == 6
            assert j["cost_usd"] == pytest.approx(j["train_s"] / 3600 * n * 0.45)
            assert "logical CPU" in j["hardware"]
    assert jobs["strong-n2-default"]["cross_device_ops"]  # what the default resolved to


def test_each_all_reduce_runs_or_is_reported_not_available(single_node: dict[str, Any]) -> None:
    jobs = {j["key"]: j for j in single_node["jobs"]}
    for n in (1, 2):
        nccl = jobs[f"all-reduce-n{n}-nccl"]
        assert nccl["status"] == "not available" and "GPU" in nccl["reason"]
        assert "images_per_s" not in nccl
        for op, name in (("hierarchical-copy", "HierarchicalCopyAllReduce"),
                         ("reduction-to-one-device", "ReductionToOneDevice")):
            j = jobs[f"all-reduce-n{n}-{op}"]
            assert j["status"] == "ok" and j["cross_device_ops"] == name
            assert j["images_per_s"] > 0


def test_report_draws_every_plot(env: PluginEnv, single_node: dict[str, Any]) -> None:
    run = env.newest()
    hw3("report", str(run))
    names = {p.name for p in (run / "plots").iterdir()}
    for stem in ("throughput", "time", "cost", "weak-efficiency", "all-reduce", "collectives"):
        assert f"{stem}.png" in names and f"{stem}.svg" in names
    text = (run / "summary.md").read_text()
    assert "logical CPU" in text and "not available" in text and "E(2)" in text
    assert_model_compared(single_node, text)


def assert_model_compared(results: dict[str, Any], text: str) -> None:
    """Every measured job carries the model's prediction, and the summary's ratios and
    largest error are the ones the stored numbers give."""
    fitted = results["performance_model"]
    ok = [j for j in results["jobs"] if j.get("images_per_s")]
    assert fitted["fitted_to"] == [j["key"] for j in ok if j["learners"] == 1]
    assert fitted["shared_device"] and fitted["per_image_s"] > 0
    ratios = {}
    for j in ok:
        pred = j["predicted"]
        assert pred["images_per_s"] == pytest.approx(j["global_batch"] / pred["iteration_s"])
        assert pred["train_s"] == pytest.approx(j["steps"] * pred["iteration_s"])
        ratios[j["key"]] = j["images_per_s"] / pred["images_per_s"]
        assert f"| {j['key']} | {j['learners']} |" in text
        assert f"| {ratios[j['key']]:.2f} |" in text
    worst = max(ratios, key=lambda k: abs(ratios[k] - 1))
    assert f"at most {abs(ratios[worst] - 1):.0%} ({worst})" in text


def test_one_run_mixes_one_two_and_four_learners(env: PluginEnv) -> None:
    """MirroredStrategy jobs of different sizes in one process collided in TF's collective
    group keys ("joining a group with size4, but that group has size 2"); each job now runs
    in a fresh process."""
    hw3("run", "scaling", "--model", "tiny", "--learners", "1,2,4", "--parts", "strong",
        "--steps", "3", "--epochs", "1", "--warmup-steps", "1", "--train-samples", "512",
        "--device", "cpu")
    results = json.loads((env.newest() / "results.json").read_text())
    jobs = {j["learners"]: j for j in results["jobs"]}
    assert sorted(jobs) == [1, 2, 4]
    for n, j in jobs.items():
        assert j["status"] == "ok", j.get("reason")
        assert j["timed_steps"] == 2 and j["images_per_s"] > 0
        assert j["hardware"].startswith(f"{n} logical CPU")
    assert len(results["hardware"]["devices"]) == 4


RESUMABLE = ["--model", "tiny", "--learners", "1", "--parts", "strong,weak", "--steps", "3",
             "--epochs", "1", "--warmup-steps", "1", "--train-samples", "256", "--device", "cpu"]


def test_an_interrupted_run_resumes_with_only_the_missing_jobs(env: PluginEnv,
                                                               tmp_path: Path) -> None:
    """Ctrl-C twice during the second job (the first asks to stop after the running job, the
    second stops now and kills its worker); --resume keeps the first job and runs the second."""
    before = set((env.runs / "scaling").glob("*")) if (env.runs / "scaling").is_dir() else set()
    log = tmp_path / "log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "trainers.cli", "run", "scaling",
                                 *RESUMABLE], stdout=out, stderr=subprocess.STDOUT)
    try:
        run = wait_for_job(env, before, proc, "weak-n1-default")
        proc.send_signal(signal.SIGINT)
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 130, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "stopping after the next checkpoint" in log.read_text()
    assert json.loads((run / "state.json").read_text())["state"] == "interrupted"
    assert json.loads((run / "checkpoints" / "last.json").read_text())["epoch"] == 1
    first = run / "work" / "workers" / "strong-n1-default" / "result.json"
    stamp = first.stat().st_mtime_ns
    hw3("run", "scaling", "--resume", run.name)
    assert first.stat().st_mtime_ns == stamp  # the first job did not run again
    results = json.loads((run / "results.json").read_text())
    assert [(j["key"], j["status"]) for j in results["jobs"]] == \
        [("strong-n1-default", "ok"), ("weak-n1-default", "ok")]
    assert results["jobs"][0]["timed_s"] == json.loads(first.read_text())["timed_s"]
    metrics = [json.loads(line)["key"] for line in (run / "metrics.jsonl").open()]
    assert metrics == ["strong-n1-default", "weak-n1-default"]  # one line per job


def wait_for_job(env: PluginEnv, before: set[Path], proc: subprocess.Popen[bytes],
                 key: str) -> Path:
    """The new run's directory, once job ``key`` has started in it."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the run ended before it could be interrupted"
        for run in set((env.runs / "scaling").glob("*")) - before:
            if (run / "work" / "workers" / key / "job.json").is_file():
                return run
        time.sleep(0.05)
    raise AssertionError(f"job {key} did not start")


def test_model_only_predicts_without_training(env: PluginEnv) -> None:
    hw3("run", "scaling", "--model-only", "--learners", "1,2,4,8,16,32,64,128,256")
    run = env.newest()
    results = json.loads((run / "results.json").read_text())
    assert results["gradient_bytes"] == 4 * 23_548_810  # archcalc resnet50-keras, trainable
    ring = [r for r in results["predictions"] if r["part"] == "weak" and r["method"] == "ring"]
    assert [r["learners"] for r in ring][-1] == 256
    assert all(a["iteration_s"] <= b["iteration_s"] for a, b in itertools.pairwise(ring))
    hw3("report", str(run))
    assert (run / "plots" / "model-throughput.png").is_file()


# -- several workers -------------------------------------------------------------------------
def worker_doc(env: PluginEnv, comm: str, steps: int, backup: Path | None = None) -> dict[str, Any]:
    from trainers.plugins.scaling.train import TrainSpec

    spec = TrainSpec("tiny", 32, 1, steps, 2, 0.01, 0, str(env.data))
    doc: dict[str, Any] = {"spec": spec.as_dict(), "job": {"comm": comm, "global_batch": 64}}
    if backup is not None:
        doc.update(backup_dir=str(backup), backup_every=2)
    return doc


def test_two_workers_with_ring(env: PluginEnv, tmp_path: Path) -> None:
    from trainers.plugins.scaling import cluster

    out = cluster.run_job(tmp_path, worker_doc(env, "ring", 8), workers=2, timeout=180)
    assert out["workers"] == 2 and out["steps"] == 8 and out["timed_steps"] == 6
    assert out["implementation_requested"] == "RING" and out["implementation_used"] == "RING"
    assert cluster.effective_implementation("nccl", "CPU") == "RING"  # TF's silent fallback
    assert cluster.effective_implementation("auto", "GPU") == "NCCL"


def test_killed_worker_resumes_from_its_backup(env: PluginEnv, tmp_path: Path) -> None:
    from trainers.plugins.scaling import cluster

    doc = worker_doc(env, "ring", 40, backup=tmp_path / "backup")
    out = cluster.run_killed_and_restarted(tmp_path / "work", doc, workers=2, victim=1,
                                           after_step=4, timeout=180)
    assert out["killed_worker"] == 1 and out["backup_step_at_kill"] >= 4
    assert out["restored_from_step"] == out["backup_step_at_kill"]
    assert out["steps"] == 40 - out["restored_from_step"]  # only the rest was trained
