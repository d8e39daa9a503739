"""Devices, seeding, the deterministic switch, threads and the warm-up-aware step timer."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from collections.abc import Iterator

import numpy as np
import pytest
import torch

from trainers import runtime
from trainers.errors import ConfigError
from trainers.runtime import StepTimer, Timer, select_device


class FakeClock:
    """A clock that moves only when told, so timing tests neither sleep nor flake."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def restore_torch_flags(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Seeding tests flip process-wide switches; put them back for the other tests."""
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    saved = (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.deterministic,
             torch.backends.cudnn.benchmark, torch.get_num_threads())
    yield
    torch.use_deterministic_algorithms(saved[0])
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = saved[1], saved[2]
    torch.set_num_threads(saved[3])


# -- devices ------------------------------------------------------------------------------
@pytest.mark.parametrize(("present", "expected"), [
    (("cuda", "mps", "cpu"), "cuda"), (("mps", "cpu"), "mps"), (("cpu",), "cpu")])
def test_auto_prefers_cuda_then_mps_then_cpu(monkeypatch: pytest.MonkeyPatch,
                                             present: tuple[str, ...], expected: str) -> None:
    monkeypatch.setattr(runtime, "available_devices", lambda: present)
    assert select_device("auto") == expected


@pytest.mark.parametrize("absent", ["cuda", "mps"])
def test_absent_device_is_a_one_line_config_error(monkeypatch: pytest.MonkeyPatch,
                                                  absent: str) -> None:
    monkeypatch.setattr(runtime, "available_devices", lambda: ("cpu",))
    with pytest.raises(ConfigError) as info:
        select_device(absent)
    message = str(info.value)
    assert "\n" not in message
    assert f"'{absent}' is not available" in message and "available: cpu" in message


@pytest.mark.parametrize("bad", ["tpu", "cpu:0", "cuda:x", ""])
def test_unknown_device_names_the_choices(bad: str) -> None:
    with pytest.raises(ConfigError, match="auto, cpu, cuda, mps"):
        select_device(bad)


def test_cuda_index_beyond_the_gpus_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime, "available_devices", lambda: ("cuda", "cpu"))
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert select_device("CUDA:1") == "cuda:1"
    with pytest.raises(ConfigError, match=r"cuda:2 does not exist; this machine has 2"):
        select_device("cuda:2")


def test_real_devices_agree_with_torch() -> None:
    present = runtime.available_devices()
    assert present[-1] == "cpu"
    assert ("cuda" in present) == torch.cuda.is_available()
    assert select_device("cpu") == "cpu"
    assert select_device("auto") == present[0]
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError):
            select_device("cuda")


# -- seeds, determinism, threads ------------------------------------------------------------
def _draw() -> tuple[float, list[float], list[float]]:
    return random.random(), np.random.rand(3).tolist(), torch.rand(3).tolist()


@pytest.mark.usefixtures("restore_torch_flags")
def test_seeding_reproduces_python_numpy_and_torch_draws() -> None:
    runtime.seed_everything(1234)
    first = _draw()
    runtime.seed_everything(1234)
    assert _draw() == first
    runtime.seed_everything(1235)
    other = _draw()
    assert all(a != b for a, b in zip(other, first, strict=True))


@pytest.mark.usefixtures("restore_torch_flags")
def test_seeding_reproduces_model_initialisation() -> None:
    runtime.seed_everything(7)
    a = torch.nn.Linear(8, 4).weight.detach().clone()
    runtime.seed_everything(7)
    assert torch.equal(torch.nn.Linear(8, 4).weight, a)


@pytest.mark.usefixtures("restore_torch_flags")
def test_deterministic_switch_sets_every_flag_and_switches_back() -> None:
    runtime.seed_everything(0, deterministic=True)
    assert torch.are_deterministic_algorithms_enabled()
    assert torch.backends.cudnn.deterministic is True
    assert torch.backends.cudnn.benchmark is False
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == runtime.CUBLAS_WORKSPACE
    runtime.seed_everything(0, deterministic=False)
    assert not torch.are_deterministic_algorithms_enabled()
    assert torch.backends.cudnn.deterministic is False


@pytest.mark.usefixtures("restore_torch_flags")
def test_deterministic_keeps_a_user_cublas_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", ":16:8")
    runtime.seed_everything(0, deterministic=True)
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":16:8"


@pytest.mark.usefixtures("restore_torch_flags")
def test_set_threads() -> None:
    assert runtime.set_threads(1) == 1 == torch.get_num_threads()
    assert runtime.set_threads(None) == 1
    with pytest.raises(ConfigError, match="at least 1"):
        runtime.set_threads(0)


# -- timing ---------------------------------------------------------------------------------
def test_step_timer_excludes_warmup_steps() -> None:
    clock = FakeClock()
    with StepTimer(warmup=2, clock=clock) as timer:
        for seconds in (5.0, 3.0, 0.5, 0.5, 0.5, 0.5):  # two slow warm-up steps, four fast
            clock.advance(seconds)
            timer.step(64)
    result = timer.result
    assert (result.warmup_steps, result.warmup_seconds) == (2, 8.0)
    assert (result.steps, result.samples, result.seconds) == (4, 256, 2.0)
    assert result.samples_per_s == 128.0
    assert result.seconds_per_step == 0.5


def test_step_timer_without_warmup_measures_everything() -> None:
    clock = FakeClock()
    timer = StepTimer(warmup=0, clock=clock)
    timer.start()
    for _ in range(3):
        clock.advance(2.0)
        timer.step(10)
    result = timer.stop()
    assert (result.warmup_steps, result.steps, result.samples) == (0, 3, 30)
    assert result.samples_per_s == 5.0


def test_step_timer_with_only_warmup_reports_no_throughput() -> None:
    clock = FakeClock()
    with StepTimer(warmup=3, clock=clock) as timer:
        clock.advance(1.0)
        timer.step(8)
    assert (timer.result.warmup_steps, timer.result.steps) == (1, 0)
    assert timer.result.samples_per_s is None and timer.result.seconds_per_step is None


def test_step_timer_misuse_is_loud() -> None:
    timer = StepTimer()
    with pytest.raises(RuntimeError, match="before start"):
        timer.step(1)
    with pytest.raises(RuntimeError, match="not been stopped"):
        _ = timer.result


def test_timer_synchronises_the_device_at_both_ends(monkeypatch: pytest.MonkeyPatch) -> None:
    clock, calls = FakeClock(), []
    monkeypatch.setattr(runtime, "synchronize", lambda device: calls.append((device, clock())))
    with Timer(device="cuda", clock=clock) as timer:
        clock.advance(1.5)
    assert timer.seconds == 1.5
    assert calls == [("cuda", 100.0), ("cuda", 101.5)]


def test_step_timer_synchronises_only_at_window_edges(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(runtime, "synchronize", calls.append)
    with StepTimer(warmup=1, device="cuda:0", clock=FakeClock()) as timer:
        for _ in range(5):
            timer.step(1)
    assert calls == ["cuda:0"] * 3  # start, end of warm-up, stop: not once per step


def test_synchronize_on_cpu_needs_no_torch() -> None:
    code = ("import sys; from trainers.runtime import synchronize, StepTimer; "
            "synchronize('cpu'); t = StepTimer(warmup=0); t.start(); t.step(1); t.stop(); "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc tuning")
def test_keep_freed_memory_sets_glibc_thresholds_in_its_own_process() -> None:
    probe = ("import ctypes, sys\n"
             "from trainers.runtime import keep_freed_memory\n"
             "try:\n"
             "    ctypes.CDLL('libc.so.6').mallopt\n"
             "except (OSError, AttributeError):\n"
             "    sys.exit(3)\n"
             "print(keep_freed_memory(), keep_freed_memory())\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          check=False)
    if done.returncode == 3:
        pytest.skip("not glibc")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "True"]  # applied, and safe to apply again


def test_compile_seconds_grow_only_while_torch_compile_builds() -> None:
    from trainers.plugins.optimizers.train import can_compile

    if not can_compile("cpu"):
        pytest.skip("torch.compile needs a C++ compiler")
    torch._dynamo.reset()
    double = torch.compile(lambda t: t * 2 + 1)
    before = runtime.compile_seconds()
    double(torch.ones(3))
    built = runtime.compile_seconds()
    double(torch.ones(3))
    assert built > before and runtime.compile_seconds() == built
