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
        x = x[:, :, ::self.stride[0], ::self.stride[1]]
        extra = self.out_channels - x.shape[1]
        return F.pad(x, (0, 0, 0, 0, extra // 2, extra - extra // 2))


class ConcatBranches(nn.Module):
    """Parallel branches on the same input, joined along channels."""

    def __init__(self, branches: list[nn.Sequential]) -> None:
        super().__init__()
        self.branches = nn.ModuleList(branches)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([branch(x) for branch in self.branches], dim=1)


class ResidualBlock(nn.Module):
    """``body(x) + shortcut(x)``; an empty shortcut is the identity."""

    def __init__(self, body: nn.Sequential, shortcut: nn.Sequential) -> None:
        super().__init__()
        self.body, self.shortcut = body, shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.shortcut(x)
