"""Reuse in the spec language: blocks defined once with parameters and called many times,
and loop indices in ``repeat``. Paths stay unique and stable, faults are located to the
column, and the parser's bounds hold for calls too. MobileNetV2 and ShuffleNetV2 written with
defined blocks give torchvision's parameter counts."""

from __future__ import annotations

import importlib.util
import re
import time

import pytest

import archcalc
from archcalc.errors import SpecError
from archcalc.kinds import Activation, Conv, Residual
from archcalc.layers import Node, walk
from archcalc.spec import parse

needs_verify = pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("torch", "torchinfo", "fvcore")),
    reason="the verify extra (torch, torchinfo, fvcore) is not installed")

CBR = "define cbr(c, s=1) {\n  conv3-$c s=$s bias=false; bn; relu\n}\n"


def nodes(text: str) -> list[Node]:
    return list(walk(parse(text, "t.arch").body))


def fault(text: str) -> SpecError:
    with pytest.raises(SpecError) as info:
        parse(text, "bad.arch")
    return info.value


# -- defined blocks ------------------------------------------------------------------------
def test_a_call_expands_the_body_with_its_arguments() -> None:
    got = nodes(CBR + "input 8x8x3\ncbr 16\ncbr 32 2\ncbr c=8 s=2\ncbr 4 s=1")
    assert [n.label for n in got] == [
        "conv3-16 s=1 bias=false", "bn", "relu", "conv3-32 s=2 bias=false", "bn", "relu",
        "conv3-8 s=2 bias=false", "bn", "relu", "conv3-4 s=1 bias=false", "bn", "relu"]
    # a call is numbered as a repeat copy: its statement, then the body's statements
    assert [n.path for n in got] == [f"{i}.{j}" for i in range(1, 5) for j in range(1, 4)]
    assert got[0].layer == Conv(16, (3, 3), (1, 1), (1, 1), bias=False)
    assert (got[0].loc.line, got[0].loc.col) == (2, 3)  # where the body writes the layer


def test_arguments_are_expressions_over_the_callers_names() -> None:
    text = ("param w = 4\n" + CBR + "input 8x8x3\ncbr $w\ncbr ${2*w}\ncbr w*3\n"
            "repeat 2 as i { cbr ${w + i} s=${i + 1} }")
    labels = [n.label for n in nodes(text) if n.layer.kind == "conv"]
    assert labels == ["conv3-4 s=1 bias=false", "conv3-8 s=1 bias=false",
                      "conv3-12 s=1 bias=false", "conv3-4 s=1 bias=false",
                      "conv3-5 s=2 bias=false"]


def test_defaults_may_use_header_and_earlier_parameters() -> None:
    text = ("param w = 6\ndefine two(a, b=a*2, c=w) { conv1-$a; conv1-$b; conv1-$c }\n"
            "input 4x4x3\ntwo 3\ntwo 3 5\ntwo 3 c=7")
    widths = [n.layer.out_channels for n in nodes(text)]  # type: ignore[attr-defined]
    assert widths == [3, 6, 6, 3, 5, 6, 3, 6, 7]


def test_blocks_call_blocks_inside_containers() -> None:
    text = ("define unit(c) { residual { conv3-$c; relu } }\n"
            "define stage(c, n) { repeat $n { unit c } }\n"
            "define pair(c) { concat { branch { unit c } branch { } } }\n"
            "input 8x8x4\nstage 4 2\npair 4\ngate { gap; unit 8 }")
    got = nodes(text)
    paths = [n.path for n in got]
    assert len(paths) == len(set(paths))
    # stage (statement 1) -> its repeat (1) -> copy 1 -> unit (1) -> its residual (1)
    assert paths[:6] == ["1.1.1.1.1", "1.1.1.1.1.1", "1.1.1.1.1.2", "1.1.2.1.1",
                         "1.1.2.1.1.1", "1.1.2.1.1.2"]
    assert isinstance(got[0].layer, Residual)
    # pair (2) -> concat (1) -> branch 1 -> unit (1) -> residual (1); gate (3) -> unit (2)
    assert "2.1.b1.1.1" in paths and "3.2.1" in paths
    assert archcalc.analyze(parse(text)).rows[-1].kind == "gate"


def test_block_names_are_case_insensitive_and_bodies_checked_when_called() -> None:
    text = "define Unit(c) { conv3-$c }\ninput 4x4x3\nUNIT 2\nunit 3"
    assert [n.label for n in nodes(text)] == ["conv3-2", "conv3-3"]
    # an uncalled body is not parsed (its numbers need arguments), so its typo goes unseen
    assert nodes("define unused(c) { convx-$c }\ninput 4x4x3\nrelu")[0].layer == Activation()


def test_the_callee_does_not_see_the_callers_loop_index() -> None:
    err = fault("define f(c) { conv3-${c + i} }\ninput 4x4x3\nrepeat 2 as i { f 2 }")
    assert err.message.startswith("unknown parameter 'i' (parameters: c)")
    assert err.message.endswith("(in block 'f' called at bad.arch:3:17)")
    assert (err.loc.line, err.loc.col) == (1, 21)  # type: ignore[union-attr]


def test_an_error_in_a_body_names_the_innermost_call() -> None:
    text = ("define inner(c) { conv3-$c s=0 }\ndefine outer(c) { inner c }\n"
            "input 4x4x3\nouter 2")
    err = fault(text)
    assert err.message == ("stride must be at least 1, not '0' (in block 'inner' called at "
                           "bad.arch:2:19)")
    assert (err.loc.line, err.loc.col) == (1, 30)  # type: ignore[union-attr]


# -- loop indices ----------------------------------------------------------------------------
def test_repeat_as_binds_the_index_from_zero() -> None:
    got = nodes("input 32x32x3\nrepeat 4 as i { conv3-${16 * 2**i} }")
    assert [n.label for n in got] == ["conv3-16", "conv3-32", "conv3-64", "conv3-128"]
    # the same paths as a repeat without an index
    assert [n.path for n in got] == ["1.1.1", "1.2.1", "1.3.1", "1.4.1"]


def test_nested_loop_indices_and_their_scope() -> None:
    text = "input 8x8x3\nrepeat 2 as i { repeat 3 as j { conv1-${10*i + j + 1} } }"
    assert [n.label for n in nodes(text)] == [f"conv1-{10 * i + j + 1}" for i in range(2)
                                              for j in range(3)]
    # the index is gone after its repeat
    err = fault("input 8x8x3\nrepeat 2 as i { relu }\nconv3-${i + 1}")
    assert err.message.startswith("unknown parameter 'i'")


def test_a_zero_count_reads_nothing_of_its_body() -> None:
    assert nodes("input 8x8x3\nrepeat 0 as i { conv3-${i + 1} }") == []
    assert nodes("input 8x8x3\nrepeat 0 as i { conv3-${8 / i} }") == []
    err = fault("input 8x8x3\nrepeat 1 as i { conv3-${8 / i} }")  # expanded: index 0
    assert err.message.startswith("division by zero")


# -- faults, located -------------------------------------------------------------------------
BAD = [
    # (spec, line, col, message start); columns counted by hand, 1-based
    ("define x(a) { relu }\ninput 4x4x3\nx 1 2", 3, 5,
     "block 'x' takes 1 argument (a), got 2"),
    ("define x(a, b) { relu }\ninput 4x4x3\nx 1 2 3", 3, 7,
     "block 'x' takes 2 arguments (a, b), got 3"),
    ("define x { relu }\ninput 4x4x3\nx 1", 3, 3, "block 'x' takes 0 arguments (none), got 1"),
    ("define x(a) { relu }\ninput 4x4x3\n  x", 3, 3,
     "block 'x' needs a value for 'a' (parameters: a)"),
    ("define x(a) { relu }\ninput 4x4x3\nx b=1", 3, 3,
     "block 'x' has no parameter 'b' (parameters: a)"),
    ("define x(a) { relu }\ninput 4x4x3\nx 1 a=2", 3, 5, "argument 'a' given twice"),
    ("define x(a, b) { relu }\ninput 4x4x3\nx a=1 2", 3, 7,
     "a positional argument cannot follow PARAM=VALUE ones"),
    ("define x(a) { relu }\ninput 4x4x3\nx a=", 3, 5, "argument 'a' has no value"),
    ("define x(a) { relu }\ninput 4x4x3\nx 1+", 3, 3, "malformed expression '1+'"),
    ("define x(a) { relu }\ninput 4x4x3\nx a=7/2", 3, 5, "7/2 = 7/2 is not a whole number"),
    ("define x(a) { relu }\ninput 4x4x3\nx q", 3, 3, "unknown parameter 'q'"),
    ("define ir(a) { relu }\ninput 4x4x3\nri 32 16", 3, 1,
     "unknown layer or block 'ri' (blocks: ir; layers: see 'archcalc spec --help')"),
    # the definition itself
    ("define\ninput 4x4x3\nrelu", 1, 7, "expected 'define NAME(PARAM, ...) { ... }'"),
    ("define x(a)\n{ relu }\ninput 4x4x3\nrelu", 1, 12,
     "expected 'define NAME(PARAM, ...) { ... }'"),
    ("define 3x { }\ninput 4x4x3\nrelu", 1, 8, "expected a block name after 'define'"),
    ("define x(a { relu }\ninput 4x4x3\nrelu", 1, 9,
     "expected '(PARAM, ...)' or '{' after the block name"),
    ("define x y { relu }\ninput 4x4x3\nrelu", 1, 10,
     "expected '(PARAM, ...)' or '{' after the block name"),
    ("define x(a, a) { }\ninput 4x4x3\nrelu", 1, 13, "parameter 'a' is listed twice"),
    ("define x(a,, b) { }\ninput 4x4x3\nrelu", 1, 12, "expected a parameter name, found ''"),
    ("define x(2a) { }\ninput 4x4x3\nrelu", 1, 10, "expected a parameter name, found '2a'"),
    ("define x(a, b = ) { }\ninput 4x4x3\nrelu", 1, 13, "parameter 'b' has '=' but no default"),
    ("define x(a, b = a +) { relu }\ninput 4x4x3\nx 1", 1, 17, "malformed expression 'a +'"),
    ("define x(a) { relu }\ndefine X(b) { relu }\ninput 4x4x3\nrelu", 2, 8,
     "block 'X' is defined twice"),
    ("define relu(a) { }\ninput 4x4x3\nrelu", 1, 8, "'relu' is a layer's name"),
    ("define conv3-8 { }\ninput 4x4x3\nrelu", 1, 13,
     "expected '(PARAM, ...)' or '{' after the block name"),
    ("define repeat(a) { }\ninput 4x4x3\nrelu", 1, 8, "'repeat' is a word of the language"),
    ("define x(a) { relu \ninput 4x4x3\nx 1", 1, 13, "this '{' is never closed"),
    ("param a = 1\ndefine x(b, a) { relu }\ninput 4x4x3\nrelu", 2, 13,
     "parameter 'a' of block 'x' has the name of a spec parameter"),
    ("define x(a) { relu }\nparam a = 1\ninput 4x4x3\nrelu", 1, 10,
     "parameter 'a' of block 'x' has the name of a spec parameter"),
    ("input 4x4x3\nrelu\ndefine x(a) { relu }", 3, 1, "'define' belongs in the header"),
    ("define x(a) { define y(b) { } }\ninput 4x4x3\nx 1", 1, 15,
     "'define' belongs in the header"),
    ("define x(a) { param w = 1 }\ninput 4x4x3\nx 1", 1, 15, "'param' belongs in the header"),
    # recursion
    ("define x(a) { x $a }\ninput 4x4x3\nx 1", 1, 15,
     "block 'x' calls itself (x -> x); recursion is not allowed"),
    ("define y(a) { relu; x $a }\ndefine x(a) { y $a }\ninput 4x4x3\nx 1", 1, 21,
     "block 'x' calls itself (x -> y -> x); recursion is not allowed"),
    # loop indices
    ("input 4x4x3\nrepeat 2 as i { repeat 2 as i { relu } }", 2, 29,
     "'i' is already defined here; name the loop index otherwise"),
    ("param n = 2\ninput 4x4x3\nrepeat 2 as n { relu }", 3, 13, "'n' is already defined"),
    ("define x(c) { repeat 2 as c { relu } }\ninput 4x4x3\nx 1", 1, 27,
     "'c' is already defined"),
    ("input 4x4x3\nrepeat 2 as 3 { relu }", 2, 13, "a loop index is a name"),
    ("input 4x4x3\nrepeat 2 as { relu }", 2, 13, "expected a name after 'as', found '{'"),
    ("input 4x4x3\nrepeat 2 as i j { relu }", 2, 15, "expected '{' after 'as i', found 'j'"),
    ("input 4x4x3\nrepeat 2 as\n{ relu }", 2, 12, "expected a name after 'as', found end of "
                                                  "line"),
]


@pytest.mark.parametrize(("text", "line", "col", "message"), BAD,
                         ids=[f"{i}-{b[3][:30]}" for i, b in enumerate(BAD)])
def test_bad_reuse_is_located_to_the_column(text: str, line: int, col: int,
                                            message: str) -> None:
    err = fault(text)
    assert err.message.startswith(message), err.message
    assert err.loc is not None
    assert (err.loc.file, err.loc.line, err.loc.col) == ("bad.arch", line, col), str(err)


def test_the_caret_goes_under_the_fault_in_a_signature() -> None:
    err = fault("define x(a, b = a +) { relu }\ninput 4x4x3\nx 1")
    assert err.render().splitlines()[1:] == ["  define x(a, b = a +) { relu }",
                                             "                  ^"]


# -- bounds: no text can hang the parser ----------------------------------------------------
def test_calls_count_towards_the_nesting_bound() -> None:
    # b0 calls b1 calls ... b59: more than 50 blocks deep
    chain = "".join(f"define b{i}(a) {{ b{i + 1} a }}\n" for i in range(59))
    err = fault(chain + "define b59(a) { relu }\ninput 4x4x3\nb0 1")
    assert "blocks nested more than 50 deep" in err.message


def test_doubling_calls_hit_the_work_bound_quickly() -> None:
    # each block calls the one below twice: 2**30 layers if nothing stopped it
    defs = "define d0(a) { relu }\n" + "".join(
        f"define d{i}(a) {{ d{i - 1} a; d{i - 1} a }}\n" for i in range(1, 31))
    start = time.perf_counter()
    err = fault(defs + "input 4x4x3\nd30 1")
    assert "spec expands to more than 100000 statements and layers" in err.message
    assert time.perf_counter() - start < 10


def test_huge_repeat_inside_a_block_is_refused() -> None:
    err = fault("define x(n) { repeat $n { relu } }\ninput 4x4x3\nx 20000")
    assert err.message.startswith("repeat count 20000 is larger than 10000")


# -- the grammar documents all of it ---------------------------------------------------------
def test_the_grammar_documents_reuse_and_identity_branches() -> None:
    doc = archcalc.spec.__doc__ or ""
    for phrase in ("define NAME(P, ..., P=EXPR) { STATEMENTS }", "NAME ARG ... [P=ARG ...]",
                   "repeat EXPR [as NAME] { STATEMENTS }", "an empty ``branch { }`` is the "
                   "identity", "``branch { }`` passes its share", "gate { ... }",
                   "split { branch { ... } branch { ... } ... }"):
        assert phrase in doc, phrase


def test_the_grammars_example_parses() -> None:
    """The defined-block example in the grammar is MobileNetV2's block, as it stands."""
    doc = archcalc.spec.__doc__ or ""
    example = doc[doc.index("    define ir("):doc.index("A block's body")]
    lines = [re.sub(r"\s+#.*", "", line[4:]) for line in example.splitlines() if line.strip()]
    text = "\n".join(lines[:5]) + "\ninput 56x56x16\n" + "\n".join(lines[5:])
    rows = archcalc.analyze(parse(text)).rows
    assert rows[-1].kind == "add" and rows[-1].out_shape == (24, 28, 28)


# -- whole networks written with blocks ------------------------------------------------------
MOBILENET_V2 = """\
# MobileNetV2 (Sandler et al. 2018, Table 2) as torchvision builds it, its block written once
model mobilenet-v2-blocks
param size = 224
input ${size}x${size}x3
define ir(cin, cout, s, t) {
  repeat ${1 - 1//t} { conv1-${cin*t} bias=false; bn; relu6 }  # no expansion when t = 1
  conv3-${cin*t} s=$s g=${cin*t} bias=false; bn; relu6
  conv1-$cout bias=false; bn
}
# a row of Table 2: n blocks, the first with stride s (and no shortcut), the rest residual
define bottleneck(t, cin, c, n, s) {
  ir cin c s t
  repeat ${n-1} { residual { ir c c 1 t } }
}
conv3-32 s=2 bias=false; bn; relu6
bottleneck 1 32 16 1 1
bottleneck 6 16 24 2 2
bottleneck 6 24 32 3 2
bottleneck 6 32 64 4 2
bottleneck 6 64 96 3 1
bottleneck 6 96 160 3 2
bottleneck 6 160 320 1 1
conv1-1280 bias=false; bn; relu6
gap; dropout-0.2; FC-1000
"""

SHUFFLENET_V2 = """\
# ShuffleNetV2 x1.0 (Ma et al. 2018, Table 5) as torchvision builds it
input 224x224x3
define down(cin, cout, b=cout/2) {
  concat {
    branch { conv3-$cin s=2 g=$cin bias=false; bn; conv1-$b bias=false; bn; relu }
    branch { conv1-$b bias=false; bn; relu; conv3-$b s=2 g=$b bias=false; bn
             conv1-$b bias=false; bn; relu }
  }
  shuffle g=2
}
define basic(c, b=c/2) {
  split {
    branch { }
    branch { conv1-$b bias=false; bn; relu; conv3-$b g=$b bias=false; bn
             conv1-$b bias=false; bn; relu }
  }
  shuffle g=2
}
define stage(cin, cout, n) {
  down cin cout
  repeat ${n-1} { basic cout }
}
conv3-24 s=2 bias=false; bn; relu; maxpool3 s=2 p=1
stage 24 116 4
stage 116 232 8
stage 232 464 4
conv1-1024 bias=false; bn; relu; gap; FC-1000
"""


def test_mobilenet_v2_written_with_one_block() -> None:
    graph = parse(MOBILENET_V2, "mobilenet-v2-blocks.arch")
    report = archcalc.analyze(graph)
    # torchvision.models.mobilenet_v2: 3,504,872 parameters (its model docs), 0.30 GFLOPS
    assert report.totals.params == 3_504_872
    assert report.totals.macs == 300_774_272
    assert report.warnings == ()
    paths = [n.path for n in walk(graph.body)]
    assert len(paths) == len(set(paths))
    assert sum(r.kind == "add" for r in report.rows) == 10  # 1 + 2 + 3 + 2 + 2 shortcuts
    # the t=1 row (statement 4: the stem is 1-3) has no expansion, only the depthwise conv3
    # and the projection; the empty repeat still takes its number (4.1.1)
    assert [(r.path, r.label) for r in report.rows if r.path.startswith("4.")
            and r.kind == "conv"] == [("4.1.2", "conv3-32 s=1 g=32 bias=false"),
                                      ("4.1.5", "conv1-16 bias=false")]
    assert [r.out_shape for r in report.rows if r.kind == "conv"][-1] == (1280, 7, 7)


def test_shufflenet_v2_written_with_blocks() -> None:
    report = archcalc.analyze(parse(SHUFFLENET_V2))
    # torchvision.models.shufflenet_v2_x1_0: 2,278,604 parameters, 0.14 GFLOPS
    assert report.totals.params == 2_278_604
    assert report.totals.macs == 144_907_992
    assert sum(r.kind == "split" for r in report.rows) == 3 + 7 + 3
    assert sum(r.kind == "shuffle" for r in report.rows) == 16


@needs_verify
@pytest.mark.slow
@pytest.mark.parametrize("text", [MOBILENET_V2, SHUFFLENET_V2], ids=["mobilenet-v2",
                                                                     "shufflenet-v2"])
def test_networks_with_blocks_verify_against_torch(text: str) -> None:
    from archcalc.verify import verify

    rep = verify(parse(text), (3, 32, 32))
    assert rep.ok, "\n".join(f"{c.name} {c.path}: expected {c.expected}, got {c.actual}"
                             for c in rep.failures)
