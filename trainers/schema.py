"""The JSON hw3's commands write with ``--format json``: one envelope, one version.

Every document is an object whose first key is ``schema_version`` and whose last is
``warnings``, a list of what a person would have read beside a table (empty when there is
nothing to say). Keys are only ever added within a version; a key that changes meaning or
goes away raises :data:`SCHEMA_VERSION`. The README lists each command's keys.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from trainers.errors import ConfigError

SCHEMA_VERSION = 1
FORMATS = ("table", "json")


def envelope(document: dict[str, Any], warnings: Iterable[str] = ()) -> dict[str, Any]:
    """``document`` with the schema version first and the warnings last."""
    return {"schema_version": SCHEMA_VERSION, **document, "warnings": list(warnings)}


def dumps(document: dict[str, Any], warnings: Iterable[str] = ()) -> str:
    return json.dumps(envelope(document, warnings), indent=1)


def wants_json(fmt: str) -> bool:
    """True for json, False for table; a ConfigError (one line, exit 2) for anything else."""
    if fmt not in FORMATS:
        raise ConfigError(f"--format {fmt}: expected table or json")
    return fmt == "json"
