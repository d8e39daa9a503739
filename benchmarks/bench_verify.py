"""Issue 12, part 4: ``archcalc verify`` against its measurement code before the speed-up
(commit 87c3de9), side by side in one process (this machine is shared and noisy).

Target: >= 3x faster on MobileNetV2 at 224x224x3 (23 s -> under 8 s quiet), and every zoo
model under 20 s, with the same checks. Both sides run :func:`archcalc.verify.verify` (the
same analysis, the same module from ``build_module``, the same check construction); only
the backend's measurements differ. The baseline below is 87c3de9's code for everything this
work changed: ``output_shapes`` and ``flopcounter_flops`` (a forward each), ``probe_copy``
(a float64 copy) and ``probe_fields`` (one float64 backward from every row to the input).
Its module swap for the probe is today's (each layer kind now says what its probe module
is; the swap costs nothing next to the backward passes). Every run checks that the old and
the new code give the same checks: names, rows, expected and measured values, results.

Seconds (wall and CPU of the process) are the median of interleaved repeats of the whole
``verify`` call (building the module included). Peak memory (``--memory``) is the peak RSS
of a fresh process per run while ``verify`` runs, beside its RSS before (torch, torchinfo
and fvcore imported, the graph parsed). With other work on the machine, ``--threads 1``
gives steadier numbers: two OpenMP threads wait for each other when one loses its core.

Run: ``.venv/bin/python benchmarks/bench_verify.py [--repeat 3] [--memory] [--new-only]
[MODEL ...]``
(no MODEL: the MobileNetV2 spec below and every zoo model; the old code takes minutes on
the deepest zoo models at 224, so a full run is long: ``--repeat 1`` first).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import resource
import statistics
import subprocess
import sys
import time
import types
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
from torch import nn

import archcalc
import archcalc.verify as verify_mod
from archcalc.algebra import fmt_shape
from archcalc.backends import measure
from archcalc.backends.torch import Net, modules_by_path
from archcalc.layers import Graph

# torchvision.models.mobilenet_v2 (width 1.0), Sandler et al. 2018, Table 2: t, c, n, s =
# 1,16,1,1  6,24,2,2  6,32,3,2  6,64,4,2  6,96,3,1  6,160,3,2  6,320,1,1. Convs have no bias;
# a block adds its input where the stride is 1 and the channels stay.
MOBILENET_V2 = """model mobilenet_v2
source Sandler et al. 2018, Table 2; torchvision.models.mobilenet_v2 (width 1.0)
param classes = 1000
param size = 224
input ${size}x${size}x3
# stem: 3x3 conv, 32, stride 2
conv3-32 s=2 bias=false; bn; relu6
# t=1, c=16, n=1, s=1: no expansion, no shortcut (32 -> 16)
conv3-32 g=32 bias=false; bn; relu6
conv1-16 bias=false; bn
# t=6, c=24, n=2, s=2
conv1-96 bias=false; bn; relu6; conv3-96 s=2 g=96 bias=false; bn; relu6
conv1-24 bias=false; bn
residual {
  conv1-144 bias=false; bn; relu6; conv3-144 g=144 bias=false; bn; relu6
  conv1-24 bias=false; bn
}
# t=6, c=32, n=3, s=2
conv1-144 bias=false; bn; relu6; conv3-144 s=2 g=144 bias=false; bn; relu6
conv1-32 bias=false; bn
repeat 2 {
  residual {
    conv1-192 bias=false; bn; relu6; conv3-192 g=192 bias=false; bn; relu6
    conv1-32 bias=false; bn
  }
}
# t=6, c=64, n=4, s=2
conv1-192 bias=false; bn; relu6; conv3-192 s=2 g=192 bias=false; bn; relu6
conv1-64 bias=false; bn
repeat 3 {
  residual {
    conv1-384 bias=false; bn; relu6; conv3-384 g=384 bias=false; bn; relu6
    conv1-64 bias=false; bn
  }
}
# t=6, c=96, n=3, s=1 (64 -> 96: the first block has no shortcut)
conv1-384 bias=false; bn; relu6; conv3-384 g=384 bias=false; bn; relu6
conv1-96 bias=false; bn
repeat 2 {
  residual {
    conv1-576 bias=false; bn; relu6; conv3-576 g=576 bias=false; bn; relu6
    conv1-96 bias=false; bn
  }
}
# t=6, c=160, n=3, s=2
conv1-576 bias=false; bn; relu6; conv3-576 s=2 g=576 bias=false; bn; relu6
conv1-160 bias=false; bn
repeat 2 {
  residual {
    conv1-960 bias=false; bn; relu6; conv3-960 g=960 bias=false; bn; relu6
    conv1-160 bias=false; bn
  }
}
# t=6, c=320, n=1, s=1
conv1-960 bias=false; bn; relu6; conv3-960 g=960 bias=false; bn; relu6
conv1-320 bias=false; bn
# head: 1x1 conv to 1280, global average pool, dropout, classifier
conv1-1280 bias=false; bn; relu6
gap
dropout-0.2
FC-${classes}
"""
MOBILENET_V2_PARAMS = 3_504_872  # torchvision's mobilenet_v2().parameters()
BENCH_SPEC = "mobilenet_v2-spec"


# -- the baseline: 87c3de9's measurement code ---------------------------------------------
def old_output_shapes(model: Net) -> dict[str, tuple[int, ...]]:
    shapes: dict[str, tuple[int, ...]] = {}

    def hook(path: str) -> Callable:
        return lambda _m, _i, out: shapes.__setitem__(path, tuple(out.shape[1:]))

    handles = [m.register_forward_hook(hook(p)) for p, m in modules_by_path(model).items()]
    try:
        with torch.no_grad():
            model.eval()(model.example())
    finally:
        for handle in handles:
            handle.remove()
    return shapes


def old_flopcounter_flops(model: Net) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model.eval()(model.example())
    return int(counter.get_total_flops())


def old_probe_copy(model: Net) -> Net:
    probe = copy.deepcopy(model).double().eval()
    measure._swap_for_probe(probe)  # today's swap: each kind names its probe module
    with torch.no_grad():
        for m in probe.modules():
            if isinstance(m, nn.Conv2d | nn.Linear):
                m.weight.fill_(1.0 / m.weight[0].numel())
                if m.bias is not None:
                    m.bias.zero_()
            elif isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d):
                m.reset_parameters()  # mean 0, variance 1, weight 1, bias 0
    for p in probe.parameters():
        p.requires_grad_(False)
    return probe


def old_probe_fields(model: Net, _paths: object = None) -> dict[str, tuple[object, object]]:
    probe = old_probe_copy(model)
    outputs: dict[str, torch.Tensor] = {}

    def hook(path: str) -> Callable:
        return lambda _m, _i, out: outputs.__setitem__(path, out) if out.dim() == 4 else None

    handles = [m.register_forward_hook(hook(p)) for p, m in modules_by_path(probe).items()]
    x = torch.ones((2, *model.input_shape), dtype=torch.float64, requires_grad=True)
    try:
        probe(x)
    finally:
        for handle in handles:
            handle.remove()
    found: dict[int, tuple[object, object]] = {}
    for out in outputs.values():
        if id(out) not in found:
            unit = out[0, :, 0, 0].sum() + out[1, :, -1, -1].sum()
            (grad,) = torch.autograd.grad(unit, x, retain_graph=True)
            found[id(out)] = (measure._box(grad[0]), measure._box(grad[1]))
    return {path: found[id(out)] for path, out in outputs.items()}


OLD = types.SimpleNamespace(
    torchinfo_counts=measure.torchinfo_counts, parameter_counts=measure.parameter_counts,
    fvcore_count=measure.fvcore_count, probe_fields=old_probe_fields,
    shapes_and_flops=lambda m: (old_output_shapes(m), old_flopcounter_flops(m)))


@contextlib.contextmanager
def backend(side: str) -> Iterator[None]:
    """verify() with the old measurements, or as it is."""
    real = verify_mod._backend

    def old() -> types.SimpleNamespace:
        real()  # imports torch, torchinfo and fvcore, or fails as verify does
        return OLD

    if side == "old":
        verify_mod._backend = old
    try:
        yield
    finally:
        verify_mod._backend = real


# -- running ------------------------------------------------------------------------------
def load(name: str) -> Graph:
    if name == BENCH_SPEC:
        return archcalc.parse(MOBILENET_V2)
    return archcalc.load(name)


def run(side: str, graph: Graph) -> tuple[float, float, list[tuple]]:
    """Wall and CPU seconds of one verify, and its checks."""
    with backend(side):
        start, cpu = time.perf_counter(), time.process_time()
        report = verify_mod.verify(graph)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    return seconds, cpu, [(c.name, c.path, c.expected, c.actual, c.ok) for c in report.checks]


def compare(name: str, repeat: int) -> tuple[dict[str, float], dict[str, float], int, bool]:
    """Median wall and CPU seconds per side, number of checks, whether the checks agree."""
    graph = load(name)
    wall: dict[str, list[float]] = {"old": [], "new": []}
    cpu: dict[str, list[float]] = {"old": [], "new": []}
    results = {}
    for i in range(repeat):  # interleaved, alternating which goes first
        for side in (("old", "new") if i % 2 == 0 else ("new", "old")):
            seconds, cpu_seconds, results[side] = run(side, graph)
            wall[side].append(seconds)
            cpu[side].append(cpu_seconds)
    same = results["old"] == results["new"]
    return ({k: statistics.median(v) for k, v in wall.items()},
            {k: statistics.median(v) for k, v in cpu.items()}, len(results["new"]), same)


def child(side: str, name: str) -> None:
    """One verify in this fresh process: seconds, the RSS before it and the peak RSS during
    it (Linux: the peak is reset first through /proc/self/clear_refs), as JSON."""
    graph = load(name)
    verify_mod._backend()  # torch, torchinfo and fvcore imported: part of the base
    try:
        Path("/proc/self/clear_refs").write_text("5")  # peak RSS := current RSS
        status = Path("/proc/self/status")
        base = _status_mb(status, "VmRSS")
    except OSError:
        status, base = None, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    seconds, _, _ = run(side, graph)
    peak = (_status_mb(status, "VmHWM") if status else
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print(json.dumps({"seconds": seconds, "base_mb": base, "peak_mb": peak}))


def _status_mb(status: Path, field: str) -> float:
    line = next(x for x in status.read_text().splitlines() if x.startswith(field + ":"))
    return int(line.split()[1]) / 1024  # kB


def memory(name: str) -> dict[str, dict[str, float]]:
    out = {}
    for side in ("old", "new"):
        threads = ["--threads", str(torch.get_num_threads())]
        done = subprocess.run([sys.executable, __file__, "--child", side, *threads, name],
                              check=True, capture_output=True, text=True)
        out[side] = json.loads(done.stdout.strip().splitlines()[-1])
    return out


def target(names: list[str], repeat: int) -> None:
    """Today's verify alone, against the 20 s target: the baseline takes minutes on the
    deepest zoo models, and the target is absolute."""
    print(f"verify (today's code): median of {repeat} repeats, torch threads "
          f"{torch.get_num_threads()}; target: every model under 20 s")
    slowest = 0.0
    for name in names:
        graph = load(name)
        times, ok = [], True
        for _ in range(repeat):
            seconds, _, checks = run("new", graph)
            times.append(seconds)
            ok = ok and all(c[-1] for c in checks)
        wall = statistics.median(times)
        slowest = max(slowest, wall)
        print(f"  {name:<20} {fmt_shape(graph.input_shape):>11} {wall:>7.2f}s  "
              f"{len(checks)} checks {'pass' if ok else 'FAIL'}", flush=True)
    print(f"slowest {slowest:.2f}s: {'under' if slowest < 20 else 'OVER'} the 20 s target")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="*", help=f"{BENCH_SPEC} and/or zoo names")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--memory", action="store_true", help="peak RSS, a process per run")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    parser.add_argument("--new-only", action="store_true",
                        help="time only today's code (the 20 s target), no baseline")
    parser.add_argument("--child", choices=("old", "new"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.child:
        child(args.child, args.models[0])
        return
    params = archcalc.analyze(archcalc.parse(MOBILENET_V2)).totals.params
    assert params == MOBILENET_V2_PARAMS, params
    names = args.models or [BENCH_SPEC, *archcalc.zoo.names()]
    for side in ("old", "new"):  # warm-up: lazy imports of torch, torchinfo and fvcore
        run(side, archcalc.parse("input 8x8x3\nconv3-4; bn; relu; maxpool; FC-2"))
    if args.new_only:
        target(names, args.repeat)
        return
    print(f"verify, old (87c3de9 measurements) vs new: median of {args.repeat} interleaved "
          f"repeats, torch threads {torch.get_num_threads()}")
    print(f"  {'model':<20} {'input':>11} {'old':>8} {'new':>8} {'speed-up':>9} "
          f"{'old CPU':>8} {'new CPU':>8} {'CPU ratio':>9}  checks")
    for name in names:
        wall, cpu, n, same = compare(name, args.repeat)
        shape = fmt_shape(load(name).input_shape)
        print(f"  {name:<20} {shape:>11} {wall['old']:>7.2f}s {wall['new']:>7.2f}s "
              f"{wall['old'] / wall['new']:>8.1f}x {cpu['old']:>7.2f}s {cpu['new']:>7.2f}s "
              f"{cpu['old'] / cpu['new']:>8.1f}x  {n} {'same' if same else 'DIFFERENT'}",
              flush=True)
    if args.memory:
        print("peak RSS during verify, a fresh process per run (MB; before it: 'base')")
        print(f"  {'model':<20} {'base':>6} {'old':>7} {'new':>7} {'old-base':>9} "
              f"{'new-base':>9}")
        for name in names:
            m = memory(name)
            base, old, new = m["new"]["base_mb"], m["old"]["peak_mb"], m["new"]["peak_mb"]
            print(f"  {name:<20} {base:>6.0f} {old:>7.0f} {new:>7.0f} "
                  f"{old - m['old']['base_mb']:>9.0f} {new - base:>9.0f}", flush=True)


if __name__ == "__main__":
    main()
