"""Issue 6's speed claim: the depth-width engine against a plain DataLoader loop, one run.

A reduced sweep (12 of the 143 networks, evenly spread by parameter count, full 100,000-point
data, 3 epochs each) is trained twice on this machine: (1) by the plugin's engine (data on
the device, batches sliced from an on-device permutation, one pinned single-thread worker
process per core, process start-up included in its time), (2) by the textbook loop, one
network after another: ``DataLoader(TensorDataset(x, y), batch_size=1000, shuffle=True)``
with torch's default threads (``--baseline-threads N`` to change). Both use the same
spec-built models, optimiser, schedule and evaluation; their test RMSEs differ only through
batch order. The two alternate ``--repeat`` times and the fastest of each counts (this
machine is shared: a busy neighbour once slowed the two-thread loop tenfold). Printed:
configuration-epochs per second of each, their ratio (target >= 3x) and the training FLOP
rate (3x archcalc's forward FLOPs per sample). Run:
``.venv/bin/python benchmarks/bench_depth_width.py [--configs 12] [--epochs 3]``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from trainers.plugins.depth_width.problem import (
    Arch,
    DataSpec,
    Scaler,
    arch_counts,
    enumerate_archs,
    make_data,
    rmse,
)
from trainers.plugins.depth_width.train import (
    Hyper,
    Job,
    build,
    default_workers,
    job_seed,
    optimizer,
    run_jobs,
)

SPEC = DataSpec(points=100_000, train_fraction=0.8, noise_std=0.3, x_range=512.0, seed=0)


def chosen(n: int) -> list[Arch]:
    """``n`` networks of the full sweep, evenly spread over its parameter counts."""
    archs = sorted(enumerate_archs((16, 32, 64, 128, 256, 512), (1, 2, 3), 512),
                   key=lambda a: arch_counts(a).params)
    picks = np.linspace(0, len(archs) - 1, n).round().astype(int)
    return [archs[i] for i in picks]


def engine(jobs: list[Job], workers: int) -> tuple[float, list[float]]:
    found: list[float] = []
    start = time.perf_counter()
    run_jobs(jobs, workers, lambda r: found.append(r["test_rmse"]), lambda n: None,
             lambda: False)
    return time.perf_counter() - start, found


def dataloader_loop(jobs: list[Job]) -> tuple[float, list[float]]:
    """The per-configuration loop most tutorials write, run one network after another."""
    found = []
    start = time.perf_counter()
    data = make_data(SPEC)
    scaler = Scaler.fit(data, SPEC.x_range)
    x, y = (torch.as_tensor(scaler.x(data.x_train), dtype=torch.float32),
            torch.as_tensor(scaler.y(data.y_train), dtype=torch.float32).unsqueeze(1))
    x_test = torch.as_tensor(scaler.x(data.x_test), dtype=torch.float32)
    for job in jobs:
        model = build(job.arch, job.seed, "cpu")
        opt, sched = optimizer(model, job.hyper)
        loader = DataLoader(TensorDataset(x, y), batch_size=job.hyper.batch_size, shuffle=True,
                            drop_last=True)
        for _ in range(job.hyper.epochs):
            model.train()
            for xb, yb in loader:
                loss = nn.functional.mse_loss(model(xb), yb)
                opt.zero_grad()
                loss.backward()
                opt.step()
            if sched is not None:
                sched.step()
        model.eval()
        with torch.no_grad():
            found.append(rmse(model(x_test).numpy(), data.y_test, scaler))
            rmse(model(x).numpy(), data.y_train, scaler)  # the engine reports both
    return time.perf_counter() - start, found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", type=int, default=12)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--baseline-threads", type=int, default=0, help="0: torch's default")
    args = parser.parse_args()
    if args.baseline_threads:
        torch.set_num_threads(args.baseline_threads)
    hyper = Hyper(1000, args.epochs, 0.01, 0.9, "cosine")
    archs = chosen(args.configs)
    jobs = [Job(a, job_seed(0, a), hyper, SPEC, "cpu") for a in archs]
    work = len(jobs) * args.epochs
    flops = sum(3 * arch_counts(a).flops * SPEC.n_train * args.epochs for a in archs)
    workers = default_workers("cpu")
    print(f"{len(jobs)} networks ({', '.join(a.key for a in archs)}), {args.epochs} epochs, "
          f"{SPEC.n_train:,} training points, torch {torch.__version__}, baseline "
          f"{torch.get_num_threads()} thread(s), engine {workers} workers x 1 thread")
    plain_s = ours_s = float("inf")
    for _ in range(args.repeat):
        seconds, plain_rmse = dataloader_loop(jobs)
        plain_s = min(plain_s, seconds)
        seconds, ours_rmse = engine(jobs, workers)
        ours_s = min(ours_s, seconds)
    for name, seconds, found in (("DataLoader loop", plain_s, plain_rmse),
                                 ("depth-width engine", ours_s, ours_rmse)):
        print(f"{name:>20}: {seconds:7.2f} s, {work / seconds:6.2f} config-epochs/s, "
              f"{flops / seconds / 1e9:6.2f} GFLOP/s, median test RMSE "
              f"{statistics.median(found):.1f}")
    print(f"speed-up: {plain_s / ours_s:.2f}x (target >= 3x)")


if __name__ == "__main__":
    main()
