"""Performance and cost model for data-parallel training: pure arithmetic, no framework.

One iteration of synchronous data parallelism on N learners takes

    t_iter(N) = t_compute(b) + t_allreduce(N, M)

with ``b`` the per-learner batch and ``M`` the gradient bytes (archcalc's trainable parameters
x 4 bytes for float32). Compute is affine in the per-learner batch, t_compute(b) = t0 + b x s,
fitted to the measured single-learner steps (two batch sizes give both terms, one gives s
alone; --model-only derives s from FLOPs). Learners that share one physical device (logical
devices, or local worker processes on one CPU) share its arithmetic, while their fixed
per-step latency (op dispatch, synchronisation) overlaps: t_compute = t0 + shared x b x s.
Communication is not overlapped with compute (an upper bound on time). All-reduce costs use
the alpha-beta model, latency ``a`` per message and bandwidth ``B`` bytes/s on the slowest
link the collective crosses:

    ring                  2 (N-1)/N x M/B + 2 (N-1) x a      (reduce-scatter + all-gather)
    reduction-to-one      2 (N-1) x (M/B + a)                (N-1 copies in, N-1 out, one link)
    hierarchical-copy     2 ceil(log2 N) x (M/B + a)         (binary-tree reduce + broadcast)
    nccl                  as ring (NCCL's ring algorithm for large messages)

With more learners than ``learners_per_node`` the ring crosses the network, so the network
link is the bottleneck; within a node the interconnect is. Cost = time x learners x price per
learner-hour.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

BYTES_PER_PARAM = 4  # float32 gradients
METHODS = ("ring", "nccl", "reduction-to-one-device", "hierarchical-copy")


@dataclass(frozen=True)
class Link:
    """A link's nominal bandwidth (bytes/s, one direction) and per-message latency (s)."""

    name: str
    bandwidth: float
    latency: float
    note: str = ""


# Nominal figures (not measured here); latency is a typical small-message one-way time.
LINKS: dict[str, Link] = {
    "host": Link("host", 10e9, 1e-6, "memory copies between logical devices of one process"),
    "pcie": Link("pcie", 12e9, 5e-6, "PCIe 3.0 x16: 15.75 GB/s raw, ~12 GB/s achieved"),
    "nvlink": Link("nvlink", 50e9, 3e-6, "NVLink 2.0, two 25 GB/s links per GPU pair"),
    "10gbe": Link("10gbe", 1.25e9, 50e-6, "10 Gb Ethernet line rate, TCP latency"),
    "25gbe": Link("25gbe", 3.125e9, 30e-6, "25 Gb Ethernet line rate"),
    "100gbe": Link("100gbe", 12.5e9, 10e-6, "100 Gb Ethernet line rate"),
}


def gradient_bytes(params: int, bytes_per_param: int = BYTES_PER_PARAM) -> int:
    """Bytes all-reduced per iteration: one gradient per trainable parameter."""
    return params * bytes_per_param


def allreduce_seconds(method: str, n: int, nbytes: float, link: Link) -> float:
    """Time of one all-reduce of ``nbytes`` over ``n`` learners (0 for one learner)."""
    if n < 1:
        raise ValueError(f"learners must be at least 1, got {n}")
    if n == 1:
        return 0.0
    transfer = nbytes / link.bandwidth
    if method in ("ring", "nccl"):
        return 2 * (n - 1) / n * transfer + 2 * (n - 1) * link.latency
    if method == "reduction-to-one-device":
        return 2 * (n - 1) * (transfer + link.latency)
    if method == "hierarchical-copy":
        return 2 * math.ceil(math.log2(n)) * (transfer + link.latency)
    raise ValueError(f"unknown all-reduce {method!r} (known: {', '.join(METHODS)})")


@dataclass(frozen=True)
class System:
    """Where learners sit: links inside a node and between nodes, and the price."""

    interconnect: Link
    network: Link
    learners_per_node: int
    hour_usd: float

    def link_for(self, n: int) -> Link:
        return self.interconnect if n <= self.learners_per_node else self.network


@dataclass(frozen=True)
class Prediction:
    """The model's numbers for one job."""

    learners: int
    per_learner_batch: float
    iteration_s: float
    compute_s: float
    allreduce_s: float
    images_per_s: float
    train_s: float
    cost_usd: float


def iterations(samples: int, global_batch: float, epochs: int) -> int:
    """Iterations to run ``epochs`` passes with a dropped last partial batch."""
    return epochs * max(1, int(samples // global_batch))


def cost_usd(seconds: float, learners: int, hour_usd: float) -> float:
    """Training cost: time x learners x price per learner-hour."""
    return seconds / 3600 * learners * hour_usd


@dataclass(frozen=True)
class Compute:
    """One learner's step time for a per-learner batch ``b``: ``fixed_s + b x per_image_s``."""

    fixed_s: float
    per_image_s: float

    def seconds(self, batch: float) -> float:
        return self.fixed_s + batch * self.per_image_s


def fit_compute(points: list[tuple[float, float]]) -> Compute:
    """Least-squares line through (per-learner batch, step seconds) of one-learner jobs;
    with a single batch size, the line through the origin (no fixed part can be told)."""
    if not points:
        raise ValueError("no one-learner measurement to fit the compute model to")
    xs = [b for b, _ in points]
    mean_x, mean_t = sum(xs) / len(xs), sum(t for _, t in points) / len(points)
    spread = sum((b - mean_x) ** 2 for b in xs)
    if spread == 0:
        return Compute(0.0, mean_t / mean_x)
    slope = sum((b - mean_x) * (t - mean_t) for b, t in points) / spread
    fixed = mean_t - slope * mean_x
    if fixed < 0 or slope <= 0:  # noise gave an unphysical line: proportional instead
        return Compute(0.0, sum(t for _, t in points) / sum(xs))
    return Compute(fixed, slope)


def predict(n: int, per_learner_batch: float, step_s_per_image: float, nbytes: float,
            system: System, samples: int, epochs: int, method: str = "ring", *,
            fixed_s: float = 0.0, shared: int = 1) -> Prediction:
    """Predicted iteration time, throughput, training time and cost on ``n`` learners;
    ``shared`` learners share each physical device's arithmetic."""
    compute = fixed_s + shared * step_s_per_image * per_learner_batch
    comm = allreduce_seconds(method, n, nbytes, system.link_for(n))
    t_iter = compute + comm
    global_batch = per_learner_batch * n
    train = iterations(samples, global_batch, epochs) * t_iter
    return Prediction(n, per_learner_batch, t_iter, compute, comm, global_batch / t_iter, train,
                      cost_usd(train, n, system.hour_usd))


def strong_batch(batch: int, n: int) -> float:
    """Per-learner batch under strong scaling: the effective batch shared by ``n``."""
    return batch / n


def weak_efficiency(t_iter_1: float, t_iter_n: float) -> float:
    """Weak-scaling efficiency E(N) = t_iter(1) / t_iter(N) (1: perfect)."""
    return t_iter_1 / t_iter_n


def flops_step_s_per_image(forward_flops: int, device_tflops: float, utilization: float) -> float:
    """Seconds per training image from FLOPs: forward + backward = 3 x forward."""
    return 3 * forward_flops / (device_tflops * 1e12 * utilization)


def relative_gap(measured: float, predicted: float) -> float:
    """(measured - predicted) / predicted: how far the model is off, signed."""
    return (measured - predicted) / predicted
