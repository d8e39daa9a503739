"""The training of the ``cutout`` plugin: ResNet from the archcalc spec, one step of batch
augmentation with gradient accumulation, an epoch, and evaluation; DDP-aware.

A step takes B image indices (the same on every rank), each rank keeps its share B / world,
makes M copies with independent augmentation on the device, and runs them forward and
backward in micro-batches whose losses are summed and divided by the step's M x B images,
so the gradient is the mean over the whole step whatever the micro-batch. DDP averages the
ranks' gradients, which restores the global mean. BatchNorm sees each micro-batch (and each
rank's share) as its own batch, as in Hoffer et al.'s chunked batches (ghost batch norm).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from archcalc.kinds import Residual
from archcalc.layers import Graph
from trainers.counts import build_model, resolve
from trainers.plugins.cutout.augment import Augment, batch_augment, normalize
from trainers.runtime import distributed_rank

SPEC = "resnet-cifar"


@dataclass(frozen=True)
class World:
    """This process's place in a DDP job (rank 0 of 1 without one)."""

    rank: int = 0
    size: int = 1

    @staticmethod
    def from_env() -> World:
        """From torchrun's ``RANK`` / ``WORLD_SIZE``, read as the host reads them (the host
        lets rank 0 alone write the run, so both must agree on which process that is)."""
        return World(*distributed_rank())


@dataclass(frozen=True)
class StepPlan:
    """How one step runs: M copies, micro-batch (0: all at once), precision and layout."""

    m: int
    recipe: Augment
    micro_batch: int = 0
    amp: bool = False  # bf16 autocast (CUDA)
    channels_last: bool = False


def graph(depth: int, shortcut: Literal["A", "B"]) -> Graph:
    """The spec's ResNet of ``depth``; option-A shortcuts rewritten to ``shortcut``."""
    g = resolve(SPEC, {"depth": depth})
    if shortcut == "A":
        return g
    body = tuple(dataclasses.replace(node, layer=dataclasses.replace(node.layer,
                                                                     shortcut=shortcut))
                 if isinstance(node.layer, Residual) and node.layer.shortcut == "A" else node
                 for node in g.body)
    return dataclasses.replace(g, body=body)


def build(depth: int, shortcut: Literal["A", "B"], device: str) -> nn.Module:
    """The ResNet (logits, torch's default initialisation) on ``device``."""
    return build_model(graph(depth, shortcut)).to(device)


def make_optimizer(model: nn.Module, lr: float, momentum: float, weight_decay: float,
                   milestones: tuple[int, ...], decay: float,
                   ) -> tuple[torch.optim.SGD, torch.optim.lr_scheduler.MultiStepLR]:
    """SGD with momentum and weight decay, lr multiplied by ``decay`` at each milestone."""
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum,
                          weight_decay=weight_decay)
    return opt, torch.optim.lr_scheduler.MultiStepLR(opt, list(milestones), decay)


def shard(index: torch.Tensor, world: World) -> torch.Tensor:
    """This rank's contiguous share of a step's image indices."""
    if len(index) % world.size:
        raise ValueError(f"batch of {len(index)} does not split over {world.size} ranks")
    per = len(index) // world.size
    return index[world.rank * per:(world.rank + 1) * per]


def _chunks(n: int, micro: int) -> Iterator[slice]:
    size = micro if 0 < micro < n else n
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


def augmentation_generator(device: str | torch.device, seed: int, rank: int, training: int,
                           epoch: int) -> torch.Generator:
    """The random stream of one epoch's augmentation on one rank.

    Ranks must agree on the weights and the permutation (torch's default generator, seeded
    alike) but not on their crops, flips and holes: with the default generator every rank
    would draw the same ones for its share. Seeding from (seed, rank, training, epoch) keeps
    the ranks independent and needs no saved state, so a resumed epoch draws as before."""
    key = hashlib.blake2b(f"{seed}/{rank}/{training}/{epoch}".encode(), digest_size=8)
    return torch.Generator(device).manual_seed(int.from_bytes(key.digest(), "little") >> 1)


def train_step(model: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor,
               y: torch.Tensor, plan: StepPlan,
               generator: torch.Generator | None = None) -> torch.Tensor:
    """Augment uint8 ``x`` (this rank's images) M times, drawing from ``generator``,
    accumulate the mean loss's gradient over micro-batches, take one optimizer step; returns
    the loss (a tensor)."""
    images, labels = batch_augment(x, y, plan.m, plan.recipe, generator=generator)
    if plan.channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    opt.zero_grad(set_to_none=True)
    total = torch.zeros((), device=x.device)
    parts = list(_chunks(len(labels), plan.micro_batch))
    for i, part in enumerate(parts):
        with _no_sync(model, last=i == len(parts) - 1), _autocast(x.device.type, plan.amp):
            loss = F.cross_entropy(model(images[part]), labels[part], reduction="sum")
        (loss / len(labels)).backward()
        total += loss.detach()
    opt.step()
    return total / len(labels)


def _no_sync(model: nn.Module, last: bool) -> contextlib.AbstractContextManager[None]:
    """DDP's gradient all-reduce only on the last micro-batch of a step."""
    sync = getattr(model, "no_sync", None)
    return contextlib.nullcontext() if last or sync is None else sync()


def _autocast(device_type: str, enabled: bool) -> contextlib.AbstractContextManager[None]:
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device_type, dtype=torch.bfloat16)


def train_epoch(model: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor,
                y: torch.Tensor, batch: int, plan: StepPlan, steps: int = 0,
                world: World = World(), generator: torch.Generator | None = None,
                on_step: Callable[[int], None] | None = None) -> float:
    """One epoch: N // batch steps (or ``steps``) over a fresh permutation; mean loss.

    The permutation comes from torch's CPU generator, so ranks seeded alike agree on it;
    augmentation draws from ``generator`` (:func:`augmentation_generator`); ``on_step`` is
    told of each step (the progress bar)."""
    model.train()
    order = torch.randperm(len(y)).to(x.device)
    count = steps or len(y) // batch
    losses = []
    for s in range(count):
        start = (s * batch) % max(len(y) - batch + 1, 1)
        index = shard(order[start:start + batch], world)
        # index_select: a row copy per image, faster than advanced indexing on uint8
        losses.append(train_step(model, opt, x.index_select(0, index), y.index_select(0, index),
                                 plan, generator))
        if on_step is not None:
            on_step(1)
    return float(torch.stack(losses).mean()) if losses else float("nan")


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, recipe: Augment,
             batch: int, amp: bool = False) -> tuple[float, float]:
    """Loss and accuracy on the original (normalised, unaugmented) images."""
    model.eval()
    loss, correct = torch.zeros((), device=x.device), torch.zeros((), device=x.device)
    for start in range(0, len(y), batch):
        images = normalize(x[start:start + batch], recipe.mean, recipe.std)
        with _autocast(x.device.type, amp):
            logits = model(images).float()
        target = y[start:start + batch]
        loss += F.cross_entropy(logits, target, reduction="sum")
        correct += (logits.argmax(1) == target).sum()
    return float(loss) / len(y), float(correct) / len(y)
