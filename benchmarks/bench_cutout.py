"""Issue 5's speed claims for the ``cutout`` plugin, measured side by side in one run.

(1) augmentation throughput: the plugin's batched crop, flip, normalise and Cutout of M x B
    images on the device (augment.py), against a per-sample pipeline in the style of the reference
    implementations (DeVries & Taylor's and Hoffer et al.'s code: PIL pad/crop/flip, numpy
    normalisation and Cutout mask per image, a DataLoader collating B images); target >= 20x;
(2) the share of a ResNet training step (batch augmentation, forward, backward, SGD) spent
    on data and augmentation; target < 5% on CPU;
(3) images/s of the training step and the achieved FLOP rate, with archcalc's forward FLOPs
    per image times 3 (forward + backward for inputs and weights).

Each figure is the median of ``--repeats`` timings (interleaved for (1)).
Run: ``python benchmarks/bench_cutout.py`` (``--help`` for sizes and device).
"""

from __future__ import annotations

import argparse
import random
import statistics
from collections.abc import Callable

import numpy as np
import torch
from PIL import Image, ImageOps
from torch.utils.data import DataLoader, Dataset

from trainers.counts import model_counts
from trainers.plugins.cutout.augment import CIFAR10_MEAN, CIFAR10_STD, Augment, batch_augment
from trainers.plugins.cutout.train import StepPlan, build, graph, make_optimizer, train_step
from trainers.runtime import Timer, keep_freed_memory


class PerSample(Dataset[tuple[torch.Tensor, int]]):
    """The reference style, one image at a time: torchvision's RandomCrop(32, padding=4) and
    RandomHorizontalFlip on a PIL image, ToTensor and Normalize as torch ops, then DeVries &
    Taylor's Cutout (a numpy mask, expanded over the channels and multiplied in)."""

    def __init__(self, x: np.ndarray, y: np.ndarray, size: int = 16) -> None:
        self.x, self.y, self.size = x.transpose(0, 2, 3, 1), y, size
        self.mean = torch.tensor(CIFAR10_MEAN)[:, None, None]
        self.std = torch.tensor(CIFAR10_STD)[:, None, None]

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        img = ImageOps.expand(Image.fromarray(self.x[i]), border=4, fill=0)
        dx, dy = random.randint(0, 8), random.randint(0, 8)
        img = img.crop((dx, dy, dx + 32, dy + 32))
        if random.random() < 0.5:
            img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        t = torch.from_numpy(np.array(img, np.uint8)).permute(2, 0, 1).contiguous()
        t = t.float().div(255).sub_(self.mean).div_(self.std)  # ToTensor, Normalize
        cy, cx = np.random.randint(32), np.random.randint(32)
        half = self.size // 2
        mask = np.ones((32, 32), np.float32)
        mask[max(cy - half, 0):min(cy + half, 32), max(cx - half, 0):min(cx + half, 32)] = 0
        return t * torch.from_numpy(mask).expand_as(t), int(self.y[i])


def timed(fn: Callable[[], object], device: str) -> float:
    with Timer(device) as t:
        fn()
    return t.seconds


def median_time(fn: Callable[[], object], device: str, repeats: int) -> float:
    fn()  # warm-up
    return statistics.median(timed(fn, device) for _ in range(repeats))


def augmentation(x: torch.Tensor, y: torch.Tensor, batch: int, m: int, device: str,
                 repeats: int) -> tuple[float, float]:
    """Images/s of the batched path and of the per-sample DataLoader (M x B each): medians
    of interleaved repeats after three warm-up calls each (the first calls of a process pay
    for page faults and lazy initialisation), so a noisy neighbour hits both alike."""
    xd, yd = x.to(device), y.to(device)

    def batched() -> None:
        index = torch.randint(0, len(yd), (batch,), device=device)
        batch_augment(xd.index_select(0, index), yd.index_select(0, index), m, Augment())

    loader = DataLoader(PerSample(x.numpy(), y.numpy()), batch_size=batch, shuffle=True,
                        num_workers=0)

    def per_sample() -> None:
        it = iter(loader)
        for _ in range(m):
            img, lab = next(it)
            img.to(device), lab.to(device)

    contenders = (batched, per_sample)
    for fn in contenders * 3:
        fn()
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeats):
        for fn, record in zip(contenders, times, strict=True):
            record.append(timed(fn, device))
    n = batch * m
    fast, slow = (n / statistics.median(record) for record in times)
    return fast, slow


def step_share(x: torch.Tensor, y: torch.Tensor, args: argparse.Namespace) -> dict[str, float]:
    """Seconds of a training step and of its data + augmentation part alone."""
    device = args.device
    xd, yd = x.to(device), y.to(device)
    model = build(args.depth, "A", device).train()
    opt, _ = make_optimizer(model, 0.1, 0.9, 1e-4, (), 0.1)
    plan = StepPlan(args.m, Augment())

    def data() -> None:
        index = torch.randint(0, len(yd), (args.batch,), device=device)
        batch_augment(xd.index_select(0, index), yd.index_select(0, index), args.m,
                      Augment())

    def step() -> None:
        index = torch.randint(0, len(yd), (args.batch,), device=device)
        train_step(model, opt, xd.index_select(0, index), yd.index_select(0, index), plan)

    t_step = median_time(step, device, args.steps)
    t_data = median_time(data, device, args.repeats)
    return {"step_s": t_step, "data_s": t_data}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=64, help="B, images per step")
    parser.add_argument("--m", type=int, default=8, help="copies per image")
    parser.add_argument("--depth", type=int, default=44)
    parser.add_argument("--steps", type=int, default=3, help="timed training steps")
    parser.add_argument("--repeats", type=int, default=20, help="timed augmentation repeats")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (1: as the per-sample loader's one core)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.device == "cpu":
        keep_freed_memory()  # as the plugin's run does; process-wide, so the baseline too
    torch.manual_seed(0)
    x = torch.randint(0, 256, (4096, 3, 32, 32), dtype=torch.uint8)
    y = torch.randint(0, 10, (4096,))
    fast, slow = augmentation(x, y, args.batch, args.m, args.device, args.repeats)
    print(f"device {args.device}, {torch.get_num_threads()} threads, torch {torch.__version__}")
    print(f"(1) augmentation, {args.m} x {args.batch} images: batched {fast:,.0f} img/s, "
          f"per-sample DataLoader {slow:,.0f} img/s, ratio {fast / slow:.1f}x (target >= 20x)")
    share = step_share(x, y, args)
    n = args.batch * args.m
    print(f"(2) ResNet-{args.depth} step of {n} images: {share['step_s']:.3f} s, data + "
          f"augmentation {share['data_s'] * 1e3:.1f} ms = "
          f"{share['data_s'] / share['step_s']:.2%} (target < 5% on CPU)")
    flops = 3 * model_counts(graph(args.depth, "A")).flops
    rate = n / share["step_s"]
    print(f"(3) training: {rate:,.0f} img/s, {flops * rate / 1e9:,.1f} GFLOP/s achieved "
          f"({flops / 1e6:,.0f} MFLOP per image: 3 x archcalc's forward)")


if __name__ == "__main__":
    main()
