"""Regularisers that change nothing at inference: ``dropout`` and ``stochasticdepth``
(``droppath``)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from archcalc.algebra import Ops
from archcalc.kinds.base import Kind, NoParameters, Notation, ShapeKeeping, num, register
from archcalc.notation import Fail, Options

if TYPE_CHECKING:
    from torch import nn

    from archcalc.layers import Shape


@register
class Dropout(NoParameters, ShapeKeeping, Kind):
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

    def spec(self) -> str:
        return f"dropout-{num(self.p)}"

    def operations(self, in_shape: Shape, out_shape: Shape) -> Ops:
        return Ops()  # the identity at inference

    def allocates(self) -> bool:
        return False

    def stored(self) -> bool:
        return True  # training keeps the masked output for the backward pass

    def torch_module(self, in_shape: Shape) -> nn.Module:
        from torch import nn

        return nn.Dropout(self.p)

    def probe_module(self, in_shape: Shape) -> nn.Module:
        from torch import nn

        return nn.Identity()


@register
class StochasticDepth(NoParameters, ShapeKeeping, Kind):
    """torchvision's ``StochasticDepth(p, mode)`` (Huang et al. 2016; timm's DropPath): in
    training, a sample's whole input (``mode=row``, the default) or the batch's
    (``mode=batch``) is zeroed with probability ``p`` and the rest scaled by 1/(1-p); at
    inference it is the identity: no parameters, no operations, field unchanged.

    Where it goes: inside ``residual { ... }`` as the body's last layer, so a dropped sample
    keeps only its shortcut (a ConvNeXt block: ``residual { conv7-96 g=96 p=3; ln
    eps=1e-6; conv1-384; gelu; conv1-96; layerscale; droppath-0.1 }``). Anywhere else it
    would drop the sample's whole signal; archcalc accepts that, as torch does. The default
    p, 0.1, is torchvision's ConvNeXt-T ``stochastic_depth_prob`` (which it scales linearly
    over the blocks). Like dropout it allocates nothing at inference, and its masked output
    is a new tensor in training."""

    p: float = 0.1
    mode: str = "row"

    kind = "stochasticdepth"
    notation = Notation(r"(?:stochasticdepth|droppath)(?:-([0-9]*\.?[0-9]+))?",
                        {"p": "p", "mode": "mode"},
                        "stochasticdepth droppath droppath-0.1 (probability, default 0.1; "
                        "the last layer of a residual body); p, mode=row|batch")

    @classmethod
    def from_notation(cls, m: re.Match[str], opts: Options, fail: Fail) -> StochasticDepth:
        default = float(m.group(1)) if m.group(1) else 0.1
        if not 0.0 <= default <= 1.0:
            raise fail(None, f"drop-path probability must be in [0, 1], not {m.group(1)}",
                       m.start(1))
        mode = (opts.raw("mode") or "row").lower()
        if mode not in ("row", "batch"):
            opt = opts.values["mode"]
            raise fail(opt.tok, f"mode must be row or batch, not {opt.value!r}", opt.offset)
        return cls(opts.number("p", default, 0.0, 1.0), mode)

    def title(self) -> str:
        return "DROPPATH"

    def spec(self) -> str:
        return f"droppath-{num(self.p)} mode={self.mode}"

    def operations(self, in_shape: Shape, out_shape: Shape) -> Ops:
        return Ops()  # the identity at inference

    def allocates(self) -> bool:
        return False

    def stored(self) -> bool:
        return True  # as dropout: training multiplies by the mask into a new tensor

    def torch_module(self, in_shape: Shape) -> nn.Module:
        from archcalc.backends.modules import StochasticDepth as StochasticDepthModule

        return StochasticDepthModule(self.p, self.mode)

    def probe_module(self, in_shape: Shape) -> nn.Module:
        from torch import nn

        return nn.Identity()
