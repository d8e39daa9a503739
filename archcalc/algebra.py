"""Per-layer arithmetic as pure functions: output shape, parameters, operations, receptive field.

Every layer kind has an explicit rule here (no guessing from class names). Counts are per
sample; batch size enters only the memory estimate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from archcalc.errors import Loc, SpecError
from archcalc.layers import (
    LRN,
    Activation,
    BatchNorm,
    Conv,
    Dropout,
    Flatten,
    GlobalPool,
    Layer,
    Linear,
    Pair,
    Pool,
    Shape,
    ShortcutKind,
    ZeroPadShortcut,
)

if TYPE_CHECKING:
    from fractions import Fraction

# Activations that torch (and our memory model) run in place: they allocate nothing new.
INPLACE_ACTIVATIONS = frozenset(
    {"relu", "relu6", "leakyrelu", "elu", "gelu", "silu", "sigmoid", "tanh", "hardswish"}
)
SOFTMAX_FLOPS_PER_ELEMENT = 3  # exp, running sum, divide
LRN_FIXED_FLOPS = 3  # scale and offset the sum, raise to beta, divide


@dataclass(frozen=True)
class Params:
    """Parameter counts: trainable weights and biases, and non-trainable buffers."""

    weights: int = 0
    biases: int = 0
    buffers: int = 0

    @property
    def trainable(self) -> int:
        return self.weights + self.biases

    def __add__(self, other: Params) -> Params:
        return Params(self.weights + other.weights, self.biases + other.biases,
                      self.buffers + other.buffers)


@dataclass(frozen=True)
class Ops:
    """What a layer computes for one sample, by category; conventions weigh the categories."""

    macs: int = 0  # multiply-accumulates of conv and linear layers
    bias: int = 0  # bias additions
    norm: int = 0  # elements batch-normalised (a scale and a shift each at inference)
    norm_affine: int = 0  # of those, elements of BN layers with learnt scale and shift
    norm_params: int = 0  # affine BN parameters (torchinfo counts these as Mult-Adds)
    act: int = 0  # activation function evaluations, weighted (softmax counts 3 per element)
    pool: int = 0  # comparisons (max) or additions and a division (avg) of pooling
    pool_inputs: int = 0  # input elements of adaptive (global) average pooling
    add: int = 0  # elementwise additions joining residual paths
    lrn: int = 0  # LRN operations

    def __add__(self, other: Ops) -> Ops:
        return Ops(*(a + b for a, b in zip(self.astuple(), other.astuple(), strict=True)))

    def astuple(self) -> tuple[int, ...]:
        return (self.macs, self.bias, self.norm, self.norm_affine, self.norm_params, self.act,
                self.pool, self.pool_inputs, self.add, self.lrn)


@dataclass(frozen=True)
class RF:
    """Receptive field per axis (H, W) in the form of Araujo et al. 2019: size, effective
    stride, and the input coordinate where the first output unit's field starts
    (``-start`` is the effective padding)."""

    size: Pair
    stride: Pair
    start: Pair

    @property
    def padding(self) -> Pair:
        return (-self.start[0], -self.start[1])

    @property
    def center(self) -> tuple[Fraction, Fraction]:
        from fractions import Fraction  # lazily: the table path never needs it

        return tuple(Fraction(c, 2) for c in self.twice_center)  # type: ignore[return-value]

    @property
    def twice_center(self) -> Pair:
        """Twice the centre of the first unit's field: whole numbers, cheap to compare."""
        return (2 * self.start[0] + self.size[0] - 1, 2 * self.start[1] + self.size[1] - 1)

    def step(self, kernel: Pair, stride: Pair, padding: Pair, dilation: Pair = (1, 1)) -> RF:
        """The field after one more sliding-window layer (the Distill recurrence)."""
        size, new_stride, start = [], [], []
        for axis in range(2):
            span = dilation[axis] * (kernel[axis] - 1) + 1
            size.append(self.size[axis] + (span - 1) * self.stride[axis])
            start.append(self.start[axis] - padding[axis] * self.stride[axis])
            new_stride.append(self.stride[axis] * stride[axis])
        return RF(tuple(size), tuple(new_stride), tuple(start))  # type: ignore[arg-type]

    def spread(self, extent: Pair) -> RF:
        """Union of the fields of all units of an ``extent`` map (global pool, flatten, FC)."""
        size = tuple(n + (e - 1) * j for n, e, j in zip(self.size, extent, self.stride,
                                                        strict=True))
        return RF(size, self.stride, self.start)  # type: ignore[arg-type]


INPUT_RF = RF((1, 1), (1, 1), (0, 0))


def merge_rfs(rfs: list[RF]) -> tuple[RF, bool]:
    """Union of the fields of paths that meet; False when their centres or strides differ."""
    starts = [min(rf.start[a] for rf in rfs) for a in range(2)]
    ends = [max(rf.start[a] + rf.size[a] - 1 for rf in rfs) for a in range(2)]
    merged = RF((ends[0] - starts[0] + 1, ends[1] - starts[1] + 1),
                (min(rf.stride[0] for rf in rfs), min(rf.stride[1] for rf in rfs)),
                (starts[0], starts[1]))
    aligned = len({(rf.twice_center, rf.stride) for rf in rfs}) == 1
    return merged, aligned


# -- shapes -----------------------------------------------------------------------------
def _feature_map(layer: Layer, shape: Shape, loc: Loc) -> tuple[int, int, int]:
    if len(shape) != 3:
        raise SpecError(f"{layer.kind} needs a feature map (C, H, W) input, got a vector of "
                        f"{shape[0]}", loc)
    return shape  # type: ignore[return-value]


def _window(size: int, kernel: int, stride: int, pad: int, dilation: int, ceil: bool,
            loc: Loc, axis: str) -> int:
    span = dilation * (kernel - 1) + 1
    if span > size + 2 * pad:
        raise SpecError(f"kernel {span} is larger than the padded input {axis} "
                        f"({size} + 2*{pad} = {size + 2 * pad})", loc)
    if ceil:
        out = -(-(size + 2 * pad - span) // stride) + 1
        if (out - 1) * stride >= size + pad:  # torch: the last window must start in the input
            out -= 1
        return out
    return (size + 2 * pad - span) // stride + 1


def output_shape(layer: Layer, shape: Shape, loc: Loc) -> Shape:
    """Output shape of a non-container layer for one sample."""
    if isinstance(layer, Conv):
        c, h, w = _feature_map(layer, shape, loc)
        if c % layer.groups or layer.out_channels % layer.groups:
            raise SpecError(f"groups={layer.groups} must divide both the input channels ({c}) "
                            f"and the output channels ({layer.out_channels})", loc)
        return (layer.out_channels,
                _window(h, layer.kernel[0], layer.stride[0], layer.padding[0],
                        layer.dilation[0], False, loc, "height"),
                _window(w, layer.kernel[1], layer.stride[1], layer.padding[1],
                        layer.dilation[1], False, loc, "width"))
    if isinstance(layer, Pool):
        c, h, w = _feature_map(layer, shape, loc)
        for k, p in zip(layer.kernel, layer.padding, strict=True):
            if 2 * p > k:
                raise SpecError(f"pool padding {p} is more than half the kernel {k}", loc)
        return (c,
                _window(h, layer.kernel[0], layer.stride[0], layer.padding[0], 1,
                        layer.ceil_mode, loc, "height"),
                _window(w, layer.kernel[1], layer.stride[1], layer.padding[1], 1,
                        layer.ceil_mode, loc, "width"))
    if isinstance(layer, GlobalPool):
        c, _, _ = _feature_map(layer, shape, loc)
        return (c, 1, 1)
    if isinstance(layer, Linear):
        return (layer.out_features,)
    if isinstance(layer, Flatten):
        return (math.prod(shape),)
    if isinstance(layer, ZeroPadShortcut):
        c, h, w = _feature_map(layer, shape, loc)
        return (layer.out_channels, -(-h // layer.stride[0]), -(-w // layer.stride[1]))
    if isinstance(layer, LRN):
        _feature_map(layer, shape, loc)
        return shape
    if isinstance(layer, BatchNorm | Activation | Dropout):
        return shape
    raise TypeError(f"no shape rule for {type(layer).__name__}")


# -- parameters -------------------------------------------------------------------------
def parameters(layer: Layer, in_shape: Shape) -> Params:
    if isinstance(layer, Conv):
        weights = (layer.out_channels * (in_shape[0] // layer.groups)
                   * layer.kernel[0] * layer.kernel[1])
        return Params(weights, layer.out_channels if layer.bias else 0)
    if isinstance(layer, Linear):
        return Params(math.prod(in_shape) * layer.out_features,
                      layer.out_features if layer.bias else 0)
    if isinstance(layer, BatchNorm):
        c = in_shape[0]
        return Params(c if layer.affine else 0, c if layer.affine else 0, 2 * c)
    return Params()


def weight_formula(layer: Layer, in_shape: Shape) -> str:
    """The weight count written out as in the homework table, e.g. ``(3*3*3)*64``."""
    if isinstance(layer, Conv):
        cin = in_shape[0] // layer.groups
        kh, kw = layer.kernel
        return f"({kh}*{kw}*{cin})*{layer.out_channels}"
    if isinstance(layer, Linear):
        hwc = (*in_shape[1:], in_shape[0]) if len(in_shape) == 3 else in_shape  # as fmt_shape
        return "*".join(str(d) for d in (*hwc, layer.out_features))
    if isinstance(layer, BatchNorm) and layer.affine:
        return f"2*{in_shape[0]}"
    return ""


# -- operations -------------------------------------------------------------------------
def operations(layer: Layer, in_shape: Shape, out_shape: Shape) -> Ops:
    out = math.prod(out_shape)
    if isinstance(layer, Conv):
        per_output = (in_shape[0] // layer.groups) * layer.kernel[0] * layer.kernel[1]
        return Ops(macs=out * per_output, bias=out if layer.bias else 0)
    if isinstance(layer, Linear):
        return Ops(macs=math.prod(in_shape) * out, bias=out if layer.bias else 0)
    if isinstance(layer, BatchNorm):
        if not layer.affine:
            return Ops(norm=out)
        return Ops(norm=out, norm_affine=out, norm_params=2 * in_shape[0])
    if isinstance(layer, Activation):
        return Ops(act=out * (SOFTMAX_FLOPS_PER_ELEMENT if layer.fn == "softmax" else 1))
    if isinstance(layer, Pool):
        window = layer.kernel[0] * layer.kernel[1]
        return Ops(pool=out * (window - 1 if layer.op == "max" else window))
    if isinstance(layer, GlobalPool):
        window = in_shape[1] * in_shape[2]
        return Ops(pool=out * (window - 1 if layer.op == "max" else window),
                   pool_inputs=math.prod(in_shape) if layer.op == "avg" else 0)
    if isinstance(layer, LRN):
        return Ops(lrn=out * (2 * layer.size - 1 + LRN_FIXED_FLOPS))
    return Ops()


# -- receptive field --------------------------------------------------------------------
def receptive_field(layer: Layer, rf: RF, in_shape: Shape) -> RF:
    if isinstance(layer, Conv):
        return rf.step(layer.kernel, layer.stride, layer.padding, layer.dilation)
    if isinstance(layer, Pool):
        return rf.step(layer.kernel, layer.stride, layer.padding)
    if isinstance(layer, ZeroPadShortcut):
        return rf.step((1, 1), layer.stride, (0, 0))
    if isinstance(layer, GlobalPool | Flatten | Linear) and len(in_shape) == 3:
        return rf.spread((in_shape[1], in_shape[2]))
    return rf


# -- shortcuts --------------------------------------------------------------------------
def shortcut_layers(kind: ShortcutKind, in_shape: Shape, out_shape: Shape,
                    loc: Loc, bias: bool = False) -> tuple[Layer, ...]:
    """The layers on a residual block's shortcut path, from the shapes it must join;
    ``bias`` gives a projection's conv a bias."""
    if kind == "identity" or (kind in ("A", "B") and in_shape == out_shape):
        if in_shape != out_shape:
            raise SpecError(f"residual body changes the shape {fmt_shape(in_shape)} -> "
                            f"{fmt_shape(out_shape)}; an identity shortcut cannot add them "
                            "(use shortcut=A, B or C)", loc)
        return ()
    if len(in_shape) != 3 or len(out_shape) != 3:
        raise SpecError("shortcuts A, B and C join feature maps, not vectors", loc)
    stride = (-(-in_shape[1] // out_shape[1]), -(-in_shape[2] // out_shape[2]))
    if kind == "A":
        if out_shape[0] < in_shape[0]:
            raise SpecError(f"shortcut A can only add channels, not reduce {in_shape[0]} to "
                            f"{out_shape[0]} (use shortcut=B)", loc)
        return (ZeroPadShortcut(out_shape[0], stride),)
    return (Conv(out_shape[0], (1, 1), stride, (0, 0), bias=bias), BatchNorm())


def fmt_shape(shape: Shape) -> str:
    """(C, H, W) as ``HxWxC``, the notation of the input line; vectors as ``N``."""
    if len(shape) == 3:
        return f"{shape[1]}x{shape[2]}x{shape[0]}"
    return "x".join(str(d) for d in shape)
