"""What every layer kind must say about itself, and the registry that holds the kinds.

A kind is a frozen dataclass (its options, plain data) whose methods are its rules: how it is
written, its output shape, parameters and buffers, operations by category, receptive-field
step, whether it allocates, its symbolic formulas and its torch module. Every rule is
abstract here, so a kind that forgets one cannot be instantiated: nothing counts as zero by
accident. Containers (concat, residual, gate) are :class:`Block` kinds; the analysis walker
and the torch builder hand their sequences back to them.

Adding a kind: a dataclass in its family's module, decorated with :func:`register`, and a
test; the parser, analysis, renderers, symbolic formulas, torch builder and the grammar in
``archcalc spec --help`` all find it in the registry.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, ClassVar, TypeGuard, TypeVar

from archcalc.algebra import RF, Ops, Params, fmt_shape
from archcalc.errors import Loc, SpecError
from archcalc.notation import Fail, Options
from archcalc.records import Record

if TYPE_CHECKING:
    from torch import nn

    from archcalc.layers import Seq, Shape
    from archcalc.symbolic import FormulaLine

Pair = tuple[int, int]


class WeightFormula(Record):
    """A weight count as the homework writes it: groups of factors, e.g. ``(3*3*3)*64`` is
    ((3, 3, 3), (64,)); a single group prints without parentheses (``7*7*512*4096``)."""

    groups: tuple[tuple[int, ...], ...]

    @property
    def value(self) -> int:
        total = 1
        for group in self.groups:
            for factor in group:
                total *= factor
        return total

    def __str__(self) -> str:
        if len(self.groups) == 1:
            return "*".join(map(str, self.groups[0]))
        return "*".join("(" + "*".join(map(str, g)) + ")" if len(g) > 1 else str(g[0])
                        for g in self.groups)


class Notation(Record):
    """How a kind is written: the pattern of its name (matched whole, any case), its options
    (alias -> option name) and one line of grammar for ``archcalc spec --help``."""

    pattern: str
    options: dict[str, str]
    grammar: str

    def match(self, word: str) -> re.Match[str] | None:
        compiled = _PATTERNS.get(self.pattern)
        if compiled is None:
            if not word.lower().startswith(leading_text(self.pattern)):
                return None  # cannot match: spare compiling a pattern this run may not need
            compiled = _PATTERNS[self.pattern] = re.compile(self.pattern, re.I)
        return compiled.fullmatch(word)


_PATTERNS: dict[str, re.Pattern[str]] = {}
_LEADING: dict[str, tuple[str, ...]] = {}
_SPECIAL = frozenset("\\[](){}.*+?|^$")


def leading_text(pattern: str) -> tuple[str, ...]:
    """Texts one of which starts every match of ``pattern`` ("" where nothing is certain):
    ``(?:fc|linear)-([0-9]+)`` -> ("fc", "linear"). The parser tries the kinds in turn,
    and compiling every pattern it passes costs more than the rest of parsing VGG19."""
    found = _LEADING.get(pattern)
    if found is None:
        found = _LEADING[pattern] = tuple(
            text.lower() for alternative in _alternatives(pattern)
            for text in _alternative_start(alternative))
    return found


def _scan(pattern: str) -> Iterator[tuple[int, str, int]]:
    """(index, character, groups open around it) for each character outside escapes and
    classes; a ')' counts the group it closes as open."""
    depth, i = 0, 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            i += 2
            continue
        if char == "[":
            i = pattern.index("]", i + 2) + 1
            continue
        depth += char == "("
        yield i, char, depth
        depth -= char == ")"
        i += 1


def _alternatives(pattern: str) -> list[str]:
    """``pattern`` split at its top-level '|' (none inside groups, classes or escapes)."""
    cuts = [i for i, char, depth in _scan(pattern) if char == "|" and depth == 0]
    return [pattern[a + 1:b] for a, b in zip([-1, *cuts], [*cuts, len(pattern)], strict=True)]


def _alternative_start(alternative: str) -> tuple[str, ...]:
    """The texts a branch without top-level '|' starts with."""
    if alternative.startswith("("):
        close = _group_end(alternative)
        if alternative[close + 1:close + 2] in ("?", "*", "{"):  # the group may be absent
            return ("",)
        inner = alternative[1:close].removeprefix("?:")
        return tuple(t for branch in _alternatives(inner) for t in _alternative_start(branch))
    end = 0
    while end < len(alternative) and alternative[end] not in _SPECIAL:
        end += 1
    if alternative[end:end + 1] in ("?", "*", "{"):  # the last letter may be absent
        end -= 1
    return (alternative[:max(end, 0)],)


def _group_end(text: str) -> int:
    """Index of the ')' closing the group that opens ``text``."""
    return next(i for i, char, depth in _scan(text) if char == ")" and depth == 1)


class Kind(Record, ABC):
    """A layer kind. Subclasses are records (frozen dataclasses, :mod:`archcalc.records`)
    registered with :func:`register`."""

    kind: ClassVar[str]  # the row kind in reports and JSON, e.g. "conv"
    notation: ClassVar[Notation | None]  # None: made by a block, never written
    # Listed in the homework table when it allocates: the assignment lists conv, pool and FC
    # rows; activations such as soft-max are allocations the footer mentions instead.
    homework_row: ClassVar[bool] = True
    # A :class:`Block`: read by the walker and the parser at every node, where ``isinstance``
    # on an abstract class costs more than the rest of a cached row.
    container: ClassVar[bool] = False

    # -- notation ------------------------------------------------------------------------
    @classmethod
    @abstractmethod
    def from_notation(cls, m: re.Match[str], opts: Options, fail: Fail) -> Kind:
        """The layer from its written name (``m``) and options."""

    @abstractmethod
    def title(self) -> str:
        """The homework table's name, in capitals as the assignment writes it: CONV3-64."""

    @abstractmethod
    def spec(self) -> str:
        """The layer as a spec writes it, every option given (``conv3-64 s=1 p=1 d=1 g=1
        bias=true``), the inverse of :meth:`from_notation`; ``archcalc.writer`` leaves out
        the options that parse back to the same layer. A block gives its statement's words,
        options that differ from their defaults only (``residual shortcut=B``); the writer
        adds its braces and bodies."""

    # -- arithmetic ----------------------------------------------------------------------
    @abstractmethod
    def output_shape(self, shape: Shape, loc: Loc) -> Shape:
        """Output shape for one sample; a SpecError at ``loc`` if ``shape`` does not fit."""

    @abstractmethod
    def parameters(self, in_shape: Shape) -> Params:
        """Trainable weights and biases, and non-trainable buffers."""

    @abstractmethod
    def weight_formula(self, in_shape: Shape) -> WeightFormula | None:
        """The weight count written out, or None when there are no weights."""

    @abstractmethod
    def operations(self, in_shape: Shape, out_shape: Shape) -> Ops:
        """What one sample costs, by category; conventions weigh the categories."""

    @abstractmethod
    def receptive_field(self, rf: RF, in_shape: Shape) -> RF | None:
        """The field of an output unit, from the field of an input unit; None where the
        output units' fields are not one sliding window of the input (upsampling, a strided
        transposed conv, adaptive pooling with uneven windows): the analysis then gives no
        field from that layer on, and verify does not probe those rows."""

    @abstractmethod
    def subsampling(self) -> Pair | None:
        """How much the layer subsamples a feature map (None: not by a fixed factor, e.g.
        global pooling). A residual's shortcut takes its stride from its body's layers."""

    @abstractmethod
    def allocates(self) -> bool:
        """False when the layer runs in place or as a view: no new tensor at inference."""

    def stored(self) -> bool:
        """Whether the output is kept for the backward pass in training. Dropout keeps its
        mask-scaled output although it allocates nothing at inference."""
        return self.allocates()

    # -- other views ---------------------------------------------------------------------
    @abstractmethod
    def formulas(self, in_shape: Shape, out_shape: Shape) -> list[FormulaLine]:
        """Symbolic parameter and operation formulas (sympy, imported by the caller)."""

    @abstractmethod
    def torch_module(self, in_shape: Shape) -> nn.Module:
        """The torch module for ``in_shape`` (C, H, W) or (N,), default initialisation."""

    def probe_module(self, in_shape: Shape) -> nn.Module:
        """The module in the receptive-field probe, a positive linear copy of the network
        (weights are set to 1/fan_in afterwards). Pointwise non-linearities override this
        with the identity, max pooling with average pooling of the same geometry."""
        return self.torch_module(in_shape)

    def sequences(self) -> tuple[Seq, ...]:
        """The layer sequences a container holds; a leaf holds none."""
        return ()

    def on_sequence(self, loc: Loc | None) -> Kind | None:
        """How a kind whose window slides over H and W slides along a sequence (C, L): the
        kind that computes the same on the one-column map (C, L, 1) (kernel k x 1, stride
        s x 1, padding p and 0: a 1-D convolution is exactly a 2-D one of width 1), whose
        rules then give every number (:func:`rules_at`); a SpecError at ``loc`` if the layer
        is written with two sizes. None, as here: the kind's own rules take a sequence as
        they are (channels first: norms, activations, dropout) or refuse it."""
        return None


class NoParameters:
    """For a kind that has no weights, biases or buffers. A kind says so by inheriting
    this (``class Flatten(NoParameters, Kind)``): a stated rule, never a silent default."""

    def parameters(self, in_shape: Shape) -> Params:
        return Params()

    def weight_formula(self, in_shape: Shape) -> WeightFormula | None:
        return None

    def formulas(self, in_shape: Shape, out_shape: Shape) -> list[FormulaLine]:
        from archcalc.symbolic import zero_weights

        return zero_weights()


class ShapeKeeping:
    """For an elementwise or per-channel kind: the output has the input's shape, and each
    output unit sees what its input unit saw (the field and stride are unchanged)."""

    def output_shape(self, shape: Shape, loc: Loc) -> Shape:
        return shape

    def receptive_field(self, rf: RF, in_shape: Shape) -> RF:
        return rf

    def subsampling(self) -> Pair:
        return (1, 1)


def num(value: float) -> str:
    """A number as an option writes it: 0.5, 1e-05, 2 (a whole float without '.0')."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def flag_str(value: bool) -> str:
    return "true" if value else "false"


class Block(Kind):
    """A container: the walker and the builder call these instead of the leaf rules."""

    homework_row: ClassVar[bool] = True
    container: ClassVar[bool] = True

    @abstractmethod
    def walk(self, walker: Any, node: Any, shape: Shape, rf: RF | None, depth: int,
             held: int) -> tuple[Shape, RF | None, int]:
        """Analyse the block with ``walker`` (archcalc.analysis): rows for its contents and
        its join; returns output shape, field and peak live elements."""

    @abstractmethod
    def torch_block(self, node: Any, x: Any, build: Callable[[Seq, Any], Any]) -> nn.Module:
        """The block's module for input ``x``; ``build(seq, x)`` builds a sequence."""

    # A block's own rules apply to its join row only; walk() derives everything else.
    def output_shape(self, shape: Shape, loc: Loc) -> Shape:
        raise TypeError(f"{self.kind} is a block: the walker derives its shape")

    def parameters(self, in_shape: Shape) -> Params:
        return Params()

    def weight_formula(self, in_shape: Shape) -> WeightFormula | None:
        return None

    def operations(self, in_shape: Shape, out_shape: Shape) -> Ops:
        return Ops()

    def receptive_field(self, rf: RF, in_shape: Shape) -> RF:
        raise TypeError(f"{self.kind} is a block: the walker derives its field")

    def formulas(self, in_shape: Shape, out_shape: Shape) -> list[FormulaLine]:
        raise TypeError(f"{self.kind} is a block, not a single layer")

    def torch_module(self, in_shape: Shape) -> nn.Module:
        raise TypeError(f"{self.kind} is a block: use torch_block")

    @classmethod
    def from_notation(cls, m: re.Match[str], opts: Options, fail: Fail) -> Kind:
        raise TypeError(f"{cls.kind} is a block statement, parsed by archcalc.spec")


def is_block(layer: Kind) -> TypeGuard[Block]:
    """``isinstance(layer, Block)``, from :attr:`Kind.container`."""
    return layer.container

K = TypeVar("K", bound=type[Kind])
REGISTRY: dict[str, type[Kind]] = {}


def register(cls: K) -> K:
    """Add ``cls`` to the registry (in definition order: the parser tries the kinds in
    turn)."""
    if cls.kind in REGISTRY:
        raise AssertionError(f"layer kind {cls.kind!r} registered twice")
    REGISTRY[cls.kind] = cls
    return cls


# -- helpers the families share -----------------------------------------------------------
def rules_at(layer: Kind, shape: Shape, loc: Loc | None) -> tuple[Kind, Shape]:
    """The kind and input shape whose rules give ``layer``'s numbers at ``shape``: on a
    sequence (C, L), a windowed kind's one-column twin on (C, L, 1)
    (:meth:`Kind.on_sequence`); otherwise the layer itself. A twin's output shapes lose the
    column again (:func:`uncolumn`)."""
    if len(shape) == 2:
        twin = layer.on_sequence(loc)
        if twin is not None:
            return twin, (*shape, 1)
    return layer, shape


def output_at(rule: Kind, at: Shape, shape: Shape, loc: Loc) -> Shape:
    """``rule``'s output shape at ``at`` (from :func:`rules_at` for ``shape``); a twin's
    errors speak of the sequence's length, not of its column's height."""
    if at is shape:
        return rule.output_shape(at, loc)
    try:
        return rule.output_shape(at, loc)
    except SpecError as exc:
        raise SpecError(exc.message.replace("input height", "input length"), exc.loc
                        ) from None


def uncolumn(shape: Shape) -> Shape:
    """(C, L, 1) -> (C, L): a twin's output back on the sequence."""
    assert len(shape) == 3 and shape[2] == 1, shape
    return shape[:2]


def extent(shape: Shape) -> Pair:
    """What the field algebra sees of a map or a sequence: (H, W), or (L, 1) for (C, L)."""
    return (shape[1], shape[2] if len(shape) == 3 else 1)


def channels_and_positions(kind: str, shape: Shape, loc: Loc) -> Shape:
    """``shape`` if it is a map (C, H, W) or a sequence (C, L); a SpecError for a vector."""
    if len(shape) < 2:
        raise SpecError(f"{kind} needs a feature map (C, H, W) or a sequence (C, L), got a "
                        f"vector of {shape[0]}", loc)
    return shape


def line_pair(value: Pair, fill: int, what: str, loc: Loc | None) -> Pair:
    """A size written once, (k, k), as it acts along a sequence: (k, fill); a SpecError for
    two different sizes, which a sequence's one axis cannot take."""
    if value[0] != value[1]:
        raise SpecError(f"{what} {value[0]}x{value[1]} on a sequence: a sequence has one "
                        "axis, so write one size", loc)
    return (value[0], fill)


def feature_map(kind: str, shape: Shape, loc: Loc) -> tuple[int, int, int]:
    if len(shape) != 3:
        got = ("a sequence " + fmt_shape(shape) + " (LxC)" if len(shape) == 2
               else f"a vector of {shape[0]}")
        raise SpecError(f"{kind} needs a feature map (C, H, W) input, got {got}", loc)
    return shape


def window(size: int, kernel: int, stride: int, pad: int, dilation: int, ceil: bool,
           loc: Loc, axis: str) -> int:
    """Output length of a sliding window, as torch computes it (``ceil``: the last window
    may run past the input, as long as it starts inside the input or its left padding)."""
    span = dilation * (kernel - 1) + 1
    room = size + 2 * pad - span
    if ceil:
        out = -(-room // stride) + 1
        if (out - 1) * stride >= size + pad:  # torch: the last window must start in the input
            out -= 1
    else:
        out = room // stride + 1
    if out < 1:
        raise SpecError(f"kernel {span} is larger than the padded input {axis} "
                        f"({size} + 2*{pad} = {size + 2 * pad})", loc)
    return out


def pair_str(p: Pair) -> str:
    """(3, 3) -> ``3``; (1, 7) -> ``1x7``: a size as the notation writes it."""
    return str(p[0]) if p[0] == p[1] else f"{p[0]}x{p[1]}"
