"""autodoc shows every dataclass with its fields, so the API page lists what a record holds.

archcalc's records (``Row``, ``Totals``, ``Report``, ``Graph``: subclasses of
:class:`archcalc.records.Record`) inherit a generic ``__init__(*args, **kwargs)`` and most
document their fields with a comment beside each one, which autodoc does not read. Here each
dataclass gets

- the signature of its fields (``Row(path: str, label: str, ...)``), not ``(*args, **kwargs)``;
- a ``:ivar NAME:`` / ``:vartype NAME:`` pair per field, its text from the field's
  ``help`` metadata (hw3's ``setting(...)``) or else the comment written beside it in the
  source, so every field is listed, documented where the code documents it.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
from typing import Any

from sphinx.application import Sphinx

_FIELD = re.compile(r"^    (\w+)\s*:\s*[^#]*?(?:#:?\s*(?P<text>.*))?$")
_CONTINUED = re.compile(r"^\s+#:?\s*(?P<text>.*)$")


def field_comments(cls: type) -> dict[str, str]:
    """``{field: comment}`` for the comments written beside (and continued under) the
    fields in ``cls``'s own source."""
    try:
        lines = inspect.getsource(cls).splitlines()
    except (OSError, TypeError):
        return {}
    found: dict[str, str] = {}
    current: str | None = None
    for line in lines[1:]:
        match = _FIELD.match(line)
        if match:
            current = match.group(1)
            if match.group("text"):
                found[current] = match.group("text").strip()
            else:
                current = None
            continue
        more = _CONTINUED.match(line)
        if more and current in found:
            found[current] += " " + more.group("text").strip()
        else:
            current = None
    return found


def _fields(obj: Any) -> tuple[dataclasses.Field[Any], ...]:
    if not (isinstance(obj, type) and dataclasses.is_dataclass(obj)):
        return ()
    return dataclasses.fields(obj)


def _type_text(f: dataclasses.Field[Any]) -> str:
    return f.type if isinstance(f.type, str) else getattr(f.type, "__name__", repr(f.type))


def field_signature(app: Sphinx, what: str, name: str, obj: Any, options: Any,
                    signature: str | None, return_annotation: str | None
                    ) -> tuple[str, str | None] | None:
    """A dataclass's signature as its fields, when its ``__init__`` hides them."""
    found = _fields(obj)
    if what != "class" or not found or (signature and "*args" not in signature):
        return None
    parts = []
    for f in found:
        if not f.init:
            continue
        default = "" if f.default is dataclasses.MISSING else f" = {f.default!r}"
        if f.default_factory is not dataclasses.MISSING:
            default = " = ..."
        parts.append(f"{f.name}: {_type_text(f)}{default}")
    return f"({', '.join(parts)})", None  # a constructor: no "-> None"


def field_docs(app: Sphinx, what: str, name: str, obj: Any, options: Any,
               lines: list[str]) -> None:
    """Appends one ``:ivar:`` per field (Sphinx renders them as a "Variables" list)."""
    found = _fields(obj)
    if what != "class" or not found:
        return
    comments = field_comments(obj)
    if lines and lines[-1].strip():
        lines.append("")
    for f in found:
        text = str(f.metadata.get("help", "")) or comments.get(f.name, "")
        lines.append(f":ivar {f.name}: {text}".rstrip())
        lines.append(f":vartype {f.name}: {_type_text(f)}")


def setup(app: Sphinx) -> dict[str, Any]:
    app.setup_extension("sphinx.ext.autodoc")
    app.connect("autodoc-process-signature", field_signature)
    app.connect("autodoc-process-docstring", field_docs)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
