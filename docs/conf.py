"""Sphinx configuration of the archcalc + hw3 docs (``make docs``).

Every number on these pages is computed while they build: docs/_ext holds the directives
that run archcalc, render the CLIs' --help, read plugins.toml and show what
``hw3 report RUN --to docs`` exported. The build runs with -W, so a failing generator fails it.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "_ext"))

project = "archcalc + hw3"
author = "archcalc-hw3 contributors"
copyright = "the archcalc-hw3 contributors"
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "archcalc_directives",
    "hw3_directives",
    "source_text",
]
exclude_patterns = ["_build", "results/**/*.md"]
templates_path: list[str] = []
html_static_path = ["_static"]
html_css_files = ["archcalc.css"]
html_theme = "alabaster"
html_theme_options = {"page_width": "1200px", "sidebar_width": "230px"}
html_title = "archcalc + hw3"

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_default_options = {"members": True, "show-inheritance": False}
# rst_prolog is not used: every page says what it computes where it computes it.

# Programs `.. cli-run::` may run in-process: name -> (Typer app, argument router or None).
cli_programs = {
    "archcalc": ("archcalc.cli:app", "archcalc.cli:route"),
    "hw3": ("trainers.cli:app", None),
}
