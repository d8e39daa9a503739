"""Devices and the hardware record, seeds, threads and step timing: what every plugin needs
and none should rewrite.

torch (and numpy) are imported inside the functions, so importing this module costs nothing
and ``hw3 list`` stays free of frameworks.
"""

from __future__ import annotations

import os
import platform
import random
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from types import TracebackType
from typing import Any

from trainers.errors import ConfigError

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")
# cuBLAS needs a fixed workspace to be deterministic (CUDA >= 10.2); see torch's reproducibility
# notes. Set before the first cuBLAS call, so seed_everything runs before any model is built.
CUBLAS_WORKSPACE = ":4096:8"

Clock = Callable[[], float]


# -- devices ----------------------------------------------------------------------------
def available_devices() -> tuple[str, ...]:
    """Device kinds usable in this process, best first (cuda, mps, cpu)."""
    import torch

    found = []
    if torch.cuda.is_available():
        found.append("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        found.append("mps")
    return (*found, "cpu")


def select_device(requested: str = "auto") -> str:
    """The torch device string for ``--device``: ``auto`` takes the best present one.

    ``cuda:N`` picks a GPU by index. Asking for an absent device is a user mistake, so it is
    a one-line ConfigError rather than a failure deep inside the first ``.to(device)``.
    """
    kind, _, index = requested.strip().lower().partition(":")
    if kind not in DEVICE_CHOICES or (index and (kind != "cuda" or not index.isdigit())):
        raise ConfigError(f"unknown device {requested!r}; choose one of "
                          f"{', '.join(DEVICE_CHOICES)} (or cuda:N)")
    present = available_devices()
    if kind == "auto":
        return present[0]
    if kind not in present:
        raise ConfigError(f"device {kind!r} is not available here (available: "
                          f"{', '.join(present)}); use --device auto or cpu")
    if index:
        _check_cuda_index(int(index))
        return f"cuda:{index}"
    return kind


def _check_cuda_index(index: int) -> None:
    import torch

    count = torch.cuda.device_count()
    if index >= count:
        raise ConfigError(f"device cuda:{index} does not exist; this machine has {count} "
                          f"GPU(s): cuda:0..cuda:{count - 1}")


# -- hardware --------------------------------------------------------------------------
@dataclass(frozen=True)
class Hardware:
    """Where a run trained, as every plugin records it: ``results["hardware"]`` holds
    :meth:`record`, whose ``description`` is the phrase reports and exports print."""

    description: str
    devices: tuple[str, ...]
    device_kind: str  # "GPU" or "CPU"
    physical_devices: int = 1
    logical: bool = False  # True: the devices are logical slices of physical_devices
    hosts: int = 1
    cores: int | None = None

    def record(self) -> dict[str, Any]:
        """Plain JSON data for results.json."""
        return {**asdict(self), "devices": list(self.devices)}


def hardware(device: str, workers: int = 1) -> Hardware:
    """The torch device a run trains on, in words (``workers`` processes sharing it)."""
    import torch

    cores = cpu_count()
    version = f"(torch {torch.__version__})"
    if device.startswith("cuda"):
        share = f", {workers} worker processes sharing it" if workers > 1 else ""
        return Hardware(f"{torch.cuda.get_device_name(device)}{share} {version}", (device,),
                        "GPU", cores=cores)
    threads = f"{workers} worker processes, 1 torch thread each" if workers > 1 else \
        f"{torch.get_num_threads()} threads"
    return Hardware(f"CPU {cpu_name()} ({cores} cores), {threads} {version}", (device,), "CPU",
                    cores=cores)


def hardware_text(recorded: Any) -> str:
    """A stored hardware record as one phrase (runs stored before :class:`Hardware` hold the
    phrase itself); empty when the run recorded none."""
    if isinstance(recorded, dict):
        return str(recorded.get("description") or ", ".join(f"{k} {v}" for k, v in
                                                                recorded.items()))
    return str(recorded or "")


def cpu_count() -> int:
    """CPU cores this process may use."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo (Linux), else what platform knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "CPU"


# -- torchrun ----------------------------------------------------------------------------
def distributed_rank(environ: Mapping[str, str] | None = None) -> tuple[int, int]:
    """This process's ``(rank, world size)`` under torchrun; ``(0, 1)`` outside one.

    torchrun starts every rank with the same command line and tells them apart only by
    ``RANK`` and ``WORLD_SIZE``. The host reads them to let rank 0 alone write the run
    directory; plugins read them (through here) to join the process group and shard their
    batches, so both agree on who is who. A missing ``WORLD_SIZE``, or one of 1 or less, is
    a single process whatever ``RANK`` says (a stray ``RANK`` must not silence a plain run).
    """
    env = os.environ if environ is None else environ
    size_text, rank_text = env.get("WORLD_SIZE", "").strip(), env.get("RANK", "0").strip()
    try:
        size = int(size_text) if size_text else 1
        rank = int(rank_text or "0")
    except ValueError:
        raise ConfigError(f"torchrun variables RANK={rank_text!r} WORLD_SIZE={size_text!r} "
                          "are not integers") from None
    if size <= 1:
        return 0, 1
    if not 0 <= rank < size:
        raise ConfigError(f"RANK={rank} is outside WORLD_SIZE={size} (ranks 0..{size - 1})")
    return rank, size


# -- seeds and threads --------------------------------------------------------------------
def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed python, numpy and torch (every GPU); ``deterministic`` trades speed for
    bit-identical reruns on the same hardware.

    The switch is applied both ways, so a non-deterministic run after a deterministic one in
    the same process (tests, sweeps) does not inherit the slow, strict mode.
    """
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device
    set_deterministic(deterministic)


def set_deterministic(enabled: bool) -> None:
    """torch's deterministic algorithms, cuDNN's flags and the cuBLAS workspace together."""
    import torch

    if enabled:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
    torch.use_deterministic_algorithms(enabled)
    torch.backends.cudnn.deterministic = enabled
    if enabled:
        torch.backends.cudnn.benchmark = False  # autotuning picks kernels run by run


def set_threads(n: int | None) -> int:
    """Limit torch's intra-op CPU threads (None leaves the default); returns the count used.

    Shared machines and parallel test runs slow down badly when every process takes all cores.
    """
    import torch

    if n is not None:
        if n < 1:
            raise ConfigError(f"thread count must be at least 1, got {n}")
        torch.set_num_threads(n)
    return torch.get_num_threads()


# -- memory -------------------------------------------------------------------------------
def keep_freed_memory() -> bool:
    """Stop glibc from returning freed blocks to the OS after every step (Linux only).

    A training step frees tens of MB of gradients, activations and augmented batches; glibc
    returns them and the next step faults them back in, zeroed by the kernel (on the
    optimizers MLP ~2,500 page faults and 10-15% of a CPU step; on cutout's batch
    augmentation ~40% of the augmentation time).
    Fixed mmap and trim thresholds keep them in the heap, as jemalloc or tcmalloc would (the
    fix PyTorch's CPU performance guide gives). Process-wide; returns whether it applied.
    """
    import ctypes

    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # musl or another libc: leave it alone
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # glibc's malloc.h
    return bool(libc.mallopt(m_mmap_threshold, 32 << 20)) and \
        bool(libc.mallopt(m_trim_threshold, 512 << 20))


# -- timing -------------------------------------------------------------------------------
def compile_seconds() -> float:
    """Seconds torch.compile has spent compiling in this process so far, so that training
    time can leave out the one-off kernel building (0.0 when torch's dynamo has no such
    record: the metric is dynamo's own, ``compilation_time_metrics``)."""
    import torch._dynamo.utils as dynamo_utils

    metrics = getattr(dynamo_utils, "compilation_time_metrics", {})
    return float(sum(metrics.get("_compile.compile_inner", ())))


def synchronize(device: str) -> None:
    """Wait for queued GPU work, so a clock read measures finished work, not launches."""
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize(device)
    elif device.startswith("mps"):
        import torch

        torch.mps.synchronize()


class Timer:
    """Wall time of a ``with`` block, synchronised with the device at both ends."""

    def __init__(self, device: str = "cpu", clock: Clock = time.perf_counter) -> None:
        self.device, self.clock = device, clock
        self.seconds = 0.0
        self._start: float | None = None

    def __enter__(self) -> Timer:
        synchronize(self.device)
        self._start = self.clock()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        synchronize(self.device)
        if self._start is None:
            raise RuntimeError("Timer exited without entering")
        self.seconds = self.clock() - self._start


@dataclass(frozen=True)
class Throughput:
    """Timing of a loop: warm-up steps (compilation, cuDNN autotune, caches) kept apart."""

    warmup_steps: int
    warmup_seconds: float
    steps: int
    samples: int
    seconds: float

    @property
    def samples_per_s(self) -> float | None:
        """Samples per second over the measured steps; None when none were measured."""
        return self.samples / self.seconds if self.steps and self.seconds > 0 else None

    @property
    def seconds_per_step(self) -> float | None:
        return self.seconds / self.steps if self.steps else None


@dataclass
class StepTimer:
    """Throughput of a training loop with the first ``warmup`` steps excluded.

    Call :meth:`step` after each step. The device is synchronised only where the measured
    window opens and closes, not per step, so timing does not stall the GPU pipeline::

        with StepTimer(warmup=2, device=device) as timer:
            for x, y in batches:
                train_step(x, y)
                timer.step(len(x))
        timer.result.samples_per_s
    """

    warmup: int = 1
    device: str = "cpu"
    clock: Clock = time.perf_counter
    _steps: int = field(default=0, init=False)
    _samples: int = field(default=0, init=False)
    _t0: float | None = field(default=None, init=False)
    _mark: float | None = field(default=None, init=False)
    _result: Throughput | None = field(default=None, init=False)

    def start(self) -> None:
        synchronize(self.device)
        self._t0 = self.clock()
        self._steps, self._samples, self._result = 0, 0, None
        self._mark = self._t0 if self.warmup == 0 else None

    def step(self, samples: int) -> None:
        if self._t0 is None:
            raise RuntimeError("StepTimer.step() before start() (or use it as a context)")
        self._steps += 1
        if self._steps > self.warmup:
            self._samples += samples
        elif self._steps == self.warmup:
            synchronize(self.device)
            self._mark = self.clock()

    def stop(self) -> Throughput:
        if self._t0 is None:
            raise RuntimeError("StepTimer.stop() before start()")
        synchronize(self.device)
        end = self.clock()
        mark = end if self._mark is None else self._mark
        self._result = Throughput(
            warmup_steps=min(self._steps, self.warmup), warmup_seconds=mark - self._t0,
            steps=max(self._steps - self.warmup, 0), samples=self._samples,
            seconds=end - mark)
        return self._result

    @property
    def result(self) -> Throughput:
        if self._result is None:
            raise RuntimeError("StepTimer has not been stopped yet")
        return self._result

    def __enter__(self) -> StepTimer:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
