"""Helpers for the docs tests: the docs extensions on sys.path, and Sphinx builds."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
sys.path.insert(0, str(DOCS / "_ext"))

MINI_CONF = f"""
import sys
sys.path.insert(0, {str(DOCS / "_ext")!r})
extensions = ["archcalc_directives", "hw3_directives", "source_text"]
exclude_patterns = ["_build", "results/**/*.md"]
cli_programs = {{"archcalc": ("archcalc.cli:app", "archcalc.cli:route"),
                 "hw3": ("trainers.cli:app", None)}}
"""


@dataclass(frozen=True)
class Build:
    out: Path
    returncode: int
    stderr: str
    seconds: float

    def page(self, name: str) -> str:
        return (self.out / f"{name}.html").read_text(encoding="utf-8")


def clean_env() -> dict[str, str]:
    """This environment without HW3_* settings, so the build sees the real defaults."""
    return {k: v for k, v in os.environ.items() if not k.startswith("HW3_")}


def sphinx_build(src: Path, out: Path, env: dict[str, str] | None = None) -> Build:
    """``sphinx-build -W --keep-going -b html SRC OUT``, as ``make docs`` runs it."""
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", str(src),
         str(out)], capture_output=True, text=True, env=env or clean_env(), timeout=300)
    return Build(out, proc.returncode, proc.stderr, time.perf_counter() - start)


def mini_project(root: Path, index: str, files: dict[str, str] | None = None) -> Path:
    """A Sphinx project in ``root`` with the docs extensions and ``index`` as index.rst."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "conf.py").write_text(MINI_CONF, encoding="utf-8")
    (root / "index.rst").write_text(index, encoding="utf-8")
    for name, text in (files or {}).items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    return root
