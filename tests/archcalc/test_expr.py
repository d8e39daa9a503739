"""archcalc.expr: whole-number arithmetic over spec parameters, exact or refused."""

from __future__ import annotations

import pytest

from archcalc.expr import MAX_LENGTH, MAX_VALUE, ExprError, evaluate


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("7", 7),
        ("2 + 3 * 4", 14),  # precedence: 3*4 first
        ("(2 + 3) * 4", 20),
        ("(depth - 2) / 6", 3),  # (20 - 2) / 6 = 18 / 6
        ("depth // 6", 3),  # 20 // 6 = 3 remainder 2
        ("depth % 6", 2),
        ("-7 // 2", -4),  # floor, as Python: -3.5 -> -4
        ("2 ** 10", 1024),
        ("-depth", -20),
        ("+depth", 20),
        ("(1 / 2) * 4", 2),  # 1/2 stays exact until the result is whole
        ("width * 2 ** 2", 64),  # 16 * 4
        ("0 ** 0", 1),
        ("4 ** (4 / 2)", 16),  # a whole-valued fraction is a fine exponent
    ],
)
def test_evaluates_whole_number_arithmetic(text: str, expected: int) -> None:
    assert evaluate(text, {"depth": 20, "width": 16}) == expected


def test_result_is_a_plain_int() -> None:
    value = evaluate("(1 / 2) * 4", {})
    assert type(value) is int


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("7 / 2", "7 / 2 = 7/2 is not a whole number"),
        ("(depth - 3) / 6", "is not a whole number"),  # 17 / 6
        ("7 / 0", "division by zero"),
        ("7 // (depth - 20)", "division by zero"),
        ("7 % 0", "division by zero"),
        ("2 ** -1", "exponent must be a whole number from 0 to 64, not -1"),
        ("1 ** 65", "exponent must be a whole number from 0 to 64, not 65"),
        ("4 ** (1 / 2)", "exponent must be a whole number from 0 to 64, not 1/2"),
        ("nope + 1", "unknown parameter 'nope' (parameters: depth)"),
        ("1.5", "only whole numbers"),
        ("'a'", "only whole numbers"),
        ("True", "only whole numbers"),
        ("f(1)", "only whole numbers"),
        ("1 if depth else 2", "only whole numbers"),
        ("depth < 3", "only whole numbers"),
        ("[1]", "only whole numbers"),
        ("~1", "only whole numbers"),
        ("1 +", "malformed expression"),
        ("", "malformed expression"),
        ("1\0", "malformed expression"),
        ("import os", "malformed expression"),
    ],
)
def test_refuses_what_is_not_exact_whole_arithmetic(text: str, message: str) -> None:
    with pytest.raises(ExprError) as info:
        evaluate(text, {"depth": 20})
    assert message in str(info.value)


def test_unknown_name_without_parameters_says_none() -> None:
    with pytest.raises(ExprError, match=r"unknown parameter 'n' \(parameters: none\)"):
        evaluate("n", {})


def test_magnitude_is_bounded() -> None:
    assert evaluate(f"{MAX_VALUE}", {}) == 10**18
    assert evaluate("10 ** 18", {}) == 10**18
    assert evaluate(f"-{MAX_VALUE}", {}) == -(10**18)
    for text in (f"{MAX_VALUE} + 1", "2 ** 64", "(2 ** 32) ** 2", "9" * 30, "((2**64)**64)**64"):
        with pytest.raises(ExprError, match="larger than 1e\\+18"):
            evaluate(text, {})


def test_intermediate_values_are_bounded_too() -> None:
    # 10**18 * 10 / 10 would be whole, but the product alone is out of bounds
    with pytest.raises(ExprError, match="larger than"):
        evaluate("10 ** 18 * 10 / 10", {})


def test_length_and_depth_are_bounded() -> None:
    long = "+".join(["1"] * (MAX_LENGTH // 2 + 1))  # 2n - 1 > MAX_LENGTH characters
    assert len(long) > MAX_LENGTH
    with pytest.raises(ExprError, match=f"longer than {MAX_LENGTH} characters"):
        evaluate(long, {})
    assert evaluate("-" * 100 + "1", {}) == 1  # an even number of minus signs
    parens = "(" * 250 + "1" + ")" * 250  # Python's parser stops at 200 parentheses
    with pytest.raises(ExprError, match="too many nested parentheses"):
        evaluate(parens, {})


@pytest.mark.parametrize(("text", "expected"), [
    ("+".join(["1"] * 500), 500),
    ("-" * (MAX_LENGTH - 10) + "1", (-1) ** (MAX_LENGTH - 10)),
    ("**".join(["1"] * 333), 1),
    ("-".join(["2"] * 499), 2 - 2 * 498),  # left to right: ((2 - 2) - 2) - ...
])
def test_a_tree_as_deep_as_the_length_allows_is_evaluated(text: str, expected: int) -> None:
    """Evaluation keeps a stack of its own: a flat sum of 500 terms is a tree 500 deep, and
    was refused as "nested too deeply" while Python's recursion limit was the evaluator's."""
    assert len(text) <= MAX_LENGTH
    assert evaluate(text, {}) == expected


def test_expr_error_is_a_value_error_that_the_parser_locates() -> None:
    # ExprError carries no location: archcalc.spec turns it into a located SpecError.
    assert issubclass(ExprError, ValueError)
