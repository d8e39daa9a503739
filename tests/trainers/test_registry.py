"""Discovery through entry points, with third-party packages simulated on sys.path."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path

import pytest
from hw3_helpers import write_dist

from trainers import registry
from trainers.errors import PluginError
from trainers.registry import GROUP, Registry

GOOD = '''
from dataclasses import dataclass
from trainers.api import Summary, setting

LOADS = []

@dataclass(frozen=True)
class Config:
    epochs: int = setting(3, "Epochs.")

class Good:
    name = "{name}"
    summary = "A good plugin."
    config_type = Config

    def __init__(self):
        LOADS.append(1)

    def run(self, config, ctx):
        return {{"epochs": config.epochs}}

    def report(self, results, ctx):
        return Summary("ok")
'''
MODULES = {
    "acme_good": GOOD.format(name="good"),
    "acme_broken": "import tensorflow_that_is_not_installed\n",
    "acme_misfit": "class Misfit:\n    name = 'misfit'\n    summary = 'x'\n"
                   "    config_type = None\n    def run(self, config, ctx): ...\n",
    "acme_renamed": GOOD.format(name="other-name"),
    "acme_clash": GOOD.format(name="clash").replace("epochs: int", "seed: int"),
    "acme_arity": GOOD.format(name="arity").replace("def run(self, config, ctx)",
                                                    "def run(self, config)"),
}
PLUGINS = {"good": "acme_good:Good", "broken": "acme_broken:plugin",
           "misfit": "acme_misfit:Misfit", "renamed": "acme_renamed:Good",
           "clash": "acme_clash:Good", "arity": "acme_arity:Good"}


@pytest.fixture
def acme(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Registry]:
    """A third-party package 'acme-hw3' declaring good and bad plugins; its registry."""
    site = tmp_path / "site"
    site.mkdir()
    for module, source in MODULES.items():
        (site / f"{module}.py").write_text(textwrap.dedent(source))
    write_dist(site, "acme-hw3", PLUGINS, version="1.2")
    monkeypatch.syspath_prepend(str(site))
    yield Registry(eps=[ep for ep in entry_points(group=GROUP)
                        if ep.dist is not None and ep.dist.name == "acme-hw3"])
    for module in MODULES:
        sys.modules.pop(module, None)
    registry.reset()


def test_metadata_alone_lists_names_without_importing(acme: Registry) -> None:
    assert acme.names() == sorted(PLUGINS)
    assert not any(m in sys.modules for m in MODULES)


def test_a_good_plugin_loads_once(acme: Registry) -> None:
    plugin = acme.get("good")
    assert plugin is acme.get("good")
    assert sys.modules["acme_good"].LOADS == [1]
    assert plugin.run(plugin.config_type(), None) == {"epochs": 3}


def test_broken_plugin_is_reported_and_others_still_work(acme: Registry) -> None:
    entries = {e.name: e for e in acme.entries()}
    assert entries["good"].status == "ok" and entries["good"].summary == "A good plugin."
    broken = entries["broken"]
    assert broken.status == "error" and broken.package == "acme-hw3 1.2"
    assert "plugin 'broken' from acme-hw3 1.2 failed to import (acme_broken:plugin)" \
        in broken.error
    assert "ModuleNotFoundError" in broken.error
    with pytest.raises(PluginError, match="failed to import"):
        acme.get("broken")
    assert acme.get("good").name == "good"


@pytest.mark.parametrize(("name", "problem"), [
    ("misfit", "report is missing or not callable"),
    ("renamed", "name is 'other-name' but the entry point is called 'renamed'"),
    ("clash", "config field(s) seed clash with options of hw3 run"),
    ("arity", r"run\(config\) cannot be called as run\(config, ctx\)"),
])
def test_misfits_name_plugin_package_and_interface(acme: Registry, name: str,
                                                   problem: str) -> None:
    with pytest.raises(PluginError) as err:
        acme.get(name)
    message = str(err.value)
    assert f"plugin {name!r} from acme-hw3 1.2" in message
    assert problem.replace("\\", "") in message
    assert "Expected an object (or a class made without arguments) with name: str" in message


OPTIONAL_MISFITS = {
    "optcheck": GOOD.format(name="optcheck").replace(
        "    def run(self", "    def check(self, config):\n        pass\n    def run(self"),
    "optdata": GOOD.format(name="optdata").replace(
        "    config_type = Config", "    config_type = Config\n    datasets = ('imagenet',)"),
    "optplan": GOOD.format(name="optplan").replace(
        "    def run(self", "    def plan(self, config, device):\n        pass\n    def run(self"),
}


@pytest.mark.parametrize(("name", "problem"), [
    ("optcheck", "check(config) cannot be called as check(config, device, data_dir); "
                 "expected check(config, device: str, data_dir: str) -> None"),
    ("optdata", "datasets names 'imagenet', unknown to hw3 (known: cifar10, fashion-mnist)"),
    ("optplan", "plan(config, device) cannot be called as plan(config, device, data_dir); "
                "expected plan(config, device: str, data_dir: str) -> trainers.plan.Plan"),
])
def test_optional_members_are_checked_when_a_plugin_loads(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, problem: str) -> None:
    (tmp_path / f"acme_{name}.py").write_text(textwrap.dedent(OPTIONAL_MISFITS[name]))
    write_dist(tmp_path, "acme-optional", {name: f"acme_{name}:Good"}, version="2.0")
    monkeypatch.syspath_prepend(str(tmp_path))
    reg = Registry(eps=[ep for ep in entry_points(group=GROUP)
                        if ep.dist is not None and ep.dist.name == "acme-optional"])
    try:
        with pytest.raises(PluginError) as err:
            reg.get(name)
    finally:
        sys.modules.pop(f"acme_{name}", None)
    message = str(err.value)
    assert f"plugin {name!r} from acme-optional 2.0 (acme_{name}:Good)" in message
    assert problem in message


def test_unknown_plugin_lists_the_known_ones(acme: Registry) -> None:
    with pytest.raises(PluginError, match="unknown plugin 'nope' \\(known: arity, broken"):
        acme.get("nope")


def test_env_var_limits_which_plugins_load(acme: Registry,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(registry.ENV, "good, misfit")
    registry.reset()
    reg = registry.registry()
    assert reg.get("good").name == "good"
    with pytest.raises(PluginError, match="HW3_PLUGINS='good, misfit' does not list it"):
        reg.get("broken")
    statuses = {e.name: e.status for e in reg.entries() if e.name in PLUGINS}
    assert statuses == {"good": "ok", "misfit": "error", "broken": "blocked",
                        "renamed": "blocked", "clash": "blocked", "arity": "blocked"}
    assert "acme_broken" not in sys.modules


def test_empty_env_var_loads_nothing() -> None:
    assert registry.allowed_names("") == frozenset()
    assert registry.allowed_names(None) is None


def test_same_name_from_two_packages_is_a_clash() -> None:
    eps = [EntryPoint("x", "a:b", GROUP), EntryPoint("x", "c:d", GROUP)]
    with pytest.raises(PluginError, match="declared by several packages"):
        Registry(eps=eps).get("x")


def test_entry_point_objects_without_a_distribution(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "solo_plugin.py").write_text(textwrap.dedent(GOOD.format(name="solo")))
    monkeypatch.syspath_prepend(str(tmp_path))
    reg = Registry(eps=[EntryPoint("solo", "solo_plugin:Good", GROUP)])
    assert reg.get("solo").summary == "A good plugin."
    assert reg.entries()[0].package == "an unknown package"
    sys.modules.pop("solo_plugin", None)
