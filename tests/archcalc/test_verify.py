"""archcalc.verify: every zoo model agrees with torch, torchinfo, fvcore, FlopCounterMode and
the gradient probe; and a wrong rule, preset or field is reported, not waved through."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
from rich.console import Console

import archcalc
from archcalc.algebra import RF, Params
from archcalc.conventions import CONVENTIONS, Convention
from archcalc.errors import VerifyUnavailable
from archcalc.kinds import Conv, Linear, Pool
from archcalc.verify import Check, ExpectedField, VerifyReport, verify, verify_model
from archcalc.zoo import names

needs_verify = pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("torch", "torchinfo", "fvcore")),
    reason="the verify extra (torch, torchinfo, fvcore) is not installed")

# Smaller inputs keep the file fast on two cores. Each is valid for its spec: every layer
# still gets at least one output unit, and both sides derive every number at that size.
SMALL_INPUTS = {
    # five 2x2/2 max pools: 32 -> 16 -> 8 -> 4 -> 2 -> 1; FC-4096 then sees 512 inputs
    **{f"vgg{n}": (3, 32, 32) for n in (11, 13, 16, 19)},
    # conv11/4 (no padding) and three 3x3/2 pools: 67 -> 15 -> 7 -> 3 -> 1, the smallest
    "alexnet": (3, 67, 67),
    # the same with conv1 padded by 2: 63 -> 15 -> 7 -> 3 -> 1, the smallest
    "alexnet-torchvision": (3, 63, 63),
    # stride 32 in all before global average pooling: 64 -> 2x2 maps in conv5_x
    "resnet50": (3, 64, 64),
    "resnet50-paper": (3, 64, 64),
    "resnet50-keras": (3, 64, 64),
    # resnet18/34/101/152 and mobilenet-v2 pad every conv and pool, so any size down to 1x1
    # gives each layer an output unit; 32 is the smallest at which each of their five
    # stride-2 layers halves the map exactly: 32 -> 16 -> 8 -> 4 -> 2 -> 1
    **{n: (3, 32, 32) for n in ("resnet18", "resnet34", "resnet101", "resnet152",
                                "mobilenet-v2")},
    # conv7/2 (pad 3), 3x3/2 max pool (pad 1) and three unpadded 2x2/2 average pools:
    # 29 -> 15 -> 8 -> 4 -> 2 -> 1, the smallest
    "densenet121": (3, 29, 29),
    # unpadded conv1 and three unpadded 3x3/2 ceil-mode max pools, the last on a 2x2 map
    # (one window that starts inside it and runs past it, as torch allows):
    # v1.0 conv7/2 21 -> 8 -> 4 -> 2 -> 1; v1.1 conv3/2 17 -> 8 -> 4 -> 2 -> 1, the smallest
    # (torchvision's min_size for squeezenet1_0 and squeezenet1_1, 21x21 and 17x17)
    "squeezenet1.0": (3, 21, 21),
    "squeezenet1.1": (3, 17, 17),
    # the unpadded stem (3x3/2, 3x3, 3x3/2 pool, 3x3, 3x3/2 pool) and the 3x3/2 convs of
    # Mixed_6a and Mixed_7a: 75 -> 37 -> 35 -> 17 -> 15 -> 7 -> 3 -> 1, the smallest
    # (torchvision's documented minimum for inception_v3, 75x75)
    "inception-v3": (3, 75, 75),
    # shufflenet-v2, mobilenet-v3-large and efficientnet-b0 pad every conv and pool and
    # convnext-tiny's stride-4 stem and 2x2/2 downsampling convs tile the map: 32 is the
    # smallest at which every stride-2 (or 4) layer divides the map exactly, down to 1x1
    # in the last stage (convnext: 32 -> 8 -> 4 -> 2 -> 1, the smallest it accepts at all)
    **{n: (3, 32, 32) for n in ("shufflenet-v2", "mobilenet-v3-large", "efficientnet-b0",
                                "convnext-tiny")},
    # unet: unpadded 3x3 convs (-4 per pair), four 2x2/2 pools and four 2x2/2 up-convs.
    # With m the bottom map after its two convs, level 4 is 2m+8 (up-conv 2m, crop 4),
    # level 3 4m+24 (up-conv 4m-8), level 2 8m+56, level 1 16m+120: every pool halves an
    # even map and every crop is whole for any input 16m+124. The decoder's convs leave
    # 2m-4, 4m-12, 8m-28 and 16m-60 (the output); all positive from m = 4 (m = 3 leaves
    # 4m-12 = 0): 188 -> 184, 88, 40, 16, 4 at the bottom; 8 -> 4 at each level up; 4x4x2
    # out (572 = 16*28 + 124 -> 388)
    "unet": (1, 188, 188),
    # nasnet-mobile: the unpadded 3x3/2 stem and four reductions that halve rounding up:
    # 32 -> 15 -> 8 -> 4 -> 2 -> 1, each p still twice its ip's size where 224 has it so
    "nasnet-mobile": (3, 32, 32),
    # googlenet keeps 224: its avgpool7 needs a 7x7 map after the /32 stem.
    # resnet20..110 keep 32 (cheap, and the size the paper's CIFAR models are built for).
}
SPEC = """model kitchen-sink
input 20x18x4
conv3-8 s=2 d=2 g=2 p=1 bias=false; bn affine=false; leakyrelu
conv1x3-8; bn; elu
residual shortcut=C { conv3-8; gelu }
residual shortcut=B bias=true { conv3-16 s=2; bn; silu }
residual shortcut=A { conv3-24 s=2; hardswish }
avgpool3 s=2 p=1 ceil=true
lrn size=3
concat { branch { conv1-4; sigmoid } branch { maxpool3 s=1 p=1; tanh } }
relu6
dropout-0.1
globalmaxpool
flatten
FC-12 bias=false; bn; relu
FC-5; soft-max
"""


def _failed(report: VerifyReport) -> str:
    return "\n".join(f"{c.name} {c.path}: expected {c.expected}, got {c.actual}"
                     for c in report.failures[:20])


def _names(report: VerifyReport) -> set[str]:
    return {c.name for c in report.failures}


@pytest.fixture(scope="module")
def sink() -> archcalc.Graph:
    return archcalc.parse(SPEC)


@needs_verify
@pytest.mark.slow
@pytest.mark.parametrize("name", names())
def test_zoo_model_verifies(name: str) -> None:
    report = verify_model(name, SMALL_INPUTS.get(name))
    assert report.ok, _failed(report)
    rows = archcalc.analyze(archcalc.load(name), input_shape=SMALL_INPUTS.get(name)).rows
    by_name = {c.name for c in report.checks}
    assert sum(c.name == "output shape" for c in report.checks) == len(rows)
    assert {"MACs (fvcore total)", "layer MACs (torchinfo)", "buffers (BN running mean+var)"
            } <= by_name
    if any(len(r.out_shape) == 3 for r in rows):
        assert {"RF first unit", "RF last unit"} <= by_name


@needs_verify
def test_every_layer_kind_and_option_verifies(sink: archcalc.Graph) -> None:
    report = verify(sink)
    assert report.ok, _failed(report)
    assert report.input_shape == (4, 20, 18)
    probed = {c.path for c in report.checks if c.name == "RF first unit"}
    assert {"1", "7.s1", "9.s1", "10", "12", "15"} <= probed


@needs_verify
def test_vector_input_model_verifies() -> None:
    graph = archcalc.parse("input 10\nFC-6; bn; relu; dropout; FC-3 bias=false; "
                           "bn affine=false; soft-max")
    report = verify(graph)
    assert report.ok, _failed(report)
    assert not any(c.name.startswith("RF") for c in report.checks)


@needs_verify
def test_wrong_parameter_rule_is_reported(monkeypatch, sink) -> None:
    real = Linear.parameters

    def no_linear_bias(layer, in_shape):
        p = real(layer, in_shape)
        return Params(p.weights, 0, p.buffers)

    monkeypatch.setattr(Linear, "parameters", no_linear_bias)
    report = verify(sink)
    assert _names(report) == {"params (torch numel)", "params (torchinfo total_params)",
                              "layer params (torchinfo)"}
    assert {c.path for c in report.failures if c.path} == {"20"}  # FC-5, the one with bias


@needs_verify
def test_wrong_shape_rule_is_reported(monkeypatch) -> None:
    real = Pool.output_shape

    def ceil_pool(layer, shape, loc):  # as if every pool rounded up
        return real(Pool(layer.op, layer.kernel, layer.stride, layer.padding, True), shape, loc)

    monkeypatch.setattr(Pool, "output_shape", ceil_pool)
    report = verify(archcalc.parse("input 7x7x2\nconv3-4; maxpool; conv1-3"), probe_rf=False)
    shape_failures = [c for c in report.failures if c.name == "output shape"]
    assert [(c.path, c.expected, c.actual) for c in shape_failures] == [
        ("2", (4, 4, 4), (4, 3, 3)), ("3", (3, 4, 4), (3, 3, 3))]


@needs_verify
def test_wrong_convention_preset_is_reported(monkeypatch, sink) -> None:
    fv = CONVENTIONS["fvcore"]
    monkeypatch.setitem(CONVENTIONS, "fvcore", Convention(
        "fvcore", fv.summary, lambda o: fv.macs(o) + o.bias, fv.flops))  # count biases too
    report = verify(sink, probe_rf=False)
    assert _names(report) == {"MACs (fvcore total)", "layer MACs (fvcore)"}


@needs_verify
def test_wrong_receptive_field_is_caught_by_the_probe(monkeypatch, sink) -> None:
    def forget_dilation(layer, rf, in_shape):
        return rf.step(layer.kernel, layer.stride, layer.padding)

    monkeypatch.setattr(Conv, "receptive_field", forget_dilation)
    report = verify(sink)
    assert _names(report) <= {"RF first unit", "RF last unit"}
    assert ("RF first unit", "1") in {(c.name, c.path) for c in report.failures}


@needs_verify
def test_probe_catches_an_off_by_one_pool_field(monkeypatch) -> None:
    def pool_one_wider(layer, rf, in_shape):
        k = (layer.kernel[0] + 1, layer.kernel[1] + 1)
        return rf.step(k, layer.stride, layer.padding)

    monkeypatch.setattr(Pool, "receptive_field", pool_one_wider)
    report = verify_model("vgg11", SMALL_INPUTS["vgg11"])
    assert report.failures and _names(report) <= {"RF first unit", "RF last unit"}
    assert report.failures[0].path == "2"  # the first maxpool; the convs before it pass


def test_expected_field_is_exact_inside_and_a_bound_at_a_clipped_edge() -> None:
    rf = RF(size=(5, 5), stride=(2, 2), start=(-1, 1))  # rows [-1, 3], cols [1, 5]
    field = ExpectedField.of(rf, (10, 10))
    assert field.box == ((0, 3), (1, 5))
    assert str(field) == "rows 0*-3, cols 1-5"
    assert field.admits(((1, 3), (1, 5)))  # clipped row edge: a hole at 0 is allowed
    assert not field.admits(((0, 3), (2, 5)))  # an exact edge must match
    assert not field.admits(((0, 4), (1, 5)))  # outside the field
    assert field.admits(None)  # clipped: the unit may lie wholly in a later pad's padding
    assert not ExpectedField.of(rf, (10, 10), last_of=(2, 2)).admits(None)  # not clipped
    last = ExpectedField.of(rf, (10, 6), last_of=(4, 3))  # rows [5, 9], cols [5, 9] -> 5
    assert last.box == ((5, 9), (5, 5)) and last.clipped == ((False, False), (False, True))
    assert ExpectedField.of(RF((1, 1), (1, 1), (-2, 0)), (4, 4)).admits(None)  # in padding


def test_missing_extra_raises_verify_unavailable(monkeypatch, sink) -> None:
    monkeypatch.setitem(sys.modules, "fvcore.nn", None)
    with pytest.raises(VerifyUnavailable, match=r"pip install 'archcalc-hw3\[verify\]'") as e:
        verify(sink)
    assert "\n" not in str(e.value)


def _render(report: VerifyReport) -> str:
    console = Console(record=True, width=140, color_system=None)
    console.print(report)
    return console.export_text()


def test_rich_report_lists_each_failure_and_summarises_passes() -> None:
    report = VerifyReport("toy", (3, 8, 8), (
        Check("output shape", "1", (4, 8, 8), (4, 8, 8), True),
        Check("output shape", "2", (4, 4, 4), (4, 3, 3), False),
        Check("params (torch numel)", "", 1234, 1234, True),
    ))
    text = _render(report)
    assert not report.ok and report.failures == (report.checks[1],)
    assert "1 layers" in text and "4x4x4" in text and "3x3x4" in text and "FAIL" in text
    assert "1,234" in text and "2/3 checks passed, 1 FAILED" in text
    assert "num_batches_tracked" in text


@needs_verify
def test_verify_model_takes_params() -> None:
    report = verify_model("resnet-cifar", params={"depth": 8, "size": 16}, probe_rf=False)
    assert report.ok, _failed(report)
    assert report.model == "resnet-cifar" and report.input_shape == (3, 16, 16)
    shapes = [c for c in report.checks if c.name == "output shape"]
    assert shapes[-1].actual == (10,) and len(shapes) == 29  # depth 8: one block per stage


# -- verify --against: a spec beside the real model it describes ---------------------------
LENET_FACTORY = """\
import torch.nn as nn


def lenet5():
    return nn.Sequential(nn.Conv2d(1, 6, 5), nn.Tanh(), nn.AvgPool2d(2),
                         nn.Conv2d(6, 16, 5), nn.Tanh(), nn.AvgPool2d(2), nn.Flatten(),
                         nn.Linear(400, 120), nn.Tanh(), nn.Linear(120, 84), nn.Tanh(),
                         nn.Linear(84, 10))
"""
LENET_SPEC = """\
model lenet
input 32x32x1
conv5-6 p=0; tanh; avgpool2
conv5-16 p=0; tanh; avgpool2
FC-120; tanh; FC-{f6}; tanh; FC-10
"""


@needs_verify
@pytest.mark.parametrize(("f6", "ok"), [(84, True), (48, False)])
def test_against_finds_the_first_layer_that_differs(tmp_path: Path, f6: int, ok: bool) -> None:
    """A LeNet spec with F6 = 48 instead of 84 passes every check of plain verify (it is
    built from itself); against the real module its F6 row fails, naming both layers."""
    from typer.testing import CliRunner

    from archcalc.cli import app, route

    (tmp_path / "nets.py").write_text(LENET_FACTORY, encoding="utf-8")
    spec = tmp_path / "lenet.arch"
    spec.write_text(LENET_SPEC.format(f6=f6), encoding="utf-8")
    result = CliRunner().invoke(app, route(["verify", str(spec), "--against",
                                            f"{tmp_path / 'nets.py'}:lenet5"]))
    assert result.exit_code == (0 if ok else 1), result.output
    if not ok:
        failed = [line for line in result.output.splitlines() if "FAIL" in line]
        assert "FC-48 -> 48, 5,760w 48b" in failed[0] and "Linear 9 -> 84" in failed[0]
        assert verify(archcalc.parse(LENET_SPEC.format(f6=f6))).ok  # the old blind spot
