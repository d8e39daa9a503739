"""Reshaping without arithmetic: ``flatten``."""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING

from archcalc.algebra import RF, Ops
from archcalc.errors import Loc
from archcalc.kinds.base import Kind, NoParameters, Notation, extent, register
from archcalc.notation import Fail, Options

if TYPE_CHECKING:
    from torch import nn

    from archcalc.layers import Shape


@register
class Flatten(NoParameters, Kind):
    """(C, H, W) -> (C*H*W,): a view, no new tensor."""

    kind = "flatten"
    notation = Notation("flatten", {}, "flatten (a view: allocates nothing)")

    @classmethod
    def from_notation(cls, m: re.Match[str], opts: Options, fail: Fail) -> Flatten:
        return cls()

    def title(self) -> str:
        return "FLATTEN"

    def spec(self) -> str:
        return "flatten"

    def output_shape(self, shape: Shape, loc: Loc) -> Shape:
        return (math.prod(shape),)

    def operations(self, in_shape: Shape, out_shape: Shape) -> Ops:
        return Ops()

    def receptive_field(self, rf: RF, in_shape: Shape) -> RF:
        return rf.spread(extent(in_shape)) if len(in_shape) > 1 else rf

    def subsampling(self) -> None:
        return None

    def allocates(self) -> bool:
        return False

    def torch_module(self, in_shape: Shape) -> nn.Module:
        from torch import nn

        return nn.Flatten()
