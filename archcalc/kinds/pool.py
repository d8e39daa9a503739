"""Pooling: windows (``maxpool``, ``avgpool3 s=2``), global pooling (``gap``) and adaptive
pooling to a fixed size (``adaptiveavgpool7``, torch's AdaptiveAvgPool2d)."""

from __future__ import annotations

import functools
import math
import re
from dataclasses import replace
from typing import TYPE_CHECKING, Literal

from archcalc.algebra import RF, Ops
from archcalc.errors import Loc, SpecError
from archcalc.kinds.base import (
    Kind,
    NoParameters,
    Notation,
    Pair,
    feature_map,
    flag_str,
    line_pair,
    pair_str,
    register,
    window,
)
from archcalc.notation import Fail, Options, sizes

if TYPE_CHECKING:
    from torch import nn

    from archcalc.layers import Shape
    from archcalc.symbolic import FormulaLine


@register
class Pool(NoParameters, Kind):
    """A sliding window. Average pooling divides by the whole window, padding included
    (torch's count_include_pad default); ``count_pad=false`` divides by the input elements
    the window covers, as TensorFlow's SAME pooling (Keras' ``padding='same'``, InceptionV3's
    3x3 average pools) and torch's count_include_pad=False, and then sums those only."""

    op: Literal["max", "avg"]
    kernel: Pair = (2, 2)
    stride: Pair = (2, 2)
    padding: Pair = (0, 0)
    ceil_mode: bool = False
    count_pad: bool = True

    kind = "pool"
    notation = Notation(
        r"(max|avg)?pool([0-9]+(?:x[0-9]+)?)?",
        {"s": "stride", "stride": "stride", "p": "pad", "pad": "pad", "padding": "pad",
         "ceil": "ceil", "count-pad": "count-pad"},
        "maxpool avgpool3 pool2 (kernel, default 2; stride defaults to the kernel); s, p, "
        "ceil (torch's ceil_mode), count-pad (average pooling divides by the padding too, "
        "as torch's default; false: by the input covered, as TensorFlow's SAME)")

    @classmethod
    def from_notation(cls, m: re.Match[str], opts: Options, fail: Fail) -> Pool:
        kernel = sizes(m, 2, fail, "pool kernel") if m.group(2) else (2, 2)
        return cls("avg" if (m.group(1) or "").lower() == "avg" else "max", kernel,
                   opts.pair("stride", kernel), opts.pair("pad", (0, 0), minimum=0),
                   opts.boolean("ceil", False), opts.boolean("count-pad", True))

    def title(self) -> str:
        return f"{'AVG' if self.op == 'avg' else ''}POOL{pair_str(self.kernel)}"

    def spec(self) -> str:
        return (f"{self.op}pool{pair_str(self.kernel)} s={pair_str(self.stride)} "
                f"p={pair_str(self.padding)} ceil={flag_str(self.ceil_mode)} "
                f"count-pad={flag_str(self.count_pad)}")

    def on_sequence(self, loc: Loc | None) -> Pool:
        """torch's MaxPool1d / AvgPool1d."""
        return replace(self, kernel=line_pair(self.kernel, 1, "pool kernel", loc),
                       stride=line_pair(self.stride, 1, "stride", loc),
                       padding=line_pair(self.padding, 0, "padding", loc))

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

    def operations(self, in_shape: Shape, out_shape: Shape) -> Ops:
        if self.op == "avg" and not self.count_pad:  # the covered elements of each window
            rows, cols = (_covered(n, out, k, st, p) for n, out, k, st, p in zip(
                in_shape[1:], out_shape[1:], self.kernel, self.stride, self.padding,
                strict=True))
            return Ops(pool=in_shape[0] * rows * cols)
        size = self.kernel[0] * self.kernel[1]
        return Ops(pool=math.prod(out_shape) * (size - 1 if self.op == "max" else size))

    def receptive_field(self, rf: RF, in_shape: Shape) -> RF:
        return rf.step(self.kernel, self.stride, self.padding)

    def subsampling(self) -> Pair:
        return self.stride

    def allocates(self) -> bool:
        return True

    def formulas(self, in_shape: Shape, out_shape: Shape) -> list[FormulaLine]:
        import sympy as sp

        from archcalc.symbolic import Ci, Hin, Ho, Kh, Kw, P, St, Wo, line

        values = {Ci: in_shape[0], Hin: in_shape[1], Kh: self.kernel[0], Kw: self.kernel[1],
                  P: self.padding[0], St: self.stride[0], Ho: out_shape[1], Wo: out_shape[2]}
        if self.ceil_mode:  # torch's last-window rule: the last window starts in the input
            size = sp.Min(sp.ceiling((Hin + 2 * P - Kh) / St) + 1, sp.ceiling((Hin + P) / St))
        else:
            size = sp.floor((Hin + 2 * P - Kh) / St) + 1
        compares = 1 if self.op == "max" else 0
        ops: sp.Expr = Ho * Wo * Ci * (Kh * Kw - compares)
        if self.op == "avg" and not self.count_pad:  # the windows' covered inputs, counted
            ops = sp.Integer(self.operations(in_shape, out_shape).pool)
        return [line("H_out", size, values), line("weights", sp.Integer(0), values),
                line("window ops", ops, values)]

    def torch_module(self, in_shape: Shape) -> nn.Module:
        from torch import nn

        if self.op == "max":
            if len(in_shape) == 2:
                line = self.on_sequence(None)
                return nn.MaxPool1d(line.kernel[0], line.stride[0], line.padding[0],
                                    ceil_mode=self.ceil_mode)
            return nn.MaxPool2d(self.kernel, self.stride, self.padding, ceil_mode=self.ceil_mode)
        return self._average(in_shape)

    def probe_module(self, in_shape: Shape) -> nn.Module:
        """Max pooling routes the gradient to one input; averaging reaches the whole window."""
        return self._average(in_shape)

    def _average(self, in_shape: Shape) -> nn.Module:
        from torch import nn

        if len(in_shape) == 2:
            line = self.on_sequence(None)
            return nn.AvgPool1d(line.kernel[0], line.stride[0], line.padding[0],
                                ceil_mode=self.ceil_mode, count_include_pad=self.count_pad)
        return nn.AvgPool2d(self.kernel, self.stride, self.padding, ceil_mode=self.ceil_mode,
                            count_include_pad=self.count_pad)


def _covered(size: int, out: int, kernel: int, stride: int, pad: int) -> int:
    """Input positions the ``out`` windows along one axis cover, summed over the windows."""
    return sum(min(i * stride - pad + kernel, size) - max(i * stride - pad, 0)
               for i in range(out))


_GLOBAL = {"gap": "avg", "globalavgpool": "avg", "globalmaxpool": "max", "gmp": "max"}


@register
class GlobalPool(NoParameters, Kind):
    """Adaptive pooling to 1x1, as torch's AdaptiveAvgPool2d(1); output stays (C, 1, 1).
    ``mean``: computed as ``x.mean((2, 3), keepdim=True)`` (MobileNetV2's head): the same
    numbers, but fvcore counts aten::adaptive_avg_pool2d and not aten::mean."""

    op: Literal["max", "avg"] = "avg"
    on_line: bool = False  # the twin of a sequence layer: see _pooled_inputs
    mean: bool = False

    kind = "globalpool"
    notation = Notation("|".join(_GLOBAL), {"mean": "mean"},
                        "gap globalavgpool, globalmaxpool gmp (to 1x1, channels kept); "
                        "mean=true: gap as x.mean((2, 3)), which fvcore does not count")

    @classmethod
    def from_notation(cls, m: re.Match[str], opts: Options, fail: Fail) -> GlobalPool:
        op: Literal["max", "avg"] = "avg" if _GLOBAL[m.group().lower()] == "avg" else "max"
        mean = opts.boolean("mean", False)
        if mean and op == "max":
            raise fail(opts.values["mean"].tok, "mean=true is global average pooling: "
                                                "write gap mean=true")
        return cls(op, mean=mean)

    def title(self) -> str:
        return "GAP" if self.op == "avg" else "GMP"

    def spec(self) -> str:
        return f"gap mean={flag_str(self.mean)}" if self.op == "avg" else "gmp"

    def on_sequence(self, loc: Loc | None) -> GlobalPool:
        """To (C, 1), as torch's AdaptiveAvgPool1d(1)."""
        return replace(self, on_line=True)

    def output_shape(self, shape: Shape, loc: Loc) -> Shape:
        c, _, _ = feature_map(self.kind, shape, loc)
        return (c, 1, 1)

    def operations(self, in_shape: Shape, out_shape: Shape) -> Ops:
        size = in_shape[1] * in_shape[2]
        return Ops(pool=math.prod(out_shape) * (size - 1 if self.op == "max" else size),
                   pool_inputs=_pooled_inputs(self.op, self.on_line or self.mean, in_shape))

    def receptive_field(self, rf: RF, in_shape: Shape) -> RF:
        return rf.spread((in_shape[1], in_shape[2]))

    def subsampling(self) -> None:
        return None

    def allocates(self) -> bool:
        return True

    def formulas(self, in_shape: Shape, out_shape: Shape) -> list[FormulaLine]:
        import sympy as sp

        from archcalc.symbolic import Ci, Hin, Win, line

        values = {Ci: in_shape[0], Hin: in_shape[1], Win: in_shape[2]}
        return [line("weights", sp.Integer(0), values),
                line("window ops", Ci * Hin * Win, values)]

    def torch_module(self, in_shape: Shape) -> nn.Module:
        from torch import nn

        if self.mean:
            from archcalc.backends.modules import SpatialMean

            return SpatialMean()
        if len(in_shape) == 2:
            return nn.AdaptiveAvgPool1d(1) if self.op == "avg" else nn.AdaptiveMaxPool1d(1)
        return nn.AdaptiveAvgPool2d(1) if self.op == "avg" else nn.AdaptiveMaxPool2d(1)

    def probe_module(self, in_shape: Shape) -> nn.Module:
        from torch import nn

        return nn.AdaptiveAvgPool1d(1) if len(in_shape) == 2 else nn.AdaptiveAvgPool2d(1)


def _pooled_inputs(op: str, uncounted: bool, in_shape: Shape) -> int:
    """Input elements of adaptive average pooling, which fvcore counts one each for
    aten::adaptive_avg_pool2d; it has no rule for the 1-D op of a sequence, nor for a mean
    over the map (none then)."""
    return math.prod(in_shape) if op == "avg" and not uncounted else 0


def window_sum(size: int, out: int) -> int:
    """Sum of the sizes of torch's adaptive windows along one axis: window i spans
    [floor(i*size/out), ceil((i+1)*size/out)), and the sizes add up to
    size + out - gcd(size, out) (the floors sum to ((size-1)(out-1) + gcd - 1)/2 and the
    ceilings exceed the floors where out does not divide i*size, out - gcd times), so no
    window is visited to count them."""
    return size + out - math.gcd(size, out)


def window_equivalent(size: int, out: int) -> tuple[int, int] | None:
    """(kernel, stride) of the sliding window whose windows are torch's adaptive ones, if one
    is: when ``out`` divides ``size`` (kernel = stride = size/out), or when the remainder is
    1 (window i spans [i*s, (i+1)*s], kernel s+1, stride s = size//out: 8 -> 7 is kernel 2,
    stride 1). Otherwise window sizes or starts are uneven (9 -> 7 spans 0-1, 1-2, 2-3, 3-5,
    ...), and no single kernel and stride describe them."""
    if size % out == 0:
        return (size // out, size // out)
    if size > out and size % out == 1:
        return (size // out + 1, size // out)
    return None


_ADAPTIVE = r"(?:adaptive(avg|max)pool|a(a|m)p)([0-9]+(?:x[0-9]+)?)"


@register
class AdaptivePool(NoParameters, Kind):
    """Adaptive pooling to a fixed HxW, as torch's AdaptiveAvgPool2d((H, W)) /
    AdaptiveMaxPool2d: output window i spans input rows floor(i*In/Out) to
    ceil((i+1)*In/Out) - 1, so the output size does not depend on the input's (torchvision's
    VGG and AlexNet pool to 7x7 and 6x6 before their classifier). ``gap`` is the 1x1 case.

    Operations, exactly: average pooling sums each window and divides once (window size
    operations per output), max pooling compares (window size - 1); summed over the windows
    (:func:`window_sum`). fvcore counts aten::adaptive_avg_pool2d as one per input element
    and adaptive max pooling not at all; torchinfo and FlopCounterMode count neither.

    Receptive field: where the windows are one sliding window (:func:`window_equivalent`:
    In divisible by Out, or In = s*Out + 1) the field steps as that window; otherwise the
    units' fields differ in size or spacing, and the field is not defined from here on."""

    op: Literal["max", "avg"]
    size: Pair
    on_line: bool = False  # the twin of a sequence layer: see _pooled_inputs

    kind = "adaptivepool"
    notation = Notation(
        _ADAPTIVE, {},
        "adaptiveavgpool7 adaptivemaxpool6x6, short aap7 amp6x6 (torch's AdaptiveAvg/MaxPool2d "
        "to HxW: any input size; receptive field only where the windows are one sliding "
        "window, In % Out of 0 or 1)")

    @classmethod
    def from_notation(cls, m: re.Match[str], opts: Options, fail: Fail) -> AdaptivePool:
        op = (m.group(1) or m.group(2)).lower()
        return cls("max" if op in ("max", "m") else "avg", sizes(m, 3, fail, "output size"))

    def title(self) -> str:
        return f"ADAPTIVE{'AVG' if self.op == 'avg' else 'MAX'}POOL{pair_str(self.size)}"

    def spec(self) -> str:
        return f"adaptive{self.op}pool{pair_str(self.size)}"

    def on_sequence(self, loc: Loc | None) -> AdaptivePool:
        """To (C, n), as torch's AdaptiveAvgPool1d(n) / AdaptiveMaxPool1d(n)."""
        return replace(self, size=line_pair(self.size, 1, "output size", loc), on_line=True)

    def output_shape(self, shape: Shape, loc: Loc) -> Shape:
        c, _, _ = feature_map(self.kind, shape, loc)
        return (c, *self.size)

    def operations(self, in_shape: Shape, out_shape: Shape) -> Ops:
        c, h, w = in_shape
        visited = c * window_sum(h, self.size[0]) * window_sum(w, self.size[1])
        if self.op == "max":
            return Ops(pool=visited - math.prod(out_shape))
        return Ops(pool=visited, pool_inputs=_pooled_inputs(self.op, self.on_line, in_shape))

    def receptive_field(self, rf: RF, in_shape: Shape) -> RF | None:
        rows = window_equivalent(in_shape[1], self.size[0])
        cols = window_equivalent(in_shape[2], self.size[1])
        if rows is None or cols is None:
            return None
        return rf.step((rows[0], cols[0]), (rows[1], cols[1]), (0, 0))

    def subsampling(self) -> None:
        return None

    def allocates(self) -> bool:
        return True

    def formulas(self, in_shape: Shape, out_shape: Shape) -> list[FormulaLine]:
        import sympy as sp

        from archcalc.symbolic import Ci, Hin, Ho, Win, Wo, line

        gcd = _sympy_gcd()
        values = {Ci: in_shape[0], Hin: in_shape[1], Win: in_shape[2], Ho: out_shape[1],
                  Wo: out_shape[2]}
        visited = Ci * (Hin + Ho - gcd(Hin, Ho)) * (Win + Wo - gcd(Win, Wo))
        ops = visited - (Ci * Ho * Wo if self.op == "max" else 0)
        return [line("weights", sp.Integer(0), values), line("window ops", ops, values)]

    def torch_module(self, in_shape: Shape) -> nn.Module:
        from torch import nn

        if len(in_shape) == 2:
            size = self.on_sequence(None).size[0]
            return nn.AdaptiveMaxPool1d(size) if self.op == "max" else nn.AdaptiveAvgPool1d(size)
        if self.op == "max":
            return nn.AdaptiveMaxPool2d(self.size)
        return nn.AdaptiveAvgPool2d(self.size)

    def probe_module(self, in_shape: Shape) -> nn.Module:
        """Averaging reaches every input of a window; max would route to one."""
        from torch import nn

        if len(in_shape) == 2:
            return nn.AdaptiveAvgPool1d(self.on_sequence(None).size[0])
        return nn.AdaptiveAvgPool2d(self.size)


@functools.cache
def _sympy_gcd() -> type:
    """gcd(a, b) as a sympy function that stays symbolic until both are numbers (sympy's
    own gcd treats symbols as polynomials and gives 1)."""
    import sympy as sp

    class gcd(sp.Function):  # type: ignore[misc]  # lower case: printed as gcd(H, H_out)
        @classmethod
        def eval(cls, a: sp.Expr, b: sp.Expr) -> sp.Expr | None:
            if a.is_Integer and b.is_Integer:
                return sp.Integer(math.gcd(int(a), int(b)))
            return None

    return gcd
