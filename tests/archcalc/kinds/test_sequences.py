"""Sequences (C, L), written ``input LxC``: 1-D convolutions and the layers around them.

Every registered kind either has a sequence example here, verified against torch's 1-D
modules (Conv1d, MaxPool1d, AdaptiveAvgPool1d, ZeroPad1d, BatchNorm1d, ...), or is refused
on a sequence with a located error: a new kind fails
``test_every_kind_says_what_it_does_on_a_sequence`` until it says which."""

from __future__ import annotations

import importlib.util
import json

import pytest

import archcalc
from archcalc.errors import SpecError
from archcalc.kinds import REGISTRY
from archcalc.render import report_dict
from archcalc.symbolic import layer_formulas

needs_verify = pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("torch", "torchinfo", "fvcore")),
    reason="the verify extra (torch, torchinfo, fvcore) is not installed")

SEQUENCE_EXAMPLES: dict[str, str] = {
    "conv": "input 40x6\nconv3-8 s=2 d=2 g=2 bias=false; conv4-6 p=same; conv5-4 p=tf-same s=3"
            "\nconv3-4 p=0",
    "dwconv": "input 20x4\ndwconv3 s=2; dwconv3 m=2 bias=false; dwconv2-16 p=same",
    # 23 -> 11 (ceil: the last window starts inside), -> 12 with p=1, -> 6
    "pool": "input 23x3\nmaxpool3 s=2 ceil=true; avgpool2 s=1 p=1; maxpool",
    "globalpool": "input 10x4\nconv1-4; gap; conv1-2; gmp",
    # 9 -> 3 (windows of 3), 3 -> 2 (kernel 2, stride 1): both one sliding window
    "adaptivepool": "input 9x4\nadaptiveavgpool3; amp2; conv1-2",
    # causal padding before an unpadded conv, as WaveNet and TCNs write it
    "pad": "input 10x3\npad l=2 r=0; conv3-4 p=0; pad1",
    "linear": "input 10x3\nFC-7 bias=false",
    "bn": "input 10x3\nbn; conv1-2; bn affine=false",
    "lrn": "input 10x6\nlrn size=3",
    "act": "input 10x3\n" + "; ".join(("relu", "gelu", "silu", "hardswish", "soft-max")),
    "dropout": "input 10x3\nconv1-4; dropout-0.3",
    "flatten": "input 10x3\nconv3-2 s=2; flatten; FC-2",
    "add": "input 12x4\nadd { branch { } branch { conv3-4; bn } }",
    "concat": "input 12x4\nconcat { branch { } branch { conv3-2 } branch { maxpool3 s=1 p=1 } }",
    "residual": "input 16x4\nresidual shortcut=B { conv3-8 s=2; bn }\nresidual { conv3-8; relu }"
                "\nresidual shortcut=D { conv3-16 s=2 }",
    "zeropad": "input 16x4\nresidual shortcut=A { conv3-8 s=2 }",
    "layernorm": "input 10x6\nln; conv1-4; ln eps=1e-6 affine=false",
    "groupnorm": "input 10x6\ngn groups=3; gn groups=2 affine=false",
    "instancenorm": "input 10x6\ninstancenorm; instancenorm affine=true",
    "layerscale": "input 10x6\nlayerscale",
    "prelu": "input 10x6\nprelu; prelu per-channel=true",
    "stochasticdepth": "input 12x4\nresidual { conv3-4; layerscale; droppath-0.2 }",
    # squeeze-and-excitation over a sequence (the channel weights of SE-ResNet-1D, ECAPA)
    "gate": "input 12x8\ngate { gap; conv1-2; relu; conv1-8; sigmoid }\ngate { conv3-1; sigmoid }",
    "split": "input 12x8\nsplit { branch { } branch { conv1-4; bn; relu; conv3-4 g=4; bn } }",
    "shuffle": "input 12x8\nconv1-6; shuffle; shuffle g=3",
    "rescale": "input 10x3\nrescale scale=0.5 offset=-1; conv1-2",
    "standardize": "input 10x3\nstandardize; conv1-2; standardize adapted=false",
    "head": "input 16x3\nconv3-4\nhead aux { conv1-2; gap; flatten; FC-5 }\nmaxpool; FC-3",
    "keep": "input 12x4\nconv3-4; keep a; conv3-4\nadd { branch { } branch { from a } }",
    "from": "input 12x4\nkeep x; conv3-8 s=2; keep y\n"
            "concat { branch { from x; maxpool2 } branch { from y } }",
}

# Layers that enlarge or crop a map: not yet written for sequences; each says so.
REFUSED_ON_SEQUENCES: dict[str, str] = {
    "upsample": "upsample2",
    "deconv": "deconv4-4 s=2 p=1",
    "crop": "crop1",
}


def test_every_kind_says_what_it_does_on_a_sequence() -> None:
    assert set(SEQUENCE_EXAMPLES) | set(REFUSED_ON_SEQUENCES) == set(REGISTRY)
    assert not set(SEQUENCE_EXAMPLES) & set(REFUSED_ON_SEQUENCES)


@pytest.mark.parametrize("kind", SEQUENCE_EXAMPLES)
def test_sequence_example_uses_its_kind_on_sequences(kind: str) -> None:
    report = archcalc.analyze(archcalc.parse(SEQUENCE_EXAMPLES[kind]))
    used = {r.kind for r in report.rows} | (
        {"residual"} if any(r.kind == "add" for r in report.rows) else set())
    assert kind in used
    assert any(len(r.in_shape) == 2 for r in report.rows if r.kind in (kind, "add"))


@needs_verify
@pytest.mark.parametrize("kind", SEQUENCE_EXAMPLES)
def test_every_sequence_example_verifies_against_torch(kind: str) -> None:
    """Shapes, parameters, torchinfo, fvcore, FlopCounterMode and the receptive-field probe
    of torch's 1-D modules, row by row."""
    from archcalc.verify import verify

    report = verify(archcalc.parse(SEQUENCE_EXAMPLES[kind]))
    assert report.ok, "\n".join(f"{c.name} {c.path}: expected {c.expected}, got {c.actual}"
                                for c in report.failures)
    rows = archcalc.analyze(archcalc.parse(SEQUENCE_EXAMPLES[kind])).rows
    if any(r.rf is not None and len(r.out_shape) == 2 for r in rows):
        assert any(c.name.startswith("RF") for c in report.checks)  # fields were probed


@pytest.mark.parametrize("kind", REFUSED_ON_SEQUENCES)
def test_refused_kinds_say_they_need_a_feature_map(kind: str) -> None:
    with pytest.raises(SpecError) as info:
        archcalc.analyze(archcalc.parse(f"input 10x3\n{REFUSED_ON_SEQUENCES[kind]}",
                                        file="seq.arch"))
    assert "needs a feature map (C, H, W) input, got a sequence 10x3 (LxC)" in str(info.value)
    assert info.value.loc is not None and info.value.loc.line == 2


def test_conv1d_by_hand() -> None:
    """L_out = floor((L + 2p - d(k-1) - 1)/s) + 1; weights k*C_in/g*C_out; MACs per output
    position; the field grows by d(k-1) input strides per layer."""
    rows = archcalc.analyze(archcalc.parse(
        "input 100x16\nconv3-32 s=2; conv5-8 d=2 p=same g=4")).rows
    first, second = rows
    assert first.out_shape == (32, (100 + 2 - 2 - 1) // 2 + 1) == (32, 50)
    assert first.params.weights == 3 * 16 * 32 and first.params.biases == 32
    assert first.macs == 50 * 32 * 3 * 16
    assert second.out_shape == (8, 50)
    assert second.params.weights == 5 * (32 // 4) * 8
    assert second.macs == 50 * 8 * 5 * (32 // 4)
    assert first.rf is not None and second.rf is not None
    assert (first.rf.size[0], first.rf.stride[0], first.rf.padding[0]) == (3, 2, 1)
    assert (second.rf.size[0], second.rf.stride[0]) == (3 + 2 * (5 - 1) * 2, 2)
    assert first.rf.size[1] == second.rf.size[1] == 1  # the column: no second axis


def test_sequence_input_is_l_by_c_everywhere() -> None:
    graph = archcalc.parse("input 100x16\nconv3-8")
    assert graph.input_shape == (16, 100)
    report = archcalc.analyze(graph)
    data = report_dict(report)
    assert data["input"] == [16, 100] and data["layers"][0]["output_shape"] == [8, 100]
    assert data["layers"][0]["rf"] == {"size": [3], "stride": [1], "padding": [1],
                                       "center": [0.0]}
    json.dumps(data)


def test_cli_input_and_table_for_a_sequence() -> None:
    from typer.testing import CliRunner

    from archcalc.cli import app, route

    def run(*args: str) -> str:
        result = CliRunner().invoke(app, route(list(args)))
        assert result.exit_code == 0, result.output
        return result.output

    data = json.loads(run("vgg11", "--input", "224x3", "--format", "json"))
    assert data["input"] == [3, 224] and data["layers"][0]["output_shape"] == [64, 224]
    text = run("vgg11", "--input", "224x3", "--format", "csv")
    conv = text.splitlines()[2]  # the header, the input, the first conv
    assert conv.startswith("1.1.1,conv3-64,224x64,") and conv.endswith(",3,1,1,0")  # RF: one axis


@pytest.mark.parametrize(("spec", "col", "message"), [
    ("input 10x3\nconv1x7-4", 1, "kernel 1x7 on a sequence: a sequence has one axis"),
    ("input 10x3\nconv3-4 s=1x2", 1, "stride 1x2 on a sequence"),
    ("input 10x3\nmaxpool2x1", 1, "pool kernel 2x1 on a sequence"),
    ("input 10x3\naap2x3", 1, "output size 2x3 on a sequence"),
    ("input 10x3\npad t=1 l=2", 1, "a sequence pads its start and end only"),
    ("input 3x3\nconv5-4 p=0", 1, "kernel 5 is larger than the padded input length"),
    ("input 3x3\nmaxpool; maxpool", 10, "kernel 2 is larger than the padded input length"),
])
def test_sequence_errors_are_located(spec: str, col: int, message: str) -> None:
    with pytest.raises(SpecError) as info:
        archcalc.analyze(archcalc.parse(spec, file="seq.arch"))
    assert message in info.value.message
    assert info.value.loc is not None and (info.value.loc.line, info.value.loc.col) == (2, col)


@pytest.mark.parametrize(("label", "expected"), [
    ("conv3-64 s=2", {"L_out": ("floor((-D*(K - 1) + L + 2*P - 1)/S) + 1", 50),
                      "weights": ("C_in*C_out*K/g", 3 * 16 * 64),
                      "MACs": ("C_in*C_out*K*L_out/g", 50 * 64 * 3 * 16)}),
    ("maxpool3 s=2", {"L_out": ("floor((-K + L + 2*P)/S) + 1", 49),
                      "window ops": ("C_in*L_out*(K - 1)", 16 * 49 * 2)}),
    ("pad l=2 r=0", {"L_out": ("L + P_end + P_start", 102)}),
    ("gap", {"window ops": ("C_in*L", 1600)}),
    ("ln", {"FLOPs (full)": ("7*C_in*L", 7 * 1600)}),
])
def test_formulas_are_written_along_the_sequence(label: str,
                                                 expected: dict[str, tuple[str, int]]) -> None:
    rows = {r.name: (str(r.formula), r.value) for r in layer_formulas(label, (16, 100)).rows}
    assert "W_out" not in rows
    for name, value in expected.items():
        assert rows[name] == value
