"""Claim: the scaling plugin's harness adds no cost of its own (issue 7, target within 5%).

Side by side in one run, same model, data pipeline, batch and optimizer (SGD, momentum 0.9):
a plain ``model.fit`` with no strategy, and the plugin's own one-learner job
(``cluster.run_mirrored``, what ``hw3 run scaling`` runs for it: a fresh worker process,
MirroredStrategy on one device, the custom loop) whose measured throughput is the one the
plugin records. Each side runs in a fresh process, because TensorFlow state is per process
and can slow every op in it (a distributed-dataset iterator did, by about 40%); the sides
alternate (fit, plugin, plugin, fit, ...) so the shared machine's drifting load hits both
alike. Both are timed from the end of the warm-up steps to the end of the last step, waiting
for each: fit by its batch-end callbacks, the plugin by its own clock. Ratio = plugin / fit
images/s: per pair, their median, and that of the totals. Stand-in FashionMNIST is written to
a temporary folder.

    .venv/bin/python benchmarks/bench_scaling.py [--model tiny|resnet50] [--steps 60]
    .venv/bin/python benchmarks/bench_scaling.py --model resnet50 --batch 32 --steps 14
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from trainers.data import fake
from trainers.plugins.scaling import cluster, train


def fit_images_per_s(spec: train.TrainSpec, batch: int) -> float:
    """images/s of ``model.fit`` after ``spec.warmup_steps`` (run in a fresh process)."""
    train.setup_devices(1)  # the same device set-up as the plugin's worker process
    tf = train.tf_module()
    x, y, _, _ = train.load_arrays(spec.data_dir)
    tf.keras.utils.set_random_seed(spec.seed)
    model = train.build_model(spec.model, spec.image_size)
    model.compile(tf.keras.optimizers.SGD(spec.lr, momentum=0.9),
                  tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    data = train.dataset_fn(x, y, batch, spec.image_size, spec.seed)(
        tf.distribute.InputContext(1, 0, 1))
    stamps: list[float] = []

    class Stamp(tf.keras.callbacks.Callback):
        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            stamps.append(time.perf_counter())

    model.fit(data, steps_per_epoch=spec.steps, epochs=1, verbose=0, callbacks=[Stamp()])
    timed = spec.steps - spec.warmup_steps
    return batch * timed / (stamps[-1] - stamps[spec.warmup_steps - 1])


def fit_side(spec: train.TrainSpec, batch: int) -> float:
    """The fit side in a fresh process (this script with --fit-worker)."""
    out = subprocess.run([sys.executable, __file__, "--fit-worker",
                          json.dumps({"spec": spec.as_dict(), "batch": batch})],
                         capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def plugin_side(spec: train.TrainSpec, batch: int, folder: Path) -> float:
    """The plugin's one-learner job, run and measured as ``hw3 run scaling`` does."""
    job = {"learners": 1, "comm": "default", "global_batch": batch}
    out = cluster.run_mirrored(folder, {"spec": spec.as_dict(), "job": job})
    return batch * out["timed_steps"] / out["timed_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny", choices=("tiny", "resnet50"))
    parser.add_argument("--steps", type=int, default=60, help="steps per run, warm-up included")
    parser.add_argument("--warmup", type=int, default=4, help="untimed steps per run")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=4, help="pairs of runs")
    parser.add_argument("--fit-worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.fit_worker:
        doc = json.loads(args.fit_worker)
        print(fit_images_per_s(train.TrainSpec(**doc["spec"]), int(doc["batch"])))
        return
    if not 1 <= args.warmup < args.steps:
        parser.error("need 1 <= --warmup < --steps")
    with tempfile.TemporaryDirectory() as tmp:
        fake.write("fashion-mnist", tmp, n=4096, n_test=64, seed=0)
        spec = train.TrainSpec(args.model, 32, 1, args.steps, args.warmup, 0.01, 0, tmp)
        rates: dict[str, list[float]] = {"fit": [], "plugin": []}
        for k in range(args.repeats):
            for side in ("fit", "plugin") if k % 2 == 0 else ("plugin", "fit"):
                rates[side].append(fit_side(spec, args.batch) if side == "fit" else
                                   plugin_side(spec, args.batch, Path(tmp) / f"job-{k}"))
    report(args, rates)


def report(args: argparse.Namespace, rates: dict[str, list[float]]) -> None:
    pairs = [p / f for p, f in zip(rates["plugin"], rates["fit"], strict=True)]
    totals = statistics.fmean(rates["plugin"]) / statistics.fmean(rates["fit"])
    print(f"model {args.model}, batch {args.batch}, {args.steps} steps per run "
          f"({args.warmup} warm-up), {args.repeats} pairs of fresh processes, alternating")
    for side, label in (("fit", "model.fit (no strategy)"),
                        ("plugin", "plugin job (MirroredStrategy, 1)")):
        each = " ".join(f"{r:.1f}" for r in rates[side])
        print(f"{label:33s} median {statistics.median(rates[side]):10.1f} img/s  [{each}]")
    print(f"ratio plugin / fit per pair: {' '.join(f'{r:.3f}' for r in pairs)}")
    print(f"ratio plugin / fit: median {statistics.median(pairs):.3f}, of the means "
          f"{totals:.3f} (target >= 0.95)")


if __name__ == "__main__":
    main()
