"""Trainer discovery through the entry-point group ``hw3.trainers``.

As in llm and pytest: plugins are found from package metadata, each is imported once and only
when asked for, ``HW3_PLUGINS=a,b`` limits which may load (empty: none), and a plugin that
fails to import or does not fit the interface becomes a PluginError that names the plugin,
its package and the interface expected, while every other plugin keeps working. Built-in
plugins register in pyproject.toml exactly like a third-party package would.

Plugins import their frameworks only inside ``run``, so a plugin loads (and ``hw3 list`` works)
with only hw3's core installed. What a plugin needs beyond the core is read without importing
it: a third-party plugin names extras of its own distribution on its entry point
(``demo = "pkg.demo:plugin [gpu]"``, the entry-point syntax for extras), and the extras'
``Requires-Dist`` entries in its installed metadata are the distributions checked for
(:func:`declared_needs`); each built-in plugin's extra and the modules it installs are in
:data:`NEEDS`, checked with ``importlib.util.find_spec``. Either way nothing is imported:
``hw3 list`` shows the needs and ``hw3 run`` refuses, in one line naming the ``pip install``
to run, before any framework is imported.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import inspect
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import metadata
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from trainers.api import INTERFACE, OPTIONAL, Trainer
from trainers.config import field_specs
from trainers.errors import PluginError

DISTRIBUTION = "archcalc-hw3"
GROUP = "hw3.trainers"
ENV = "HW3_PLUGINS"
# Options of `hw3 run` itself; a config field with one of these names would shadow it.
RESERVED = frozenset({"config", "resume", "device", "seed", "deterministic", "data_dir",
                      "runs_dir", "help"})


class MissingExtraError(PluginError):
    """A plugin whose frameworks are not installed; the message names the pip install."""


@dataclass(frozen=True)
class Needs:
    """What a plugin needs beyond hw3's core: the extra (of ``distribution``) that installs
    it, and what is checked for: top-level modules (the built-ins', the run machinery's
    torch and tensorboard included) or, ``by_distribution``, the distributions the extra's
    ``Requires-Dist`` entries name (a third-party plugin's)."""

    extra: str
    modules: tuple[str, ...]
    distribution: str = DISTRIBUTION
    by_distribution: bool = False

    @property
    def install(self) -> str:
        return f"pip install '{self.distribution}[{self.extra}]'"

    def missing(self) -> tuple[str, ...]:
        """What is not installed, found without importing anything."""
        found = distribution_installed if self.by_distribution else installed
        return tuple(m for m in self.modules if not found(m))


# Each extra's modules (pyproject.toml's distributions by import name; a test keeps the two in
# step). Every run needs torch (checkpoints), numpy (datasets), matplotlib (reports) and
# tensorboard (the run's event files).
EXTRAS = {
    "train": ("torch", "numpy", "matplotlib", "tensorboard"),
    "scaling": ("tensorflow", "torch", "numpy", "matplotlib", "tensorboard"),
}
# The built-in plugins' needs, by entry-point value; a third-party plugin's are read from its
# distribution's metadata (declared_needs).
NEEDS = {
    "trainers.plugins.optimizers:plugin": Needs("train", EXTRAS["train"]),
    "trainers.plugins.depth_width:plugin": Needs("train", EXTRAS["train"]),
    "trainers.plugins.cutout:plugin": Needs("train", EXTRAS["train"]),
    "trainers.plugins.scaling:plugin": Needs("scaling", EXTRAS["scaling"]),
}

# PyPI's Linux torch wheels are CUDA builds (GBs of nvidia-* wheels); the CPU one:
CPU_TORCH = "pip install torch --index-url https://download.pytorch.org/whl/cpu"


def installed(module: str) -> bool:
    """Whether ``module`` can be imported, asked of the import system without importing it
    (``sys.modules[name] = None``, the way to block a module, counts as not installed)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def distribution_installed(name: str) -> bool:
    """Whether distribution ``name`` is installed, from metadata alone (names compare as
    importlib.metadata normalises them: ``Tensorflow_CPU`` is ``tensorflow-cpu``)."""
    try:
        metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return False
    return True


def declared_needs(ep: EntryPoint) -> Needs | None:
    """What a plugin's own distribution declares it needs: the extras on its entry point and
    the distributions their ``Requires-Dist`` entries name (None: no extras declared, or no
    distribution to read them from). Reads metadata only; the plugin is not imported."""
    extras = tuple(ep.extras)
    dist = getattr(ep, "dist", None)
    if not extras or dist is None:
        return None
    names = [name for extra in extras for name in extra_requirements(dist.requires or [], extra)]
    return Needs(",".join(extras), tuple(dict.fromkeys(names)), dist.metadata["Name"],
                 by_distribution=True)


def _normal(name: str) -> str:
    """A distribution or extra name normalised as PEP 503 / PEP 685 compare them."""
    return re.sub(r"[-_.]+", "-", name).lower()


def extra_requirements(requires: Iterable[str], extra: str) -> list[str]:
    """The distribution names of the ``Requires-Dist`` lines that ``extra`` adds and that
    apply here (their markers hold for this interpreter and platform).

    Markers are evaluated by ``packaging`` (PEP 508) where it is installed; without it, only
    the plain ``extra == "NAME"`` marker that build backends write for an optional
    dependency is recognised, and a line with any other condition is left unchecked."""
    try:
        from packaging.requirements import InvalidRequirement, Requirement
    except ImportError:
        return [name for line in requires
                if (name := _plain_extra_requirement(line, extra)) is not None]
    names = []
    for line in requires:
        try:
            req = Requirement(line)
        except InvalidRequirement:
            continue
        if req.marker is not None and req.marker.evaluate({"extra": extra}) \
                and not req.marker.evaluate({"extra": ""}):
            names.append(req.name)
    return names


PLAIN_EXTRA = re.compile(  # NAME ... ; extra == "EXTRA"
    r"""^\s*([A-Za-z0-9][A-Za-z0-9._-]*)[^;]*;\s*extra\s*==\s*(['"])([^'"]+)\2\s*$""")


def _plain_extra_requirement(line: str, extra: str) -> str | None:
    """``torch`` for ``torch>=2.1; extra == "gpu"`` when ``extra`` is gpu, else None."""
    match = PLAIN_EXTRA.match(line)
    return match.group(1) if match and _normal(match.group(3)) == _normal(extra) else None


def require(needs: Needs | None, what: str) -> None:
    """MissingExtraError for ``what`` (e.g. "hw3 run optimizers") if ``needs`` are not met."""
    missing = needs.missing() if needs is not None else ()
    if needs is not None and missing:
        cpu = (f" (on Linux that is torch's CUDA build; for the CPU build first: {CPU_TORCH})"
               if "torch" in missing else "")
        raise MissingExtraError(f"{what} needs {', '.join(missing)}, not installed: run "
                                f"{needs.install}{cpu}")


@dataclass(frozen=True)
class Entry:
    """One plugin as ``hw3 list`` shows it; ``status`` is ok, missing (its frameworks are not
    installed), error or blocked."""

    name: str
    value: str
    package: str
    status: str
    summary: str = ""
    error: str = ""
    needs: Needs | None = None
    missing: tuple[str, ...] = ()


def package_of(ep: EntryPoint) -> str:
    """``name version`` of the distribution that declares ``ep`` (if metadata says)."""
    dist = getattr(ep, "dist", None)
    if dist is None:
        return "an unknown package"
    return f"{dist.metadata['Name']} {dist.version}"


def allowed_names(env: str | None) -> frozenset[str] | None:
    """The names ``HW3_PLUGINS`` admits; None when it is unset (all admitted)."""
    if env is None:
        return None
    return frozenset(n.strip() for n in env.split(",") if n.strip())


class Registry:
    """The plugins of one process; metadata is read once and each plugin imported once."""

    def __init__(self, eps: Iterable[EntryPoint] | None = None,
                 allow: frozenset[str] | None = None) -> None:
        self._given = None if eps is None else list(eps)
        self._allow = allow
        self._eps: dict[str, list[EntryPoint]] | None = None
        self._loaded: dict[str, Trainer[Any] | PluginError] = {}

    def entry_points(self) -> dict[str, list[EntryPoint]]:
        """Entry points by plugin name (more than one: a clash between packages)."""
        if self._eps is None:
            found = self._given if self._given is not None else entry_points(group=GROUP)
            self._eps = {}
            for ep in found:
                self._eps.setdefault(ep.name, []).append(ep)
        return self._eps

    def names(self) -> list[str]:
        """Every declared plugin name, blocked ones included (nothing is imported)."""
        return sorted(self.entry_points())

    def blocked(self, name: str) -> bool:
        return self._allow is not None and name not in self._allow

    def get(self, name: str) -> Trainer[Any]:
        """The loaded plugin ``name``; PluginError if unknown, blocked or broken."""
        eps = self.entry_points()
        if name not in eps:
            known = ", ".join(self.names()) or "none installed"
            raise PluginError(f"unknown plugin {name!r} (known: {known}; see hw3 list)")
        if self.blocked(name):
            raise PluginError(f"plugin {name!r} is not loaded: {ENV}={os.environ.get(ENV, '')!r}"
                              " does not list it")
        if name not in self._loaded:
            try:
                self._loaded[name] = load(eps[name])
            except PluginError as exc:
                self._loaded[name] = exc
        found = self._loaded[name]
        if isinstance(found, PluginError):
            raise found
        return found

    def needs(self, name: str) -> Needs | None:
        """What plugin ``name`` needs beyond the core (None: not declared): a built-in's
        from :data:`NEEDS`, any other's from its distribution's metadata; imports nothing."""
        eps = self.entry_points().get(name)
        if not eps:
            return None
        return NEEDS.get(eps[0].value) or declared_needs(eps[0])

    def require(self, name: str, what: str) -> None:
        """MissingExtraError if plugin ``name``'s frameworks are not installed."""
        require(self.needs(name), what)

    def entries(self) -> list[Entry]:
        """Every plugin with its status; loads the admitted ones, never raises for one."""
        rows = []
        for name in self.names():
            ep = self.entry_points()[name][0]
            needs = self.needs(name)
            missing = needs.missing() if needs else ()
            row = Entry(name, ep.value, package_of(ep), "blocked", needs=needs, missing=missing)
            if not self.blocked(name):
                try:
                    row = dataclasses.replace(row, status="missing" if missing else "ok",
                                              summary=self.get(name).summary)
                except PluginError as exc:
                    row = dataclasses.replace(row, status="error", error=str(exc))
            rows.append(row)
        return rows


def load(eps: list[EntryPoint]) -> Trainer[Any]:
    """Import one plugin's entry point and check it against the interface."""
    ep = eps[0]
    who = f"plugin {ep.name!r} from {package_of(ep)}"
    if len(eps) > 1:
        raise PluginError(f"plugin {ep.name!r} is declared by several packages: "
                          f"{', '.join(package_of(e) for e in eps)}; uninstall all but one")
    try:
        obj = ep.load()
        if inspect.isclass(obj):
            obj = obj()
    except Exception as exc:  # a plugin's import may fail in any way; report, never crash
        raise PluginError(f"{who} failed to import ({ep.value}): "
                          f"{type(exc).__name__}: {exc}") from exc
    problem = check(obj, ep.name)
    if problem:
        raise PluginError(f"{who} ({ep.value}) does not fit: {problem}. Expected {INTERFACE}")
    return obj  # type: ignore[no-any-return]


def check(obj: Any, name: str) -> str:
    """What is wrong with ``obj`` as the trainer ``name``; empty when it fits."""
    for attr in ("name", "summary"):
        if not isinstance(getattr(obj, attr, None), str):
            return f"{attr} is missing or not a str"
    if obj.name != name:
        return f"name is {obj.name!r} but the entry point is called {name!r}"
    if not obj.summary.strip() or "\n" in obj.summary.strip():
        return "summary must be one non-empty line"
    for method, call in (("run", "run(config, ctx)"), ("report", "report(results, ctx)")):
        problem = _check_method(obj, method, call, 2)
        if problem:
            return problem
    return _check_optional(obj) or _check_config(getattr(obj, "config_type", None))


def _check_method(obj: Any, method: str, call: str, args: int) -> str:
    func = getattr(obj, method, None)
    if not callable(func):
        return f"{method} is missing or not callable"
    try:
        inspect.signature(func).bind(*[None] * args)
    except TypeError:
        return f"{method}{inspect.signature(func)} cannot be called as {call}"
    except ValueError:  # a builtin without a signature: trust it
        pass
    return ""


def _check_optional(obj: Any) -> str:
    """The optional members (trainers.api.OPTIONAL), where a plugin has them."""
    from trainers.data.catalog import SPECS

    if hasattr(obj, "datasets"):
        found = obj.datasets
        if not isinstance(found, tuple | list) or not all(isinstance(d, str) for d in found):
            return f"datasets is {found!r}; expected {OPTIONAL['datasets']}"
        unknown = [d for d in found if d not in SPECS]
        if unknown:
            return (f"datasets names {', '.join(map(repr, unknown))}, unknown to hw3 "
                    f"(known: {', '.join(SPECS)})")
    if hasattr(obj, "check"):
        problem = _check_method(obj, "check", "check(config, device, data_dir)", 3)
        if problem:
            return f"{problem}; expected {OPTIONAL['check']}"
    if hasattr(obj, "plan"):
        problem = _check_method(obj, "plan", "plan(config, device, data_dir)", 3)
        if problem:
            return f"{problem}; expected {OPTIONAL['plan']}"
    if hasattr(obj, "reports_partial") and not isinstance(obj.reports_partial, bool):
        return (f"reports_partial is {obj.reports_partial!r}; "
                f"expected {OPTIONAL['reports_partial']}")
    return ""


def _check_config(config_type: Any) -> str:
    try:
        specs = field_specs(config_type)
    except TypeError as exc:
        return str(exc)
    clash = sorted(RESERVED & {s.name for s in specs})
    if clash:
        return f"config field(s) {', '.join(clash)} clash with options of hw3 run"
    return ""


_registry: Registry | None = None


def registry() -> Registry:
    """The process-wide registry, made on first use (honours ``HW3_PLUGINS``)."""
    global _registry
    if _registry is None:
        _registry = Registry(allow=allowed_names(os.environ.get(ENV)))
    return _registry


def reset(new: Registry | None = None) -> None:
    """Forget loaded plugins (tests), or install ``new`` as the process-wide registry."""
    global _registry
    _registry = new
