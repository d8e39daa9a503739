"""torch modules for archcalc kinds that torch has no module for. Imported by the kinds'
``torch_module`` methods, so only when a module is built."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class FlattenLinear(nn.Linear):
    """A fully connected layer that flattens a feature map first, as the papers write FC."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.flatten(1))


class ZeroPad(nn.Module):
    """He et al. option A: subsample by ``stride``, zero channels, (Cout-Cin)//2 in front."""

    def __init__(self, out_channels: int, stride: tuple[int, int]) -> None:
        super().__init__()
        self.out_channels, self.stride = out_channels, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """On a sequence (B, C, L), the stride's first number subsamples L."""
        x = x[(slice(None), slice(None), *(slice(None, None, s) for s in self.stride))
              [:x.dim()]]
        extra = self.out_channels - x.shape[1]
        return F.pad(x, (0, 0) * (x.dim() - 2) + (extra // 2, extra - extra // 2))


class ConcatBranches(nn.Module):
    """Parallel branches on the same input, joined along channels."""

    def __init__(self, branches: list[nn.Sequential]) -> None:
        super().__init__()
        self.branches = nn.ModuleList(branches)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([branch(x) for branch in self.branches], dim=1)


class SpatialMean(nn.Module):
    """``x.mean(spatial axes, keepdim=True)``: global average pooling written as a mean
    (archcalc's ``gap mean=true``), which tools trace as aten::mean."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(tuple(range(2, x.dim())), keepdim=True)


class AddBranches(nn.Module):
    """Parallel branches on the same input, summed (archcalc's ``add`` block)."""

    def __init__(self, branches: list[nn.Sequential], inplace: bool = False) -> None:
        super().__init__()
        self.branches = nn.ModuleList(branches)
        self.inplace = inplace

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs = [branch(x) for branch in self.branches]
        total = outputs[0]
        for out in outputs[1:]:
            total = total.add_(out) if self.inplace else total + out
        return total


class ResidualBlock(nn.Module):
    """``body(x) + shortcut(x)``; an empty shortcut is the identity."""

    def __init__(self, body: nn.Sequential, shortcut: nn.Sequential) -> None:
        super().__init__()
        self.body, self.shortcut = body, shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.shortcut(x)


class ChannelLayerNorm(nn.LayerNorm):
    """LayerNorm over the channels of each position of a (B, C, H, W) map or a (B, C, L)
    sequence: ConvNeXt's channels-first LayerNorm (torchvision's ``LayerNorm2d``: move the
    channels last, ``F.layer_norm`` over C, move them back). A subclass of nn.LayerNorm, so
    counting tools see one leaf with ``weight`` and ``bias`` and fvcore one
    ``aten::layer_norm``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.movedim(1, -1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.movedim(-1, 1)


class LayerScale(nn.Module):
    """ConvNeXt's layer scale (Touvron et al. 2021, CaiT): ``x * gamma``, one learnt factor
    per channel, initialised to ``init``. The parameter is named ``gamma`` as in timm
    (torchvision's CNBlock calls it ``layer_scale``); neither is a ``weight``, so torchinfo
    counts no Mult-Adds for it."""

    def __init__(self, channels: int, spatial_axes: int, init: float = 1e-6) -> None:
        super().__init__()
        self.init = init
        shape = (channels, *(1,) * spatial_axes)
        self.gamma = nn.Parameter(torch.empty(shape))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.constant_(self.gamma, self.init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


class StochasticDepth(nn.Module):
    """torchvision.ops.StochasticDepth (Huang et al. 2016): in training, zero the whole input
    of a sample (``row``) or of the batch (``batch``) with probability ``p`` and scale the
    survivors by 1/(1-p); the identity at inference. Written out here because torchvision is
    not a dependency; same semantics as torchvision.ops.stochastic_depth."""

    def __init__(self, p: float, mode: str = "row") -> None:
        super().__init__()
        if not 0.0 <= p <= 1.0 or mode not in ("row", "batch"):
            raise ValueError(f"p must be in [0, 1] and mode row or batch, not {p}, {mode!r}")
        self.p, self.mode = p, mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        survival = 1.0 - self.p
        size = [x.shape[0]] + [1] * (x.dim() - 1) if self.mode == "row" else [1] * x.dim()
        noise = torch.empty(size, dtype=x.dtype, device=x.device).bernoulli_(survival)
        if survival > 0.0:
            noise.div_(survival)
        return x * noise

    def extra_repr(self) -> str:
        return f"p={self.p}, mode={self.mode!r}"


class GateBlock(nn.Module):
    """``x * body(x)``, the body's output broadcast over x (squeeze-and-excitation)."""

    def __init__(self, body: nn.Sequential) -> None:
        super().__init__()
        self.body = body

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.body(x)


class SplitBranches(nn.Module):
    """ShuffleNetV2's channel split: equal channel shares (torch.chunk), one branch each,
    outputs concatenated along channels; an empty branch passes its share through."""

    def __init__(self, branches: list[nn.Sequential]) -> None:
        super().__init__()
        self.branches = nn.ModuleList(branches)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shares = x.chunk(len(self.branches), dim=1)
        return torch.cat([b(s) for b, s in zip(self.branches, shares, strict=True)], dim=1)


class PaddedConv2d(nn.Conv2d):
    """A convolution that zero-pads its input by ``pads`` = (left, right, top, bottom) first:
    asymmetric padding (torch's padding='same' with an even kernel, TensorFlow's SAME), at any
    stride. A Conv2d subclass, so counting tools see one leaf convolution."""

    def __init__(self, in_channels: int, out_channels: int, kernel: tuple[int, int],
                 stride: tuple[int, int], pads: tuple[int, int, int, int],
                 dilation: tuple[int, int], groups: int, bias: bool) -> None:
        super().__init__(in_channels, out_channels, kernel, stride, 0, dilation, groups, bias)
        self.pads = pads

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, self.pads))

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, pads(l, r, t, b)={self.pads}"


class PaddedConv1d(nn.Conv1d):
    """:class:`PaddedConv2d` along a sequence: zero-pads (start, end) first."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int,
                 pads: tuple[int, int], dilation: int, groups: int, bias: bool) -> None:
        super().__init__(in_channels, out_channels, kernel, stride, 0, dilation, groups, bias)
        self.pads = pads

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, self.pads))

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, pads(start, end)={self.pads}"


class HeadBlock(nn.Module):
    """An extra output: runs ``body`` on x, keeps the result as ``output`` (for a training
    loss on the auxiliary classifier) and passes x on unchanged."""

    def __init__(self, body: nn.Sequential) -> None:
        super().__init__()
        self.body = body
        self.output: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.output = self.body(x)
        return x

    def __getstate__(self) -> dict[str, object]:
        """Copies and pickles leave the last output behind (a non-leaf tensor cannot be
        deep-copied, and it is no part of the model)."""
        state = self.__dict__.copy()
        state["output"] = None
        return state


class ProbeConvTranspose2d(nn.ConvTranspose2d):
    """The receptive-field probe's transposed convolution: weights 1/(Cout/g*kh*kw) and no
    bias, as the probe sets Conv2d's (it does not know transposed convs); it takes the dtype
    of its input, since the probe swaps it in after choosing its own."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        with torch.no_grad():
            self.weight.fill_(1.0 / self.weight[0].numel())
            if self.bias is not None:
                self.bias.zero_()

    def forward(self, x: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
        if self.weight.dtype != x.dtype:
            self.to(x.dtype)
        return super().forward(x, output_size)


class Crop2d(nn.Module):
    """Cuts ``top``, ``bottom``, ``left`` and ``right`` pixels off each map, as Keras'
    Cropping2D: a slice, so the output is a view of the input (archcalc's ``crop``; the
    U-Net's "copy and crop")."""

    def __init__(self, top: int, bottom: int, left: int, right: int) -> None:
        super().__init__()
        self.top, self.bottom, self.left, self.right = top, bottom, left, right

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2], x.shape[-1]
        return x[..., self.top:h - self.bottom, self.left:w - self.right]

    def extra_repr(self) -> str:
        return f"top={self.top}, bottom={self.bottom}, left={self.left}, right={self.right}"
