"""The JSON archcalc's commands write with ``--format json``: one envelope, one version.

Every document is an object whose first key is ``schema_version`` and which has a
``warnings`` list (empty when there is nothing to say). Keys are only ever added within a
version; a change to what an existing key means raises :data:`SCHEMA_VERSION`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

SCHEMA_VERSION = 1


def envelope(data: dict[str, Any], warnings: Iterable[str] = ()) -> dict[str, Any]:
    """``data`` with the schema version first and the warnings last."""
    return {"schema_version": SCHEMA_VERSION, **data, "warnings": list(warnings)}


def plain(value: object) -> object:
    """``value`` as JSON can hold it: tuples as lists, numbers and text as they are, any
    other object (a receptive-field box, a sympy expression) as its text."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, tuple | list):
        return [plain(v) for v in value]
    return str(value)
