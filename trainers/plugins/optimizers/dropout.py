"""Dropout in its classic and inverted forms, and the deterministic test network of each.

Classic dropout (Srivastava et al. 2014, the form the homework describes): in training each
unit is multiplied by a Bernoulli(q) mask, q = 1 − p, with no rescaling; the test network
keeps every unit and multiplies the weights leaving the layer by q, so each unit's input is
the mean of what it received in training (exactly so for a linear layer). Inverted dropout
(torch's ``nn.Dropout``) divides the kept units by q in training instead, so its test network
uses the weights unchanged. A classic network with weights W and an inverted one with q W
draw the same masks, compute the same function in training and have the same test network.

:func:`weight_scaled_network` builds that test network explicitly, dropout removed and
weights scaled, so reported test accuracy comes from the network the homework asks for. In eval
mode a classic :class:`Dropout` multiplies by q, the same function, so ``model.eval()`` is
never silently wrong.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn

Style = Literal["classic", "inverted"]
STYLES: tuple[Style, ...] = ("classic", "inverted")
# Modules a dropout may sit before without changing what "the weights leaving it" means.
PASS_THROUGH = (nn.Flatten, nn.Identity)


class Dropout(nn.Module):
    """Drop each unit with probability ``p``; ``style`` says where the 1/q rescaling goes."""

    def __init__(self, p: float, style: Style = "classic") -> None:
        super().__init__()
        if not 0 <= p < 1:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        if style not in STYLES:
            raise ValueError(f"dropout style must be one of {', '.join(STYLES)}, got {style!r}")
        self.p, self.style = p, style

    @property
    def keep(self) -> float:
        """The keep probability q = 1 - p."""
        return 1.0 - self.p

    @property
    def test_scale(self) -> float:
        """What the test network multiplies the weights leaving this layer by."""
        return self.keep if self.style == "classic" else 1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return x * self.test_scale if self.test_scale != 1.0 else x
        if self.p == 0:
            return x
        mask = torch.empty_like(x).bernoulli_(self.keep)
        if self.style == "inverted":
            mask.div_(self.keep)
        return x * mask

    def extra_repr(self) -> str:
        return f"p={self.p}, style={self.style}"


def with_dropout(model: nn.Sequential, probs: Sequence[float], style: Style) -> nn.Sequential:
    """``model`` with its ``nn.Dropout`` layers, in order, replaced by :class:`Dropout`
    of the given probabilities (the spec fixes where dropout goes, the config how much)."""
    names = [name for name, m in model.named_children() if isinstance(m, nn.Dropout)]
    if len(names) != len(probs):
        raise ValueError(f"the model has {len(names)} dropout layers, {len(probs)} "
                         "probabilities given")
    for name, p in zip(names, probs, strict=True):
        setattr(model, name, Dropout(p, style))
    return model


def weight_scaled_network(model: nn.Sequential) -> nn.Sequential:
    """A deterministic copy of ``model`` for testing: every dropout removed and the weights
    of the linear layer it feeds multiplied by its test scale (q for classic, 1 inverted).

    TypeError if a dropout does not feed a linear layer directly (only a Flatten may sit
    between), since then no weights carry the scale exactly.
    """
    layers = [copy.deepcopy(m) for m in model.children()]
    kept: list[nn.Module] = []
    scale = 1.0
    for layer in layers:
        if isinstance(layer, Dropout | nn.Dropout):
            scale *= layer.test_scale if isinstance(layer, Dropout) else 1.0
            continue
        if isinstance(layer, nn.Linear) and scale != 1.0:
            with torch.no_grad():
                layer.weight.mul_(scale)
            scale = 1.0
        elif scale != 1.0 and not isinstance(layer, PASS_THROUGH):
            raise TypeError(f"a dropout layer feeds {type(layer).__name__}, not a linear "
                            "layer: its weights cannot carry the test-time scale")
        kept.append(layer)
    if scale != 1.0:
        raise TypeError("the last layer is a dropout: no weights leave it to scale")
    return nn.Sequential(*kept).eval()

