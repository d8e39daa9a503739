"""archcalc to-spec: a graph written as spec text parses back to the same numbers, row by
row: every zoo model here, every layer kind's examples in kinds/test_written.py, imported
torch models in importers/test_from_torch.py."""

from __future__ import annotations

import pytest

import archcalc
from archcalc import zoo
from archcalc.analysis import Report
from archcalc.kinds import Conv, Linear, Pool
from archcalc.writer import to_spec, written


def numbers(report: Report) -> list[tuple[object, ...]]:
    """What a row says, paths and labels aside (the writer renumbers and relabels)."""
    return [(r.kind, r.in_shape, r.out_shape, r.params, r.ops, r.rf, r.inplace, r.stored,
             r.head) for r in report.rows]


def round_trip(graph: archcalc.Graph) -> str:
    text = to_spec(graph)
    again = archcalc.parse(text, file="<written>")
    before, after = archcalc.analyze(graph), archcalc.analyze(again)
    assert numbers(after) == numbers(before), text
    assert after.totals == before.totals and again.input_shape == graph.input_shape
    assert to_spec(again) == text  # a fixed point: writing the parsed text changes nothing
    return text


@pytest.mark.parametrize("name", zoo.names())
def test_every_zoo_model_round_trips(name: str) -> None:
    round_trip(zoo.load(name))


@pytest.mark.parametrize(("layer", "text"), [
    (Conv(64, (3, 3), padding=(1, 1)), "conv3-64"),  # p=1 is conv3's default
    (Conv(64, (3, 3), (2, 2), (0, 0), bias=False), "conv3-64 s=2 p=0 bias=false"),
    (Conv(64, (4, 4), padding=(1, 1), pad_end=(2, 2)), "conv4-64 p=same"),
    (Conv(32, (1, 7), padding=(0, 3)), "conv1x7-32"),
    (Pool("max", (3, 3), (2, 2), (1, 1)), "maxpool3 s=2 p=1"),
    (Pool("avg", (2, 2), (2, 2)), "avgpool2"),
    (Linear(10, False), "FC-10 bias=false"),
])
def test_layers_are_written_with_the_options_they_need(layer: object, text: str) -> None:
    assert written(layer) == text  # type: ignore[arg-type]


def test_repeats_fold() -> None:
    text = round_trip(archcalc.parse(
        "input 8x8x3\nconv3-8; relu; relu; relu\nconv3-8; bn; conv3-8; bn; conv3-8; bn\n"
        "FC-10"))
    assert "relu x3" in text
    assert "repeat 3 {\n  conv3-8\n  bn\n}" in text
    assert text.count("conv3-8") == 2


def test_torch_asymmetric_padding_without_a_notation_is_refused() -> None:
    graph = archcalc.parse("input 8x8x3\nrelu")
    odd = Conv(4, (3, 3), padding=(0, 0), pad_end=(2, 2))
    node = graph.body[0]
    from dataclasses import replace

    bad = replace(graph, body=(replace(node, layer=odd),))
    with pytest.raises(ValueError, match="has no notation") as info:
        to_spec(bad)
    assert isinstance(info.value, archcalc.ArchcalcError)  # the CLI: one line, exit 2
