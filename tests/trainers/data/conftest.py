"""Fixtures for the dataset tests: an isolated home and data directory, and fake datasets."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from trainers.data import fake


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No test reads the real ~/.cache/hw3 or a $HW3_DATA set by the caller."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("HW3_DATA", raising=False)
    return home


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path


@pytest.fixture
def write_fake(root: Path) -> Callable[..., Path]:
    """``write_fake(name, layout, n=60, seed=0)`` writes a fake dataset under ``root``."""

    def write(name: str, layout: str, n: int = 60, seed: int = 0, **kw: object) -> Path:
        return fake.write(name, root, n, seed=seed, layout=layout, **kw)  # type: ignore[arg-type]

    return write
