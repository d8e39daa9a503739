"""Preprocessing inside a model: ``rescale`` (Keras' Rescaling: ``x * scale + offset``) and
``standardize`` (Keras' Normalization: ``(x - mean) / sqrt(variance)`` per channel), the first
layers of Keras' MobileNetV3, EfficientNet and ConvNeXt.

Both are per-element affine maps with constants, not learnt weights: no parameters, and the
field is unchanged. Keras stores an adapted Normalization's mean, variance and sample count as
non-trainable weights (``count_params`` includes them): ``standardize`` counts them as
buffers, C + C + 1, unless the constants were given to the layer (``adapted=false``: Keras
keeps them outside its weights, as ConvNeXt's ImageNet mean and variance).
"""

from __future__ import annotations

import functools
import math
import re
from typing import TYPE_CHECKING, Any

from archcalc.algebra import Ops, Params
from archcalc.kinds.base import (
    Kind,
    NoParameters,
    Notation,
    ShapeKeeping,
    WeightFormula,
    flag_str,
    num,
    register,
)
from archcalc.notation import Fail, Options

if TYPE_CHECKING:
    from torch import nn

    from archcalc.layers import Shape
    from archcalc.symbolic import FormulaLine


@register
class Rescale(NoParameters, ShapeKeeping, Kind):
    """``x * scale + offset`` on every element (Keras' Rescaling(1/255), MobileNetV3's
    Rescaling(1/127.5, offset=-1)). Full FLOPs: a multiply per element, and an add where the
    offset is not 0; torchinfo and fvcore count neither (aten::mul and aten::add)."""

    scale: float = 1.0
    offset: float = 0.0

    kind = "rescale"
    notation = Notation("rescale|rescaling", {"scale": "scale", "offset": "offset"},
                        "rescale scale=0.00392 offset=0 (x * scale + offset, Keras' "
                        "Rescaling; no parameters)")

    @classmethod
    def from_notation(cls, m: re.Match[str], opts: Options, fail: Fail) -> Rescale:
        return cls(opts.number("scale", 1.0, -1e12, 1e12),
                   opts.number("offset", 0.0, -1e12, 1e12))

    def title(self) -> str:
        return "RESCALE"

    def spec(self) -> str:
        return f"rescale scale={num(self.scale)} offset={num(self.offset)}"

    def operations(self, in_shape: Shape, out_shape: Shape) -> Ops:
        n = math.prod(out_shape)
        return Ops(scale=n, add=n if self.offset else 0)

    def allocates(self) -> bool:
        return True

    def torch_module(self, in_shape: Shape) -> nn.Module:
        module: nn.Module = _modules()["rescale"](self.scale, self.offset)
        return module

    def probe_module(self, in_shape: Shape) -> nn.Module:
        from torch import nn

        return nn.Identity()  # pointwise: the field is unchanged (and the scale may be < 0)


@register
class Standardize(ShapeKeeping, Kind):
    """``(x - mean) / sqrt(variance)`` per channel with fixed statistics, as Keras'
    Normalization(axis=-1). ``adapted``: the statistics are the layer's non-trainable weights
    (Keras' adapted layer: mean, variance and the sample count, 2C + 1 buffers); false: given
    to the layer as constants, which Keras does not count. Operations: a subtract and a
    multiply per element, as batch norm at inference (``norm``)."""

    adapted: bool = True

    kind = "standardize"
    notation = Notation("standardize|normalization", {"adapted": "adapted"},
                        "standardize normalization ((x - mean)/sqrt(var) per channel, Keras' "
                        "Normalization); adapted (true: mean, variance and count are 2C+1 "
                        "buffers; false: constants)")

    @classmethod
    def from_notation(cls, m: re.Match[str], opts: Options, fail: Fail) -> Standardize:
        return cls(opts.boolean("adapted", True))

    def title(self) -> str:
        return "STANDARDIZE"

    def spec(self) -> str:
        return f"standardize adapted={flag_str(self.adapted)}"

    def parameters(self, in_shape: Shape) -> Params:
        return Params(0, 0, 2 * in_shape[0] + 1 if self.adapted else 0)

    def weight_formula(self, in_shape: Shape) -> WeightFormula | None:
        return None

    def operations(self, in_shape: Shape, out_shape: Shape) -> Ops:
        return Ops(norm=math.prod(out_shape))

    def allocates(self) -> bool:
        return True

    def formulas(self, in_shape: Shape, out_shape: Shape) -> list[FormulaLine]:
        import sympy as sp

        from archcalc.symbolic import Ci, line, zero_weights

        values = {Ci: in_shape[0]}
        buffers = 2 * Ci + 1 if self.adapted else sp.Integer(0)
        return [*zero_weights(), line("buffers", buffers, values)]

    def torch_module(self, in_shape: Shape) -> nn.Module:
        module: nn.Module = _modules()["standardize"](in_shape[0], self.adapted)
        return module

    def probe_module(self, in_shape: Shape) -> nn.Module:
        from torch import nn

        return nn.Identity()  # per channel: the field is unchanged


@functools.cache
def _modules() -> dict[str, Any]:
    """The torch modules, defined on first use (torch is imported only here)."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    class RescaleModule(nn.Module):
        def __init__(self, scale: float, offset: float) -> None:
            super().__init__()
            self.scale, self.offset = scale, offset

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * self.scale + self.offset if self.offset else x * self.scale

    class StandardizeModule(nn.Module):
        """Batch norm at inference without an affine: running mean and variance (and
        Keras' sample count) as buffers when ``adapted``; the names are torch's, so the
        buffer count and fvcore's aten::batch_norm rule apply."""

        running_mean: torch.Tensor
        running_var: torch.Tensor

        def __init__(self, channels: int, adapted: bool) -> None:
            super().__init__()
            self.channels, self.adapted = channels, adapted
            if adapted:
                self.register_buffer("running_mean", torch.zeros(channels))
                self.register_buffer("running_var", torch.ones(channels))
                self.register_buffer("count", torch.zeros(1))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if self.adapted:
                mean, var = self.running_mean, self.running_var
            else:  # constants, not state: made where x is
                mean = torch.zeros(self.channels, dtype=x.dtype, device=x.device)
                var = torch.ones(self.channels, dtype=x.dtype, device=x.device)
            return F.batch_norm(x, mean, var, eps=1e-7)

    return {"rescale": RescaleModule, "standardize": StandardizeModule}
