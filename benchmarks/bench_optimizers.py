"""Issue 4's speed claims for the ``optimizers`` plugin, measured side by side in one run.

(a) the plugin's loop, ``train_epoch``: data on the device as one tensor, batches as slices of
    an on-device permutation, losses read once per epoch;
(b) the same model, objective and optimizer step fed by a plain ``DataLoader(TensorDataset)``
    with ``shuffle=True``, each batch moved to the device;
(c) the GEMM floor: only the matrix multiplies of training (forward, weight gradients, input
    gradients except the first layer's, whose input needs none), with shapes from archcalc's
    rows for the same model, so the same FLOPs and nothing else.

Targets: a / c <= 1.3 and a / b <= 1.0. Each figure is the median of interleaved repeats of
``--steps`` steps (this machine is shared and noisy).
Run: ``python benchmarks/bench_optimizers.py`` (``--help`` for the model, method and device).
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from archcalc import analyze
from trainers.counts import logits_graph, resolve
from trainers.plugins.optimizers.config import METHODS, Config, hyperparameters
from trainers.plugins.optimizers.train import (
    SPEC,
    build_mlp,
    l2_penalty,
    make_optimizer,
    penalised_weights,
    step_function,
    train_epoch,
)
from trainers.runtime import Timer, keep_freed_memory


def gemm_shapes(hidden: int) -> list[tuple[int, int, int]]:
    """(in, out, passes) of each linear layer from archcalc's rows: 3 GEMMs per layer in
    training, 2 for the first (no gradient for the input images)."""
    rows = analyze(logits_graph(resolve(SPEC, {"hidden": hidden}))).rows
    linear = [r for r in rows if r.kind == "linear"]
    return [(r.in_shape[0], r.out_shape[0], 2 if i == 0 else 3) for i, r in enumerate(linear)]


def train_flops(hidden: int, batch: int) -> int:
    """FLOPs of one training step's GEMMs: 2 per MAC, archcalc's MACs per layer."""
    return sum(2 * batch * i * o * k for i, o, k in gemm_shapes(hidden))


def floor_step(hidden: int, batch: int, device: str) -> Callable[[], None]:
    """One step's GEMMs on preallocated tensors (out=): the arithmetic alone."""
    ops = []
    for i, o, k in gemm_shapes(hidden):
        x, w, dy = (torch.randn(batch, i, device=device), torch.randn(o, i, device=device),
                    torch.randn(batch, o, device=device))
        ops.append((x, w.t(), torch.empty(batch, o, device=device)))  # forward
        ops.append((dy.t(), x, torch.empty(o, i, device=device)))  # weight gradient
        if k == 3:
            ops.append((dy, w, torch.empty(batch, i, device=device)))  # input gradient

    def step() -> None:
        for a, b, out in ops:
            torch.mm(a, b, out=out)

    return step


def timed(fn: Callable[[], object], device: str) -> float:
    with Timer(device) as timer:
        fn()
    return timer.seconds


@dataclass
class Setup:
    """The plugin's model, optimizer, step and L2 penalty value, as ``run`` builds them."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    step: Callable[[], object]
    how: str
    penalty: Callable[[], torch.Tensor]


def setup(args: argparse.Namespace, method: str) -> Setup:
    config = Config(hidden=args.hidden, step=args.step)
    drop = (0.2, 0.5, 0.5) if args.variant == "dropout" else None
    model = build_mlp(args.hidden, drop, "classic").to(args.device)
    optimizer = make_optimizer(method, model, hyperparameters(config, method),
                               config.weight_decay)
    step, how = step_function(optimizer, method, config.step, args.device)
    weights = penalised_weights(model)
    return Setup(model, optimizer, step, how, lambda: l2_penalty(weights, config.weight_decay))


def loader_epoch(s: Setup, loader: DataLoader, device: str) -> None:
    """(b): the textbook loop, same objective and optimizer step, batches from a DataLoader."""
    s.model.train()
    for xb, yb in loader:
        xb, yb = xb.to(device), yb.to(device)
        loss = F.cross_entropy(s.model(xb), yb)
        s.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        s.step()
        float(loss.detach() + s.penalty())  # the usual per-step objective.item()


def contenders(args: argparse.Namespace,
               steps: dict[str, str]) -> dict[str, Callable[[], object]]:
    """(a) and (b) for every method, and (c), as callables of one timed epoch each; ``steps``
    receives how each method's optimizer steps (fused, compiled or eager)."""
    n = args.steps * args.batch
    x_cpu, y_cpu = torch.randn(n, 3, 32, 32), torch.randint(0, 10, (n,))
    x, y = x_cpu.to(args.device), y_cpu.to(args.device)
    loader = DataLoader(TensorDataset(x_cpu, y_cpu), batch_size=args.batch, shuffle=True)
    runs: dict[str, Callable[[], object]] = {}
    for method in args.methods.split(","):
        s = setup(args, method)
        steps[method] = s.how
        runs[f"a {method}"] = partial(train_epoch, s.model, s.optimizer, x, y, args.batch,
                                      s.penalty, None, s.step)
        runs[f"b {method}"] = partial(loader_epoch, s, loader, args.device)
    floor = floor_step(args.hidden, args.batch, args.device)
    runs["c"] = lambda: [floor() for _ in range(args.steps)]
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60, help="steps per timed epoch")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--hidden", type=int, default=1000)
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--variant", choices=("l2", "dropout"), default="l2")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--step", choices=("auto", "compile", "eager"), default="auto",
                        help="the plugin's step setting for RMSProp, Nesterov and AdaDelta")
    args = parser.parse_args()
    torch.manual_seed(0)
    if args.device == "cpu":
        keep_freed_memory()  # as the plugin's run does; process-wide, so (b) and (c) too
    steps: dict[str, str] = {}
    runs = contenders(args, steps)
    for fn in runs.values():  # warm-up: allocator, kernels, optimizer state, compilation
        fn()
    times: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(args.repeat):  # interleaved, so a noisy neighbour hits all alike
        for key, fn in runs.items():
            times[key].append(timed(fn, args.device))
    report(args, {k: statistics.median(v) for k, v in times.items()}, steps)


def report(args: argparse.Namespace, t: dict[str, float], steps: dict[str, str]) -> None:
    flops = train_flops(args.hidden, args.batch) * args.steps
    print(f"{SPEC} hidden {args.hidden}, {args.variant}, batch {args.batch}, {args.steps} "
          f"steps on {args.device} ({torch.get_num_threads()} threads, torch "
          f"{torch.__version__}); median of {args.repeat} interleaved repeats")
    print(f"GEMM FLOPs per epoch (archcalc rows): {flops / 1e9:.2f} GFLOP; "
          f"(c) GEMM floor {t['c']:.3f} s = {flops / t['c'] / 1e9:.1f} GFLOP/s")
    print(f"{'method':18s} {'step':>9s} {'(a) plugin':>11s} {'(b) loader':>11s} "
          f"{'a / c':>7s} {'a / b':>7s}")
    for method in args.methods.split(","):
        a, b = t[f"a {method}"], t[f"b {method}"]
        print(f"{method:18s} {steps[method]:>9s} {a:10.3f}s {b:10.3f}s {a / t['c']:7.2f} "
              f"{a / b:7.2f}")
    print("targets: a / c <= 1.3, a / b <= 1.0")


if __name__ == "__main__":
    main()
