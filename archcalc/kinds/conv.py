"""Convolution: ``conv3-64`` (kernel-out), as in Simonyan & Zisserman 2015 and torch.nn.Conv2d."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from archcalc.algebra import RF, Ops, Params
from archcalc.errors import Loc, SpecError
from archcalc.kinds.base import (
    Kind,
    Notation,
    Pair,
    WeightFormula,
    feature_map,
    pair_str,
    register,
    window,
)
from archcalc.notation import Fail, Options, sizes

if TYPE_CHECKING:
    from torch import nn

    from archcalc.layers import Shape
    from archcalc.symbolic import FormulaLine


@register
@dataclass(frozen=True)
class Conv(Kind):
    out_channels: int
    kernel: Pair
    stride: Pair = (1, 1)
    padding: Pair = (0, 0)
    dilation: Pair = (1, 1)
    groups: int = 1
    bias: bool = True

    kind = "conv"
    notation = Notation(
        r"conv([0-9]+(?:x[0-9]+)?)-([0-9]+)",
        {"s": "stride", "stride": "stride", "p": "pad", "pad": "pad", "padding": "pad",
         "d": "dilation", "dilation": "dilation", "g": "groups", "groups": "groups",
         "bias": "bias"},
        "conv3-64 conv1x7-64 (kernel-out); s/stride, p/pad (number, HxW or same; default "
        "same for odd kernels, 0 for even), d/dilation, g/groups, bias")

    @classmethod
    def from_notation(cls, m: re.Match[str], opts: Options, fail: Fail) -> Conv:
        """Pad defaults to 'same' (half the dilated span) where that is symmetric, else 0."""
        kernel = sizes(m, 1, fail, "kernel")
        out = sizes(m, 2, fail, "output channels")[0]
        dilation = opts.pair("dilation", (1, 1))
        stride = opts.pair("stride", (1, 1))
        groups = opts.integer("groups", 1)
        span = tuple(d * (k - 1) for d, k in zip(dilation, kernel, strict=True))
        pad_text = opts.raw("pad")
        if pad_text is None or pad_text.lower() == "same":
            if pad_text is not None and any(s % 2 for s in span):
                opt = opts.values["pad"]
                raise fail(opt.tok, "pad=same needs an odd kernel (the padding would be "
                                    "asymmetric)", opt.offset)
            padding = (span[0] // 2 if span[0] % 2 == 0 else 0,
                       span[1] // 2 if span[1] % 2 == 0 else 0)
        else:
            padding = opts.pair("pad", (0, 0), minimum=0)
        return cls(out, kernel, stride, padding, dilation, groups, opts.boolean("bias", True))

    def title(self) -> str:
        return f"CONV{pair_str(self.kernel)}-{self.out_channels}"

    def output_shape(self, shape: Shape, loc: Loc) -> Shape:
        c, h, w = feature_map(self.kind, shape, loc)
        if c % self.groups or self.out_channels % self.groups:
            raise SpecError(f"groups={self.groups} must divide both the input channels ({c}) "
                            f"and the output channels ({self.out_channels})", loc)
        return (self.out_channels,
                window(h, self.kernel[0], self.stride[0], self.padding[0], self.dilation[0],
                       False, loc, "height"),
                window(w, self.kernel[1], self.stride[1], self.padding[1], self.dilation[1],
                       False, loc, "width"))

    def fan_in(self, in_shape: Shape) -> int:
        """Inputs of one output unit: the kernel over the channels of its group."""
        return (in_shape[0] // self.groups) * self.kernel[0] * self.kernel[1]

    def parameters(self, in_shape: Shape) -> Params:
        return Params(self.out_channels * self.fan_in(in_shape),
                      self.out_channels if self.bias else 0)

    def weight_formula(self, in_shape: Shape) -> WeightFormula:
        kh, kw = self.kernel
        return WeightFormula(((kh, kw, in_shape[0] // self.groups), (self.out_channels,)))

    def operations(self, in_shape: Shape, out_shape: Shape) -> Ops:
        out = math.prod(out_shape)
        return Ops(macs=out * self.fan_in(in_shape), bias=out if self.bias else 0)

    def receptive_field(self, rf: RF, in_shape: Shape) -> RF:
        return rf.step(self.kernel, self.stride, self.padding, self.dilation)

    def subsampling(self) -> Pair:
        return self.stride

    def allocates(self) -> bool:
        return True

    def formulas(self, in_shape: Shape, out_shape: Shape) -> list[FormulaLine]:
        from archcalc.symbolic import Ci, Co, Dl, G, Hin, Ho, Kh, Kw, P, St, Wo, line, sp

        values = {Ci: in_shape[0], Co: self.out_channels, Hin: in_shape[1], Ho: out_shape[1],
                  Wo: out_shape[2], Kh: self.kernel[0], Kw: self.kernel[1],
                  P: self.padding[0], St: self.stride[0], Dl: self.dilation[0], G: self.groups}
        size = sp.floor((Hin + 2 * P - Dl * (Kh - 1) - 1) / St) + 1
        rows = [line("H_out", size, values), line("weights", Kh * Kw * Ci / G * Co, values)]
        if self.bias:
            rows.append(line("biases", Co, values))
        rows.append(line("MACs", Ho * Wo * Co * Kh * Kw * Ci / G, values))
        return rows

    def torch_module(self, in_shape: Shape) -> nn.Module:
        from torch import nn

        return nn.Conv2d(in_shape[0], self.out_channels, self.kernel, self.stride,
                         self.padding, self.dilation, self.groups, self.bias)
