"""Graphs that are not series-parallel, read by every importer: a torchvision-style
DenseNet (each layer concatenates all earlier feature maps, ``torch.cat(features, 1)``) from
torch and from its ONNX export, and the importers' writing of such graphs with named tensors
(``keep NAME`` / ``from NAME``) only where blocks cannot write them. Every number is checked
against the torch module itself: parameters and buffers against ``numel``, MACs against
fvcore, FLOPs against FlopCounterMode, each module's output shape against a forward hook;
each of the module's layers is a row exactly once."""

from __future__ import annotations

import importlib.util
import warnings
from collections import OrderedDict

import pytest

pytestmark = pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("torch", "torchinfo", "fvcore")),
    reason="the verify extra (torch, torchinfo, fvcore) is not installed")

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional

import archcalc  # noqa: E402
from archcalc.importers.torch import torch_graph  # noqa: E402
from archcalc.layers import Graph, Node, Seq, walk  # noqa: E402
from archcalc.writer import to_spec  # noqa: E402


# -- torchvision's DenseNet, as torchvision writes it (smaller) -----------------------------
class DenseLayer(nn.Module):
    """torchvision's _DenseLayer: BN-ReLU-conv1x1-BN-ReLU-conv3x3 on every earlier map."""

    def __init__(self, cin: int, growth: int, bn_size: int) -> None:
        super().__init__()
        self.norm1, self.relu1 = nn.BatchNorm2d(cin), nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(cin, bn_size * growth, 1, bias=False)
        self.norm2, self.relu2 = nn.BatchNorm2d(bn_size * growth), nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(bn_size * growth, growth, 3, padding=1, bias=False)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        x = torch.cat(features, 1)
        x = self.conv1(self.relu1(self.norm1(x)))
        return self.conv2(self.relu2(self.norm2(x)))


class DenseBlock(nn.ModuleDict):
    """torchvision's _DenseBlock: the list of features grows by one map per layer."""

    def __init__(self, layers: int, cin: int, growth: int, bn_size: int) -> None:
        super().__init__()
        for i in range(layers):
            self.add_module(f"denselayer{i + 1}", DenseLayer(cin + i * growth, growth, bn_size))

    def forward(self, init: torch.Tensor) -> torch.Tensor:
        features = [init]
        for layer in self.values():
            features.append(layer(features))
        return torch.cat(features, 1)


class TinyDenseNet(nn.Module):
    """torchvision's DenseNet (stem, dense blocks, transitions, classifier), smaller."""

    def __init__(self, growth: int = 8, blocks: tuple[int, ...] = (3, 4), init: int = 16,
                 bn_size: int = 2, classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(OrderedDict([
            ("conv0", nn.Conv2d(3, init, 3, padding=1, bias=False)),
            ("norm0", nn.BatchNorm2d(init)), ("relu0", nn.ReLU(inplace=True)),
            ("pool0", nn.MaxPool2d(3, 2, 1))]))
        channels = init
        for i, layers in enumerate(blocks, start=1):
            self.features.add_module(f"denseblock{i}",
                                     DenseBlock(layers, channels, growth, bn_size))
            channels += layers * growth
            if i < len(blocks):
                self.features.add_module(f"transition{i}", nn.Sequential(OrderedDict([
                    ("norm", nn.BatchNorm2d(channels)), ("relu", nn.ReLU(inplace=True)),
                    ("conv", nn.Conv2d(channels, channels // 2, 1, bias=False)),
                    ("pool", nn.AvgPool2d(2, 2))])))
                channels //= 2
        self.features.add_module("norm5", nn.BatchNorm2d(channels))
        self.classifier = nn.Linear(channels, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.features(x), inplace=True)
        out = torch.flatten(F.adaptive_avg_pool2d(out, (1, 1)), 1)
        return self.classifier(out)


class ResidualDense(nn.Module):
    """A dense block inside a residual branch: the add stays a block, and only the dense
    block's part of its branch needs named tensors."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.dense = DenseBlock(3, 8, 4, 2)
        self.project = nn.Conv2d(20, 8, 1)
        self.head = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        x = x + self.project(self.dense(x))
        return self.head(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def dense_after_dense() -> nn.Module:
    """Two dense blocks back to back: the second's input, kept under a name, is the first's
    output (one keep, not two)."""
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), DenseBlock(2, 8, 4, 2),
                         DenseBlock(2, 16, 4, 2), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(24, 4))


INPUT = (3, 32, 32)
MODELS = {"densenet": TinyDenseNet, "residual-dense": ResidualDense,
          "dense-after-dense": dense_after_dense}


def names(seq: Seq) -> list[Node]:
    """The keep and from nodes, at every depth."""
    return [n for top in seq for n in walk((top,)) if n.layer.kind in ("keep", "from")]


def leaf_modules(module: nn.Module) -> set[str]:
    return {name for name, m in module.named_modules()
            if name and not any(m.children()) and not isinstance(m, nn.ReLU)}


# -- counts ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", MODELS)
def test_counts_match_the_torch_module(name: str) -> None:
    from fvcore.nn import FlopCountAnalysis
    from torch.utils.flop_counter import FlopCounterMode

    module = MODELS[name]().eval()
    graph = torch_graph(module, INPUT)
    report = archcalc.analyze(graph)
    assert report.totals.params == sum(p.numel() for p in module.parameters())
    assert report.totals.buffers == sum(b.numel() for n, b in module.named_buffers()
                                        if n.endswith(("running_mean", "running_var")))
    x = torch.rand((1, *INPUT))
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        module(x)
    assert archcalc.analyze(graph, "flopcounter").totals.flops == counter.get_total_flops()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # fvcore's own use of torch.jit is deprecated
        analysis = FlopCountAnalysis(module, x)
        analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        fvcore = analysis.total()
    assert archcalc.analyze(graph, "fvcore").totals.macs == fvcore > 0


@pytest.mark.parametrize("name", MODELS)
def test_each_layer_is_one_row_with_its_forward_shape(name: str) -> None:
    """Written once: every module is exactly one row, its output the shape a forward
    hook sees."""
    module = MODELS[name]().eval()
    measured: dict[str, tuple[int, ...]] = {}
    handles = [m.register_forward_hook(
        lambda _m, _i, out, name=n: measured.__setitem__(name, tuple(out.shape[1:])))
        for n, m in module.named_modules() if n in leaf_modules(module)]
    with torch.no_grad():
        module(torch.rand((1, *INPUT)))
    for handle in handles:
        handle.remove()
    rows = [r for r in archcalc.from_torch(module, INPUT).rows
            if " " in r.label and " in " not in r.label and r.kind not in ("keep", "from")]
    labels = [r.label.split(" ", 1)[1] for r in rows]
    modules = [n for n in labels if n in measured]
    assert sorted(modules) == sorted(measured)  # each module once, none left out
    assert {n: r.out_shape for n, r in zip(labels, rows, strict=True) if n in measured} == (
        measured)


@pytest.mark.parametrize("name", MODELS)
def test_the_imported_graph_verifies_against_torch(name: str) -> None:
    """archcalc's torch build of the written graph (named tensors included) has the
    module's parameters, torchinfo's and fvcore's counts and the receptive fields."""
    from archcalc.verify import verify

    result = verify(torch_graph(MODELS[name](), INPUT))
    assert result.ok, [(c.name, c.path, c.expected, c.actual) for c in result.failures]


@pytest.mark.parametrize("name", MODELS)
def test_written_as_a_spec_it_parses_to_the_same_rows(name: str) -> None:
    graph = torch_graph(MODELS[name](), INPUT)
    again = archcalc.parse(to_spec(graph), file="<written>")
    def rows(g: Graph) -> list[tuple[object, ...]]:
        return [(r.kind, r.in_shape, r.out_shape, r.params, r.ops, r.rf)
                for r in archcalc.analyze(g).rows]
    assert rows(again) == rows(graph)


@pytest.mark.filterwarnings("ignore")
def test_the_onnx_export_gives_the_torch_numbers_and_names() -> None:
    onnx = pytest.importorskip("onnx")
    from archcalc.importers.onnx import onnx_graph

    module = TinyDenseNet().eval()
    buffer = __import__("io").BytesIO()
    torch.onnx.export(module, (torch.rand((1, *INPUT)),), buffer, dynamo=False,
                      do_constant_folding=False)  # batch norms stay batch norms
    graph = onnx_graph(onnx.load_from_string(buffer.getvalue()), name="densenet")
    # the same names as from torch: ONNX's node names hold the module paths
    assert [(n.layer.kind, n.layer.name) for n in names(graph.body)] == [
        (n.layer.kind, n.layer.name) for n in names(torch_graph(module, INPUT).body)] != []
    for convention in ("full", "flopcounter", "torchinfo", "fvcore"):
        assert archcalc.analyze(graph, convention).totals == archcalc.analyze(
            torch_graph(module, INPUT), convention).totals


# -- how the graph is written ----------------------------------------------------------------
def test_named_tensors_only_where_blocks_cannot_write_the_graph() -> None:
    """The residual add around the dense block stays one block; the dense block inside its
    branch keeps its input and reads it back with ``from``; each name is kept once before
    every ``from`` that reads it."""
    body = torch_graph(ResidualDense(), INPUT).body
    assert [n.layer.kind for n in body] == ["conv", "add", "globalpool", "flatten", "linear"]
    assert not [n for n in body if n.layer.kind in ("keep", "from")]
    identity, branch = body[1].layer.sequences()
    assert identity == ()
    named = names(branch)
    kept = [n.layer.name for n in named if n.layer.kind == "keep"]
    read = {n.layer.name for n in named if n.layer.kind == "from"}
    assert read and sorted(kept) == sorted(set(kept)) and set(kept) == read
    assert all(name.isidentifier() for name in kept)
    order = [(n.layer.kind, n.layer.name) for n in named]
    for name in read:  # kept before it is read
        assert order.index(("keep", name)) < order.index(("from", name))


def test_series_parallel_models_are_written_without_names() -> None:
    from test_from_torch import MODELS as BLOCK_MODELS

    for factory, input_size in BLOCK_MODELS.values():
        assert not names(torch_graph(factory(), input_size).body)


class LongReuse(nn.Module):
    """Features reused as a DenseNet does, with 1,200 layers between them: a chain inside
    the named part is written without recursion."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 3, 1)
        self.deep = nn.Sequential(*(nn.ReLU() for _ in range(1200)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f1 = self.a(x)
        return torch.cat([x, f1, self.deep(torch.cat([x, f1], 1))], 1)


def test_a_long_chain_between_named_tensors() -> None:
    graph = torch_graph(LongReuse(), (3, 4, 4))
    rows = archcalc.analyze(graph).rows
    assert sum(r.kind == "act" for r in rows) == 1200
    assert rows[-1].out_shape == (12, 4, 4)
    assert [n.layer.kind for n in names(graph.body)] == ["keep", "from", "from"]

