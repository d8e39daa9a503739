"""The lock of a run directory: ``.lock`` held with ``flock`` and the holder's pid inside.

The kernel drops the lock when the process dies, so a lock left by a SIGKILLed run is seen as
stale (its pid no longer holds it) while a live run can never be written by a second process.
"""

from __future__ import annotations

import fcntl
import os
import socket
from pathlib import Path

from trainers.errors import RunError


class Lock:
    """An flock'ed lock file holding ``pid host``; free again when its process dies."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd: int | None = None
        self.stale_pid: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _pid_in(fd)
            os.close(fd)
            raise RunError(f"{self.path.parent} is in use by process {holder} "
                           "(two runs never write one directory)") from None
        self.stale_pid = _pid_in(fd)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {socket.gethostname()}\n".encode(), 0)
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            os.ftruncate(self.fd, 0)  # empty = free; never unlink a lock others may hold open
            os.close(self.fd)
            self.fd = None


def _pid_in(fd: int) -> int | None:
    text = os.pread(fd, 64, 0).decode("utf-8", "replace").split()
    return int(text[0]) if text and text[0].isdigit() else None


def lock_holder(path: Path) -> int | None:
    """The pid of the live process holding ``path``, or None if nobody holds it."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return _pid_in(fd) or -1
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
