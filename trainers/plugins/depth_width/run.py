"""The run of ``hw3 run depth-width``: enumerate the networks, train those not yet stored,
store each one the moment it finishes, and assemble the results ``report`` reads.

Each finished configuration is written at once into the run's checkpoint (its ``extra``
holds every finished record; ``epoch`` counts them), so ``--resume`` trains only the rest
and an interrupted sweep loses at most the configurations in flight.
"""

from __future__ import annotations

import time
from typing import Any

import torch

from trainers.api import RunContext
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
    default_workers,
    job_seed,
    run_jobs,
)
from trainers.runtime import hardware

TRAIN_FLOPS_PER_FORWARD = 3  # forward + backward (two products per forward one): the usual 3x


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
    _train(jobs, workers, done, counts, ctx, config.epochs)
    wall = time.perf_counter() - start
    return results(config, ctx, archs, done, spec, workers,
                   {"configs": len(todo), "wall_s": round(wall, 2),
                    "flop_rate": flop_rate([done[a.key] for a in todo], spec, wall)})


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
        ctx.progress.note("REDUCED run, not the full protocol: " + "; ".join(reduced))


def _train(jobs: list[Job], workers: int, done: dict[str, Record],
           counts: dict[str, ArchCounts], ctx: RunContext, epochs: int) -> None:
    marker = torch.nn.Module()  # save_checkpoint wants a model; the records are the state
    total = len(done) + len(jobs)
    with ctx.progress.bar("networks", total=total, unit="net") as nets, \
            ctx.progress.bar("epochs", total=len(jobs) * epochs, unit="epoch") as bar:
        nets.advance(len(done))

        def on_done(record: Record) -> None:
            c = counts[record["key"]]
            record.update(params=c.params, flops=c.flops)
            done[record["key"]] = record
            nets.advance()
            ctx.progress.log({k: record[k] for k in ("key", "layers", "params", "test_rmse",
                                                     "train_rmse", "train_time_s")})
            ctx.checkpoints.save(len(done), marker, extra={"done": done})

        run_jobs(jobs, workers, on_done, bar.advance, lambda: ctx.stop_requested)


def flop_rate(records: list[Record], spec: DataSpec, seconds: float) -> float | None:
    """Training FLOP/s over the sweep's wall time: 3x archcalc's forward FLOPs per sample."""
    flops = sum(TRAIN_FLOPS_PER_FORWARD * r["flops"] * spec.n_train * r["epochs"]
                for r in records)
    return flops / seconds if records and seconds > 0 else None


def results(config: Config, ctx: RunContext, archs: tuple[Arch, ...], done: dict[str, Record],
            spec: DataSpec, workers: int, session: dict[str, Any]) -> dict[str, Any]:
    records = [done[a.key] for a in archs]
    scaler = Scaler.fit(make_data(spec), spec.x_range)
    finite = [r for r in records if r["test_rmse"] is not None]
    best = min(finite, key=lambda r: r["test_rmse"], default=None)
    reduced = reductions(config)
    headline = (f"best test RMSE {best['test_rmse']:.2f} ({best['key']})" if best
                else "every network diverged") + (" [reduced run]" if reduced else "")
    _table(ctx, records)
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
