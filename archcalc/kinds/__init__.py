"""The layer kinds: one class per kind, each holding every rule about it (see
:mod:`archcalc.kinds.base`), grouped by family, and the registry the parser reads."""

from __future__ import annotations

import re

from archcalc.errors import shorten, suggest
from archcalc.kinds.activation import Activation, PReLU
from archcalc.kinds.base import REGISTRY, Block, Kind, Notation, WeightFormula, register
from archcalc.kinds.blocks import (
    Add,
    ChannelShuffle,
    Concat,
    Gate,
    Residual,
    ShortcutKind,
    Split,
    ZeroPadShortcut,
)
from archcalc.kinds.conv import Conv, DepthwiseConv
from archcalc.kinds.heads import Head
from archcalc.kinds.linear import Linear
from archcalc.kinds.names import From, Keep
from archcalc.kinds.norm import LRN, BatchNorm, GroupNorm, InstanceNorm, LayerNorm, LayerScale
from archcalc.kinds.pad import Pad
from archcalc.kinds.pool import AdaptivePool, GlobalPool, Pool
from archcalc.kinds.preprocess import Rescale, Standardize
from archcalc.kinds.regularize import Dropout, StochasticDepth
from archcalc.kinds.reshape import Flatten
from archcalc.kinds.upsample import ConvTranspose, Upsample
from archcalc.notation import Fail, Options, RawOption

__all__ = [
    "LRN",
    "REGISTRY",
    "Activation",
    "AdaptivePool",
    "Add",
    "BatchNorm",
    "Block",
    "ChannelShuffle",
    "Concat",
    "Conv",
    "ConvTranspose",
    "DepthwiseConv",
    "Dropout",
    "Flatten",
    "From",
    "Gate",
    "GlobalPool",
    "GroupNorm",
    "Head",
    "InstanceNorm",
    "Keep",
    "Kind",
    "LayerNorm",
    "LayerScale",
    "Linear",
    "Notation",
    "PReLU",
    "Pad",
    "Pool",
    "Rescale",
    "Residual",
    "ShortcutKind",
    "Split",
    "Standardize",
    "StochasticDepth",
    "Upsample",
    "WeightFormula",
    "ZeroPadShortcut",
    "build_layer",
    "grammar",
    "layer_names",
    "register",
]


def build_layer(head: str, raw: list[RawOption], fail: Fail) -> Kind:
    """One layer from its name as written and its OPTION=VALUE pairs: the first registered
    kind whose notation matches the whole name builds it."""
    for cls in REGISTRY.values():
        if cls.notation is None:
            continue
        m = cls.notation.match(head)
        if m is not None:
            opts = Options(head.lower(), cls.notation.options, raw, fail)
            return cls.from_notation(m, opts, fail)
    raise fail(None, f"unknown layer {shorten(head)!r}{suggest(head, layer_names())} (e.g. "
                     "conv3-64, maxpool, FC-4096, bn, relu, soft-max; see 'archcalc spec "
                     "--help')")


def layer_names() -> list[str]:
    """The layer names the grammar's help shows (``relu``, ``conv3-64``, ``maxpool``...):
    what an unknown name is compared with to suggest one."""
    names = []
    for cls in REGISTRY.values():
        if cls.notation is not None:
            for word in re.split(r"[\s,;|]+", re.sub(r"\([^()]*\)", " ", cls.notation.grammar)):
                if cls.notation.match(word):
                    names.append(word.lower())
    return names


def grammar() -> list[str]:
    """One line per writable kind, for the spec grammar's help."""
    return [cls.notation.grammar for cls in REGISTRY.values() if cls.notation is not None]
