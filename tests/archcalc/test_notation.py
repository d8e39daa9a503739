"""archcalc.notation: tokens and numbers (the layer notation itself is tested through
archcalc.spec in test_spec.py)."""

from __future__ import annotations

from archcalc import spec
from archcalc.notation import Token, flag, parse_dims, tokenize, whole


def test_tokenize_keeps_expressions_inside_words() -> None:
    toks = tokenize("conv3-${a + 1} s=2;relu # x {")
    assert [(t.kind, t.text, t.col) for t in toks] == [
        ("word", "conv3-${a + 1}", 1), ("word", "s=2", 16), ("nl", ";", 19),
        ("word", "relu", 20), ("nl", "", 30), ("eof", "", 1)]


def test_tokenize_lines_braces_and_an_unclosed_expression() -> None:
    toks = tokenize("repeat 2 {\n\tbn ${x\n}")
    assert toks == [
        Token("word", "repeat", 1, 1), Token("word", "2", 1, 8), Token("{", "{", 1, 10),
        Token("nl", "", 1, 11),
        Token("word", "bn", 2, 2), Token("word", "${x", 2, 5),  # runs to the end of line
        Token("nl", "", 2, 8),
        Token("}", "}", 3, 1), Token("nl", "", 3, 2), Token("eof", "", 4, 1)]


def test_whole_numbers_are_ascii_and_bounded() -> None:
    assert whole("0") == 0
    assert whole(" 42 ") == 42
    assert whole("9" * 18) == 10**18 - 1
    for bad in ("9" * 19, "²", "٣", "-1", "1.0", "", "1_000", "0x10"):
        assert whole(bad) is None, bad


def test_parse_dims() -> None:
    assert parse_dims("224x224x3") == (224, 224, 3)
    assert parse_dims("32*16*3") == (32, 16, 3)
    assert parse_dims("7×5,2") == (7, 5, 2)
    assert parse_dims("10") == (10,)
    assert parse_dims("16000x1") == (16000, 1)  # a sequence, LxC
    for bad in ("axbxc", "1x2x3x4", "8²x8x3", "-1", "", "1" * 19):
        assert parse_dims(bad) is None


def test_flags_accept_words_and_0_1_only() -> None:
    assert [flag(t) for t in ("true", "ON", "yes", "1")] == [True] * 4
    assert [flag(t) for t in ("False", "off", "no", "0")] == [False] * 4
    assert [flag(t) for t in ("2", "", "maybe", " true")] == [None] * 4


def test_spec_re_exports_what_callers_import() -> None:
    assert spec.parse_dims is parse_dims and spec.tokenize is tokenize
