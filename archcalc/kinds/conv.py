"""Convolution: ``conv3-64`` (kernel-out), as in Simonyan & Zisserman 2015 and torch.nn.Conv2d,
with padding as frameworks compute it: torch's ``padding='same'`` (asymmetric for even
kernels) and TensorFlow's ``SAME`` (resolved from the input size), and depthwise convolution
(``dwconv3``, ``g=in``: groups = the input channels, resolved from the input shape)."""

from __future__ import annotations

import math
import re
from dataclasses import replace
from typing import TYPE_CHECKING

from archcalc.algebra import RF, Ops, Params
from archcalc.errors import Loc, NoNotation, SpecError
from archcalc.kinds.base import (
    Kind,
    Notation,
    Pair,
    WeightFormula,
    feature_map,
    flag_str,
    line_pair,
    pair_str,
    register,
    window,
)
from archcalc.notation import Fail, Options, pair_or_none, sizes, whole

if TYPE_CHECKING:
    from torch import nn

    from archcalc.layers import Shape
    from archcalc.symbolic import FormulaLine


@register
class Conv(Kind):
    """A 2-D convolution. ``padding`` is the top and left padding; ``pad_end`` the bottom and
    right where they differ (None: symmetric, as torch's ``padding=(p, q)``); ``tf_same``:
    TensorFlow's SAME, padding resolved per input size (:meth:`pads`). ``depthwise``: groups
    = the input channels (``g=in``), and with ``multiplier`` > 0 the output channels are
    ``multiplier`` x the input channels (``dwconv3``); :meth:`at` resolves both."""

    out_channels: int
    kernel: Pair
    stride: Pair = (1, 1)
    padding: Pair = (0, 0)
    dilation: Pair = (1, 1)
    groups: int = 1
    bias: bool = True
    pad_end: Pair | None = None
    tf_same: bool = False
    depthwise: bool = False
    multiplier: int = 0

    kind = "conv"
    notation = Notation(
        r"conv([0-9]+(?:x[0-9]+)?)-([0-9]+)",
        {"s": "stride", "stride": "stride", "p": "pad", "pad": "pad", "padding": "pad",
         "d": "dilation", "dilation": "dilation", "g": "groups", "groups": "groups",
         "bias": "bias"},
        "conv3-64 conv1x7-64 (kernel-out); s/stride, p/pad (number, HxW, valid = 0, same = "
        "torch's 'same': d*(k-1) in all, half (rounded down) top/left, the rest bottom/right; "
        "tf-same = TensorFlow's SAME: output ceil(in/s), from the input size; default same "
        "for odd kernels, 0 for even), d/dilation, g/groups (a number, or in = the input "
        "channels: depthwise), bias")

    @classmethod
    def from_notation(cls, m: re.Match[str], opts: Options, fail: Fail) -> Conv:
        kernel = sizes(m, 1, fail, "kernel")
        out = sizes(m, 2, fail, "output channels")[0]
        dilation = opts.pair("dilation", (1, 1))
        groups_text = opts.raw("groups")
        depthwise = (groups_text or "").lower() == "in"
        if groups_text is not None and not depthwise and whole(groups_text) is None:
            opt = opts.values["groups"]
            raise fail(opt.tok, f"groups must be a whole number of at least 1, or in (the "
                                f"input channels), not {opt.value!r}", opt.offset)
        groups = 1 if depthwise else opts.integer("groups", 1)
        padding, pad_end, tf_same = _padding(opts, kernel, dilation, fail)
        return cls(out, kernel, opts.pair("stride", (1, 1)), padding, dilation, groups,
                   opts.boolean("bias", True), pad_end, tf_same, depthwise)

    def at(self, in_shape: Shape) -> Conv:
        """This conv with what depends on the input's channels resolved: a depthwise conv's
        groups (the input channels) and, with a multiplier, its output channels."""
        if not self.depthwise:
            return self
        channels = in_shape[0]
        out = self.multiplier * channels if self.multiplier else self.out_channels
        return replace(self, out_channels=out, groups=channels, depthwise=False, multiplier=0)

    def pads(self, in_shape: Shape) -> tuple[Pair, Pair]:
        """((top, bottom), (left, right)) on an input of ``in_shape``. TensorFlow's SAME
        (tf.nn.convolution, padding='SAME'): output ceil(n/s), padded in all by
        max((ceil(n/s) - 1)*s + d*(k-1) + 1 - n, 0), half (rounded down) at the top/left."""
        if self.tf_same:
            rows, cols = (_tf_same(n, k, s, d) for n, k, s, d in zip(
                in_shape[1:], self.kernel, self.stride, self.dilation, strict=True))
            return rows, cols
        end = self.pad_end or self.padding
        return (self.padding[0], end[0]), (self.padding[1], end[1])

    def title(self) -> str:
        return f"CONV{pair_str(self.kernel)}-{self.out_channels}"

    def spec(self) -> str:
        groups = "in" if self.depthwise else str(self.groups)
        return (f"conv{pair_str(self.kernel)}-{self.out_channels} {_conv_options(self)} "
                f"g={groups}")

    def on_sequence(self, loc: Loc | None) -> Conv:
        """torch's Conv1d: ``conv3-64`` slides along the sequence."""
        end = self.pad_end
        return replace(self, kernel=line_pair(self.kernel, 1, "kernel", loc),
                       stride=line_pair(self.stride, 1, "stride", loc),
                       padding=line_pair(self.padding, 0, "padding", loc),
                       dilation=line_pair(self.dilation, 1, "dilation", loc),
                       pad_end=None if end is None else line_pair(end, 0, "padding", loc))

    def output_shape(self, shape: Shape, loc: Loc) -> Shape:
        c, h, w = feature_map(self.kind, shape, loc)
        conv = self.at(shape)
        if c % conv.groups or conv.out_channels % conv.groups:
            groups = f"in = {c}" if self.depthwise else str(conv.groups)
            raise SpecError(f"groups={groups} must divide both the input channels ({c}) "
                            f"and the output channels ({conv.out_channels})", loc)
        rows, cols = self.pads(shape)
        return (conv.out_channels,
                _length(h, self.kernel[0], self.stride[0], rows, self.dilation[0], loc,
                        "height"),
                _length(w, self.kernel[1], self.stride[1], cols, self.dilation[1], loc,
                        "width"))

    def fan_in(self, in_shape: Shape) -> int:
        """Inputs of one output unit: the kernel over the channels of its group."""
        return (in_shape[0] // self.at(in_shape).groups) * self.kernel[0] * self.kernel[1]

    def parameters(self, in_shape: Shape) -> Params:
        out = self.at(in_shape).out_channels
        return Params(out * self.fan_in(in_shape), out if self.bias else 0)

    def weight_formula(self, in_shape: Shape) -> WeightFormula:
        """kh*kw*(C_in/g) per filter: a depthwise conv's (3*3*1)*32."""
        conv, (kh, kw) = self.at(in_shape), self.kernel
        return WeightFormula(((kh, kw, in_shape[0] // conv.groups), (conv.out_channels,)))

    def operations(self, in_shape: Shape, out_shape: Shape) -> Ops:
        out = math.prod(out_shape)
        return Ops(macs=out * self.fan_in(in_shape), bias=out if self.bias else 0)

    def receptive_field(self, rf: RF, in_shape: Shape) -> RF:
        """The first unit's field starts at the top/left padding; the bottom/right padding
        only decides how many units there are."""
        (top, _), (left, _) = self.pads(in_shape)
        return rf.step(self.kernel, self.stride, (top, left), self.dilation)

    def subsampling(self) -> Pair:
        return self.stride

    def allocates(self) -> bool:
        return True

    def formulas(self, in_shape: Shape, out_shape: Shape) -> list[FormulaLine]:
        import sympy as sp

        from archcalc.symbolic import Ci, Co, Dl, G, Hin, Ho, Kh, Kw, P, St, Wo, line

        (top, bottom), _ = self.pads(in_shape)
        conv = self.at(in_shape)
        values = {Ci: in_shape[0], Co: conv.out_channels, Hin: in_shape[1], Ho: out_shape[1],
                  Wo: out_shape[2], Kh: self.kernel[0], Kw: self.kernel[1],
                  P: top, St: self.stride[0], Dl: self.dilation[0], G: conv.groups}
        padded: sp.Expr = 2 * P
        if bottom != top:
            p_top, p_bottom = sp.symbols("P_top P_bottom", nonnegative=True, integer=True)
            values |= {p_top: top, p_bottom: bottom}
            padded = p_top + p_bottom
        size = sp.floor((Hin + padded - Dl * (Kh - 1) - 1) / St) + 1
        rows = [line("H_out", size, values), line("weights", Kh * Kw * Ci / G * Co, values)]
        if self.bias:
            rows.append(line("biases", Co, values))
        rows.append(line("MACs", Ho * Wo * Co * Kh * Kw * Ci / G, values))
        return rows

    def torch_module(self, in_shape: Shape) -> nn.Module:
        """nn.Conv2d; with asymmetric padding a Conv2d that zero-pads first (torch's own
        padding='same' does the same internally, and allows only stride 1)."""
        from torch import nn

        if len(in_shape) == 2:
            return self._conv1d(in_shape)
        (top, bottom), (left, right) = self.pads(in_shape)
        conv = self.at(in_shape)
        if (top, left) == (bottom, right):
            return nn.Conv2d(in_shape[0], conv.out_channels, self.kernel, self.stride,
                             (top, left), self.dilation, conv.groups, self.bias)
        from archcalc.backends.modules import PaddedConv2d

        return PaddedConv2d(in_shape[0], conv.out_channels, self.kernel, self.stride,
                            (left, right, top, bottom), self.dilation, conv.groups, self.bias)

    def _conv1d(self, in_shape: Shape) -> nn.Module:
        """nn.Conv1d on a sequence (C, L); asymmetric padding pads first, as for maps."""
        from torch import nn

        line = self.on_sequence(None)
        (start, end), _ = line.pads((*in_shape, 1))
        conv = self.at(in_shape)
        k, s, d = line.kernel[0], line.stride[0], line.dilation[0]
        if start == end:
            return nn.Conv1d(in_shape[0], conv.out_channels, k, s, start, d, conv.groups,
                             self.bias)
        from archcalc.backends.modules import PaddedConv1d

        return PaddedConv1d(in_shape[0], conv.out_channels, k, s, (start, end), d,
                            conv.groups, self.bias)


@register
class DepthwiseConv(Conv):
    """``dwconv3``: one filter per input channel (groups = input channels), as Keras'
    DepthwiseConv2D(kernel_size, depth_multiplier) and torch's Conv2d(C, m*C, k, groups=C)
    (Howard et al. 2017, MobileNets): output channels = m x input channels, or the number
    written (``dwconv3-64`` = ``conv3-64 g=in``). Every rule is the conv's."""

    kind = "dwconv"
    notation = Notation(
        r"dwconv([0-9]+(?:x[0-9]+)?)(?:-([0-9]+))?",
        {"s": "stride", "stride": "stride", "p": "pad", "pad": "pad", "padding": "pad",
         "d": "dilation", "dilation": "dilation", "m": "multiplier",
         "multiplier": "multiplier", "bias": "bias"},
        "dwconv3 dwconv3-64 (depthwise: groups = input channels; output m x input channels, "
        "or the number written; Keras' DepthwiseConv2D); s, p (as conv), d, m/multiplier "
        "(default 1), bias")

    @classmethod
    def from_notation(cls, m: re.Match[str], opts: Options, fail: Fail) -> DepthwiseConv:
        kernel = sizes(m, 1, fail, "kernel")
        if m.group(2) is not None and "multiplier" in opts.values:
            opt = opts.values["multiplier"]
            raise fail(opt.tok, "give the output channels (dwconv3-64) or a multiplier "
                                "(dwconv3 m=2), not both")
        out = sizes(m, 2, fail, "output channels")[0] if m.group(2) else 0
        multiplier = 0 if out else opts.integer("multiplier", 1)
        dilation = opts.pair("dilation", (1, 1))
        padding, pad_end, tf_same = _padding(opts, kernel, dilation, fail)
        return cls(out, kernel, opts.pair("stride", (1, 1)), padding, dilation, 1,
                   opts.boolean("bias", True), pad_end, tf_same, True, multiplier)

    def title(self) -> str:
        channels = f"-{self.out_channels}" if self.out_channels else ""
        return f"DWCONV{pair_str(self.kernel)}{channels}"

    def spec(self) -> str:
        size = (f"-{self.out_channels}" if self.out_channels
                else "" if self.multiplier == 1 else f" m={self.multiplier}")
        return f"dwconv{pair_str(self.kernel)}{size} {_conv_options(self)}"


def _conv_options(conv: Conv) -> str:
    """s, p, d and bias as the notation writes them; asymmetric padding only as torch's
    'same' computes it (the notation has no other)."""
    if conv.tf_same:
        pad = "tf-same"
    elif conv.pad_end is not None:
        span = tuple(d * (k - 1) for d, k in zip(conv.dilation, conv.kernel, strict=True))
        if conv.padding != (span[0] // 2, span[1] // 2) or conv.pad_end != (
                span[0] - span[0] // 2, span[1] - span[1] // 2):
            raise NoNotation(f"padding {conv.padding} / {conv.pad_end} has no notation "
                             "(only torch's 'same' is asymmetric)")
        pad = "same"
    else:
        pad = pair_str(conv.padding)
    return (f"s={pair_str(conv.stride)} p={pad} d={pair_str(conv.dilation)} "
            f"bias={flag_str(conv.bias)}")


def _padding(opts: Options, kernel: Pair, dilation: Pair, fail: Fail
             ) -> tuple[Pair, Pair | None, bool]:
    """(top/left padding, bottom/right where different, TensorFlow SAME) from ``p=``: a
    number or HxW, ``same`` (torch: total d*(k-1), the odd pixel at the bottom/right),
    ``tf-same``, ``valid`` (0); by default 'same' where it is symmetric (odd kernels), else 0."""
    span = tuple(d * (k - 1) for d, k in zip(dilation, kernel, strict=True))
    text = (opts.raw("pad") or "").lower()
    if text == "tf-same":
        return (0, 0), None, True
    if text == "same":
        begin = (span[0] // 2, span[1] // 2)
        end = (span[0] - begin[0], span[1] - begin[1])
        return begin, None if end == begin else end, False
    if text == "valid":
        return (0, 0), None, False
    if text:
        if pair_or_none(text) is None:
            opt = opts.values["pad"]
            raise fail(opt.tok, f"pad must be a whole number, HxW, same, tf-same or valid, "
                                f"not {opt.value!r}", opt.offset)
        return opts.pair("pad", (0, 0), minimum=0), None, False
    return (span[0] // 2 if span[0] % 2 == 0 else 0,
            span[1] // 2 if span[1] % 2 == 0 else 0), None, False


def _tf_same(size: int, kernel: int, stride: int, dilation: int) -> Pair:
    """(before, after) padding of TensorFlow's SAME along one axis."""
    out = -(-size // stride)
    total = max((out - 1) * stride + dilation * (kernel - 1) + 1 - size, 0)
    return (total // 2, total - total // 2)


def _length(size: int, kernel: int, stride: int, pads: Pair, dilation: int, loc: Loc,
            axis: str) -> int:
    """Output length with ``pads`` (before, after): torch's formula with the two sides."""
    before, after = pads
    if before == after:
        return window(size, kernel, stride, before, dilation, False, loc, axis)
    span = dilation * (kernel - 1) + 1
    room = size + before + after - span
    if room < 0:
        raise SpecError(f"kernel {span} is larger than the padded input {axis} "
                        f"({size} + {before} + {after} = {size + before + after})", loc)
    return room // stride + 1
