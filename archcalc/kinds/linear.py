"""Fully connected layers: ``FC-4096``, ``linear-10``; a feature map is flattened first, as
the papers do (VGG's FC-4096 sees 7*7*512 inputs)."""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING

from archcalc.algebra import RF, Ops, Params
from archcalc.errors import Loc
from archcalc.kinds.base import Kind, Notation, WeightFormula, extent, flag_str, register
from archcalc.notation import Fail, Options, sizes

if TYPE_CHECKING:
    from torch import nn

    from archcalc.layers import Shape
    from archcalc.symbolic import FormulaLine


@register
class Linear(Kind):
    out_features: int
    bias: bool = True

    kind = "linear"
    notation = Notation(r"(?:fc|linear)-([0-9]+)", {"bias": "bias"},
                        "FC-4096 linear-10 (a feature map is flattened first); bias")

    @classmethod
    def from_notation(cls, m: re.Match[str], opts: Options, fail: Fail) -> Linear:
        return cls(sizes(m, 1, fail, "output features")[0], opts.boolean("bias", True))

    def title(self) -> str:
        return f"FC-{self.out_features}"

    def spec(self) -> str:
        return f"FC-{self.out_features} bias={flag_str(self.bias)}"

    def output_shape(self, shape: Shape, loc: Loc) -> Shape:
        return (self.out_features,)

    def parameters(self, in_shape: Shape) -> Params:
        return Params(math.prod(in_shape) * self.out_features,
                      self.out_features if self.bias else 0)

    def weight_formula(self, in_shape: Shape) -> WeightFormula:
        """H*W*C*out, the order in which the homework writes a feature map (L*C*out for a
        sequence)."""
        hwc = (*in_shape[1:], in_shape[0])
        return WeightFormula(((*hwc, self.out_features),))

    def operations(self, in_shape: Shape, out_shape: Shape) -> Ops:
        return Ops(macs=math.prod(in_shape) * self.out_features,
                   bias=self.out_features if self.bias else 0)

    def receptive_field(self, rf: RF, in_shape: Shape) -> RF:
        return rf.spread(extent(in_shape)) if len(in_shape) > 1 else rf

    def subsampling(self) -> None:
        return None

    def allocates(self) -> bool:
        return True

    def formulas(self, in_shape: Shape, out_shape: Shape) -> list[FormulaLine]:
        from archcalc.symbolic import Nin, Nout, line

        values = {Nin: math.prod(in_shape), Nout: self.out_features}
        rows = [line("weights", Nin * Nout, values)]
        if self.bias:
            rows.append(line("biases", Nout, values))
        return [*rows, line("MACs", Nin * Nout, values)]

    def torch_module(self, in_shape: Shape) -> nn.Module:
        from archcalc.backends.modules import FlattenLinear

        return FlattenLinear(math.prod(in_shape), self.out_features, bias=self.bias)
