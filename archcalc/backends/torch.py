"""Graph -> torch.nn.Module: each layer kind builds its own module
(:meth:`~archcalc.kinds.base.Kind.torch_module`), blocks their containers.

Shapes are propagated by torch itself on the meta device, not by archcalc's shape rules, so
the verifier compares two independent derivations; the residual shortcut layers do come from
the residual kind's rule, the one the analysis uses. Every module that makes a report row
carries the row's path (:data:`PATH_ATTR`; children are named after it with ``.`` -> ``_``),
so tools' per-module numbers map back to rows. ``probe=True`` builds the receptive-field
probe's version of each layer instead (:meth:`~archcalc.kinds.base.Kind.probe_module`).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from archcalc.backends.modules import HeadBlock
from archcalc.kinds.base import Block
from archcalc.layers import Graph, Node, Seq, Shape

PATH_ATTR = "archcalc_path"
KIND_ATTR = "archcalc_kind"  # (layer, input shape) of a leaf: how the probe rebuilds it
Children = list[tuple[str, nn.Module]]


class Net(nn.Sequential):
    """The spec's network; ``input_shape`` is per sample, as archcalc writes it."""

    def __init__(self, input_shape: Shape, children: Children) -> None:
        super().__init__(OrderedDict(children))
        self.input_shape = input_shape
        self.heads = [m for m in self.modules() if isinstance(m, HeadBlock)]
        self.tensors = list({id(m.tensors): m.tensors for m in self.modules()
                             if isinstance(m, NamedTensor)}.values())

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        """The main output; with ``head`` blocks, a tuple of it and each head's output in
        spec order (so tracing tools see, and count, every head). Named tensors live for
        one forward: none is held between calls."""
        try:
            y = super().forward(x)
        finally:
            for tensors in self.tensors:
                tensors.clear()
        if not self.heads:
            return y
        return (y, *(head.output for head in self.heads))

    def example(self, batch: int = 1, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        return torch.rand((batch, *self.input_shape), dtype=dtype)


class NamedTensor(nn.Module):
    """``keep NAME`` (store the input under NAME, pass it on) or ``from NAME`` (return the
    tensor stored under NAME; the input is dropped). The modules of one built model share
    one dictionary, which :class:`Net` empties after each forward."""

    def __init__(self, action: str, name: str, tensors: dict[str, torch.Tensor]) -> None:
        super().__init__()
        self.action, self.name, self.tensors = action, name, tensors

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.action == "keep":
            self.tensors[self.name] = x
            return x
        return self.tensors[self.name]

    def extra_repr(self) -> str:
        return f"{self.action} {self.name}"


_BUILDING: list[dict[str, torch.Tensor]] = []  # the named tensors of the model being built


@contextmanager
def _named_tensors() -> Iterator[dict[str, torch.Tensor]]:
    tensors: dict[str, torch.Tensor] = {}
    _BUILDING.append(tensors)
    try:
        yield tensors
    finally:
        _BUILDING.pop()
        tensors.clear()  # the meta tensors of the build


def named_module(action: str, name: str) -> NamedTensor:
    """The module of a ``keep``/``from`` statement in the model being built."""
    if not _BUILDING:
        raise RuntimeError("keep/from modules are made by build_module, which shares one "
                           "dictionary of named tensors among them")
    return NamedTensor(action, name, _BUILDING[-1])


def build_module(graph: Graph, input_shape: Shape | None = None) -> Net:
    """The network of ``graph`` with torch's default initialisation, in training mode."""
    shape = tuple(input_shape or graph.input_shape)
    # shapes without arithmetic; batch 2 for training-mode BN
    with torch.device("meta"), _named_tensors():
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
        module, x = _node(node, x)
        children.append((_name(node.path), module))
    return children, x


def _node(node: Node, x: torch.Tensor) -> tuple[nn.Module, torch.Tensor]:
    layer = node.layer
    in_shape = tuple(x.shape[1:])
    if isinstance(layer, Block):
        module = layer.torch_block(node, x, _seq)
    else:
        module = layer.torch_module(in_shape)
        setattr(module, KIND_ATTR, (layer, in_shape))
    setattr(module, PATH_ATTR, node.path)
    return module, module(x)


def modules_by_path(model: nn.Module) -> dict[str, nn.Module]:
    """Report row path -> the module whose output is that row's output."""
    return {getattr(m, PATH_ATTR): m for m in model.modules() if hasattr(m, PATH_ATTR)}


def leaf_names(model: nn.Module) -> dict[str, str]:
    """Row path -> qualified module name, for modules without children (tools' leaves)."""
    return {getattr(m, PATH_ATTR): name for name, m in model.named_modules()
            if hasattr(m, PATH_ATTR) and not any(m.children())}
