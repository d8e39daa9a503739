"""Normalisation: ``bn`` (Ioffe & Szegedy 2015) and ``lrn`` (Krizhevsky et al. 2012, 3.3)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from archcalc.algebra import RF, Ops, Params
from archcalc.errors import Loc
from archcalc.kinds.base import Kind, Notation, WeightFormula, feature_map, register
from archcalc.notation import Fail, Options

if TYPE_CHECKING:
    from torch import nn

    from archcalc.layers import Shape
    from archcalc.symbolic import FormulaLine

LRN_FIXED_FLOPS = 3  # scale and offset the sum, raise to beta, divide


@register
@dataclass(frozen=True)
class BatchNorm(Kind):
    """Per-channel scale and shift (``affine``) and running mean and variance (buffers)."""

    eps: float = 1e-5
    affine: bool = True

    kind = "bn"
    notation = Notation("bn|batchnorm", {"eps": "eps", "affine": "affine"},
                        "bn batchnorm (2-D on feature maps, 1-D on vectors); eps, affine")

    @classmethod
    def from_notation(cls, m: re.Match[str], opts: Options, fail: Fail) -> BatchNorm:
        return cls(opts.number("eps", 1e-5, 0.0, 1.0), opts.boolean("affine", True))

    def title(self) -> str:
        return "BN"

    def output_shape(self, shape: Shape, loc: Loc) -> Shape:
        return shape

    def parameters(self, in_shape: Shape) -> Params:
        c = in_shape[0]
        return Params(c if self.affine else 0, c if self.affine else 0, 2 * c)

    def weight_formula(self, in_shape: Shape) -> WeightFormula | None:
        """One scale per channel (the shifts are its biases)."""
        return WeightFormula(((in_shape[0],),)) if self.affine else None

    def operations(self, in_shape: Shape, out_shape: Shape) -> Ops:
        out = math.prod(out_shape)
        if not self.affine:
            return Ops(norm=out)
        return Ops(norm=out, norm_affine=out, norm_params=2 * in_shape[0])

    def receptive_field(self, rf: RF, in_shape: Shape) -> RF:
        return rf

    def subsampling(self) -> tuple[int, int]:
        return (1, 1)

    def allocates(self) -> bool:
        return True

    def formulas(self, in_shape: Shape, out_shape: Shape) -> list[FormulaLine]:
        from archcalc.symbolic import Ci, line

        values = {Ci: in_shape[0]}
        rows = [line("weights", Ci, values), line("biases", Ci, values)] if self.affine else []
        return [*rows, line("buffers", 2 * Ci, values)]

    def torch_module(self, in_shape: Shape) -> nn.Module:
        from torch import nn

        norm = nn.BatchNorm2d if len(in_shape) == 3 else nn.BatchNorm1d
        return norm(in_shape[0], eps=self.eps, affine=self.affine)


@register
@dataclass(frozen=True)
class LRN(Kind):
    """Local response normalisation across channels; ``alpha`` multiplies the plain sum of
    squares, as the paper writes it."""

    size: int = 5
    alpha: float = 1e-4
    beta: float = 0.75
    k: float = 2.0

    kind = "lrn"
    notation = Notation("lrn", {"size": "size", "alpha": "alpha", "beta": "beta", "k": "k"},
                        "lrn (across channels, the paper's alpha); size, alpha, beta, k")

    @classmethod
    def from_notation(cls, m: re.Match[str], opts: Options, fail: Fail) -> LRN:
        return cls(opts.integer("size", 5), opts.number("alpha", 1e-4, 0.0, 1e6),
                   opts.number("beta", 0.75, 0.0, 1e6), opts.number("k", 2.0, 0.0, 1e6))

    def title(self) -> str:
        return "LRN"

    def output_shape(self, shape: Shape, loc: Loc) -> Shape:
        feature_map(self.kind, shape, loc)
        return shape

    def parameters(self, in_shape: Shape) -> Params:
        return Params()

    def weight_formula(self, in_shape: Shape) -> None:
        return None

    def operations(self, in_shape: Shape, out_shape: Shape) -> Ops:
        return Ops(lrn=math.prod(out_shape) * (2 * self.size - 1 + LRN_FIXED_FLOPS))

    def receptive_field(self, rf: RF, in_shape: Shape) -> RF:
        return rf

    def subsampling(self) -> tuple[int, int]:
        return (1, 1)

    def allocates(self) -> bool:
        return True

    def formulas(self, in_shape: Shape, out_shape: Shape) -> list[FormulaLine]:
        from archcalc.symbolic import zero_weights

        return zero_weights()

    def torch_module(self, in_shape: Shape) -> nn.Module:
        from torch import nn

        # torch divides alpha by the window size; the paper's alpha multiplies the plain sum.
        return nn.LocalResponseNorm(self.size, self.alpha * self.size, self.beta, self.k)

    def probe_module(self, in_shape: Shape) -> nn.Module:
        from torch import nn

        return nn.Identity()  # channel-wise: the spatial field is unchanged
