"""Checkpoint files: every state a deterministic resume needs (model, optimizer, scheduler,
the RNGs of python, numpy and torch, and a plugin's plain-data extras), written with
torch.save and read with ``weights_only=True``. torch is imported only here, only when a
plugin checkpoints."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainers.errors import DamagedRunError
from trainers.store.files import atomic_path

LAST = "last.json"  # checkpoints/last.json points at the newest checkpoint file
STATE_KEYS = ("epoch", "extra", "rng", "model", "optimizer", "scheduler")
RECOVER = ("restore it from a backup, or remove the run's checkpoints/ folder to restart "
           "the run from epoch 0")


def damaged(path: Path, what: str, recover: str = RECOVER) -> DamagedRunError:
    """The one-line report of a damaged run file: which, what is wrong, how to recover."""
    what = " ".join(what.split())
    if len(what) > 300:
        what = what[:300] + "..."
    return DamagedRunError(f"{path}: {what}; nothing was changed ({recover})")


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 10**9


def read_pointer(folder: Path) -> dict[str, Any] | None:
    """checkpoints/last.json checked: None if there is none, else ``file``, ``epoch`` and
    ``metrics_lines`` that fit each other and a checkpoint file on disk; DamagedRunError
    (nothing read further, nothing changed) if it is damaged."""
    path = folder / LAST
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeError) as exc:
        raise damaged(path, f"cannot be read ({exc})") from None
    try:
        last = json.loads(text)
    except ValueError:
        raise damaged(path, "is not valid JSON") from None
    if not isinstance(last, dict):
        raise damaged(path, f"is not a JSON object (got {type(last).__name__})")
    epoch, lines, name = last.get("epoch"), last.get("metrics_lines"), last.get("file")
    for key, value in (("epoch", epoch), ("metrics_lines", lines)):
        if not _count(value):
            raise damaged(path, f"{key!r} must be a count (an integer >= 0), got {value!r}")
    if name != f"epoch-{epoch:06d}.pt":
        raise damaged(path, f"'file' must be 'epoch-{epoch:06d}.pt' for epoch {epoch}, "
                            f"got {name!r}")
    if not (folder / name).is_file():
        raise damaged(path, f"points at {name}, which is not in {folder}")
    return {"file": name, "epoch": epoch, "metrics_lines": lines}


@dataclass(frozen=True)
class Checkpoint:
    """What ``load_checkpoint`` restored: epochs completed so far and the plugin's extras."""

    epoch: int
    extra: dict[str, Any]


def save_state(path: Path, epoch: int, model: Any, optimizer: Any, scheduler: Any,
               extra: dict[str, Any]) -> None:
    """torch.save of every state a deterministic resume needs, in weights_only-safe types."""
    import torch

    state = {"epoch": epoch, "extra": extra, "rng": rng_states(),
             "model": model.state_dict(),
             "optimizer": optimizer.state_dict() if optimizer is not None else None,
             "scheduler": scheduler.state_dict() if scheduler is not None else None}
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_state(path: Path, model: Any, optimizer: Any, scheduler: Any,
               epoch: int | None = None) -> tuple[int, dict[str, Any]]:
    """Load with ``weights_only=True`` (no code runs) and restore states and RNGs; a file
    that torch cannot read, or whose states do not fit the given objects (another model
    size, missing keys) or ``epoch``, is a DamagedRunError."""
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several kinds for a bad file
        raise damaged(path, f"cannot be read as a checkpoint ({exc})") from None
    if not isinstance(state, dict) or any(k not in state for k in STATE_KEYS):
        raise damaged(path, "is not an hw3 checkpoint (expected the keys "
                            f"{', '.join(STATE_KEYS)})")
    if epoch is not None and state["epoch"] != epoch:
        raise damaged(path, f"holds epoch {state['epoch']!r}, but last.json says {epoch}")
    if not isinstance(state["extra"], dict):
        raise damaged(path, "its 'extra' is not a dict")
    try:
        model.load_state_dict(state["model"])
        for obj, key in ((optimizer, "optimizer"), (scheduler, "scheduler")):
            if obj is not None and state[key] is not None:
                obj.load_state_dict(state[key])
        set_rng_states(state["rng"])
    except Exception as exc:  # a state of another shape: RuntimeError, KeyError, ...
        raise damaged(path, f"does not fit this run ({type(exc).__name__}: {exc})",
                      "it may come from another run or another config; restore this run's "
                      "own checkpoint, or remove checkpoints/ to restart from epoch 0") from None
    return int(state["epoch"]), dict(state["extra"])


def rng_states() -> dict[str, Any]:
    """Python, numpy and torch (and CUDA) RNG states as tensors and plain values."""
    import random

    import numpy as np
    import torch

    version, internal, gauss = random.getstate()
    _, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    states: dict[str, Any] = {
        "python": {"version": version, "state": torch.tensor(internal, dtype=torch.int64),
                   "gauss": gauss},
        "numpy": {"keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached": float(cached)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: Mapping[str, Any]) -> None:
    import random

    import numpy as np
    import torch

    py = states["python"]
    random.setstate((py["version"], tuple(py["state"].tolist()), py["gauss"]))
    npy = states["numpy"]
    np.random.set_state(("MT19937", npy["keys"].numpy().astype(np.uint32), npy["pos"],
                         npy["has_gauss"], npy["cached"]))
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
