"""The written answers of Problem 3 (3.3's proof, 3.4's explanations), one text per part.

The ``*.md`` files beside this module are the only copy: ``archcalc explain TOPIC`` prints
them and the docs page of Problem 3 includes them (``.. include::``). So that one file can
serve both, each is written in the part of Markdown that reads the same as
reStructuredText: paragraphs, bold, emphasis, code in double backticks and ``-`` lists, no
headings (the CLI and the page each add their own) and math as plain Unicode text
(``(NF−N+1)×(NF−N+1)``), which a terminal shows as it is. A number that comes from a zoo
spec is written ``|MODEL:PARAM|``, a reStructuredText substitution: the page defines it with
archcalc's ``:archcalc:`` role, and :meth:`Part.text` puts in the spec's value. A test parses
every file both ways and compares the text.
"""

from __future__ import annotations

import re
from pathlib import Path

from archcalc import zoo
from archcalc.errors import UsageError, shorten, suggest
from archcalc.records import Record

HERE = Path(__file__).parent
REFERENCE = re.compile(r"\|([a-z0-9.-]+):([a-z0-9_]+)\|")


def spec_value(model: str, param: str) -> str:
    """A zoo spec's ``param`` value as the docs' ``:archcalc:`MODEL:PARAM``` writes it."""
    params = dict(zoo.load(model).params)
    if param not in params:
        raise ValueError(f"{model} has no parameter {param!r} (it has {', '.join(params)})")
    return f"{params[param]:,}"


class Part(Record):
    """One written answer: its heading (as the docs' subsection is titled) and its file."""

    heading: str
    file: str

    @property
    def path(self) -> Path:
        return HERE / self.file

    def source(self) -> str:
        """The file as written, ``|MODEL:PARAM|`` references and all."""
        return self.path.read_text(encoding="utf-8")

    def text(self) -> str:
        """The file with each ``|MODEL:PARAM|`` replaced by the zoo spec's value."""
        return REFERENCE.sub(lambda m: spec_value(m.group(1), m.group(2)), self.source())


class Topic(Record):
    name: str
    question: str  # the homework's number, e.g. "3.3"
    title: str
    parts: tuple[Part, ...]
    numbers: str  # the command that computes what the text argues

    def markdown(self) -> str:
        """The topic as one Markdown document: a title, then each part under its heading."""
        out = [f"# {self.question} {self.title}", ""]
        for part in self.parts:
            if part.heading:
                out += [f"## {part.heading}", ""]
            out += [part.text().strip(), ""]
        out.append(f"The numbers (``{self.numbers}``): {RESULTS[self.name]()}")
        return "\n".join(out) + "\n"


def _rf_result() -> str:
    """Question 3.3's numbers, three 5x5 filters, as ``archcalc rf`` derives them."""
    from archcalc.symbolic import rf_stack

    return rf_stack(3, 5).steps()[-1][1] + "."


def _inception_result() -> str:
    """Question 3.4's saving line, as ``archcalc inception`` computes it (Figure 1)."""
    from archcalc.render import inception_table
    from archcalc.service import inception_reports

    return inception_table(*inception_reports({})).footer[-1].removeprefix("Saving: ")


RESULTS = {"rf": _rf_result, "inception": _inception_result}


TOPICS = {t.name: t for t in (
    Topic("rf", "3.3", "Receptive field of stacked convolutions",
          (Part("", "rf.md"),), "archcalc rf --layers 3 --kernel 5"),
    Topic("inception", "3.4", "Inception modules",
          (Part("(a) The idea behind the inception module", "inception-idea.md"),
           Part("(d) The problem with the naive module, and the saving",
                "inception-saving.md")), "archcalc inception"),
)}


def topic(name: str) -> Topic:
    """The topic ``name``; an unknown name is a user error that lists the known ones."""
    try:
        return TOPICS[name]
    except KeyError:
        raise UsageError(f"no written answer {shorten(name)!r}{suggest(name, list(TOPICS))} "
                         f"(topics: {', '.join(TOPICS)})") from None
