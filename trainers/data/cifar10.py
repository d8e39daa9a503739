"""CIFAR-10 readers for both official layouts: python pickle batches and binary records.

The pickle batches are Python 2 protocol-2 pickles of a dict whose ``b'data'`` is a numpy
uint8 array. Plain ``pickle.load`` would run whatever a planted file asks for, so they go
through :class:`BatchUnpickler`, which resolves exactly the three globals those files name
(numpy's array reconstructor, ``numpy.ndarray``, ``numpy.dtype``) and refuses everything else.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from trainers.data.catalog import SPECS, Arrays, Layout
from trainers.errors import DatasetCorruptError

PIXELS = 3 * 32 * 32
RECORD = 1 + PIXELS  # binary layout: one label byte, then R, G, B planes of 32 x 32
N_CLASSES = 10


def _allowed_globals() -> dict[tuple[str, str], Any]:
    # ndarray.__reduce__ hands back numpy's own _reconstruct, whatever module it lives in.
    reconstruct = np.zeros(0, np.uint8).__reduce__()[0]
    return {("numpy.core.multiarray", "_reconstruct"): reconstruct,
            ("numpy", "ndarray"): np.ndarray,
            ("numpy", "dtype"): np.dtype}


class BatchUnpickler(pickle.Unpickler):
    """An unpickler that admits only what the official CIFAR-10 batches contain."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _allowed_globals()[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refusing global {module}.{name}: CIFAR-10 batches never name it") from None


def unpickle(path: Path) -> Any:
    """Load one pickle batch with :class:`BatchUnpickler`; any failure names the file."""
    try:
        raw = path.read_bytes()
        return BatchUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except Exception as exc:  # a hostile or damaged file may raise anything
        raise DatasetCorruptError(f"{path}: not a valid CIFAR-10 pickle batch ({exc})") from exc


def _check_labels(path: Path, y: np.ndarray, n: int) -> np.ndarray:
    if y.shape != (n,):
        raise DatasetCorruptError(f"{path}: {y.shape[0]} labels for {n} images")
    if n and (y.min() < 0 or y.max() >= N_CLASSES):
        raise DatasetCorruptError(f"{path}: labels outside 0..{N_CLASSES - 1}")
    return y


def _python_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    batch = unpickle(path)
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise DatasetCorruptError(f"{path}: expected a dict with b'data' and b'labels'")
    x = batch[b"data"]
    if not isinstance(x, np.ndarray) or x.dtype != np.uint8 or x.ndim != 2 \
            or x.shape[1] != PIXELS:
        raise DatasetCorruptError(f"{path}: b'data' is not a uint8 N x {PIXELS} array")
    labels = batch[b"labels"]
    y = np.asarray(labels) if isinstance(labels, list) else np.zeros(0, object)
    if y.dtype.kind not in "iu" or y.ndim != 1:
        raise DatasetCorruptError(f"{path}: b'labels' is not a list of ints")
    y = _check_labels(path, y.astype(np.int64), x.shape[0])
    return x.reshape(-1, 3, 32, 32), y


def _python_classes(path: Path) -> tuple[str, ...]:
    meta = unpickle(path)
    names = meta.get(b"label_names") if isinstance(meta, dict) else None
    if not isinstance(names, list) or len(names) != N_CLASSES \
            or not all(isinstance(n, bytes) for n in names):
        raise DatasetCorruptError(f"{path}: b'label_names' is not a list of 10 names")
    return tuple(n.decode("ascii", "replace") for n in names)


def _binary_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size == 0 or raw.size % RECORD:
        raise DatasetCorruptError(
            f"{path}: {raw.size} bytes is not a whole number of {RECORD}-byte records "
            "(truncated?)")
    records = raw.reshape(-1, RECORD)
    y = _check_labels(path, records[:, 0].astype(np.int64), records.shape[0])
    return records[:, 1:].reshape(-1, 3, 32, 32), y


def _binary_classes(path: Path) -> tuple[str, ...]:
    try:
        names = [ln.strip() for ln in path.read_text("ascii").splitlines() if ln.strip()]
    except UnicodeDecodeError as exc:
        raise DatasetCorruptError(f"{path}: not an ASCII list of class names") from exc
    if len(names) != N_CLASSES:
        raise DatasetCorruptError(f"{path}: {len(names)} class names, expected {N_CLASSES}")
    return tuple(names)


def _join(folder: Path, files: tuple[str, ...], read: Any) -> tuple[np.ndarray, np.ndarray]:
    parts = [read(folder / f) for f in files]
    return (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))


def _load(folder: Path, layout: Layout, read: Any, classes: Any) -> Arrays:
    x_train, y_train = _join(folder, layout.train, read)
    x_test, y_test = _join(folder, layout.test, read)
    return Arrays(x_train, y_train, x_test, y_test, classes(folder / layout.meta[0]))


def load_python(folder: Path) -> Arrays:
    """Read ``cifar-10-batches-py``: data_batch_1..5, test_batch, batches.meta."""
    return _load(folder, SPECS["cifar10"].layout("python"), _python_batch, _python_classes)


def load_binary(folder: Path) -> Arrays:
    """Read ``cifar-10-batches-bin``: data_batch_1..5.bin, test_batch.bin, batches.meta.txt."""
    return _load(folder, SPECS["cifar10"].layout("binary"), _binary_batch, _binary_classes)
