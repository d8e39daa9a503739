"""Fixtures for the docs tests (helpers live in docs_helpers, importable by test files)."""

from __future__ import annotations

import pytest
from docs_helpers import DOCS, Build, sphinx_build


@pytest.fixture(scope="session")
def built_docs(tmp_path_factory: pytest.TempPathFactory) -> Build:
    """The whole documentation, built once per session exactly as ``make docs`` does."""
    build = sphinx_build(DOCS, tmp_path_factory.mktemp("docs") / "html")
    print(f"docs build: {build.seconds:.1f} s")
    return build
