"""Property tests: no spec, however mangled, makes archcalc fail with anything but an
ArchcalcError, and the numbers it does give obey invariants checked by brute force."""

from __future__ import annotations

import operator
import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archcalc.analysis import Report, analyze
from archcalc.errors import ArchcalcError, SpecError
from archcalc.expr import ExprError, evaluate
from archcalc.kinds import Conv, Pool
from archcalc.spec import parse
from archcalc.zoo import ZOO_DIR

FUZZ = settings(max_examples=1500, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
ZOO_TEXTS = [p.read_text(encoding="utf-8") for p in sorted(ZOO_DIR.glob("*.arch"))]
TOKENS = [
    "{", "}", "{ }", ";", "\n", "#", "$", "${", "=", "x0", "x2", "x99999", "repeat", "repeat 3",
    "concat", "branch", "residual", "shortcut=A", "shortcut=B", "shortcut=C", "input", "model",
    "param", "let", "variant", "source", "input 8x8x3", "conv3-8", "conv0-1", "conv9-4 s=3",
    "maxpool", "avgpool3 ceil=true", "pool0", "gap", "FC-0", "FC-7", "flatten", "bn", "relu",
    "soft-max", "dropout-2", "lrn", "s=0", "p=9", "p=same", "g=7", "d=99", "${1/0}",
    "${2**64}", "${n}", "${depth*depth*depth}", "$depth", "$nope", "0", "-1", "1e9",
    "9" * 25, "9" * 5000, "${" + "+".join(["1"] * 600) + "}",
    "${" + "(" * 150 + "1" + ")" * 150 + "}",
    "é", "\t", "²", "\x00", "\\", "x",
]
NUMBERS = st.one_of(
    st.integers(0, 4), st.integers(0, 10**6),
    st.sampled_from([0, 1, 10_000, 10_001, 2**31, 10**18 - 1, 10**18, 10**19, 10**100]),
)


def outcome(text: str, overrides: dict[str, int] | None = None) -> Report | None:
    """Parse and analyze; an ArchcalcError is a fine answer, anything else fails the test."""
    try:
        return analyze(parse(text, "fuzz.arch", overrides))
    except ArchcalcError as err:
        rendered = err.render() if isinstance(err, SpecError) else str(err)
        assert rendered.strip()
        if isinstance(err, SpecError) and err.loc is not None:
            assert err.loc.line >= 1 and err.loc.col >= 1
            assert str(err).startswith(f"fuzz.arch:{err.loc.line}:{err.loc.col}: ")
        return None


def check_report(rep: Report) -> None:
    """Invariants every report keeps."""
    for row in rep.rows:
        assert min(row.params.weights, row.params.biases, row.params.buffers) >= 0
        assert row.macs >= 0 and row.flops >= 0
        assert all(d >= 1 for d in row.out_shape)
        if row.rf is not None:
            assert min(row.rf.size) >= 1 and min(row.rf.stride) >= 1
    totals = rep.totals
    assert totals.params == sum(r.params.trainable for r in rep.rows)
    assert totals.buffers == sum(r.params.buffers for r in rep.rows)
    assert totals.macs == sum(r.macs for r in rep.rows)
    assert totals.flops == sum(r.flops for r in rep.rows)
    assert rep.peak_live >= rep.input_elements


# -- mangled specs --------------------------------------------------------------------------
@st.composite
def mutated_zoo_spec(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(ZOO_TEXTS))
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["delete", "duplicate", "swap", "insert", "number"]))
        i = draw(st.integers(0, max(len(text) - 1, 0)))
        if kind == "delete":
            text = text[:i] + text[i + 1:]
        elif kind == "duplicate":
            text = text[:i] + text[i:i + 1] + text[i:]
        elif kind == "swap":
            text = text[:i] + text[i + 1:i + 2] + text[i:i + 1] + text[i + 2:]
        elif kind == "insert":
            text = f"{text[:i]} {draw(st.sampled_from(TOKENS))} {text[i:]}"
        else:
            numbers = list(re.finditer(r"[0-9]+", text))
            if numbers:
                m = numbers[draw(st.integers(0, len(numbers) - 1))]
                text = text[:m.start()] + str(draw(NUMBERS)) + text[m.end():]
    return text


@FUZZ
@given(mutated_zoo_spec())
def test_mutated_zoo_specs_give_a_report_or_an_archcalc_error(text: str) -> None:
    rep = outcome(text)
    if rep is not None:
        check_report(rep)


@FUZZ
@given(st.sampled_from(ZOO_TEXTS),
       st.dictionaries(st.sampled_from(["depth", "width", "classes", "size", "nope"]), NUMBERS,
                       max_size=2))
def test_zoo_specs_with_random_overrides(text: str, overrides: dict[str, int]) -> None:
    rep = outcome(text, overrides)
    if rep is not None:
        check_report(rep)


@FUZZ
@given(st.booleans(), st.lists(st.sampled_from(TOKENS), max_size=30))
def test_token_soup_gives_a_report_or_an_archcalc_error(header: bool, words: list[str]) -> None:
    text = ("input 16x16x3\n" if header else "") + " ".join(words)
    rep = outcome(text)
    if rep is not None:
        check_report(rep)


@settings(max_examples=600, deadline=None)
@given(st.text(max_size=300))
def test_arbitrary_text_gives_a_report_or_an_archcalc_error(text: str) -> None:
    outcome(text)
    outcome("input 8x8x3\n" + text)


@settings(max_examples=1000, deadline=None)
@given(st.text(alphabet="0123456789+-*/%() abn$.{}", max_size=60))
def test_expressions_give_an_int_or_an_expr_error(text: str) -> None:
    try:
        value = evaluate(text, {"a": 3, "b": 0, "n": 10**18})
    except ExprError:
        return
    assert type(value) is int and abs(value) <= 10**18


PYTHON = {
    "+": operator.add, "-": operator.sub, "*": operator.mul, "//": operator.floordiv,
    "%": operator.mod, "/": operator.floordiv,  # "/" only where it divides exactly
}


@settings(max_examples=200, deadline=None)
@given(st.integers(-1000, 1000), st.integers(-1000, 1000), st.sampled_from(sorted(PYTHON)))
def test_expressions_agree_with_python(a: int, b: int, op: str) -> None:
    text = f"({a}) {op} ({b})"
    if (op in ("//", "%", "/") and b == 0) or (op == "/" and a % b):
        try:
            evaluate(text, {})
        except ExprError:
            return
        raise AssertionError(f"{text} should be refused")
    assert evaluate(text, {}) == PYTHON[op](a, b)


OPENERS = {
    "repeat 2 {": "}", "repeat 0 {": "}", "residual {": "}", "residual shortcut=C {": "}",
    "concat { branch { relu } branch {": "} }", "relu x3 ; repeat 1 {": "}",
}


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(sorted(OPENERS)), max_size=150), st.booleans())
def test_deep_nesting_gives_a_report_or_an_archcalc_error(openers: list[str],
                                                          balanced: bool) -> None:
    closers = [OPENERS[o] for o in reversed(openers)][: None if balanced else -1]
    text = "input 4x4x2\n" + "\n".join(openers) + "\nconv1-2\n" + "\n".join(closers)
    rep = outcome(text)
    if rep is not None:
        check_report(rep)


# -- plain chains, checked by brute force ---------------------------------------------------
conv_text = st.builds(
    lambda k, c, s, p, d: f"conv{k}-{c} s={s} p={p} d={d}",
    st.integers(1, 5), st.integers(1, 6), st.integers(1, 3), st.integers(0, 3), st.integers(1, 3))
pool_text = st.builds(
    lambda op, k, s, p, ceil: f"{op}pool{k} s={s} p={p} ceil={ceil}",
    st.sampled_from(["max", "avg"]), st.integers(1, 4), st.integers(1, 3), st.integers(0, 2),
    st.sampled_from(["true", "false"]))
chain = st.lists(st.one_of(conv_text, pool_text, st.just("relu"), st.just("bn")),
                 min_size=1, max_size=6)


def windows(size: int, kernel: int, stride: int, pad: int, dilation: int, ceil: bool) -> int:
    """Slide the window over the padded input and count its positions, torch's way: in ceil
    mode a window may run past the padded end by less than a stride, as long as it starts
    inside the input or its left padding (so a 3-wide window on 2 pixels makes one output,
    as torch's pooling_output_shape does: SqueezeNet at 24 px)."""
    padded, span = size + 2 * pad, dilation * (kernel - 1) + 1
    limit = padded + (stride - 1 if ceil else 0)
    count, start = 0, 0
    while start + span <= limit and (not ceil or start < size + pad):
        count += 1
        start += stride
    return count


def field_of(units: tuple[int, int], layers: list[tuple[int, int, int, int]]) -> tuple[int, int]:
    """Input interval seen by output units ``units`` of a stack of (k, s, p, d) windows."""
    lo, hi = units
    for kernel, stride, pad, dilation in reversed(layers):
        lo, hi = lo * stride - pad, hi * stride - pad + dilation * (kernel - 1)
    return lo, hi


@settings(max_examples=1000, deadline=None)
@given(chain, st.integers(1, 40), st.integers(1, 4))
def test_plain_chains_match_brute_force(layers: list[str], size: int, channels: int) -> None:
    text = f"input {size}x{size}x{channels}\n" + "\n".join(layers)
    graph = parse(text, "chain.arch")
    rep = outcome(text)
    if rep is None:
        # the only fault a chain of valid layers can have: a window larger than its input
        # or pool padding over half the kernel
        expect_failure(graph.body, size)
        return
    check_report(rep)
    windows_so_far: list[tuple[int, int, int, int]] = []
    previous = None
    for node, row in zip(graph.body, rep.rows, strict=True):
        layer = node.layer
        if isinstance(layer, Conv | Pool):
            k, s, p = layer.kernel[0], layer.stride[0], layer.padding[0]
            d = layer.dilation[0] if isinstance(layer, Conv) else 1
            ceil = isinstance(layer, Pool) and layer.ceil_mode
            assert row.out_shape[1] == windows(row.in_shape[1], k, s, p, d, ceil)
            windows_so_far.append((k, s, p, d))
        assert row.rf is not None
        lo, hi = field_of((0, 0), windows_so_far)
        assert (row.rf.size[0], row.rf.start[0]) == (hi - lo + 1, lo)
        assert row.rf.stride[0] == field_of((1, 1), windows_so_far)[0] - lo
        if previous is not None:  # monotone along a chain
            assert row.rf.size[0] >= previous.size[0]
            assert row.rf.stride[0] >= previous.stride[0]
        previous = row.rf


def expect_failure(body: tuple, size: int) -> None:  # type: ignore[type-arg]
    """Replay the chain by brute force and find the layer that cannot run."""
    for node in body:
        layer = node.layer
        if not isinstance(layer, Conv | Pool):
            continue
        k, s, p = layer.kernel[0], layer.stride[0], layer.padding[0]
        d = layer.dilation[0] if isinstance(layer, Conv) else 1
        if isinstance(layer, Pool) and 2 * p > k:
            return
        size = windows(size, k, s, p, d, isinstance(layer, Pool) and layer.ceil_mode)
        if size == 0:
            return
    raise AssertionError("the analysis refused a chain that brute force can run")


@settings(max_examples=300, deadline=None)
@given(chain, st.integers(8, 40))
def test_labels_parse_back_to_the_same_layers(layers: list[str], size: int) -> None:
    graph = parse(f"input {size}x{size}x3\n" + "\n".join(layers))
    again = parse(f"input {size}x{size}x3\n" + "\n".join(n.label for n in graph.body))
    assert [n.layer for n in again.body] == [n.layer for n in graph.body]
