"""Loaders on fake data in every layout: shapes, dtypes, round trips, damage, missing data."""

from __future__ import annotations

import gzip
import pickle
import pickletools
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from trainers.data import MARKER, SPECS, fake, load, resolve_data_dir
from trainers.errors import ConfigError, DatasetCorruptError, DatasetMissingError

LAYOUTS = [(name, lay.name) for name, spec in SPECS.items() for lay in spec.layouts]
"""Every (dataset, layout) pair in the registry: a new layout is tested without new code."""


@pytest.mark.parametrize(("name", "layout"), LAYOUTS)
def test_shapes_dtypes_labels_and_marker(name: str, layout: str,
                                         write_fake: Callable[..., Path], root: Path) -> None:
    write_fake(name, layout, n=53)
    ds = load(name, root, layout)
    spec = SPECS[name]
    assert ds.train.x.shape == (53, *spec.shape) and ds.test.x.shape == (10, *spec.shape)
    assert ds.train.x.dtype == torch.uint8 and ds.train.y.dtype == torch.int64
    assert ds.train.x.is_contiguous() and ds.test.y.shape == (10,)
    assert set(ds.train.y.tolist()) == set(range(10))
    assert ds.classes == spec.classes and ds.layout == layout
    assert ds.synthetic is True and "SYNTHETIC" in ds.summary
    assert len(ds.sources) == len(spec.layout(layout).files)
    assert all(p.is_file() for p in ds.sources)


@pytest.mark.parametrize(("name", "layout"), LAYOUTS)
def test_round_trip_equals_generated(name: str, layout: str,
                                     write_fake: Callable[..., Path], root: Path) -> None:
    write_fake(name, layout, n=47, seed=5, n_test=13)
    expected = fake.generate(name, 47, n_test=13, seed=5)
    ds = load(name, root, layout)
    np.testing.assert_array_equal(ds.train.x.numpy(), expected.x_train)
    np.testing.assert_array_equal(ds.train.y.numpy(), expected.y_train)
    np.testing.assert_array_equal(ds.test.x.numpy(), expected.x_test)
    np.testing.assert_array_equal(ds.test.y.numpy(), expected.y_test)


def test_both_cifar_layouts_read_the_same_images(write_fake: Callable[..., Path],
                                                 root: Path) -> None:
    write_fake("cifar10", "python", seed=2)
    write_fake("cifar10", "binary", seed=2)
    a, b = load("cifar10", root, "python"), load("cifar10", root, "binary")
    assert torch.equal(a.train.x, b.train.x) and torch.equal(a.test.y, b.test.y)


@pytest.mark.parametrize(("name", "layout"), LAYOUTS)
def test_writers_are_deterministic(name: str, layout: str, tmp_path: Path) -> None:
    paths = [fake.write(name, tmp_path / str(s), 30, seed=s // 2, layout=layout) for s in (0, 1, 2)]
    files = SPECS[name].layout(layout).files
    same = [(paths[0] / f).read_bytes() == (paths[1] / f).read_bytes() for f in files]
    differ = [(paths[0] / f).read_bytes() != (paths[2] / f).read_bytes() for f in files]
    assert all(same)
    assert differ[0]  # a different seed changes the images


def test_real_data_reports_not_synthetic(write_fake: Callable[..., Path], root: Path) -> None:
    (write_fake("cifar10", "binary") / MARKER).unlink()
    assert load("cifar10", root).synthetic is False


def test_python_batches_match_the_official_pickle_format(write_fake: Callable[..., Path]) -> None:
    """The recipe on the CIFAR-10 page (pickle.load with encoding='bytes') reads our files,
    and they name exactly the globals that the Python 2 originals name."""
    folder = write_fake("cifar10", "python", n=20)
    raw = (folder / "data_batch_1").read_bytes()
    batch = pickle.loads(raw, encoding="bytes")
    assert set(batch) == {b"batch_label", b"labels", b"data", b"filenames"}
    assert batch[b"data"].dtype == np.uint8 and batch[b"data"].shape == (4, 3072)
    ops = list(pickletools.genops(raw))
    assert ops[0][0].name == "PROTO" and ops[0][1] == 2
    assert {arg for op, arg, _ in ops if op.name == "GLOBAL"} == {
        "numpy.core.multiarray _reconstruct", "numpy ndarray", "numpy dtype"}
    meta = pickle.loads((folder / "batches.meta").read_bytes(), encoding="bytes")
    assert meta[b"label_names"][0] == b"airplane" and meta[b"num_vis"] == 3072


def test_binary_and_idx_headers_are_official(write_fake: Callable[..., Path]) -> None:
    bin_folder = write_fake("cifar10", "binary", n=20)
    assert (bin_folder / "test_batch.bin").stat().st_size == 10 * 3073
    idx = write_fake("fashion-mnist", "idx", n=20)
    head = gzip.decompress((idx / "train-images-idx3-ubyte.gz").read_bytes())[:16]
    assert head == bytes([0, 0, 8, 3]) + (20).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2
    labels = gzip.decompress((idx / "t10k-labels-idx1-ubyte.gz").read_bytes())
    assert labels[:8] == bytes([0, 0, 8, 1]) + (10).to_bytes(4, "big") and len(labels) == 18


# --- damaged files ---------------------------------------------------------------------------

DAMAGE = {
    ("cifar10", "python"): "data_batch_3",
    ("cifar10", "binary"): "data_batch_3.bin",
    ("fashion-mnist", "idx"): "train-images-idx3-ubyte.gz",
}


@pytest.mark.parametrize(("name", "layout"), LAYOUTS)
def test_truncated_file_names_itself(name: str, layout: str,
                                     write_fake: Callable[..., Path], root: Path) -> None:
    path = write_fake(name, layout) / DAMAGE[(name, layout)]
    path.write_bytes(path.read_bytes()[:-700])
    with pytest.raises(DatasetCorruptError, match=re.escape(str(path))):
        load(name, root, layout)


@pytest.mark.parametrize(("name", "layout"), LAYOUTS)
def test_garbage_file_names_itself(name: str, layout: str,
                                   write_fake: Callable[..., Path], root: Path) -> None:
    path = write_fake(name, layout) / DAMAGE[(name, layout)]
    path.write_bytes(b"this is not a dataset\n" * 3)
    with pytest.raises(DatasetCorruptError, match=re.escape(str(path))):
        load(name, root, layout)


def _idx_gz(path: Path, header: bytes, body: bytes) -> None:
    fake.write_gzip(path, header + body)


@pytest.mark.parametrize(("header", "body", "why"), [
    (bytes([0, 0, 0x0D, 3]) + (20).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2,
     bytes(20 * 784 * 4), "type 0x0d"),
    (bytes([0, 0, 8, 2]) + (20).to_bytes(4, "big") + (784).to_bytes(4, "big"),
     bytes(20 * 784), "2 dimensions"),
    (bytes([0, 0, 8, 3]) + (20).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2,
     bytes(20 * 784 + 1), "promises"),
    (bytes([0, 0, 8, 3]) + (20).to_bytes(4, "big") + (32).to_bytes(4, "big") * 2,
     bytes(20 * 1024), "not 28 x 28"),
    (bytes([1, 2, 8, 3]), b"", "magic"),
])
def test_idx_header_checks(header: bytes, body: bytes, why: str,
                           write_fake: Callable[..., Path], root: Path) -> None:
    path = write_fake("fashion-mnist", "idx", n=20) / "train-images-idx3-ubyte.gz"
    _idx_gz(path, header, body)
    with pytest.raises(DatasetCorruptError, match=why):
        load("fashion-mnist", root)


def test_label_count_and_range_are_checked(write_fake: Callable[..., Path], root: Path) -> None:
    folder = write_fake("fashion-mnist", "idx", n=20)
    labels = folder / "train-labels-idx1-ubyte.gz"
    _idx_gz(labels, bytes([0, 0, 8, 1]) + (19).to_bytes(4, "big"), bytes(19))
    with pytest.raises(DatasetCorruptError, match="19 labels for 20 images"):
        load("fashion-mnist", root)
    _idx_gz(labels, bytes([0, 0, 8, 1]) + (20).to_bytes(4, "big"), bytes([10] * 20))
    with pytest.raises(DatasetCorruptError, match="labels outside"):
        load("fashion-mnist", root)
    binary = write_fake("cifar10", "binary", n=20) / "test_batch.bin"
    binary.write_bytes(bytes([11]) + bytes(3072))
    with pytest.raises(DatasetCorruptError, match=r"test_batch\.bin: labels outside"):
        load("cifar10", root, "binary")


# --- missing data and the data directory -----------------------------------------------------

def test_missing_message_names_dir_files_and_commands(root: Path) -> None:
    with pytest.raises(DatasetMissingError) as info:
        load("cifar10", root)
    msg = str(info.value)
    assert "\n" not in msg
    assert str(root / "cifar-10-batches-py") in msg and str(root / "cifar-10-batches-bin") in msg
    assert "data_batch_1, " in msg and "test_batch.bin" in msg and "batches.meta" in msg
    assert f"hw3 data fetch cifar10 --data-dir {root}" in msg
    assert "hw3 data fake cifar10 --n N" in msg and "internet" in msg


def test_missing_message_lists_only_the_missing_files(write_fake: Callable[..., Path],
                                                      root: Path) -> None:
    (write_fake("fashion-mnist", "idx") / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DatasetMissingError, match=r"\(missing: t10k-labels-idx1-ubyte.gz\)"):
        load("fashion-mnist", root)


def test_default_dir_message_has_no_data_dir_flag(isolated_env: Path) -> None:
    with pytest.raises(DatasetMissingError) as info:
        load("fashion-mnist")
    msg = str(info.value)
    assert str(isolated_env / ".cache" / "hw3" / "fashion-mnist") in msg
    assert "`hw3 data fetch fashion-mnist`" in msg and "--data-dir" not in msg


def test_layout_is_chosen_from_what_is_there(write_fake: Callable[..., Path], root: Path) -> None:
    write_fake("cifar10", "binary")
    assert load("cifar10", root).layout == "binary"
    with pytest.raises(DatasetMissingError, match="cifar-10-batches-py"):
        load("cifar10", root, "python")


def test_unknown_names_list_the_known_ones(root: Path) -> None:
    with pytest.raises(ConfigError, match="known: cifar10, fashion-mnist"):
        load("mnist", root)
    with pytest.raises(ConfigError, match="known: python, binary"):
        load("cifar10", root, "matlab")


def test_data_dir_precedence(tmp_path: Path, isolated_env: Path,
                             monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_data_dir(None) == isolated_env / ".cache" / "hw3"
    monkeypatch.setenv("HW3_DATA", str(tmp_path / "env"))
    assert resolve_data_dir(None) == tmp_path / "env"
    assert resolve_data_dir(tmp_path / "flag") == tmp_path / "flag"
    assert resolve_data_dir("~/x") == isolated_env / "x"


def test_env_dir_is_used_by_load(write_fake: Callable[..., Path], root: Path,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    write_fake("fashion-mnist", "idx", n=20)
    monkeypatch.setenv("HW3_DATA", str(root))
    assert len(load("fashion-mnist").train) == 20


def test_fake_refuses_to_overwrite_real_data(write_fake: Callable[..., Path]) -> None:
    folder = write_fake("cifar10", "binary")
    (folder / MARKER).unlink()
    with pytest.raises(ConfigError, match="refusing to overwrite"):
        write_fake("cifar10", "binary")
    write_fake("cifar10", "binary", force=True)
    assert (folder / MARKER).is_file()


def test_fake_rejects_tiny_n(root: Path) -> None:
    with pytest.raises(ConfigError, match="--n must be 10 to"):
        fake.write("cifar10", root, 5)
