"""Issue 13's speed claims, each side by side in one process (this machine is shared and
noisy): ``archcalc.from_torch(module)`` against ``torchinfo.summary`` of the same module at
the same input, and ``archcalc.from_keras(model)`` against Keras' ``model.summary()``.
Target: archcalc at least 3x faster than torchinfo, while giving more columns (receptive
fields, every counting convention, the homework table, a spec).

torch models: ResNet-50 (archcalc's zoo spec built as a torch module: torch's own layers in
archcalc's containers) and EfficientNet-B0 from EfficientNet-PyTorch (a package nobody here
wrote; skipped if it is not installed). Keras models: keras.applications' ResNet50,
MobileNetV2 and EfficientNetB0 (weights=None; skipped without TensorFlow). All at
224x224x3. Each measurement is the median of interleaved repeats; archcalc's time includes
reading the model (tracing the module's forward). ``--breakdown`` adds where each side's
time goes: archcalc's reading (tracing and the graph) and analysis, and a plain forward of
the model, which torchinfo runs (on real tensors, with hooks) and cannot go below.

The machine is shared: torchinfo's forward competes for the cores with other work, so a
busy machine inflates the ratios. The header gives the load average; trust runs at a low one.

Run: ``.venv/bin/python benchmarks/bench_importers.py [--repeat 7] [--breakdown]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import warnings
from collections.abc import Callable

import torch
import torchinfo

import archcalc
from archcalc.backends.torch import build_module
from archcalc.importers.torch import from_torch, torch_graph


def models() -> dict[str, torch.nn.Module]:
    found: dict[str, torch.nn.Module] = {
        "resnet50": build_module(archcalc.load("resnet50")).eval()}
    try:
        from efficientnet_pytorch import EfficientNet  # type: ignore[import-untyped]
    except ImportError:
        return found
    effnet = EfficientNet.from_name("efficientnet-b0")
    effnet.set_swish(memory_efficient=False)
    found["efficientnet-b0 (EfficientNet-PyTorch)"] = effnet.eval()
    return found


def interleaved(a: Callable[[], object], b: Callable[[], object],
                repeat: int) -> tuple[float, float]:
    times: tuple[list[float], list[float]] = ([], [])
    for i in range(repeat):
        for fn, sink in ((a, times[0]), (b, times[1])) if i % 2 == 0 else \
                ((b, times[1]), (a, times[0])):
            start = time.perf_counter()
            fn()
            sink.append(time.perf_counter() - start)
    return statistics.median(times[0]), statistics.median(times[1])


def breakdown(module: torch.nn.Module, size: tuple[int, ...], repeat: int) -> None:
    """archcalc's two steps, and the forward torchinfo's time cannot go below."""
    graph = torch_graph(module, size)
    x = torch.rand((1, *size))

    def forward() -> object:
        with torch.no_grad():
            return module(x)

    t_read, t_analyze = interleaved(lambda: torch_graph(module, size),
                                    lambda: archcalc.analyze(graph), repeat)
    t_forward, _ = interleaved(forward, lambda: None, repeat)
    print(f"    archcalc: reading {t_read * 1e3:.1f} ms + analysis {t_analyze * 1e3:.1f} ms; "
          f"a plain forward (torchinfo runs one) {t_forward * 1e3:.1f} ms", flush=True)


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
        t_ours, t_theirs = interleaved(ours, theirs, repeat)
        print(f"  {name + ' (keras.applications)':<40} {t_ours * 1e3:>7.0f}ms "
              f"{t_theirs * 1e3:>8.0f}ms {t_theirs / t_ours:>8.1f}x  (model.summary())",
              flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--breakdown", action="store_true",
                        help="also time archcalc's reading and analysis, and a plain forward")
    args = parser.parse_args()
    size = (3, 224, 224)
    print(f"from_torch vs torchinfo.summary at {size[1]}x{size[2]}x{size[0]}: median of "
          f"{args.repeat} interleaved runs, torch threads {torch.get_num_threads()}, "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"  {'model':<40} {'archcalc':>9} {'torchinfo':>10} {'speed-up':>9}")
    for name, module in models().items():
        def ours(module: torch.nn.Module = module) -> object:
            return from_torch(module, size)

        def theirs(module: torch.nn.Module = module) -> object:
            with warnings.catch_warnings(), torch.no_grad():
                warnings.simplefilter("ignore")
                return torchinfo.summary(module, input_size=(1, *size), verbose=0)

        ours()  # warm-up: lazy imports on both sides
        theirs()
        t_ours, t_theirs = interleaved(ours, theirs, args.repeat)
        print(f"  {name:<40} {t_ours * 1e3:>7.0f}ms {t_theirs * 1e3:>8.0f}ms "
              f"{t_theirs / t_ours:>8.1f}x  (target >= 3x)", flush=True)
        if args.breakdown:
            breakdown(module, size, args.repeat)
    print("from_keras vs model.summary():")
    keras_rows(args.repeat)


if __name__ == "__main__":
    main()
