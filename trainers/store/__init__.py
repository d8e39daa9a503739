"""Run directories: ``runs/<plugin>/<run-id>/`` with config.toml, state.json, metrics.jsonl
(and its views metrics.csv and tensorboard/), results.json, summary.md, checkpoints/ and
plots/.

files (atomic replacement, tolerant JSON reads), lock (one writer per run directory), runs
(create, resume, find and list runs; the Run a process writes), logs (metrics.csv and
TensorBoard event files, kept equal to metrics.jsonl), checkpoints (model, optimizer and RNG
states on disk), interrupt (Ctrl-C once: stop at the next checkpoint).
"""

from trainers.store.checkpoints import Checkpoint
from trainers.store.files import atomic_path, atomic_write, read_json
from trainers.store.interrupt import interrupt_guard
from trainers.store.lock import Lock, lock_holder
from trainers.store.runs import Checkpoints, Follower, Run, RunInfo, RunStore, run_info

__all__ = ["Checkpoint", "Checkpoints", "Follower", "Lock", "Run", "RunInfo", "RunStore",
           "atomic_path", "atomic_write", "interrupt_guard", "lock_holder", "read_json",
           "run_info"]
