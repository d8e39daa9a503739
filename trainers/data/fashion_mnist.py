"""FashionMNIST reader for its official IDX gzip files.

IDX: two zero bytes, a type code (0x08 = unsigned byte), the number of dimensions, then one
big-endian uint32 per dimension and the data. Every field is checked so that a truncated or
foreign file fails here, naming itself, rather than as a shape error deep in training.
"""

from __future__ import annotations

import gzip
import math
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
MAX_ITEMS = 300_000  # per file: the real train set has 60,000, hw3 data fake writes <= 200,000
N_CLASSES = 10


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """The uint8 array in IDX gzip file ``path``: ``ndim`` dimensions, images 28 x 28, at
    most ``MAX_ITEMS`` items. The header is checked before the data is read, and no more
    than the header promises is ever decompressed (a gzip bomb stops there)."""
    try:
        with gzip.open(path, "rb") as fh:
            dims = _header(path, fh.read(4 + 4 * ndim), ndim)
            expected = math.prod(dims)
            raw = fh.read(expected + 1)  # reading to the end checks gzip's CRC and length
    except (OSError, EOFError, zlib.error) as exc:
        raise DatasetCorruptError(f"{path}: not a complete gzip file ({exc})") from None
    if len(raw) != expected:
        found = f"{len(raw)} (truncated?)" if len(raw) < expected else "more"
        raise DatasetCorruptError(
            f"{path}: header promises {expected} bytes for dims {dims}, found {found}")
    return np.frombuffer(raw, np.uint8).reshape(dims)


def _header(path: Path, head: bytes, ndim: int) -> tuple[int, ...]:
    if len(head) < 4 or head[0] != 0 or head[1] != 0:
        raise DatasetCorruptError(f"{path}: no IDX magic number")
    if head[2] != UBYTE or head[3] != ndim:
        raise DatasetCorruptError(
            f"{path}: IDX type 0x{head[2]:02x} with {head[3]} dimensions, "
            f"expected unsigned bytes (0x08) with {ndim}")
    if len(head) < 4 + 4 * ndim:
        raise DatasetCorruptError(f"{path}: IDX header cut short")
    dims: tuple[int, ...] = struct.unpack(f">{ndim}I", head[4:])
    if dims[1:] != (SIDE, SIDE)[:ndim - 1]:
        raise DatasetCorruptError(f"{path}: images are {dims[1:]}, not {SIDE} x {SIDE}")
    if dims[0] > MAX_ITEMS:
        raise DatasetCorruptError(f"{path}: header claims {dims[0]:,} items, more than "
                                  f"{MAX_ITEMS:,} (FashionMNIST has 70,000)")
    return dims


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
