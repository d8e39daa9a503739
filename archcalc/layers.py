"""Layer kinds as frozen dataclasses: plain data, no arithmetic (that lives in algebra)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

from archcalc.errors import Loc

Pair = tuple[int, int]
Shape = tuple[int, ...]  # (C, H, W) for feature maps, (N,) for vectors

ACTIVATIONS = (
    "relu", "relu6", "leakyrelu", "elu", "gelu", "silu", "sigmoid", "tanh", "hardswish", "softmax",
)


@dataclass(frozen=True)
class Conv:
    out_channels: int
    kernel: Pair
    stride: Pair = (1, 1)
    padding: Pair = (0, 0)
    dilation: Pair = (1, 1)
    groups: int = 1
    bias: bool = True
    kind: str = field(default="conv", init=False)


@dataclass(frozen=True)
class Pool:
    op: Literal["max", "avg"]
    kernel: Pair = (2, 2)
    stride: Pair = (2, 2)
    padding: Pair = (0, 0)
    ceil_mode: bool = False
    kind: str = field(default="pool", init=False)


@dataclass(frozen=True)
class GlobalPool:
    """Adaptive pooling to 1x1, as torch's AdaptiveAvgPool2d(1); output stays (C, 1, 1)."""

    op: Literal["max", "avg"] = "avg"
    kind: str = field(default="globalpool", init=False)


@dataclass(frozen=True)
class Linear:
    """Fully connected; a feature-map input is flattened first, as the papers do."""

    out_features: int
    bias: bool = True
    kind: str = field(default="linear", init=False)


@dataclass(frozen=True)
class BatchNorm:
    eps: float = 1e-5
    affine: bool = True
    kind: str = field(default="bn", init=False)


@dataclass(frozen=True)
class Activation:
    fn: str = "relu"
    kind: str = field(default="act", init=False)


@dataclass(frozen=True)
class Dropout:
    p: float = 0.5
    kind: str = field(default="dropout", init=False)


@dataclass(frozen=True)
class Flatten:
    kind: str = field(default="flatten", init=False)


@dataclass(frozen=True)
class LRN:
    """Local response normalisation across channels (Krizhevsky et al. 2012, Sec. 3.3)."""

    size: int = 5
    alpha: float = 1e-4
    beta: float = 0.75
    k: float = 2.0
    kind: str = field(default="lrn", init=False)


@dataclass(frozen=True)
class ZeroPadShortcut:
    """He et al. option A: subsample by ``stride`` and pad the new channels with zeros."""

    out_channels: int
    stride: Pair = (1, 1)
    kind: str = field(default="zeropad", init=False)


@dataclass(frozen=True)
class Concat:
    """Parallel branches joined along channels (Inception)."""

    branches: tuple[Seq, ...]
    kind: str = field(default="concat", init=False)


ShortcutKind = Literal["identity", "A", "B", "C"]


@dataclass(frozen=True)
class Residual:
    """``body(x) + shortcut(x)``. Shortcut: identity, A (zero-pad), B (projection where the
    shape changes), C (projection always); A and B are identity when the shape is kept.
    ``shortcut_bias``: the projection conv has a bias (Keras' ResNet50 puts one on every conv).
    """

    body: Seq
    shortcut: ShortcutKind = "identity"
    shortcut_bias: bool = False
    kind: str = field(default="residual", init=False)


Layer = (
    Conv | Pool | GlobalPool | Linear | BatchNorm | Activation | Dropout | Flatten | LRN
    | ZeroPadShortcut | Concat | Residual
)


@dataclass(frozen=True)
class Node:
    """One layer as written: ``path`` is unique in the graph, ``label`` is the notation."""

    layer: Layer
    label: str
    path: str
    loc: Loc


Seq = tuple[Node, ...]


@dataclass(frozen=True)
class Graph:
    name: str
    input_shape: Shape
    body: Seq
    source: str = ""
    params: tuple[tuple[str, int], ...] = ()
    file: str = "<spec>"


def walk(seq: Seq) -> Iterator[Node]:
    """Every node in order, containers before their contents."""
    for node in seq:
        yield node
        layer = node.layer
        if isinstance(layer, Concat):
            for branch in layer.branches:
                yield from walk(branch)
        elif isinstance(layer, Residual):
            yield from walk(layer.body)
