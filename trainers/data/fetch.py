"""Download the official dataset files, check their published MD5s, extract them safely.

Everything lands in a temporary folder inside the data directory first and replaces the
dataset folder only once complete and verified, so an interrupted or tampered download never
leaves half a dataset behind. An archive is first read through once, bounded: its compressed
stream must be intact (checksums included) and decompress to at most ``MAX_ARCHIVE_BYTES``.
Tar members are checked before extraction (no absolute paths, no '..', nothing but regular
non-sparse files and folders, at most ``MAX_MEMBERS`` of them, ``MAX_ARCHIVE_BYTES`` in all)
and extracted with tarfile's ``data`` filter.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import http.client
import lzma
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from trainers.data import catalog
from trainers.data.catalog import MARKER, Layout, Spec
from trainers.errors import FetchError

Progress = Callable[[str, int, int | None], None]
"""``progress(filename, bytes_so_far, total_or_None)``."""

TIMEOUT_S = 60
MAX_ARCHIVE_BYTES = 1 << 30  # decompressed; the CIFAR-10 archives hold under 200 MB
MAX_MEMBERS = 10_000  # the CIFAR-10 archives hold 8
CHUNK = 1 << 20
STREAM_ERRORS = (OSError, EOFError, zlib.error, lzma.LZMAError, tarfile.TarError)


@dataclass(frozen=True)
class Source:
    """One published file: where it lives, its name on disk, its MD5 as published."""

    url: str
    filename: str
    md5: str

    @property
    def is_tar(self) -> bool:
        return self.filename.endswith((".tar.gz", ".tgz"))


_TORONTO = "https://www.cs.toronto.edu/~kriz/"
_ZALANDO = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"  # http only; MD5 checked

SOURCES: dict[tuple[str, str], tuple[Source, ...]] = {
    ("cifar10", "python"): (Source(_TORONTO + "cifar-10-python.tar.gz", "cifar-10-python.tar.gz",
                                   "c58f30108f718f92721af3b95e74349a"),),
    ("cifar10", "binary"): (Source(_TORONTO + "cifar-10-binary.tar.gz", "cifar-10-binary.tar.gz",
                                   "c32a1d4ab5d03f1284b67883e8d87530"),),
    ("fashion-mnist", "idx"): tuple(
        Source(_ZALANDO + f, f, md5) for f, md5 in (
            ("train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
            ("train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe"),
            ("t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79"),
            ("t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310"))),
}


def _by_hand(spec: Spec, layout: Layout, root: Path) -> str:
    sources = SOURCES[(spec.name, layout.name)]
    origin = f" (from {sources[0].filename})" if sources[0].is_tar else ""
    return (f"offline, put {', '.join(layout.files)}{origin} into {root / layout.folder} "
            f"by hand, or run `hw3 data fake {spec.name} --n N` for synthetic stand-in data")


def download(source: Source, dest: Path, progress: Progress | None = None) -> None:
    """Stream ``source`` to ``dest`` while hashing; FetchError if unreachable or altered."""
    md5 = hashlib.md5(usedforsecurity=False)
    try:
        with urllib.request.urlopen(source.url, timeout=TIMEOUT_S) as resp, \
                dest.open("wb") as out:
            total = resp.headers.get("Content-Length")
            done = 0
            while chunk := resp.read(1 << 20):
                md5.update(chunk)
                out.write(chunk)
                done += len(chunk)
                if progress:
                    progress(source.filename, done, int(total) if total else None)
    except urllib.error.HTTPError as exc:
        raise FetchError(f"{source.url}: server answered {exc.code} {exc.reason}") from exc
    except urllib.error.URLError as exc:
        raise FetchError(f"cannot download {source.url} ({exc.reason}): fetching needs the "
                         "internet") from exc
    except (TimeoutError, ConnectionError, http.client.HTTPException) as exc:
        raise FetchError(f"download of {source.url} broke off ({exc!r})") from exc
    if md5.hexdigest() != source.md5:
        raise FetchError(f"{source.url}: MD5 {md5.hexdigest()} differs from the published "
                         f"{source.md5}; the download is damaged or not the official file")


def _unsafe(member: tarfile.TarInfo, dest: Path) -> str | None:
    """Why ``member`` must not be extracted into ``dest``, or None if it is harmless."""
    name = PurePosixPath(member.name)
    drive = bool(name.parts) and ":" in name.parts[0]
    if name.is_absolute() or member.name.startswith(("/", "\\")) or drive:
        return "absolute path"
    if ".." in name.parts:
        return "'..' in its path"
    if not (member.isfile() or member.isdir()):
        return "only regular files and folders are allowed, not links or devices"
    if not (dest / member.name).resolve().is_relative_to(dest.resolve()):
        return f"lands outside {dest}"
    return None


def _check_stream(archive: Path, limit: int = MAX_ARCHIVE_BYTES) -> None:
    """Read the whole compressed stream once, in chunks: it must be intact (gzip's CRC and
    length, xz's and bz2's checks) and decompress to at most ``limit`` bytes."""
    with archive.open("rb") as fh:
        magic = fh.read(6)
    opener = gzip.open if magic.startswith(b"\x1f\x8b") else \
        bz2.open if magic.startswith(b"BZh") else \
        lzma.open if magic.startswith(b"\xfd7zXZ\x00") else None
    if opener is None:  # an uncompressed tar: its size on disk is its size
        if archive.stat().st_size > limit:
            raise FetchError(f"{archive}: larger than {limit:,} bytes; refused")
        return
    total = 0
    with opener(archive, "rb") as stream:
        while chunk := stream.read(CHUNK):
            total += len(chunk)
            if total > limit:
                raise FetchError(f"{archive}: decompresses to more than {limit:,} bytes; "
                                 "refused")


def safe_extract(archive: Path, dest: Path, limit: int = MAX_ARCHIVE_BYTES) -> None:
    """Extract ``archive`` into ``dest`` after checking its stream and every member;
    FetchError otherwise, before anything is written."""
    try:
        _check_stream(archive, limit)
        with tarfile.open(archive, "r:*") as tar:
            members, total = [], 0
            for member in tar:
                members.append(member)
                total += member.size
                reason = _unsafe(member, dest) or (
                    "a sparse file" if member.issparse() else None)
                if reason:
                    raise FetchError(f"{archive}: cannot extract safely (unsafe member "
                                     f"{member.name!r}: {reason})")
                if len(members) > MAX_MEMBERS or total > limit:
                    raise FetchError(f"{archive}: more than {MAX_MEMBERS:,} members or "
                                     f"{limit:,} bytes; refused")
            if hasattr(tarfile, "data_filter"):
                tar.extractall(dest, members=members, filter="data")
            else:  # pragma: no cover - Pythons before 3.11.4; the checks above still hold
                tar.extractall(dest, members=members)
    except STREAM_ERRORS as exc:
        raise FetchError(f"{archive}: cannot extract safely "
                         f"({type(exc).__name__}: {' '.join(str(exc).split())})") from None


def _install(out: Path, layout: Layout, folder: Path) -> None:
    """Replace ``folder`` by the verified copy in ``out`` (a stale synthetic one included)."""
    missing = catalog.missing_files(out, layout)
    if missing:
        raise FetchError(f"the download lacks {layout.folder}/{missing[0]}; nothing installed")
    staged = out / layout.folder
    (staged / MARKER).unlink(missing_ok=True)
    if folder.exists():
        old = folder.with_name(f".{folder.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        folder.rename(old)
        shutil.rmtree(old)
    staged.rename(folder)


def _already_there(root: Path, layout: Layout) -> bool:
    return not catalog.missing_files(root, layout) and not catalog.is_synthetic(root, layout)


def fetch(name: str, data_dir: str | os.PathLike[str] | None = None, layout: str | None = None,
          *, progress: Progress | None = None, force: bool = False) -> Path:
    """Download, verify and extract dataset ``name``; return its folder.

    Real data already in place is kept unless ``force``; synthetic data is replaced.
    """
    spec = catalog.get_spec(name)
    lay = spec.layout(layout)
    root = catalog.resolve_data_dir(data_dir)
    folder = root / lay.folder
    if _already_there(root, lay) and not force:
        return folder
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".hw3-fetch-", dir=root) as tmp:
        work = Path(tmp)
        out = work / "out"
        (out / lay.folder).mkdir(parents=True)
        for source in SOURCES[(spec.name, lay.name)]:
            target = work / source.filename if source.is_tar else out / lay.folder / source.filename
            try:
                download(source, target, progress)
            except FetchError as exc:
                raise FetchError(f"{exc}; {_by_hand(spec, lay, root)}") from exc
            if source.is_tar:
                safe_extract(target, out)
        _install(out, lay, folder)
    return folder
