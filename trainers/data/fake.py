"""Synthetic stand-ins for CIFAR-10 and FashionMNIST, written in the official on-disk formats.

Offline machines (and the tests) exercise the real readers on these files, so the writers
reproduce the formats byte-level where it matters: Python 2 protocol-2 pickles with the same
opcodes and globals as the Toronto batches, 3073-byte binary records, gzip'd IDX files.
The images carry a learnable signal (a class-dependent shape, and for CIFAR a class colour,
under random shifts, backgrounds and noise), so a short training must beat chance clearly.
A marker file beside them makes every loader report ``synthetic=True``.
"""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path
from typing import Any

import numpy as np

from trainers.data import catalog
from trainers.data.catalog import MARKER, Arrays, Layout, Spec
from trainers.errors import ConfigError

MARGIN = 3  # shapes shift by up to +-MARGIN pixels
CHUNK = 4096  # images generated per step, to bound memory for large --n
NOISE = 40.0  # std of per-pixel Gaussian noise, in grey levels
PALETTE = np.array([[230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200],
                    [245, 130, 48], [145, 30, 180], [70, 240, 240], [240, 50, 230],
                    [210, 245, 60], [250, 190, 190]], dtype=np.float32)


# --- images -------------------------------------------------------------------------------

def _class_masks(h: int, w: int) -> np.ndarray:
    """Ten binary shapes, one per class, on a canvas MARGIN pixels larger on each side."""
    v, u = np.meshgrid(np.linspace(-1.25, 1.25, h + 2 * MARGIN),
                       np.linspace(-1.25, 1.25, w + 2 * MARGIN), indexing="ij")
    r, box = np.hypot(u, v), np.maximum(abs(u), abs(v))
    inside = box < 0.7
    shapes = [r < 0.5, (r > 0.35) & (r < 0.62),
              (abs(v) < 0.18) & inside, (abs(u) < 0.18) & inside,
              ((abs(v) < 0.15) | (abs(u) < 0.15)) & inside, (box > 0.42) & (box < 0.65),
              (abs(u - v) < 0.25) & inside, (abs(u + v) < 0.25) & inside,
              (v > -0.5) & (v < 0.55) & (abs(u) < (v + 0.5) * 0.6),
              ((np.floor((u + 1) * 3) + np.floor((v + 1) * 3)) % 2 == 1) & inside]
    return np.stack(shapes).astype(np.float32)


def _chunk(rng: np.random.Generator, y: np.ndarray, shape: tuple[int, int, int],
           masks: np.ndarray) -> np.ndarray:
    c, h, w = shape
    n = y.shape[0]
    oy, ox = rng.integers(0, 2 * MARGIN + 1, size=(2, n))
    rows = oy[:, None] + np.arange(h)
    cols = ox[:, None] + np.arange(w)
    m = masks[y[:, None, None], rows[:, :, None], cols[:, None, :]][:, None]  # n,1,h,w
    if c == 3:
        fg = PALETTE[y] + rng.normal(0, 25, (n, 3)).astype(np.float32)
        bg = rng.uniform(0, 255, (n, 3)).astype(np.float32) * 0.6
    else:
        fg = rng.uniform(150, 255, (n, 1)).astype(np.float32)
        bg = rng.uniform(0, 60, (n, 1)).astype(np.float32)
    img = bg[:, :, None, None] * (1 - m) + fg[:, :, None, None] * m
    img += rng.standard_normal((n, c, h, w), dtype=np.float32) * NOISE
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def images(spec: Spec, n: int, seed: int, split: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` balanced, shuffled images (uint8 N,C,H,W) and labels (int64), fixed by seed."""
    rng = np.random.default_rng([seed, split])
    y = rng.permutation(np.arange(n) % len(spec.classes)).astype(np.int64)
    masks = _class_masks(spec.shape[1], spec.shape[2])
    x = np.empty((n, *spec.shape), np.uint8)
    for start in range(0, n, CHUNK):
        x[start:start + CHUNK] = _chunk(rng, y[start:start + CHUNK], spec.shape, masks)
    return x, y


MOST = 200_000  # images per split: over 3x the real datasets', and memory stays < 1 GB


def generate(name: str, n: int, *, n_test: int | None = None, seed: int = 0) -> Arrays:
    """The arrays that :func:`write` puts on disk (``n_test`` defaults to n // 5)."""
    spec = catalog.get_spec(name)
    n_test = default_n_test(n) if n_test is None else n_test
    if not 10 <= n <= MOST or not 1 <= n_test <= MOST:
        raise ConfigError(f"--n must be 10 to {MOST:,} and --n-test 1 to {MOST:,} "
                          f"(got {n} and {n_test})")
    if not 0 <= seed < 2**32:
        raise ConfigError(f"--seed must be 0 to {2**32 - 1}, got {seed}")
    x_train, y_train = images(spec, n, seed, 0)
    x_test, y_test = images(spec, n_test, seed, 1)
    return Arrays(x_train, y_train, x_test, y_test, spec.classes)


def default_n_test(n: int) -> int:
    """The official train:test ratio is 5:1 for CIFAR-10 and 6:1 for FashionMNIST."""
    return max(10, n // 5)


# --- a Python 2 cPickle, protocol 2 --------------------------------------------------------

def _int(v: int) -> bytes:
    if 0 <= v < 256:
        return b"K" + bytes([v])
    if 0 <= v < 65536:
        return b"M" + struct.pack("<H", v)
    return b"J" + struct.pack("<i", v)


def _str(v: bytes) -> bytes:  # a Python 2 str: SHORT_BINSTRING or BINSTRING
    return (b"U" + bytes([len(v)]) if len(v) < 256 else b"T" + struct.pack("<I", len(v))) + v


def _tuple(items: tuple[Any, ...], out: bytearray) -> None:
    if not items:
        out += b")"
        return
    if len(items) <= 3:
        for item in items:
            _emit(item, out)
        out += bytes([0x84 + len(items)])  # TUPLE1..3
        return
    out += b"("
    for item in items:
        _emit(item, out)
    out += b"t"


def _batched(items: list[Any], out: bytearray, closer: bytes, width: int = 1) -> None:
    """MARK ... APPENDS/SETITEMS in groups of 1000 entries, as cPickle wrote them."""
    step = 1000 * width
    for start in range(0, len(items), step):
        out += b"("
        for item in items[start:start + step]:
            _emit(item, out)
        out += closer


def _array(a: np.ndarray, out: bytearray) -> None:
    """An ndarray as numpy 1.x under Python 2 pickled it: _reconstruct, then __setstate__."""
    if a.dtype != np.uint8:
        raise TypeError("only uint8 arrays occur in CIFAR-10 batches")
    out += b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n"
    _emit((0,), out)
    _emit(b"b", out)
    out += b"\x87R("  # TUPLE3, REDUCE, then MARK for the state tuple
    _emit(1, out)
    _emit(a.shape, out)
    out += b"cnumpy\ndtype\n"
    _emit(b"u1", out)
    _emit(0, out)
    _emit(1, out)
    out += b"\x87R("
    for item in (3, b"|", None, None, None, -1, -1, 0):
        _emit(item, out)
    out += b"tb\x89"  # dtype state and BUILD; is_fortran=False
    out += _str(np.ascontiguousarray(a).tobytes()) + b"tb"


def _emit(obj: Any, out: bytearray) -> None:
    if obj is None:
        out += b"N"
    elif isinstance(obj, bool):
        out += b"\x88" if obj else b"\x89"
    elif isinstance(obj, int):
        out += _int(obj)
    elif isinstance(obj, bytes):
        out += _str(obj)
    elif isinstance(obj, tuple):
        _tuple(obj, out)
    elif isinstance(obj, list):
        out += b"]"
        _batched(obj, out, b"e")
    elif isinstance(obj, dict):
        out += b"}"
        _batched([kv for pair in obj.items() for kv in pair], out, b"u", width=2)
    elif isinstance(obj, np.ndarray):
        _array(obj, out)
    else:
        raise TypeError(f"cannot write {type(obj).__name__} into a CIFAR-10 batch")


def py2_pickle(obj: Any) -> bytes:
    """``obj`` as Python 2's cPickle.dump(obj, f, 2) wrote it (without memo opcodes)."""
    out = bytearray(b"\x80\x02")
    _emit(obj, out)
    return bytes(out + b".")


# --- writers --------------------------------------------------------------------------------

def _cifar_python(folder: Path, data: Arrays, layout: Layout) -> None:
    parts = np.array_split(np.arange(data.y_train.shape[0]), len(layout.train))
    batches = [(f, data.x_train[i], data.y_train[i], f"training batch {k} of {len(parts)}")
               for k, (f, i) in enumerate(zip(layout.train, parts, strict=True), start=1)]
    batches.append((layout.test[0], data.x_test, data.y_test, "testing batch 1 of 1"))
    for fname, x, y, label in batches:
        record = {b"batch_label": label.encode(), b"labels": y.tolist(),
                  b"data": x.reshape(x.shape[0], -1),
                  b"filenames": [f"hw3_synthetic_{j:06d}.png".encode() for j in range(len(y))]}
        (folder / fname).write_bytes(py2_pickle(record))
    meta = {b"num_cases_per_batch": len(parts[0]), b"num_vis": 3 * 32 * 32,
            b"label_names": [c.encode() for c in data.classes]}
    (folder / layout.meta[0]).write_bytes(py2_pickle(meta))


def _cifar_records(x: np.ndarray, y: np.ndarray) -> bytes:
    return np.concatenate([y.astype(np.uint8)[:, None], x.reshape(x.shape[0], -1)], 1).tobytes()


def _cifar_binary(folder: Path, data: Arrays, layout: Layout) -> None:
    parts = np.array_split(np.arange(data.y_train.shape[0]), len(layout.train))
    for fname, idx in zip(layout.train, parts, strict=True):
        (folder / fname).write_bytes(_cifar_records(data.x_train[idx], data.y_train[idx]))
    (folder / layout.test[0]).write_bytes(_cifar_records(data.x_test, data.y_test))
    (folder / layout.meta[0]).write_text("".join(f"{c}\n" for c in data.classes) + "\n")


def idx_bytes(a: np.ndarray) -> bytes:
    """Uncompressed IDX: magic (0, 0, 0x08 ubyte, ndim), big-endian uint32 dims, data."""
    header = bytes([0, 0, 0x08, a.ndim]) + struct.pack(f">{a.ndim}I", *a.shape)
    return header + np.ascontiguousarray(a, dtype=np.uint8).tobytes()


def write_gzip(path: Path, payload: bytes) -> None:
    """gzip with a zero mtime and no name, so equal seeds give byte-equal files."""
    with path.open("wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw,
                                               mtime=0) as gz:
        gz.write(payload)


def _fashion_idx(folder: Path, data: Arrays, layout: Layout) -> None:
    for (images_file, labels_file), x, y in ((layout.train, data.x_train, data.y_train),
                                             (layout.test, data.x_test, data.y_test)):
        write_gzip(folder / images_file, idx_bytes(x[:, 0]))
        write_gzip(folder / labels_file, idx_bytes(y.astype(np.uint8)))


_WRITERS = {("cifar10", "python"): _cifar_python, ("cifar10", "binary"): _cifar_binary,
            ("fashion-mnist", "idx"): _fashion_idx}


def _marker_text(spec: Spec, layout: Layout, data: Arrays, seed: int) -> str:
    return (f"SYNTHETIC STAND-IN DATA, not the real {spec.name}.\n"
            f"Written by `hw3 data fake` (trainers.data.fake) in the official {layout.name} "
            "layout so that the real loaders can be exercised offline.\n"
            f"train: {data.y_train.shape[0]} images, test: {data.y_test.shape[0]}, "
            f"seed: {seed}.\n"
            "Each class is a fixed shape (and, for colour images, a fixed colour) under "
            "random shifts, backgrounds and noise: results on it show that code runs and "
            "learns, and say nothing about the real dataset.\n"
            f"Delete this folder and run `hw3 data fetch {spec.name}` to get the real files.\n")


def _check_not_real(folder: Path, layout: Layout, force: bool) -> None:
    real = [f for f in layout.files if (folder / f).exists()]
    if real and not (folder / MARKER).exists() and not force:
        raise ConfigError(f"{folder} holds real {layout.folder} files ({real[0]}, ...); "
                          "refusing to overwrite them with synthetic data (use --force)")


def write(name: str, data_dir: str | os.PathLike[str] | None, n: int, *,
          n_test: int | None = None, seed: int = 0, layout: str | None = None,
          force: bool = False) -> Path:
    """Write a synthetic ``name`` in ``layout`` under the data directory; return its folder."""
    spec = catalog.get_spec(name)
    lay = spec.layout(layout)
    folder = catalog.resolve_data_dir(data_dir) / lay.folder
    _check_not_real(folder, lay, force)
    data = generate(name, n, n_test=n_test, seed=seed)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MARKER).write_text(_marker_text(spec, lay, data, seed), encoding="utf-8")
    _WRITERS[(spec.name, lay.name)](folder, data, lay)
    return folder
