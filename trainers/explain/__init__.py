"""The written parts of the homework that the experiments do not compute (Problem 1.1's
update rules, Problem 2's scaling definitions, Problem 4.1's Cutout explanation, Problem 5's
depth against width), one reStructuredText file per topic.

The ``*.rst`` files beside this module are the only copy: ``hw3 explain TOPIC`` prints them
and the problem pages include them (``.. include::``, in slices cut at ``.. cut: NAME``
comments where a page puts a settings table between two parts). For the terminal the markup
is thinned: roles and literals lose their backticks, comments go, and a ``.. math::`` block
keeps its LaTeX indented under the text, ``:protocol:`PLUGIN:SETTING``` becomes the
value the docs show (the plugin's config, no framework imported) and
``:archcalc:`MODEL:FIELD``` the number archcalc computes for the docs' role (values.py, the
one function both use).
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

from trainers.errors import ConfigError

HERE = Path(__file__).parent


@dataclass(frozen=True)
class Topic:
    name: str
    title: str
    file: str

    def source(self) -> str:
        return (HERE / self.file).read_text(encoding="utf-8")


TOPICS = {t.name: t for t in (
    Topic("optimizers", "Problem 1.1: the five update rules; AdaDelta and Adam against "
          "RMSProp", "optimizers.rst"),
    Topic("scaling", "Problem 2: strong and weak scaling, what is measured, the network "
          "trained", "scaling.rst"),
    Topic("cutout", "Problem 4.1: Cutout, why it is not just dropout; batch augmentation",
          "cutout.rst"),
    Topic("depth-width", "Problem 5: what depth does to the parameter count; the trade-off",
          "depth-width.rst"),
)}

_PROTOCOL = re.compile(r":protocol:`([^`:]+):([^`]+)`")
_ARCHCALC = re.compile(r":archcalc:`([^`]+)`")
_ROLE = re.compile(r":[a-z-]+:`([^`]*)`")
_LITERAL = re.compile(r"``([^`]*)``")


def topic(name: str) -> Topic:
    """The topic called ``name``; a ConfigError (one line, exit 2) naming the known ones."""
    if name not in TOPICS:
        raise ConfigError(f"no explanation called {name!r}; known: {', '.join(TOPICS)}")
    return TOPICS[name]


def terminal_text(rst: str, width: int = 79) -> str:
    """``rst`` as a terminal shows it: no comments, roles and literals without backticks,
    ``:protocol:`` and ``:archcalc:`` values put in, math blocks kept (LaTeX, indented),
    paragraphs refilled to ``width`` columns."""
    out: list[str] = []
    skipping = False
    for line in rst.splitlines():
        if line.startswith(".. math::"):
            skipping = False
            continue
        if line.startswith(".. "):  # a comment (cut marks, notes for editors)
            skipping = True
            continue
        if skipping and (line.startswith("   ") or not line.strip()):
            if not line.strip():
                skipping = False
            continue
        skipping = False
        line = _PROTOCOL.sub(lambda m: protocol_value(m[1], m[2]), line)
        line = _ARCHCALC.sub(lambda m: archcalc_value(m[1]), line)
        out.append(_LITERAL.sub(r"\1", _ROLE.sub(r"\1", line)))
    blocks = re.split(r"\n\s*\n", "\n".join(out).strip())
    return "\n\n".join(rewrap(b, width) for b in blocks if b.strip()) + "\n"


def rewrap(block: str, width: int) -> str:
    """A paragraph or ``-`` list refilled to ``width`` columns; headings and indented
    blocks (math) kept as they are."""
    lines = block.splitlines()
    heading = len(lines) == 2 and set(lines[1]) <= set("-~=^") and lines[1]
    if heading or lines[0].startswith(" "):
        return block
    if lines[0].startswith("- "):
        items = re.split(r"\n(?=- )", block)
        return "\n".join(textwrap.fill(" ".join(i[2:].split()), width, initial_indent="- ",
                                       subsequent_indent="  ", break_long_words=False,
                                       break_on_hyphens=False) for i in items)
    return textwrap.fill(" ".join(block.split()), width, break_long_words=False,
                         break_on_hyphens=False)


def archcalc_value(text: str) -> str:
    """What the docs' ``:archcalc:`MODEL:FIELD``` shows, computed by the same function."""
    from trainers.explain.values import archcalc_value as value

    return value(text)


def protocol_value(plugin: str, name: str) -> str:
    """What the docs' ``:protocol:`PLUGIN:SETTING``` shows: the value ``hw3 run PLUGIN``
    uses (the config default, or plugins.toml's override)."""
    from trainers import config as cfg
    from trainers.registry import registry

    config = cfg.resolve(registry().get(plugin).config_type,
                         [cfg.Defaults.load().layer(plugin)])
    value = getattr(config, name)
    if isinstance(value, list | tuple):
        return ", ".join(map(str, value))
    return f"{value:,}" if isinstance(value, int) and abs(value) >= 10_000 else str(value)
