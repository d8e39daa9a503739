"""Words and numbers shared by the plugins' reports: human numbers, the reductions of a run
against its protocol, and the caveat that marks an answer as depending on the run shown.

torch-free and matplotlib-free, so a report's text can be tested without drawing.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import fields
from typing import Any

RUN_SHOWN = "In the run shown"
# The key of a checkpoint's extra under which a plugin keeps the results of the trainings
# it finished (results.json's form plus ``partial``: finished, total, unit), so hw3 report
# can show an interrupted run.
PARTIAL_KEY = "partial_results"


def partial_results(results: dict[str, Any], finished: int, total: int,
                    unit: str) -> dict[str, Any]:
    """``results`` marked as covering ``finished`` of ``total`` ``unit`` (a checkpoint's
    snapshot, stored under :data:`PARTIAL_KEY`). Passed through JSON, as results.json is:
    ``report`` sees the same types, and a checkpoint holds only what torch's
    ``weights_only`` loader reads back (no numpy scalars)."""
    marked = {**results, "partial": {"finished": finished, "total": total, "unit": unit}}
    return json.loads(json.dumps(marked))  # type: ignore[no-any-return]


def partial_banner(finished: int, total: int, unit: str, plugin: str, run_id: str) -> str:
    """The line on top of a partial run's summary: how much finished, how to finish it."""
    return (f"> **PARTIAL run: {finished} of {total} {unit} finished; resume with hw3 run "
            f"{plugin} --resume {run_id}.** Only what finished is shown; no comparison below "
            "covers what did not run.")


def partial_note(results: Any) -> str:
    """``partial: 1 of 10 trainings`` for a partial run's results, else ``""``; for plot
    footnotes and the written answers."""
    mark = results.get("partial") if hasattr(results, "get") else None
    if not isinstance(mark, dict):
        return ""
    return f"partial run: {mark['finished']} of {mark['total']} {mark['unit']} finished"


def human(value: float | int | None, digits: int = 3) -> str:
    """A number as a person writes it: ``11,130``, ``37.6``, ``0.0068``; never ``1.1e+04``.

    ``digits`` significant digits, thousands separated; integers are kept whole."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    if value == 0 or math.isinf(value):
        return f"{value:g}"
    magnitude = math.floor(math.log10(abs(value)))
    decimals = max(0, digits - 1 - magnitude)
    if decimals == 0:
        return f"{round(value):,}"
    text = f"{value:,.{decimals}f}"
    return text


def seconds(value: float | None) -> str:
    """A duration: ``0.42 s``, ``37.6 s``, ``12.5 min``, ``3.1 h``."""
    if value is None or math.isnan(value):
        return "-"
    if value < 600:
        return f"{human(value)} s"
    if value < 3 * 3600:
        return f"{human(value / 60)} min"
    return f"{human(value / 3600)} h"


def shown(value: Any) -> str:
    """A setting as it is typed: ``1,2,4`` for tuples."""
    return ",".join(map(str, value)) if isinstance(value, tuple | list) else str(value)


def reductions(config: Any, names: Iterable[str]) -> list[str]:
    """``name value (protocol P)`` for each of ``names`` where ``config`` departs from its
    dataclass default, which is the homework's protocol (each plugin's config says so)."""
    protocol = {f.name: f.default for f in fields(config)}
    out = []
    for name in names:
        value, full = getattr(config, name), protocol.get(name)
        if value != full:
            said = "all" if full == 0 and name in ("steps", "train_samples") else shown(full)
            out.append(f"{name} {shown(value)} (protocol {said})")
    return out


def reduced_banner(reduced: list[str], stand_in: bool) -> str:
    """The one paragraph every summary carries near its top: what was cut, what the numbers
    can and cannot say."""
    if not reduced and not stand_in:
        return "Protocol: the homework's full protocol, on the data it names."
    what = []
    if reduced:
        what.append("reduced: " + "; ".join(reduced))
    if stand_in:
        what.append("stand-in (synthetic) data")
    return (f"> **Not the homework's protocol** ({'; '.join(what)}). The numbers show the "
            "pipeline and the method; they do not answer the homework's question, and the "
            "written answers below say only what these numbers support.")
