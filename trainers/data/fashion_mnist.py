"""FashionMNIST reader for its official IDX gzip files.

IDX: two zero bytes, a type code (0x08 = unsigned byte), the number of dimensions, then one
big-endian uint32 per dimension and the data. Every field is checked so that a truncated or
foreign file fails here, naming itself, rather than as a shape error deep in training.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

from trainers.data.catalog import SPECS, Arrays
from trainers.errors import DatasetCorruptError

UBYTE = 0x08
IMAGE_MAGIC = 0x00000803  # ubyte, 3 dimensions
LABEL_MAGIC = 0x00000801  # ubyte, 1 dimension
SIDE = 28
N_CLASSES = 10


def _decompress(path: Path) -> bytes:
    try:
        with gzip.open(path, "rb") as fh:
            return fh.read()
    except (OSError, EOFError, zlib.error) as exc:
        raise DatasetCorruptError(f"{path}: not a complete gzip file ({exc})") from exc


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """The uint8 array in IDX gzip file ``path``, which must have ``ndim`` dimensions."""
    raw = _decompress(path)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DatasetCorruptError(f"{path}: no IDX magic number")
    if raw[2] != UBYTE or raw[3] != ndim:
        raise DatasetCorruptError(
            f"{path}: IDX type 0x{raw[2]:02x} with {raw[3]} dimensions, "
            f"expected unsigned bytes (0x08) with {ndim}")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DatasetCorruptError(f"{path}: IDX header cut short")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    expected = int(np.prod(dims, dtype=np.int64))
    if len(raw) - header != expected:
        raise DatasetCorruptError(
            f"{path}: header promises {expected} bytes for dims {dims}, "
            f"found {len(raw) - header} (truncated?)")
    return np.frombuffer(raw, np.uint8, offset=header).reshape(dims)


def _pair(folder: Path, images: str, labels: str) -> tuple[np.ndarray, np.ndarray]:
    x = read_idx(folder / images, 3)
    y = read_idx(folder / labels, 1).astype(np.int64)
    if x.shape[1:] != (SIDE, SIDE):
        raise DatasetCorruptError(f"{folder / images}: images are {x.shape[1:]}, not 28 x 28")
    if y.shape[0] != x.shape[0]:
        raise DatasetCorruptError(
            f"{folder / labels}: {y.shape[0]} labels for {x.shape[0]} images in {images}")
    if y.size and y.max() >= N_CLASSES:
        raise DatasetCorruptError(f"{folder / labels}: labels outside 0..{N_CLASSES - 1}")
    return x[:, None, :, :], y


def load_idx(folder: Path) -> Arrays:
    """Read the four FashionMNIST files from ``folder``."""
    spec = SPECS["fashion-mnist"]
    layout = spec.layout("idx")
    x_train, y_train = _pair(folder, *layout.train)
    x_test, y_test = _pair(folder, *layout.test)
    return Arrays(x_train, y_train, x_test, y_test, spec.classes)
