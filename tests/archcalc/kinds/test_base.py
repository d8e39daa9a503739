"""The shared machinery of layer kinds: the literal start that lets the parser skip
compiling the notation patterns of kinds a word cannot be."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from archcalc.kinds import REGISTRY, Kind
from archcalc.kinds.base import leading_text

WRITTEN = [c for c in REGISTRY.values() if c.notation is not None]


@pytest.mark.parametrize(("pattern", "starts"), [
    ("conv([0-9]+(?:x[0-9]+)?)-([0-9]+)", ("conv",)),
    ("(?:fc|linear)-([0-9]+)", ("fc", "linear")),
    ("relu|relu6|soft-max", ("relu", "relu6", "soft-max")),
    ("(?:zero)?pad([0-9]+)?", ("",)),  # an optional group: nothing is certain
    ("(max|avg)?pool", ("",)),
    ("dropouts?", ("dropout",)),  # the letter before '?' may be absent
    ("(?:adaptive(avg|max)pool|a(a|m)p)([0-9]+)", ("adaptive", "a")),
    ("[a-c]x", ("",)),  # a class: no literal start
    ("ab\\.c|A(B)", ("ab", "a")),  # an escape ends the literal; lower case, as matched
])
def test_leading_text_by_hand(pattern: str, starts: tuple[str, ...]) -> None:
    assert leading_text(pattern) == starts


@pytest.mark.parametrize("cls", WRITTEN, ids=lambda c: c.kind)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_every_word_a_kind_matches_passes_its_prefilter(cls: type[Kind],
                                                       data: st.DataObject) -> None:
    """The prefilter may only let through words that do not match, never stop one that
    does: generated words of the kind's own pattern, in any case, all pass it."""
    assert cls.notation is not None
    word = data.draw(st.from_regex(re.compile(cls.notation.pattern), fullmatch=True))
    word = data.draw(st.sampled_from([word, word.upper(), word.title()]))
    assert word.lower().startswith(leading_text(cls.notation.pattern))
    assert cls.notation.match(word) is not None
