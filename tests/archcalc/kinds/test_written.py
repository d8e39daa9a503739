"""Every layer kind writes itself as the spec language reads it: each kind's examples (maps
and sequences) round-trip through archcalc.writer with the same numbers, row by row."""

from __future__ import annotations

import pytest
from test_every_kind import EXAMPLES
from test_sequences import SEQUENCE_EXAMPLES

import archcalc
from archcalc.writer import to_spec

CASES = {**EXAMPLES, **{f"{kind} on a sequence": text
                        for kind, text in SEQUENCE_EXAMPLES.items()}}


@pytest.mark.parametrize("case", CASES)
def test_every_kind_example_round_trips(case: str) -> None:
    graph = archcalc.parse(CASES[case])
    text = to_spec(graph)
    again = archcalc.parse(text)
    rows = [(r.kind, r.out_shape, r.params, r.ops, r.rf, r.inplace)
            for r in archcalc.analyze(graph).rows]
    assert [(r.kind, r.out_shape, r.params, r.ops, r.rf, r.inplace)
            for r in archcalc.analyze(again).rows] == rows, text
