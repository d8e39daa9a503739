"""What every front end asks of archcalc, written once: the command line (:mod:`archcalc.cli`)
and the documentation's directives take a user's text (an input shape, parameter settings, a
model name, a view) and get reports and tables from here. Errors name the option as the
front end spells it (``--input`` on the command line, ``:input:`` in a directive)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from archcalc.analysis import Report, analyze
from archcalc.errors import UsageError
from archcalc.layers import Shape
from archcalc.notation import INPUT_FORMS, channels_first, parse_dims
from archcalc.render import homework_table, layer_table, report_dict
from archcalc.tabular import Table
from archcalc.zoo import load

INCEPTION = ("inception-naive", "inception-reduction")  # seed Fig. 1, side by side


def input_shape(text: str | None, option: str = "--input") -> Shape | None:
    """``HxWxC`` -> (C, H, W); ``LxC`` -> (C, L); ``N`` -> (N,); None or "" -> None."""
    if not text:
        return None
    dims = parse_dims(text)
    if dims is None or any(d <= 0 for d in dims):
        raise UsageError(f"{option} {text!r}: expected {INPUT_FORMS} with positive sizes "
                         "(e.g. 224x224x3)")
    return channels_first(dims)


def parameters(items: Iterable[str], option: str = "--set") -> dict[str, int]:
    """``["n=7", "c1=64"]`` -> {"n": 7, "c1": 64}."""
    params: dict[str, int] = {}
    for item in items:
        m = re.fullmatch(r"\s*([A-Za-z_]\w*)\s*=\s*(-?\d{1,18})\s*", item)
        if not m:
            raise UsageError(f"{option} {item!r}: expected NAME=INTEGER (e.g. n=7)")
        params[m.group(1)] = int(m.group(2))
    return params


def report(model: str, shape: Shape | None = None, params: dict[str, int] | None = None,
           convention: str = "full") -> Report:
    """A zoo model or spec file with parameters set, analysed at ``shape`` (None: its own)."""
    return analyze(load(model, **(params or {})), convention, shape)


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


def view(report_: Report, fmt: str, *, table: bool = False, bias: bool = False,
         dtype: str = "float32", batch: int = 1) -> tuple[Table, dict[str, Any] | None]:
    """What ``archcalc MODEL`` shows: the homework table (``table``) or the full per-layer
    view, with the JSON schema's data when ``fmt`` is json (see :mod:`archcalc.render`)."""
    if table:
        return homework_table(report_, bias, dtype, batch), None
    data = report_dict(report_) if fmt == "json" else None
    return layer_table(report_, dtype, batch), data
