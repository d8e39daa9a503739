"""Part 1's figure data: training images and one Cutout box each, drawn at a config's Cutout
size; a training run keeps its own in its work folder, so its report shows the examples of
the run itself (its data, its Cutout size, its seed), whatever else lies beside it.

The stored file is the same record ``hw3 run cutout --show`` puts in its results (index,
uint8 images, boxes, size) plus the seed it was drawn with. It is written once, when the
training starts, and never rewritten: an interrupted run has it, and a resumed run keeps it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch

from trainers.plugins.cutout.augment import cutout_boxes
from trainers.store import atomic_write

FILE = "cutout-examples.json"  # in the run's work folder (ctx.workdir)
COUNT = 2  # the homework: "select any 2 images from CIFAR10"


def pick(x: torch.Tensor, count: int, size: int,
         generator: torch.Generator | None = None) -> dict[str, Any]:
    """``count`` training images of uint8 ``x`` (N, C, H, W) and a ``size`` Cutout box for
    each, drawn from ``generator`` (None: torch's default one, as ``--show`` draws)."""
    n, _, h, w = x.shape
    index = torch.randperm(n, generator=generator)[:count]
    boxes = cutout_boxes(len(index), h, w, size, generator=generator)
    return {"index": index.tolist(), "images": x[index].tolist(), "boxes": boxes.tolist(),
            "size": size}


def seeded(seed: int) -> torch.Generator:
    """A CPU generator of its own for the run's examples: drawing them leaves the training's
    random streams untouched, and the same seed draws the same examples."""
    key = hashlib.blake2b(f"{seed}/cutout-examples".encode(), digest_size=8)
    return torch.Generator().manual_seed(int.from_bytes(key.digest(), "little") >> 1)


def keep(workdir: Path, x: torch.Tensor, size: int, seed: int, data: str) -> Path:
    """Write the run's examples to ``workdir/FILE`` unless they are there already (a resumed
    run keeps the ones it started with); atomic, so a crash leaves none or all."""
    path = workdir / FILE
    if not path.exists():
        record = {**pick(x, COUNT, size, seeded(seed)), "seed": seed, "data": data}
        atomic_write(path, json.dumps(record))
    return path


class BadExamples(ValueError):
    """A stored examples file that is not the record :func:`keep` writes."""


def load(workdir: Path) -> dict[str, Any] | None:
    """The run's stored examples; None when it has none (a run made before runs kept them).
    Raises :class:`BadExamples` saying what is wrong with a damaged file."""
    path = workdir / FILE
    if not path.exists():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BadExamples(f"cannot be read as JSON ({exc})") from None
    check(record)
    return record  # type: ignore[no-any-return]


def check(record: Any) -> None:
    """Raise :class:`BadExamples` unless ``record`` holds n uint8 images (C, H, W) with
    one in-bounds box each and a whole Cutout size."""
    import numpy as np

    if not isinstance(record, dict) or not {"index", "images", "boxes", "size"} <= set(record):
        raise BadExamples("is not an object with index, images, boxes and size")
    try:
        images = np.asarray(record["images"])
        boxes = np.asarray(record["boxes"])
    except ValueError:
        raise BadExamples("holds ragged images or boxes") from None
    n = len(record["index"]) if isinstance(record["index"], list) else -1
    if images.ndim != 4 or len(images) != n or images.dtype.kind not in "iu" \
            or images.min(initial=0) < 0 or images.max(initial=0) > 255:
        raise BadExamples("does not hold one (C, H, W) uint8 image per index")
    h, w = images.shape[2:]
    if boxes.shape != (n, 4) or boxes.dtype.kind not in "iu" or (boxes < 0).any() \
            or (boxes[:, :2] > h).any() or (boxes[:, 2:] > w).any():
        raise BadExamples("does not hold one in-bounds box (y1, y2, x1, x2) per image")
    if not isinstance(record["size"], int) or record["size"] < 1:
        raise BadExamples("has no whole Cutout size")
