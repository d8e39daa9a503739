"""Blocks that join paths: ``concat`` (Inception's branches), ``residual`` (He et al. 2016),
``gate`` (squeeze-and-excitation, Hu et al. 2018) and ``split`` (ShuffleNetV2's channel
split, Ma et al. 2018), with the zero-padding shortcut of option A as the one leaf only a
residual makes, and ``shuffle``, the channel shuffle that follows a split."""

from __future__ import annotations

import math
import re
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from archcalc.algebra import RF, Ops, fmt_shape
from archcalc.errors import Loc, SpecError
from archcalc.kinds.base import (
    Block,
    Kind,
    NoParameters,
    Notation,
    Pair,
    channels_and_positions,
    feature_map,
    line_pair,
    pair_str,
    register,
)
from archcalc.layers import Node, Seq
from archcalc.notation import Fail, Options

if TYPE_CHECKING:
    from torch import nn

    from archcalc.analysis import Walker
    from archcalc.layers import Shape

ShortcutKind = Literal["identity", "A", "B", "C", "D"]


def seq_subsampling(seq: Seq) -> Pair | None:
    """The factor by which a sequence subsamples a map: the product of its layers' strides
    (None when a layer has no fixed one)."""
    total = (1, 1)
    for node in seq:
        step = node.layer.subsampling()
        if step is None:
            return None
        total = (total[0] * step[0], total[1] * step[1])
    return total


class Parallel(Block):
    """Branches side by side that a join brings together (concat, add, split): what they
    share is written here once."""

    branches: tuple[Seq, ...]

    def sequences(self) -> tuple[Seq, ...]:
        return self.branches

    def subsampling(self) -> Pair | None:
        found = {seq_subsampling(b) for b in self.branches}
        return found.pop() if len(found) == 1 else None

    def walk_branches(self, walker: Walker, inputs: list[Shape], rf: RF | None, depth: int,
                      held: int) -> tuple[list[Shape], list[RF | None], int, int]:
        """Each branch on its input in turn: their outputs, fields, the peak of live
        elements, and the elements their outputs hold (kept until the join)."""
        outs, rfs, peak, done = [], [], 0, 0
        for branch, shape in zip(self.branches, inputs, strict=True):
            out, branch_rf, branch_peak = walker.seq(branch, shape, rf, depth + 1, held + done,
                                                     math.prod(shape))
            outs.append(out)
            rfs.append(branch_rf)
            done += math.prod(out)
            peak = max(peak, branch_peak)
        return outs, rfs, peak, done


@register
class Concat(Parallel):
    """Parallel branches on the same input, joined along channels (an empty branch is the
    identity: DenseNet's dense layers)."""

    kind = "concat"
    notation = None

    def title(self) -> str:
        return "CONCAT"

    def spec(self) -> str:
        return "concat"

    def allocates(self) -> bool:
        return True

    def walk(self, walker: Walker, node: Node, shape: Shape, rf: RF | None, depth: int,
             held: int) -> tuple[Shape, RF | None, int]:
        outs, rfs, peak, done = self.walk_branches(walker, [shape] * len(self.branches), rf,
                                                   depth, held)
        joined = _concat_shape(outs, node.loc)
        merged = walker.merge(rfs, node, "concat branches")
        walker.add_join(node, self, node.label, depth, shape, joined, merged, Ops())
        return joined, merged, max(peak, held + done + math.prod(joined))

    def torch_block(self, node: Node, x: Any, build: Callable[[Seq, Any], Any]) -> nn.Module:
        from torch import nn

        from archcalc.backends.modules import ConcatBranches

        return ConcatBranches([nn.Sequential(OrderedDict(build(branch, x)[0]))
                               for branch in self.branches])


@register
class Add(Parallel):
    """Parallel branches on the same input, summed elementwise (an empty branch is the
    identity): any two-path join that a residual's shortcut rules do not describe, e.g. a
    projection without BN, or a feature pyramid's merge, and what an importer writes for a
    torch ``a + b``. Shapes must agree exactly; (branches - 1) additions per element.
    ``inplace``: the sum goes into the first branch's tensor (``out += identity``), no new
    one."""

    inplace: bool = False

    kind = "add"
    notation = None

    def title(self) -> str:
        return "ADD"

    def spec(self) -> str:
        return "add inplace=true" if self.inplace else "add"

    def allocates(self) -> bool:
        return not self.inplace

    def walk(self, walker: Walker, node: Node, shape: Shape, rf: RF | None, depth: int,
             held: int) -> tuple[Shape, RF | None, int]:
        if self.inplace and not self.branches[0]:
            raise SpecError("add inplace=true sums into its first branch's tensor, so that "
                            "branch may not be empty (it would overwrite the block's input)",
                            node.loc)
        outs, rfs, peak, done = self.walk_branches(walker, [shape] * len(self.branches), rf,
                                                   depth, held)
        if len(set(outs)) != 1:
            listed = ", ".join(fmt_shape(s) for s in outs)
            raise SpecError(f"add branches must give one shape: {listed}", node.loc)
        merged = walker.merge(rfs, node, "added branches")
        elements = math.prod(outs[0])
        walker.add_join(node, self, node.label, depth, shape, outs[0], merged,
                        Ops(add=elements * (len(outs) - 1)), kind="add")
        return outs[0], merged, max(peak, held + done + (0 if self.inplace else elements))

    def torch_block(self, node: Node, x: Any, build: Callable[[Seq, Any], Any]) -> nn.Module:
        from torch import nn

        from archcalc.backends.modules import AddBranches

        return AddBranches([nn.Sequential(OrderedDict(build(branch, x)[0]))
                            for branch in self.branches], self.inplace)


def _concat_shape(shapes: list[Shape], loc: Loc) -> Shape:
    ranks = {len(s) for s in shapes}
    if ranks == {1}:
        return (sum(s[0] for s in shapes),)
    spatial = {s[1:] for s in shapes}
    if len(ranks) != 1 or len(spatial) != 1:
        listed = ", ".join(fmt_shape(s) for s in shapes)
        what = "length" if ranks == {2} else "height and width"
        raise SpecError(f"concat branches must agree in {what}: {listed}", loc)
    return (sum(s[0] for s in shapes), *shapes[0][1:])


@register
class Residual(Block):
    """``body(x) + shortcut(x)``. Shortcut: identity, A (zero-pad), B (projection where the
    shape changes), C (projection always), D (ResNet-D, He et al. 2019 "Bag of Tricks":
    average pooling by the stride, then a stride-1 projection, where the shape changes);
    A, B and D are the identity when the shape is kept. The shortcut's stride is the
    body's (the product of its layers' strides), never guessed from shapes, unless stated
    (``stride``). ``shortcut_bias``: the projection conv has a bias (Keras' ResNet50);
    ``shortcut_bn``: a BN follows the projection (false: a plain 1x1 conv, as in
    pre-activation ResNets)."""

    body: Seq
    shortcut: ShortcutKind = "identity"
    shortcut_bias: bool = False
    shortcut_bn: bool = True
    stride: Pair | None = None

    kind = "residual"
    notation = None

    def title(self) -> str:
        return "ADD"

    def spec(self) -> str:
        """The options that differ from the defaults (identity, no bias, a BN)."""
        words = ["residual"]
        if self.shortcut != "identity":
            words.append(f"shortcut={self.shortcut}")
        if self.shortcut_bias:
            words.append("bias=true")
        if not self.shortcut_bn:
            words.append("bn=false")
        if self.stride is not None:
            words.append(f"stride={pair_str(self.stride)}")
        return " ".join(words)

    def sequences(self) -> tuple[Seq, ...]:
        return (self.body,)

    def subsampling(self) -> Pair | None:
        return self.stride or seq_subsampling(self.body)

    def allocates(self) -> bool:
        return False  # the addition runs in place on the body's output

    def shortcut_layers(self, in_shape: Shape, out_shape: Shape, loc: Loc
                        ) -> tuple[tuple[Kind, str], ...]:
        """The layers on the shortcut path and their labels, for a body that maps
        ``in_shape`` to ``out_shape``."""
        kind = self.shortcut
        if kind == "identity" or (kind in ("A", "B", "D") and in_shape == out_shape):
            if in_shape != out_shape:
                raise SpecError(f"residual body changes the shape {fmt_shape(in_shape)} -> "
                                f"{fmt_shape(out_shape)}; an identity shortcut cannot add "
                                "them (use shortcut=A, B or C)", loc)
            return ()
        if len(in_shape) < 2 or len(out_shape) < 2:
            raise SpecError("shortcuts A, B, C and D join feature maps or sequences, not "
                            "vectors", loc)
        stride = self.stride or self.subsampling()
        if stride is None:
            raise SpecError("the residual body has no fixed stride (it pools globally or "
                            "flattens), so a shortcut cannot follow it", loc)
        channels = out_shape[0]
        if kind == "A":
            if channels < in_shape[0]:
                raise SpecError(f"shortcut A can only add channels, not reduce {in_shape[0]} "
                                f"to {channels} (use shortcut=B)", loc)
            return ((ZeroPadShortcut(channels, stride),
                     f"shortcut A (subsample {stride[0]}, zero-pad to {channels})"),)
        return (*self._pool_first(stride), *self._projection(channels, stride))

    def _pool_first(self, stride: Pair) -> tuple[tuple[Kind, str], ...]:
        """ResNet-D's average pooling by the stride (ceil mode, as timm's downsample_avg);
        none for the other projections, or at stride 1."""
        from archcalc.kinds.pool import Pool

        if self.shortcut != "D" or stride == (1, 1):
            return ()
        return ((Pool("avg", stride, stride, (0, 0), True),
                 f"shortcut avgpool{pair_str(stride)} ceil=true"),)

    def _projection(self, channels: int, stride: Pair) -> tuple[tuple[Kind, str], ...]:
        from archcalc.kinds.conv import Conv
        from archcalc.kinds.norm import BatchNorm

        step = (1, 1) if self.shortcut == "D" else stride
        bias = "true" if self.shortcut_bias else "false"
        conv = (Conv(channels, (1, 1), step, (0, 0), bias=self.shortcut_bias),
                f"shortcut conv1-{channels} s={pair_str(step)} bias={bias}")
        return (conv, (BatchNorm(), "shortcut bn")) if self.shortcut_bn else (conv,)

    def shortcut_nodes(self, node: Node, in_shape: Shape, out_shape: Shape) -> Seq:
        path = self.shortcut_layers(in_shape, out_shape, node.loc)
        return tuple(Node(layer, label, f"{node.path}.s{i}", node.loc, title=label)
                     for i, (layer, label) in enumerate(path, start=1))

    def walk(self, walker: Walker, node: Node, shape: Shape, rf: RF | None, depth: int,
             held: int) -> tuple[Shape, RF | None, int]:
        x = math.prod(shape)
        body_out, body_rf, peak = walker.seq(self.body, shape, rf, depth + 1, held, x)
        shortcut = self.shortcut_nodes(node, shape, body_out)
        sc_out, sc_rf, sc_peak = walker.seq(shortcut, shape, rf, depth + 1,
                                            held + math.prod(body_out), 0)
        if sc_out != body_out:
            raise SpecError(f"shortcut gives {fmt_shape(sc_out)} but the body gives "
                            f"{fmt_shape(body_out)}; they cannot be added", node.loc)
        merged = walker.merge([body_rf, sc_rf], node, "residual paths")
        elements = math.prod(body_out)
        walker.add_join(node, self, "add", depth, shape, body_out, merged, Ops(add=elements),
                        kind="add")
        live = held + elements + math.prod(sc_out)
        return body_out, merged, max(peak, sc_peak, live)

    def torch_block(self, node: Node, x: Any, build: Callable[[Seq, Any], Any]) -> nn.Module:
        from torch import nn

        from archcalc.backends.modules import ResidualBlock

        body, y = build(self.body, x)
        shortcut = self.shortcut_nodes(node, tuple(x.shape[1:]), tuple(y.shape[1:]))
        return ResidualBlock(nn.Sequential(OrderedDict(body)),
                             nn.Sequential(OrderedDict(build(shortcut, x)[0])))


@register
class ZeroPadShortcut(NoParameters, Kind):
    """He et al. option A: subsample by ``stride`` and pad the new channels with zeros
    ((Cout-Cin)//2 in front). Made by ``residual shortcut=A``, never written."""

    out_channels: int
    stride: Pair = (1, 1)

    kind = "zeropad"
    notation = None

    @classmethod
    def from_notation(cls, m: re.Match[str], opts: Options, fail: Fail) -> Kind:
        raise TypeError("zeropad is made by 'residual shortcut=A', never written")

    def title(self) -> str:
        return "SHORTCUT A"

    def spec(self) -> str:
        raise TypeError("zeropad is made by 'residual shortcut=A', never written")

    def on_sequence(self, loc: Loc | None) -> ZeroPadShortcut:
        return ZeroPadShortcut(self.out_channels, line_pair(self.stride, 1, "stride", loc))

    def output_shape(self, shape: Shape, loc: Loc) -> Shape:
        _, h, w = feature_map(self.kind, shape, loc)
        return (self.out_channels, -(-h // self.stride[0]), -(-w // self.stride[1]))

    def operations(self, in_shape: Shape, out_shape: Shape) -> Ops:
        return Ops()

    def receptive_field(self, rf: RF, in_shape: Shape) -> RF:
        return rf.step((1, 1), self.stride, (0, 0))

    def subsampling(self) -> Pair:
        return self.stride

    def allocates(self) -> bool:
        return True

    def torch_module(self, in_shape: Shape) -> nn.Module:
        from archcalc.backends.modules import ZeroPad

        return ZeroPad(self.out_channels, self.stride)


@register
class Gate(Block):
    """``x * body(x)``: squeeze-and-excitation (Hu et al. 2018) as in SE-ResNet, MobileNetV3,
    EfficientNet and RegNetY, when the body is ``gap; conv1-r; relu; conv1-C; sigmoid``. The
    body's output broadcasts over ``x`` as torch broadcasts: each of its dimensions equals
    ``x``'s or is 1 ((C, 1, 1): a weight per channel; (1, H, W): per position; x's shape).

    Counts: one multiply per output element (Ops ``mul``), out of place (torch's ``x * s``
    allocates the product). Receptive field: a unit sees its own input unit's field and the
    body's field. A body of x's shape slides with x: the union of the two fields (a warning
    if they are misaligned), as a residual's. Where the body's output is 1 along an axis,
    every output unit along it shares the body's one field; when that field covers the
    whole map (a ``gap`` body), the sliding-window algebra holds it as a field that contains
    it for the first and the last unit alike: the body's field widened by (extent - 1) input
    strides towards the start, with the input unit's stride. That field is centred on the
    input unit's (no misalignment warning) and reaches ``(H-1)*stride`` beyond the map on
    both sides; clipped to the input it is exact for every unit, and stays so through later
    layers (verify's probe checks it). A body whose one unit sees only part of the map gives
    fields that are not one sliding window of the input: no field from there on, with a
    warning (as upsampling)."""

    body: Seq

    kind = "gate"
    notation = None

    def title(self) -> str:
        return "MUL"

    def spec(self) -> str:
        return "gate"

    def sequences(self) -> tuple[Seq, ...]:
        return (self.body,)

    def subsampling(self) -> Pair:
        return (1, 1)  # the output has x's shape, whatever the body does

    def allocates(self) -> bool:
        return True  # x * s makes a new tensor (x is still needed by the backward pass)

    def walk(self, walker: Walker, node: Node, shape: Shape, rf: RF | None, depth: int,
             held: int) -> tuple[Shape, RF | None, int]:
        x = math.prod(shape)
        body_out, body_rf, peak = walker.seq(self.body, shape, rf, depth + 1, held, x)
        _check_broadcast(shape, body_out, node.loc)
        merged = None
        if rf is not None and body_rf is not None:
            shared = gate_field(rf, body_rf, shape, body_out)
            if shared is None:
                walker.warnings.append(
                    f"{node.loc}: gate: no receptive field from here on (the body's one unit "
                    "sees only part of the map, so its output units' fields are not one "
                    "sliding window of the input)")
            else:
                merged = walker.merge([rf, shared], node, "gate paths")
        walker.add_join(node, self, "mul", depth, shape, shape, merged, Ops(mul=x))
        live = held + x + math.prod(body_out) + x
        return shape, merged, max(peak, live)

    def torch_block(self, node: Node, x: Any, build: Callable[[Seq, Any], Any]) -> nn.Module:
        from torch import nn

        from archcalc.backends.modules import GateBlock

        return GateBlock(nn.Sequential(OrderedDict(build(self.body, x)[0])))


def _check_broadcast(shape: Shape, body_out: Shape, loc: Loc) -> None:
    """torch's broadcasting, one way: the body's output may not grow x."""
    if len(body_out) != len(shape) or any(b not in (1, s) for b, s in
                                          zip(body_out, shape, strict=True)):
        raise SpecError(f"gate body gives {fmt_shape(body_out)}, which cannot scale its input "
                        f"{fmt_shape(shape)} (each dimension must equal the input's or be 1, "
                        "e.g. 1x1xC after 'gap')", loc)


def gate_field(rf: RF, body_rf: RF, shape: Shape, body_out: Shape) -> RF | None:
    """The body's field as the output units see it: along an axis where the body's output
    is 1 and the map is longer, all units share the body's one field, so it is widened by
    (extent - 1) input strides towards the start and takes the input unit's stride: the
    first unit's field then reaches from the widened start to the body's end, the last
    unit's from the body's start to beyond it, and both contain the shared field. That is
    exact (clipped to the input) only if the shared field covers every input unit's field
    (``rf`` spread over the map); otherwise None. A vector (after flatten or FC) already
    carries the field of the whole map: nothing to widen."""
    if len(shape) == 1:
        return body_rf
    if len(shape) == 2:  # a sequence: the column (C, L, 1) of the field algebra
        shape, body_out = (*shape, 1), (*body_out, 1)
    whole = rf.spread((shape[1], shape[2]))
    size, stride, start = list(body_rf.size), list(body_rf.stride), list(body_rf.start)
    for axis in range(2):
        extent = shape[1 + axis]
        if body_out[1 + axis] == 1 and extent > 1:
            if not (start[axis] <= whole.start[axis]
                    and start[axis] + size[axis] >= whole.start[axis] + whole.size[axis]):
                return None
            widen = (extent - 1) * rf.stride[axis]
            size[axis] += widen
            start[axis] -= widen
            stride[axis] = rf.stride[axis]
    return RF(tuple(size), tuple(stride), tuple(start))  # type: ignore[arg-type]


@register
class Split(Parallel):
    """ShuffleNetV2's channel split (Ma et al. 2018, Fig. 3c): the input's channels cut into
    as many equal, consecutive shares as there are branches (torch.chunk along channels; a
    view, no copy), each branch run on its share, the outputs concatenated along channels.
    An empty ``branch { }`` passes its share through (the unit's identity half)."""

    kind = "split"
    notation = None

    def title(self) -> str:
        return "CONCAT"

    def spec(self) -> str:
        return "split"

    def allocates(self) -> bool:
        return True  # the concatenation

    def share_shape(self, shape: Shape, loc: Loc) -> Shape:
        n = len(self.branches)
        if shape[0] % n:
            raise SpecError(f"split cannot cut {shape[0]} channels into {n} equal shares", loc)
        return (shape[0] // n, *shape[1:])

    def walk(self, walker: Walker, node: Node, shape: Shape, rf: RF | None, depth: int,
             held: int) -> tuple[Shape, RF | None, int]:
        share = self.share_shape(shape, node.loc)
        x, part = math.prod(shape), math.prod(share)
        outs, rfs, peak, done = [], [], 0, 0
        for branch in self.branches:  # x stays alive: the shares are views of it
            out, branch_rf, branch_peak = walker.seq(branch, share, rf, depth + 1,
                                                     held + done + x - part, part)
            outs.append(out)
            rfs.append(branch_rf)
            done += math.prod(out) if branch else 0  # an empty branch is a view of x
            peak = max(peak, branch_peak)
        joined = _concat_shape(outs, node.loc)
        merged = walker.merge(rfs, node, "split branches")
        walker.add_join(node, self, "concat", depth, shape, joined, merged, Ops())
        return joined, merged, max(peak, held + x + done + math.prod(joined))

    def torch_block(self, node: Node, x: Any, build: Callable[[Seq, Any], Any]) -> nn.Module:
        from torch import nn

        from archcalc.backends.modules import SplitBranches

        shares = x.chunk(len(self.branches), dim=1)
        return SplitBranches([nn.Sequential(OrderedDict(build(branch, share)[0]))
                              for branch, share in zip(self.branches, shares, strict=True)])


@register
class ChannelShuffle(NoParameters, Kind):
    """ShuffleNet's channel shuffle (Zhang et al. 2018; ShuffleNetV2 after each unit's
    concat): channels viewed as (groups, C/groups), transposed, flattened, so channel
    ``g*(C/groups) + i`` moves to ``i*groups + g`` (torch.nn.ChannelShuffle). No parameters
    and no arithmetic; the result is a new contiguous tensor (torch copies), and every
    channel keeps its spatial field."""

    groups: int = 2

    kind = "shuffle"
    notation = Notation(r"shuffle|channelshuffle", {"g": "groups", "groups": "groups"},
                        "shuffle g=2 (channel shuffle, torch.nn.ChannelShuffle: no parameters "
                        "or operations, a new tensor; g/groups must divide the channels)")

    @classmethod
    def from_notation(cls, m: re.Match[str], opts: Options, fail: Fail) -> ChannelShuffle:
        return cls(opts.integer("groups", 2))

    def title(self) -> str:
        return f"SHUFFLE{self.groups}"

    def spec(self) -> str:
        return f"shuffle g={self.groups}"

    def output_shape(self, shape: Shape, loc: Loc) -> Shape:
        c = channels_and_positions(self.kind, shape, loc)[0]
        if c % self.groups:
            raise SpecError(f"shuffle g={self.groups} must divide the channels ({c})", loc)
        return shape

    def operations(self, in_shape: Shape, out_shape: Shape) -> Ops:
        return Ops()

    def receptive_field(self, rf: RF, in_shape: Shape) -> RF:
        return rf

    def subsampling(self) -> Pair:
        return (1, 1)

    def allocates(self) -> bool:
        return True

    def torch_module(self, in_shape: Shape) -> nn.Module:
        from torch import nn

        return nn.ChannelShuffle(self.groups)
