"""Sphinx configuration of the archcalc + hw3 docs (``make docs``).

Every number on these pages is computed while they build: docs/_ext holds the directives
that run archcalc, render the CLIs' --help, read the plugins' config dataclasses and show what
``hw3 report RUN --to docs`` exported. The build runs with -W, so a failing generator fails it.

The pages must read well offline (MathJax is bundled, not fetched from a CDN) and every
command on them must paste into a shell as shown (no smart quotes turning ``--`` into a dash).
"""

from __future__ import annotations

import socket
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sphinx.application import Sphinx

sys.path.insert(0, str(Path(__file__).parent / "_ext"))

project = "archcalc + hw3"
author = "archcalc-hw3 contributors"
copyright = "the archcalc-hw3 contributors"
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "sphinx-mathjax-offline",  # copies its MathJax 3 into _static/mathjax: math works offline
    "sphinx_copybutton",
    "archcalc_directives",
    "dataclass_fields",
    "hw3_directives",
    "source_text",
]
exclude_patterns = ["_build", "results/**/*.md"]
templates_path: list[str] = []
html_static_path = ["_static"]
html_css_files = ["archcalc.css"]
html_theme = "furo"  # wraps every table in a horizontally scrollable container
html_title = "archcalc + hw3"

# Commands are copied from these pages: `--bias` must stay two hyphens, not an en dash.
smartquotes = False

# The bundled MathJax (sphinx-mathjax-offline sets the same path; said here so it is seen).
mathjax_path = "mathjax/tex-chtml.js"

# Copy buttons copy the commands, not their prompts (`$ `, `node0$ `) or the output shown:
# only lines that start with a prompt are copied, without it (a block with no prompt is
# copied whole). Pygments calls `node0$ ...` output, so prompts are matched on the text.
copybutton_prompt_text = r"[\w.-]*\$ "
copybutton_prompt_is_regexp = True
copybutton_only_copy_prompt_lines = True

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_default_options = {"members": True}
# The importers' frameworks are not part of the docs extra: autodoc reads their modules with
# these imports mocked (the build stays framework-free and fast).
autodoc_mock_imports = ["torch", "tensorflow", "keras", "onnx"]
# rst_prolog is not used: every page says what it computes where it computes it.

# Programs `.. cli-run::` may run in-process: name -> (Typer app, argument router or None).
cli_programs = {
    "archcalc": ("archcalc.cli:app", "archcalc.cli:route"),
    "hw3": ("trainers.cli:app", None),
}

# Links to the Python and torch references. Keras publishes no Sphinx inventory (keras.io is
# not built with Sphinx), so Keras names stay plain text. The docs are built offline too (CI
# has no internet): an inventory whose host does not resolve is left out, quietly, instead of
# failing the -W build; its names then stay plain text.
INVENTORIES = {
    "python": ("https://docs.python.org/3", None),
    "torch": ("https://docs.pytorch.org/docs/stable", None),
}


def reachable(url: str, timeout: float = 3.0) -> bool:
    """Whether ``url``'s host accepts a connection (DNS and TCP) within ``timeout``."""
    host = urlsplit(url).hostname or ""
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
    except OSError:
        return False
    return True


intersphinx_mapping = {name: target for name, target in INVENTORIES.items()
                       if reachable(target[0])}
intersphinx_timeout = 10


def source_without_import(app: Sphinx, modname: str) -> tuple[str, dict[str, Any]] | None:
    """viewcode's source of an archcalc importer, read from its file: viewcode would import
    the module, and with it torch, Keras (TensorFlow) or ONNX, on every incremental build."""
    import importlib.util

    from sphinx.pycode import ModuleAnalyzer

    if not modname.startswith("archcalc.importers."):
        return None
    spec = importlib.util.find_spec(modname)
    if spec is None or not spec.origin:
        return None
    analyzer = ModuleAnalyzer.for_file(spec.origin, modname)
    return analyzer.code, dict(analyzer.find_tags())


def setup(app: Sphinx) -> None:
    app.connect("viewcode-find-source", source_without_import)
