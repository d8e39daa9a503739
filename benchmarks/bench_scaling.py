"""Claim: the scaling plugin's harness adds no cost of its own (issue 7, target within 5%).

Side by side in one process, same model, data pipeline and batch: a plain ``model.fit`` with
no strategy, and the plugin's custom loop (``engine.train``) under MirroredStrategy on one
device. Both are timed after the same warm-up; the ratio is plugin / fit images/s, median of
``--repeats``. Stand-in FashionMNIST is written to a temporary folder.

    .venv/bin/python benchmarks/bench_scaling.py [--model tiny|resnet50] [--steps 60]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from typing import Any

from trainers.data import fake
from trainers.plugins.scaling import engine


class Clock:
    """A Keras callback: time batches after ``warmup`` (fit's own logs sync each batch)."""

    def __init__(self, warmup: int) -> None:
        import keras

        outer = self

        class _Cb(keras.callbacks.Callback):
            def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
                if batch + 1 == warmup:
                    outer.start = time.perf_counter()

        self.callback, self.start = _Cb(), 0.0


def plain_fit(spec: engine.TrainSpec, x: Any, y: Any, batch: int) -> float:
    """images/s of model.fit on the same pipeline (one input pipeline, no strategy)."""
    tf = engine.tf_module()
    tf.keras.utils.set_random_seed(spec.seed)
    model = engine.build_model(spec.model, spec.image_size)
    model.compile(tf.keras.optimizers.SGD(spec.lr, momentum=0.9),
                  tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    ctx = tf.distribute.InputContext(1, 0, 1)
    data = engine.dataset_fn(x, y, batch, spec.image_size, spec.seed)(ctx)
    clock = Clock(spec.warmup_steps)
    model.fit(data, steps_per_epoch=spec.steps, epochs=1, verbose=0, callbacks=[clock.callback])
    return batch * (spec.steps - spec.warmup_steps) / (time.perf_counter() - clock.start)


def plugin_loop(spec: engine.TrainSpec, x: Any, y: Any, batch: int, device: str) -> float:
    strategy, _ = engine.mirrored([device], "default")
    out = engine.train(strategy, spec, x, y, batch)
    return batch * out["timed_steps"] / out["timed_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny", choices=("tiny", "resnet50"))
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    hw = engine.setup_devices(1)
    with tempfile.TemporaryDirectory() as tmp:
        fake.write("fashion-mnist", tmp, n=4096, n_test=64, seed=0)
        x, y, _, _ = engine.load_arrays(tmp)
        spec = engine.TrainSpec(args.model, 32, 1, args.steps, 5, 0.01, 0, tmp)
        fits, loops = [], []
        for _ in range(args.repeats):  # interleaved, so drift hits both alike
            fits.append(plain_fit(spec, x, y, args.batch))
            loops.append(plugin_loop(spec, x, y, args.batch, hw["devices"][0]))
    fit, loop = statistics.median(fits), statistics.median(loops)
    print(f"{hw['description']}; model {args.model}, batch {args.batch}, {args.steps} steps "
          f"(5 warm-up), median of {args.repeats}")
    print(f"model.fit (no strategy):           {fit:10.1f} img/s")
    print(f"plugin loop (MirroredStrategy, 1): {loop:10.1f} img/s")
    print(f"ratio plugin / fit: {loop / fit:.3f} (target >= 0.95)")


if __name__ == "__main__":
    main()
