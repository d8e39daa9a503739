"""Pointwise activations (``relu``, ``gelu``...), ``soft-max`` over channels, and ``prelu``
(He et al. 2015), whose negative slopes are learnt."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from archcalc.algebra import Ops, Params
from archcalc.kinds.base import (
    Kind,
    NoParameters,
    Notation,
    ShapeKeeping,
    WeightFormula,
    flag_str,
    register,
)
from archcalc.notation import Fail, Options

if TYPE_CHECKING:
    from torch import nn

    from archcalc.layers import Shape
    from archcalc.symbolic import FormulaLine

SOFTMAX_FLOPS_PER_ELEMENT = 3  # exp, running sum, divide


def _torch_activations() -> dict[str, Callable[[], nn.Module]]:
    from torch import nn

    return {"relu": nn.ReLU, "relu6": nn.ReLU6, "leakyrelu": nn.LeakyReLU, "elu": nn.ELU,
            "gelu": nn.GELU, "silu": nn.SiLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh,
            "hardswish": nn.Hardswish, "hardsigmoid": nn.Hardsigmoid, "mish": nn.Mish,
            "softmax": lambda: nn.Softmax(dim=1)}


# Functions torch (and the memory model) run in place: they allocate nothing new.
# (nn.Hardsigmoid and nn.Mish take inplace=True, like nn.ReLU; nn.PReLU cannot.)
INPLACE = ("relu", "relu6", "leakyrelu", "elu", "gelu", "silu", "sigmoid", "tanh", "hardswish",
           "hardsigmoid", "mish")
FUNCTIONS = (*INPLACE, "softmax")


@register
class Activation(NoParameters, ShapeKeeping, Kind):
    fn: str = "relu"

    kind = "act"
    notation = Notation("|".join((*FUNCTIONS, "soft-max")), {},
                        " ".join(INPLACE) + " (in place); soft-max softmax (over channels)")
    homework_row = False  # soft-max's output is an allocation the table's footer names

    @classmethod
    def from_notation(cls, m: re.Match[str], opts: Options, fail: Fail) -> Activation:
        word = m.group().lower()
        return cls("softmax" if word == "soft-max" else word)

    def title(self) -> str:
        return "SOFT-MAX" if self.fn == "softmax" else self.fn.upper()

    def spec(self) -> str:
        return "soft-max" if self.fn == "softmax" else self.fn

    def operations(self, in_shape: Shape, out_shape: Shape) -> Ops:
        weight = SOFTMAX_FLOPS_PER_ELEMENT if self.fn == "softmax" else 1
        return Ops(act=math.prod(out_shape) * weight)

    def allocates(self) -> bool:
        return self.fn not in INPLACE

    def torch_module(self, in_shape: Shape) -> nn.Module:
        return _torch_activations()[self.fn]()

    def probe_module(self, in_shape: Shape) -> nn.Module:
        """Pointwise, or a channel softmax that sums to a constant: the field is unchanged."""
        from torch import nn

        return nn.Identity()


@register
class PReLU(ShapeKeeping, Kind):
    """``nn.PReLU``: max(0, x) + a * min(0, x) with learnt slopes ``a``: one shared slope by
    default (torch's num_parameters=1), or one per channel with ``per-channel=true``
    (num_parameters=C; He et al. 2015 use both). The slopes are weights; torch names them
    ``weight``, so torchinfo counts each as one Mult-Add; fvcore and FlopCounterMode count
    nothing; full FLOPs: one activation per element. It allocates: torch's PReLU has no
    in-place form. Pointwise: the field is unchanged."""

    per_channel: bool = False

    kind = "prelu"
    notation = Notation("prelu", {"per-channel": "per-channel", "channelwise": "per-channel"},
                        "prelu (learnt slope, allocates); per-channel (true: one slope per "
                        "channel, default one shared)")
    homework_row = False  # an activation: the table's footer names its output

    @classmethod
    def from_notation(cls, m: re.Match[str], opts: Options, fail: Fail) -> PReLU:
        return cls(opts.boolean("per-channel", False))

    def title(self) -> str:
        return "PRELU"

    def spec(self) -> str:
        return f"prelu per-channel={flag_str(self.per_channel)}"

    def slopes(self, in_shape: Shape) -> int:
        return in_shape[0] if self.per_channel else 1

    def parameters(self, in_shape: Shape) -> Params:
        return Params(self.slopes(in_shape), 0, 0)

    def weight_formula(self, in_shape: Shape) -> WeightFormula:
        return WeightFormula(((self.slopes(in_shape),),))

    def operations(self, in_shape: Shape, out_shape: Shape) -> Ops:
        return Ops(act=math.prod(out_shape), act_params=self.slopes(in_shape))

    def allocates(self) -> bool:
        return True

    def formulas(self, in_shape: Shape, out_shape: Shape) -> list[FormulaLine]:
        import sympy as sp

        from archcalc.symbolic import Ci, line

        values = {Ci: in_shape[0]}
        return [line("weights", Ci if self.per_channel else sp.Integer(1), values)]

    def torch_module(self, in_shape: Shape) -> nn.Module:
        from torch import nn

        return nn.PReLU(self.slopes(in_shape))

    def probe_module(self, in_shape: Shape) -> nn.Module:
        from torch import nn

        return nn.Identity()
