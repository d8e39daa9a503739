"""Counting conventions: how a layer's operations become one MAC and one FLOP number.

Existing counters disagree on MACs vs FLOPs, bias additions and which layers count at all.
Each preset here reproduces one tool exactly; ``full`` counts everything and says so.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from archcalc.algebra import Ops
from archcalc.errors import UsageError


@dataclass(frozen=True)
class Convention:
    name: str
    summary: str  # one line for table footers
    macs: Callable[[Ops], int]
    flops: Callable[[Ops], int]


def _full_flops(ops: Ops) -> int:
    return (2 * ops.macs + ops.bias + 2 * ops.norm + ops.act + ops.pool + ops.add + ops.lrn)


def _torchinfo_macs(ops: Ops) -> int:
    # torchinfo: every parameter named weight/bias, times output positions for convs.
    return ops.macs + ops.bias + ops.norm_params


def _fvcore_macs(ops: Ops) -> int:
    # fvcore (eval mode): conv/linear without bias, BN 1 per element (+1 if affine),
    # adaptive average pooling 1 per input element; pools, activations and adds are skipped.
    return ops.macs + ops.norm + ops.norm_affine + ops.pool_inputs


CONVENTIONS: dict[str, Convention] = {
    c.name: c
    for c in (
        Convention(
            "full",
            "MACs: conv/linear multiply-accumulates. FLOPs: 2 per MAC + bias adds + BN 2/elem "
            "+ activations 1/elem (softmax 3) + pooling + residual adds + LRN",
            lambda o: o.macs,
            _full_flops,
        ),
        Convention(
            "torchinfo",
            "torchinfo Mult-Adds: conv (weights+bias)*output positions, linear and BN "
            "parameters; FLOPs = 2*MACs",
            _torchinfo_macs,
            lambda o: 2 * _torchinfo_macs(o),
        ),
        Convention(
            "fvcore",
            "fvcore: one per multiply-add of conv/linear (bias ignored), BN and adaptive "
            "avg-pool elementwise; FLOPs = 2*MACs",
            _fvcore_macs,
            lambda o: 2 * _fvcore_macs(o),
        ),
        Convention(
            "flopcounter",
            "torch FlopCounterMode: 2 FLOPs per conv/matmul multiply-add, nothing else; "
            "MACs = FLOPs/2",
            lambda o: o.macs,
            lambda o: 2 * o.macs,
        ),
    )
}


def get_convention(name: str) -> Convention:
    try:
        return CONVENTIONS[name]
    except KeyError:
        raise UsageError(f"unknown convention {name!r} (choose from "
                         f"{', '.join(CONVENTIONS)})") from None
