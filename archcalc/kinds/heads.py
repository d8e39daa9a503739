"""Several outputs: ``head NAME { ... }``, an auxiliary classifier (GoogLeNet, Inception v3)
that branches off the main path and ends in an output of its own."""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from archcalc.algebra import RF, Ops
from archcalc.kinds.base import Block, Pair, register
from archcalc.layers import Node, Seq

if TYPE_CHECKING:
    from torch import nn

    from archcalc.analysis import Walker
    from archcalc.layers import Shape


@register
class Head(Block):
    """The body runs on x and its result is an output of the model; the main path goes on
    from x unchanged. The block's own row marks where the head leaves the main path (no
    parameters, nothing allocated); the body's rows carry the head's name, so the analysis
    totals them per head as well as for the whole model. Memory: the head's output is
    counted while the head runs, not held to the end of the forward pass (logits, small)."""

    body: Seq
    name: str

    kind = "head"
    notation = None

    def title(self) -> str:
        return f"HEAD {self.name}"

    def spec(self) -> str:
        return f"head {self.name}"

    def sequences(self) -> tuple[Seq, ...]:
        return (self.body,)

    def subsampling(self) -> Pair:
        return (1, 1)  # the main path goes on from x

    def allocates(self) -> bool:
        return False

    def walk(self, walker: Walker, node: Node, shape: Shape, rf: RF | None, depth: int,
             held: int) -> tuple[Shape, RF | None, int]:
        with walker.in_head(self.name):
            _, _, peak = walker.seq(self.body, shape, rf, depth + 1, held, math.prod(shape))
        walker.add_join(node, self, node.label, depth, shape, shape, rf, Ops())
        return shape, rf, peak

    def torch_block(self, node: Node, x: Any, build: Callable[[Seq, Any], Any]) -> nn.Module:
        from torch import nn

        from archcalc.backends.modules import HeadBlock

        return HeadBlock(nn.Sequential(OrderedDict(build(self.body, x)[0])))

