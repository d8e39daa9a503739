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
reading the model (tracing the module with torch.fx).

Run: ``.venv/bin/python benchmarks/bench_importers.py [--repeat 7]``
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from collections.abc import Callable

import torch
import torchinfo

import archcalc
from archcalc.backends.torch import build_module


def models() -> dict[str, torch.nn.Module]:
    found = {"resnet50": build_module(archcalc.load("resnet50")).eval()}
    try:
        from efficientnet_pytorch import EfficientNet
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

    for name, model in keras_models().items():
        def ours(model: object = model) -> object:
            return archcalc.from_keras(model)  # type: ignore[attr-defined]

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
    args = parser.parse_args()
    size = (3, 224, 224)
    print(f"from_torch vs torchinfo.summary at {size[1]}x{size[2]}x{size[0]}: median of "
          f"{args.repeat} interleaved runs, torch threads {torch.get_num_threads()}")
    print(f"  {'model':<40} {'archcalc':>9} {'torchinfo':>10} {'speed-up':>9}")
    for name, module in models().items():
        def ours(module: torch.nn.Module = module) -> object:
            return archcalc.from_torch(module, size)

        def theirs(module: torch.nn.Module = module) -> object:
            with warnings.catch_warnings(), torch.no_grad():
                warnings.simplefilter("ignore")
                return torchinfo.summary(module, input_size=(1, *size), verbose=0)

        ours()  # warm-up: lazy imports on both sides
        theirs()
        t_ours, t_theirs = interleaved(ours, theirs, args.repeat)
        print(f"  {name:<40} {t_ours * 1e3:>7.0f}ms {t_theirs * 1e3:>8.0f}ms "
              f"{t_theirs / t_ours:>8.1f}x  (target >= 3x)", flush=True)
    print("from_keras vs model.summary():")
    keras_rows(args.repeat)


if __name__ == "__main__":
    main()
