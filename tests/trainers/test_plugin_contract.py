"""Every installed plugin of entry-point group hw3.trainers against the contract of
trainers.api, so a new plugin is tested the moment it registers, without new test code."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from importlib.metadata import EntryPoint, entry_points

import pytest
from hw3_helpers import REPO

from trainers import config as cfg
from trainers import registry
from trainers.api import Trainer

INSTALLED = sorted(entry_points(group=registry.GROUP), key=lambda ep: ep.name)


@pytest.fixture(params=INSTALLED, ids=[ep.name for ep in INSTALLED])
def entry(request: pytest.FixtureRequest) -> EntryPoint:
    return request.param  # type: ignore[no-any-return]


def test_the_built_in_plugins_are_installed() -> None:
    assert {"optimizers", "scaling", "cutout", "depth-width"} <= {ep.name for ep in INSTALLED}


def test_loads_and_fits_every_member(entry: EntryPoint) -> None:
    plugin = registry.load([entry])  # a misfit raises PluginError naming plugin and package
    assert isinstance(plugin, Trainer)
    assert registry.check(plugin, entry.name) == ""


def test_settings_resolve_with_help_and_citation(entry: EntryPoint) -> None:
    plugin = registry.load([entry])
    defaults = cfg.Defaults.load(REPO / "plugins.toml")
    config = cfg.resolve(plugin.config_type, [defaults.layer(entry.name)])
    assert dataclasses.is_dataclass(config)
    for spec in cfg.field_specs(plugin.config_type):
        assert spec.help, f"{entry.name}: setting {spec.name} has no help text"
        assert spec.default is not cfg.REQUIRED, f"{entry.name}: {spec.name} has no default"


def test_docstring_states_result_and_command(entry: EntryPoint) -> None:
    plugin = registry.load([entry])
    doc = sys.modules[type(plugin).__module__].__doc__ or ""
    assert "Reproduces" in doc and f"hw3 run {entry.name}" in doc


def test_entry_module_imports_no_framework(entry: EntryPoint) -> None:
    """``hw3 list`` imports every plugin's entry module: it must stay light."""
    module = entry.value.split(":")[0]
    code = (f"import sys, {module}; heavy = [m for m in ('torch', 'tensorflow', 'numpy') "
            "if m in sys.modules]; print(heavy); sys.exit(bool(heavy))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=REPO, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
