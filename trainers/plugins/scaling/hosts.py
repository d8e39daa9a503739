"""Cluster files for real hosts, and the TF_CONFIG every worker gets (no framework).

Without a cluster file the plugin starts every worker itself on free ports of 127.0.0.1. On
a real cluster it cannot start processes on other machines, so each host runs the same
command with its own place in the file, as TensorFlow's multi-worker model expects::

    # hosts.toml: the task index is the position; workers[0] is the chief
    workers = ["node0.example.org:2222", "node1.example.org:2222"]

    node0$ hw3 run scaling --cluster hosts.toml --task 0    # chief: all jobs, stores results
    node1$ hw3 run scaling --cluster hosts.toml --task 1    # worker of the multi-worker jobs

A multi-worker job on ``k`` nodes uses the first ``k`` entries; each host starts one worker
process per such job with ``TF_CONFIG`` naming those entries and its own index, and the
process listens on its entry's port. Single-node jobs run on the chief only.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainers.errors import ConfigError

EXAMPLE = 'workers = ["node0:2222", "node1:2222"]'


@dataclass(frozen=True)
class ClusterFile:
    """The workers a cluster file lists and which of them this host is."""

    path: str
    workers: tuple[str, ...]
    task: int

    @property
    def chief(self) -> bool:
        return self.task == 0


def read(path: str, task: int) -> ClusterFile:
    """The checked cluster file; a :class:`ConfigError` naming the file and the problem."""
    doc = _load(Path(path))
    unknown = sorted(set(doc) - {"workers"})
    if unknown:
        raise _error(path, f"unknown key {unknown[0]!r} (the file holds only {EXAMPLE})")
    entries = doc.get("workers")
    if not isinstance(entries, list) or not entries:
        raise _error(path, f"expected {EXAMPLE} (a non-empty list of host:port strings), got "
                           f"{'no workers key' if entries is None else repr(entries)}")
    workers = tuple(address(e, f"workers[{i}]", path) for i, e in enumerate(entries))
    for i, w in enumerate(workers):
        if w in workers[:i]:
            raise _error(path, f"workers[{i}] = {w!r} is listed twice")
    if not 0 <= task < len(workers):
        raise _error(path, f"it lists {len(workers)} worker(s); --task {task} must be "
                           f"between 0 and {len(workers) - 1}")
    return ClusterFile(path, workers, task)


def _load(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise _error(path, "no such file") from None
    except IsADirectoryError:
        raise _error(path, "is a directory, not a TOML file") from None
    except tomllib.TOMLDecodeError as exc:
        raise _error(path, f"invalid TOML: {exc}") from None


def address(entry: Any, where: str, path: str | Path) -> str:
    """``host:port`` checked (port 1-65535; an IPv6 host in brackets)."""
    host, sep, port = entry.rpartition(":") if isinstance(entry, str) else ("", "", "")
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    ok = (bool(sep and bare and port.isdigit()) and 0 < int(port) < 65536
          and not any(c.isspace() or c in "/@[]" for c in bare)
          and (":" not in bare or bare != host))
    if not ok:
        raise _error(path, f"{where} = {entry!r}: expected host:port with a port in 1-65535")
    return str(entry)


def _error(path: str | Path, problem: str) -> ConfigError:
    return ConfigError(f"cluster file {path}: {problem}")


def tf_config(workers: Sequence[str], index: int) -> str:
    """TF_CONFIG of worker ``index`` in the cluster of ``workers`` (host:port each)."""
    if not 0 <= index < len(workers):
        raise ValueError(f"task {index} is not in a cluster of {len(workers)} workers")
    return json.dumps({"cluster": {"worker": list(workers)},
                       "task": {"type": "worker", "index": index}})


def local_workers(ports: Sequence[int]) -> list[str]:
    """Addresses of workers this machine starts itself."""
    return [f"127.0.0.1:{p}" for p in ports]
