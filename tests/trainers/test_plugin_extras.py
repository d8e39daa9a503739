"""A third-party plugin declares what it needs the way packaging already allows: extras of its
own distribution named on its entry point (``acme = "acme_gpu:plugin [gpu]"``), whose
``Requires-Dist`` entries hw3 reads from the installed metadata, never importing the plugin.

The package here is real: built into a wheel by setuptools and installed by pip (``--target``
a temporary site folder), so the entry point and the metadata are what a user's install
holds, written by a real build backend."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from hw3_helpers import HERE, REPO

from trainers.registry import GROUP, Needs, Registry, extra_requirements

DIST = "acme-gpu-hw3"
ABSENT = "no-such-dist-for-hw3-tests"
PYPROJECT = f"""
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "{DIST}"
version = "1.0"
dependencies = ["rich"]  # the package's own: pip installs it with the package

[project.optional-dependencies]
gpu = ["torch>=2.1", "{ABSENT}>=1"]
Plots = ["matplotlib", "numpy; sys_platform == 'no-such-platform'"]

[project.entry-points."hw3.trainers"]
acme = "acme_gpu:plugin [gpu]"
acme-plots = "acme_gpu:plots [Plots]"
acme-plain = "acme_gpu:plain"

[tool.setuptools]
py-modules = ["acme_gpu"]
"""
MODULE = '''
"""Three names for the tests' tenant plugin."""
from tenant import Tenant


def named(name: str) -> Tenant:
    plugin = Tenant()
    plugin.name = name
    return plugin


plugin, plots, plain = named("acme"), named("acme-plots"), named("acme-plain")
'''


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The package built by setuptools and installed by pip into a site folder."""
    pytest.importorskip("setuptools", reason="builds the third-party package's wheel")
    root = tmp_path_factory.mktemp("acme")
    (root / "src").mkdir()
    (root / "src" / "pyproject.toml").write_text(PYPROJECT)
    (root / "src" / "acme_gpu.py").write_text(textwrap.dedent(MODULE))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                    str(root / "src"), "-w", str(root / "dist")], check=True, timeout=300)
    wheel = next((root / "dist").glob("*.whl"))
    subprocess.run([*pip, "install", "--no-deps", "--no-index", "--target",
                    str(root / "site"), str(wheel)], check=True, timeout=300)
    return root / "site"


@pytest.fixture
def acme(site: Path, monkeypatch: pytest.MonkeyPatch) -> Registry:
    monkeypatch.syspath_prepend(str(site))
    return Registry(eps=[ep for ep in entry_points(group=GROUP)
                         if ep.dist is not None and ep.dist.name == DIST])


def test_needs_come_from_the_extras_on_the_entry_point(acme: Registry) -> None:
    gpu = acme.needs("acme")
    assert gpu == Needs("gpu", ("torch", ABSENT), DIST, by_distribution=True)
    assert gpu.missing() == (ABSENT,)  # torch is installed here; the other exists nowhere
    assert gpu.install == f"pip install '{DIST}[gpu]'"
    plots = acme.needs("acme-plots")  # "Plots" is "plots" in the metadata (PEP 685)
    assert plots is not None and plots.modules == ("matplotlib",)  # numpy: not this platform
    assert plots.missing() == ()
    assert acme.needs("acme-plain") is None  # no extras: nothing beyond its own dependencies
    assert "acme_gpu" not in sys.modules  # read from metadata, the plugin never imported


def test_without_packaging_only_plain_extra_markers_are_read(
        acme: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    """A core install may lack ``packaging``: the markers build backends write for a plain
    optional dependency still read alike; a line with another condition goes unchecked."""
    lines = ["torch>=2.1; extra == 'gpu'", 'Numpy ; extra == "GPU"', "rich",
             'tqdm; python_version >= "3" and extra == "gpu"', "sympy; extra == 'other'"]
    with_packaging = extra_requirements(lines, "gpu")
    monkeypatch.setitem(sys.modules, "packaging.requirements", None)
    without = extra_requirements(lines, "gpu")
    assert with_packaging == ["torch", "Numpy", "tqdm"]
    assert without == ["torch", "Numpy"]
    assert acme.needs("acme") == Needs("gpu", ("torch", ABSENT), DIST, by_distribution=True)


def hw3(site: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(HERE), str(REPO)]),
           "HW3_PLUGINS": "acme,acme-plots,acme-plain", "HW3_RUNS": str(tmp_path / "runs"),
           "HW3_DATA": str(tmp_path / "data"), "COLUMNS": "80"}
    env.pop("HW3_PLUGINS_TOML", None)
    return subprocess.run([sys.executable, "-m", "trainers", *args], env=env,
                          capture_output=True, text=True, timeout=120)


def test_list_shows_a_third_party_plugins_extra_and_what_is_missing(site: Path,
                                                                    tmp_path: Path) -> None:
    done = hw3(site, tmp_path, "list")
    assert done.returncode == 0, done.stderr
    text = " ".join(done.stdout.split())
    assert f"needs {DIST}[gpu]: torch, {ABSENT} (missing)" in text
    assert f"needs {DIST}[Plots]: matplotlib (installed)" in text
    assert "needs: nothing declared beyond hw3's core" in text  # acme-plain
    assert f"acme: {ABSENT} not installed: pip install '{DIST}[gpu]'" in done.stdout
    assert max(map(len, done.stdout.splitlines())) <= 80

    doc = json.loads(hw3(site, tmp_path, "list", "--format", "json").stdout)
    plugins = {p["name"]: p for p in doc["plugins"]}
    assert plugins["acme"]["status"] == "missing"
    assert plugins["acme"]["modules"] == {"torch": True, ABSENT: False}
    assert plugins["acme"]["checked_as"] == "distribution"
    assert plugins["acme"]["install"] == f"pip install '{DIST}[gpu]'"
    assert plugins["acme-plots"]["status"] == "ok"


def test_run_without_the_extra_is_one_line_naming_the_packages_install(
        site: Path, tmp_path: Path) -> None:
    done = hw3(site, tmp_path, "run", "acme", "--epochs", "1")
    assert done.returncode == 2, done.stderr
    assert done.stderr == (f"error: hw3 run acme needs {ABSENT}, not installed: run "
                           f"pip install '{DIST}[gpu]'\n")
    assert not (tmp_path / "runs").exists()
