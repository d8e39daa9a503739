"""Named tensors: ``keep NAME`` names the current tensor, ``from NAME`` makes a named tensor
the current one again. With them a spec writes joins that read tensors off the series-parallel
path of ``concat``/``add`` blocks: a NASNet cell reads the outputs of the two cells before it
(``cell(ip, p)``), a DenseNet layer every earlier feature map.

Both are statements, not layers: no parameters, no operations, no new tensor (their rows are
not homework-table rows and allocate nothing). The analysis walker holds an environment of
names (shape and receptive field of the tensor most recently kept under each), and the torch
backend a per-forward dictionary of tensors shared by the built model's modules.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from archcalc.algebra import RF
from archcalc.kinds.base import Block, Pair, register
from archcalc.layers import Node, Seq

if TYPE_CHECKING:
    from torch import nn

    from archcalc.analysis import Walker
    from archcalc.layers import Shape


class Named(Block):
    """What ``keep`` and ``from`` share: a name, and no arithmetic of their own."""

    name: str

    homework_row: ClassVar[bool] = False

    def title(self) -> str:
        return f"{self.kind.upper()} {self.name}"

    def spec(self) -> str:
        return f"{self.kind} {self.name}"

    def allocates(self) -> bool:
        return False  # a name for a tensor that exists already

    def stored(self) -> bool:
        return False


@register
class Keep(Named):
    """``keep NAME``: the current tensor, named; the path goes on with it unchanged."""

    kind = "keep"
    notation = None

    def subsampling(self) -> Pair:
        return (1, 1)

    def walk(self, walker: Walker, node: Node, shape: Shape, rf: RF | None, depth: int,
             held: int) -> tuple[Shape, RF | None, int]:
        return walker.keep(node, self, shape, rf, depth, held)

    def torch_block(self, node: Node, x: Any, build: Callable[[Seq, Any], Any]) -> nn.Module:
        from archcalc.backends.torch import named_module

        return named_module("keep", self.name)


@register
class From(Named):
    """``from NAME``: the tensor most recently kept under NAME becomes the current one (the
    tensor before it is dropped from this path)."""

    kind = "from"
    notation = None

    def subsampling(self) -> Pair | None:
        return None  # the output is not the input subsampled: it is another tensor

    def walk(self, walker: Walker, node: Node, shape: Shape, rf: RF | None, depth: int,
             held: int) -> tuple[Shape, RF | None, int]:
        return walker.read(node, self, shape, depth, held)

    def torch_block(self, node: Node, x: Any, build: Callable[[Seq, Any], Any]) -> nn.Module:
        from archcalc.backends.torch import named_module

        return named_module("from", self.name)
