"""What a run will cost before it starts: ``hw3 run NAME --plan`` and the first line of every
run.

A plugin's ``plan(config, device, data_dir)`` counts its protocol (trainings, epochs, images
and, from archcalc's per-image forward FLOPs, the FLOPs) and times a few real training steps
of the real model on this machine (:class:`Calibration`). The projection here is the work in
the calibration's unit times the measured seconds per unit; the GPU line is the FLOPs at a
stated fraction of a stated peak, an order of magnitude and no more. Torch-free.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

# Training costs about three forward passes per image: the forward, and a backward that
# computes two products (input and weight gradients) per forward one.
TRAIN_FLOPS_PER_FORWARD = 3
# NVIDIA A100 Tensor Core GPU datasheet (2020): 19.5 TFLOP/s FP32 (not TF32 or tensor cores).
A100_FP32_FLOPS = 19.5e12
GPU_UTILIZATION = 0.4  # a typical fraction of peak for a well-fed CNN training; our choice
GPU_PHRASE = "one A100 at 40% of its 19.5 TFLOP/s FP32 peak (NVIDIA A100 datasheet)"


@dataclass(frozen=True)
class Calibration:
    """A short measurement of real training on this machine: ``units`` of work (images or
    steps) took ``seconds`` after ``warmup`` untimed steps; ``what`` says what ran."""

    what: str
    unit: str
    units: float
    seconds: float
    warmup: int
    hardware: str

    @property
    def seconds_per_unit(self) -> float:
        return self.seconds / self.units


@dataclass(frozen=True)
class Plan:
    """The size of one run's protocol and its projected wall time.

    ``work`` is the whole run in the calibration's unit (evaluation included, as the plugin
    weighs it); ``flops`` counts training at :data:`TRAIN_FLOPS_PER_FORWARD` forwards per
    image plus one forward per evaluated image.
    """

    plugin: str
    trainings: int
    epochs: int  # summed over trainings
    train_images: int  # images through forward and backward, augmented copies included
    eval_images: int  # images through a forward pass only
    flops: float
    work: float
    calibration: Calibration
    workers: int = 1  # trainings that run at once (depth-width's worker processes)
    notes: tuple[str, ...] = field(default=())
    warnings: tuple[str, ...] = field(default=())  # settings whose results would mislead
    samples: str = "images"  # what one training sample is called (depth-width: points)

    @property
    def seconds_here(self) -> float:
        return self.work * self.calibration.seconds_per_unit / self.workers

    @property
    def seconds_on_gpu(self) -> float:
        return self.flops / (A100_FP32_FLOPS * GPU_UTILIZATION)

    def line(self) -> str:
        """The one line every run starts with."""
        return (f"plan: {self.trainings} trainings, {self.epochs:,} epochs, "
                f"{human_count(self.train_images).rstrip()} {self.samples}, "
                f"{human_count(self.flops)}FLOP; {about(self.seconds_here)} here, "
                f"{about(self.seconds_on_gpu)} on an A100 at 40%")

    def lines(self) -> list[str]:
        """``hw3 run NAME --plan``: the protocol, the calibration and both projections."""
        cal = self.calibration
        rate = f"{cal.units / cal.seconds:,.1f} {cal.unit}s/s" if cal.seconds > 0 else "-"
        out = [f"{self.plugin}: the protocol this run would follow",
               f"  trainings        {self.trainings:,}",
               f"  epochs           {self.epochs:,} in all",
               f"  training {self.samples:<8}{self.train_images:,} (forward and backward)",
               f"  evaluated        {self.eval_images:,} {self.samples} (forward only)",
               f"  FLOPs            {human_count(self.flops)}FLOP (archcalc's forward FLOPs "
               f"x {TRAIN_FLOPS_PER_FORWARD} per training sample, x 1 per evaluated one)",
               f"calibration: {cal.what}: {cal.units:g} {cal.unit}s in {cal.seconds:.2f} s "
               f"({rate}) after {cal.warmup} warm-up step(s), on {cal.hardware}",
               f"projection: these settings {about(self.seconds_here)} on this machine"
               + (f" ({self.workers} trainings at once)" if self.workers > 1 else ""),
               f"            {about(self.seconds_on_gpu)} on {GPU_PHRASE}"]
        out += [f"note: {n}" for n in self.notes]
        out += [f"WARNING: {w}" for w in self.warnings]
        return [part for line in out for part in _wrap(line)]

    def record(self) -> dict[str, Any]:
        """Plain JSON data: ``--plan --format json`` and ``results["plan"]``."""
        return {**{k: v for k, v in asdict(self).items() if k != "calibration"},
                "notes": list(self.notes), "warnings": list(self.warnings),
                "calibration": asdict(self.calibration),
                "projected_s": self.seconds_here, "projected_gpu_s": self.seconds_on_gpu,
                "gpu": GPU_PHRASE}


def _wrap(line: str, width: int = 80) -> list[str]:
    """One line in lines of ``width``, continued under its label (nothing cut)."""
    import textwrap

    indent = " " * min(len(line) - len(line.lstrip(" ")) + 4, 20)
    return textwrap.wrap(line, width, subsequent_indent=indent, break_long_words=False,
                         break_on_hyphens=False) or [""]


def human_count(n: float) -> str:
    """1.2 T, 340 G, 5.1 M: three significant digits and an SI prefix (a trailing space)."""
    for scale, prefix in ((1e18, "E"), (1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"),
                          (1e3, "k")):
        if abs(n) >= scale:
            return f"{n / scale:.3g} {prefix}"
    return f"{n:.3g} "


def about(seconds: float) -> str:
    """A projected duration: "≈ 3.1 h", or "under 1 s"."""
    return "under 1 s" if seconds < 1 else f"≈ {duration(seconds)}"


def duration(seconds: float) -> str:
    """A duration as a person says it: 40 s, 12 min, 3.1 h, 2.5 days."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def time_steps(step: Callable[[], int], device: str, *, steps: int = 3, warmup: int = 1,
               repeat: int = 2) -> tuple[int, float]:
    """Run ``step`` (which returns the images it trained on) ``warmup`` times untimed, then
    ``repeat`` timed windows of ``steps``; the images and seconds of the fastest window.
    The first calls in a process pay one-off set-up (thread pools, kernel selection) that
    can dwarf a small step, and a shared machine's other work only ever adds time: the
    fastest window is the closest to the step's own cost (as ``timeit`` takes the min)."""
    from trainers.runtime import StepTimer

    for _ in range(warmup):
        step()
    best: tuple[int, float] | None = None
    for _ in range(repeat):
        with StepTimer(warmup=0, device=device) as timer:
            for _ in range(steps):
                timer.step(step())
        found = (timer.result.samples, timer.result.seconds)
        if best is None or found[1] / found[0] < best[1] / best[0]:
            best = found
    assert best is not None
    return best
