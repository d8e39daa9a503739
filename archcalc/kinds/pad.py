"""Explicit zero padding: ``pad1``, ``pad1x2``, ``pad t=0 b=1 l=0 r=1``, as Keras'
ZeroPadding2D(((top, bottom), (left, right))) and torch's nn.ZeroPad2d((left, right, top,
bottom)). Frameworks write it as its own layer before a convolution that pads nothing, where
the padding is asymmetric (Keras' ResNet50 and MobileNet before strided convs)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from archcalc.algebra import RF, Ops
from archcalc.errors import Loc, SpecError
from archcalc.kinds.base import Kind, NoParameters, Notation, Pair, feature_map, register
from archcalc.notation import Fail, Options, sizes

if TYPE_CHECKING:
    from torch import nn

    from archcalc.layers import Shape
    from archcalc.symbolic import FormulaLine

_SIDES = ("top", "bottom", "left", "right")


@register
class Pad(NoParameters, Kind):
    """Zeros around each map: (C, H, W) -> (C, H + top + bottom, W + left + right).

    No parameters and no arithmetic (a copy: torchinfo, fvcore and FlopCounterMode count
    nothing for it), but a new tensor. The field keeps its size and stride; it starts ``top``
    (``left``) pixels earlier, because the first output unit is padding."""

    top: int
    bottom: int
    left: int
    right: int

    kind = "pad"
    notation = Notation(
        r"(?:zero)?pad([0-9]+(?:x[0-9]+)?)?",
        {"t": "top", "top": "top", "b": "bottom", "bottom": "bottom", "l": "left",
         "left": "left", "r": "right", "right": "right"},
        "pad1 (every side) pad1x2 (1 top and bottom, 2 left and right) pad t=0 b=1 l=0 r=1 "
        "(zero padding per side: Keras' ZeroPadding2D, torch's ZeroPad2d; sides not given "
        "take the size in the name, else 0)")

    @classmethod
    def from_notation(cls, m: re.Match[str], opts: Options, fail: Fail) -> Pad:
        if m.group(1) is None and not opts.values:
            raise fail(None, "pad needs a size (pad1, pad1x2) or sides (t=, b=, l=, r=)")
        rows, cols = sizes(m, 1, fail, "padding") if m.group(1) else (0, 0)
        default = {"top": rows, "bottom": rows, "left": cols, "right": cols}
        return cls(*(opts.integer(side, default[side], minimum=0) for side in _SIDES))

    @property
    def sides(self) -> tuple[int, int, int, int]:
        return (self.top, self.bottom, self.left, self.right)

    def title(self) -> str:
        if self.top == self.bottom and self.left == self.right:
            rows, cols = self.top, self.left
            return f"ZEROPAD{rows}" if rows == cols else f"ZEROPAD{rows}x{cols}"
        return f"ZEROPAD(({self.top},{self.bottom}),({self.left},{self.right}))"

    def spec(self) -> str:
        return f"pad t={self.top} b={self.bottom} l={self.left} r={self.right}"

    def on_sequence(self, loc: Loc | None) -> Pad:
        """A sequence pads its start (``l``) and end (``r``), as torch's ZeroPad1d((l, r))
        and Keras' ZeroPadding1D: ``pad2``, or ``pad l=2 r=0`` (causal, before a conv with
        p=0). Top and bottom must be 0 or the same as left and right (``pad2``)."""
        if (self.top, self.bottom) not in ((0, 0), (self.left, self.right)):
            raise SpecError("a sequence pads its start and end only: write padN, or "
                            "l=START r=END", loc)
        return Pad(self.left, self.right, 0, 0)

    def output_shape(self, shape: Shape, loc: Loc) -> Shape:
        c, h, w = feature_map(self.kind, shape, loc)
        return (c, h + self.top + self.bottom, w + self.left + self.right)

    def operations(self, in_shape: Shape, out_shape: Shape) -> Ops:
        return Ops()

    def receptive_field(self, rf: RF, in_shape: Shape) -> RF:
        return rf.step((1, 1), (1, 1), (self.top, self.left))

    def subsampling(self) -> Pair:
        return (1, 1)

    def allocates(self) -> bool:
        return True

    def formulas(self, in_shape: Shape, out_shape: Shape) -> list[FormulaLine]:
        import sympy as sp

        from archcalc.symbolic import Hin, Win, line

        pt, pb, pl, pr = sp.symbols("P_top P_bottom P_left P_right", nonnegative=True,
                                    integer=True)
        values = {Hin: in_shape[1], Win: in_shape[2], pt: self.top, pb: self.bottom,
                  pl: self.left, pr: self.right}
        return [line("H_out", Hin + pt + pb, values), line("W_out", Win + pl + pr, values),
                line("weights", sp.Integer(0), values)]

    def torch_module(self, in_shape: Shape) -> nn.Module:
        from torch import nn

        if len(in_shape) == 2:
            return nn.ZeroPad1d((self.left, self.right))
        return nn.ZeroPad2d((self.left, self.right, self.top, self.bottom))


@register
class Crop(NoParameters, Kind):
    """A centre (or per-side) crop: ``crop4`` (4 pixels off every side), ``crop4x2`` (4 off
    top and bottom, 2 off left and right), ``crop t=1 b=0 l=2 r=2``, as Keras'
    Cropping2D(((top, bottom), (left, right))): (C, H, W) -> (C, H - top - bottom,
    W - left - right). The U-Net's "copy and crop" (Ronneberger et al. 2015, Fig. 1) of an
    encoder map to the size of the decoder's.

    No parameters and no arithmetic. In torch it is a slice ``x[:, :, t:H-b, l:W-r]``, a
    view of its input: it allocates nothing (the join it feeds, a concat, copies it), as
    ``flatten``. The field keeps its size and stride and starts ``top`` (``left``) input
    strides later, because the first output unit is the input's unit (top, left)."""

    top: int
    bottom: int
    left: int
    right: int

    kind = "crop"
    notation = Notation(
        r"crop([0-9]+(?:x[0-9]+)?)?",
        {"t": "top", "top": "top", "b": "bottom", "bottom": "bottom", "l": "left",
         "left": "left", "r": "right", "right": "right"},
        "crop4 (every side) crop4x2 (4 top and bottom, 2 left and right) crop t=0 b=1 l=0 "
        "r=1 (pixels cut off each side: Keras' Cropping2D, a slice in torch, a view that "
        "allocates nothing; sides not given take the size in the name, else 0)")

    @classmethod
    def from_notation(cls, m: re.Match[str], opts: Options, fail: Fail) -> Crop:
        if m.group(1) is None and not opts.values:
            raise fail(None, "crop needs a size (crop4, crop4x2) or sides (t=, b=, l=, r=)")
        rows, cols = sizes(m, 1, fail, "crop") if m.group(1) else (0, 0)
        default = {"top": rows, "bottom": rows, "left": cols, "right": cols}
        return cls(*(opts.integer(side, default[side], minimum=0) for side in _SIDES))

    def title(self) -> str:
        if self.top == self.bottom and self.left == self.right:
            rows, cols = self.top, self.left
            return f"CROP{rows}" if rows == cols else f"CROP{rows}x{cols}"
        return f"CROP(({self.top},{self.bottom}),({self.left},{self.right}))"

    def spec(self) -> str:
        return f"crop t={self.top} b={self.bottom} l={self.left} r={self.right}"

    def output_shape(self, shape: Shape, loc: Loc) -> Shape:
        c, h, w = feature_map(self.kind, shape, loc)
        out_h, out_w = h - self.top - self.bottom, w - self.left - self.right
        if out_h < 1 or out_w < 1:
            raise SpecError(f"crop of {self.top}+{self.bottom} rows and {self.left}+"
                            f"{self.right} columns leaves nothing of a {h}x{w} map", loc)
        return (c, out_h, out_w)

    def operations(self, in_shape: Shape, out_shape: Shape) -> Ops:
        return Ops()

    def receptive_field(self, rf: RF, in_shape: Shape) -> RF:
        # a 1x1 window with "padding" -top, -left: the start moves top*stride inward
        return rf.step((1, 1), (1, 1), (-self.top, -self.left))

    def subsampling(self) -> Pair:
        return (1, 1)

    def allocates(self) -> bool:
        return False

    def formulas(self, in_shape: Shape, out_shape: Shape) -> list[FormulaLine]:
        import sympy as sp

        from archcalc.symbolic import Hin, Win, line

        ct, cb, cl, cr = sp.symbols("C_top C_bottom C_left C_right", nonnegative=True,
                                    integer=True)
        values = {Hin: in_shape[1], Win: in_shape[2], ct: self.top, cb: self.bottom,
                  cl: self.left, cr: self.right}
        return [line("H_out", Hin - ct - cb, values), line("W_out", Win - cl - cr, values),
                line("weights", sp.Integer(0), values)]

    def torch_module(self, in_shape: Shape) -> nn.Module:
        from archcalc.backends.modules import Crop2d

        return Crop2d(self.top, self.bottom, self.left, self.right)
