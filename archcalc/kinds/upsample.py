"""Layers that enlarge a map: ``upsample2`` (torch's nn.Upsample, nearest or bilinear) and the
transposed convolution ``deconv4-64 s=2 p=1`` (torch's nn.ConvTranspose2d; Long et al. 2015,
Zeiler et al. 2010).

Receptive field: a unit of an upsampled map sees a fraction of an input pixel's stride (the
units' fields repeat or interpolate, with effective stride 1/s), which the integer
(size, stride, start) form of Araujo et al. 2019 cannot hold. Both kinds therefore give no
field when they enlarge (scale or stride > 1), and the analysis reports none from that layer
on; at scale or stride 1 the field is exact (the identity, or the equivalent convolution).
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Literal

from archcalc.algebra import RF, Ops, Params
from archcalc.errors import Loc, SpecError
from archcalc.kinds.base import (
    Kind,
    NoParameters,
    Notation,
    Pair,
    WeightFormula,
    feature_map,
    flag_str,
    pair_str,
    register,
)
from archcalc.notation import Fail, Options, sizes

if TYPE_CHECKING:
    from torch import nn

    from archcalc.layers import Shape
    from archcalc.symbolic import FormulaLine

BILINEAR_TAPS = 4  # a bilinear output value weighs the 4 nearest inputs

Mode = Literal["nearest", "bilinear"]


@register
class Upsample(NoParameters, Kind):
    """Upsampling by whole factors, as torch's nn.Upsample(scale_factor, mode,
    align_corners=False) and Keras' UpSampling2D: (C, H, W) -> (C, sH*H, sW*W).

    Operations: nearest copies (archcalc counts no arithmetic; fvcore counts one per output
    element); bilinear weighs 4 inputs per output element (4 multiply-adds: 8 FLOPs in
    ``full``, 4 in fvcore). torchinfo and FlopCounterMode count neither."""

    scale: Pair = (2, 2)
    mode: Mode = "nearest"

    kind = "upsample"
    notation = Notation(
        r"upsample([0-9]+(?:x[0-9]+)?)?",
        {"s": "scale", "scale": "scale", "scale_factor": "scale", "mode": "mode"},
        "upsample2 upsample s=2x3 mode=nearest|bilinear (scale default 2; torch's "
        "nn.Upsample, align_corners=False; no receptive field from an enlarging layer on)")

    @classmethod
    def from_notation(cls, m: re.Match[str], opts: Options, fail: Fail) -> Upsample:
        if m.group(1) and "scale" in opts.values:
            raise fail(opts.values["scale"].tok, "scale given twice (in the name and as s=)")
        scale = sizes(m, 1, fail, "scale") if m.group(1) else opts.pair("scale", (2, 2))
        mode = (opts.raw("mode") or "nearest").lower()
        if mode not in ("nearest", "bilinear"):
            opt = opts.values["mode"]
            raise fail(opt.tok, f"mode must be nearest or bilinear, not {opt.value!r}",
                       opt.offset)
        return cls(scale, mode)  # type: ignore[arg-type]

    def title(self) -> str:
        return f"UPSAMPLE{pair_str(self.scale)}"

    def spec(self) -> str:
        return f"upsample s={pair_str(self.scale)} mode={self.mode}"

    def output_shape(self, shape: Shape, loc: Loc) -> Shape:
        c, h, w = feature_map(self.kind, shape, loc)
        return (c, h * self.scale[0], w * self.scale[1])

    def operations(self, in_shape: Shape, out_shape: Shape) -> Ops:
        out = math.prod(out_shape)
        if self.mode == "bilinear":
            return Ops(interp=BILINEAR_TAPS * out)
        return Ops(resize=out)

    def receptive_field(self, rf: RF, in_shape: Shape) -> RF | None:
        """Scale 1 is the identity; a larger scale gives fields with stride 1/s: none."""
        return rf if self.scale == (1, 1) else None

    def subsampling(self) -> Pair | None:
        return (1, 1) if self.scale == (1, 1) else None

    def allocates(self) -> bool:
        return True

    def formulas(self, in_shape: Shape, out_shape: Shape) -> list[FormulaLine]:
        import sympy as sp

        from archcalc.symbolic import Ci, Hin, Ho, St, Wo, line

        values = {Ci: in_shape[0], Hin: in_shape[1], St: self.scale[0], Ho: out_shape[1],
                  Wo: out_shape[2]}
        rows = [line("H_out", St * Hin, values), line("weights", sp.Integer(0), values)]
        if self.mode == "bilinear":
            rows.append(line("interpolation multiply-adds", BILINEAR_TAPS * Ci * Ho * Wo,
                             values))
        return rows

    def torch_module(self, in_shape: Shape) -> nn.Module:
        from torch import nn

        return nn.Upsample(scale_factor=(float(self.scale[0]), float(self.scale[1])),
                           mode=self.mode,
                           align_corners=False if self.mode == "bilinear" else None)


@register
class ConvTranspose(Kind):
    """A transposed convolution, as torch's nn.ConvTranspose2d: each input unit scatters a
    kh x kw x (Cout/g) block of products into the output, so

        H_out = (H - 1)*s - 2p + d*(k - 1) + output_padding + 1,
        MACs = Cin * H * W * kh * kw * Cout/g (per input position, as fvcore and
        FlopCounterMode count them; products that land in the cropped border count too).

    torchinfo counts any class named ``*Conv*`` as (weights + biases) x output positions,
    which for a transposed conv is not its MAC count: Ops carries that number apart
    (``tconv_positions``). Weights: Cin x Cout/g x kh x kw, as the conv's.

    Receptive field: at stride 1 it is the convolution with padding d*(k-1) - p (exact); at
    stride > 1 the output units' fields have stride 1/s: none from here on."""

    out_channels: int
    kernel: Pair
    stride: Pair = (1, 1)
    padding: Pair = (0, 0)
    output_padding: Pair = (0, 0)
    dilation: Pair = (1, 1)
    groups: int = 1
    bias: bool = True

    kind = "deconv"
    notation = Notation(
        r"(?:deconv|convtranspose)([0-9]+(?:x[0-9]+)?)-([0-9]+)",
        {"s": "stride", "stride": "stride", "p": "pad", "pad": "pad", "padding": "pad",
         "op": "output_padding", "output_padding": "output_padding", "d": "dilation",
         "dilation": "dilation", "g": "groups", "groups": "groups", "bias": "bias"},
        "deconv4-64 convtranspose4-64 (transposed conv, torch's ConvTranspose2d); s, p "
        "(default 0), op/output_padding (below s or d), d, g, bias; out = (in-1)*s - 2p + "
        "d*(k-1) + op + 1; MACs per input position; no receptive field at s > 1")

    @classmethod
    def from_notation(cls, m: re.Match[str], opts: Options, fail: Fail) -> ConvTranspose:
        stride = opts.pair("stride", (1, 1))
        dilation = opts.pair("dilation", (1, 1))
        extra = opts.pair("output_padding", (0, 0), minimum=0)
        if any(e >= max(s, d) for e, s, d in zip(extra, stride, dilation, strict=True)):
            opt = opts.values["output_padding"]
            raise fail(opt.tok, "output_padding must be smaller than the stride or the "
                                f"dilation (torch), not {opt.value!r}", opt.offset)
        return cls(sizes(m, 2, fail, "output channels")[0], sizes(m, 1, fail, "kernel"),
                   stride, opts.pair("pad", (0, 0), minimum=0), extra, dilation,
                   opts.integer("groups", 1), opts.boolean("bias", True))

    def title(self) -> str:
        return f"DECONV{pair_str(self.kernel)}-{self.out_channels}"

    def spec(self) -> str:
        return (f"deconv{pair_str(self.kernel)}-{self.out_channels} s={pair_str(self.stride)} "
                f"p={pair_str(self.padding)} op={pair_str(self.output_padding)} "
                f"d={pair_str(self.dilation)} g={self.groups} bias={flag_str(self.bias)}")

    def output_shape(self, shape: Shape, loc: Loc) -> Shape:
        c, h, w = feature_map(self.kind, shape, loc)
        if c % self.groups or self.out_channels % self.groups:
            raise SpecError(f"groups={self.groups} must divide both the input channels ({c}) "
                            f"and the output channels ({self.out_channels})", loc)
        sizes_out = tuple(
            (n - 1) * s - 2 * p + d * (k - 1) + e + 1 for n, s, p, d, k, e in zip(
                (h, w), self.stride, self.padding, self.dilation, self.kernel,
                self.output_padding, strict=True))
        if min(sizes_out) < 1:
            raise SpecError(f"padding {pair_str(self.padding)} crops the whole output "
                            f"({sizes_out[0]}x{sizes_out[1]})", loc)
        return (self.out_channels, *sizes_out)

    def weights(self, in_shape: Shape) -> int:
        return in_shape[0] * (self.out_channels // self.groups) * self.kernel[0] * self.kernel[1]

    def parameters(self, in_shape: Shape) -> Params:
        return Params(self.weights(in_shape), self.out_channels if self.bias else 0)

    def weight_formula(self, in_shape: Shape) -> WeightFormula:
        kh, kw = self.kernel
        return WeightFormula(((kh, kw, in_shape[0] // self.groups), (self.out_channels,)))

    def operations(self, in_shape: Shape, out_shape: Shape) -> Ops:
        positions = out_shape[1] * out_shape[2]
        macs = math.prod(in_shape[1:]) * self.weights(in_shape)
        return Ops(macs=macs, tconv_macs=macs,
                   tconv_positions=self.weights(in_shape) * positions,
                   bias=math.prod(out_shape) if self.bias else 0)

    def receptive_field(self, rf: RF, in_shape: Shape) -> RF | None:
        """Stride 1: output unit j sums inputs j + p - t*d (t < k), the convolution with
        padding d*(k-1) - p; a larger stride interleaves the inputs: no field."""
        if self.stride != (1, 1):
            return None
        padding = tuple(d * (k - 1) - p for d, k, p in zip(self.dilation, self.kernel,
                                                             self.padding, strict=True))
        return rf.step(self.kernel, (1, 1), padding, self.dilation)  # type: ignore[arg-type]

    def subsampling(self) -> Pair | None:
        return (1, 1) if self.stride == (1, 1) else None

    def allocates(self) -> bool:
        return True

    def formulas(self, in_shape: Shape, out_shape: Shape) -> list[FormulaLine]:
        import sympy as sp

        from archcalc.symbolic import Ci, Co, Dl, G, Hin, Kh, Kw, P, St, Win, line

        op = sp.Symbol("OP", nonnegative=True, integer=True)
        values = {Ci: in_shape[0], Co: self.out_channels, Hin: in_shape[1], Win: in_shape[2],
                  Kh: self.kernel[0], Kw: self.kernel[1], P: self.padding[0],
                  St: self.stride[0], Dl: self.dilation[0], G: self.groups,
                  op: self.output_padding[0]}
        size = (Hin - 1) * St - 2 * P + Dl * (Kh - 1) + op + 1
        rows = [line("H_out", size, values), line("weights", Kh * Kw * Ci / G * Co, values)]
        if self.bias:
            rows.append(line("biases", Co, values))
        rows.append(line("MACs", Hin * Win * Ci * Kh * Kw * Co / G, values))
        return rows

    def torch_module(self, in_shape: Shape) -> nn.Module:
        from torch import nn

        return nn.ConvTranspose2d(in_shape[0], self.out_channels, self.kernel, self.stride,
                                  self.padding, self.output_padding, self.groups, self.bias,
                                  self.dilation)

    def probe_module(self, in_shape: Shape) -> nn.Module:
        """The probe sets positive weights on Conv2d and Linear only; this copy carries its
        own (1/fan-in), so that no path cancels."""
        from archcalc.backends.modules import ProbeConvTranspose2d

        return ProbeConvTranspose2d(in_shape[0], self.out_channels, self.kernel, self.stride,
                                    self.padding, self.output_padding, self.groups, self.bias,
                                    self.dilation)
