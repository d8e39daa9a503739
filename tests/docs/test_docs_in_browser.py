"""``.ci/docs-check`` in a real headless Chromium, offline: the built docs typeset their math
with the bundled MathJax and scroll wide tables; a page with MathJax from a CDN and a wide
table outside a scrolling box fails it.

Skipped where Chromium is not installed (CI installs it: ``apt-get install -y chromium``).
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from docs_helpers import REPO, Build, mini_project, sphinx_build

CHECK = REPO / ".ci" / "docs-check"


def load_check() -> ModuleType:
    """The script as a module (it has no .py suffix), to ask it where Chromium is."""
    loader = importlib.machinery.SourceFileLoader("docs_check", str(CHECK))
    spec = importlib.util.spec_from_loader("docs_check", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


needs_chromium = pytest.mark.skipif(
    load_check().browser() is None,
    reason="Chromium is not installed (Debian: apt-get install -y chromium); "
           ".ci/docs-check needs a real browser")


def run_check(html: Path, *pages: str) -> subprocess.CompletedProcess[str]:
    args = [arg for page in pages for arg in ("--page", page)]
    return subprocess.run([sys.executable, str(CHECK), str(html), *args], capture_output=True,
                          text=True, timeout=600)


@needs_chromium
def test_built_docs_typeset_math_offline_and_scroll_wide_tables(built_docs: Build) -> None:
    assert built_docs.returncode == 0, built_docs.stderr
    proc = run_check(built_docs.out)
    assert proc.returncode == 0, proc.stderr
    assert "problems/problem3.html" in proc.stdout and "formulas typeset offline" in proc.stdout
    assert (built_docs.out / "_static" / "mathjax" / "tex-chtml.js").is_file()


@needs_chromium
def test_cdn_math_and_a_cut_table_fail_the_check(tmp_path: Path) -> None:
    """Sphinx's defaults (MathJax from a CDN, the alabaster theme) as the docs had them."""
    src = mini_project(tmp_path / "src", "Page\n====\n\n.. math::\n\n   r(N) = N(F - 1) + 1\n\n"
                       ".. archcalc-layers:: alexnet\n")
    build = sphinx_build(src, tmp_path / "html")
    assert build.returncode == 0, build.stderr
    proc = run_check(build.out, "index.html")
    assert proc.returncode == 1, proc.stdout
    assert "MathJax is loaded from the network" in proc.stderr
    assert "MathJax did not run" in proc.stderr
    assert "is cut at the right edge" in proc.stderr


def test_without_chromium_the_check_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    """No browser: one clear line and exit 1; the script installs nothing."""
    check = load_check()
    monkeypatch.setattr(check, "browser", lambda: None)
    assert check.main([str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "Chromium is not installed (Debian: apt-get install -y chromium)" in err
    assert len(err.strip().splitlines()) == 1


@needs_chromium
def test_copy_buttons_copy_the_commands_without_prompts_or_output(built_docs: Build) -> None:
    """Clicking each console block's copy button (in Chromium, the clipboard intercepted):
    the commands, as the page shows them after their prompts, and none of the output."""
    check = load_check()
    page = built_docs.out / "getting-started.html"
    copies = check.measure(check.browser(), page)["copies"]
    assert "archcalc vgg19 --table" in copies
    assert "archcalc rf --layers 3 --kernel 5" in copies
    html = page.read_text(encoding="utf-8")
    assert "vgg19 memory and weights" in html  # the output is on the page, not in the copy
    assert not [c for c in copies if "memory and weights" in c or "$ " in c], copies
    scaling = check.measure(check.browser(), built_docs.out / "problems" / "problem2.html")
    assert scaling["copies"] == ["hw3 run scaling --cluster hosts.toml --task 0\n"
                                 "hw3 run scaling --cluster hosts.toml --task 1"]
