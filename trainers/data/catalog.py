"""What each dataset looks like on disk: folders, file names, classes. No numpy, no torch.

Kept apart from the readers so that `hw3 --help`, `hw3 data info` and the missing-data
messages never pay for importing numpy or torch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from trainers.errors import ConfigError, DatasetMissingError

if TYPE_CHECKING:
    import numpy as np

MARKER = "HW3_SYNTHETIC.txt"
"""Written by the fake-data writers beside the files; its presence means stand-in data."""

ENV_VAR = "HW3_DATA"


@dataclass(frozen=True)
class Layout:
    """One official on-disk layout: a folder under the data directory and its files."""

    name: str
    folder: str
    train: tuple[str, ...]
    test: tuple[str, ...]
    meta: tuple[str, ...] = ()

    @property
    def files(self) -> tuple[str, ...]:
        return self.train + self.test + self.meta


@dataclass(frozen=True)
class Spec:
    """A dataset: its classes, image shape (C, H, W) and layouts in order of preference."""

    name: str
    classes: tuple[str, ...]
    shape: tuple[int, int, int]
    layouts: tuple[Layout, ...]

    def layout(self, name: str | None) -> Layout:
        if name is None:
            return self.layouts[0]
        for layout in self.layouts:
            if layout.name == name:
                return layout
        known = ", ".join(lay.name for lay in self.layouts)
        raise ConfigError(f"{self.name} has no layout {name!r}; known: {known}")


@dataclass(frozen=True)
class Arrays:
    """Numpy arrays as read from disk: x uint8 (N, C, H, W), y int64 (N,)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: tuple[str, ...]


CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")

_CIFAR_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))

SPECS: dict[str, Spec] = {
    "cifar10": Spec(
        "cifar10", CIFAR10_CLASSES, (3, 32, 32),
        (Layout("python", "cifar-10-batches-py", _CIFAR_BATCHES, ("test_batch",),
                ("batches.meta",)),
         Layout("binary", "cifar-10-batches-bin", tuple(f"{b}.bin" for b in _CIFAR_BATCHES),
                ("test_batch.bin",), ("batches.meta.txt",))),
    ),
    "fashion-mnist": Spec(
        "fashion-mnist", FASHION_CLASSES, (1, 28, 28),
        (Layout("idx", "fashion-mnist",
                ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
                ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")),),
    ),
}


def get_spec(name: str) -> Spec:
    """The registered dataset ``name``; an unknown name lists the known ones."""
    try:
        return SPECS[name]
    except KeyError:
        raise ConfigError(f"unknown dataset {name!r}; known: {', '.join(SPECS)}") from None


def resolve_data_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """``--data-dir``, else ``$HW3_DATA``, else ``~/.cache/hw3``."""
    if explicit is not None and str(explicit):
        return Path(explicit).expanduser()
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "hw3"


def missing_files(root: Path, layout: Layout) -> list[str]:
    folder = root / layout.folder
    return [f for f in layout.files if not (folder / f).is_file()]


def is_synthetic(root: Path, layout: Layout) -> bool:
    return (root / layout.folder / MARKER).is_file()


def choose_layout(spec: Spec, root: Path, layout: str | None) -> Layout:
    """The requested layout if complete, else the first complete one; else say what to do."""
    candidates = (spec.layout(layout),) if layout is not None else spec.layouts
    for lay in candidates:
        if not missing_files(root, lay):
            return lay
    raise DatasetMissingError(missing_message(spec, root, candidates))


def require(name: str, data_dir: str | os.PathLike[str] | None = None) -> None:
    """Raise DatasetMissingError (with the files and commands) unless ``name`` is on disk;
    reads nothing, so the host can check before it creates a run directory."""
    choose_layout(get_spec(name), resolve_data_dir(data_dir), None)


def missing_message(spec: Spec, root: Path, layouts: tuple[Layout, ...]) -> str:
    """One line: the directory searched, the files expected, and the commands that help."""
    wanted = "; or ".join(
        f"{', '.join(lay.files)} in {root / lay.folder}"
        + (f" (missing: {', '.join(missing_files(root, lay))})"
           if (root / lay.folder).is_dir() else "")
        for lay in layouts)
    flag = "" if root == resolve_data_dir(None) else f" --data-dir {root}"
    return (f"{spec.name} not found under {root}: expected {wanted}. "
            f"Run `hw3 data fetch {spec.name}{flag}` (needs the internet), or "
            f"`hw3 data fake {spec.name} --n N{flag}` for synthetic stand-in data offline.")


@dataclass(frozen=True)
class LayoutStatus:
    """What `hw3 data info` shows for one layout."""

    layout: Layout
    folder: Path
    sizes: dict[str, int]
    missing: tuple[str, ...]
    synthetic: bool

    @property
    def complete(self) -> bool:
        return not self.missing


def status(name: str, data_dir: str | os.PathLike[str] | None = None) -> list[LayoutStatus]:
    """Per layout: which files are there, their sizes, and whether they are stand-ins."""
    spec, root = get_spec(name), resolve_data_dir(data_dir)
    out = []
    for lay in spec.layouts:
        folder = root / lay.folder
        sizes = {f: (folder / f).stat().st_size for f in lay.files if (folder / f).is_file()}
        out.append(LayoutStatus(lay, folder, sizes, tuple(missing_files(root, lay)),
                                is_synthetic(root, lay)))
    return out
