"""Whole-number arithmetic for spec parameters: ``$n``, ``${(depth-2)/6}``.

Only literals, names and + - * / // % ** are allowed; ``/`` must divide exactly, so a
depth that does not fit a formula is reported instead of silently truncated.
"""

from __future__ import annotations

import ast
import operator
from fractions import Fraction

_BINARY = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: lambda a, b: Fraction(a) / Fraction(b),
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos}


class ExprError(ValueError):
    """An expression that cannot be evaluated; the parser adds the location."""


def evaluate(text: str, names: dict[str, int]) -> int:
    """Evaluate ``text`` over ``names``; the result must be a whole number."""
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ExprError(f"malformed expression {text!r}") from exc
    value = _eval(tree.body, names)
    if isinstance(value, Fraction):
        if value.denominator != 1:
            raise ExprError(f"{text.strip()} = {value} is not a whole number")
        value = int(value)
    return value


def _eval(node: ast.expr, names: dict[str, int]) -> int | Fraction:
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
        if isinstance(node.op, ast.Pow) and (right < 0 or right > 64):
            raise ExprError("exponent must be between 0 and 64")
        return _BINARY[type(node.op)](left, right)
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_eval(node.operand, names))
    raise ExprError(f"only whole numbers, parameter names and + - * / // % ** are allowed, "
                    f"not {ast.unparse(node)!r}")
