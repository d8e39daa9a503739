"""What every front end asks of archcalc, written once: the command line (:mod:`archcalc.cli`)
and the documentation's directives take a user's text (an input shape, parameter settings, a
model name, a view) and get reports and tables from here. Errors name the option as the
front end spells it (``--input`` on the command line, ``:input:`` in a directive)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from archcalc.analysis import Report, analyze
from archcalc.errors import UsageError, shorten
from archcalc.layers import Graph, Shape
from archcalc.notation import INPUT_FORMS, channels_first, parse_dims
from archcalc.render import homework_table, layer_table, report_dict
from archcalc.tabular import Table
from archcalc.zoo import load

if TYPE_CHECKING:  # the importers load only when a model is imported
    from archcalc.importers.dataflow import Imported

INCEPTION = ("inception-naive", "inception-reduction")  # seed Fig. 1, side by side


def version() -> str:
    """The installed distribution's version; from a source checkout that was never
    installed, the version its pyproject.toml declares, marked as such."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed(DISTRIBUTION)
    except PackageNotFoundError:
        pass
    import tomllib
    from pathlib import Path

    pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
    try:
        project = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("project", {})
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        project = {}
    if project.get("name") == DISTRIBUTION and isinstance(project.get("version"), str):
        return f"{project['version']} (source checkout, not installed)"
    return "unknown (not installed)"


DISTRIBUTION = "archcalc-hw3"  # the name pip knows archcalc by


def input_shape(text: str | None, option: str = "--input") -> Shape | None:
    """``HxWxC`` -> (C, H, W); ``LxC`` -> (C, L); ``N`` -> (N,); None or "" -> None."""
    if not text:
        return None
    dims = parse_dims(text)
    if dims is None or any(d <= 0 for d in dims):
        raise UsageError(f"{option} {shorten(text)!r}: expected {INPUT_FORMS} with positive sizes "
                         "(e.g. 224x224x3)")
    return channels_first(dims)


def parameters(items: Iterable[str], option: str = "--set") -> dict[str, int]:
    """``["n=7", "c1=64"]`` -> {"n": 7, "c1": 64}: names and numbers as a spec writes them
    (ASCII letters and digits, at most 18 digits)."""
    params: dict[str, int] = {}
    for item in items:
        m = re.fullmatch(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(-?[0-9]{1,18})\s*", item)
        if not m:
            raise UsageError(f"{option} {shorten(item)!r}: expected NAME=INTEGER with at most "
                             "18 digits (e.g. n=7)")
        params[m.group(1)] = int(m.group(2))
    return params


def report(model: str, shape: Shape | None = None, params: dict[str, int] | None = None,
           convention: str = "full", skip_unknown: bool = False) -> Report:
    """A zoo model, spec file or ONNX file with parameters set, analysed at ``shape``
    (None: its own); ``skip_unknown`` passes over an ONNX file's nodes without a rule that
    keep their input's shape (the report's warnings name them)."""
    if model.lower().endswith(".onnx"):
        return read_onnx(model, shape, skip_unknown).report(convention)
    if skip_unknown:
        raise UsageError("--skip-unknown is for imported models (an ONNX file, archcalc "
                         f"torch, archcalc keras); {shorten(model)!r} is read by archcalc's "
                         "own rules")
    return analyze(load(model, **(params or {})), convention, shape)


def onnx_graph(path: str, shape: Shape | None) -> Graph:
    """``archcalc model.onnx``: :func:`archcalc.importers.onnx.onnx_graph`."""
    return read_onnx(path, shape).graph


def read_onnx(path: str, shape: Shape | None, skip_unknown: bool = False) -> Imported:
    """:func:`archcalc.importers.onnx.read_onnx` of a file, with a clear error without the
    onnx package or the file."""
    try:
        from archcalc.importers.onnx import read_onnx as read
    except ImportError:
        raise UsageError("reading ONNX needs the onnx package: pip install "
                         "'archcalc-hw3[onnx]'") from None
    from pathlib import Path

    if not Path(path).is_file():
        raise UsageError(f"no ONNX file {path!r}")
    return read(path, shape, skip_unknown=skip_unknown)


def inception_reports(params: dict[str, int], shape: Shape | None = None,
                      option: str = "--set") -> tuple[Report, Report]:
    """Both inception modules, each with the parameters it declares (c1, c3, c5 both; r3,
    r5, pool_proj the reduction module); a parameter neither has is an error."""
    declared = {name: {k for k, _ in load(name).params} for name in INCEPTION}
    known = set().union(*declared.values())
    unknown = sorted(set(params) - known)
    if unknown:
        raise UsageError(f"{option} {unknown[0]}: neither inception module has this "
                         f"parameter (parameters: {', '.join(sorted(known))})")
    naive, reduced = (report(name, shape, {k: v for k, v in params.items()
                                           if k in declared[name]})
                      for name in INCEPTION)
    return naive, reduced


def factory_model(target: str, args: Iterable[str] = (), option: str = "--arg",
                  **extra: Any) -> Any:
    """The object ``PACKAGE.MODULE:FACTORY`` (or ``path/to/file.py:FACTORY``) returns when
    called with ``NAME=VALUE`` arguments (whole numbers, decimals, true/false, none, else
    text) and the keyword arguments ``extra``."""
    module_name, sep, attr = target.rpartition(":")
    if not sep or not module_name or not attr:
        raise UsageError(f"{target!r}: expected PACKAGE.MODULE:FACTORY or FILE.py:FACTORY "
                         "(e.g. mymodels.resnet:resnet18)")
    module = _import(module_name)
    factory = getattr(module, attr, None)
    if factory is None or not callable(factory):
        raise UsageError(f"{target!r}: {module_name} has no callable {attr!r}")
    kwargs = {key: _value(text) for key, text in (_argument(a, option) for a in args)}
    kwargs = extra | kwargs
    try:
        return factory(**kwargs)
    except Exception as exc:  # the user's own code: report it, as a spec error is reported
        raise UsageError(f"{target}({', '.join(f'{k}={v!r}' for k, v in kwargs.items())}) "
                         f"failed: {type(exc).__name__}: {exc}") from None


def _import(name: str) -> Any:
    import importlib
    import importlib.util
    import sys
    from pathlib import Path

    try:
        if name.endswith(".py"):
            path = Path(name)
            spec = importlib.util.spec_from_file_location(f"archcalc_factory.{path.stem}",
                                                          path)
            if spec is None or spec.loader is None or not path.is_file():
                raise UsageError(f"no Python file {name!r}")
            module = importlib.util.module_from_spec(spec)
            # its own name, never a library's: a user's json.py must not replace json
            sys.modules[spec.name] = module
            sys.path.insert(0, str(path.resolve().parent))  # for the file's own imports
            try:
                spec.loader.exec_module(module)
            finally:
                sys.path.remove(str(path.resolve().parent))
            return module
        return importlib.import_module(name)
    except UsageError:
        raise
    except Exception as exc:  # ImportError, or the module's own code failing
        raise UsageError(f"cannot import {name}: {type(exc).__name__}: {exc}") from None


def _argument(text: str, option: str) -> tuple[str, str]:
    key, eq, value = text.partition("=")
    if not eq or not re.fullmatch(r"[A-Za-z_]\w*", key.strip()):
        raise UsageError(f"{option} {text!r}: expected NAME=VALUE (e.g. depth=50)")
    return key.strip(), value.strip()


def _value(text: str) -> int | float | bool | str | None:
    if re.fullmatch(r"-?\d{1,18}", text):
        return int(text)
    if text.lower() == "none":  # keras.applications' weights=None
        return None
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    try:
        return float(text)
    except ValueError:
        return text


def torch_graph(target: str, args: Iterable[str], shape: Shape | None,
                skip_unknown: bool = False) -> Graph:
    """``archcalc torch``: the module a factory builds, read by
    :func:`archcalc.importers.torch.torch_graph` at ``shape`` (default 224x224x3)."""
    return read_torch(target, args, shape, skip_unknown).graph


def read_torch(target: str, args: Iterable[str], shape: Shape | None,
               skip_unknown: bool = False) -> Imported:
    """:func:`torch_graph`, and the calls ``skip_unknown`` passed over."""
    from archcalc.importers.torch import read_torch as read

    return read(_torch_module(target, args), shape or (3, 224, 224),
                name=target.rpartition(":")[2], skip_unknown=skip_unknown)


def _torch_module(target: str, args: Iterable[str]) -> Any:
    """The torch.nn.Module a factory builds; a clear error without torch."""
    try:
        import torch
    except ImportError:
        raise UsageError("reading a torch model needs torch: pip install "
                         "'archcalc-hw3[verify]'") from None
    model = factory_model(target, args)
    if not isinstance(model, torch.nn.Module):
        raise UsageError(f"{target} returned {type(model).__name__}, not a torch.nn.Module")
    return model


def torch_report(target: str, args: Iterable[str], shape: Shape | None,
                 convention: str = "full", skip_unknown: bool = False) -> Report:
    return read_torch(target, args, shape, skip_unknown).report(convention)


def verify_against(spec: str, target: str, args: Iterable[str], shape: Shape | None,
                   params: dict[str, int]) -> Any:
    """``archcalc verify SPEC --against FACTORY``: the spec beside the torch model it claims
    to describe (:func:`archcalc.verify.against`), at the spec's input or ``shape``."""
    from archcalc.verify import against

    graph = load(spec, **params)
    size = shape or graph.input_shape
    module = _torch_module(target, args)
    from archcalc.importers.torch import torch_graph as read

    model = read(module, size, name=target.rpartition(":")[2])
    numel = (sum(p.numel() for p in module.parameters()),
             sum(b.numel() for n, b in module.named_buffers()
                 if n.endswith(("running_mean", "running_var"))))
    return against(graph, model, numel, size)


def graph_of(source: str, shape: Shape | None = None, params: dict[str, int] | None = None,
             args: Iterable[str] = ()) -> Graph:
    """A zoo name or spec file, an ONNX or saved Keras model, or a torch factory
    (``PACKAGE.MODULE:FACTORY``, ``FILE.py:FACTORY``): what ``archcalc to-spec`` writes."""
    if source.lower().endswith(".onnx"):
        return onnx_graph(source, shape)
    if source.lower().endswith(".keras"):
        return keras_graph(source, args, shape)
    if ":" in source and not source.endswith(".arch"):
        return torch_graph(source, args, shape)
    graph = load(source, **(params or {}))
    return graph if shape is None else replace(graph, input_shape=shape)


def view(report_: Report, fmt: str, *, table: bool = False, bias: bool = False,
         dtype: str = "float32", batch: int = 1) -> tuple[Table, dict[str, Any] | None]:
    """What ``archcalc MODEL`` shows: the homework table (``table``) or the full per-layer
    view, with the JSON schema's data when ``fmt`` is json (see :mod:`archcalc.render`)."""
    if table:
        return homework_table(report_, bias, dtype, batch), None
    data = report_dict(report_) if fmt == "json" else None
    return layer_table(report_, dtype, batch), data


def keras_graph(target: str, args: Iterable[str], shape: Shape | None) -> Graph:
    """``archcalc keras``: :func:`read_keras`'s graph."""
    return read_keras(target, args, shape).graph


def read_keras(target: str, args: Iterable[str], shape: Shape | None,
               skip_unknown: bool = False) -> Imported:
    """``archcalc keras``: a saved model (``model.keras``) or the model a factory builds
    (``PACKAGE.MODULE:FACTORY``, ``FILE.py:FACTORY``), read by
    :func:`archcalc.importers.keras.keras_graph`. With ``shape`` a factory is called with
    ``input_shape=(H, W, C)``, as keras.applications' are; a saved model's size is fixed."""
    try:
        import keras  # noqa: F401  # only to say clearly that it is missing
    except ImportError:
        raise UsageError("reading a Keras model needs keras (and tensorflow): pip install "
                         "tensorflow") from None
    from pathlib import Path

    from archcalc.importers.keras import read_keras as read

    args = list(args)
    if target.lower().endswith(".keras"):
        if args:
            raise UsageError(f"--arg is for a factory; {target} is a saved model")
        model, name = _saved_keras(target), Path(target).stem
    else:
        size: dict[str, Any] = {} if shape is None else {"input_shape": (*shape[1:], shape[0])}
        model, name = factory_model(target, args, **size), target.rpartition(":")[2]
    imported = read(model, name=name, skip_unknown=skip_unknown)
    if shape is not None and imported.graph.input_shape != shape:
        raise UsageError(f"--input: {name} takes {imported.graph.input_shape} (channels "
                         f"first), not {shape}; a Keras model's input size is set when it "
                         "is built")
    return imported


def _saved_keras(path: str) -> Any:
    from pathlib import Path

    import keras

    if not Path(path).is_file():
        raise UsageError(f"no Keras model file {path!r}")
    try:
        return keras.saving.load_model(path, compile=False)
    except Exception as exc:  # a damaged file, or custom layers it cannot rebuild
        raise UsageError(f"cannot load {path}: {type(exc).__name__}: {exc}") from None


def keras_report(target: str, args: Iterable[str], shape: Shape | None,
                 convention: str = "full", skip_unknown: bool = False) -> Report:
    return read_keras(target, args, shape, skip_unknown).report(convention)
