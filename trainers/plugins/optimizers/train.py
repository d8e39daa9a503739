"""The training machinery of the ``optimizers`` plugin: model, optimizers, objective, loop.

Built for speed without tricks that change the arithmetic: the whole dataset sits on the
training device as one float tensor (normalised there once), each epoch is an on-device
permutation whose slices index the batches, and losses are summed on the device and read
once per epoch, so no step waits for the host. No DataLoader, no per-sample Python;
benchmarks/bench_optimizers.py measures the loop against a DataLoader and the GEMM floor.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from trainers.counts import build_model, check_module
from trainers.data import Dataset, DeviceData
from trainers.errors import ConfigError
from trainers.plugins.optimizers.config import METHODS
from trainers.plugins.optimizers.dropout import Style, weight_scaled_network, with_dropout
from trainers.plugins.optimizers.optim import RMSPropNesterov

SPEC = "mlp-cifar"


# -- model and objective ---------------------------------------------------------------
def build_mlp(hidden: int, dropout: tuple[float, ...] | None, style: Style) -> nn.Sequential:
    """The ``mlp-cifar`` spec as logits; ``dropout`` = (input, hidden, hidden) probabilities
    for its dropout variant, None for none. Parameters are checked against archcalc."""
    params = {"hidden": hidden, "dropout": int(dropout is not None)}
    model = build_model(SPEC, params)
    check_module(model, SPEC, params)
    return with_dropout(model, dropout, style) if dropout is not None else model


def penalised_weights(model: nn.Module) -> list[torch.Tensor]:
    """The weight matrices the L2 penalty covers; biases are left free, as usual."""
    return [m.weight for m in model.modules() if isinstance(m, nn.Linear)]


@torch.no_grad()
def l2_penalty(weights: Sequence[torch.Tensor], coefficient: float) -> torch.Tensor:
    """The penalty's value, (coefficient / 2) * sum of squared weights, for the objective we
    record. Its gradient, coefficient * W, is not taken by autograd: the optimizer adds it
    as ``weight_decay`` on the weight group (see :func:`param_groups`), inside its own pass
    over the weights, where autograd would cost two more passes and a temporary per step."""
    flat = [w.reshape(-1) for w in weights]
    return torch.stack([torch.dot(f, f) for f in flat]).sum() * (coefficient / 2)


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """The weights with the L2 coefficient as weight decay, the biases with none."""
    weights = penalised_weights(model)
    ids = {id(w) for w in weights}
    rest = [p for p in model.parameters() if id(p) not in ids]
    return [{"params": weights, "weight_decay": weight_decay},
            {"params": rest, "weight_decay": 0.0}]


# -- optimizers --------------------------------------------------------------------------
# Devices with torch's one-kernel Adam and Adagrad steps: the same update, a fraction of the
# memory passes (on this CPU Adam's step drops from ~6 ms to ~2 ms for 4M parameters).
FUSED_DEVICES = ("cpu", "cuda")
# Methods without such a kernel: torch.compile fuses their per-op steps into one loop.
UNFUSED = ("rmsprop", "rmsprop-nesterov", "adadelta")
StepMode = Literal["auto", "compile", "eager"]


def make_optimizer(method: str, model: nn.Module, hyper: Mapping[str, float],
                   weight_decay: float = 0.0) -> torch.optim.Optimizer:
    """The torch optimizer of ``method`` with its hyperparameters (keys as in the config) and
    the L2 coefficient as weight decay on the model's weights."""
    h, groups = dict(hyper), param_groups(model, weight_decay)
    device = next(model.parameters()).device.type
    fused = True if device in FUSED_DEVICES else None
    if method == "adagrad":
        return torch.optim.Adagrad(groups, lr=h["lr"], eps=h["eps"], fused=fused)
    if method == "rmsprop":
        return torch.optim.RMSprop(groups, lr=h["lr"], alpha=h["rho"], eps=h["eps"])
    if method == "rmsprop-nesterov":
        return RMSPropNesterov(groups, lr=h["lr"], rho=h["rho"], momentum=h["momentum"],
                               eps=h["eps"])
    if method == "adadelta":
        return torch.optim.Adadelta(groups, lr=h["lr"], rho=h["rho"], eps=h["eps"])
    if method == "adam":
        return torch.optim.Adam(groups, lr=h["lr"], betas=(h["beta1"], h["beta2"]),
                                eps=h["eps"], fused=fused)
    raise ValueError(f"unknown method {method!r} (known: {', '.join(METHODS)})")


def can_compile(device: str) -> bool:
    """Whether torch.compile can build kernels here: a C++ compiler for CPU code (inductor
    calls ``$CXX`` or ``c++``/``g++``/``clang++``), triton for CUDA."""
    if device.startswith("cuda"):
        return importlib.util.find_spec("triton") is not None
    names = [os.environ.get("CXX", ""), "c++", "g++", "clang++"]
    return any(shutil.which(name) for name in names if name)


def check_step(mode: StepMode, methods: Sequence[str], device: str) -> None:
    """``step = "compile"`` for a method torch.compile would fuse needs a compiler here."""
    if mode == "compile" and set(methods) & set(UNFUSED) and not can_compile(device):
        raise ConfigError(f'step = "compile" needs a C++ compiler (set CXX) for {device}; '
                          'install one, or use step = "eager" or "auto"')


def step_function(optimizer: torch.optim.Optimizer, method: str, mode: StepMode,
                  device: str) -> tuple[Callable[[], Any], str]:
    """The optimizer's step and how it runs: "fused" (torch's one-kernel step), "compiled"
    (torch.compile fuses the per-op step: ~13 memory passes over the parameters become ~5)
    or "eager". ``auto`` compiles where it can; ``compile`` insists, with a clear error."""
    if method not in UNFUSED:
        return optimizer.step, "fused" if device.split(":")[0] in FUSED_DEVICES else "eager"
    check_step(mode, (method,), device)
    if mode == "eager" or not can_compile(device):
        return optimizer.step, "eager"
    # Dynamo guards on the optimizer object, so each new optimizer recompiles; past its
    # recompile limit it would silently fall back to eager. One training's graphs (first
    # step with state set-up, then every later step) need two: start each from a clean cache.
    torch._dynamo.reset()
    compiled = torch.compile(optimizer.step)

    def step() -> Any:
        with _quiet_profiler_notice():
            return compiled()

    return step, "compiled"


# Dynamo compiles the step on its first call and logs, as a warning, that it skips the
# optimizer's profiler.record_function context: nothing a user can act on.
DYNAMO_CONTEXT_LOGGER = "torch._dynamo.variables.ctx_manager"


@contextlib.contextmanager
def _quiet_profiler_notice() -> Iterator[None]:
    """Dynamo's "Profiler record function ... will be ignored" kept out of the run's output,
    for the compiled step only (its logger's errors still show)."""
    logger = logging.getLogger(DYNAMO_CONTEXT_LOGGER)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


# -- data ----------------------------------------------------------------------------------
def to_device(ds: Dataset, device: str) -> DeviceData:
    """Move uint8 images (4x less to copy) to ``device``, then scale to [0, 1] and normalise
    with the training set's per-channel mean and std, on the device."""
    x_train = ds.train.x.to(device).float().div_(255)
    mean = x_train.mean(dim=(0, 2, 3), keepdim=True)
    std = x_train.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-6)
    x_test = ds.test.x.to(device).float().div_(255)
    return DeviceData(x_train.sub_(mean).div_(std), ds.train.y.to(device),
                      x_test.sub_(mean).div_(std), ds.test.y.to(device))


# -- the loop --------------------------------------------------------------------------------
def train_epoch(model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor,
                y: torch.Tensor, batch_size: int, penalty: Callable[[], torch.Tensor],
                on_step: Callable[[int], None] | None = None,
                step: Callable[[], Any] | None = None) -> tuple[float, float]:
    """One pass over (x, y) in a random order; returns the mean minibatch data loss and
    regularised objective (weighted by batch size, so a short last batch counts less).

    Autograd differentiates the data loss; the penalty's gradient comes with the optimizer's
    weight decay (:func:`l2_penalty`). ``step`` replaces ``optimizer.step`` (a compiled one,
    :func:`step_function`)."""
    n = x.shape[0]
    order = torch.randperm(n, device=x.device)
    sums = torch.zeros(2, device=x.device)
    take_step = step or optimizer.step
    model.train()
    for start in range(0, n, batch_size):
        idx = order[start:start + batch_size]
        data = F.cross_entropy(model(x.index_select(0, idx)), y.index_select(0, idx))
        objective = data.detach() + penalty()  # the weights the gradient is taken at
        optimizer.zero_grad(set_to_none=True)
        data.backward()
        take_step()
        sums += torch.stack([data.detach(), objective]) * idx.shape[0]
        if on_step is not None:
            on_step(idx.shape[0])
    data_mean, objective_mean = (sums / n).tolist()
    return data_mean, objective_mean


def deterministic(model: nn.Sequential) -> nn.Sequential:
    """The network evaluated: dropout removed, weights leaving it scaled (dropout.py)."""
    with torch.no_grad():
        return weight_scaled_network(model)


@torch.inference_mode()
def evaluate(net: nn.Module, x: torch.Tensor, y: torch.Tensor,
             chunk: int) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``net`` on (x, y), ``chunk`` samples at a time."""
    sums = torch.zeros(2, device=x.device)
    for start in range(0, x.shape[0], chunk):
        logits = net(x[start:start + chunk])
        target = y[start:start + chunk]
        sums[0] += F.cross_entropy(logits, target, reduction="sum")
        sums[1] += (logits.argmax(dim=1) == target).sum()
    loss, correct = (sums / x.shape[0]).tolist()
    return loss, correct

