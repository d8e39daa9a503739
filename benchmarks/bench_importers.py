"""Issue 13's speed claims, each side by side in one process (this machine is shared and
noisy): ``archcalc.from_torch(module)`` against ``torchinfo.summary`` of the same module at
the same input, and ``archcalc.from_keras(model)`` against Keras' ``model.summary()``.
Target: archcalc at least 3x faster than torchinfo, while giving more columns (receptive
fields, every counting convention, the homework table, a spec).

torch models: ResNet-50 (archcalc's zoo spec built as a torch module: torch's own layers in
archcalc's containers) and EfficientNet-B0 from EfficientNet-PyTorch (a package nobody here
wrote; skipped if it is not installed). Keras models: keras.applications' ResNet50,
MobileNetV2 and EfficientNetB0 (weights=None; skipped without TensorFlow). All at
224x224x3. Each row: the median times of interleaved repeats and their ratio, then the
ratio of the best runs (least disturbed by other work); archcalc's time includes reading
the model (tracing the module's forward). ``--breakdown`` adds where archcalc's time goes
(reading: tracing and the graph; analysis) and a plain forward of the model, which
torchinfo runs (on real tensors, with hooks) and cannot go below.

The machine is shared: torchinfo's forward competes for the cores with other work (two
torch threads on two busy cores can take 10-50x as long), so a busy machine inflates the
ratios. The header gives the load average; trust runs at a low one.

Run: ``.venv/bin/python benchmarks/bench_importers.py [--repeat 7] [--breakdown]``
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torchinfo

import archcalc
from archcalc.backends.torch import build_module
from archcalc.importers.torch import from_torch, torch_graph


def models() -> dict[str, torch.nn.Module]:
    found: dict[str, torch.nn.Module] = {
        "ResNet-50 (archcalc's zoo)": build_module(archcalc.load("resnet50")).eval()}
    try:
        from efficientnet_pytorch import EfficientNet  # type: ignore[import-untyped]
    except ImportError:
        return found
    effnet = EfficientNet.from_name("efficientnet-b0")
    effnet.set_swish(memory_efficient=False)
    found["EfficientNet-B0 (EfficientNet-PyTorch)"] = effnet.eval()
    return found


@dataclass
class Timed:
    """Each side's times over interleaved repeats."""

    ours: list[float]
    theirs: list[float]

    def row(self, name: str) -> str:
        """Medians and the speed-up, then the speed-up of the best runs: the ones least
        disturbed by other work on a shared machine."""
        ours, theirs = statistics.median(self.ours), statistics.median(self.theirs)
        best = min(self.theirs) / min(self.ours)
        return (f"  {name:<39}{ours * 1e3:>6.0f} ms{theirs * 1e3:>7.0f} ms"
                f"{theirs / ours:>7.1f}x{best:>7.1f}x")


HEADER = f"  {'model':<39}{'archcalc':>9}{'theirs':>10}{'median':>8}{'best':>8}"


def interleaved(a: Callable[[], object], b: Callable[[], object], repeat: int) -> Timed:
    """``a`` and ``b`` in turns (each first every other time), so that load on the machine
    falls on both alike; each call starts settled (:func:`settle`)."""
    timed = Timed([], [])
    for i in range(repeat):
        for fn, sink in ((a, timed.ours), (b, timed.theirs)) if i % 2 == 0 else \
                ((b, timed.theirs), (a, timed.ours)):
            settle()
            start = time.perf_counter()
            fn()
            sink.append(time.perf_counter() - start)
    return timed


def settle() -> None:
    """Untimed, before each timed call: the garbage of the call before collected, and a
    pause in which torch's worker threads, spinning after a forward, go idle. Without it a
    call pays for the one before it (on two cores, reading a model right after torchinfo's
    forward took ~40% longer than right after another read)."""
    gc.collect()
    time.sleep(0.05)


def breakdown(module: torch.nn.Module, size: tuple[int, ...], repeat: int) -> None:
    """archcalc's two steps, and the forward torchinfo's time cannot go below."""
    graph = torch_graph(module, size)
    x = torch.rand((1, *size))

    def forward() -> object:
        with torch.no_grad():
            return module(x)

    steps = interleaved(lambda: torch_graph(module, size), lambda: archcalc.analyze(graph),
                        repeat)
    plain = interleaved(forward, lambda: None, repeat)
    read, analysis = (statistics.median(t) * 1e3 for t in (steps.ours, steps.theirs))
    print(f"    archcalc: reading {read:.1f} ms, analysis {analysis:.1f} ms; a plain "
          f"forward: {statistics.median(plain.ours) * 1e3:.1f} ms", flush=True)


def keras_models() -> dict[str, object]:
    try:
        import keras
    except ImportError:
        return {}
    return {name: getattr(keras.applications, name)(weights=None, input_shape=(224, 224, 3))
            for name in ("ResNet50", "MobileNetV2", "EfficientNetB0")}


def keras_rows(repeat: int) -> None:
    import contextlib
    import io

    from archcalc.importers.keras import from_keras

    for name, model in keras_models().items():
        def ours(model: object = model) -> object:
            return from_keras(model)

        def theirs(model: object = model) -> object:
            with contextlib.redirect_stdout(io.StringIO()):
                return model.summary()  # type: ignore[attr-defined]

        ours()
        theirs()
        print(interleaved(ours, theirs, repeat).row(f"{name} (keras.applications)"),
              flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--breakdown", action="store_true",
                        help="also time archcalc's reading and analysis, and a plain forward")
    args = parser.parse_args()
    size = (3, 224, 224)
    print(f"{args.repeat} interleaved runs each, torch threads {torch.get_num_threads()}, "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"from_torch vs torchinfo.summary at {size[1]}x{size[2]}x{size[0]} "
          "(target: at least 3x):")
    print(HEADER)
    for name, module in models().items():
        def ours(module: torch.nn.Module = module) -> object:
            return from_torch(module, size)

        def theirs(module: torch.nn.Module = module) -> object:
            with warnings.catch_warnings(), torch.no_grad():
                warnings.simplefilter("ignore")
                return torchinfo.summary(module, input_size=(1, *size), verbose=0)

        ours()  # warm-up: lazy imports on both sides
        theirs()
        print(interleaved(ours, theirs, args.repeat).row(name), flush=True)
        if args.breakdown:
            breakdown(module, size, args.repeat)
    print("from_keras vs Keras' model.summary():")
    keras_rows(args.repeat)


if __name__ == "__main__":
    main()
