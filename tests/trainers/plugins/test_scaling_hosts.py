"""Cluster files of the ``scaling`` plugin: TF_CONFIG for real hosts, one-line errors for bad
files, and a two-host run where each "host" (a process on 127.0.0.1) starts its own task."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hw3_helpers import PluginEnv, builtin_plugin, invoke

from trainers.data import fake
from trainers.errors import ConfigError
from trainers.plugins.scaling import hosts
from trainers.plugins.scaling.cluster import free_ports


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "hosts.toml"
    path.write_text(text)
    return path


def test_tf_config_of_each_host_comes_from_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, 'workers = ["node0.example.org:2222", "10.0.0.2:2223", '
                           '"[fe80::1]:2224"]\n')
    found = hosts.read(str(path), task=1)
    assert found.workers == ("node0.example.org:2222", "10.0.0.2:2223", "[fe80::1]:2224")
    assert not found.chief and hosts.read(str(path), task=0).chief
    config = json.loads(hosts.tf_config(found.workers[:2], found.task))
    assert config == {"cluster": {"worker": ["node0.example.org:2222", "10.0.0.2:2223"]},
                      "task": {"type": "worker", "index": 1}}
    with pytest.raises(ValueError, match="task 2 is not in a cluster of 2"):
        hosts.tf_config(found.workers[:2], 2)


@pytest.mark.parametrize(("text", "problem"), [
    (None, "no such file"),
    ("workers = [", "invalid TOML"),
    ("hosts = ['a:1']", "unknown key 'hosts'"),
    ("", "no workers key"),
    ("workers = []", "a non-empty list"),
    ("workers = 'a:1'", "a non-empty list"),
    ("workers = ['node0']", "workers[0] = 'node0': expected host:port"),
    ("workers = ['a:1', 'node1:99999']", "workers[1] = 'node1:99999'"),
    ("workers = ['a:1', 'b: 2']", "workers[1] = 'b: 2'"),
    ("workers = ['a b:1']", "workers[0]"),
    ("workers = [1]", "workers[0] = 1"),
    ("workers = ['a:1', 'a:1']", "workers[1] = 'a:1' is listed twice"),
    ("workers = ['a:1', 'b:1']\n", "--task 2 must be between 0 and 1"),
])
def test_a_bad_cluster_file_is_named_with_its_problem(tmp_path: Path, text: str | None,
                                                      problem: str) -> None:
    path = tmp_path / "hosts.toml" if text is None else write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        hosts.read(str(path), task=2 if "--task" in problem else 0)
    message = str(caught.value)
    assert message.startswith(f"cluster file {path}: ") and problem in message
    assert "\n" not in message


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PluginEnv]:
    root = tmp_path_factory.mktemp("scaling-hosts")
    fake.write("fashion-mnist", root / "data", n=300, n_test=30, seed=2)
    with builtin_plugin(root, "scaling") as found:
        yield found


def test_hw3_run_with_a_bad_cluster_file_says_one_line_and_exits_2(env: PluginEnv,
                                                                   tmp_path: Path) -> None:
    bad = write(tmp_path, "workers = ['node0:2222', 'node1']\n")
    before = sorted(env.runs.rglob("*")) if env.runs.exists() else []
    result = invoke("run", "scaling", "--model", "tiny", "--cluster", str(bad), "--device", "cpu")
    assert result.exit_code == 2
    message = (f"error: cluster file {bad}: workers[1] = 'node1': expected host:port with a "
               "port in 1-65535")
    assert result.output.strip().splitlines() == [message]  # checked before the run starts
    assert (sorted(env.runs.rglob("*")) if env.runs.exists() else []) == before  # no run left
    lonely = invoke("run", "scaling", "--model", "tiny", "--task", "1", "--device", "cpu")
    assert lonely.exit_code == 2 and "task > 0 needs a cluster file" in lonely.output


TWO_HOSTS = ["--model", "tiny", "--parts", "multi-worker", "--collectives", "ring",
             "--collective-nodes", "2", "--steps", "4", "--epochs", "1", "--warmup-steps", "1",
             "--train-samples", "256", "--device", "cpu"]


def test_two_hosts_each_start_their_own_task(env: PluginEnv, tmp_path: Path) -> None:
    """Host 1 is a second ``hw3`` process; host 0 (the chief) runs in this one."""
    path = write(tmp_path, f"workers = {json.dumps(hosts.local_workers(free_ports(2)))}\n")
    log = tmp_path / "task1.log"
    with log.open("wb") as out:
        other = subprocess.Popen([sys.executable, "-m", "trainers.cli", "run", "scaling",
                                  *TWO_HOSTS, "--cluster", str(path), "--task", "1"],
                                 stdout=out, stderr=subprocess.STDOUT)
    try:
        chief = invoke("run", "scaling", *TWO_HOSTS, "--cluster", str(path), "--task", "0")
        assert other.wait(timeout=180) == 0, log.read_text()
    finally:
        if other.poll() is None:
            other.kill()
    assert chief.exit_code == 0, chief.output
    runs = sorted((env.runs / "scaling").iterdir(), key=lambda p: p.stat().st_mtime_ns)
    by_task = {}
    for run in runs[-2:]:
        results = json.loads((run / "results.json").read_text())
        by_task[results["cluster"]["task"]] = results
    workers = list(hosts.read(str(path), 0).workers)
    job = by_task[0]["jobs"][0]
    assert job["status"] == "ok" and job["hosts"] == workers
    assert job["workers"] == 2 and job["implementation_used"] == "RING"
    assert job["timed_steps"] == 3 and job["images_per_s"] > 0
    assert by_task[1]["jobs"][0]["status"] == "served"
    assert by_task[1]["cluster"]["workers"] == workers
