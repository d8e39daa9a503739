"""Whole-number arithmetic for spec parameters: ``$n``, ``${(depth-2)/6}``.

Only literals, names and + - * / // % ** are allowed; ``/`` must divide exactly, so a
depth that does not fit a formula is reported instead of silently truncated. Length, nesting
and magnitude are bounded so that no spec, however malformed, can hang or exhaust memory.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from functools import lru_cache
from typing import TYPE_CHECKING

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


class ExprError(ValueError):
    """An expression that cannot be evaluated; the parser adds the location."""


def evaluate(text: str, names: dict[str, int]) -> int:
    """Evaluate ``text`` over ``names``; the result must be a whole number."""
    if len(text) > MAX_LENGTH:
        raise ExprError(f"expression longer than {MAX_LENGTH} characters")
    try:
        value = _eval(_parse(text.strip()), names)
    except ExprError:
        raise
    except (SyntaxError, ValueError) as exc:  # ValueError: null bytes, huge literals
        raise ExprError(f"malformed expression {text!r}") from exc
    except (RecursionError, MemoryError) as exc:
        raise ExprError("expression is nested too deeply") from exc
    if not isinstance(value, int):  # a Fraction from '/'
        if value.denominator != 1:
            raise ExprError(f"{text.strip()} = {value} is not a whole number")
        value = int(value)
    return value


def _fraction(value: int | Fraction) -> Fraction:
    from fractions import Fraction  # imported on the first '/', not at start-up

    return Fraction(value)


@lru_cache(maxsize=4096)
def _parse(text: str) -> ast.expr:
    """Parse trees are reused: zoo specs evaluate the same few expressions many times."""
    return ast.parse(text, mode="eval").body


def _eval(node: ast.expr, names: dict[str, int]) -> int | Fraction:
    """The value of ``node``, never larger than MAX_VALUE in magnitude."""
    return _bounded(_eval_unbounded(node, names))


def _magnitude(value: int | Fraction) -> int | Fraction:
    return -value if value < 0 else value


def _bounded(value: int | Fraction) -> int | Fraction:
    if _magnitude(value) > MAX_VALUE:
        raise ExprError(f"value larger than {MAX_VALUE:.0e} in magnitude")
    return value


def _eval_unbounded(node: ast.expr, names: dict[str, int]) -> int | Fraction:
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return node.value
    if isinstance(node, ast.Name):
        if node.id not in names:
            known = ", ".join(names) or "none"
            raise ExprError(f"unknown parameter {node.id!r} (parameters: {known})")
        return names[node.id]
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _eval(node.left, names), _eval(node.right, names)
        if isinstance(node.op, ast.Div | ast.FloorDiv | ast.Mod) and right == 0:
            raise ExprError("division by zero")
        if isinstance(node.op, ast.Pow):
            _check_exponent(left, right)
        return _BINARY[type(node.op)](left, right)
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_eval(node.operand, names))
    raise ExprError(f"only whole numbers, parameter names and + - * / // % ** are allowed, "
                    f"not {ast.unparse(node)!r}")


def _check_exponent(base: int | Fraction, exponent: int | Fraction) -> None:
    """A whole exponent from 0 to 64 keeps ``**`` exact; the base bound keeps it small."""
    if exponent != int(exponent) or not 0 <= exponent <= 64:
        raise ExprError(f"exponent must be a whole number from 0 to 64, not {exponent}")
    if _magnitude(base) > 1 and exponent * math.log2(_magnitude(base)) > 63:
        raise ExprError(f"value larger than {MAX_VALUE:.0e} in magnitude")
