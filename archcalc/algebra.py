"""The quantities every layer kind's rules produce: parameters, operations by category and
receptive fields, and how they combine. The rules themselves live with their kinds
(:mod:`archcalc.kinds`). Counts are per sample; batch size enters only the memory estimate.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from archcalc.records import Record

if TYPE_CHECKING:
    from fractions import Fraction

Pair = tuple[int, int]
Shape = tuple[int, ...]


class Params(Record):
    """Parameter counts: trainable weights and biases, and non-trainable buffers."""

    weights: int = 0
    biases: int = 0
    buffers: int = 0

    @property
    def trainable(self) -> int:
        return self.weights + self.biases

    def __add__(self, other: Params) -> Params:
        return Params(self.weights + other.weights, self.biases + other.biases,
                      self.buffers + other.buffers)


class Ops(Record):
    """What a layer computes for one sample, by category; conventions weigh the categories."""

    macs: int = 0  # multiply-accumulates of conv and linear layers
    bias: int = 0  # bias additions
    norm: int = 0  # elements batch-normalised (a scale and a shift each at inference)
    norm_affine: int = 0  # of those, elements of BN layers with learnt scale and shift
    norm_params: int = 0  # affine BN/LN/GN/IN parameters (torchinfo counts these as Mult-Adds)
    act: int = 0  # activation function evaluations, weighted (softmax counts 3 per element)
    pool: int = 0  # comparisons (max) or additions and a division (avg) of pooling
    pool_inputs: int = 0  # input elements of 2-D adaptive (global) average pooling (fvcore)
    add: int = 0  # elementwise additions joining residual paths
    lrn: int = 0  # LRN operations
    norm_stats: int = 0  # elements normalised by the sample's own statistics (LN, GN, IN)
    norm_stats_affine: int = 0  # of those, elements given a learnt scale and shift
    act_params: int = 0  # learnt activation parameters (PReLU; torchinfo counts them)
    scale: int = 0  # multiplications by a learnt per-channel scale (layer scale)
    mul: int = 0  # elementwise products of two activations (a gate's x * body(x))
    tconv_macs: int = 0  # of macs, those of transposed convs (Cin*Hin*Win*k*k*Cout/g)
    tconv_positions: int = 0  # transposed convs' weights x output positions (torchinfo's)
    resize: int = 0  # output elements of nearest-neighbour upsampling (copies)
    interp: int = 0  # multiply-adds of bilinear upsampling: 4 per output element

    def __add__(self, other: Ops) -> Ops:
        return Ops(*(a + b for a, b in zip(self.astuple(), other.astuple(), strict=True)))

    def astuple(self) -> tuple[int, ...]:
        return (self.macs, self.bias, self.norm, self.norm_affine, self.norm_params, self.act,
                self.pool, self.pool_inputs, self.add, self.lrn, self.norm_stats,
                self.norm_stats_affine, self.act_params, self.scale, self.mul, self.tconv_macs,
                self.tconv_positions, self.resize, self.interp)


class RF(Record):
    """Receptive field per axis (H, W) in the form of Araujo et al. 2019: size, effective
    stride, and the input coordinate where the first output unit's field starts
    (``-start`` is the effective padding)."""

    size: Pair
    stride: Pair
    start: Pair

    @property
    def padding(self) -> Pair:
        return (-self.start[0], -self.start[1])

    @property
    def center(self) -> tuple[Fraction, Fraction]:
        from fractions import Fraction  # lazily: the table path never needs it

        return tuple(Fraction(c, 2) for c in self.twice_center)  # type: ignore[return-value]

    @property
    def twice_center(self) -> Pair:
        """Twice the centre of the first unit's field: whole numbers, cheap to compare."""
        return (2 * self.start[0] + self.size[0] - 1, 2 * self.start[1] + self.size[1] - 1)

    def step(self, kernel: Pair, stride: Pair, padding: Pair, dilation: Pair = (1, 1)) -> RF:
        """The field after one more sliding-window layer (the Distill recurrence)."""
        size, new_stride, start = [], [], []
        for axis in range(2):
            span = dilation[axis] * (kernel[axis] - 1) + 1
            size.append(self.size[axis] + (span - 1) * self.stride[axis])
            start.append(self.start[axis] - padding[axis] * self.stride[axis])
            new_stride.append(self.stride[axis] * stride[axis])
        return RF(tuple(size), tuple(new_stride), tuple(start))  # type: ignore[arg-type]

    def spread(self, extent: Pair) -> RF:
        """Union of the fields of all units of an ``extent`` map (global pool, flatten, FC)."""
        size = tuple(n + (e - 1) * j for n, e, j in zip(self.size, extent, self.stride,
                                                        strict=True))
        return RF(size, self.stride, self.start)  # type: ignore[arg-type]


INPUT_RF = RF((1, 1), (1, 1), (0, 0))


def merge_rfs(rfs: list[RF]) -> tuple[RF, bool]:
    """Union of the fields of paths that meet; False when their centres or strides differ."""
    starts = [min(rf.start[a] for rf in rfs) for a in range(2)]
    ends = [max(rf.start[a] + rf.size[a] - 1 for rf in rfs) for a in range(2)]
    merged = RF((ends[0] - starts[0] + 1, ends[1] - starts[1] + 1),
                (min(rf.stride[0] for rf in rfs), min(rf.stride[1] for rf in rfs)),
                (starts[0], starts[1]))
    aligned = len({(rf.twice_center, rf.stride) for rf in rfs}) == 1
    return merged, aligned


def fmt_shape(shape: Shape) -> str:
    """(C, H, W) as ``HxWxC`` and (C, L) as ``LxC``, the notation of the input line;
    vectors as ``N``."""
    return "x".join(str(d) for d in (*shape[1:], shape[0]))
