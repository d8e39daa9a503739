"""Counting conventions: how a layer's operations become one MAC and one FLOP number.

Existing counters disagree on MACs vs FLOPs, bias additions and which layers count at all.
Each preset here reproduces one tool exactly; ``full`` counts everything and says so.
"""

from __future__ import annotations

from collections.abc import Callable

from archcalc.algebra import Ops
from archcalc.errors import UsageError
from archcalc.records import Record


class Convention(Record):
    name: str
    summary: str  # one line for table footers
    macs: Callable[[Ops], int]
    flops: Callable[[Ops], int]


# Layer/group/instance norm at inference, per element: the mean's add, the deviation's
# subtract, its square and the variance's add, the multiply by 1/sqrt(var + eps) (per-group
# square roots are not counted); a learnt affine adds a multiply and an add.
NORM_STATS_FLOPS = 5
AFFINE_FLOPS = 2
FVCORE_NORM_STATS = 4  # fvcore's norm_flop_counter: 4 per element, 5 with an affine


def _full_flops(ops: Ops) -> int:
    return (2 * ops.macs + ops.bias + 2 * ops.norm + ops.act + ops.pool + ops.add + ops.lrn
            + NORM_STATS_FLOPS * ops.norm_stats + AFFINE_FLOPS * ops.norm_stats_affine
            + ops.scale + ops.mul + 2 * ops.interp)


def _torchinfo_macs(ops: Ops) -> int:
    # torchinfo: every parameter named weight/bias, times output positions for convs, also
    # transposed ones (whose multiply-adds are per input position instead).
    return (ops.macs - ops.tconv_macs + ops.tconv_positions + ops.bias + ops.norm_params
            + ops.act_params)


def _fvcore_macs(ops: Ops) -> int:
    # fvcore (eval mode): conv/linear without bias, BN 1 per element (+1 if affine),
    # adaptive average pooling 1 per input element; pools, activations, adds and the
    # gate's aten::mul (not among fvcore's default handles) are skipped.
    # aten::layer_norm/group_norm/instance_norm: 4 per input element, 5 with an affine;
    # aten::upsample_nearest2d 1 and upsample_bilinear2d 4 per output element.
    return (ops.macs + ops.norm + ops.norm_affine + ops.pool_inputs
            + FVCORE_NORM_STATS * ops.norm_stats + ops.norm_stats_affine + ops.resize
            + ops.interp)


CONVENTIONS: dict[str, Convention] = {
    c.name: c
    for c in (
        Convention(
            "full",
            "MACs: conv/linear multiply-accumulates. FLOPs: 2 per MAC + bias adds + BN 2/elem "
            "+ LN/GN/IN 5/elem (+2 affine) + activations 1/elem (softmax 3) + pooling "
            "+ residual adds + LRN + layer scale 1/elem + gate multiplies 1/elem + bilinear "
            "upsampling 8/elem (4 taps; nearest copies: 0); transposed conv MACs per input",
            lambda o: o.macs,
            _full_flops,
        ),
        Convention(
            "torchinfo",
            "torchinfo Mult-Adds: conv (weights+bias)*output positions (transposed too), "
            "linear, norm and PReLU parameters; FLOPs = 2*MACs",
            _torchinfo_macs,
            lambda o: 2 * _torchinfo_macs(o),
        ),
        Convention(
            "fvcore",
            "fvcore: one per multiply-add of conv/linear (bias ignored), BN and adaptive "
            "avg-pool elementwise, LN/GN/IN 4/elem (5 affine), upsampling 1/elem (bilinear "
            "4); FLOPs = 2*MACs",
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
