"""Graph -> torch.nn.Module, and what torch and its counting tools measure on that module.

The only archcalc module that imports torch (torchinfo and fvcore are imported where used).
Shapes are propagated by torch itself on the meta device, not by archcalc's shape rules, so
the verifier compares two independent derivations; the residual shortcut layers do come from
:func:`archcalc.algebra.shortcut_layers`, the rule the analysis uses. Every module that makes
a report row carries the row's path (:data:`PATH_ATTR`; children are named after it with
``.`` -> ``_``), so tools' per-module numbers map back to rows.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from archcalc.algebra import shortcut_layers
from archcalc.layers import (
    LRN,
    Activation,
    BatchNorm,
    Concat,
    Conv,
    Dropout,
    Flatten,
    GlobalPool,
    Graph,
    Layer,
    Linear,
    Node,
    Pool,
    Residual,
    Seq,
    Shape,
    ZeroPadShortcut,
)

PATH_ATTR = "archcalc_path"
Children = list[tuple[str, nn.Module]]

_ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU, "relu6": nn.ReLU6, "leakyrelu": nn.LeakyReLU, "elu": nn.ELU,
    "gelu": nn.GELU, "silu": nn.SiLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh,
    "hardswish": nn.Hardswish, "softmax": lambda: nn.Softmax(dim=1),
}
_ACTIVATION_TYPES = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Sigmoid,
                     nn.Tanh, nn.Hardswish, nn.Softmax)


# -- modules ----------------------------------------------------------------------------
class ZeroPad(nn.Module):
    """He et al. option A: subsample by ``stride``, zero channels, (Cout-Cin)//2 in front."""

    def __init__(self, out_channels: int, stride: tuple[int, int]) -> None:
        super().__init__()
        self.out_channels, self.stride = out_channels, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, ::self.stride[0], ::self.stride[1]]
        extra = self.out_channels - x.shape[1]
        return F.pad(x, (0, 0, 0, 0, extra // 2, extra - extra // 2))


class ConcatBranches(nn.Module):
    """Parallel branches on the same input, joined along channels."""

    def __init__(self, branches: list[nn.Sequential]) -> None:
        super().__init__()
        self.branches = nn.ModuleList(branches)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([branch(x) for branch in self.branches], dim=1)


class ResidualBlock(nn.Module):
    """``body(x) + shortcut(x)``; an empty shortcut is the identity."""

    def __init__(self, body: nn.Sequential, shortcut: nn.Sequential) -> None:
        super().__init__()
        self.body, self.shortcut = body, shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.shortcut(x)


class Net(nn.Sequential):
    """The spec's network; ``input_shape`` is per sample, as archcalc writes it."""

    def __init__(self, input_shape: Shape, children: Children) -> None:
        super().__init__(OrderedDict(children))
        self.input_shape = input_shape

    def example(self, batch: int = 1, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        return torch.rand((batch, *self.input_shape), dtype=dtype)


# -- building ---------------------------------------------------------------------------
def build_module(graph: Graph, input_shape: Shape | None = None) -> Net:
    """The network of ``graph`` with torch's default initialisation, in training mode."""
    shape = tuple(input_shape or graph.input_shape)
    with torch.device("meta"):  # shapes without arithmetic; batch 2 for training-mode BN
        children, _ = _seq(graph.body, torch.empty((2, *shape)))
        net = Net(shape, children)
    net.to_empty(device="cpu")
    for module in net.modules():
        reset = getattr(module, "reset_parameters", None)
        if callable(reset):
            reset()
    return net


def _name(path: str) -> str:
    return path.replace(".", "_")


def _seq(nodes: Seq, x: torch.Tensor) -> tuple[Children, torch.Tensor]:
    children: Children = []
    for node in nodes:
        built, x = _node(node, x)
        children.extend(built)
    return children, x


def _node(node: Node, x: torch.Tensor) -> tuple[Children, torch.Tensor]:
    layer = node.layer
    if isinstance(layer, Concat):
        module: nn.Module = ConcatBranches(
            [nn.Sequential(OrderedDict(_seq(branch, x)[0])) for branch in layer.branches])
        built = [(_name(node.path), module)]
    elif isinstance(layer, Residual):
        body, y = _seq(layer.body, x)
        layers = shortcut_layers(layer.shortcut, tuple(x.shape[1:]), tuple(y.shape[1:]),
                                 node.loc, layer.shortcut_bias)
        sc_nodes = tuple(Node(sc, sc.kind, f"{node.path}.s{i}", node.loc)
                         for i, sc in enumerate(layers, start=1))
        module = ResidualBlock(nn.Sequential(OrderedDict(body)),
                               nn.Sequential(OrderedDict(_seq(sc_nodes, x)[0])))
        built = [(_name(node.path), module)]
    else:
        built = _leaf(layer, x, _name(node.path))
    setattr(built[-1][1], PATH_ATTR, node.path)
    for _, part in built:
        x = part(x)
    return built, x


def _leaf(layer: Layer, x: torch.Tensor, name: str) -> Children:
    """One layer's module; a Linear on a feature map gets an untagged Flatten before it."""
    c = x.shape[1]
    if isinstance(layer, Linear):
        flat = [(f"{name}_flatten", nn.Flatten())] if x.dim() > 2 else []
        return [*flat, (name, nn.Linear(math.prod(x.shape[1:]), layer.out_features,
                                        bias=layer.bias))]
    if isinstance(layer, Conv):
        module: nn.Module = nn.Conv2d(c, layer.out_channels, layer.kernel, layer.stride,
                                      layer.padding, layer.dilation, layer.groups, layer.bias)
    elif isinstance(layer, Pool) and layer.op == "max":
        module = nn.MaxPool2d(layer.kernel, layer.stride, layer.padding,
                              ceil_mode=layer.ceil_mode)
    elif isinstance(layer, Pool):
        module = nn.AvgPool2d(layer.kernel, layer.stride, layer.padding,
                              ceil_mode=layer.ceil_mode, count_include_pad=True)
    elif isinstance(layer, GlobalPool):
        module = nn.AdaptiveAvgPool2d(1) if layer.op == "avg" else nn.AdaptiveMaxPool2d(1)
    elif isinstance(layer, BatchNorm):
        norm = nn.BatchNorm2d if x.dim() == 4 else nn.BatchNorm1d
        module = norm(c, eps=layer.eps, affine=layer.affine)
    else:
        module = _simple(layer)
    return [(name, module)]


def _simple(layer: Layer) -> nn.Module:
    if isinstance(layer, Activation):
        return _ACTIVATIONS[layer.fn]()
    if isinstance(layer, Dropout):
        return nn.Dropout(layer.p)
    if isinstance(layer, Flatten):
        return nn.Flatten()
    if isinstance(layer, LRN):
        # torch divides alpha by the window size; the paper's alpha multiplies the plain sum.
        return nn.LocalResponseNorm(layer.size, layer.alpha * layer.size, layer.beta, layer.k)
    if isinstance(layer, ZeroPadShortcut):
        return ZeroPad(layer.out_channels, layer.stride)
    raise TypeError(f"no torch module for {type(layer).__name__}")


def modules_by_path(model: nn.Module) -> dict[str, nn.Module]:
    """Report row path -> the module whose output is that row's output."""
    return {getattr(m, PATH_ATTR): m for m in model.modules() if hasattr(m, PATH_ATTR)}


def leaf_names(model: nn.Module) -> dict[str, str]:
    """Row path -> qualified module name, for modules without children (tools' leaves)."""
    return {getattr(m, PATH_ATTR): name for name, m in model.named_modules()
            if hasattr(m, PATH_ATTR) and not any(m.children())}
