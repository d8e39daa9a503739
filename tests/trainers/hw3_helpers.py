"""Helpers for the hw3 host tests: a simulated third-party package that registers plugins.

A ``*.dist-info`` folder with an ``entry_points.txt`` on ``sys.path`` is exactly what an
installed package looks like to importlib.metadata, so discovery runs its real code path. The
environment switches off every other installed plugin (``HW3_PLUGINS``), as llm's tests do.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from trainers import registry

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


def write_dist(site: Path, name: str, plugins: Mapping[str, str], version: str = "0.1") -> None:
    """A fake installed distribution ``name`` declaring ``plugins`` (entry name -> value)."""
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    lines = "".join(f"{k} = {v}\n" for k, v in plugins.items())
    (info / "entry_points.txt").write_text(f"[hw3.trainers]\n{lines}")


@dataclass(frozen=True)
class Hw3Env:
    """Paths and variables of one isolated hw3 installation."""

    site: Path
    runs: Path
    defaults: Path
    env: dict[str, str]  # for subprocesses

    def subprocess_env(self) -> dict[str, str]:
        return {**os.environ, **self.env}


def make_env(root: Path, allow: str = "tenant") -> Hw3Env:
    site = root / "site"
    site.mkdir(parents=True, exist_ok=True)
    write_dist(site, "hw3-tenant", {"tenant": "tenant:plugin"})
    defaults = root / "plugins.toml"
    defaults.write_text("[tenant]\nenabled = true\nsteps = 5\n")
    path = os.pathsep.join([str(site), str(HERE), str(REPO)])
    env = {"HW3_PLUGINS": allow, "HW3_RUNS": str(root / "runs"),
           "HW3_PLUGINS_TOML": str(defaults), "HW3_DATA": str(root / "data"),
           "PYTHONPATH": path, "COLUMNS": "120"}
    return Hw3Env(site, root / "runs", defaults, env)


def install(found: Hw3Env, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in found.env.items():
        if key != "PYTHONPATH":
            monkeypatch.setenv(key, value)
    monkeypatch.syspath_prepend(str(found.site))
    monkeypatch.syspath_prepend(str(HERE))
    registry.reset()


def python() -> str:
    return sys.executable


@dataclass(frozen=True)
class PluginEnv:
    """One built-in plugin alone, with the repository's plugins.toml; runs and data in root."""

    plugin: str
    root: Path
    runs: Path
    data: Path

    def newest(self) -> Path:
        """The plugin's most recent run directory."""
        return max((self.runs / self.plugin).iterdir(), key=lambda p: p.stat().st_mtime_ns)


@contextmanager
def builtin_plugin(root: Path, plugin: str) -> Iterator[PluginEnv]:
    """Load only ``plugin`` (as a user's ``HW3_PLUGINS`` would), storing under ``root``."""
    found = PluginEnv(plugin, root, root / "runs", root / "data")
    with pytest.MonkeyPatch.context() as patch:
        for key, value in (("HW3_PLUGINS", plugin), ("HW3_RUNS", str(found.runs)),
                           ("HW3_PLUGINS_TOML", str(REPO / "plugins.toml")),
                           ("HW3_DATA", str(found.data)), ("COLUMNS", "120")):
            patch.setenv(key, value)
        registry.reset()
        yield found
    registry.reset()


def invoke(*args: str) -> Result:
    """``hw3 ARGS`` in this process; a bug (anything but SystemExit) is raised, not hidden."""
    from trainers.cli import app

    result = CliRunner().invoke(app, list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result
