"""The test suite's own layout: pytest's default import mode puts each test directory on
sys.path and imports test modules by their file name, so two test files of one name in
different directories stop the whole run at collection."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def test_every_test_module_has_its_own_name() -> None:
    names = Counter(p.name for p in TESTS.rglob("test_*.py"))
    assert names["test_suite_layout.py"] == 1  # the directory is really read
    assert {name: n for name, n in names.items() if n > 1} == {}
