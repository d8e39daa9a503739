"""fetch: checksums, safe extraction, offline messages. No test touches the network: downloads
come from file:// URLs, and the offline case replaces urlopen."""

from __future__ import annotations

import hashlib
import io
import re
import tarfile
import urllib.error
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from trainers.data import MARKER, SPECS, fake, fetch, load
from trainers.errors import FetchError

LAYOUTS = [(name, lay.name) for name, spec in SPECS.items() for lay in spec.layouts]


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()


def _publish(name: str, layout: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
             seed: int = 7) -> None:
    """Serve a marker-less fake dataset as file:// sources shaped like the official ones."""
    folder = fake.write(name, tmp_path / "upstream", 40, seed=seed, layout=layout)
    (folder / MARKER).unlink()
    sources = []
    for real in fetch.SOURCES[(name, layout)]:
        if real.is_tar:
            archive = tmp_path / real.filename
            with tarfile.open(archive, "w:gz") as tar:
                tar.add(folder, arcname=folder.name)
        else:
            archive = folder / real.filename
        sources.append(fetch.Source(archive.as_uri(), real.filename, _md5(archive)))
    monkeypatch.setitem(fetch.SOURCES, (name, layout), tuple(sources))


def _no_network(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    asked: list[str] = []

    def offline(url: str, timeout: float = 0) -> None:
        asked.append(url)
        raise urllib.error.URLError(OSError(101, "Network is unreachable"))

    monkeypatch.setattr(fetch.urllib.request, "urlopen", offline)
    return asked


@pytest.mark.parametrize(("name", "layout"), LAYOUTS)
def test_fetch_downloads_verifies_and_installs(name: str, layout: str, tmp_path: Path,
                                               root: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    _publish(name, layout, tmp_path, monkeypatch)
    seen: list[str] = []
    folder = fetch.fetch(name, root, layout, progress=lambda f, done, total: seen.append(f))
    ds = load(name, root, layout)
    assert folder == root / SPECS[name].layout(layout).folder
    assert ds.synthetic is False
    np.testing.assert_array_equal(ds.train.x.numpy(), fake.generate(name, 40, seed=7).x_train)
    assert set(seen) == {s.filename for s in fetch.SOURCES[(name, layout)]}
    assert [p.name for p in root.iterdir()] == [folder.name]  # no temp files left


def test_fetch_replaces_synthetic_data(tmp_path: Path, root: Path,
                                       write_fake: Callable[..., Path],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    write_fake("cifar10", "python", seed=1)
    assert load("cifar10", root).synthetic
    _publish("cifar10", "python", tmp_path, monkeypatch)
    fetch.fetch("cifar10", root)
    assert not load("cifar10", root).synthetic


def test_fetch_keeps_real_data_without_downloading(root: Path, write_fake: Callable[..., Path],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    (write_fake("fashion-mnist", "idx") / MARKER).unlink()
    asked = _no_network(monkeypatch)
    assert fetch.fetch("fashion-mnist", root).is_dir()
    assert asked == []


def test_bad_checksum_installs_nothing(tmp_path: Path, root: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    _publish("cifar10", "binary", tmp_path, monkeypatch)
    (good,) = fetch.SOURCES[("cifar10", "binary")]
    monkeypatch.setitem(fetch.SOURCES, ("cifar10", "binary"),
                        (fetch.Source(good.url, good.filename, "0" * 32),))
    with pytest.raises(FetchError, match=r"differs from the published 0{32}"):
        fetch.fetch("cifar10", root, "binary")
    assert list(root.iterdir()) == []


def test_offline_message(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    asked = _no_network(monkeypatch)
    with pytest.raises(FetchError) as info:
        fetch.fetch("cifar10", root)
    msg = str(info.value)
    assert asked == ["https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"]
    assert "\n" not in msg and "needs the internet" in msg
    assert str(root / "cifar-10-batches-py") in msg and "data_batch_1" in msg
    assert "hw3 data fake cifar10" in msg
    assert list(root.iterdir()) == []


def test_sources_cover_every_layout_with_published_md5s() -> None:
    for name, spec in SPECS.items():
        for lay in spec.layouts:
            sources = fetch.SOURCES[(name, lay.name)]
            assert all(re.fullmatch(r"[0-9a-f]{32}", s.md5) for s in sources)
            if not sources[0].is_tar:
                assert {s.filename for s in sources} == set(lay.files)
    assert fetch.SOURCES[("cifar10", "python")][0].md5 == "c58f30108f718f92721af3b95e74349a"


# --- hostile archives ------------------------------------------------------------------------

def _member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "",
            data: bytes = b"pwned") -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    return info, data


HOSTILE = {
    "absolute": [_member("/tmp/hw3-evil-absolute")],
    "dotdot": [_member("../evil")],
    "nested_dotdot": [_member("cifar-10-batches-py/../../evil")],
    "symlink_out": [_member("cifar-10-batches-py/link", tarfile.SYMTYPE, "../../")],
    "symlink_then_write": [_member("cifar-10-batches-py/link", tarfile.SYMTYPE, ".."),
                           _member("cifar-10-batches-py/link/evil")],
    "hardlink": [_member("cifar-10-batches-py/h", tarfile.LNKTYPE, "/etc/passwd")],
    "char_device": [_member("cifar-10-batches-py/dev", tarfile.CHRTYPE)],
    "fifo": [_member("cifar-10-batches-py/fifo", tarfile.FIFOTYPE)],
}


def _tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes]]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if info.isfile() else None)
    return path


@pytest.mark.parametrize("kind", list(HOSTILE))
def test_hostile_tar_is_refused(kind: str, tmp_path: Path) -> None:
    dest = tmp_path / "a" / "b"
    dest.mkdir(parents=True)
    archive = _tar(tmp_path / "evil.tar.gz", HOSTILE[kind])
    with pytest.raises(FetchError, match=r"evil\.tar\.gz: cannot extract safely \(unsafe"):
        fetch.safe_extract(archive, dest)
    assert list(dest.iterdir()) == []
    assert not (tmp_path / "evil").exists() and not (tmp_path / "a" / "evil").exists()
    assert not Path("/tmp/hw3-evil-absolute").exists()


def test_hostile_tar_through_fetch_installs_nothing(tmp_path: Path, root: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    archive = _tar(tmp_path / "cifar-10-python.tar.gz", HOSTILE["nested_dotdot"])
    monkeypatch.setitem(fetch.SOURCES, ("cifar10", "python"), (
        fetch.Source(archive.as_uri(), archive.name, _md5(archive)),))
    with pytest.raises(FetchError, match="unsafe member"):
        fetch.fetch("cifar10", root)
    assert list(root.iterdir()) == [] and not (tmp_path / "evil").exists()


def test_archive_without_the_dataset_installs_nothing(tmp_path: Path, root: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    archive = _tar(tmp_path / "cifar-10-python.tar.gz", [_member("readme.html")])
    monkeypatch.setitem(fetch.SOURCES, ("cifar10", "python"), (
        fetch.Source(archive.as_uri(), archive.name, _md5(archive)),))
    with pytest.raises(FetchError, match="lacks cifar-10-batches-py/data_batch_1"):
        fetch.fetch("cifar10", root)
    assert list(root.iterdir()) == []


def test_corrupt_archive_is_a_fetch_error(tmp_path: Path) -> None:
    archive = tmp_path / "broken.tar.gz"
    archive.write_bytes(b"\x1f\x8b\x08\x00" + b"\x00" * 20)
    with pytest.raises(FetchError, match=r"broken\.tar\.gz"):
        fetch.safe_extract(archive, tmp_path)
