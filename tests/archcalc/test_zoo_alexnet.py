"""AlexNet's two zoo variants (the paper's two-GPU model and the ungrouped one-tower model many
answer keys use): counts by hand, a torch model written out here, and the homework table's
footer, which must state the rule of question 3.1 (all parameters), not VGG19's."""

from __future__ import annotations

import importlib.util

import pytest

import archcalc
from archcalc import zoo
from archcalc.render import homework_table

# One tower: every kernel sees all of the previous layer's maps (no groups).
UNGROUPED = [
    11 * 11 * 3 * 96 + 96,  # conv1: 34,944
    5 * 5 * 96 * 256 + 256,  # conv2 sees all 96 maps: 614,656
    3 * 3 * 256 * 384 + 384,  # conv3: 885,120
    3 * 3 * 384 * 384 + 384,  # conv4: 1,327,488
    3 * 3 * 384 * 256 + 256,  # conv5: 884,992
    6 * 6 * 256 * 4096 + 4096,  # FC6: 37,752,832
    4096 * 4096 + 4096,  # FC7: 16,781,312
    4096 * 1000 + 1000,  # FC8: 4,097,000
]


def params_of(name: str) -> list[int]:
    rep = archcalc.analyze(archcalc.load(name))
    return [r.params.trainable for r in rep.rows if r.kind in ("conv", "linear")]


def test_ungrouped_alexnet_layer_by_layer() -> None:
    assert params_of("alexnet-ungrouped") == UNGROUPED
    assert sum(UNGROUPED) == 62_378_344  # the total the issue quotes from answer keys


def test_the_variants_differ_only_in_the_grouped_layers() -> None:
    grouped, ungrouped = params_of("alexnet"), params_of("alexnet-ungrouped")
    differs = [i for i, (a, b) in enumerate(zip(grouped, ungrouped, strict=True)) if a != b]
    assert differs == [1, 3, 4]  # conv2, conv4, conv5: the layers split over two GPUs
    assert sum(grouped) == 60_965_224
    shapes = [archcalc.analyze(archcalc.load(n)).rows[-1].out_shape
              for n in ("alexnet", "alexnet-ungrouped")]
    assert shapes[0] == shapes[1] == (1000,)


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch is not installed")
def test_ungrouped_count_is_torchs() -> None:
    """The one-tower AlexNet written in torch by hand (LRN, pools and ReLUs have no
    parameters, so only the weighted layers are needed for the count)."""
    from torch import nn

    net = nn.Sequential(
        nn.Conv2d(3, 96, 11, stride=4), nn.Conv2d(96, 256, 5, padding=2),
        nn.Conv2d(256, 384, 3, padding=1), nn.Conv2d(384, 384, 3, padding=1),
        nn.Conv2d(384, 256, 3, padding=1), nn.Linear(6 * 6 * 256, 4096),
        nn.Linear(4096, 4096), nn.Linear(4096, 1000)).to("meta")
    assert [sum(p.numel() for p in m.parameters()) for m in net] == params_of(
        "alexnet-ungrouped")


def test_zoo_lists_both_and_says_which_is_which() -> None:
    entries = {e.name: e for e in zoo.entries()}
    assert dict(entries["alexnet"].overrides) == {"groups": 2}
    assert dict(entries["alexnet-ungrouped"].overrides) == {"groups": 1}
    assert "alexnet: 2 GPUs" in entries["alexnet"].source
    assert "alexnet-ungrouped: 1 tower" in entries["alexnet"].source


@pytest.mark.parametrize("name", ["alexnet", "alexnet-ungrouped"])
def test_alexnet_footer_states_question_3_1s_rule(name: str) -> None:
    rep = archcalc.analyze(archcalc.load(name))
    weights_only = "\n".join(homework_table(rep).footer)
    assert "as the assignment asks" not in weights_only
    biases = rep.totals.biases
    assert biases == 96 + 256 + 384 + 384 + 256 + 4096 + 4096 + 1000  # one per filter/unit
    assert (f"Problem 3.1 counts all of AlexNet's parameters: --bias adds the {biases:,} "
            "biases.") in weights_only
    assert "two-GPU model" in weights_only and "one-tower variant" in weights_only
    with_biases = homework_table(rep, bias=True)
    assert "Parameters include biases, as Problem 3.1 counts all of AlexNet's parameters." \
        in with_biases.footer
    assert with_biases.total is not None
    assert with_biases.total[2] == f"{rep.totals.params:,}"


def test_vgg19_footer_keeps_the_weights_only_rule() -> None:
    rep = archcalc.analyze(archcalc.load("vgg19"))
    footer = homework_table(rep).footer
    assert f"Parameters count weights only, as the assignment asks; --bias adds the " \
           f"{rep.totals.biases:,} biases." in footer
    assert any("counts weights only: leave out --bias" in line
               for line in homework_table(rep, bias=True).footer)


def test_other_models_claim_no_assignment_rule() -> None:
    rep = archcalc.analyze(archcalc.load("resnet20"))
    for bias in (False, True):
        text = "\n".join(homework_table(rep, bias=bias).footer)
        assert "assignment asks" not in text and "Problem 3" not in text
