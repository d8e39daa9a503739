"""Regularisers that change nothing at inference: ``dropout``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from archcalc.algebra import RF, Ops, Params
from archcalc.errors import Loc
from archcalc.kinds.base import Kind, Notation, register
from archcalc.notation import Fail, Options

if TYPE_CHECKING:
    from torch import nn

    from archcalc.layers import Shape
    from archcalc.symbolic import FormulaLine


@register
@dataclass(frozen=True)
class Dropout(Kind):
    p: float = 0.5

    kind = "dropout"
    notation = Notation(r"dropout(?:-([0-9]*\.?[0-9]+))?", {"p": "p"},
                        "dropout dropout-0.5 (probability, default 0.5); p")

    @classmethod
    def from_notation(cls, m: re.Match[str], opts: Options, fail: Fail) -> Dropout:
        default = float(m.group(1)) if m.group(1) else 0.5
        if not 0.0 <= default <= 1.0:
            raise fail(None, f"dropout probability must be in [0, 1], not {m.group(1)}",
                       m.start(1))
        return cls(opts.number("p", default, 0.0, 1.0))

    def title(self) -> str:
        return "DROPOUT"

    def output_shape(self, shape: Shape, loc: Loc) -> Shape:
        return shape

    def parameters(self, in_shape: Shape) -> Params:
        return Params()

    def weight_formula(self, in_shape: Shape) -> None:
        return None

    def operations(self, in_shape: Shape, out_shape: Shape) -> Ops:
        return Ops()  # the identity at inference

    def receptive_field(self, rf: RF, in_shape: Shape) -> RF:
        return rf

    def subsampling(self) -> tuple[int, int]:
        return (1, 1)

    def allocates(self) -> bool:
        return False

    def stored(self) -> bool:
        return True  # training keeps the masked output for the backward pass

    def formulas(self, in_shape: Shape, out_shape: Shape) -> list[FormulaLine]:
        from archcalc.symbolic import zero_weights

        return zero_weights()

    def torch_module(self, in_shape: Shape) -> nn.Module:
        from torch import nn

        return nn.Dropout(self.p)

    def probe_module(self, in_shape: Shape) -> nn.Module:
        from torch import nn

        return nn.Identity()
