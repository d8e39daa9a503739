"""Shared test options: golden files are compared, and rewritten only on request."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--overwrite-golden", action="store_true", default=False,
        help="Rewrite golden files (tests/**/golden/) instead of comparing with them. "
             "Check the new numbers independently first.",
    )


@pytest.fixture
def golden(request: pytest.FixtureRequest) -> Callable[[str, str], None]:
    """``golden(name, text)``: assert ``text`` equals golden/<name> beside the test file,
    or write it there under ``--overwrite-golden``."""
    overwrite = request.config.getoption("--overwrite-golden")
    folder = Path(request.path).parent / "golden"

    def check(name: str, text: str) -> None:
        path = folder / name
        if overwrite:
            folder.mkdir(exist_ok=True)
            path.write_text(text, encoding="utf-8")
            return
        assert path.is_file(), f"no golden file {path}: run pytest --overwrite-golden"
        assert text == path.read_text(encoding="utf-8"), (
            f"{name} differs from its golden file; if the change is intended, check the "
            "numbers and run pytest --overwrite-golden")

    return check
