"""The restricted unpickler: planted pickles raise DatasetCorruptError and execute nothing."""

from __future__ import annotations

import io
import os
import pickle
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from trainers.data import cifar10, fake, load
from trainers.errors import DatasetCorruptError


class _Touch:
    """Unpickling this with plain pickle runs ``touch MARKER`` through os.system."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.system, (f"touch '{self.marker}'",)


def _payloads(marker: Path) -> dict[str, bytes]:
    evil = _Touch(marker)
    cmd = f"touch '{marker}'".encode()
    # A batch-shaped dict, as the official files start, whose labels list calls os.system.
    hidden = (b"\x80\x02}(U\x06labels](cos\nsystem\nU" + bytes([len(cmd)]) + cmd
              + b"\x85ReU\x04data" + fake.py2_pickle(np.zeros((1, 3072), np.uint8))[2:-1]
              + b"u.")
    return {
        "proto0": pickle.dumps(evil, protocol=0),
        "proto2": pickle.dumps(evil, protocol=2),
        "proto4_stack_global": pickle.dumps(evil, protocol=4),
        "inside_a_valid_batch": hidden,
        "builtins_eval": b"cbuiltins\neval\n(V__import__('os').system('touch "
                         + str(marker).encode() + b"')\ntR.",
    }


KINDS = list(_payloads(Path("/nonexistent")))


@pytest.mark.parametrize("kind", KINDS)
def test_the_payloads_are_real(kind: str, tmp_path: Path) -> None:
    """Unrestricted pickle would run each payload: the refusal below is what stops it."""
    marker = tmp_path / "ran"
    pickle.loads(_payloads(marker)[kind], encoding="bytes")
    assert marker.exists()


@pytest.mark.parametrize("kind", KINDS)
def test_malicious_batch_is_refused_and_not_run(kind: str, tmp_path: Path, root: Path,
                                                write_fake: Callable[..., Path]) -> None:
    marker = tmp_path / "pwned"
    batch = write_fake("cifar10", "python") / "data_batch_1"
    batch.write_bytes(_payloads(marker)[kind])
    with pytest.raises(DatasetCorruptError, match=re.escape(str(batch))) as info:
        load("cifar10", root, "python")
    assert "refusing global" in str(info.value)
    assert not marker.exists()


def test_malicious_meta_is_refused(tmp_path: Path, root: Path,
                                   write_fake: Callable[..., Path]) -> None:
    meta = write_fake("cifar10", "python") / "batches.meta"
    meta.write_bytes(pickle.dumps(_Touch(tmp_path / "pwned"), protocol=2))
    with pytest.raises(DatasetCorruptError, match=r"batches\.meta"):
        load("cifar10", root, "python")
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("global_name", ["numpy load", "numpy frombuffer", "os system",
                                         "numpy.core.multiarray scalar", "builtins getattr",
                                         "copyreg _reconstructor", "_codecs encode"])
def test_only_the_three_official_globals_resolve(global_name: str) -> None:
    module, name = global_name.split()
    unpickler = cifar10.BatchUnpickler(io.BytesIO(b""))
    with pytest.raises(pickle.UnpicklingError, match="refusing global"):
        unpickler.find_class(module, name)
    for module, name in (("numpy.core.multiarray", "_reconstruct"), ("numpy", "ndarray"),
                         ("numpy", "dtype")):
        assert callable(unpickler.find_class(module, name))


def test_python3_pickles_of_batches_are_refused(tmp_path: Path) -> None:
    """A protocol-2 pickle written by Python 3 names _codecs.encode for its bytes: not in
    the official files, so refused rather than trusted."""
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({b"data": b"x", b"labels": [1]}, protocol=2))
    with pytest.raises(DatasetCorruptError, match=r"_codecs\.encode"):
        cifar10.unpickle(path)


@pytest.mark.parametrize(("record", "why"), [
    ([1, 2], "expected a dict"),
    ({b"data": np.zeros((2, 3072), np.uint8)}, "expected a dict"),
    ({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}, "uint8 N x 3072"),
    ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}, "1 labels for 2 images"),
    ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, b"x"]}, "list of ints"),
    ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 10]}, "labels outside"),
])
def test_batch_structure_is_checked(record: object, why: str, tmp_path: Path) -> None:
    path = tmp_path / "data_batch_1"
    path.write_bytes(fake.py2_pickle(record))
    with pytest.raises(DatasetCorruptError, match=why):
        cifar10._python_batch(path)
