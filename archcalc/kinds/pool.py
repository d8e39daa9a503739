"""Pooling: windows (``maxpool``, ``avgpool3 s=2``) and global pooling (``gap``)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from archcalc.algebra import RF, Ops, Params
from archcalc.errors import Loc, SpecError
from archcalc.kinds.base import Kind, Notation, Pair, feature_map, pair_str, register, window
from archcalc.notation import Fail, Options, sizes

if TYPE_CHECKING:
    from torch import nn

    from archcalc.layers import Shape
    from archcalc.symbolic import FormulaLine


@register
@dataclass(frozen=True)
class Pool(Kind):
    op: Literal["max", "avg"]
    kernel: Pair = (2, 2)
    stride: Pair = (2, 2)
    padding: Pair = (0, 0)
    ceil_mode: bool = False

    kind = "pool"
    notation = Notation(
        r"(max|avg)?pool([0-9]+(?:x[0-9]+)?)?",
        {"s": "stride", "stride": "stride", "p": "pad", "pad": "pad", "padding": "pad",
         "ceil": "ceil"},
        "maxpool avgpool3 pool2 (kernel, default 2; stride defaults to the kernel); s, p, "
        "ceil (torch's ceil_mode; average pooling counts the padding, as torch's default)")

    @classmethod
    def from_notation(cls, m: re.Match[str], opts: Options, fail: Fail) -> Pool:
        kernel = sizes(m, 2, fail, "pool kernel") if m.group(2) else (2, 2)
        return cls("avg" if (m.group(1) or "").lower() == "avg" else "max", kernel,
                   opts.pair("stride", kernel), opts.pair("pad", (0, 0), minimum=0),
                   opts.boolean("ceil", False))

    def title(self) -> str:
        return f"{'AVG' if self.op == 'avg' else ''}POOL{pair_str(self.kernel)}"

    def output_shape(self, shape: Shape, loc: Loc) -> Shape:
        c, h, w = feature_map(self.kind, shape, loc)
        for k, p in zip(self.kernel, self.padding, strict=True):
            if 2 * p > k:
                raise SpecError(f"pool padding {p} is more than half the kernel {k}", loc)
        return (c,
                window(h, self.kernel[0], self.stride[0], self.padding[0], 1, self.ceil_mode,
                       loc, "height"),
                window(w, self.kernel[1], self.stride[1], self.padding[1], 1, self.ceil_mode,
                       loc, "width"))

    def parameters(self, in_shape: Shape) -> Params:
        return Params()

    def weight_formula(self, in_shape: Shape) -> None:
        return None

    def operations(self, in_shape: Shape, out_shape: Shape) -> Ops:
        size = self.kernel[0] * self.kernel[1]
        return Ops(pool=math.prod(out_shape) * (size - 1 if self.op == "max" else size))

    def receptive_field(self, rf: RF, in_shape: Shape) -> RF:
        return rf.step(self.kernel, self.stride, self.padding)

    def subsampling(self) -> Pair:
        return self.stride

    def allocates(self) -> bool:
        return True

    def formulas(self, in_shape: Shape, out_shape: Shape) -> list[FormulaLine]:
        from archcalc.symbolic import Ci, Hin, Ho, Kh, Kw, P, St, Wo, line, sp

        values = {Ci: in_shape[0], Hin: in_shape[1], Kh: self.kernel[0], Kw: self.kernel[1],
                  P: self.padding[0], St: self.stride[0], Ho: out_shape[1], Wo: out_shape[2]}
        rounding = sp.ceiling if self.ceil_mode else sp.floor
        size = rounding((Hin + 2 * P - Kh) / St) + 1
        compares = 1 if self.op == "max" else 0
        return [line("H_out", size, values), line("weights", sp.Integer(0), values),
                line("window ops", Ho * Wo * Ci * (Kh * Kw - compares), values)]

    def torch_module(self, in_shape: Shape) -> nn.Module:
        from torch import nn

        if self.op == "max":
            return nn.MaxPool2d(self.kernel, self.stride, self.padding, ceil_mode=self.ceil_mode)
        return self._average()

    def probe_module(self, in_shape: Shape) -> nn.Module:
        """Max pooling routes the gradient to one input; averaging reaches the whole window."""
        return self._average()

    def _average(self) -> nn.Module:
        from torch import nn

        return nn.AvgPool2d(self.kernel, self.stride, self.padding, ceil_mode=self.ceil_mode,
                            count_include_pad=True)


_GLOBAL = {"gap": "avg", "globalavgpool": "avg", "globalmaxpool": "max", "gmp": "max"}


@register
@dataclass(frozen=True)
class GlobalPool(Kind):
    """Adaptive pooling to 1x1, as torch's AdaptiveAvgPool2d(1); output stays (C, 1, 1)."""

    op: Literal["max", "avg"] = "avg"

    kind = "globalpool"
    notation = Notation("|".join(_GLOBAL), {},
                        "gap globalavgpool, globalmaxpool gmp (to 1x1, channels kept)")

    @classmethod
    def from_notation(cls, m: re.Match[str], opts: Options, fail: Fail) -> GlobalPool:
        return cls("avg" if _GLOBAL[m.group().lower()] == "avg" else "max")

    def title(self) -> str:
        return "GAP" if self.op == "avg" else "GMP"

    def output_shape(self, shape: Shape, loc: Loc) -> Shape:
        c, _, _ = feature_map(self.kind, shape, loc)
        return (c, 1, 1)

    def parameters(self, in_shape: Shape) -> Params:
        return Params()

    def weight_formula(self, in_shape: Shape) -> None:
        return None

    def operations(self, in_shape: Shape, out_shape: Shape) -> Ops:
        size = in_shape[1] * in_shape[2]
        return Ops(pool=math.prod(out_shape) * (size - 1 if self.op == "max" else size),
                   pool_inputs=math.prod(in_shape) if self.op == "avg" else 0)

    def receptive_field(self, rf: RF, in_shape: Shape) -> RF:
        return rf.spread((in_shape[1], in_shape[2]))

    def subsampling(self) -> None:
        return None

    def allocates(self) -> bool:
        return True

    def formulas(self, in_shape: Shape, out_shape: Shape) -> list[FormulaLine]:
        from archcalc.symbolic import Ci, Hin, Win, line, sp

        values = {Ci: in_shape[0], Hin: in_shape[1], Win: in_shape[2]}
        return [line("weights", sp.Integer(0), values),
                line("window ops", Ci * Hin * Win, values)]

    def torch_module(self, in_shape: Shape) -> nn.Module:
        from torch import nn

        return nn.AdaptiveAvgPool2d(1) if self.op == "avg" else nn.AdaptiveMaxPool2d(1)

    def probe_module(self, in_shape: Shape) -> nn.Module:
        from torch import nn

        return nn.AdaptiveAvgPool2d(1)
