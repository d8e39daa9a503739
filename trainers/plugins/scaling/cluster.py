"""Worker processes this module launches itself: every job runs in fresh ones.

Each training job gets new processes, so each measurement starts from a clean TensorFlow
runtime: MirroredStrategy jobs with different device counts in one process collide in TF's
collective group keys ("joining a group with size 4, but that group has size 2"), and
logical devices can only be set up once per process. A MirroredStrategy job is one process
without TF_CONFIG (:func:`run_mirrored`). A MultiWorkerMirroredStrategy worker is
``python -m trainers.plugins.scaling.cluster JOB.json`` with its own TF_CONFIG on free ports
of 127.0.0.1, or on the entries of a cluster file (hosts.py), where each host starts its own
task (:func:`run_tasks`). On CPUs one worker process holds one learner (TensorFlow's
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
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainers.plugins.scaling import hosts

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


def effective_implementation(requested: str, device_kind: str) -> str:
    """What the collective runtime runs: NCCL only for GPU tensors, RING otherwise."""
    if device_kind == "GPU":
        return "NCCL" if requested in ("auto", "nccl") else "RING"
    return "RING"


@dataclass
class Worker:
    """A worker process this module started: its task index, process and log file."""

    task: int
    proc: subprocess.Popen[bytes]
    log: Path


def launch(folder: Path, doc: dict[str, Any], configs: Mapping[int, str | None]) -> list[Worker]:
    """Start one process per task of ``configs`` (task -> its TF_CONFIG; None: none, a
    MirroredStrategy job) for the job described by ``doc``; logs go to ``folder``.

    Each worker gets its own session, so a Ctrl-C at the terminal reaches hw3 alone, which
    then lets the running job finish (first Ctrl-C) or kills its workers (second)."""
    folder.mkdir(parents=True, exist_ok=True)
    job_file = folder / "job.json"
    job_file.write_text(json.dumps(doc), encoding="utf-8")
    workers = []
    for task, config in configs.items():
        env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
        env["TF_CPP_MIN_LOG_LEVEL"] = "2"
        if config is not None:
            env["TF_CONFIG"] = config
        log = folder / f"worker-{task}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen([sys.executable, "-m", __name__, str(job_file)], env=env,
                                    stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        workers.append(Worker(task, proc, log))
    return workers


def local_configs(n: int) -> dict[int, str | None]:
    """TF_CONFIG of each of ``n`` workers on free ports of this machine."""
    addresses = hosts.local_workers(free_ports(n))
    return {i: hosts.tf_config(addresses, i) for i in range(n)}


Watch = Callable[[], None]


def wait_all(workers: list[Worker], timeout: float | None = TIMEOUT_S,
             watch: Watch | None = None) -> None:
    """Wait for every worker (``timeout`` None: no limit), calling ``watch`` as it polls
    (progress). On a failure, a timeout or an interrupt, kill the rest; a failure or timeout
    raises, naming the worker's log."""
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        while any(w.proc.poll() is None for w in workers):
            if watch is not None:
                watch()
            bad = [w for w in workers if w.proc.returncode not in (None, 0)]
            if bad:
                raise ClusterError(f"worker {bad[0].task} failed; {_log_hint(bad[0])}")
            if deadline is not None and time.monotonic() > deadline:
                raise ClusterError(f"the cluster timed out; {_log_hint(workers[0])}")
            time.sleep(0.1)
    finally:
        stop(workers)
    bad = [w for w in workers if w.proc.returncode != 0]
    if bad:
        raise ClusterError(f"worker {bad[0].task} exited {bad[0].proc.returncode}; "
                           f"{_log_hint(bad[0])}")


def _log_hint(worker: Worker) -> str:
    """``see LOG: last line`` for the failure message."""
    lines = worker.log.read_text(encoding="utf-8", errors="replace").strip().splitlines() \
        if worker.log.is_file() else []
    return f"see {worker.log}" + (f": {lines[-1][-200:]}" if lines else "")


def stop(workers: list[Worker]) -> None:
    """SIGKILL the workers still running (only the ones this module started)."""
    for w in workers:
        if w.proc.poll() is None:
            w.proc.send_signal(signal.SIGKILL)
    for w in workers:
        w.proc.wait()


def run_job(folder: Path, doc: dict[str, Any], workers: int,
            timeout: float | None = TIMEOUT_S,
            on_step: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Run one multi-worker job on ``workers`` local processes to the end; the chief's
    result."""
    return run_tasks(folder, doc, local_configs(workers), timeout, on_step)


PROGRESS = "progress.json"  # the chief's {"step": k}, rewritten at most every STEP_EVERY_S
STEP_EVERY_S = 0.5


def step_reporter(folder: Path) -> Callable[[int], None]:
    """In a worker: record the steps done in ``folder``'s progress file (throttled), so
    the parent can show progress inside a job that runs in another process."""
    last = [0.0]

    def report(step: int) -> None:
        now = time.monotonic()
        if now - last[0] >= STEP_EVERY_S:
            last[0] = now
            write_step(folder, step)

    return report


def write_step(folder: Path, step: int) -> None:
    """The progress file, replaced whole (a reader never sees half of it)."""
    tmp = folder / (PROGRESS + ".tmp")
    tmp.write_text(json.dumps({"step": step}), encoding="utf-8")
    tmp.replace(folder / PROGRESS)


def step_watch(folder: Path, on_step: Callable[[int], None] | None) -> Watch | None:
    """In the parent: pass the chief's last recorded step (0 before the first) to
    ``on_step`` as it polls."""
    if on_step is None:
        return None
    path = folder / PROGRESS
    path.unlink(missing_ok=True)

    def watch() -> None:
        try:
            step = int(json.loads(path.read_text(encoding="utf-8"))["step"])
        except (OSError, ValueError, KeyError, TypeError):
            step = 0  # not written yet: the worker is still starting
        on_step(step)

    return watch


def run_tasks(folder: Path, doc: dict[str, Any], configs: Mapping[int, str | None],
              timeout: float | None = TIMEOUT_S,
              on_step: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Run the given tasks of a multi-worker job; the chief's result when task 0 ran here,
    else only which task this host served (the chief's host stores the numbers)."""
    result = folder / "result.json"
    result.unlink(missing_ok=True)
    folder.mkdir(parents=True, exist_ok=True)
    watch = step_watch(folder, on_step)
    wait_all(launch(folder, {**doc, "result": str(result)}, configs), timeout, watch)
    if watch is not None:
        watch()  # the last step the chief recorded
    if 0 not in configs:
        return {"served_task": sorted(configs)}
    return dict(json.loads(result.read_text(encoding="utf-8")))


def run_mirrored(folder: Path, doc: dict[str, Any], timeout: float | None = None,
                 on_step: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Run one MirroredStrategy job in a fresh process (its own TF runtime and devices).

    ``doc`` holds ``spec`` and ``job`` (learners, comm, global_batch). Returns the result,
    which carries the process's hardware record; raises ``train.NotAvailableError`` for a
    method the hardware cannot run, :class:`ClusterError` when the process fails."""
    from trainers.plugins.scaling.train import NotAvailableError

    result = folder / "result.json"
    result.unlink(missing_ok=True)
    folder.mkdir(parents=True, exist_ok=True)
    watch = step_watch(folder, on_step)
    wait_all(launch(folder, {**doc, "strategy": "mirrored", "result": str(result)}, {0: None}),
             timeout, watch)
    if watch is not None:
        watch()  # the last step the worker recorded
    out = dict(json.loads(result.read_text(encoding="utf-8")))
    if "not_available" in out:
        raise NotAvailableError(out["not_available"])
    return out


def run_killed_and_restarted(folder: Path, doc: dict[str, Any], workers: int, victim: int = 1,
                             after_step: int = 1, timeout: float = TIMEOUT_S) -> dict[str, Any]:
    """SIGKILL worker ``victim`` once a backup of ``after_step`` exists, stop the cluster,
    start it again and let it finish from the backup; the chief's result of the restart."""
    backup = Path(doc["backup_dir"]) / "chief"
    procs = launch(folder, {**doc, "result": str(folder / "killed-run.json")},
                   local_configs(workers))
    deadline = time.monotonic() + timeout
    while _backup_step(backup) < after_step:
        if time.monotonic() > deadline or any(w.proc.poll() is not None for w in procs):
            stop(procs)
            raise ClusterError(f"no backup of step {after_step} appeared; see {folder}")
        time.sleep(0.05)
    procs[victim].proc.send_signal(signal.SIGKILL)
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
    from trainers.plugins.scaling import train

    job, spec = doc["job"], train.TrainSpec(**doc["spec"])
    hardware = train.setup_devices(int(job["learners"]))
    try:
        strategy, resolved = train.mirrored(hardware["devices"], job["comm"])
    except train.NotAvailableError as exc:
        out: dict[str, Any] = {"not_available": str(exc), "hardware": hardware}
    else:
        x, y, _, _ = train.load_arrays(spec.data_dir, spec.train_samples)
        folder = Path(doc["result"]).parent
        out = train.train(strategy, spec, x, y, int(job["global_batch"]), step_reporter(folder))
        write_step(folder, int(out["steps"]))
        out.update(cross_device_ops=resolved, hardware=hardware)
    Path(doc["result"]).write_text(json.dumps(out), encoding="utf-8")


def worker_main(job_file: str) -> None:
    """One worker: build the strategy first (TF's rule), train, chief writes the result."""
    from trainers.plugins.scaling import train

    doc = json.loads(Path(job_file).read_text(encoding="utf-8"))
    if doc.get("strategy") == "mirrored":
        mirrored_main(doc)
        return
    tf = train.tf_module()
    requested = doc["job"]["comm"]
    options = tf.distribute.experimental.CommunicationOptions(
        implementation=getattr(tf.distribute.experimental.CommunicationImplementation,
                               IMPLEMENTATIONS[requested]))
    strategy = tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
    resolver = strategy.cluster_resolver
    task = int(resolver.task_id)
    kind = "GPU" if tf.config.list_physical_devices("GPU") else "CPU"
    spec = train.TrainSpec(**doc["spec"])
    x, y, _, _ = train.load_arrays(spec.data_dir, spec.train_samples)
    backup = None
    if doc.get("backup_dir"):
        backup = train.Backup(Path(doc["backup_dir"]), int(doc["backup_every"]), task == 0,
                               task)
    folder = Path(doc["result"]).parent
    report = step_reporter(folder) if task == 0 else None
    out = train.train(strategy, spec, x, y, int(doc["job"]["global_batch"]), report,
                      backup=backup)
    if task == 0:
        write_step(folder, int(out["steps"]) + int(out["restored_from_step"]))
        out.update(implementation_requested=IMPLEMENTATIONS[requested],
                   implementation_used=effective_implementation(requested, kind),
                   workers=strategy.extended._num_workers, device_kind=kind,
                   replicas=int(strategy.num_replicas_in_sync))
        Path(doc["result"]).write_text(json.dumps(out), encoding="utf-8")


if __name__ == "__main__":
    worker_main(sys.argv[1])
