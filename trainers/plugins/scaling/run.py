"""Run Problem 2's jobs (or only the performance model) and assemble the results."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from trainers.api import RunContext
from trainers.plugins.scaling import Config, cluster, engine, perf
from trainers.plugins.scaling.jobs import Job, plan

SAMPLES = 60_000  # FashionMNIST training images, for the model's epochs
SPEC = "resnet50-keras"


def archcalc_counts(config: Config) -> dict[str, int]:
    """Trainable parameters, buffers and forward FLOPs of the spec for this input."""
    from archcalc import analyze, load

    totals = analyze(load(SPEC, classes=10),
                     input_shape=(1, config.image_size, config.image_size)).totals
    return {"params": totals.params, "buffers": totals.buffers, "flops": totals.flops}


def system(config: Config, logical: bool) -> perf.System:
    """The links the model uses: memory copies for logical devices, else the presets."""
    inside = perf.LINKS["host"] if logical else perf.LINKS[config.interconnect]
    return perf.System(inside, perf.LINKS[config.network], config.learners_per_node,
                       config.gpu_hour_usd)


def run_all(config: Config, ctx: RunContext) -> dict[str, Any]:
    """Every job of the plan, the hardware it ran on and the model's view of it."""
    if config.model_only:
        return model_only(config)
    _, y, synthetic, summary = engine.load_arrays(str(ctx.data_dir), config.train_samples)
    if synthetic:
        ctx.use_stand_in(summary)
    jobs = plan(config)
    local = max((j.learners for j in jobs if j.strategy == "mirrored"), default=1)
    hardware = engine.expected_hardware(local)  # every job runs in its own process
    spec = engine.TrainSpec(config.model, config.image_size, config.epochs, config.steps,
                            config.warmup_steps, config.lr, ctx.seed, str(ctx.data_dir),
                            config.train_samples)
    records = []
    with ctx.reporter.bar("jobs", total=len(jobs), unit="job") as bar:
        for job in jobs:
            record = run_one(job, spec, config, ctx, hardware)
            ctx.reporter.log({k: v for k, v in record.items() if _scalar(v)}, show=False)
            ctx.reporter.note(f"{job.key}: {record['status']} "
                              f"{_num(record.get('images_per_s'))} img/s")
            records.append(record)
            bar.advance()
    hardware = measured_hardware(records) or hardware
    results = assemble(config, records, hardware, summary, len(y))
    ctx.reporter.table("scaling jobs", [_row(r) for r in records])
    return results


def run_one(job: Job, spec: engine.TrainSpec, config: Config, ctx: RunContext,
            hardware: dict[str, Any]) -> dict[str, Any]:
    """One job in fresh worker process(es), so each starts from a clean TensorFlow runtime
    (MirroredStrategy jobs of different sizes in one process collide in TF's collective
    group keys). A method the hardware cannot run is recorded as not available, any other
    failure as failed; neither stops the other jobs."""
    record: dict[str, Any] = {**job.as_dict(), "hardware": hardware["description"]}
    try:
        if job.strategy == "mirrored":
            engine.require_available(hardware["devices"][:job.learners], job.comm)
            doc = {"spec": spec.as_dict(), "job": job.as_dict()}
            out = cluster.run_mirrored(ctx.run.dir / "workers" / job.key, doc)
            record["hardware"] = out["hardware"]["description"]
            record["_hardware"] = out.pop("hardware")
        else:
            out = multi_worker(job, spec, ctx, hardware)
    except engine.NotAvailableError as exc:
        return {**record, "status": "not available", "reason": str(exc)}
    except (cluster.ClusterError, RuntimeError, ValueError, OSError) as exc:
        return {**record, "status": "failed", "reason": f"{type(exc).__name__}: {exc}"[:400]}
    return {**record, **out, "status": "ok", **measured(out, job, config)}


def measured_hardware(records: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The hardware record a worker process reported for the largest single-node job."""
    found = [r.pop("_hardware") for r in records if "_hardware" in r]
    return max(found, key=lambda h: len(h["devices"]), default=None)


def multi_worker(job: Job, spec: engine.TrainSpec, ctx: RunContext,
                 hardware: dict[str, Any]) -> dict[str, Any]:
    """A MultiWorkerMirroredStrategy job on local worker processes (one per CPU learner)."""
    workers = job.learners if hardware["device_kind"] == "CPU" else job.nodes
    doc = {"spec": spec.as_dict(), "job": job.as_dict()}
    out = cluster.run_job(ctx.run.dir / "workers" / job.key, doc, workers)
    out["hardware_note"] = f"{workers} worker processes on 127.0.0.1 ({hardware['device_kind']})"
    return out


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
    base = next((r for r in records if r["learners"] == 1 and r.get("iteration_s")), None)
    if base is not None:
        per_image = base["iteration_s"] / base["per_learner_batch"]
        sys = system(config, hardware["logical"])
        for r in records:
            if r.get("iteration_s"):
                method = "ring" if r["comm"] in ("default", "auto", "nccl") else r["comm"]
                p = perf.predict(r["learners"], r["per_learner_batch"], per_image, grad, sys,
                                 samples, 1, method)
                r["predicted_iteration_s"] = p.iteration_s
                r["model_gap"] = perf.relative_gap(r["iteration_s"], p.iteration_s)
    ok = [r for r in records if r.get("images_per_s")]
    best = max(ok, key=lambda r: r["images_per_s"], default=None)
    return {"headline": f"{len(ok)}/{len(records)} jobs ran" +
            (f", best {best['images_per_s']:.1f} img/s ({best['key']})" if best else ""),
            "model_only": False, "model": config.model, "hardware": hardware, "data": summary,
            "gradient_bytes": grad, "price_usd_per_learner_hour": config.gpu_hour_usd,
            "jobs": records}


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
    return "-" if v is None else f"{v:.4g}"


def _scalar(v: Any) -> bool:
    return v is None or isinstance(v, bool | int | float | str)


def _row(r: dict[str, Any]) -> dict[str, Any]:
    return {"job": r["key"], "status": r["status"], "img/s": r.get("images_per_s") or "-",
            "iter s": r.get("iteration_s") or "-", "ops": r.get("cross_device_ops")
            or r.get("implementation_used") or "-"}
