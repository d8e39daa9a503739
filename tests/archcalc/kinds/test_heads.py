"""archcalc.kinds.heads: ``head NAME { }``, a second output with totals of its own."""

from __future__ import annotations

import json

import pytest

import archcalc
from archcalc.errors import SpecError
from archcalc.render import homework_table, layer_table, report_dict

SPEC = """input 16x16x3
conv3-8; relu
head aux { gap; flatten; FC-10 }
conv3-8 s=2; gap; flatten; FC-10
"""
# main: conv3-8 (3*3*3)*8 + 8 = 224; conv3-8 (3*3*8)*8 + 8 = 584; FC 8*10 + 10 = 90 -> 898
# aux: FC 8*10 + 10 = 90; whole model 988



def report() -> archcalc.Report:
    return archcalc.analyze(archcalc.parse(SPEC))


def test_head_rows_carry_its_name_and_the_main_path_goes_on_from_x() -> None:
    rep = report()
    by_path = {r.path: r for r in rep.rows}
    assert [by_path[p].head for p in ("3.1", "3.2", "3.3")] == ["aux"] * 3
    assert by_path["3.3"].out_shape == (10,)
    marker = by_path["3"]
    assert (marker.label, marker.kind, marker.head) == ("head aux", "head", "")
    assert marker.out_shape == marker.in_shape == (8, 16, 16) and marker.inplace
    assert by_path["4"].in_shape == (8, 16, 16)  # conv3-8 s=2 sees the conv's map, not FC's


def test_totals_per_head_and_for_the_whole_model() -> None:
    rep = report()
    heads = rep.heads
    assert list(heads) == ["main", "aux"]
    assert heads["main"].params == 224 + 584 + 90 and heads["aux"].params == 90
    assert rep.totals.params == 988
    for key in ("params", "macs", "flops", "activations", "buffers"):
        assert getattr(heads["main"], key) + getattr(heads["aux"], key) == getattr(
            rep.totals, key), key
    assert heads["aux"].macs == 8 * 10  # the FC; pooling and flatten make no MACs
    assert archcalc.analyze(archcalc.parse("input 4\nFC-2")).heads == {}


def test_every_format_reports_the_heads() -> None:
    rep = report()
    data = json.loads(json.dumps(report_dict(rep)))
    assert data["heads"]["aux"]["params"] == 90 and data["heads"]["main"]["params"] == 898
    assert {layer["head"] for layer in data["layers"]} == {"main", "aux"}
    line = "Outputs: main 898 params"
    assert any(line in n for n in layer_table(rep).notes)
    assert any(line in n for n in homework_table(rep).notes)


@pytest.mark.parametrize(("text", "message"), [
    ("head main { FC-2 }", "a head's name is a word other than 'main'"),
    ("head a { FC-2 }\nhead a { FC-3 }", "head 'a' is defined twice"),
    ("head a { }", "'head' needs at least one layer in its body"),
    ("head { FC-2 }", "expected the head's name after 'head'"),
])
def test_bad_heads_are_located(text: str, message: str) -> None:
    with pytest.raises(SpecError, match=message) as info:
        archcalc.parse(f"input 4\n{text}")
    assert info.value.loc is not None and info.value.loc.line >= 2


def test_inception_v3_aux_head_is_torchvisions() -> None:
    # InceptionAux(768): conv0 768*128 + BN 2*128 = 98,560; conv1 5*5*128*768 + BN 2*768
    # = 2,459,136; FC 768*1000 + 1000 = 769,000; 3,326,696 in all, on Mixed_6e's 17x17x768.
    rep = archcalc.analyze(archcalc.load("inception-v3-aux"))
    assert rep.heads["aux"].params == 98_560 + 2_459_136 + 769_000 == 3_326_696
    assert rep.heads["main"].params == archcalc.analyze(
        archcalc.load("inception-v3")).totals.params == 23_834_568
    # torchvision's published num_params counts the aux head: 27,161,264
    assert rep.totals.params == 27_161_264
    first = next(r for r in rep.rows if r.head == "aux")
    assert first.in_shape == (768, 17, 17) and first.out_shape == (768, 5, 5)


def test_googlenet_auxiliary_classifiers_follow_section_5() -> None:
    # Szegedy et al. 2015, Sec. 5: 5x5/3 average pool (14 -> (14 - 5) // 3 + 1 = 4), 1x1
    # conv to 128, FC-1024, dropout 0.7, FC-1000. After (4a), 512 channels in; after (4d), 528.
    fc = 4 * 4 * 128 * 1024 + 1024 + 1024 * 1000 + 1000  # 2,098,176 + 1,025,000
    aux1, aux2 = 512 * 128 + 128 + fc, 528 * 128 + 128 + fc
    rep = archcalc.analyze(archcalc.load("googlenet-aux"))
    assert (rep.heads["aux1"].params, rep.heads["aux2"].params) == (aux1, aux2)
    assert (aux1, aux2) == (3_188_840, 3_190_888)
    assert rep.heads["main"].params == 6_998_552  # googlenet without them (test_zoo)
    assert rep.totals.params == 6_998_552 + aux1 + aux2 == 13_378_280
    pools = [r for r in rep.rows if r.head and r.kind == "pool"]
    assert [(r.in_shape, r.out_shape) for r in pools] == [
        ((512, 14, 14), (512, 4, 4)), ((528, 14, 14), (528, 4, 4))]
