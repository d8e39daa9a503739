"""Worker processes this module launches itself: every job runs in fresh ones.

Each training job gets new processes, so each measurement starts from a clean TensorFlow
runtime: MirroredStrategy jobs with different device counts in one process collide in TF's
collective group keys ("joining a group with size 4, but that group has size 2"), and
logical devices can only be set up once per process. A MirroredStrategy job is one process
without TF_CONFIG (:func:`run_mirrored`). A MultiWorkerMirroredStrategy worker is
``python -m trainers.plugins.scaling.cluster JOB.json`` with its own TF_CONFIG on free ports
of 127.0.0.1. On CPUs one worker process holds one learner (TensorFlow's
collective runtime uses a single CPU device per worker), so N CPU learners need N processes.
The chief (task 0) writes the result. BackupAndRestore: workers save every ``backup_every``
steps and restore the chief's last backup on start, so a cluster restarted after a killed
worker resumes from there (:func:`run_killed_and_restarted`).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

IMPLEMENTATIONS = {"auto": "AUTO", "ring": "RING", "nccl": "NCCL"}
TIMEOUT_S = 600.0


class ClusterError(RuntimeError):
    """A worker failed or the cluster did not finish in time; names the worker's log."""


def free_ports(n: int) -> list[int]:
    """``n`` distinct free TCP ports on 127.0.0.1 (bound and released together)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def tf_config(ports: list[int], index: int) -> str:
    """TF_CONFIG of worker ``index`` in a local cluster."""
    workers = [f"127.0.0.1:{p}" for p in ports]
    return json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker",
                                                                "index": index}})


def effective_implementation(requested: str, device_kind: str) -> str:
    """What the collective runtime runs: NCCL only for GPU tensors, RING otherwise."""
    if device_kind == "GPU":
        return "NCCL" if requested in ("auto", "nccl") else "RING"
    return "RING"


def launch(folder: Path, doc: dict[str, Any], workers: int,
           multi_worker: bool = True) -> list[subprocess.Popen[bytes]]:
    """Start ``workers`` processes for the job described by ``doc``; logs go to ``folder``.

    ``multi_worker=False``: no TF_CONFIG (a MirroredStrategy job in its own process)."""
    folder.mkdir(parents=True, exist_ok=True)
    job_file = folder / "job.json"
    job_file.write_text(json.dumps(doc), encoding="utf-8")
    ports = free_ports(workers)
    procs = []
    for i in range(workers):
        env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
        env["TF_CPP_MIN_LOG_LEVEL"] = "2"
        if multi_worker:
            env["TF_CONFIG"] = tf_config(ports, i)
        log = open(folder / f"worker-{i}.log", "wb")  # noqa: SIM115 - the child owns it
        procs.append(subprocess.Popen([sys.executable, "-m", __name__, str(job_file)],
                                      env=env, stdout=log, stderr=subprocess.STDOUT))
        log.close()
    return procs


def wait_all(procs: list[subprocess.Popen[bytes]], folder: Path,
             timeout: float | None = TIMEOUT_S) -> None:
    """Wait for every worker (``timeout`` None: no limit); on a failure or timeout kill the
    rest and raise, naming the worker's log and its last line."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while any(p.poll() is None for p in procs):
        bad = [i for i, p in enumerate(procs) if p.returncode not in (None, 0)]
        late = deadline is not None and time.monotonic() > deadline
        if bad or late:
            stop(procs)
            who = f"worker {bad[0]}" if bad else "the cluster (timeout)"
            raise ClusterError(f"{who} failed; {_log_hint(folder, bad[0] if bad else 0)}")
        time.sleep(0.1)
    bad = [i for i, p in enumerate(procs) if p.returncode != 0]
    if bad:
        raise ClusterError(f"worker {bad[0]} exited {procs[bad[0]].returncode}; "
                           f"{_log_hint(folder, bad[0])}")


def _log_hint(folder: Path, index: int) -> str:
    """``see LOG: last line`` for the failure message."""
    log = folder / f"worker-{index}.log"
    lines = log.read_text(encoding="utf-8", errors="replace").strip().splitlines() \
        if log.is_file() else []
    return f"see {log}" + (f": {lines[-1][-200:]}" if lines else "")


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    """SIGKILL the workers still running (only the ones this module started)."""
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
    for p in procs:
        p.wait()


def run_job(folder: Path, doc: dict[str, Any], workers: int,
            timeout: float = TIMEOUT_S) -> dict[str, Any]:
    """Run one multi-worker job to the end; the chief's result."""
    result = folder / "result.json"
    result.unlink(missing_ok=True)
    wait_all(launch(folder, {**doc, "result": str(result)}, workers), folder, timeout)
    return dict(json.loads(result.read_text(encoding="utf-8")))


def run_mirrored(folder: Path, doc: dict[str, Any],
                 timeout: float | None = None) -> dict[str, Any]:
    """Run one MirroredStrategy job in a fresh process (its own TF runtime and devices).

    ``doc`` holds ``spec`` and ``job`` (learners, comm, global_batch). Returns the result,
    which carries the process's hardware record; raises ``engine.NotAvailableError`` for a
    method the hardware cannot run, :class:`ClusterError` when the process fails."""
    from trainers.plugins.scaling.engine import NotAvailableError

    result = folder / "result.json"
    result.unlink(missing_ok=True)
    procs = launch(folder, {**doc, "strategy": "mirrored", "result": str(result)}, 1,
                   multi_worker=False)
    wait_all(procs, folder, timeout)
    out = dict(json.loads(result.read_text(encoding="utf-8")))
    if "not_available" in out:
        raise NotAvailableError(out["not_available"])
    return out


def run_killed_and_restarted(folder: Path, doc: dict[str, Any], workers: int, victim: int = 1,
                             after_step: int = 1, timeout: float = TIMEOUT_S) -> dict[str, Any]:
    """SIGKILL worker ``victim`` once a backup of ``after_step`` exists, stop the cluster,
    start it again and let it finish from the backup; the chief's result of the restart."""
    backup = Path(doc["backup_dir"]) / "chief"
    procs = launch(folder, {**doc, "result": str(folder / "killed-run.json")}, workers)
    deadline = time.monotonic() + timeout
    while _backup_step(backup) < after_step:
        if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
            stop(procs)
            raise ClusterError(f"no backup of step {after_step} appeared; see {folder}")
        time.sleep(0.05)
    procs[victim].send_signal(signal.SIGKILL)
    stop(procs)  # the survivors cannot finish a collective without it
    killed_at = _backup_step(backup)
    result = run_job(folder, doc, workers, timeout)
    return {**result, "killed_worker": victim, "backup_step_at_kill": killed_at}


def _backup_step(folder: Path) -> int:
    """The step of the newest backup in ``folder`` (0: none)."""
    index = folder / "checkpoint"
    if not index.is_file():
        return 0
    text = index.read_text(encoding="utf-8")
    digits = text.split('"')[1].rsplit("-", 1)[-1] if '"' in text else "0"
    return int(digits) if digits.isdigit() else 0


# -- the worker process ----------------------------------------------------------------------
def mirrored_main(doc: dict[str, Any]) -> None:
    """A MirroredStrategy job: devices, strategy, train; the result has the hardware record."""
    from trainers.plugins.scaling import engine

    job, spec = doc["job"], engine.TrainSpec(**doc["spec"])
    hardware = engine.setup_devices(int(job["learners"]))
    try:
        strategy, resolved = engine.mirrored(hardware["devices"], job["comm"])
    except engine.NotAvailableError as exc:
        out: dict[str, Any] = {"not_available": str(exc), "hardware": hardware}
    else:
        x, y, _, _ = engine.load_arrays(spec.data_dir, spec.train_samples)
        out = engine.train(strategy, spec, x, y, int(job["global_batch"]))
        out.update(cross_device_ops=resolved, hardware=hardware)
    Path(doc["result"]).write_text(json.dumps(out), encoding="utf-8")


def worker_main(job_file: str) -> None:
    """One worker: build the strategy first (TF's rule), train, chief writes the result."""
    from trainers.plugins.scaling import engine

    doc = json.loads(Path(job_file).read_text(encoding="utf-8"))
    if doc.get("strategy") == "mirrored":
        mirrored_main(doc)
        return
    tf = engine.tf_module()
    requested = doc["job"]["comm"]
    options = tf.distribute.experimental.CommunicationOptions(
        implementation=getattr(tf.distribute.experimental.CommunicationImplementation,
                               IMPLEMENTATIONS[requested]))
    strategy = tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
    resolver = strategy.cluster_resolver
    task = int(resolver.task_id)
    kind = "GPU" if tf.config.list_physical_devices("GPU") else "CPU"
    spec = engine.TrainSpec(**doc["spec"])
    x, y, _, _ = engine.load_arrays(spec.data_dir, spec.train_samples)
    backup = None
    if doc.get("backup_dir"):
        backup = engine.Backup(Path(doc["backup_dir"]), int(doc["backup_every"]), task == 0,
                               task)
    out = engine.train(strategy, spec, x, y, int(doc["job"]["global_batch"]), backup=backup)
    if task == 0:
        out.update(implementation_requested=IMPLEMENTATIONS[requested],
                   implementation_used=effective_implementation(requested, kind),
                   workers=strategy.extended._num_workers, device_kind=kind)
        Path(doc["result"]).write_text(json.dumps(out), encoding="utf-8")


if __name__ == "__main__":
    worker_main(sys.argv[1])
