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
from collections.abc import Callable
from dataclasses import MISSING, FrozenInstanceError, dataclass, fields
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, dataclass_transform

from archcalc.algebra import RF, Ops, Params
from archcalc.errors import Loc, SpecError
from archcalc.notation import Fail, Options

if TYPE_CHECKING:
    from torch import nn

    from archcalc.layers import Seq, Shape
    from archcalc.symbolic import FormulaLine

Pair = tuple[int, int]


@dataclass(frozen=True)
class WeightFormula:
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


@dataclass(frozen=True)
class Notation:
    """How a kind is written: the pattern of its name (matched whole, any case), its options
    (alias -> option name) and one line of grammar for ``archcalc spec --help``."""

    pattern: str
    options: dict[str, str]
    grammar: str

    def match(self, word: str) -> re.Match[str] | None:
        return _compiled(self.pattern).fullmatch(word)


_PATTERNS: dict[str, re.Pattern[str]] = {}


def _compiled(pattern: str) -> re.Pattern[str]:
    found = _PATTERNS.get(pattern)
    if found is None:
        found = _PATTERNS[pattern] = re.compile(pattern, re.I)
    return found


class Kind(ABC):
    """A layer kind. Subclasses are frozen dataclasses registered with :func:`register`."""

    kind: ClassVar[str]  # the row kind in reports and JSON, e.g. "conv"
    notation: ClassVar[Notation | None]  # None: made by a block, never written
    # Listed in the homework table when it allocates: the assignment lists conv, pool and FC
    # rows; activations such as soft-max are allocations the footer mentions instead.
    homework_row: ClassVar[bool] = True

    # -- notation ------------------------------------------------------------------------
    @classmethod
    @abstractmethod
    def from_notation(cls, m: re.Match[str], opts: Options, fail: Fail) -> Kind:
        """The layer from its written name (``m``) and options."""

    @abstractmethod
    def title(self) -> str:
        """The homework table's name, in capitals as the assignment writes it: CONV3-64."""

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

    # -- value semantics: a frozen dataclass, written once (see register) -------------------
    def __init__(self, *args: object, **kwargs: object) -> None:
        names, defaults = _field_names(type(self)), _defaults(type(self))
        if len(args) > len(names):
            raise TypeError(f"{type(self).__name__} takes {len(names)} arguments, "
                            f"not {len(args)}")
        values = dict(zip(names, args, strict=False))
        for name, value in kwargs.items():
            if name not in names or name in values:
                raise TypeError(f"{type(self).__name__}: unexpected or repeated argument "
                                f"{name!r}")
            values[name] = value
        for name in names:
            if name not in values and name not in defaults:
                raise TypeError(f"{type(self).__name__} needs the argument {name!r}")
            object.__setattr__(self, name, values.get(name, defaults.get(name)))

    def __setattr__(self, name: str, value: object) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}: layers are immutable")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}: layers are immutable")

    def _values(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in _field_names(type(self)))

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self._values() == other._values()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        """Computed once: layers are cache keys (the walker meets each many times)."""
        found = self.__dict__.get("_hash")
        if found is None:
            found = hash((type(self), self._values()))
            object.__setattr__(self, "_hash", found)
        return found

    def __getstate__(self) -> dict[str, object]:
        """Copies and pickles leave the cached hash behind: string hashes differ between
        processes."""
        return {k: v for k, v in self.__dict__.items() if k != "_hash"}

    def __repr__(self) -> str:
        args = ", ".join(f"{n}={getattr(self, n)!r}" for n in _field_names(type(self)))
        return f"{type(self).__name__}({args})"


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}
_DEFAULTS: dict[type, dict[str, object]] = {}


def _field_names(cls: type) -> tuple[str, ...]:
    """A kind's dataclass fields in order (ClassVars left out), looked up once per class."""
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(f.name for f in fields(cls))  # type: ignore[arg-type]
    return names


def _defaults(cls: type) -> dict[str, object]:
    found = _DEFAULTS.get(cls)
    if found is None:
        found = _DEFAULTS[cls] = {f.name: f.default for f in fields(cls)  # type: ignore[arg-type]
                                  if f.default is not MISSING}
    return found


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


class Block(Kind):
    """A container: the walker and the builder call these instead of the leaf rules."""

    homework_row: ClassVar[bool] = True

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


K = TypeVar("K", bound=type[Kind])
REGISTRY: dict[str, type[Kind]] = {}


@dataclass_transform(eq_default=True, frozen_default=True)
def register(cls: K) -> K:
    """Make ``cls`` a frozen dataclass of its annotated fields and add it to the registry (in
    definition order: the parser tries the kinds in turn). Kind itself supplies __init__,
    equality, hashing, repr and immutability, so the dataclass machinery generates no code
    per kind: generating it cost a fifth of ``archcalc vgg19 --table``'s start-up."""
    if cls.kind in REGISTRY:
        raise AssertionError(f"layer kind {cls.kind!r} registered twice")
    made = dataclass(init=False, eq=False, repr=False)(cls)
    REGISTRY[cls.kind] = made
    return made


# -- helpers the families share -----------------------------------------------------------
def feature_map(kind: str, shape: Shape, loc: Loc) -> tuple[int, int, int]:
    if len(shape) != 3:
        raise SpecError(f"{kind} needs a feature map (C, H, W) input, got a vector of "
                        f"{shape[0]}", loc)
    return shape  # type: ignore[return-value]


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
