"""Whole-number arithmetic for spec parameters: ``$n``, ``${(depth-2)/6}``.

Only literals, names and + - * / // % ** are allowed; ``/`` must divide exactly, so a
depth that does not fit a formula is reported instead of silently truncated. The evaluator's
work is bounded so that no spec, however malformed, can hang or exhaust memory: the length
of an expression (so its parse tree), every intermediate value (a whole number, or a
fraction's numerator and denominator, at most 10^18 in magnitude), and, through a
:class:`Budget` shared by a file's expressions, the operations of all of them together.
Evaluation walks the tree with a stack of its own, not by recursion: a sum of 500 terms
(a tree 500 deep) is as fine as a short one.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from functools import lru_cache
from typing import TYPE_CHECKING

from archcalc.errors import shorten, suggest

if TYPE_CHECKING:
    from fractions import Fraction

_BINARY: dict[type[ast.operator], Callable[[int | Fraction, int | Fraction], int | Fraction]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: lambda a, b: _fraction(a) / b,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[int | Fraction], int | Fraction]] = {
    ast.USub: lambda a: -a, ast.UAdd: lambda a: a}
MAX_VALUE = 10**18  # no layer dimension comes near; bounds every intermediate result
MAX_LENGTH = 1000  # characters of one expression; keeps the parse tree shallow
MAX_OPERATIONS = 1_000_000  # numbers, names and operators evaluated in one file (~1 s)


class Budget:
    """The operations a file's expressions may still evaluate, spent as each is evaluated."""

    def __init__(self, limit: int = MAX_OPERATIONS) -> None:
        self.limit = limit
        self.left = limit

    def spend(self, operations: int) -> None:
        self.left -= operations
        if self.left < 0:
            raise ExprError(f"expressions evaluate more than {self.limit:,} operations in "
                            "all; write fewer or shorter expressions")


class ExprError(ValueError):
    """An expression that cannot be evaluated; the parser adds the location."""


def evaluate(text: str, names: dict[str, int], budget: Budget | None = None) -> int:
    """Evaluate ``text`` over ``names``; the result must be a whole number. ``budget``: the
    operations left to the file the expression is in."""
    if len(text) > MAX_LENGTH:
        raise ExprError(f"expression longer than {MAX_LENGTH} characters")
    try:
        tree, size = _parse(text.strip())
    except SyntaxError as exc:  # the parser's reason: "invalid syntax", "too many nested..."
        raise ExprError(f"malformed expression {shorten(text.strip())!r}: {exc.msg}") from exc
    except ValueError as exc:  # null bytes, literals past Python's 4300 digits
        raise ExprError(f"malformed expression {shorten(text.strip())!r}") from exc
    except (RecursionError, MemoryError) as exc:  # Python 3.11's parser: its stack limit
        raise ExprError("expression is nested more deeply than Python's parser allows") from exc
    if budget is not None:
        budget.spend(size)
    if type(tree) is ast.Name:  # ``$bias``: most of a zoo file's expressions
        return _bounded(_leaf(tree, names))  # type: ignore[return-value]
    value = _eval(tree, names)  # its own errors are ExprErrors; a MemoryError is a bug
    if not isinstance(value, int):  # a Fraction from '/'
        if value.denominator != 1:
            raise ExprError(f"{text.strip()} = {value} is not a whole number")
        value = int(value)
    return value


def _fraction(value: int | Fraction) -> Fraction:
    from fractions import Fraction  # imported on the first '/', not at start-up

    return Fraction(value)


@lru_cache(maxsize=4096)
def _parse(text: str) -> tuple[ast.expr, int]:
    """The parse tree and its number of nodes (the operations evaluating it costs). Trees
    are reused: zoo specs evaluate the same few expressions many times."""
    tree = ast.parse(text, mode="eval").body
    return tree, sum(1 for _ in ast.walk(tree))


def _eval(node: ast.expr, names: dict[str, int]) -> int | Fraction:
    """The value of ``node``; every intermediate value at most MAX_VALUE in magnitude.
    Post-order over an explicit stack: operands are evaluated left to right, then their
    operator, so the tree's depth costs a list entry, not a Python frame."""
    todo: list[tuple[ast.expr, bool]] = [(node, False)]  # (node, operands already done)
    values: list[int | Fraction] = []
    while todo:
        item, ready = todo.pop()
        if isinstance(item, ast.BinOp) and type(item.op) in _BINARY:
            if not ready:
                todo += [(item, True), (item.right, False), (item.left, False)]
                continue
            right, left = values.pop(), values.pop()
            values.append(_bounded(_binary(item.op, left, right)))
        elif isinstance(item, ast.UnaryOp) and type(item.op) in _UNARY:
            if not ready:
                todo += [(item, True), (item.operand, False)]
                continue
            values.append(_bounded(_UNARY[type(item.op)](values.pop())))
        else:
            values.append(_bounded(_leaf(item, names)))
    (value,) = values
    return value


def _magnitude(value: int | Fraction) -> int | Fraction:
    return -value if value < 0 else value


def _bounded(value: int | Fraction) -> int | Fraction:
    if isinstance(value, int):
        if _magnitude(value) > MAX_VALUE:
            raise ExprError(f"value larger than {MAX_VALUE:.0e} in magnitude")
    elif _magnitude(value.numerator) > MAX_VALUE or value.denominator > MAX_VALUE:
        raise ExprError(f"fraction with a numerator or denominator larger than "
                        f"{MAX_VALUE:.0e} in magnitude")
    return value


def _binary(op: ast.operator, left: int | Fraction, right: int | Fraction) -> int | Fraction:
    if isinstance(op, ast.Div | ast.FloorDiv | ast.Mod) and right == 0:
        raise ExprError("division by zero")
    if isinstance(op, ast.Pow):
        _check_exponent(left, right)
    return _BINARY[type(op)](left, right)


def _leaf(node: ast.expr, names: dict[str, int]) -> int:
    """A whole-number literal or a parameter's value; anything else is refused."""
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return node.value
    if isinstance(node, ast.Name):
        if node.id not in names:
            known = ", ".join(names) or "none"
            raise ExprError(f"unknown parameter {node.id!r}{suggest(node.id, list(names))} "
                            f"(parameters: {known})")
        return names[node.id]
    raise ExprError(f"only whole numbers, parameter names and + - * / // % ** are allowed, "
                    f"not {shorten(ast.unparse(node))!r}")


def _check_exponent(base: int | Fraction, exponent: int | Fraction) -> None:
    """A whole exponent from 0 to 64 keeps ``**`` exact; checking the size of the power
    before computing it keeps it small (a fraction's numerator and denominator alike)."""
    if exponent != int(exponent) or not 0 <= exponent <= 64:
        raise ExprError(f"exponent must be a whole number from 0 to 64, not {exponent}")
    if isinstance(base, int):
        if _magnitude(base) > 1 and exponent * math.log2(_magnitude(base)) > 63:
            raise ExprError(f"value larger than {MAX_VALUE:.0e} in magnitude")
        return
    for part in (_magnitude(base.numerator), base.denominator):
        if part > 1 and exponent * math.log2(part) > 63:
            raise ExprError(f"fraction with a numerator or denominator larger than "
                            f"{MAX_VALUE:.0e} in magnitude")
