"""A plugin's settings, declared once by its config dataclass and layered, later wins:

    dataclass defaults  <-  plugins.toml [NAME]  <-  --config FILE  <-  CLI options

Each default is written once, in the dataclass, with its source beside it (``cite``);
plugins.toml holds only ``enabled`` and a user's overrides, and is read once per command.

Every value is checked against its field's type; a mistake is a ConfigError that names the
file (or option) and the key. The CLI options of ``hw3 run NAME`` are generated from the same
:class:`FieldSpec` list, and the config a run used is written back as TOML beside it.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tomllib
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from trainers.errors import ConfigError

DEFAULTS_ENV = "HW3_PLUGINS_TOML"
SCALARS: tuple[type, ...] = (bool, int, float, str)
INT64 = 2**63  # numpy and torch count in int64: a larger integer is always a mistake
NAMES = {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}
METAVARS = {bool: "BOOL", int: "INT", float: "FLOAT", str: "TEXT"}


class _Required:
    """The default of a field that has none (dataclasses.MISSING cannot be a field default)."""

    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()


@dataclass(frozen=True)
class FieldSpec:
    """One config field as hw3 sees it: a scalar, a tuple of scalars, or a Literal choice."""

    name: str
    kind: type
    sequence: bool = False
    choices: tuple[Any, ...] = ()
    help: str = ""
    default: Any = REQUIRED
    cite: str = ""  # where the default comes from (trainers.api.setting)
    bounds: tuple[float | None, float | None, float | None, float | None] = \
        (None, None, None, None)  # ge, gt, le, lt (trainers.api.setting)

    @property
    def range_text(self) -> str:
        """The declared range as ``>= 0, < 1`` ('' if none)."""
        return ", ".join(f"{op} {_number(v)}" for op, v in zip((">=", ">", "<=", "<"),
                                                              self.bounds, strict=True)
                         if v is not None)

    def in_range(self, value: float) -> bool:
        ge, gt, le, lt = self.bounds
        return not ((ge is not None and value < ge) or (gt is not None and value <= gt)
                    or (le is not None and value > le) or (lt is not None and value >= lt))

    @property
    def option(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def metavar(self) -> str:
        if self.choices:
            return "[" + "|".join(str(c) for c in self.choices) + "]"
        return METAVARS[self.kind] + (",..." if self.sequence else "")


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else str(value)


def field_specs(config_type: type) -> tuple[FieldSpec, ...]:
    """The fields of a config dataclass; TypeError on a type hw3 cannot read from TOML/CLI."""
    if not (isinstance(config_type, type) and dataclasses.is_dataclass(config_type)):
        raise TypeError(f"config_type {config_type!r} is not a dataclass type")
    hints = typing.get_type_hints(config_type)
    specs = []
    for f in dataclasses.fields(config_type):
        if not f.init:
            continue
        kind, sequence, choices = _classify(hints[f.name], f.name)
        default = REQUIRED if f.default is dataclasses.MISSING else f.default
        if f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        bounds = tuple(f.metadata.get("range", (None, None, None, None)))
        specs.append(FieldSpec(f.name, kind, sequence, choices,
                               str(f.metadata.get("help", "")), default,
                               str(f.metadata.get("cite", "")), bounds))  # type: ignore[arg-type]
    return tuple(specs)


def _classify(hint: Any, name: str) -> tuple[type, bool, tuple[Any, ...]]:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint in SCALARS:
        return hint, False, ()
    if origin is Literal and args and len({type(a) for a in args}) == 1 \
            and type(args[0]) in SCALARS:
        return type(args[0]), False, tuple(args)
    if origin in (tuple, list) and args and args[0] in SCALARS \
            and (origin is list or (len(args) == 2 and args[1] is Ellipsis)):
        return args[0], True, ()
    raise TypeError(f"config field {name!r} has type {hint!r}; hw3 reads bool, int, float, str, "
                    "Literal[...] and tuple[T, ...] of those")


# -- checking values -------------------------------------------------------------------
def coerce(spec: FieldSpec, value: Any, where: str) -> Any:
    """A TOML value checked (and widened int -> float) for ``spec``; ConfigError otherwise."""
    if spec.sequence:
        if not isinstance(value, list | tuple):
            raise _bad(spec, value, where, f"a list of {_plural(spec.kind)}")
        return tuple(_scalar(spec, v, where) for v in value)
    return _scalar(spec, value, where)


def _scalar(spec: FieldSpec, value: Any, where: str) -> Any:
    ok = isinstance(value, spec.kind) and not (spec.kind is not bool and isinstance(value, bool))
    if spec.kind is float and isinstance(value, int) and not isinstance(value, bool):
        value, ok = float(value), True
    if not ok:
        raise _bad(spec, value, where, NAMES[spec.kind])
    if spec.choices and value not in spec.choices:
        raise _bad(spec, value, where, "one of " + ", ".join(repr(c) for c in spec.choices))
    if spec.kind is float and not math.isfinite(value):
        raise _bad(spec, value, where, "a finite number")
    if spec.kind is int and not -INT64 <= value < INT64:
        raise _bad(spec, value, where, "an integer that fits in 64 bits")
    if spec.kind in (int, float) and not spec.in_range(value):
        raise _bad(spec, value, where, f"{NAMES[spec.kind]} {spec.range_text}")
    return value


def _bad(spec: FieldSpec, value: Any, where: str, expected: str) -> ConfigError:
    return ConfigError(f"{where}: key {spec.name!r}: expected {expected}, "
                       f"got {value!r} ({type(value).__name__})")


def _plural(kind: type) -> str:
    return {bool: "booleans", int: "integers", float: "numbers", str: "strings"}[kind]


def parse_option(spec: FieldSpec, text: str) -> Any:
    """A CLI string for ``spec`` (``"2,4,8"`` for a tuple) as a checked value."""
    where = f"option {spec.option}"
    if spec.sequence:
        items = [t.strip() for t in text.split(",") if t.strip()]
        return tuple(_scalar(spec, _from_text(spec, t, where), where) for t in items)
    return _scalar(spec, _from_text(spec, text, where), where)


def _from_text(spec: FieldSpec, text: str, where: str) -> Any:
    try:
        if spec.kind is bool:
            return {"true": True, "false": False, "1": True, "0": False}[text.lower()]
        return spec.kind(text)
    except (KeyError, ValueError):
        raise ConfigError(f"{where}: expected {NAMES[spec.kind]}, got {text!r}") from None


def check_names(field: str, given: Sequence[str], known: Sequence[str], *,
                allow_empty: bool = False) -> None:
    """For a config's ``__post_init__``: ``given`` are distinct names from ``known``."""
    unknown = [g for g in given if g not in known]
    if unknown or (not given and not allow_empty) or len(set(given)) != len(given):
        raise ValueError(f"{field} must be distinct names from {', '.join(known)}; "
                         f"got {', '.join(given) or 'none'}")


# -- layering --------------------------------------------------------------------------
Layer = tuple[str, Mapping[str, Any]]


def resolve(config_type: type, layers: Sequence[Layer]) -> Any:
    """The config instance: dataclass defaults, then each (source, values) layer in order."""
    specs = {s.name: s for s in field_specs(config_type)}
    values = {n: s.default for n, s in specs.items() if s.default is not REQUIRED}
    for source, layer in layers:
        for key, value in layer.items():
            if key not in specs:
                raise ConfigError(f"{source}: unknown key {key!r} (known: "
                                  f"{', '.join(specs) or 'none'})")
            values[key] = coerce(specs[key], value, source)
    missing = [n for n in specs if n not in values]
    if missing:
        raise ConfigError(f"no value for {', '.join(missing)}: set it in plugins.toml, "
                          "--config or on the command line")
    try:
        return config_type(**values)
    except ValueError as exc:
        raise ConfigError(f"{config_type.__name__}: {exc}") from exc


def read_toml(path: Path) -> dict[str, Any]:
    """A TOML file as a dict; ConfigError naming the file if it is missing or malformed."""
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, not a config file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None


PACKAGE_DIR = Path(__file__).resolve().parent


def defaults_path(package_dir: Path = PACKAGE_DIR) -> Path:
    """plugins.toml: $HW3_PLUGINS_TOML, else the copy an installed wheel holds (force-included
    as trainers/plugins.toml), else the repository root's (a source checkout)."""
    if env := os.environ.get(DEFAULTS_ENV):
        return Path(env)
    packaged = package_dir / "plugins.toml"
    return packaged if packaged.is_file() else package_dir.parent / "plugins.toml"


@dataclass(frozen=True)
class Defaults:
    """plugins.toml as one process reads it, once: per plugin, ``enabled`` and overrides of
    its config dataclass's defaults."""

    path: Path
    doc: Mapping[str, Any]

    @classmethod
    def load(cls, path: Path | None = None) -> Defaults:
        """plugins.toml read; none at all is fine, except one that $HW3_PLUGINS_TOML names."""
        named = path is not None or bool(os.environ.get(DEFAULTS_ENV))
        path = path or defaults_path()
        if named and not path.exists():
            raise ConfigError(f"{path}: no such file (named by ${DEFAULTS_ENV}); create it, "
                              f"or unset {DEFAULTS_ENV} to use the packaged plugins.toml")
        return cls(path, read_toml(path) if named or path.is_file() else {})

    def layer(self, name: str) -> Layer:
        """The ``[name]`` table as a layer for :func:`resolve`."""
        return f"{self.path} [{name}]", plugin_table(self.doc, name, str(self.path))

    def enabled(self, name: str) -> bool:
        return is_enabled(self.doc, name, str(self.path))


def plugin_table(doc: Mapping[str, Any], name: str, source: str) -> dict[str, Any]:
    """The ``[name]`` table of a plugins.toml-shaped document, without its ``enabled`` key."""
    table = doc.get(name, {})
    if not isinstance(table, dict):
        raise ConfigError(f"{source}: {name!r} must be a table ([{name}])")
    return {k: v for k, v in table.items() if k != "enabled"}


def overlay_table(doc: Mapping[str, Any], name: str, source: str) -> dict[str, Any]:
    """A --config file: its ``[name]`` table if it has one, else its top-level keys."""
    if name in doc:
        return plugin_table(doc, name, source)
    return {k: v for k, v in doc.items() if not isinstance(v, dict)}


def is_enabled(doc: Mapping[str, Any], name: str, source: str) -> bool:
    """``enabled`` of the ``[name]`` table (default true); it must be a boolean."""
    table = doc.get(name, {})
    value = table.get("enabled", True) if isinstance(table, dict) else True
    if not isinstance(value, bool):
        raise ConfigError(f"{source} [{name}]: key 'enabled': expected true or false, "
                          f"got {value!r}")
    return value


def config_values(config: Any) -> dict[str, Any]:
    """A config instance as plain TOML-ready values (tuples become lists)."""
    return {f.name: list(v) if isinstance(v := getattr(config, f.name), tuple) else v
            for f in dataclasses.fields(config)}


# -- writing TOML ------------------------------------------------------------------------
def to_toml(tables: Mapping[str, Mapping[str, Any]]) -> str:
    """``{"table": {"key": value}}`` as TOML (tomli-w: quoting and escapes of any key or
    string, nan and inf); values are scalars or lists of scalars. Imported here, on the one
    path that writes a run's config.toml, so ``hw3 list`` never needs it."""
    import tomli_w

    return tomli_w.dumps({table: dict(values) for table, values in tables.items()})
