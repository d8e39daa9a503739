"""from_torch's lean tracer against torch.fx, whose graph it stands in for: on every module
it traces, the same nodes in the same order, with the same names, targets, printed
arguments, users and module stacks, so the imported graph is the one torch.fx's nodes give
(labels and source lines included). A forward it does not mirror is traced by torch.fx
instead, and a forward neither traces is run on meta tensors, as before. Modules: those
written here the way torch code is written, EfficientNet-PyTorch (a package nobody here
wrote), and archcalc's zoo built as torch modules."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from test_from_torch import MODELS  # noqa: E402

import archcalc  # noqa: E402
from archcalc.backends.torch import build_module  # noqa: E402
from archcalc.importers.torch import (  # noqa: E402
    UnsupportedModel,
    _Fallback,
    _Importer,
    _LeanTracer,
    _Tracer,
    torch_graph,
)


def efficientnet_b0() -> nn.Module:
    efficientnet = pytest.importorskip("efficientnet_pytorch")
    model = efficientnet.EfficientNet.from_name("efficientnet-b0", image_size=64)
    model.set_swish(memory_efficient=False)
    return model


def zoo(name: str) -> Callable[[], nn.Module]:
    return lambda: build_module(archcalc.load(name))


TRACED: dict[str, tuple[Callable[[], nn.Module], tuple[int, ...]]] = {
    **{name: entry for name, entry in MODELS.items() if name != "shape-dependent"},
    "efficientnet-b0": (efficientnet_b0, (3, 64, 64)),
    "resnet50": (zoo("resnet50"), (3, 224, 224)),
    "inception": (zoo("googlenet"), (3, 224, 224)),
    "unet": (zoo("unet"), (1, 188, 188)),
}


def described(nodes: list[Any]) -> list[tuple[object, ...]]:
    """Everything the importer reads from a node, and the order of the nodes."""
    def owner(n: Any) -> object:
        stack = n.meta.get("nn_module_stack") or {}
        return [(key, path) for key, (path, _type) in stack.items()]

    return [(n.op, n.target, n.name, n.format_node(), [a.name for a in n.all_input_nodes],
             [u.name for u in n.users], owner(n)) for n in nodes]


@pytest.mark.filterwarnings("ignore:Using padding='same':UserWarning")  # torch's, on 'assorted'
@pytest.mark.parametrize("name", TRACED)
def test_the_lean_tracer_makes_torch_fx_graph(name: str) -> None:
    factory, size = TRACED[name]
    module = factory().eval()
    lean = _LeanTracer(module).trace()
    fx_nodes = list(_Tracer(module).trace(module).nodes)
    assert len(lean) > 10
    assert described(lean) == described(fx_nodes)
    assert imported(lambda: torch_graph(module, size).body) == imported(
        lambda: _Importer(module, fx_nodes, type(module).__name__).body())


def imported(read: Callable[[], object]) -> object:
    """The graph's body, or the one line that refuses it (the U-Net's crops: slices)."""
    try:
        return read()
    except UnsupportedModel as exc:
        return str(exc)


class Unpacked(nn.Module):
    """``n, c, h, w = x.shape``: torch.fx unpacks a traced shape, the lean tracer does not."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.fc = nn.Conv2d(3, 4, 3, padding=1), nn.Linear(4 * 8 * 8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv(x))
        n, _c, _h, _w = x.shape
        return self.fc(x.view(n, -1))


def test_a_forward_it_does_not_mirror_is_traced_by_torch_fx() -> None:
    module = Unpacked().eval()
    call, getattr_ = nn.Module.__call__, nn.Module.__getattr__
    with pytest.raises(_Fallback):
        _LeanTracer(module).trace()
    assert (nn.Module.__call__, nn.Module.__getattr__) == (call, getattr_)  # put back
    fx_nodes = list(_Tracer(module).trace(module).nodes)
    assert torch_graph(module, (3, 8, 8)).body == _Importer(module, fx_nodes, "Unpacked").body()
    report = archcalc.from_torch(module, (3, 8, 8))
    assert report.totals.params == sum(p.numel() for p in module.parameters())


def test_a_forward_neither_traces_is_still_run_on_meta_tensors() -> None:
    factory, size = MODELS["shape-dependent"]
    module = factory().eval()
    with pytest.raises(_Fallback):
        _LeanTracer(module).trace()
    report = archcalc.from_torch(module, size)
    assert report.totals.params == sum(p.numel() for p in module.parameters())


def test_each_module_keeps_its_own_mode() -> None:
    """Read in eval mode (dropout as inference), then every module as the user left it:
    a model training with its batch norms frozen stays so."""
    factory, size = MODELS["resnetish"]
    module = factory().train()
    frozen = [m for m in module.modules() if isinstance(m, nn.BatchNorm2d)][:2]
    for m in frozen:
        m.eval()
    before = {name: m.training for name, m in module.named_modules()}
    archcalc.from_torch(module, size)
    assert {name: m.training for name, m in module.named_modules()} == before
    assert sorted(set(before.values())) == [False, True]


class Forgiving(nn.Module):
    """A forward that catches what it tries: torch.fx raises on ``len`` of a traced value,
    and so does the lean tracer, which must not go on as if it had mirrored torch.fx."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.fc = nn.Conv2d(3, 4, 3, padding=1), nn.Linear(4 * 8 * 8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        with contextlib.suppress(Exception):  # what the user's code does
            len(x)
        return self.fc(torch.flatten(x, 1))


def test_a_forward_that_catches_the_lean_tracer_still_goes_to_torch_fx() -> None:
    module = Forgiving().eval()
    with pytest.raises(_Fallback, match="len"):
        _LeanTracer(module).trace()
    fx_nodes = list(_Tracer(module).trace(module).nodes)
    assert torch_graph(module, (3, 8, 8)).body == _Importer(module, fx_nodes, "Forgiving").body()
