"""The run store: atomic writes, the lock, honest states, checkpoints and resume bookkeeping."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from trainers import store
from trainers.errors import RunError
from trainers.store import Lock, Run, RunStore, atomic_path, atomic_write, run_info


def child(code: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *args],
                            stdout=subprocess.PIPE, text=True)


# -- atomic writes ------------------------------------------------------------------------
def test_killed_writer_leaves_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "results.json"
    target.write_text("old")
    proc = child("""
        import os, signal, sys
        from pathlib import Path
        from trainers.store import atomic_path
        with atomic_path(Path(sys.argv[1])) as tmp:
            tmp.write_text("new, half written")
            os.kill(os.getpid(), signal.SIGKILL)
        """, str(target))
    assert proc.wait(timeout=30) == -9
    assert target.read_text() == "old"


def test_failed_write_leaves_old_file_and_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "a.txt"
    atomic_write(target, "one")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("two")
        raise RuntimeError("crash")
    assert target.read_text() == "one"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]
    atomic_write(target, b"three")
    assert target.read_text() == "three"


# -- the lock -----------------------------------------------------------------------------
def test_second_writer_is_refused_in_process(tmp_path: Path) -> None:
    first, second = Lock(tmp_path / ".lock"), Lock(tmp_path / ".lock")
    first.acquire()
    with pytest.raises(RunError, match=r"in use by process \d+"):
        second.acquire()
    first.release()
    second.acquire()
    second.release()


def test_lock_of_a_killed_process_is_stale(tmp_path: Path) -> None:
    lock_file = tmp_path / ".lock"
    proc = child("""
        import sys, time
        from pathlib import Path
        from trainers.store import Lock
        Lock(Path(sys.argv[1])).acquire()
        print("locked", flush=True)
        time.sleep(60)
        """, str(lock_file))
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    assert store.lock_holder(lock_file) == proc.pid
    with pytest.raises(RunError, match=f"in use by process {proc.pid}"):
        Lock(lock_file).acquire()
    proc.kill()
    proc.wait(timeout=30)
    assert store.lock_holder(lock_file) is None
    lock = Lock(lock_file)
    lock.acquire()
    assert lock.stale_pid == proc.pid
    lock.release()


# -- states: a half-written run is never finished -----------------------------------------
def test_states_follow_the_writer(tmp_path: Path) -> None:
    runs = RunStore(tmp_path)
    run = runs.create("p")
    with run:
        run.write_config("[p]\n")
        assert run_info(run.dir).state == "running"
        with pytest.raises(RunError, match="in use"), Run(run.dir, resumed=True):
            pass
    assert run_info(run.dir).state == "interrupted"  # left without finish()
    with Run(run.dir, resumed=True) as again:
        again.finish({"acc": 0.5})
    info = run_info(run.dir)
    assert (info.state, info.headline) == ("finished", "acc=0.5")


def test_dead_running_run_reads_as_interrupted(tmp_path: Path) -> None:
    folder = tmp_path / "p" / "r1"
    folder.mkdir(parents=True)
    (folder / "config.toml").write_text("")
    (folder / "state.json").write_text(json.dumps({"state": "running", "pid": 999999}))
    (folder / ".lock").write_text("999999 host\n")
    assert run_info(folder).state == "interrupted"


def test_finished_without_results_is_incomplete(tmp_path: Path) -> None:
    folder = tmp_path / "p" / "r1"
    folder.mkdir(parents=True)
    (folder / "state.json").write_text(json.dumps({"state": "finished"}))
    (folder / "results.json").write_text('{"acc": 0.')  # torn
    assert run_info(folder).state == "incomplete"


def test_crash_while_storing_results_is_not_finished(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    real = store.atomic_write

    def crash_on_results(path: Path, data: bytes | str) -> None:
        if path.name == "results.json":
            raise OSError("disk full")
        real(path, data)

    monkeypatch.setattr(store.runs, "atomic_write", crash_on_results)
    run = RunStore(tmp_path).create("p")
    with pytest.raises(OSError), run:
        run.finish({"acc": 1.0})
    assert run_info(run.dir).state == "failed"
    assert "disk full" in run_info(run.dir).error


def test_results_must_be_json(tmp_path: Path) -> None:
    run = RunStore(tmp_path).create("p")
    with pytest.raises(TypeError, match="not JSON-able"), run:
        run.finish({"model": object()})
    assert not (run.dir / "results.json").exists()


def test_find_by_id_ref_or_directory(tmp_path: Path) -> None:
    runs = RunStore(tmp_path)
    made = []
    for plugin in ("a", "b"):
        run = runs.create(plugin)
        with run:
            run.write_config("")
        made.append(run)
    a = made[0]
    assert runs.find(a.run_id).dir == a.dir
    assert runs.find(f"a/{a.run_id}").dir == a.dir
    assert runs.find(str(a.dir)).dir == a.dir
    assert [r.plugin for r in runs.runs()] == ["a", "b"]
    with pytest.raises(RunError, match="no such run"):
        runs.find("20000101-000000-0000")
    with pytest.raises(RunError, match="belongs to plugin 'a'"):
        runs.resume("b", a.run_id)


# -- checkpoints --------------------------------------------------------------------------
def _trio() -> tuple[torch.nn.Module, torch.optim.Optimizer, Any]:
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    return model, opt, torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)


def _step(model: torch.nn.Module, opt: torch.optim.Optimizer, sched: Any) -> None:
    model(torch.randn(4, 3)).pow(2).sum().backward()
    opt.step()
    opt.zero_grad()
    sched.step()


def _draws() -> tuple[float, float, list[float]]:
    return random.random(), float(np.random.rand()), torch.rand(3).tolist()


def test_checkpoint_restores_states_and_every_rng(tmp_path: Path) -> None:
    model, opt, sched = _trio()
    _step(model, opt, sched)
    run = RunStore(tmp_path).create("p")
    with run:
        run.save_checkpoint(3, model, opt, sched, {"history": [1.0, 0.5]})
        expected_draws = _draws()
        saved = {k: v.clone() for k, v in model.state_dict().items()}
        saved_lr = opt.param_groups[0]["lr"]
        _step(model, opt, sched)
        fresh, fresh_opt, fresh_sched = _trio()
        got = run.load_checkpoint(fresh, fresh_opt, fresh_sched)
    assert got == store.Checkpoint(3, {"history": [1.0, 0.5]})
    assert _draws() == expected_draws
    assert all(torch.equal(fresh.state_dict()[k], v) for k, v in saved.items())
    assert fresh_opt.param_groups[0]["lr"] == saved_lr
    assert fresh_sched.last_epoch == 1
    momentum = fresh_opt.state_dict()["state"][0]["momentum_buffer"]
    assert momentum.abs().sum() > 0
    assert sorted(p.name for p in (run.dir / "checkpoints").iterdir()) == \
        ["epoch-000003.pt", "last.json"]


def test_checkpoint_loading_runs_no_code(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self) -> tuple[Any, ...]:
            return (Path.touch, (marker,))

    run = RunStore(tmp_path).create("p")
    folder = run.dir / "checkpoints"
    folder.mkdir()
    torch.save({"model": Evil(), "epoch": 1}, folder / "epoch-000001.pt")
    (folder / "last.json").write_text(json.dumps({"file": "epoch-000001.pt", "epoch": 1,
                                                   "metrics_lines": 0}))
    with run, pytest.raises(RunError, match="cannot be read"):
        run.load_checkpoint(torch.nn.Linear(1, 1))
    assert not marker.exists()


def test_resume_cuts_metrics_back_to_the_checkpoint(tmp_path: Path) -> None:
    model, opt, sched = _trio()
    run = RunStore(tmp_path).create("p")
    with run:
        for i in range(3):
            run.append_metric({"i": i})
        run.save_checkpoint(1, model, opt, sched)
        for i in range(3, 5):  # after the checkpoint: lost work, logged again on resume
            run.append_metric({"i": i})
    with Run(run.dir, resumed=True) as again:
        again.append_metric({"i": 3})
    lines = (run.dir / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["i"] for x in lines] == [0, 1, 2, 3]
    assert json.loads((run.dir / "state.json").read_text())["resumes"] == 1


def test_stop_request_stops_after_the_next_checkpoint(tmp_path: Path) -> None:
    model, opt, sched = _trio()
    run = RunStore(tmp_path).create("p")
    with run:
        assert run.request_stop() is False  # no checkpoint yet: stop at once
        with pytest.raises(KeyboardInterrupt):
            run.save_checkpoint(1, model, opt, sched)
        assert run.last_checkpoint() == {"file": "epoch-000001.pt", "epoch": 1,
                                         "metrics_lines": 0}
        assert run.request_stop() is True


# -- followers: the ranks > 0 of a torchrun job --------------------------------------------
def test_a_new_runs_follower_writes_nothing_and_stops_with_the_writer(tmp_path: Path) -> None:
    model, opt, sched = _trio()
    with RunStore(tmp_path / "runs").follow("p") as run:
        assert not run.writer and run.last_checkpoint() is None
        run.write_config("[p]\n")
        run.mark_stand_in("fake")
        run.append_metric({"i": 0})
        assert run.request_stop() is False  # no checkpoint yet: the writer stops at once too
        run.stop_requested = False
        run.save_checkpoint(1, model, opt, sched)
        assert run.last_checkpoint() is None and run.load_checkpoint(model) is None
        assert run.request_stop() is True
        with pytest.raises(KeyboardInterrupt):  # stops at the checkpoint, as rank 0 does
            run.save_checkpoint(2, model, opt, sched)
        run.set_state("failed", error="boom")
        with pytest.raises(TypeError, match="not JSON-able"):
            run.finish({"model": object()})
        run.finish({"acc": 1.0})
    assert not (tmp_path / "runs").exists()


def test_a_follower_reads_the_writers_checkpoint_without_the_lock(tmp_path: Path) -> None:
    runs = RunStore(tmp_path)
    model, opt, sched = _trio()
    _step(model, opt, sched)
    with runs.create("p") as run:
        run.write_config("[p]\n")
        run.append_metric({"i": 0})
        run.save_checkpoint(1, model, opt, sched, {"history": [0.5]})
        files = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in run.dir.rglob("*")
                 if p.is_file()}
        for ref in (run.run_id, f"p/{run.run_id}", str(run.dir)):  # lock held: no probe
            follower = runs.follow("p", ref)
            assert follower.dir == run.dir and follower.resumed
            fresh, fresh_opt, fresh_sched = _trio()
            with follower:
                assert follower.load_checkpoint(fresh, fresh_opt, fresh_sched) == \
                    store.Checkpoint(1, {"history": [0.5]})
                follower.append_metric({"i": 1})
                follower.save_checkpoint(2, fresh, fresh_opt, fresh_sched)
                follower.finish({"acc": 1.0})
            assert all(torch.equal(fresh.state_dict()[k], v)
                       for k, v in model.state_dict().items())
        assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in run.dir.rglob("*")
                if p.is_file()} == files
        with pytest.raises(RunError, match="belongs to plugin 'p'"):
            runs.follow("q", run.run_id)
        run.finish({"acc": 0.5})
    with pytest.raises(RunError, match="already finished"):
        runs.follow("p", run.run_id)
    with pytest.raises(RunError, match="no such run"):
        runs.follow("p", "20000101-000000-0000")
