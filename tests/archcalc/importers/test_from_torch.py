"""archcalc.from_torch on modules written here the way torch code is written (nn.Sequential,
custom forwards with ``+=``, ``torch.cat``, SE gates, functional calls, 1-D nets): every
number is checked against the original module, not against archcalc's own build of it:
parameters and buffers against ``numel``, FLOPs against FlopCounterMode and fvcore on the
module itself, every module's output shape against a forward hook; and the imported graph
verifies against torch (torchinfo, fvcore, receptive-field probe)."""

from __future__ import annotations

import importlib.util
import json
import warnings
from collections.abc import Callable

import pytest

pytestmark = pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("torch", "torchinfo", "fvcore")),
    reason="the verify extra (torch, torchinfo, fvcore) is not installed")

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional

import archcalc  # noqa: E402
from archcalc.importers.torch import UnsupportedModel, torch_graph  # noqa: E402


# -- modules ---------------------------------------------------------------------------------
class BasicBlock(nn.Module):
    """torchvision's ResNet basic block: out += identity (fx records it as out + identity),
    a projection when the shape changes."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                         nn.BatchNorm2d(cout))
                           if stride != 1 or cin != cout else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)


class SqueezeExcite(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, channels // 4, 1)
        self.fc2 = nn.Conv2d(channels // 4, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = torch.sigmoid(self.fc2(F.relu(self.fc1(F.adaptive_avg_pool2d(x, 1)))))
        return x * scale


class ResNetish(nn.Module):
    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 1, 1), nn.BatchNorm2d(16), nn.ReLU())
        self.layer1 = nn.Sequential(BasicBlock(16, 16, 1), BasicBlock(16, 32, 2))
        self.se = SqueezeExcite(32)
        self.branch1 = nn.Conv2d(32, 8, 1)
        self.branch3 = nn.Sequential(nn.Conv2d(32, 8, 1), nn.Conv2d(8, 8, 3, padding=1))
        self.pool = nn.MaxPool2d(3, 1, 1)
        self.fc = nn.Linear(48, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.se(self.layer1(self.stem(x)))
        x = torch.cat([self.branch1(x), self.branch3(x), self.pool(x)], dim=1)
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class InvertedResidual(nn.Module):
    """MobileNetV2's block: x + conv(x), a new tensor."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        hidden = 4 * channels
        self.conv = nn.Sequential(
            nn.Conv2d(channels, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6(),
            nn.Conv2d(hidden, hidden, 3, 1, 1, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden), nn.Hardswish(),
            nn.Conv2d(hidden, channels, 1, bias=False), nn.BatchNorm2d(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x)


class MobileNetish(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), InvertedResidual(8),
                                      InvertedResidual(8))
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(8, 5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).mean((2, 3)))


class Sequence1d(nn.Module):
    """A 1-D net on (C, L): Conv1d, BatchNorm1d, MaxPool1d, adaptive pooling, x.view."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv1d(2, 8, 9, stride=2, padding=4), nn.BatchNorm1d(8),
                                  nn.ReLU(), nn.MaxPool1d(2),
                                  nn.Conv1d(8, 8, 4, padding="same", dilation=2),
                                  nn.AdaptiveAvgPool1d(4))
        self.fc = nn.Linear(32, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.body(x)
        return self.fc(x.view(x.size(0), -1))


class ShapeDependent(nn.Module):
    """Python control flow on a shape, which torch.fx cannot trace: read by running the
    module once on meta tensors. ``out += x`` is seen as the in-place sum it is."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.bn = nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8)
        self.body = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.ReLU())
        self.pool, self.side = nn.MaxPool2d(2), nn.Conv2d(8, 8, 1)
        self.fc = nn.Linear(16 * 16 * 16, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn(self.conv(x)))
        out = self.body(x)
        out += x
        if x.shape[-1] > 16:
            out = self.pool(out)
        out = torch.cat([out, self.side(out)], 1)
        return self.fc(out.view(out.size(0), -1))


def assorted() -> nn.Module:
    """One of each other module kind archcalc reads."""
    return nn.Sequential(
        nn.ZeroPad2d((1, 0, 2, 1)), nn.Conv2d(3, 8, 4, padding="same"), nn.GroupNorm(2, 8),
        nn.PReLU(8), nn.InstanceNorm2d(8, affine=True), nn.LocalResponseNorm(3),
        nn.AvgPool2d(3, 2, 1, ceil_mode=True), nn.Upsample(scale_factor=2),
        nn.ConvTranspose2d(8, 4, 3, padding=1), nn.GELU(), nn.AdaptiveMaxPool2d(2),
        nn.Flatten(), nn.LayerNorm(16), nn.Linear(16, 4), nn.Softmax(dim=1))


MODELS: dict[str, tuple[Callable[[], nn.Module], tuple[int, ...]]] = {
    "resnetish": (ResNetish, (3, 32, 32)),
    "mobilenetish": (MobileNetish, (3, 16, 16)),
    "sequence1d": (Sequence1d, (2, 64)),
    "assorted": (assorted, (3, 12, 10)),
    "shape-dependent": (ShapeDependent, (3, 32, 32)),
}


def output_shapes(module: nn.Module, input_size: tuple[int, ...]) -> dict[str, tuple]:
    """Every leaf module's output shape (one sample) by qualified name, from a forward."""
    shapes: dict[str, tuple] = {}
    handles = [m.register_forward_hook(
        lambda _m, _i, out, name=name: shapes.__setitem__(name, tuple(out.shape[1:])))
        for name, m in module.named_modules() if name and not any(m.children())]
    with torch.no_grad():
        module.eval()(torch.rand((1, *input_size)))
    for handle in handles:
        handle.remove()
    return shapes


@pytest.mark.filterwarnings("ignore:Using padding='same':UserWarning")  # torch's, on 'assorted'
@pytest.mark.parametrize("name", MODELS)
def test_counts_match_the_original_module(name: str) -> None:
    factory, input_size = MODELS[name]
    module = factory()
    report = archcalc.from_torch(module, input_size)
    assert report.totals.params == sum(p.numel() for p in module.parameters())
    assert report.totals.buffers == sum(b.numel() for n, b in module.named_buffers()
                                        if n.endswith(("running_mean", "running_var")))
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter, torch.no_grad():
        module.eval()(torch.rand((1, *input_size)))
    flops = archcalc.analyze(torch_graph(module, input_size), "flopcounter").totals.flops
    assert flops == counter.get_total_flops()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # fvcore's own use of torch.jit is deprecated
        from fvcore.nn import FlopCountAnalysis

        analysis = FlopCountAnalysis(module.eval(), torch.rand((1, *input_size)))
        analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        by_module = analysis.by_module()
    fvcore = archcalc.analyze(torch_graph(module, input_size), "fvcore")
    # fvcore counts aten::_convolution; a conv written with padding="same" traces as
    # aten::conv1d/conv2d.padding, which it does not count: leave those rows out of both
    blind = {r.label.split(" ", 1)[1] for r in fvcore.rows if r.kind == "conv" and getattr(
        module.get_submodule(r.label.split(" ", 1)[1]), "padding", None) == "same"}
    assert fvcore.totals.macs - sum(r.macs for r in fvcore.rows
                                    if r.label.split(" ", 1)[-1] in blind) == (
        by_module[""] - sum(by_module[name] for name in blind))


@pytest.mark.parametrize("name", MODELS)
def test_every_module_output_shape_matches_a_forward(name: str) -> None:
    factory, input_size = MODELS[name]
    module = factory()
    measured = output_shapes(module, input_size)
    rows = {r.label.split(" ", 1)[1]: r.out_shape for r in archcalc.from_torch(
        module, input_size).rows if " " in r.label and " in " not in r.label}  # modules
    assert rows and {k: v for k, v in measured.items() if k in rows} == rows


@pytest.mark.parametrize("name", MODELS)
def test_the_imported_graph_verifies_against_torch(name: str) -> None:
    from archcalc.verify import verify

    factory, input_size = MODELS[name]
    report = verify(torch_graph(factory(), input_size))
    assert report.ok, [(c.name, c.path, c.expected, c.actual) for c in report.failures]


def test_a_module_fx_cannot_trace_is_run_on_meta_tensors() -> None:
    module = ShapeDependent()
    with pytest.raises(Exception):  # noqa: B017 - whatever torch.fx raises for it
        torch.fx.symbolic_trace(module)
    rows = archcalc.from_torch(module, (3, 32, 32)).rows
    assert [r.inplace for r in rows if r.kind == "add"] == [True]  # out += x
    assert [r.kind for r in rows] == ["conv", "bn", "act", "conv", "act", "add", "pool", "conv",
                                      "concat", "flatten", "linear"]
    assert module.conv.weight.device.type == "cpu"  # the module itself is untouched


def test_joins_become_blocks() -> None:
    rows = archcalc.from_torch(ResNetish(), (3, 32, 32)).rows
    adds = [r for r in rows if r.kind == "add"]
    assert [r.inplace for r in adds] == [False, False]  # fx reads out += x as out + x
    assert [r.kind for r in rows if r.kind in ("gate", "concat")] == ["gate", "concat"]
    mobile = [r for r in archcalc.from_torch(MobileNetish(), (3, 16, 16)).rows
              if r.kind == "add"]
    assert [r.inplace for r in mobile] == [False, False]  # x + conv(x): a new tensor
    explicit = archcalc.from_torch(Branchy("inplace"), (3, 8, 8)).rows
    assert [r.inplace for r in explicit if r.kind == "add"] == [True]  # out.add_(...)
    block = next(r for r in rows if r.path.endswith(".b2.1"))
    assert block.label == "Conv2d layer1.1.downsample.0"


@pytest.mark.parametrize(("module", "message"), [
    (nn.Sequential(nn.Conv2d(3, 4, 3), nn.Softplus()),
     "cannot read module '1': no rule for torch.nn.modules.activation.Softplus"),
    (nn.Sequential(nn.Conv2d(3, 4, 3, padding_mode="reflect")),
     "cannot read module '0': padding_mode='reflect'"),
    (nn.Sequential(nn.MaxPool2d(2, dilation=2)), "dilation=2"),
])
def test_layers_without_a_rule_are_named(module: nn.Module, message: str) -> None:
    with pytest.raises(UnsupportedModel, match=message):
        torch_graph(module, (3, 8, 8))


class Branchy(nn.Module):
    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind, self.a, self.b = kind, nn.Conv2d(3, 3, 1), nn.Conv2d(3, 3, 1)
        self.c = nn.Conv2d(6, 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "product":
            return self.a(x) * self.b(x)
        if self.kind == "dense":  # torchvision DenseNet's way: features reused by every cat
            f1 = self.a(x)
            return torch.cat([x, f1, self.c(torch.cat([x, f1], 1))], 1)
        if self.kind == "inplace":
            out = self.a(x)
            return out.add_(self.b(x))
        if self.kind == "cat2":
            return torch.cat([x, self.a(x)], 2)
        if self.kind == "control":
            return self.a(x) if x.sum() > 0 else self.b(x)
        return self.a(x), self.b(x)  # type: ignore[return-value]


@pytest.mark.parametrize(("kind", "message"), [
    ("product", "a product of two computed tensors"),
    ("cat2", "torch.cat along dim 2"),
    ("control", "torch.fx cannot trace its forward"),
    ("tuple", "forward returns tuple"),
])
def test_graphs_archcalc_cannot_write_are_refused(kind: str, message: str) -> None:
    with pytest.raises(UnsupportedModel, match=message):
        torch_graph(Branchy(kind), (3, 8, 8))


def test_features_reused_by_every_cat_are_named() -> None:
    """torchvision DenseNet's reuse: x and f1 are read by both concatenations, which no
    blocks write without counting conv ``a`` twice; the input is kept under a name
    (``input`` is a word of the language) and read back with ``from``; ``a``'s result is
    the current tensor where the outer concatenation begins, so its branches read it
    without a name. The written spec parses back to the same rows."""
    from archcalc.writer import to_spec

    module = Branchy("dense")
    graph = torch_graph(module, (3, 8, 8))
    assert to_spec(graph).split("input 8x8x3\n", 1)[1] == (
        "keep input_tensor\nconv1-3\nconcat {\n  branch { from input_tensor }\n  branch { }\n"
        "  branch {\n    concat {\n      branch { from input_tensor }\n      branch { }\n"
        "    }\n"
        "    conv1-3\n  }\n}\n")
    report = archcalc.analyze(graph)
    again = archcalc.analyze(archcalc.parse(to_spec(graph)))
    assert [(r.kind, r.out_shape, r.params) for r in again.rows] == [
        (r.kind, r.out_shape, r.params) for r in report.rows]
    assert report.totals.params == sum(p.numel() for m in (module.a, module.c)  # b unused
                                       for p in m.parameters())
    assert [r.out_shape for r in report.rows if r.kind in ("conv", "concat")] == [
        (3, 8, 8), (6, 8, 8), (3, 8, 8), (9, 8, 8)]


def test_cli_reads_a_factory_from_a_file(tmp_path) -> None:
    from typer.testing import CliRunner

    from archcalc.cli import app, route

    path = tmp_path / "mynets.py"
    path.write_text("import torch.nn as nn\n\ndef lenet(classes=10):\n"
                    "    return nn.Sequential(nn.Conv2d(1, 6, 5), nn.Tanh(), nn.AvgPool2d(2),\n"
                    "        nn.Flatten(), nn.Linear(6 * 14 * 14, classes))\n")
    result = CliRunner().invoke(app, route(["torch", f"{path}:lenet", "--arg", "classes=7",
                                            "--input", "32x32x1", "--format", "json"]))
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["model"] == "lenet" and data["input"] == [1, 32, 32]
    assert data["totals"]["params"] == 6 * 25 + 6 + 6 * 14 * 14 * 7 + 7
    bad = CliRunner().invoke(app, route(["torch", f"{path}:lenet", "--arg", "classes=x"]))
    assert bad.exit_code == 2 and "failed: TypeError" in bad.output
    spec = CliRunner().invoke(app, route(["to-spec", f"{path}:lenet", "--input", "32x32x1"]))
    assert spec.exit_code == 0 and spec.output.startswith("model lenet\n")
    assert "conv5-6 p=0\ntanh\navgpool2\nflatten\nFC-10\n" in spec.output
    missing = CliRunner().invoke(app, route(["torch", "nosuch_module_xyz:net"]))
    assert missing.exit_code == 2 and "cannot import nosuch_module_xyz" in missing.output


@pytest.mark.parametrize("name", MODELS)
def test_the_imported_model_written_as_a_spec_gives_the_same_numbers(name: str) -> None:
    from archcalc.writer import to_spec

    factory, input_size = MODELS[name]
    graph = torch_graph(factory(), input_size)
    again = archcalc.parse(to_spec(graph))
    rows = [(r.kind, r.out_shape, r.params, r.ops, r.rf, r.inplace)
            for r in archcalc.analyze(graph).rows]
    assert [(r.kind, r.out_shape, r.params, r.ops, r.rf, r.inplace)
            for r in archcalc.analyze(again).rows] == rows
