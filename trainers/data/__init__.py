"""Datasets for hw3: CIFAR-10 and FashionMNIST from their official files, as tensors.

``load(name)`` finds the files (``--data-dir``, else ``$HW3_DATA``, else ``~/.cache/hw3``),
reads them with the checked readers and returns whole splits as tensors, ready to move to
the device in one go. numpy and torch are imported on first load, not here, so that
``hw3 --help`` stays light.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from trainers.data.catalog import (
    MARKER,
    SPECS,
    Layout,
    Spec,
    choose_layout,
    get_spec,
    is_synthetic,
    resolve_data_dir,
    status,
)

if TYPE_CHECKING:
    import numpy as np
    import torch

    from trainers.data.catalog import Arrays

__all__ = ["MARKER", "SPECS", "Dataset", "DeviceData", "Layout", "Spec", "Split", "get_spec",
           "load", "names", "on_device", "resolve_data_dir", "status"]


@dataclass(frozen=True, eq=False)
class Split:
    """One split: x uint8 (N, C, H, W), y int64 (N,)."""

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return int(self.y.shape[0])


@dataclass(frozen=True, eq=False)
class Dataset:
    """A loaded dataset; ``synthetic`` is True for stand-in data from ``hw3 data fake``."""

    name: str
    layout: str
    train: Split
    test: Split
    classes: tuple[str, ...]
    sources: tuple[Path, ...]
    synthetic: bool

    @property
    def summary(self) -> str:
        """One line for reports, so that no result hides that it used stand-in data."""
        kind = "SYNTHETIC stand-in data" if self.synthetic else "official files"
        return (f"{self.name} ({self.layout} layout, {kind}): {len(self.train)} train, "
                f"{len(self.test)} test, {len(self.classes)} classes")


@dataclass(frozen=True, eq=False)
class DeviceData:
    """Both splits of a dataset as tensors on the training device (a plugin may transform x
    there, e.g. normalise it, and keep the same record)."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


def on_device(ds: Dataset, device: str) -> DeviceData:
    """``ds``'s splits moved to ``device`` as stored: uint8 images, int64 labels."""
    return DeviceData(ds.train.x.to(device), ds.train.y.to(device), ds.test.x.to(device),
                      ds.test.y.to(device))


def names() -> list[str]:
    """The registered dataset names."""
    return list(SPECS)


def _read(spec: Spec, layout: Layout, folder: Path) -> Arrays:
    if spec.name == "cifar10":
        from trainers.data import cifar10

        return cifar10.load_python(folder) if layout.name == "python" \
            else cifar10.load_binary(folder)
    from trainers.data import fashion_mnist

    return fashion_mnist.load_idx(folder)


def _tensor(a: np.ndarray) -> torch.Tensor:
    import numpy as np
    import torch

    # One copy at most (when the reader's buffer is read-only or strided), never per sample.
    return torch.from_numpy(np.require(a, requirements=["C", "W"]))


def load(name: str, data_dir: str | os.PathLike[str] | None = None,
         layout: str | None = None) -> Dataset:
    """Read dataset ``name`` from disk; missing files raise DatasetMissingError with the fix,
    damaged or untrusted ones DatasetCorruptError naming the file."""
    spec = get_spec(name)
    root = resolve_data_dir(data_dir)
    lay = choose_layout(spec, root, layout)
    folder = root / lay.folder
    arrays = _read(spec, lay, folder)
    return Dataset(
        name=spec.name, layout=lay.name,
        train=Split(_tensor(arrays.x_train), _tensor(arrays.y_train)),
        test=Split(_tensor(arrays.x_test), _tensor(arrays.y_test)),
        classes=arrays.classes, sources=tuple(folder / f for f in lay.files),
        synthetic=is_synthetic(root, lay))
