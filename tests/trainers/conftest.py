"""Fixtures for the hw3 host tests (helpers live in hw3_helpers, importable by test files)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hw3_helpers import Hw3Env, install, make_env

from trainers import registry


@pytest.fixture
def hw3_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Hw3Env]:
    """The tenant plugin installed as a third-party package, in this process and in children."""
    found = make_env(tmp_path)
    install(found, monkeypatch)
    yield found
    registry.reset()
