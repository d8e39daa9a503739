"""Gate (squeeze-and-excitation), split (ShuffleNetV2's channel split) and channel shuffle:
notation, shapes, parameters, operations under each convention, receptive fields, memory and
formulas, with the arithmetic written out; each verified against torch, and the ShuffleNetV2
unit compared output for output with torchvision's code (transcribed: torchvision is not a
dependency)."""

from __future__ import annotations

import importlib.util
from dataclasses import replace

import pytest

import archcalc
from archcalc.algebra import RF, Ops, Params
from archcalc.analysis import Report, Row
from archcalc.errors import SpecError
from archcalc.kinds import ChannelShuffle, Gate, Split
from archcalc.kinds.base import Kind

needs_verify = pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("torch", "torchinfo", "fvcore")),
    reason="the verify extra (torch, torchinfo, fvcore) is not installed")

CONVENTIONS = ("full", "torchinfo", "fvcore", "flopcounter")


def only(text: str) -> Kind:
    (node,) = archcalc.parse(text).body
    return node.layer


def fault(text: str) -> SpecError:
    """The SpecError that parsing and analysing ``text`` raises."""
    with pytest.raises(SpecError) as info:
        archcalc.analyze(archcalc.parse(text, "bad.arch"))
    return info.value


def located(text: str, line: int, col: int, message: str) -> None:
    err = fault(text)
    assert err.message.startswith(message), err.message
    assert err.loc is not None and (err.loc.file, err.loc.line, err.loc.col) == (
        "bad.arch", line, col), str(err)


def report(spec: str, convention: str = "full") -> Report:
    return archcalc.analyze(archcalc.parse(spec), convention)


def row(rep: Report, path: str, kind: str | None = None) -> Row:
    (found,) = [r for r in rep.rows if r.path == path and (kind is None or r.kind == kind)]
    return found


def assert_verifies(spec: str) -> None:
    from archcalc.verify import verify

    rep = verify(archcalc.parse(spec))
    assert rep.ok, "\n".join(f"{c.name} {c.path}: expected {c.expected}, got {c.actual}"
                             for c in rep.failures)


# -- gate --------------------------------------------------------------------------------
# Squeeze-and-excitation on an 8x8x4 map: squeeze to 4 numbers, 4 -> 2 -> 4, sigmoid, scale.
SE = "input 8x8x4\ngate { gap; conv1-2; relu; conv1-4; sigmoid }"


def test_gate_parses_its_body_with_paths() -> None:
    (node,) = archcalc.parse(SE).body
    assert isinstance(node.layer, Gate)
    assert (node.label, node.path) == ("gate", "1")
    assert [n.path for n in node.layer.body] == ["1.1", "1.2", "1.3", "1.4", "1.5"]
    assert [n.layer.kind for n in node.layer.body] == ["globalpool", "conv", "act", "conv",
                                                       "act"]


def test_gate_rows_shape_and_parameters() -> None:
    rep = report(SE)
    # body rows first, then the join: x * s keeps x's shape (8x8x4)
    assert [(r.path, r.kind, r.label) for r in rep.rows][-1] == ("1", "gate", "mul")
    join = row(rep, "1", "gate")
    assert join.in_shape == join.out_shape == (4, 8, 8)
    assert row(rep, "1.5").out_shape == (4, 1, 1)
    # conv1-2 on 4 channels: 4*2 = 8 weights + 2 biases; conv1-4 on 2: 2*4 = 8 + 4 biases
    assert rep.totals.params == 8 + 2 + 8 + 4 == 22
    assert join.params == Params() and join.formula is None
    assert join.title == "MUL"


def test_gate_counts_one_multiply_per_element() -> None:
    # 4*8*8 = 256 products; torchinfo (not a module), fvcore (aten::mul has no handle) and
    # FlopCounterMode (not a matmul or conv) count none
    assert row(report(SE), "1", "gate").ops == Ops(mul=256)
    flops = {c: row(report(SE, c), "1", "gate").flops for c in CONVENTIONS}
    assert flops == {"full": 256, "torchinfo": 0, "fvcore": 0, "flopcounter": 0}


def test_gate_totals_under_each_convention() -> None:
    # gap: 4 outputs * 64 = 256 adds; conv1-2: 2 outputs * 4 = 8 MACs + 2 bias; relu 2;
    # conv1-4: 4 outputs * 2 = 8 MACs + 4 bias; sigmoid 4; mul 256
    assert report(SE).totals.flops == 256 + (2 * 8 + 2) + 2 + (2 * 8 + 4) + 4 + 256 == 556
    # torchinfo: (weights + biases) * 1 position = 22; fvcore: 16 MACs + 256 gap inputs
    assert report(SE, "torchinfo").totals.macs == 22
    assert report(SE, "fvcore").totals.macs == 16 + 256 == 272
    assert report(SE, "flopcounter").totals.flops == 2 * 16 == 32


def test_gate_allocates_its_product_and_peak_memory() -> None:
    rep = report(SE)
    join = row(rep, "1", "gate")
    assert not join.inplace and join.stored
    # x (256) stays alive through the body; the largest body step is conv1-2 or conv1-4
    # (256 + 4 + 2 = 262); at the join x, s (4) and the product (256) are live: 516
    assert rep.peak_live == 256 + 4 + 256 == 516
    # the table's activations: input 256 + gap 4 + conv 2 + conv 4 + product 256
    assert rep.totals.activations == 256 + 4 + 2 + 4 + 256


def test_gate_field_is_the_whole_map_without_a_warning() -> None:
    rep = report(SE)
    # gap: one unit sees all 8 pixels: [0, 7]. Every output unit shares it, so it is held
    # as the field that contains it for the first and the last unit: widened by (8-1)*1
    # towards the start, [-7, 7], size 15, centred on the input unit (no warning)
    assert row(rep, "1.1").rf == RF((8, 8), (1, 1), (0, 0))
    assert row(rep, "1", "gate").rf == RF((15, 15), (1, 1), (-7, -7))
    assert rep.warnings == ()


def test_gate_field_after_a_strided_layer() -> None:
    # 9x9 input, conv3 s=2 p=0: 4x4 map, unit field [0, 2], stride 2. gap: [0, 2 + 3*2] =
    # [0, 8], size 9. Widened by (4-1)*2 = 6: [-6, 8], size 15, stride 2; then conv3 (p=1)
    # adds 2*2 = 4: size 19, start -6 - 2 = -8
    spec = ("input 9x9x4\nconv3-8 s=2 p=0\ngate { gap; conv1-2; relu; conv1-8; sigmoid }\n"
            "conv3-8")
    rep = report(spec)
    assert row(rep, "2.1").rf == RF((9, 9), (2, 2), (0, 0))
    assert row(rep, "2", "gate").rf == RF((15, 15), (2, 2), (-6, -6))
    assert row(rep, "3").rf == RF((19, 19), (2, 2), (-8, -8))
    assert rep.warnings == ()


def test_gate_with_a_body_of_the_input_size_merges_plainly() -> None:
    # a per-position gate (CBAM's spatial attention shape): 1x8x8 scales all 4 channels;
    # conv3's field [-1, 1] contains the input unit's: size 3
    spec = "input 8x8x4\ngate { conv3-1; sigmoid }"
    rep = report(spec)
    assert row(rep, "1", "gate").rf == RF((3, 3), (1, 1), (-1, -1))
    assert row(rep, "1", "gate").ops == Ops(mul=4 * 8 * 8)
    assert rep.warnings == ()


def test_gate_whose_body_sees_part_of_the_map_has_no_field() -> None:
    # conv5 s=8 p=0 on 8x8: one unit, field [0, 4], not the whole map [0, 7]: unit 0 sees
    # [0, 4], unit 7 sees [0, 4] and pixel 7: not one window sliding by the stride
    spec = "input 8x8x4\ngate { conv5-4 s=8 p=0; sigmoid }\nconv3-4"
    rep = report(spec)
    assert row(rep, "1.1").rf == RF((5, 5), (8, 8), (0, 0))
    assert row(rep, "1", "gate").rf is None and row(rep, "2").rf is None
    (warning,) = rep.warnings
    assert warning.startswith("<spec>:2:1: gate: no receptive field from here on")


def test_gate_on_a_vector() -> None:
    # input 6: FC-6 (36 weights + 6 biases), sigmoid, 6 products; no field for a vector input
    rep = report("input 6\ngate { FC-6; sigmoid }")
    join = row(rep, "1", "gate")
    assert (join.out_shape, join.ops, join.rf) == ((6,), Ops(mul=6), None)
    assert rep.totals.params == 42


def test_se_inside_a_residual_keeps_the_body_stride() -> None:
    # SE-ResNet: the gate keeps its input's shape, so the projection takes conv3's stride 2.
    # conv3-8 s=2: 3*3*4*8 = 288 + 8; bn 16; conv1-2: 8*2 + 2 = 18; conv1-8: 2*8 + 8 = 24;
    # shortcut conv1-8 s=2 (no bias): 4*8 = 32; its bn 16 -> 402
    spec = ("input 8x8x4\nresidual shortcut=B {\n  conv3-8 s=2; bn\n"
            "  gate { gap; conv1-2; relu; conv1-8; sigmoid }\n}")
    rep = report(spec)
    assert row(rep, "1.s1").label == "shortcut conv1-8 s=2 bias=false"
    assert rep.totals.params == 296 + 16 + 18 + 24 + 32 + 16 == 402
    assert rep.warnings == ()  # the gated field is centred like the shortcut's


@pytest.mark.parametrize(
    ("text", "line", "col", "message"),
    [
        ("input 8x8x4\ngate s=2 { relu }", 2, 6, "'gate' takes no options; unexpected 's=2'"),
        ("input 8x8x4\ngate { }", 2, 1, "'gate' needs at least one layer in its body"),
        ("input 8x8x4\ngate\n{ relu }", 2, 5, "expected '{' after 'gate', found end of line"),
        ("input 8x8x4\ngate {\n  relu\n", 2, 6, "this '{' is never closed"),
        ("input 8x8x4\ngate { relux }", 2, 8, "unknown layer 'relux'"),
        # shapes are the analysis' business, located at the gate
        ("input 8x8x4\n  gate { conv1-3 }", 2, 3,
         "gate body gives 8x8x3, which cannot scale its input 8x8x4"),
        ("input 8x8x4\ngate { conv3-4 s=2 }", 2, 1, "gate body gives 4x4x4, which cannot"),
        ("input 8x8x4\ngate { gap; flatten }", 2, 1, "gate body gives 4, which cannot"),
    ],
)
def test_gate_errors_are_located(text: str, line: int, col: int, message: str) -> None:
    located(text, line, col, message)


@needs_verify
@pytest.mark.parametrize(
    "spec",
    [SE,
     "input 9x9x4\nconv3-8 s=2 p=0\ngate { gap; conv1-2; relu; conv1-8; sigmoid }\nconv3-8",
     "input 8x8x4\ngate { conv5-4 s=8 p=0; sigmoid }\nconv3-4",
     "input 8x8x4\ngate { conv3-1; sigmoid }\nconv3-4 s=2",
     "input 8x8x4\nresidual shortcut=B { conv3-8 s=2; bn\n"
     "  gate { gap; conv1-2; relu; conv1-8; sigmoid } }\nconv3-8",
     # 10 -> 4 with pixel 9 in no field: the widened field still holds after the gate
     "input 10x10x4\nconv3-8 s=2 p=0\ngate { gap; conv1-2; relu; conv1-8; sigmoid }\n"
     "conv3-8; conv1-8; conv3-8 s=2"],
    ids=["se", "strided", "partial", "spatial", "se-resnet", "uncovered-edge"])
def test_gate_verifies_against_torch(spec: str) -> None:
    assert_verifies(spec)


@needs_verify
def test_gate_module_multiplies_by_the_body() -> None:
    import torch

    from archcalc.backends.torch import build_module

    net = build_module(archcalc.parse(SE)).eval()
    x = torch.rand(2, 4, 8, 8)
    block = net[0]
    with torch.no_grad():
        s = block.body(x)
        assert s.shape == (2, 4, 1, 1)
        assert torch.equal(net(x), x * s)


# -- split -------------------------------------------------------------------------------
# ShuffleNetV2's basic unit (Ma et al. 2018, Fig. 3c) on an 8x8x8 map: 4 channels pass,
# 4 go through 1x1, depthwise 3x3, 1x1 (no biases, each with BN), then concat and shuffle.
UNIT_BRANCH = ("conv1-4 bias=false; bn; relu; conv3-4 g=4 bias=false; bn; "
               "conv1-4 bias=false; bn; relu")
UNIT = f"input 8x8x8\nsplit {{ branch {{ }} branch {{ {UNIT_BRANCH} }} }}\nshuffle g=2"


def test_split_parses_branches_with_paths() -> None:
    node = archcalc.parse(UNIT).body[0]
    assert isinstance(node.layer, Split)
    assert (node.label, node.path) == ("split", "1")
    identity, branch = node.layer.branches
    assert identity == ()
    assert [n.path for n in branch] == [f"1.b2.{i}" for i in range(1, 9)]


def test_split_gives_each_branch_an_equal_share() -> None:
    rep = report(UNIT)
    assert row(rep, "1.b2.1").in_shape == (4, 8, 8)  # 8 channels / 2 branches
    join = row(rep, "1", "split")
    assert (join.label, join.title, join.in_shape, join.out_shape) == (
        "concat", "CONCAT", (8, 8, 8), (8, 8, 8))
    assert [r.path for r in rep.rows][-2:] == ["1", "2"]
    # conv1-4 on 4: 16; depthwise conv3-4 g=4: 3*3*1*4 = 36; conv1-4: 16; three BN: 3*8
    assert rep.totals.params == 16 + 36 + 16 + 3 * 8 == 92
    assert rep.totals.buffers == 3 * 8


def test_split_join_costs_nothing_and_allocates() -> None:
    for convention in CONVENTIONS:
        join = row(report(UNIT, convention), "1", "split")
        assert (join.ops, join.macs, join.flops) == (Ops(), 0, 0)
    join = row(report(UNIT), "1", "split")
    assert not join.inplace and join.stored


def test_split_memory() -> None:
    rep = report(UNIT)
    # x (512) stays alive (the shares are views of it); in the branch conv1-4 on 4x8x8
    # (256 elements) -> 256 more; the depthwise conv: x 512 + its input 256 + output 256.
    # At the concat: x 512 + branch output 256 + the joined 512 = 1,280
    assert rep.peak_live == 512 + 256 + 512 == 1280


def test_split_field_merges_its_branches() -> None:
    rep = report(UNIT)
    # identity share: [0, 0]; the branch: conv3 [-1, 1]. Same centre: size 3, no warning
    assert row(rep, "1", "split").rf == RF((3, 3), (1, 1), (-1, -1))
    assert row(rep, "2").rf == RF((3, 3), (1, 1), (-1, -1))
    assert rep.warnings == ()


def test_split_into_three_shares_and_its_warning() -> None:
    # 6 channels, 3 branches of 2: conv3 s=2 -> 2 channels, conv1 s=2 -> 4, maxpool -> 2;
    # maxpool2's field [0, 1] is centred at 0.5, the others at 0: misaligned
    rep = report("input 8x8x6\nsplit { branch { conv3-2 s=2 } branch { conv1-4 s=2 } "
                 "branch { maxpool } }")
    assert [row(rep, f"1.b{i}.1").in_shape for i in (1, 2, 3)] == [(2, 8, 8)] * 3
    assert row(rep, "1", "split").out_shape == (2 + 4 + 2, 4, 4)
    (warning,) = rep.warnings
    assert "split branches are misaligned" in warning


@pytest.mark.parametrize(
    ("text", "line", "col", "message"),
    [
        ("input 8x8x6\nsplit { branch { } branch { } branch { } branch { } }", 2, 1,
         "split cannot cut 6 channels into 4 equal shares"),
        ("input 8x8x4\nsplit { branch { relu } }", 2, 1, "'split' needs at least two branches"),
        ("input 8x8x4\nsplit { relu }", 2, 9, "expected 'branch { ... }' or '}' inside 'split'"),
        ("input 8x8x4\nsplit n=2 { branch { } branch { } }", 2, 7,
         "'split' takes no options; unexpected 'n=2'"),
        ("input 8x8x4\nsplit { branch { } branch { relu }\n", 2, 7, "this '{' is never closed"),
        ("input 8x8x4\nbranch { relu }", 2, 1, "'branch' is only allowed inside 'concat { ... }' "
                                              "or 'split { ... }'"),
        ("input 8x8x4\nsplit { branch { conv3-2 s=2 } branch { } }", 2, 1,
         "concat branches must agree in height and width"),
    ],
)
def test_split_errors_are_located(text: str, line: int, col: int, message: str) -> None:
    located(text, line, col, message)


@needs_verify
@pytest.mark.parametrize(
    "spec",
    [UNIT, "input 8x8x6\nsplit { branch { conv3-2 s=2 } branch { conv1-4 s=2 } "
           "branch { avgpool3 s=2 p=1 } }",
     "input 12\nsplit { branch { FC-3 } branch { } branch { FC-5 } }"],
    ids=["shufflenet-unit", "three-shares", "vector"])
def test_split_verifies_against_torch(spec: str) -> None:
    assert_verifies(spec)


@needs_verify
def test_shufflenet_unit_matches_torchvisions_code() -> None:
    """torchvision.models.shufflenetv2.InvertedResidual (stride 1) and channel_shuffle,
    transcribed; the same weights give the same output, channel for channel."""
    import torch
    from torch import nn

    from archcalc.backends.torch import build_module

    def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
        b, c, h, w = x.size()
        x = x.view(b, groups, c // groups, h, w)
        x = torch.transpose(x, 1, 2).contiguous()
        return x.view(b, -1, h, w)

    class InvertedResidual(nn.Module):
        def __init__(self, branch_features: int) -> None:
            super().__init__()
            f = branch_features
            self.branch2 = nn.Sequential(
                nn.Conv2d(f, f, 1, 1, 0, bias=False), nn.BatchNorm2d(f), nn.ReLU(inplace=True),
                nn.Conv2d(f, f, 3, 1, 1, bias=False, groups=f), nn.BatchNorm2d(f),
                nn.Conv2d(f, f, 1, 1, 0, bias=False), nn.BatchNorm2d(f), nn.ReLU(inplace=True))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x1, x2 = x.chunk(2, dim=1)
            return channel_shuffle(torch.cat((x1, self.branch2(x2)), dim=1), 2)

    torch.manual_seed(0)
    ours = build_module(archcalc.parse(UNIT)).eval()
    theirs = InvertedResidual(4).eval()
    with torch.no_grad():
        for name, value in theirs.state_dict().items():
            if value.is_floating_point():  # random weights and statistics, variances > 0
                value.copy_(torch.rand_like(value) + 0.5 if name.endswith("running_var")
                            else torch.randn_like(value))
        # the same layers in the same order: copy by position
        ours.load_state_dict(dict(zip(ours.state_dict(), theirs.state_dict().values(),
                                      strict=True)))
        x = torch.randn(2, 8, 8, 8)
        assert torch.allclose(ours(x), theirs(x), atol=1e-6)


# -- channel shuffle ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "groups"),
    [("shuffle", 2), ("shuffle g=4", 4), ("channelshuffle groups=8", 8), ("SHUFFLE G=1", 1)],
)
def test_shuffle_notation(text: str, groups: int) -> None:
    assert only(f"input 4x4x8\n{text}") == ChannelShuffle(groups)


def test_shuffle_rules() -> None:
    rep = report("input 4x4x6\nconv3-6 s=2; shuffle g=3")
    shuffle = row(rep, "2")
    assert (shuffle.kind, shuffle.title, shuffle.out_shape) == ("shuffle", "SHUFFLE3",
                                                                (6, 2, 2))
    assert shuffle.params == Params() and shuffle.formula is None
    assert not shuffle.inplace and shuffle.stored  # torch's channel_shuffle copies
    assert shuffle.rf == row(rep, "1").rf == RF((3, 3), (2, 2), (-1, -1))
    for convention in CONVENTIONS:  # no handle in fvcore, no module MACs, no matmul
        r = row(report("input 4x4x6\nconv3-6 s=2; shuffle g=3", convention), "2")
        assert (r.ops, r.macs, r.flops) == (Ops(), 0, 0)


def test_shuffle_formula() -> None:
    from archcalc.symbolic import layer_formulas

    (line,) = layer_formulas("shuffle g=2", (8, 4, 4)).rows
    assert (line.name, line.value) == ("weights", 0)


@pytest.mark.parametrize(
    ("text", "line", "col", "message"),
    [
        ("input 4x4x6\nshuffle g=4", 2, 1, "shuffle g=4 must divide the channels (6)"),
        ("input 4x4x6\nshuffle g=0", 2, 11, "groups must be a whole number of at least 1"),
        ("input 4x4x6\nshuffle q=2", 2, 9, "unknown option 'q' for shuffle (options: g, "
                                           "groups)"),
        ("input 6\nshuffle", 2, 1, "shuffle needs a feature map (C, H, W) or a sequence "
                                 "(C, L), got a vector of 6"),
    ],
)
def test_shuffle_errors_are_located(text: str, line: int, col: int, message: str) -> None:
    located(text, line, col, message)


@needs_verify
def test_shuffle_orders_channels_as_shufflenet() -> None:
    import torch

    from archcalc.backends.torch import build_module

    net = build_module(archcalc.parse("input 1x1x6\nshuffle g=2")).eval()
    x = torch.arange(6.0).view(1, 6, 1, 1)
    # two groups (0 1 2) (3 4 5), interleaved: 0 3 1 4 2 5
    assert net(x).flatten().tolist() == [0.0, 3.0, 1.0, 4.0, 2.0, 5.0]


@needs_verify
def test_shuffle_verifies_against_torch() -> None:
    assert_verifies("input 6x6x12\nconv3-12 s=2; shuffle g=3; conv1-6 g=2; shuffle")


# -- add: parallel branches summed ------------------------------------------------------------
def test_add_block_counts_as_a_residual_with_an_identity_shortcut() -> None:
    """add { branch { } branch { BODY } } is residual { BODY }: the same parameters,
    operations and field, but its sum is a new tensor (``a + b``) where a residual adds in
    place (torchvision's ``out += identity``); three branches add twice per element."""
    body = "conv3-8; bn; relu; conv3-8"
    added = report(f"input 8x8x8\nadd {{ branch {{ }} branch {{ {body} }} }}")
    residual = report(f"input 8x8x8\nresidual {{ {body} }}")
    assert added.totals == replace(residual.totals,
                                   activations=residual.totals.activations + 8 * 8 * 8)
    assert added.rows[-1].rf == residual.rows[-1].rf
    three = report("input 8x8x8\nadd { branch { } branch { conv1-8 } branch { conv1-8 } }")
    assert three.rows[-1].kind == "add" and three.rows[-1].ops.add == 2 * 8 * 8 * 8


def test_add_branches_must_agree() -> None:
    located("input 8x8x4\nadd { branch { conv3-8 } branch { } }", 2, 1,
            "add branches must give one shape: 8x8x8, 8x8x4")
    located("input 8x8x4\nadd { branch { } }", 2, 1, "'add' needs at least two branches")


def test_add_in_place_allocates_nothing_and_needs_a_first_branch() -> None:
    """torchvision's BasicBlock: out = body(x); out += shortcut(x)."""
    spec = "input 8x8x4\nadd{} {{ branch {{ conv3-8 s=2; bn }} branch {{ conv1-8 s=2; bn }} }}"
    fresh, inplace = report(spec.format("")), report(spec.format(" inplace=true"))
    assert not fresh.rows[-1].inplace and inplace.rows[-1].inplace
    assert inplace.totals.activations == fresh.totals.activations - 4 * 4 * 8
    assert inplace.rows[-1].label == "add inplace=true"
    located("input 8x8x4\nadd inplace=true { branch { } branch { conv1-4 } }", 2, 1,
            "add inplace=true sums into its first branch's tensor")
    located("input 8x8x4\nadd inplace=maybe { branch { } branch { } }", 2, 13,
            "inplace must be true or false, not 'maybe'")
    located("input 8x8x4\nadd s=2 { branch { } branch { } }", 2, 5,
            "unknown option 's' for 'add' (options: inplace)")
