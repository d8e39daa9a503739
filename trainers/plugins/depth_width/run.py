"""The run of ``hw3 run depth-width``: enumerate the networks, train those not yet stored,
store each one the moment it finishes, and assemble the results ``report`` reads.

Each finished configuration is written at once into the run's checkpoint (its ``extra``
holds every finished record; ``epoch`` counts them), so ``--resume`` trains only the rest
and an interrupted sweep loses at most the configurations in flight.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch

from trainers.api import RunContext
from trainers.plan import TRAIN_FLOPS_PER_FORWARD, Calibration, Plan, time_steps
from trainers.plugins.depth_width.config import Config, reductions
from trainers.plugins.depth_width.problem import (
    Arch,
    ArchCounts,
    DataSpec,
    Scaler,
    arch_counts,
    enumerate_archs,
    make_data,
    per_depth,
)
from trainers.plugins.depth_width.train import (
    Hyper,
    Job,
    Record,
    build,
    default_workers,
    job_seed,
    optimizer,
    run_jobs,
)
from trainers.reporting import PARTIAL_KEY, partial_results
from trainers.runtime import hardware


def run(config: Config, ctx: RunContext) -> dict[str, Any]:
    archs = enumerate_archs(config.widths, config.layers, config.unit_budget)
    counts = {a.key: arch_counts(a) for a in archs}
    spec = DataSpec(config.points, config.train_fraction, config.noise_std, config.x_range,
                    ctx.seed)
    done = restore(ctx)
    todo = sorted((a for a in archs if a.key not in done), key=lambda a: -counts[a.key].flops)
    workers = config.workers or default_workers(ctx.device)
    _announce(config, ctx, archs, len(done), workers)
    hyper = Hyper(config.batch_size, config.epochs, config.lr, config.momentum, config.schedule)
    jobs = [Job(a, job_seed(ctx.seed, a), hyper, spec, ctx.device) for a in todo]
    start = time.perf_counter()
    scaler = Scaler.fit(make_data(spec), spec.x_range)

    def session() -> dict[str, Any]:
        wall = time.perf_counter() - start
        trained = [done[a.key] for a in todo if a.key in done]
        return {"configs": len(trained), "wall_s": round(wall, 2),
                "flop_rate": flop_rate(trained, spec, wall)}

    def snapshot() -> dict[str, Any]:
        """The stored networks as results, for hw3 report on an interrupted run."""
        found = results(config, ctx, archs, done, spec, workers, session(), scaler)
        return {PARTIAL_KEY: partial_results(found, len(done), len(archs), "networks")}

    _train(jobs, workers, done, counts, ctx, config.epochs, snapshot)
    found = results(config, ctx, archs, done, spec, workers, session(), scaler)
    _table(ctx, found["configs"])
    return found


def restore(ctx: RunContext) -> dict[str, Record]:
    """Finished configurations of an interrupted run (empty for a new one)."""
    state = ctx.checkpoints.load(torch.nn.Module()) if ctx.resumed else None
    return dict(state.extra["done"]) if state else {}


def _announce(config: Config, ctx: RunContext, archs: tuple[Arch, ...], done: int,
              workers: int) -> None:
    depths = ", ".join(f"{d} layer(s): {n}" for d, n in per_depth(archs).items())
    ctx.progress.note(f"{len(archs)} networks under {config.unit_budget} hidden units "
                      f"({depths}); {done} already stored; {workers} worker(s) on {ctx.device}")
    if reduced := reductions(config):
        ctx.progress.warn("REDUCED run, not the full protocol: " + "; ".join(reduced))


def _train(jobs: list[Job], workers: int, done: dict[str, Record],
           counts: dict[str, ArchCounts], ctx: RunContext, epochs: int,
           snapshot: Callable[[], dict[str, Any]]) -> None:
    marker = torch.nn.Module()  # save_checkpoint wants a model; the records are the state
    total = len(done) + len(jobs)
    with ctx.progress.bar("epochs", total=len(jobs) * epochs, unit="epoch") as bar, \
            ctx.progress.bar("networks", total=total, unit="net", part=False) as nets:
        nets.skip(len(done))

        def on_done(record: Record) -> None:
            c = counts[record["key"]]
            record.update(params=c.params, flops=c.flops)
            done[record["key"]] = record
            nets.advance()
            ctx.progress.log({k: record[k] for k in ("key", "layers", "params", "test_rmse",
                                                     "train_rmse", "train_time_s")},
                             text=network_text(record))
            if record["diverged"]:
                ctx.progress.warn(f"network {record['key']} diverged: its loss stopped being "
                                  f"finite after {record['epochs']} epoch(s); it has no RMSE")
            ctx.checkpoints.save(len(done), marker, extra={"done": done, **snapshot()})

        run_jobs(jobs, workers, on_done, bar.advance, lambda: ctx.stop_requested)


def network_text(record: Record) -> str:
    """A finished network as people read it: its widths, test and training RMSE, size and
    time."""
    if record["test_rmse"] is None:
        return f"network {record['key']}: diverged after {record['epochs']} epoch(s)"
    return (f"network {record['key']}: test RMSE {record['test_rmse']:.4g}, train RMSE "
            f"{record['train_rmse']:.4g}, {record['params']:,} params, "
            f"{record['train_time_s']:.1f} s")


def flop_rate(records: list[Record], spec: DataSpec, seconds: float) -> float | None:
    """Training FLOP/s over the sweep's wall time: 3x archcalc's forward FLOPs per sample."""
    flops = sum(TRAIN_FLOPS_PER_FORWARD * r["flops"] * spec.n_train * r["epochs"]
                for r in records)
    return flops / seconds if records and seconds > 0 else None


def results(config: Config, ctx: RunContext, archs: tuple[Arch, ...], done: dict[str, Record],
            spec: DataSpec, workers: int, session: dict[str, Any],
            scaler: Scaler) -> dict[str, Any]:
    """The records ``report`` reads: every network of ``archs`` stored in ``done`` (all of
    them once the sweep has finished)."""
    records = [done[a.key] for a in archs if a.key in done]
    finite = [r for r in records if r["test_rmse"] is not None]
    best = min(finite, key=lambda r: r["test_rmse"], default=None)
    reduced = reductions(config)
    headline = (f"best test RMSE {best['test_rmse']:.2f} ({best['key']})" if best
                else "every network diverged") + (" [reduced run]" if reduced else "")
    return {"headline": headline, "reduced": reduced,
            "networks_per_depth": {str(d): n for d, n in per_depth(archs).items()},
            "configs": records, "hardware": hardware(ctx.device, workers).record(),
            "device": ctx.device, "workers": workers, "session": session,
            "data": {"points": spec.points, "train": spec.n_train,
                     "test": spec.points - spec.n_train, "noise_std": spec.noise_std,
                     "y_mean": scaler.y_mean, "y_std": scaler.y_std}}


def _table(ctx: RunContext, records: list[Record]) -> None:
    rows = []
    for depth in sorted({r["layers"] for r in records}):
        mine = [r for r in records if r["layers"] == depth and r["test_rmse"] is not None]
        best = min(mine, key=lambda r: r["test_rmse"], default=None)
        rows.append({"hidden layers": depth, "networks": len(mine),
                     "best": best["key"] if best else "-",
                     "test RMSE": best["test_rmse"] if best else "-",
                     "params": best["params"] if best else "-"})
    ctx.progress.table("depth-width: best network per depth", rows)


def plan(config: Config, device: str, data_dir: str) -> Plan:
    """Every network's epochs and archcalc's FLOPs, and a projection from a few timed
    steps of the smallest and the largest network (step time = fixed + per-FLOP part, a
    line through the two: tiny networks cost their per-step overhead, not their FLOPs)."""
    archs = enumerate_archs(config.widths, config.layers, config.unit_budget)
    flops = {a.key: arch_counts(a).flops for a in archs}
    spec = DataSpec(config.points, config.train_fraction, config.noise_std, config.x_range, 0)
    steps = spec.n_train // config.batch_size * config.epochs
    small = min(archs, key=lambda a: flops[a.key])
    large = max(archs, key=lambda a: flops[a.key])
    hyper = Hyper(config.batch_size, config.epochs, config.lr, config.momentum, config.schedule)
    fixed, per_flop = step_cost(small, large, flops, hyper, spec, device)
    large_step = fixed + per_flop * flops[large.key]
    work = sum(steps * (fixed + per_flop * flops[a.key]) for a in archs) / large_step
    train_images = len(archs) * config.epochs * (spec.n_train // config.batch_size) * \
        config.batch_size
    eval_images = len(archs) * spec.points  # training and test RMSE once per network
    total_flops = sum(float(flops[a.key]) * config.epochs * spec.n_train for a in archs) * \
        TRAIN_FLOPS_PER_FORWARD + sum(float(flops[a.key]) for a in archs) * spec.points
    workers = config.workers or default_workers(device)
    cal = Calibration(f"SGD steps of network {large.key} (and {small.key} for the fixed "
                      f"part) at batch {config.batch_size}", "step", CALIBRATION_STEPS,
                      CALIBRATION_STEPS * large_step, 1, hardware(device).description)
    reduced = reductions(config)
    return Plan("depth-width", len(archs), len(archs) * config.epochs, train_images,
                eval_images, total_flops, work, cal, workers=min(workers, len(archs)),
                notes=(f"{len(archs)} networks of {spec.n_train:,} training points each; "
                       f"{workers} worker process(es) assumed to scale evenly",),
                warnings=("REDUCED run, not the full protocol: " + "; ".join(reduced),)
                if reduced else (), samples="points")


CALIBRATION_STEPS = 5


def step_cost(small: Arch, large: Arch, flops: dict[str, int], hyper: Hyper,
              spec: DataSpec, device: str) -> tuple[float, float]:
    """Seconds per step as ``fixed + per_flop * forward FLOPs``, through the measured step
    times of the smallest and the largest network."""
    low, high = step_seconds(small, hyper, device), step_seconds(large, hyper, device)
    span = flops[large.key] - flops[small.key]
    per_flop = max((high - low) / span, 0.0) if span > 0 else 0.0
    return max(high - per_flop * flops[large.key], 0.0), per_flop


def step_seconds(arch: Arch, hyper: Hyper, device: str) -> float:
    """Seconds per SGD step of ``arch`` at the run's batch, timed on random inputs."""
    model = build(arch, 0, device)
    opt, _ = optimizer(model, hyper)
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(hyper.batch_size, 2, generator=gen).to(device)
    y = torch.rand(hyper.batch_size, 1, generator=gen).to(device)

    def step() -> int:
        loss = torch.nn.functional.mse_loss(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return 1

    n, seconds = time_steps(step, device, steps=CALIBRATION_STEPS)
    return seconds / n
