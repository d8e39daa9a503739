"""The text of the docs' ``:archcalc:`MODEL [NAME=INT ...]:FIELD``` role, computed by archcalc.

One function serves both readers of a written part: the Sphinx role (docs/_ext) puts its
value in the page while the docs build, and ``hw3 explain`` puts the same value in the
terminal text, so a page and the command cannot disagree. archcalc only (no framework).
"""

from __future__ import annotations

import math
import re

from archcalc import service, zoo
from archcalc.algebra import fmt_shape
from archcalc.analysis import Report
from archcalc.errors import UsageError

TOTALS = ("activations", "weights", "biases", "params", "buffers", "macs", "flops")


def archcalc_value(text: str) -> str:
    """The text of ``:archcalc:`MODEL [NAME=INT ...]:FIELD```: a total with thousands
    separators, the input or output shape, the fully connected chain (``units``), each
    convolution's output channels (``filters``) or the value of one of the spec's
    parameters (e.g. a filter count). An ArchcalcError says what is wrong with ``text``."""
    spec, sep, field = text.rpartition(":")
    model, *sets = spec.split()
    if not sep or not model:
        raise UsageError("expected MODEL[ NAME=INT ...]:FIELD, e.g. vgg19:params")
    settings = service.parameters(re.split(r"[\s,]+", " ".join(sets)) if sets else (), ":set:")
    report = service.report(model, None, settings, "full")
    field = field.strip()
    if field == "input":
        return fmt_shape(report.input_shape)
    if field == "output":
        return fmt_shape(report.rows[-1].out_shape)
    if field == "units":
        return units_chain(report)
    if field == "filters":
        return ", ".join(str(r.out_shape[0]) for r in report.rows if r.kind == "conv")
    if field in TOTALS:
        return f"{getattr(report.totals, field):,}"
    params = dict(zoo.load(model, **settings).params)
    if field in params:
        return f"{params[field]:,}"
    raise UsageError(f"unknown field {field!r} (fields: input, output, units, filters, "
                     f"{', '.join(TOTALS)}; parameters of {model}: {', '.join(params)})")


def units_chain(report: Report) -> str:
    """``3072-1000-1000-10``: the inputs of the first fully connected layer, then the outputs
    of each one (an MLP's usual name)."""
    linear = [r for r in report.rows if r.kind == "linear"]
    if not linear:
        raise UsageError(f"{report.model} has no fully connected layer")
    return "-".join(str(n) for n in (math.prod(linear[0].in_shape),
                                     *(math.prod(r.out_shape) for r in linear)))
