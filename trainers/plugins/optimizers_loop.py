"""The training machinery of the ``optimizers`` plugin: model, optimizers, objective, loop.

Built for speed without tricks that change the arithmetic: the whole dataset sits on the
training device as one float tensor (normalised there once), each epoch is an on-device
permutation whose slices index the batches, and losses are summed on the device and read
once per epoch, so no step waits for the host. No DataLoader, no per-sample Python;
benchmarks/bench_optimizers.py measures the loop against a DataLoader and the GEMM floor.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from trainers.counts import build_model, check_module
from trainers.dropout import Style, weight_scaled_network, with_dropout
from trainers.optim import RMSPropNesterov
from trainers.plugins.optimizers import METHODS

if TYPE_CHECKING:
    from trainers.data import Dataset

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


class HalfSquaredNorm(torch.autograd.Function):
    """(1/2) * sum of squares of several tensors, with a one-pass backward (grad * W).

    Autograd's ``w.pow(2).sum()`` writes a temporary and makes two passes back; on this MLP
    the penalty then costs a visible share of a CPU step, and the value is the same.
    """

    @staticmethod
    def forward(ctx: Any, *weights: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(*weights)
        flat = [w.reshape(-1) for w in weights]
        return torch.stack([torch.dot(f, f) for f in flat]).sum() / 2

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(w * grad for w in ctx.saved_tensors)


def l2_penalty(weights: Sequence[torch.Tensor], coefficient: float) -> torch.Tensor:
    """(coefficient / 2) * sum of squared weights: its gradient is coefficient * W, the
    same step as torch's ``weight_decay``, but it is part of the objective we record."""
    return HalfSquaredNorm.apply(*weights) * coefficient


# -- optimizers --------------------------------------------------------------------------
# Devices with torch's one-kernel Adam and Adagrad steps: the same update, a fraction of the
# memory passes (on this CPU Adam's step drops from ~6 ms to ~2 ms for 4M parameters).
FUSED_DEVICES = ("cpu", "cuda")


def make_optimizer(method: str, params: Iterable[torch.Tensor],
                   hyper: Mapping[str, float]) -> torch.optim.Optimizer:
    """The torch optimizer of ``method`` with its hyperparameters (keys as in the config)."""
    h, params = dict(hyper), list(params)
    fused = bool(params) and params[0].device.type in FUSED_DEVICES
    if method == "adagrad":
        return torch.optim.Adagrad(params, lr=h["lr"], eps=h["eps"], fused=fused or None)
    if method == "rmsprop":
        return torch.optim.RMSprop(params, lr=h["lr"], alpha=h["rho"], eps=h["eps"])
    if method == "rmsprop-nesterov":
        return RMSPropNesterov(params, lr=h["lr"], rho=h["rho"], momentum=h["momentum"],
                               eps=h["eps"])
    if method == "adadelta":
        return torch.optim.Adadelta(params, lr=h["lr"], rho=h["rho"], eps=h["eps"])
    if method == "adam":
        return torch.optim.Adam(params, lr=h["lr"], betas=(h["beta1"], h["beta2"]),
                                eps=h["eps"], fused=fused or None)
    raise ValueError(f"unknown method {method!r} (known: {', '.join(METHODS)})")


# -- data ----------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class DeviceData:
    """Both splits as float tensors on the training device, normalised per channel."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


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
                on_step: Callable[[int], None] | None = None) -> tuple[float, float]:
    """One pass over (x, y) in a random order; returns the mean minibatch data loss and
    regularised objective (weighted by batch size, so a short last batch counts less)."""
    n = x.shape[0]
    order = torch.randperm(n, device=x.device)
    sums = torch.zeros(2, device=x.device)
    model.train()
    for start in range(0, n, batch_size):
        idx = order[start:start + batch_size]
        data = F.cross_entropy(model(x[idx]), y[idx])
        objective = data + penalty()
        optimizer.zero_grad(set_to_none=True)
        objective.backward()
        optimizer.step()
        sums += torch.stack([data.detach(), objective.detach()]) * idx.shape[0]
        if on_step is not None:
            on_step(idx.shape[0])
    data_mean, objective_mean = (sums / n).tolist()
    return data_mean, objective_mean


def deterministic(model: nn.Sequential) -> nn.Sequential:
    """The network evaluated: dropout removed, weights leaving it scaled (trainers.dropout)."""
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

