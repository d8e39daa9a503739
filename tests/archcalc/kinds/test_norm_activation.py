"""Layer, group and instance norm, layer scale, PReLU, hard sigmoid, Mish and stochastic
depth: notation, shapes, parameters, operations under each convention, receptive fields and
formulas, with the arithmetic written out; each kind verified against torch.

Most tests use a 5x4x6 map (H=5, W=4, C=6): 6*5*4 = 120 elements."""

from __future__ import annotations

import importlib.util

import pytest

import archcalc
from archcalc.algebra import Ops, Params
from archcalc.analysis import Report
from archcalc.errors import SpecError
from archcalc.kinds import (
    GroupNorm,
    InstanceNorm,
    LayerNorm,
    LayerScale,
    PReLU,
    StochasticDepth,
)
from archcalc.kinds.base import Kind

needs_verify = pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("torch", "torchinfo", "fvcore")),
    reason="the verify extra (torch, torchinfo, fvcore) is not installed")

MAP = "input 5x4x6\n"
CONVENTIONS = ("full", "torchinfo", "fvcore", "flopcounter")


def only(layer: str, spec: str = MAP) -> Kind:
    (node,) = archcalc.parse(f"{spec}{layer}\n").body
    return node.layer


def fault(text: str) -> SpecError:
    with pytest.raises(SpecError) as info:
        archcalc.parse(text, "bad.arch")
    return info.value


def report(spec: str, convention: str = "full") -> Report:
    return archcalc.analyze(archcalc.parse(spec), convention)


def counts(spec: str, index: int = 0) -> dict[str, tuple[int, int]]:
    """(MACs, FLOPs) of row ``index`` under each convention."""
    rows = {name: report(spec, name).rows[index] for name in CONVENTIONS}
    return {name: (row.macs, row.flops) for name, row in rows.items()}


def assert_verifies(spec: str) -> None:
    from archcalc.verify import verify

    rep = verify(archcalc.parse(spec))
    assert rep.ok, "\n".join(f"{c.name} {c.path}: expected {c.expected}, got {c.actual}"
                             for c in rep.failures)


# -- notation -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("layernorm", LayerNorm()),
        ("LN eps=1e-6", LayerNorm(eps=1e-6)),
        ("ln elementwise_affine=false", LayerNorm(affine=False)),
        ("groupnorm groups=32", GroupNorm(groups=32)),
        ("GN g=2 affine=off eps=0.001", GroupNorm(groups=2, eps=0.001, affine=False)),
        ("instancenorm", InstanceNorm()),  # torch's defaults: no affine, no running stats
        ("InstanceNorm affine=true", InstanceNorm(affine=True)),
        ("layerscale", LayerScale()),
        ("layerscale init=0.1", LayerScale(init=0.1)),
        ("prelu", PReLU()),
        ("PReLU per-channel=true", PReLU(per_channel=True)),
        ("prelu channelwise=yes", PReLU(per_channel=True)),
        ("stochasticdepth", StochasticDepth()),
        ("droppath-0.2", StochasticDepth(p=0.2)),
        ("DropPath p=0.3 mode=batch", StochasticDepth(p=0.3, mode="batch")),
    ],
)
def test_notation(text: str, expected: Kind) -> None:
    assert only(text) == expected


def test_hardsigmoid_and_mish_are_activations() -> None:
    for name in ("hardsigmoid", "Mish"):
        layer = only(name)
        assert layer.kind == "act" and layer.title() == name.upper()
        assert not layer.allocates()  # nn.Hardsigmoid / nn.Mish run with inplace=True


def test_titles() -> None:
    assert [only(t).title() for t in ("ln", "gn groups=3", "instancenorm", "layerscale",
                                      "prelu", "droppath")] == [
        "LN", "GN3", "IN", "LAYERSCALE", "PRELU", "DROPPATH"]


def test_groupnorm_needs_groups() -> None:
    err = fault("input 5x4x6\ngn eps=1e-5")
    assert str(err).startswith("bad.arch:2:1: gn needs groups=G")


def test_option_errors_are_located() -> None:
    err = fault("input 5x4x6\nln affine=maybe")
    assert str(err) == "bad.arch:2:11: affine must be true or false, not 'maybe'"
    err = fault("input 5x4x6\nln affine=false elementwise_affine=false")
    assert str(err) == "bad.arch:2:17: option 'affine' given twice"
    err = fault("input 5x4x6\ngn groups=0")
    assert str(err).startswith("bad.arch:2:11: groups must be a whole number of at least 1")
    err = fault("input 5x4x6\nprelu per-channel=all")
    assert str(err) == "bad.arch:2:19: per-channel must be true or false, not 'all'"
    err = fault("input 5x4x6\nprelu slopes=6")
    assert str(err).startswith("bad.arch:2:7: unknown option 'slopes' for prelu")
    err = fault("input 5x4x6\ndroppath mode=col")
    assert str(err) == "bad.arch:2:15: mode must be row or batch, not 'col'"
    err = fault("input 5x4x6\ndroppath-1.5")
    assert str(err) == "bad.arch:2:10: drop-path probability must be in [0, 1], not 1.5"


def test_shape_errors_are_located() -> None:
    # 6 channels in 4 groups: 6 % 4 = 2
    with pytest.raises(SpecError, match=r"^<spec>:2:1: groupnorm groups=4 must divide the 6 "
                                        r"channels$"):
        report("input 5x4x6\ngn groups=4")
    with pytest.raises(SpecError, match="instancenorm needs a feature map"):
        report("input 12\ninstancenorm")


# -- shapes and parameters ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("layer", "params"),
    [
        ("ln", Params(6, 6, 0)),  # a scale and a shift per channel: 6 + 6
        ("ln affine=false", Params()),
        ("gn groups=3", Params(6, 6, 0)),
        ("gn groups=6 affine=false", Params()),
        ("instancenorm", Params()),  # no affine, and no running mean/var buffers
        ("instancenorm affine=true", Params(6, 6, 0)),
        ("layerscale", Params(6, 0, 0)),  # one gamma per channel, no bias
        ("prelu", Params(1, 0, 0)),  # one shared slope (torch's num_parameters=1)
        ("prelu per-channel=true", Params(6, 0, 0)),
        ("droppath", Params()),
        ("hardsigmoid", Params()),
        ("mish", Params()),
    ],
)
def test_parameters_and_shape(layer: str, params: Params) -> None:
    (row,) = report(MAP + layer).rows
    assert row.out_shape == (6, 5, 4)
    assert row.params == params


def test_on_vectors() -> None:
    # 12 features: LN 12 + 12, GN(4) 12 + 12, layer scale 12, per-channel PReLU 12
    rows = report("input 12\nln; gn groups=4; layerscale; prelu per-channel=true").rows
    assert [r.out_shape for r in rows] == [(12,)] * 4
    assert [r.params.trainable for r in rows] == [24, 24, 12, 12]
    assert all(r.rf is None for r in rows)


def test_weight_formulas() -> None:
    rows = report(MAP + "ln; gn groups=2 affine=false; layerscale; prelu; "
                        "prelu per-channel=true").rows
    assert [str(r.formula) if r.formula else None for r in rows] == ["6", None, "6", "1", "6"]


# -- operations under each convention -----------------------------------------------------
def test_layernorm_ops() -> None:
    # 120 elements. full: 5 per element for the statistics + 2 for the affine = 7*120 = 840;
    # torchinfo: its weight and bias, 6 + 6 = 12; fvcore aten::layer_norm: 5*120 = 600
    assert LayerNorm().operations((6, 5, 4), (6, 5, 4)) == Ops(
        norm_stats=120, norm_stats_affine=120, norm_params=12)
    assert counts(MAP + "ln") == {"full": (0, 840), "torchinfo": (12, 24),
                                  "fvcore": (600, 1200), "flopcounter": (0, 0)}
    # no affine: full 5*120 = 600; torchinfo nothing; fvcore 4*120 = 480
    assert counts(MAP + "ln affine=false") == {"full": (0, 600), "torchinfo": (0, 0),
                                               "fvcore": (480, 960), "flopcounter": (0, 0)}


def test_groupnorm_and_instancenorm_ops() -> None:
    # the same per-element rule as layer norm: statistics over groups instead of channels
    assert counts(MAP + "gn groups=3") == counts(MAP + "ln")
    assert counts(MAP + "gn groups=3 affine=false") == counts(MAP + "ln affine=false")
    # instance norm, torch's default: no affine -> 5*120 = 600 full, 4*120 = 480 fvcore
    assert counts(MAP + "instancenorm") == {"full": (0, 600), "torchinfo": (0, 0),
                                            "fvcore": (480, 960), "flopcounter": (0, 0)}
    assert counts(MAP + "instancenorm affine=true") == counts(MAP + "ln")


def test_layerscale_ops() -> None:
    # one multiply per element, 120; gamma is not named weight/bias: torchinfo counts 0
    assert LayerScale().operations((6, 5, 4), (6, 5, 4)) == Ops(scale=120)
    assert counts(MAP + "layerscale") == {"full": (0, 120), "torchinfo": (0, 0),
                                          "fvcore": (0, 0), "flopcounter": (0, 0)}


def test_prelu_ops() -> None:
    # one activation per element, 120; torchinfo counts its weight: 1 shared slope, or 6
    assert counts(MAP + "prelu") == {"full": (0, 120), "torchinfo": (1, 2),
                                     "fvcore": (0, 0), "flopcounter": (0, 0)}
    assert counts(MAP + "prelu per-channel=true")["torchinfo"] == (6, 12)


def test_hardsigmoid_mish_and_droppath_ops() -> None:
    for act in ("hardsigmoid", "mish"):  # 1 per element, 120; no tool counts activations
        assert counts(MAP + act) == {"full": (0, 120), "torchinfo": (0, 0), "fvcore": (0, 0),
                                     "flopcounter": (0, 0)}
    assert counts(MAP + "droppath-0.2") == {name: (0, 0) for name in CONVENTIONS}


# -- memory -------------------------------------------------------------------------------
def test_allocation_and_storage() -> None:
    rows = report(MAP + "ln; gn groups=2; instancenorm; layerscale; prelu; hardsigmoid; "
                        "mish; droppath").rows
    # norms, layer scale and PReLU (no in-place form) make new tensors; hard sigmoid and Mish
    # run in place; drop path is the identity at inference but, as dropout, stores its
    # masked output in training
    assert [r.inplace for r in rows] == [False] * 5 + [True] * 3
    assert [r.stored for r in rows] == [True] * 5 + [False, False, True]


# -- receptive field ----------------------------------------------------------------------
@pytest.mark.parametrize("layer", ["ln", "gn groups=3", "instancenorm", "layerscale",
                                   "prelu", "hardsigmoid", "mish", "droppath"])
def test_field_unchanged(layer: str) -> None:
    # conv3 s=2 p=1 on 9x9: field 3, stride 2, start -1; the layer keeps all three
    conv, after = report(f"input 9x9x3\nconv3-6 s=2 p=1; {layer}").rows
    assert after.rf == conv.rf
    assert (after.rf.size, after.rf.stride, after.rf.start) == ((3, 3), (2, 2), (-1, -1))


def test_droppath_in_a_residual_body() -> None:
    # ConvNeXt's block on 7x7x8: depthwise 7x7, LN, 1x1 up to 32, GELU, 1x1 back to 8,
    # layer scale, drop path; the body's last layer, then the add
    spec = ("input 7x7x8\nresidual { conv7-8 g=8 p=3; ln eps=1e-6; conv1-32; gelu; conv1-8; "
            "layerscale; droppath-0.1 }")
    rows = report(spec).rows
    assert [r.kind for r in rows] == ["conv", "layernorm", "conv", "act", "conv",
                                      "layerscale", "stochasticdepth", "add"]
    # params: dw 7*7*8 + 8 = 400; LN 8 + 8 = 16; 8*32 + 32 = 288; 32*8 + 8 = 264; gamma 8
    assert sum(r.params.trainable for r in rows) == 400 + 16 + 288 + 264 + 8 == 976
    assert rows[-1].rf == rows[0].rf  # only the 7x7 window widens the field


# -- formulas -----------------------------------------------------------------------------
def test_formulas() -> None:
    from archcalc.symbolic import layer_formulas

    # 7*7*96 = 4,704 elements; LN: 7 FLOPs each = 32,928
    assert layer_formulas("layernorm", (96, 7, 7)).lines() == [
        "layernorm on 7x7x96 -> 7x7x96",
        "  weights      = C_in = 96",
        "  biases       = C_in = 96",
        "  FLOPs (full) = 7*C_in*H*W = 32,928",
    ]
    # 96/32 = 3 channels per group, times 49 positions = 147
    gn = layer_formulas("gn groups=32 affine=false", (96, 7, 7)).lines()
    assert gn[1:] == ["  weights            = 0",
                      "  FLOPs (full)       = 5*C_in*H*W = 23,520",
                      "  elements per group = C_in*H*W/g = 147"]
    assert layer_formulas("layerscale", (96, 7, 7)).lines()[1:] == [
        "  weights    = C_in = 96", "  multiplies = C_in*H*W = 4,704"]
    assert layer_formulas("prelu per-channel=true", (96, 7, 7)).lines()[1:] == [
        "  weights = C_in = 96"]
    assert layer_formulas("prelu", (96, 7, 7)).lines()[1:] == ["  weights = 1"]
    assert layer_formulas("droppath", (96, 7, 7)).lines()[1:] == ["  weights = 0"]
    assert layer_formulas("ln", (96,)).lines()[-1] == "  FLOPs (full) = 7*C_in = 672"


def test_formula_matches_full_flops() -> None:
    from archcalc.symbolic import layer_formulas

    for layer in ("ln", "gn groups=4 affine=false", "instancenorm affine=true"):
        (row,) = report(f"input 6x6x8\n{layer}").rows
        flops = layer_formulas(layer, (8, 6, 6)).rows
        assert next(r.value for r in flops if r.name == "FLOPs (full)") == row.flops


# -- against torch -------------------------------------------------------------------------
@needs_verify
@pytest.mark.parametrize(
    "spec",
    [
        "input 5x4x6\nln; conv1-4; ln eps=1e-6 affine=false; flatten; ln",
        "input 5x4x6\ngn groups=3; gn groups=2 affine=false; flatten; gn groups=4",
        "input 5x4x6\ninstancenorm; instancenorm affine=true eps=1e-3",
        "input 5x4x6\nlayerscale; flatten; layerscale init=0.5",
        "input 5x4x6\nprelu; prelu per-channel=true; hardsigmoid; mish; flatten; "
        "prelu per-channel=true",
        "input 7x7x8\nresidual { conv7-8 g=8 p=3; ln eps=1e-6; conv1-32; gelu; conv1-8; "
        "layerscale; droppath-0.1 }\nresidual { conv3-8 p=1; stochasticdepth mode=batch }",
    ],
    ids=["layernorm", "groupnorm", "instancenorm", "layerscale", "activations", "convnext"],
)
def test_verifies_against_torch(spec: str) -> None:
    assert_verifies(spec)


@needs_verify
def test_stochastic_depth_module_in_training() -> None:
    """torchvision's semantics: row mode drops whole samples and scales survivors by
    1/(1-p); eval is the identity."""
    import torch

    from archcalc.backends.modules import StochasticDepth as Module

    torch.manual_seed(0)
    x = torch.ones(64, 3, 2, 2)
    out = Module(0.5, "row").train()(x)
    per_sample = out.flatten(1)
    assert set(per_sample.unique().tolist()) <= {0.0, 2.0}  # dropped, or 1/(1-0.5) = 2
    assert (per_sample == per_sample[:, :1]).all()  # a sample is dropped whole
    assert torch.equal(Module(0.5, "row").eval()(x), x)
    batch = Module(0.5, "batch").train()(x)
    assert batch.unique().numel() == 1
