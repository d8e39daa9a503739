"""Issue 4's speed claims for the ``optimizers`` plugin, measured side by side in one run.

(a) the plugin's loop, ``train_epoch``: data on the device as one tensor, batches as slices of
    an on-device permutation, losses read once per epoch;
(b) the same model, objective and optimizer fed by a plain ``DataLoader(TensorDataset)`` with
    ``shuffle=True``, each batch moved to the device;
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
from functools import partial

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from archcalc import analyze
from trainers.counts import logits_graph, resolve
from trainers.plugins.optimizers import METHODS, Config, hyperparameters
from trainers.plugins.optimizers_loop import (
    SPEC,
    build_mlp,
    l2_penalty,
    make_optimizer,
    penalised_weights,
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


def setup(args: argparse.Namespace, method: str) -> tuple[torch.nn.Module, torch.optim.Optimizer,
                                                         Callable[[], torch.Tensor]]:
    """The plugin's model, optimizer and L2 penalty, as ``run`` builds them."""
    config = Config(hidden=args.hidden)
    drop = (0.2, 0.5, 0.5) if args.variant == "dropout" else None
    model = build_mlp(args.hidden, drop, "classic").to(args.device)
    optimizer = make_optimizer(method, model.parameters(), hyperparameters(config, method))
    weights = penalised_weights(model)
    return model, optimizer, lambda: l2_penalty(weights, config.weight_decay)


def loader_epoch(model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                 loader: DataLoader, penalty: Callable[[], torch.Tensor], device: str) -> None:
    """(b): the textbook loop, same objective and optimizer, batches from a DataLoader."""
    model.train()
    for xb, yb in loader:
        xb, yb = xb.to(device), yb.to(device)
        loss = F.cross_entropy(model(xb), yb) + penalty()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        float(loss.detach())  # the usual per-step loss.item()


def contenders(args: argparse.Namespace) -> dict[str, Callable[[], object]]:
    """(a) and (b) for every method, and (c), as callables of one timed epoch each."""
    n = args.steps * args.batch
    x_cpu, y_cpu = torch.randn(n, 3, 32, 32), torch.randint(0, 10, (n,))
    x, y = x_cpu.to(args.device), y_cpu.to(args.device)
    loader = DataLoader(TensorDataset(x_cpu, y_cpu), batch_size=args.batch, shuffle=True)
    runs: dict[str, Callable[[], object]] = {}
    for method in args.methods.split(","):
        model, opt, penalty = setup(args, method)
        runs[f"a {method}"] = partial(train_epoch, model, opt, x, y, args.batch, penalty)
        runs[f"b {method}"] = partial(loader_epoch, model, opt, loader, penalty, args.device)
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
    args = parser.parse_args()
    torch.manual_seed(0)
    if args.device == "cpu":
        keep_freed_memory()  # as the plugin's run does; process-wide, so (b) and (c) too
    runs = contenders(args)
    for fn in runs.values():  # warm-up: allocator, kernels, optimizer state
        fn()
    times: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(args.repeat):  # interleaved, so a noisy neighbour hits all alike
        for key, fn in runs.items():
            times[key].append(timed(fn, args.device))
    report(args, {k: statistics.median(v) for k, v in times.items()})


def report(args: argparse.Namespace, t: dict[str, float]) -> None:
    flops = train_flops(args.hidden, args.batch) * args.steps
    print(f"{SPEC} hidden {args.hidden}, {args.variant}, batch {args.batch}, {args.steps} "
          f"steps on {args.device} ({torch.get_num_threads()} threads, torch "
          f"{torch.__version__}); median of {args.repeat} interleaved repeats")
    print(f"GEMM FLOPs per epoch (archcalc rows): {flops / 1e9:.2f} GFLOP; "
          f"(c) GEMM floor {t['c']:.3f} s = {flops / t['c'] / 1e9:.1f} GFLOP/s")
    print(f"{'method':18s} {'(a) plugin':>11s} {'(b) loader':>11s} {'a / c':>7s} {'a / b':>7s}")
    for method in args.methods.split(","):
        a, b = t[f"a {method}"], t[f"b {method}"]
        print(f"{method:18s} {a:10.3f}s {b:10.3f}s {a / t['c']:7.2f} {a / b:7.2f}")
    print("targets: a / c <= 1.3, a / b <= 1.0")


if __name__ == "__main__":
    main()
