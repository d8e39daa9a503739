"""Run Problem 2's jobs (or only the performance model) and assemble the results.

After every job the run checkpoints the records of the jobs done so far (:class:`Ledger`), so
``hw3 run scaling --resume RUN`` keeps them and runs only the missing jobs, and a first Ctrl-C
stops after the running job. With a cluster file (hosts.py) this host runs its own task of
each multi-worker job; single-node jobs and the numbers belong to the chief (task 0).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from trainers.api import RunContext
from trainers.errors import RunError
from trainers.plan import TRAIN_FLOPS_PER_FORWARD, Calibration, Plan
from trainers.plugins.scaling import cluster, hosts, perf, train
from trainers.plugins.scaling.config import Config
from trainers.plugins.scaling.jobs import Job, plan
from trainers.progress import Progress, fmt
from trainers.reporting import PARTIAL_KEY, partial_results

SAMPLES = 60_000  # FashionMNIST training images, for the model's epochs
SPEC = "resnet50-keras"


def archcalc_counts(config: Config) -> dict[str, int]:
    """Trainable parameters, buffers and forward FLOPs of the spec for this input."""
    from archcalc import analyze, load

    size = config.image_size
    totals = analyze(load(SPEC, classes=10, size=size, channels=1)).totals
    return {"params": totals.params, "buffers": totals.buffers, "flops": totals.flops}


def system(config: Config, logical: bool) -> perf.System:
    """The links the model uses: memory copies for logical devices, else the presets."""
    inside = perf.LINKS["host"] if logical else perf.LINKS[config.interconnect]
    return perf.System(inside, perf.LINKS[config.network], config.learners_per_node,
                       config.gpu_hour_usd)


class Ledger:
    """The finished jobs' records, as the run's checkpoint state.

    The host checkpoints objects with ``state_dict``; this one's state is plain JSON text."""

    def __init__(self, records: list[dict[str, Any]] | None = None) -> None:
        self.records = list(records or [])

    def state_dict(self) -> dict[str, str]:
        return {"records": json.dumps(self.records)}

    def load_state_dict(self, state: dict[str, str]) -> None:
        self.records = list(json.loads(state["records"]))


def restore(ctx: RunContext, jobs: list[Job]) -> Ledger:
    """The jobs an interrupted run finished (none for a fresh run), checked against the plan."""
    ledger = Ledger()
    if ctx.checkpoints.last() is None:
        return ledger
    ctx.checkpoints.load(ledger)
    done = [r["key"] for r in ledger.records]
    if done != [j.key for j in jobs[:len(done)]]:
        raise RunError(f"run {ctx.ref}: its checkpoint holds jobs {', '.join(done)}, which "
                       "are not the start of its plan; start a new run")
    return ledger


def run_all(config: Config, ctx: RunContext) -> dict[str, Any]:
    """Every job of the plan, the hardware it ran on and the model's view of it."""
    if config.model_only:
        return model_only(config)
    where = hosts.read(config.cluster, config.task) if config.cluster else None
    _, y, synthetic, summary = train.load_arrays(str(ctx.data_dir), config.train_samples)
    if synthetic:
        ctx.use_stand_in(summary)
    jobs = plan(config)
    local = max((j.learners for j in jobs if j.strategy == "mirrored"), default=1)
    hardware = train.expected_hardware(local)  # every job runs in its own process
    spec = train.TrainSpec(config.model, config.image_size, config.epochs, config.steps,
                            config.warmup_steps, config.lr, ctx.seed, str(ctx.data_dir),
                            config.train_samples)
    ledger = restore(ctx, jobs)

    def snapshot(records: list[dict[str, Any]]) -> dict[str, Any]:
        """The finished jobs as results, for hw3 report on an interrupted run (copies:
        assembling pops and adds keys)."""
        copies = [dict(r) for r in records]
        found = assemble(config, copies, measured_hardware(copies) or hardware, summary,
                         len(y))
        return {PARTIAL_KEY: partial_results(found, len(records), len(jobs), "jobs")}

    if ledger.records:
        ctx.progress.note(f"resuming: {len(ledger.records)} of {len(jobs)} jobs done before")
    with ctx.progress.bar("jobs", total=len(jobs), unit="job") as bar:
        bar.skip(len(ledger.records))
        for job in jobs[len(ledger.records):]:
            steps = train.total_steps(spec, len(y), job.global_batch)
            with ctx.progress.bar(job.key, total=steps, unit="step") as job_bar:
                record = run_one(job, spec, config, ctx, hardware, where, job_bar.advance_to)
            ctx.progress.log({k: v for k, v in record.items() if _scalar(v)}, show=False)
            ctx.progress.note(job_text(record))
            warn_if_short(ctx.progress, record, config.warmup_steps)
            ledger.records.append(record)
            bar.advance()  # before the checkpoint, where a first Ctrl-C stops the run
            ctx.checkpoints.save(len(ledger.records), ledger,
                                 extra=snapshot(ledger.records))
    records = ledger.records
    hardware = measured_hardware(records) or hardware
    results = assemble(config, records, hardware, summary, len(y))
    if where is not None:
        results["cluster"] = {"file": where.path, "workers": list(where.workers),
                              "task": where.task}
    ctx.progress.table("scaling jobs", [_row(r) for r in records])
    return results


def job_text(record: dict[str, Any]) -> str:
    """A finished job in one line: its status, throughput and time."""
    if record["status"] != "ok":
        return f"{record['key']}: {record['status']} ({record.get('reason', '')})"
    return (f"{record['key']}: {_num(record.get('images_per_s'))} img/s over "
            f"{record.get('timed_steps', 0)} timed steps, {record.get('train_s', 0):.1f} s")


def warn_if_short(progress: Progress, record: dict[str, Any], warmup: int) -> None:
    """Flag throughput timed on fewer steps than the warm-up left out: one or two steps
    after tracing and cache warm-up are mostly noise."""
    timed = record.get("timed_steps")
    if record["status"] == "ok" and timed is not None and timed < max(warmup, 1):
        progress.warn(f"{record['key']}: throughput timed on {timed} step(s), fewer "
                          f"than the {warmup} warm-up steps: a noisy figure (raise --steps "
                          "or --epochs)")


def run_one(job: Job, spec: train.TrainSpec, config: Config, ctx: RunContext,
            hardware: dict[str, Any], where: hosts.ClusterFile | None,
            on_step: Callable[[int], None] | None = None) -> dict[str, Any]:
    """One job in fresh worker process(es), so each starts from a clean TensorFlow runtime
    (MirroredStrategy jobs of different sizes in one process collide in TF's collective
    group keys). A method the hardware cannot run is recorded as not available, any other
    failure as failed; neither stops the other jobs."""
    record: dict[str, Any] = {**job.as_dict(), "hardware": hardware["description"]}
    if where is not None and not where.chief and job.strategy == "mirrored":
        return {**record, "status": "skipped", "reason": "single-node jobs run on the chief"}
    try:
        if job.strategy == "mirrored":
            train.require_available(hardware["devices"][:job.learners], job.comm)
            doc = {"spec": spec.as_dict(), "job": job.as_dict()}
            out = cluster.run_mirrored(ctx.workdir / "workers" / job.key, doc,
                                       on_step=on_step)
            record["hardware"] = out["hardware"]["description"]
            record["_hardware"] = out.pop("hardware")
        elif where is not None:
            out = on_hosts(job, spec, ctx, where, on_step)
        else:
            out = multi_worker(job, spec, ctx, hardware, on_step)
    except train.NotAvailableError as exc:
        return {**record, "status": "not available", "reason": str(exc)}
    except (cluster.ClusterError, RuntimeError, ValueError, OSError) as exc:
        return {**record, "status": "failed", "reason": f"{type(exc).__name__}: {exc}"[:400]}
    if "skipped" in out:
        return {**record, "status": "skipped", "reason": out["skipped"]}
    if "served_task" in out:
        return {**record, **out, "status": "served", "reason": "the chief stores the numbers"}
    return {**record, **out, "status": "ok", **measured(out, job, config)}


def measured_hardware(records: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The hardware record a worker process reported for the largest single-node job."""
    found = [r.pop("_hardware") for r in records if "_hardware" in r]
    return max(found, key=lambda h: len(h["devices"]), default=None)


def multi_worker(job: Job, spec: train.TrainSpec, ctx: RunContext, hardware: dict[str, Any],
                 on_step: Callable[[int], None] | None = None) -> dict[str, Any]:
    """A MultiWorkerMirroredStrategy job on local worker processes (one per CPU learner)."""
    workers = job.learners if hardware["device_kind"] == "CPU" else job.nodes
    doc = {"spec": spec.as_dict(), "job": job.as_dict()}
    out = cluster.run_job(ctx.workdir / "workers" / job.key, doc, workers, timeout=None,
                          on_step=on_step)
    out["hardware_note"] = f"{workers} worker processes on 127.0.0.1 ({hardware['device_kind']})"
    return out


def on_hosts(job: Job, spec: train.TrainSpec, ctx: RunContext, where: hosts.ClusterFile,
             on_step: Callable[[int], None] | None = None) -> dict[str, Any]:
    """This host's task of a multi-worker job on the first ``job.nodes`` hosts of the file."""
    if len(where.workers) < job.nodes:
        raise train.NotAvailableError(f"{where.path} lists {len(where.workers)} worker(s); "
                                       f"the job needs {job.nodes}")
    if where.task >= job.nodes:
        return {"skipped": f"the job runs on the first {job.nodes} host(s) of the file"}
    addresses = where.workers[:job.nodes]
    doc = {"spec": spec.as_dict(), "job": job.as_dict()}
    out = cluster.run_tasks(ctx.workdir / "workers" / job.key, doc,
                            {where.task: hosts.tf_config(addresses, where.task)}, timeout=None,
                            on_step=on_step)
    out["hardware_note"] = f"{job.nodes} hosts of {where.path}: {', '.join(addresses)}"
    return {**out, "hosts": list(addresses)}


def measured(out: dict[str, Any], job: Job, config: Config) -> dict[str, Any]:
    """Throughput after warm-up, time per iteration, projected training time and cost."""
    if not out["timed_steps"] or out["timed_s"] <= 0:
        return {"images_per_s": None, "iteration_s": None, "cost_usd": None}
    iteration = out["timed_s"] / out["timed_steps"]
    return {"images_per_s": job.global_batch / iteration, "iteration_s": iteration,
            "cost_usd": perf.cost_usd(out["train_s"], job.learners, config.gpu_hour_usd)}


def assemble(config: Config, records: list[dict[str, Any]], hardware: dict[str, Any],
             summary: str, samples: int) -> dict[str, Any]:
    """Results: jobs with the model's prediction beside each measured one."""
    grad = perf.gradient_bytes(_params(config, records))
    fitted = fit_model(config, records, hardware, grad)
    ok = [r for r in records if r.get("images_per_s")]
    best = max(ok, key=lambda r: r["images_per_s"], default=None)
    return {"headline": f"{len(ok)}/{len(records)} jobs ran" +
            (f", best {best['images_per_s']:.1f} img/s ({best['key']})" if best else ""),
            "model_only": False, "model": config.model, "hardware": hardware, "data": summary,
            "gradient_bytes": grad, "price_usd_per_learner_hour": config.gpu_hour_usd,
            "performance_model": fitted, "jobs": records}


def fit_model(config: Config, records: list[dict[str, Any]], hardware: dict[str, Any],
              grad: int) -> dict[str, Any] | None:
    """Fit the compute term to the one-learner jobs, then store the model's prediction
    (iteration time, throughput, time and cost for the job's own steps) in every measured
    record; None when no one-learner job ran."""
    base = [r for r in records if r["learners"] == 1 and r.get("iteration_s")
            and r["strategy"] == "mirrored"]
    if not base:
        return None
    compute = perf.fit_compute([(r["per_learner_batch"], r["iteration_s"]) for r in base])
    sys = system(config, hardware["logical"])
    for r in records:
        if r.get("iteration_s"):
            method = "ring" if r["comm"] in ("default", "auto", "nccl") else r["comm"]
            shared = r["learners"] if hardware["logical"] and "hosts" not in r else 1
            p = perf.predict(r["learners"], r["per_learner_batch"], compute.per_image_s, grad,
                             sys, SAMPLES, 1, method, fixed_s=compute.fixed_s, shared=shared)
            train_s = r["steps"] * p.iteration_s
            r["predicted"] = {"iteration_s": p.iteration_s, "images_per_s": p.images_per_s,
                              "allreduce_s": p.allreduce_s, "train_s": train_s,
                              "cost_usd": perf.cost_usd(train_s, r["learners"],
                                                        config.gpu_hour_usd)}
            r["model_gap"] = perf.relative_gap(r["iteration_s"], p.iteration_s)
    return {"fixed_s": compute.fixed_s, "per_image_s": compute.per_image_s,
            "fitted_to": [r["key"] for r in base], "link": asdict(sys.link_for(1)),
            "shared_device": bool(hardware["logical"])}


def _params(config: Config, records: list[dict[str, Any]]) -> int:
    if config.model == "resnet50":
        return archcalc_counts(config)["params"]
    return next((int(r["trainable_params"]) for r in records if "trainable_params" in r), 0)


def model_only(config: Config) -> dict[str, Any]:
    """Predictions for every learner count, strong and weak, each all-reduce method."""
    counts = archcalc_counts(config)
    per_image = perf.flops_step_s_per_image(counts["flops"], config.device_tflops,
                                            config.utilization)
    sys = system(config, logical=False)
    grad = perf.gradient_bytes(counts["params"])
    rows = []
    for part in ("strong", "weak"):
        for method in perf.METHODS:
            for n in config.learners:
                b = perf.strong_batch(config.batch_size, n) if part == "strong" \
                    else config.weak_batch_per_learner
                p = perf.predict(n, b, per_image, grad, sys, SAMPLES, config.epochs, method)
                rows.append({"part": part, "method": method, **asdict(p)})
    return {"headline": f"model only: {len(config.learners)} learner counts", "model_only": True,
            "counts": counts, "gradient_bytes": grad, "step_s_per_image": per_image,
            "system": {"interconnect": asdict(sys.interconnect), "network": asdict(sys.network),
                       "learners_per_node": sys.learners_per_node},
            "price_usd_per_learner_hour": config.gpu_hour_usd, "predictions": rows}


def _num(v: Any) -> str:
    return "-" if v is None else fmt(float(v))


def _scalar(v: Any) -> bool:
    return v is None or isinstance(v, bool | int | float | str)


def _row(r: dict[str, Any]) -> dict[str, Any]:
    return {"job": r["key"], "status": r["status"], "img/s": r.get("images_per_s") or "-",
            "iter s": r.get("iteration_s") or "-", "ops": r.get("cross_device_ops")
            or r.get("implementation_used") or "-"}


CALIBRATION = (1, 2)  # warm-up steps (tracing), then timed steps: a start, not a benchmark


def cost_plan(config: Config, data_dir: str) -> Plan | None:
    """Every job's steps and images, archcalc's FLOPs (ResNet-50; the tiny CNN has no spec)
    and a projection from a short one-learner job of the real model in a worker process,
    as every job runs (None for ``--model-only``, which trains nothing)."""
    if config.model_only:
        return None
    _, y, synthetic, summary = train.load_arrays(data_dir, config.train_samples)
    spec = train.TrainSpec(config.model, config.image_size, config.epochs, config.steps,
                           config.warmup_steps, config.lr, 0, data_dir, config.train_samples)
    jobs = plan(config)
    images = sum(train.total_steps(spec, len(y), j.global_batch) * j.global_batch
                 for j in jobs)
    forward = archcalc_counts(config)["flops"] if config.model == "resnet50" else 0
    cal = calibrate(config, data_dir)
    notes = [f"{'stand-in' if synthetic else 'real'} data: {summary}" +
             (f" (FashionMNIST has {SAMPLES:,}: the real protocol is larger)"
              if len(y) < SAMPLES else ""),
             "learners on this machine share its cores, so a job's time here is its "
             "images at the one-learner pace; all-reduce time is not counted"]
    if not forward:
        notes.append("the tiny CNN has no archcalc spec: its FLOPs are not counted")
    return Plan("scaling", len(jobs), len(jobs) * config.epochs, images, 0,
                float(forward) * TRAIN_FLOPS_PER_FORWARD * images, float(images), cal,
                notes=tuple(notes), warnings=short_timing(config, spec, len(y), jobs))


def calibrate(config: Config, data_dir: str) -> Calibration:
    """Time a few steps of a one-learner MirroredStrategy job at the strong-scaling batch,
    in a fresh worker process (the way every job runs)."""
    import tempfile
    from pathlib import Path

    warmup, timed = CALIBRATION
    spec = train.TrainSpec(config.model, config.image_size, 1, warmup + timed, warmup,
                           config.lr, 0, data_dir, config.train_samples)
    job = Job("calibration", 1, config.batch_size, "mirrored", "default")
    with tempfile.TemporaryDirectory(prefix="hw3-calibration-") as folder:
        out = cluster.run_mirrored(Path(folder), {"spec": spec.as_dict(), "job": job.as_dict()})
    return Calibration(f"{timed} steps of one {config.model} learner at batch "
                       f"{config.batch_size} (a worker process, as jobs run)", "image",
                       out["timed_steps"] * config.batch_size, out["timed_s"], warmup,
                       out["hardware"]["description"])


def short_timing(config: Config, spec: train.TrainSpec, samples: int,
                 jobs: list[Job]) -> tuple[str, ...]:
    """Jobs whose throughput would be timed on fewer steps than the warm-up left out."""
    short = [j.key for j in jobs
             if train.total_steps(spec, samples, j.global_batch) - config.warmup_steps <
             max(config.warmup_steps, 1)]
    if not short:
        return ()
    return (f"{len(short)} of {len(jobs)} jobs (e.g. {short[0]}) would time their "
            f"throughput on fewer steps than the {config.warmup_steps} warm-up steps: noisy "
            "figures (raise --steps or --epochs)",)
