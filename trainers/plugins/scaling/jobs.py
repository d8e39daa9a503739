"""The plan: every training job of Problem 2 as plain data (no framework)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from trainers.plugins.scaling.config import Config


@dataclass(frozen=True)
class Job:
    """One training: ``learners`` replicas over ``nodes`` worker processes.

    ``strategy`` is mirrored (one process) or multi-worker; ``comm`` is the cross-device op
    (default, nccl, hierarchical-copy, reduction-to-one-device) or the collective
    implementation (auto, ring, nccl).
    """

    part: str
    learners: int
    per_learner_batch: int
    strategy: str
    comm: str
    nodes: int = 1

    @property
    def global_batch(self) -> int:
        return self.per_learner_batch * self.learners

    @property
    def key(self) -> str:
        return f"{self.part}-n{self.learners}-{self.comm}"

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "global_batch": self.global_batch, "key": self.key}


def placed(part: str, n: int, batch: int, per_node: int, comm: str) -> Job:
    """A job on one node (MirroredStrategy) or several (multi-worker, AUTO)."""
    nodes = math.ceil(n / per_node)
    if nodes == 1:
        return Job(part, n, batch, "mirrored", comm)
    if n % nodes:
        raise ValueError(f"{n} learners do not split evenly over {nodes} nodes")
    return Job(part, n, batch, "multi-worker", "auto", nodes)


def strong_jobs(config: Config) -> list[Job]:
    """Effective batch fixed; per-learner batch = batch / N (must divide)."""
    jobs = []
    for n in config.learners:
        if config.batch_size % n:
            raise ValueError(f"batch_size {config.batch_size} does not split over {n} learners")
        jobs.append(placed("strong", n, config.batch_size // n, config.learners_per_node,
                           "default"))
    return jobs


def weak_jobs(config: Config) -> list[Job]:
    """Per-learner batch fixed; effective batch grows with N."""
    return [placed("weak", n, config.weak_batch_per_learner, config.learners_per_node, "default")
            for n in config.learners]


def all_reduce_jobs(config: Config) -> list[Job]:
    """Strong-scaling batches on one node with each cross-device op."""
    return [Job("all-reduce", n, config.batch_size // n, "mirrored", op)
            for op in config.all_reduce for n in config.all_reduce_learners
            if n <= config.learners_per_node]


def collective_jobs(config: Config) -> list[Job]:
    """One learner per worker process, ``collective_nodes`` workers, each implementation."""
    n = config.collective_nodes
    return [Job("multi-worker", n, config.batch_size // n, "multi-worker", c, n)
            for c in config.collectives]


def plan(config: Config) -> list[Job]:
    """Every job of the selected parts, in the order they run."""
    makers = {"strong": strong_jobs, "weak": weak_jobs, "all-reduce": all_reduce_jobs,
              "multi-worker": collective_jobs}
    return [job for part in config.parts for job in makers[part](config)]
