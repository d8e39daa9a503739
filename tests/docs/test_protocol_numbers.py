"""The problem pages type no protocol number: each comes from the code while the docs build.

A setting of an experiment (batch size, epochs, learner counts, points, ...) is written once,
as a default of the plugin's config dataclass; a filter count or input size once, in the
zoo's spec. The pages show them through ``:protocol:`PLUGIN:SETTING``` and
``:archcalc:`MODEL:FIELD```, so a changed default changes the page. This test reads each
problem page's prose (roles, literals, math, directives and titles removed) and fails on a
number equal to one of those values written by hand.

Whole numbers below 8 are not checked: in prose they count things ("part 3", "two nodes",
"1-layer") far more often than they state a setting. Sections that record one past
measurement ("Speed", "Reduced runs and speed") state the settings of that run as it ran and
are left out.
"""

from __future__ import annotations

import re

import pytest
from archcalc_directives import total_value
from docs_helpers import DOCS
from hw3_directives import protocol_value

from archcalc import zoo
from archcalc.errors import ArchcalcError

# The plugins whose settings each problem page describes.
PLUGINS = {"problem1": ["optimizers"], "problem2": ["scaling"], "problem3": [],
           "problem4": ["cutout"], "problem5": ["depth-width"]}
MEASUREMENTS = ("Speed", "Reduced runs and speed")
# Numbers typed on purpose, each with why it is not a setting or a spec value.
TYPED = {
    "problem2": {"10/25/100 Gb": "the names of the performance model's link presets"},
    "problem3": {
        "5x5x48": "conv2's kernel shape in the paper, explaining its groups",
        "5x5x96": "conv2's kernel shape without groups, explaining them",
        "6x6x256": "the paper's last pooled map (Figure 2), explaining the first FC layer",
    },
}
MIN_CHECKED = 8
ROLE = re.compile(r":[\w-]+:`[^`]*`")
NUMBER = re.compile(r"(?<![\w.\-/])(\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?)(?![\w])")


def prose(rst: str) -> str:
    """The running text of a page: no titles, directives (with their bodies), literal blocks,
    measurement sections, roles or inline literals."""
    lines = rst.splitlines()
    kept: list[str] = []
    skip_indented = skip_section = False
    for i, line in enumerate(lines):
        below = lines[i + 1] if i + 1 < len(lines) else ""
        is_title = bool(line.strip()) and bool(re.fullmatch(r"([=\-~^])\1{2,}", below.strip()))
        if is_title:
            skip_section = line.strip() in MEASUREMENTS
            continue
        if re.fullmatch(r"([=\-~^])\1{2,}", line.strip()):
            continue
        if skip_indented and (not line.strip() or line.startswith((" ", "\t"))):
            continue
        skip_indented = False
        if line.startswith(".. ") or line.rstrip().endswith("::"):
            skip_indented = True
            if line.startswith(".. "):
                continue
        if not skip_section:
            kept.append(line)
    text = "\n".join(kept)
    text = ROLE.sub(" ", text)
    return re.sub(r"``.*?``", " ", text, flags=re.S)


def numbers(text: str) -> list[str]:
    """Every number in ``text``; ``32x32x256`` gives three. Names such as CIFAR-10 or
    ResNet-44 are no numbers."""
    return NUMBER.findall(re.sub(r"(?<=\d)x(?=\d)", " x ", text))


def protocol_numbers(plugin: str) -> dict[str, str]:
    """``{number as written: setting}`` for the plugin's settings (as hw3 run resolves them)."""
    from trainers import config as cfg
    from trainers.registry import registry

    found: dict[str, str] = {}
    for spec in cfg.field_specs(registry().get(plugin).config_type):
        value = protocol_value(f"{plugin}:{spec.name}")
        for item in value.split(", "):
            if re.fullmatch(r"\d[\d,]*", item) and int(item.replace(",", "")) < MIN_CHECKED:
                continue
            if re.fullmatch(r"[\d.,]+", item) and item not in ("0", "0.0", "1.0"):
                found[item] = f"{plugin}:{spec.name}"
    return found


def zoo_numbers(rst: str) -> dict[str, str]:
    """``{number: model field}`` for the spec parameters and fully connected widths of every
    zoo model the page names (in a role, a directive or a literal)."""
    names = set(zoo.names())
    named: set[str] = set()
    for groups in re.findall(r":archcalc:`([^` :]+)|archcalc-\w+:: (\S+)|``([^`]+)``", rst):
        named.update(w for g in groups for w in re.findall(r"[\w.-]+", g) if w in names)
    found: dict[str, str] = {}
    for model in sorted(named):
        for name, value in zoo.load(model).params:
            if value >= MIN_CHECKED:
                found.setdefault(str(value), f"{model}:{name}")
                found.setdefault(f"{value:,}", f"{model}:{name}")
        try:
            chain = total_value(f"{model}:units")
        except ArchcalcError:
            continue
        for width in chain.split("-"):
            if int(width) >= MIN_CHECKED:
                found.setdefault(width, f"{model}:units")
    return found


def page_rst(page: str) -> str:
    """A problem page's source with the files it includes (``.. include::``, the written
    parts in trainers/explain/) put in, whole: their prose is the page's too."""
    path = DOCS / "problems" / f"{page}.rst"
    return re.sub(r"^\.\. include:: (\S+)\n(?:   :.*\n)*",
                  lambda m: (path.parent / m[1]).read_text(encoding="utf-8") + "\n",
                  path.read_text(encoding="utf-8"), flags=re.M)


def typed_numbers(page: str) -> list[tuple[str, str]]:
    """(number, the setting or spec value it duplicates) for each one typed into ``page``."""
    rst = page_rst(page)
    text = prose(rst)
    for typed in TYPED.get(page, {}):
        assert typed in text, f"{page}: the allowed {typed!r} is gone; drop it from TYPED"
        text = text.replace(typed, " ")
    values = zoo_numbers(rst)
    for plugin in PLUGINS[page]:
        values.update(protocol_numbers(plugin))
    return [(n, values[n]) for n in numbers(text) if n in values]


def test_prose_drops_roles_literals_directives_titles_and_measurements() -> None:
    rst = ("Title 16\n========\n\nBatch :protocol:`cutout:batch_size`, ``hw3 run 64``, "
           "on 32x32x256 maps.\n\n.. math::\n\n   x = 64\n\nafter 100,000 points.\n\n"
           "Speed\n-----\n\nbatch 64 measured.\n")
    text = prose(rst)
    assert numbers(text) == ["32", "32", "256", "100,000"]


@pytest.mark.parametrize("page", sorted(PLUGINS))
def test_no_protocol_number_is_typed_into_a_problem_page(page: str) -> None:
    assert not typed_numbers(page)


def test_the_check_finds_the_numbers_the_pages_used_to_type() -> None:
    """The sentences these pages had before the roles, checked the same way, fail."""
    old = {
        "problem1": "CIFAR-10 images flattened to 3072 inputs, two fully connected hidden "
                    "layers of 1000 ReLU units and 10 outputs, trained with minibatches of 128.",
        "problem2": "trained on 1, 2, 4, 8 and 16 learners (GPUs) for 10 epochs each",
        "problem3": "Both modules of Figure 1 on a 32x32x256 input; projected to 64 channels",
        "problem4": "random 32x32 crops and horizontal flips) at batch 64",
        "problem5": "from 100,000 uniformly drawn points, at most 512 hidden units, batch 1000",
    }
    for page, sentence in old.items():
        rst = (DOCS / "problems" / f"{page}.rst").read_text(encoding="utf-8")
        values = zoo_numbers(rst)
        for plugin in PLUGINS[page]:
            values.update(protocol_numbers(plugin))
        assert [n for n in numbers(prose(sentence)) if n in values], page


def test_problem2_shows_the_network_the_scaling_plugin_trains() -> None:
    """Problem 2's numbers are for the input and classes the plugin trains with."""
    from trainers import config as cfg
    from trainers.plugins.scaling import run
    from trainers.registry import registry

    rst = page_rst("problem2")
    config = cfg.resolve(registry().get("scaling").config_type,
                         [cfg.Defaults.load().layer("scaling")])
    counts = run.archcalc_counts(config)
    shown = set(re.findall(r":archcalc:`([^`:]+):params`", rst))
    trained = [s for s in shown if s.split()[0] == run.SPEC and len(s.split()) > 1]
    assert trained, shown
    assert {total_value(f"{s}:params") for s in trained} == {f"{counts['params']:,}"}
