"""Checkpoint files: every state a deterministic resume needs (model, optimizer, scheduler,
the RNGs of python, numpy and torch, and a plugin's plain-data extras), written with
torch.save and read with ``weights_only=True``. torch is imported only here, only when a
plugin checkpoints."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainers.errors import RunError
from trainers.store.files import atomic_path

LAST = "last.json"  # checkpoints/last.json points at the newest checkpoint file


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
               ) -> tuple[int, dict[str, Any]]:
    """Load with ``weights_only=True`` (no code runs) and restore states and RNGs."""
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several kinds for a bad file
        raise RunError(f"checkpoint {path} cannot be read: {exc}") from exc
    model.load_state_dict(state["model"])
    for obj, key in ((optimizer, "optimizer"), (scheduler, "scheduler")):
        if obj is not None and state[key] is not None:
            obj.load_state_dict(state[key])
    set_rng_states(state["rng"])
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
