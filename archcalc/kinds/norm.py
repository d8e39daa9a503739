"""Normalisation: ``bn`` (Ioffe & Szegedy 2015), ``lrn`` (Krizhevsky et al. 2012, 3.3),
``layernorm`` (Ba et al. 2016, over channels as ConvNeXt uses it), ``groupnorm`` (Wu & He
2018), ``instancenorm`` (Ulyanov et al. 2016), and ``layerscale`` (Touvron et al. 2021),
the learnt per-channel factor ConvNeXt puts after its blocks' last layer."""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Any

from archcalc.algebra import RF, Ops, Params
from archcalc.errors import Loc, SpecError
from archcalc.kinds.base import (
    Kind,
    NoParameters,
    Notation,
    ShapeKeeping,
    WeightFormula,
    channels_and_positions,
    flag_str,
    num,
    register,
)
from archcalc.notation import Fail, Options

if TYPE_CHECKING:
    from torch import nn

    from archcalc.layers import Shape
    from archcalc.symbolic import FormulaLine

LRN_FIXED_FLOPS = 3  # scale and offset the sum, raise to beta, divide


@register
class BatchNorm(ShapeKeeping, Kind):
    """Per-channel scale and shift (``affine``) and running mean and variance (buffers).
    ``scale=false`` (with ``affine``): the learnt shift alone, the scale fixed at 1, as
    Keras' BatchNormalization(scale=False) in InceptionV3 and InceptionResNetV2; it costs what
    the affine BN costs (torch's module keeps its weight as a constant buffer of ones)."""

    eps: float = 1e-5
    affine: bool = True
    scale: bool = True

    kind = "bn"
    notation = Notation("bn|batchnorm", {"eps": "eps", "affine": "affine", "scale": "scale"},
                        "bn batchnorm (2-D on feature maps, 1-D on vectors); eps, affine, "
                        "scale (false: a learnt shift only, Keras' scale=False)")

    @classmethod
    def from_notation(cls, m: re.Match[str], opts: Options, fail: Fail) -> BatchNorm:
        return cls(opts.number("eps", 1e-5, 0.0, 1.0), opts.boolean("affine", True),
                   opts.boolean("scale", True))

    def title(self) -> str:
        return "BN"

    def spec(self) -> str:
        return (f"bn eps={num(self.eps)} affine={flag_str(self.affine)} "
                f"scale={flag_str(self.scale)}")

    @property
    def scaled(self) -> bool:
        """Whether the layer learns a scale."""
        return self.affine and self.scale

    def parameters(self, in_shape: Shape) -> Params:
        c = in_shape[0]
        return Params(c if self.scaled else 0, c if self.affine else 0, 2 * c)

    def weight_formula(self, in_shape: Shape) -> WeightFormula | None:
        """One scale per channel (the shifts are its biases)."""
        return WeightFormula(((in_shape[0],),)) if self.scaled else None

    def operations(self, in_shape: Shape, out_shape: Shape) -> Ops:
        out = math.prod(out_shape)
        if not self.affine:
            return Ops(norm=out)
        learnt = (2 if self.scale else 1) * in_shape[0]
        return Ops(norm=out, norm_affine=out, norm_params=learnt)

    def allocates(self) -> bool:
        return True

    def formulas(self, in_shape: Shape, out_shape: Shape) -> list[FormulaLine]:
        import sympy as sp

        from archcalc.symbolic import Ci, line

        values = {Ci: in_shape[0]}
        rows = []
        if self.affine:
            rows = [line("weights", Ci if self.scale else sp.Integer(0), values),
                    line("biases", Ci, values)]
        return [*rows, line("buffers", 2 * Ci, values)]

    def torch_module(self, in_shape: Shape) -> nn.Module:
        from torch import nn

        norm = nn.BatchNorm2d if len(in_shape) == 3 else nn.BatchNorm1d
        module = norm(in_shape[0], eps=self.eps, affine=self.affine)
        if self.affine and not self.scale:  # the scale stays 1: a constant, not a parameter
            import torch

            del module.weight
            module.register_buffer("weight", torch.ones(in_shape[0]))
        return module


@register
class LRN(NoParameters, Kind):
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

    def spec(self) -> str:
        return (f"lrn size={self.size} alpha={num(self.alpha)} beta={num(self.beta)} "
                f"k={num(self.k)}")

    def output_shape(self, shape: Shape, loc: Loc) -> Shape:
        return channels_and_positions(self.kind, shape, loc)

    def operations(self, in_shape: Shape, out_shape: Shape) -> Ops:
        return Ops(lrn=math.prod(out_shape) * (2 * self.size - 1 + LRN_FIXED_FLOPS))

    def receptive_field(self, rf: RF, in_shape: Shape) -> RF:
        return rf

    def subsampling(self) -> tuple[int, int]:
        return (1, 1)

    def allocates(self) -> bool:
        return True

    def torch_module(self, in_shape: Shape) -> nn.Module:
        from torch import nn

        # torch divides alpha by the window size; the paper's alpha multiplies the plain sum.
        return nn.LocalResponseNorm(self.size, self.alpha * self.size, self.beta, self.k)

    def probe_module(self, in_shape: Shape) -> nn.Module:
        from torch import nn

        return nn.Identity()  # channel-wise: the spatial field is unchanged


class _SampleNorm(ShapeKeeping, Kind):
    """Normalisation by statistics of the sample itself (layer, group, instance norm): unlike
    BN at inference, mean and variance are computed on every forward, so the cost is per
    element (see :data:`archcalc.conventions.NORM_STATS_FLOPS`).

    Receptive field: unchanged. Group and instance norm take their statistics over the whole
    H x W map, so strictly every output depends on every input position of its group; like
    BN's statistics (over the batch in training), they are treated as a per-sample scale and
    shift, outside the field of the sliding-window paths (Araujo et al. 2019). The RF probe
    uses the identity for them."""

    eps: float
    affine: bool

    def parameters(self, in_shape: Shape) -> Params:
        c = in_shape[0] if self.affine else 0
        return Params(c, c, 0)

    def weight_formula(self, in_shape: Shape) -> WeightFormula | None:
        """One scale per channel (the shifts are its biases)."""
        return WeightFormula(((in_shape[0],),)) if self.affine else None

    def operations(self, in_shape: Shape, out_shape: Shape) -> Ops:
        n = math.prod(in_shape)
        if not self.affine:
            return Ops(norm_stats=n)
        return Ops(norm_stats=n, norm_stats_affine=n, norm_params=2 * in_shape[0])

    def allocates(self) -> bool:
        return True

    def formulas(self, in_shape: Shape, out_shape: Shape) -> list[FormulaLine]:
        from archcalc.conventions import AFFINE_FLOPS, NORM_STATS_FLOPS
        from archcalc.symbolic import Ci, line, zero_weights

        values = _symbol_values(in_shape)
        rows = ([line("weights", Ci, values), line("biases", Ci, values)] if self.affine
                else zero_weights())
        per_element = NORM_STATS_FLOPS + (AFFINE_FLOPS if self.affine else 0)
        return [*rows, line("FLOPs (full)", per_element * _elements(in_shape), values)]

    def probe_module(self, in_shape: Shape) -> nn.Module:
        from torch import nn

        return nn.Identity()  # see the class docstring: the field is unchanged


def _elements(in_shape: Shape) -> Any:  # a sympy expression; sympy is imported lazily
    from archcalc.symbolic import Ci, Hin, L, Win

    return {3: Ci * Hin * Win, 2: Ci * L}.get(len(in_shape), Ci)


def _symbol_values(in_shape: Shape) -> dict[Any, int]:
    from archcalc.symbolic import Ci, Hin, L, Win

    values: dict[Any, int] = {Ci: in_shape[0]}
    if len(in_shape) == 3:
        values.update({Hin: in_shape[1], Win: in_shape[2]})
    if len(in_shape) == 2:
        values[L] = in_shape[1]
    return values


@register
class LayerNorm(_SampleNorm):
    """Normalise each position over its C channels (ConvNeXt's LayerNorm on (C, H, W),
    torchvision's ``LayerNorm2d``), or a vector over its N features (``nn.LayerNorm(N)``).
    ``affine`` is torch's ``elementwise_affine``: C scales and C shifts. torch's default eps
    is 1e-5; ConvNeXt uses eps=1e-6."""

    eps: float = 1e-5
    affine: bool = True

    kind = "layernorm"
    notation = Notation("layernorm|ln", {"eps": "eps", "affine": "affine",
                                         "elementwise_affine": "affine"},
                        "layernorm ln (over channels at each position, or over a vector); "
                        "eps, affine (elementwise_affine)")

    @classmethod
    def from_notation(cls, m: re.Match[str], opts: Options, fail: Fail) -> LayerNorm:
        return cls(opts.number("eps", 1e-5, 0.0, 1.0), opts.boolean("affine", True))

    def title(self) -> str:
        return "LN"

    def spec(self) -> str:
        return f"ln eps={num(self.eps)} affine={flag_str(self.affine)}"

    def torch_module(self, in_shape: Shape) -> nn.Module:
        from torch import nn

        from archcalc.backends.modules import ChannelLayerNorm

        norm = ChannelLayerNorm if len(in_shape) > 1 else nn.LayerNorm
        return norm(in_shape[0], eps=self.eps, elementwise_affine=self.affine)


@register
class GroupNorm(_SampleNorm):
    """``nn.GroupNorm(groups, C)``: statistics over each group of C/groups channels and the
    whole map; ``affine``: C scales and C shifts. ``groups`` is required (torch has no
    default; Wu & He use 32): groups=1 is LayerNorm over (C, H, W), groups=C is instance
    norm with a per-channel affine."""

    groups: int = 1
    eps: float = 1e-5
    affine: bool = True

    kind = "groupnorm"
    notation = Notation("groupnorm|gn", {"groups": "groups", "g": "groups", "eps": "eps",
                                         "affine": "affine"},
                        "groupnorm gn groups=G (G divides the channels; statistics over "
                        "H, W: field unchanged); eps, affine")

    @classmethod
    def from_notation(cls, m: re.Match[str], opts: Options, fail: Fail) -> GroupNorm:
        if opts.raw("groups") is None:
            raise fail(None, f"{m.group()} needs groups=G (the number of channel groups; "
                             "Wu & He 2018 use 32)")
        return cls(groups=opts.integer("groups", 1), eps=opts.number("eps", 1e-5, 0.0, 1.0),
                   affine=opts.boolean("affine", True))

    def title(self) -> str:
        return f"GN{self.groups}"

    def spec(self) -> str:
        return f"gn groups={self.groups} eps={num(self.eps)} affine={flag_str(self.affine)}"

    def output_shape(self, shape: Shape, loc: Loc) -> Shape:
        if shape[0] % self.groups:
            raise SpecError(f"groupnorm groups={self.groups} must divide the {shape[0]} "
                            "channels", loc)
        return shape

    def formulas(self, in_shape: Shape, out_shape: Shape) -> list[FormulaLine]:
        from archcalc.symbolic import G, line

        values = {**_symbol_values(in_shape), G: self.groups}
        group = line("elements per group", _elements(in_shape) / G, values)
        return [*super().formulas(in_shape, out_shape), group]

    def torch_module(self, in_shape: Shape) -> nn.Module:
        from torch import nn

        return nn.GroupNorm(self.groups, in_shape[0], eps=self.eps, affine=self.affine)


@register
class InstanceNorm(_SampleNorm):
    """``nn.InstanceNorm2d``: each channel of each sample over its H x W map. As in torch,
    ``affine`` is off by default and no running statistics are kept (track_running_stats
    false), so there are no buffers and inference uses the sample's own statistics."""

    eps: float = 1e-5
    affine: bool = False

    kind = "instancenorm"
    notation = Notation("instancenorm", {"eps": "eps", "affine": "affine"},
                        "instancenorm (feature maps; statistics over H, W: field unchanged; "
                        "no running stats); eps, affine (default false)")

    @classmethod
    def from_notation(cls, m: re.Match[str], opts: Options, fail: Fail) -> InstanceNorm:
        return cls(opts.number("eps", 1e-5, 0.0, 1.0), opts.boolean("affine", False))

    def title(self) -> str:
        return "IN"

    def spec(self) -> str:
        return f"instancenorm eps={num(self.eps)} affine={flag_str(self.affine)}"

    def output_shape(self, shape: Shape, loc: Loc) -> Shape:
        return channels_and_positions(self.kind, shape, loc)

    def torch_module(self, in_shape: Shape) -> nn.Module:
        from torch import nn

        norm = nn.InstanceNorm2d if len(in_shape) == 3 else nn.InstanceNorm1d
        return norm(in_shape[0], eps=self.eps, affine=self.affine)


@register
class LayerScale(ShapeKeeping, Kind):
    """ConvNeXt's layer scale: ``x * gamma`` with one learnt factor per channel (C weights,
    no bias), the last layer of each block's residual body. ``init`` (ConvNeXt: 1e-6) sets
    gamma in the torch module; it changes no count. Full FLOPs: one multiply per element;
    no tool counts it (torchinfo counts only parameters named weight or bias, and both timm
    (``gamma``) and torchvision (``layer_scale``) name it otherwise; fvcore skips aten::mul).
    Pointwise: the field is unchanged."""

    init: float = 1e-6

    kind = "layerscale"
    notation = Notation("layerscale", {"init": "init"},
                        "layerscale (x * gamma, one learnt factor per channel); init")

    @classmethod
    def from_notation(cls, m: re.Match[str], opts: Options, fail: Fail) -> LayerScale:
        return cls(opts.number("init", 1e-6, -1e6, 1e6))

    def title(self) -> str:
        return "LAYERSCALE"

    def spec(self) -> str:
        return f"layerscale init={num(self.init)}"

    def parameters(self, in_shape: Shape) -> Params:
        return Params(in_shape[0], 0, 0)

    def weight_formula(self, in_shape: Shape) -> WeightFormula:
        return WeightFormula(((in_shape[0],),))

    def operations(self, in_shape: Shape, out_shape: Shape) -> Ops:
        return Ops(scale=math.prod(out_shape))

    def allocates(self) -> bool:
        return True  # x * gamma is a new tensor in torchvision's CNBlock and timm's default

    def formulas(self, in_shape: Shape, out_shape: Shape) -> list[FormulaLine]:
        from archcalc.symbolic import Ci, line

        values = _symbol_values(in_shape)
        return [line("weights", Ci, values), line("multiplies", _elements(in_shape), values)]

    def torch_module(self, in_shape: Shape) -> nn.Module:
        from archcalc.backends.modules import LayerScale as LayerScaleModule

        return LayerScaleModule(in_shape[0], len(in_shape) - 1, self.init)

    def probe_module(self, in_shape: Shape) -> nn.Module:
        from torch import nn

        return nn.Identity()  # a positive per-channel factor: the field is unchanged
