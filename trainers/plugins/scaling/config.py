"""Problem 2's settings: the scaling jobs, the learners and the performance model.

Every value is written here once, with its source beside it (``cite``); torch-free, so
``hw3 list`` stays light.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from trainers.api import setting
from trainers.config import check_names

ALL_REDUCE = ("nccl", "hierarchical-copy", "reduction-to-one-device")
COLLECTIVES = ("auto", "nccl", "ring")
PARTS = ("strong", "weak", "all-reduce", "multi-worker")


@dataclass(frozen=True)
class Config:
    """Problem 2's protocol: each default is the value a run uses, its source beside it
    (``cite``); plugins.toml only enables the plugin or overrides a value."""

    model: Literal["resnet50", "tiny"] = setting(
        "resnet50", "resnet50: Keras ResNet50 (the protocol); tiny: a small CNN for quick runs.",
        cite="the homework: keras.applications.ResNet50 (archcalc resnet50-keras)")
    image_size: int = setting(32, "Side the 28x28 images are zero-padded to (>= 32 for ResNet).",
        ge=1, cite="28x28x1 zero-padded to 32x32x1, ResNet-50's smallest input")
    batch_size: int = setting(256, "Strong scaling: effective batch, shared by the learners.",
        ge=1, cite="the homework: strong scaling at effective batch 256 (256/N per learner)")
    weak_batch_per_learner: int = setting(64, "Weak scaling: batch per learner.",
        ge=1, cite="the homework: weak scaling at 64 per learner (effective 64N)")
    learners: tuple[int, ...] = setting((1, 2, 4, 8, 16), "Learner counts (strong, weak).",
        ge=1, cite="the homework: N in {1, 2, 4, 8, 16}")
    learners_per_node: int = setting(8, "Learners per node; more use several worker processes.",
        ge=1, cite="the homework's GCP setup: 8 K80s on one node; 16 learners = 2 workers")
    epochs: int = setting(10, "Epochs per job.",
        ge=1, cite="the homework")
    steps: int = setting(0, "Iterations per epoch (0: the whole training set).",
        ge=0, cite="not part of the protocol (0: whole epochs; set for short runs)")
    warmup_steps: int = setting(3, "Iterations left out of the throughput (tracing, caches).",
        ge=0, cite="our choice (not in the seed)")
    train_samples: int = setting(0, "Training images used (0: all).",
        ge=0, cite="not part of the protocol (0: all)")
    lr: float = setting(0.01, "SGD learning rate, momentum 0.9 (not in the seed).",
        gt=0, cite="our choice (not in the seed): SGD, momentum 0.9")
    parts: tuple[str, ...] = setting(PARTS, "Which experiments: " + ", ".join(PARTS) + ".",
        cite="the homework's four experiments")
    gpu_hour_usd: float = setting(0.45, "Price per learner-hour (K80 on-demand, GCP).",
        ge=0, cite="GCP K80 on-demand price per GPU-hour (not in the seed)")
    all_reduce: tuple[str, ...] = setting(ALL_REDUCE, "MirroredStrategy cross-device ops.",
        cite="the homework: MirroredStrategy's three cross-device ops")
    all_reduce_learners: tuple[int, ...] = setting((1, 2, 4, 8), "Learners for all-reduce jobs.",
        ge=1, cite="the homework: 1 to 8 learners in one node")
    collectives: tuple[str, ...] = setting(COLLECTIVES, "Multi-worker implementations.",
        cite="the homework: MultiWorkerMirroredStrategy's AUTO, NCCL and RING")
    collective_nodes: int = setting(2, "Worker processes for the collective comparison.",
        ge=1, cite="the homework: two nodes")
    model_only: bool = setting(False, "Only plot the performance model's predictions.",
        cite="not part of the protocol")
    interconnect: str = setting("pcie", "Link inside a node for the model (perf.LINKS).",
        cite="performance model: K80s sit on PCIe inside a node")
    network: str = setting("10gbe", "Link between nodes for the model (perf.LINKS).",
        cite="performance model: link between nodes (our choice, not in the seed)")
    device_tflops: float = setting(4.37, "Peak FP32 TFLOP/s of one learner for --model-only "
                                   "(one K80 GK210 die, boost).",
        gt=0, cite="one K80 GK210 die, FP32 boost peak (NVIDIA's K80 datasheet)")
    utilization: float = setting(0.3, "Fraction of peak reached, for --model-only.",
        gt=0, le=1, cite="our choice (not in the seed)")
    cluster: str = setting("", "Cluster file of a real multi-host cluster (TOML, workers = "
                           "[\"host:port\", ...]); empty: local workers on free ports.",
        cite="not part of the protocol (\"\": local worker processes)")
    task: int = setting(0, "This host's index in the cluster file (0: the chief, which also "
                        "runs the single-node jobs and stores the results).",
        ge=0, cite="not part of the protocol (0: the chief)")

    def __post_init__(self) -> None:
        for name in ("image_size", "batch_size", "weak_batch_per_learner", "learners_per_node",
                     "epochs", "collective_nodes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("steps", "warmup_steps", "train_samples", "task"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        check_names("parts", self.parts, PARTS, allow_empty=True)
        check_names("all_reduce", self.all_reduce, ALL_REDUCE, allow_empty=True)
        check_names("collectives", self.collectives, COLLECTIVES, allow_empty=True)
        if not self.learners or min(self.learners + self.all_reduce_learners) < 1:
            raise ValueError("learners must be positive counts")
        if self.task and not self.cluster:
            raise ValueError("task > 0 needs a cluster file (--cluster)")
        if self.model == "resnet50" and self.image_size < 32:
            raise ValueError("ResNet-50 needs image_size >= 32")
        from trainers.plugins.scaling.perf import LINKS

        for name in ("interconnect", "network"):
            if getattr(self, name) not in LINKS:
                raise ValueError(f"{name} must be one of {', '.join(LINKS)}")


