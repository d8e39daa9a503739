"""Issue 2's speed claims, measured side by side in one run (this machine is shared and noisy).

1. archcalc's analysis (parse + analyze, from spec text) of VGG19 and ResNet-50 against
   torchinfo's summary and fvcore's FLOP count of the same models built in torch (model
   construction is left out of the baselines' time, which favours them). Target: >= 20x.
2. ``archcalc vgg19 --table`` as a whole process against the floor
   ``python -c "import rich, typer"``. Target: under 1.5x of the floor.

Each measurement is the median of interleaved repeats. Run: ``make bench``.

archcalc is timed from spec text each time, with its layer cache emptied, so repeats measure
a cold parse. The processes run with bytecode compiled first (``compileall``), as after a
normal ``pip install``; an environment with PYTHONDONTWRITEBYTECODE would otherwise
recompile archcalc's sources on every start and measure the compiler instead.
"""

from __future__ import annotations

import compileall
import os
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

MODELS = ("vgg19", "resnet50")


def median_time(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def analysis_vs_torch_tools(repeat: int = 7) -> list[tuple[str, str, float, float]]:
    import torch
    import torchinfo
    from fvcore.nn import FlopCountAnalysis

    import archcalc
    from archcalc.backends.torch import build_module
    from archcalc.spec import _LAYERS

    rows = []
    for name in MODELS:
        graph = archcalc.load(name)
        module = build_module(graph).eval()
        x = torch.zeros(1, *graph.input_shape)

        def ours(name: str = name) -> object:
            _LAYERS.clear()
            return archcalc.analyze(archcalc.load(name))

        def summary(module: torch.nn.Module = module, x: torch.Tensor = x) -> object:
            return torchinfo.summary(module, input_data=x, verbose=0)

        def fvcore(module: torch.nn.Module = module, x: torch.Tensor = x) -> object:
            counter = FlopCountAnalysis(module, x)
            counter.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
            return counter.total()

        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for tool, baseline in (("torchinfo.summary", summary), ("fvcore", fvcore)):
                t_ours = median_time(ours, repeat)
                t_base = median_time(baseline, repeat)
                rows.append((name, tool, t_ours, t_base))
    return rows


def process_vs_floor(repeat: int = 21) -> tuple[float, float]:
    import archcalc

    compileall.compile_dir(Path(archcalc.__file__).parent, quiet=1)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    bin_dir = Path(sys.executable).parent
    ours = [str(bin_dir / "archcalc"), "vgg19", "--table"]
    floor = [sys.executable, "-c", "import rich, typer"]
    t_ours, t_floor = [], []
    for _ in range(repeat):  # interleaved, so load spikes hit both
        for cmd, sink in ((ours, t_ours), (floor, t_floor)):
            start = time.perf_counter()
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=env)
            sink.append(time.perf_counter() - start)
    return statistics.median(t_ours), statistics.median(t_floor)


def main() -> None:
    print("1. analysis in process (median of repeats)")
    print(f"   {'model':<9} {'baseline':<18} {'archcalc':>10} {'baseline':>10} {'speed-up':>9}")
    for name, tool, t_ours, t_base in analysis_vs_torch_tools():
        print(f"   {name:<9} {tool:<18} {t_ours * 1e3:>8.2f}ms {t_base * 1e3:>8.2f}ms "
              f"{t_base / t_ours:>8.1f}x  (target >= 20x)")
    t_ours, t_floor = process_vs_floor()
    print("2. whole process (median)")
    print(f"   archcalc vgg19 --table (piped: plain text)  {t_ours * 1e3:.0f} ms")
    print(f"   python -c 'import rich, typer'  {t_floor * 1e3:.0f} ms")
    print(f"   ratio {t_ours / t_floor:.2f}x  (target < 1.5x)")


if __name__ == "__main__":
    main()
