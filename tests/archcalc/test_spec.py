"""archcalc.spec: every notation, option and default of the grammar, paths and labels, and
bad input located to the column."""

from __future__ import annotations

from pathlib import Path

import pytest

import archcalc
from archcalc.errors import SpecError
from archcalc.kinds import (
    LRN,
    Activation,
    BatchNorm,
    Concat,
    Conv,
    Dropout,
    Flatten,
    GlobalPool,
    Linear,
    Pool,
    Residual,
)
from archcalc.kinds.activation import FUNCTIONS as ACTIVATIONS
from archcalc.kinds.base import Kind as Layer
from archcalc.layers import Graph, Node, walk
from archcalc.spec import parse, parse_file

HEADER = "input 32x32x3\n"


def nodes(body: str, **overrides: int) -> list[Node]:
    return list(parse(HEADER + body, "t.arch", overrides).body)


def only(body: str) -> Layer:
    (node,) = nodes(body)
    return node.layer


def fault(text: str) -> SpecError:
    """The SpecError that parsing ``text`` raises."""
    with pytest.raises(SpecError) as info:
        parse(text, "bad.arch")
    return info.value


# -- convolution ---------------------------------------------------------------------------
def test_conv_notation_and_defaults() -> None:
    # kernel 3, 64 filters, stride 1, padding 'same' = (3 - 1) / 2 = 1, bias on
    assert only("conv3-64") == Conv(64, (3, 3), (1, 1), (1, 1), (1, 1), 1, True)


@pytest.mark.parametrize(
    ("text", "kernel", "padding"),
    [
        ("conv1-8", (1, 1), (0, 0)),  # (1 - 1) / 2 = 0
        ("conv5-8", (5, 5), (2, 2)),  # (5 - 1) / 2 = 2
        ("conv7-8", (7, 7), (3, 3)),
        ("conv1x7-8", (1, 7), (0, 3)),  # per axis
        ("conv2-8", (2, 2), (0, 0)),  # even kernel: 'same' would be asymmetric, so 0
        ("conv2x3-8", (2, 3), (0, 1)),
        ("CONV3X3-8", (3, 3), (1, 1)),  # case-insensitive
    ],
)
def test_conv_default_padding_is_same_for_odd_kernels(text: str, kernel: tuple[int, int],
                                                      padding: tuple[int, int]) -> None:
    layer = only(text)
    assert isinstance(layer, Conv)
    assert (layer.kernel, layer.padding) == (kernel, padding)


@pytest.mark.parametrize(
    ("option", "field", "value"),
    [
        ("s=2", "stride", (2, 2)),
        ("stride=2x1", "stride", (2, 1)),
        ("p=0", "padding", (0, 0)),
        ("pad=2", "padding", (2, 2)),
        ("padding=2x0", "padding", (2, 0)),
        ("p=same", "padding", (1, 1)),
        ("p=SAME", "padding", (1, 1)),
        ("d=2", "dilation", (2, 2)),
        ("dilation=1x3", "dilation", (1, 3)),
        ("g=3", "groups", 3),
        ("groups=1", "groups", 1),
        ("bias=false", "bias", False),
        ("bias=off", "bias", False),
        ("bias=no", "bias", False),
        ("bias=0", "bias", False),
        ("bias=True", "bias", True),
        ("bias=on", "bias", True),
        ("bias=yes", "bias", True),
        ("bias=1", "bias", True),
    ],
)
def test_conv_options(option: str, field: str, value: object) -> None:
    layer = only(f"conv3-6 {option}")
    assert getattr(layer, field) == value


def test_same_padding_follows_the_dilated_span() -> None:
    # span d*(k-1): 2*(3-1) = 4 -> pad 2; 2*(2-1) = 2 -> pad 1 (even kernel, even span)
    assert only("conv3-8 d=2").padding == (2, 2)  # type: ignore[union-attr]
    assert only("conv2-8 d=2").padding == (1, 1)  # type: ignore[union-attr]
    assert only("conv2-8 d=2 p=same").padding == (1, 1)  # type: ignore[union-attr]


def test_same_padding_with_an_odd_span_is_torchs_asymmetric_same() -> None:
    # torch's padding='same': total d*(k-1) = 1, top/left 1//2 = 0, bottom/right the rest, 1
    layer = only("conv2-8 p=same")
    assert isinstance(layer, Conv)
    assert (layer.padding, layer.pad_end) == ((0, 0), (1, 1))
    assert layer.pads((3, 8, 8)) == ((0, 1), (0, 1))


# -- pooling -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("maxpool", Pool("max", (2, 2), (2, 2), (0, 0), False)),  # kernel 2, stride = kernel
        ("pool", Pool("max", (2, 2), (2, 2))),
        ("pool3", Pool("max", (3, 3), (3, 3))),
        ("avgpool3", Pool("avg", (3, 3), (3, 3))),
        ("AvgPool2x3", Pool("avg", (2, 3), (2, 3))),
        ("maxpool3 s=2", Pool("max", (3, 3), (2, 2))),
        ("maxpool3 stride=1 p=1", Pool("max", (3, 3), (1, 1), (1, 1))),
        ("maxpool3 s=2 pad=1x0 ceil=true", Pool("max", (3, 3), (2, 2), (1, 0), True)),
        ("maxpool3 s=2 ceil=false", Pool("max", (3, 3), (2, 2), (0, 0), False)),
    ],
)
def test_pool_notation(text: str, expected: Pool) -> None:
    assert only(text) == expected


@pytest.mark.parametrize(
    ("text", "op"),
    [("gap", "avg"), ("globalavgpool", "avg"), ("GAP", "avg"), ("globalmaxpool", "max"),
     ("gmp", "max")],
)
def test_global_pool(text: str, op: str) -> None:
    assert only(text) == GlobalPool(op)  # type: ignore[arg-type]


# -- fully connected, normalisation, activations, dropout, flatten, LRN ---------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("FC-4096", Linear(4096, True)),
        ("fc-10", Linear(10)),
        ("linear-10", Linear(10)),
        ("Linear-10 bias=false", Linear(10, False)),
        ("bn", BatchNorm(1e-5, True)),
        ("batchnorm", BatchNorm()),
        ("bn eps=0.001", BatchNorm(0.001, True)),
        ("bn affine=false", BatchNorm(1e-5, False)),
        ("soft-max", Activation("softmax")),
        ("ReLU", Activation("relu")),
        ("dropout", Dropout(0.5)),
        ("dropout-0.3", Dropout(0.3)),
        ("dropout-.25", Dropout(0.25)),
        ("dropout-1", Dropout(1.0)),
        ("dropout p=0.2", Dropout(0.2)),
        ("dropout-0.3 p=0.1", Dropout(0.1)),  # the option wins
        ("flatten", Flatten()),
        ("lrn", LRN(5, 1e-4, 0.75, 2.0)),
        ("lrn size=3 alpha=0.001 beta=0.5 k=1", LRN(3, 0.001, 0.5, 1.0)),
    ],
)
def test_other_layers(text: str, expected: Layer) -> None:
    assert only(text) == expected


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_every_activation(name: str) -> None:
    assert only(name) == Activation(name)


# -- repetition and containers -------------------------------------------------------------
def test_xn_repeats_one_layer_with_numbered_paths() -> None:
    got = nodes("conv3-8\nrelu x3")
    assert [n.path for n in got] == ["1", "2.1", "2.2", "2.3"]
    assert [n.label for n in got] == ["conv3-8", "relu", "relu", "relu"]
    assert all(n.layer == Activation("relu") for n in got[1:])


def test_x1_and_x0() -> None:
    assert [n.path for n in nodes("relu x1")] == ["1"]
    assert nodes("relu x0; bn") == nodes("relu x0; bn")  # deterministic
    assert [n.path for n in nodes("relu x0; bn")] == ["2"]  # the index still advances


def test_repeat_expands_its_body_with_paths() -> None:
    got = nodes("repeat 2 { conv3-8; relu }\nbn")
    assert [n.path for n in got] == ["1.1.1", "1.1.2", "1.2.1", "1.2.2", "2"]
    assert [n.layer.kind for n in got] == ["conv", "act", "conv", "act", "bn"]


def test_nested_repeat_and_xn_paths() -> None:
    got = nodes("repeat 2 {\n  repeat 2 { relu x2 }\n}")
    assert len(got) == 2 * 2 * 2
    # outer repeat 1, its 1st copy, inner repeat (statement 1), its 1st copy, relu (statement
    # 1), its 1st copy
    assert got[0].path == "1.1.1.1.1.1"
    assert got[-1].path == "1.2.1.2.1.2"
    assert len({n.path for n in got}) == 8


def test_repeat_zero_skips_its_body_unread() -> None:
    # ``repeat $flag { }`` is how a spec includes a part only when flag is 1 (an aux head,
    # a squeeze-and-excitation gate of width 0 in a block called without one), so the
    # body's values are read only when it is expanded; its braces must still match.
    assert nodes("repeat 0 { relu }") == []
    assert nodes("repeat 0 {\n  conv1-0; relux\n}\nrelu")[0].label == "relu"
    err = fault("input 8x8x3\nrepeat 0 {\n  relu\n")
    assert (err.loc.line, err.loc.col, err.message) == (2, 10, "this '{' is never closed")


def test_concat_branches_and_paths() -> None:
    (node,) = nodes("concat {\n branch { conv1-8 }\n branch { conv1-4; conv3-8 } }")
    assert isinstance(node.layer, Concat)
    assert node.label == "concat" and node.path == "1"
    first, second = node.layer.branches
    assert [n.path for n in first] == ["1.b1.1"]
    assert [n.path for n in second] == ["1.b2.1", "1.b2.2"]
    assert [n.path for n in walk((node,))] == ["1", "1.b1.1", "1.b2.1", "1.b2.2"]


def test_concat_allows_an_empty_identity_branch() -> None:
    (node,) = nodes("concat { branch { } branch { relu } }")
    assert node.layer.branches[0] == ()  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("option", "shortcut"),
    [("", "identity"), ("shortcut=identity", "identity"), ("shortcut=A", "A"),
     ("shortcut=a", "A"), ("shortcut=zeropad", "A"), ("shortcut=B", "B"),
     ("shortcut=projection", "B"), ("shortcut=C", "C")],
)
def test_residual_shortcuts(option: str, shortcut: str) -> None:
    (node,) = nodes(f"residual {option} {{ conv3-3; relu }}")
    assert isinstance(node.layer, Residual)
    assert node.layer.shortcut == shortcut
    assert node.label == f"residual shortcut={shortcut}"
    assert [n.path for n in node.layer.body] == ["1.1", "1.2"]
    assert node.layer.shortcut_bias is False


@pytest.mark.parametrize(
    ("options", "shortcut", "bias", "label"),
    [("shortcut=B bias=true", "B", True, "residual shortcut=B bias=true"),
     ("bias=1 shortcut=c", "C", True, "residual shortcut=C bias=true"),
     ("shortcut=projection BIAS=on", "B", True, "residual shortcut=B bias=true"),
     ("shortcut=B bias=false", "B", False, "residual shortcut=B"),
     ("bias=0", "identity", False, "residual shortcut=identity"),
     ("shortcut=A bias=no", "A", False, "residual shortcut=A")],
)
def test_residual_projection_bias(options: str, shortcut: str, bias: bool, label: str) -> None:
    (node,) = nodes(f"residual {options} {{ conv3-3 }}")
    assert node.layer == Residual(node.layer.body, shortcut, bias)  # type: ignore[arg-type]
    assert node.label == label


def test_residual_projection_bias_from_a_parameter() -> None:
    text = "param bias = 0\ninput 8x8x3\nresidual shortcut=B bias=${bias} { conv3-8 s=2 }"
    blocks = [parse(text, overrides={"bias": b}).body[0].layer for b in (0, 1)]
    assert [isinstance(r, Residual) and r.shortcut_bias for r in blocks] == [False, True]


# -- parameters and substitution -----------------------------------------------------------
SPEC = """\
model tiny   # a comment after a header
source Someone et al. 2020; Table 1 {sic} # not part of the source
param width = 16
param depth = 8
let n = (depth - 2) / 6
let w2 = ${width} * 2
variant tiny14 depth=14
input ${width}x${width}x3
conv3-$width; relu
repeat $n { conv3-${2*width} bias=false }   # expands n times
conv3-$w2 x${n + 1}
"""


def test_header_params_and_substitution() -> None:
    graph = parse(SPEC, "tiny.arch")
    assert graph.name == "tiny"
    assert graph.source == "Someone et al. 2020; Table 1 {sic}"
    assert graph.input_shape == (3, 16, 16)  # HxWxC -> (C, H, W)
    assert graph.params == (("width", 16), ("depth", 8))  # lets are not parameters
    assert graph.file == "tiny.arch"
    labels = [n.label for n in graph.body]
    # n = (8 - 2) / 6 = 1: one repeat of conv3-32, then conv3-32 x2
    assert labels == ["conv3-16", "relu", "conv3-32 bias=false", "conv3-32", "conv3-32"]
    assert [n.path for n in graph.body] == ["1", "2", "3.1.1", "4.1", "4.2"]


def test_overrides_set_params_and_lets_follow() -> None:
    graph = parse(SPEC, "tiny.arch", {"depth": 14, "width": 4})
    assert graph.params == (("width", 4), ("depth", 14))
    assert graph.input_shape == (3, 4, 4)
    # n = (14 - 2) / 6 = 2: two repeats, then x3
    assert [n.label for n in graph.body].count("conv3-8 bias=false") == 2
    assert [n.label for n in graph.body].count("conv3-8") == 3


def test_override_of_unknown_or_let_name_is_refused() -> None:
    with pytest.raises(SpecError, match=r"model 'tiny' has no parameter 'n' "
                                        r"\(parameters: width, depth\)"):
        parse(SPEC, "tiny.arch", {"n": 3})


def test_graph_name_defaults_to_the_file_stem() -> None:
    assert parse("input 4\nFC-2", "nets/my-mlp.arch").name == "my-mlp"
    assert parse("input 4\nFC-2").name == "<spec>"


def test_semicolons_and_comments_separate_statements() -> None:
    got = nodes("# a whole-line comment\nconv3-8; bn;relu # trailing\n\n; ;\nmaxpool")
    assert [n.layer.kind for n in got] == ["conv", "bn", "act", "pool"]
    assert [n.path for n in got] == ["1", "2", "3", "4"]


def test_labels_keep_the_notation_with_substituted_values() -> None:
    got = nodes("conv3-64 s=2 bias=false\nmaxpool3 s=2 ceil=true\nrelu x2")
    assert [n.label for n in got] == ["conv3-64 s=2 bias=false", "maxpool3 s=2 ceil=true",
                                      "relu", "relu"]


def test_nodes_remember_where_they_were_written() -> None:
    got = nodes("conv3-8\n  bn; relu")
    assert [(n.loc.line, n.loc.col) for n in got] == [(2, 1), (3, 3), (3, 7)]
    assert got[1].loc.text == "  bn; relu"


@pytest.mark.parametrize(
    ("text", "shape"),
    [("input 224x224x3", (3, 224, 224)), ("input 32*16*3", (3, 32, 16)),
     ("input 3072", (3072,)), ("input 7×5×2", (2, 7, 5))],
)
def test_input_shapes(text: str, shape: tuple[int, ...]) -> None:
    assert parse(f"{text}\nrelu").input_shape == shape


def test_every_zoo_spec_has_unique_paths() -> None:
    for name in archcalc.zoo.names():
        graph: Graph = archcalc.load(name)
        paths = [n.path for n in walk(graph.body)]
        assert len(paths) == len(set(paths)), name


def test_parse_file_reads_and_reports_unreadable_files(tmp_path: Path) -> None:
    path = tmp_path / "net.arch"
    path.write_text("input 4\nFC-2\n", encoding="utf-8")
    assert parse_file(path).body[0].layer == Linear(2)
    with pytest.raises(SpecError, match="cannot read spec file"):
        parse_file(tmp_path / "absent.arch")
    path.write_bytes(b"input 4\n\xff\xfe\n")
    with pytest.raises(SpecError, match="cannot read spec file"):
        parse_file(path)


# -- bad input, located to the column --------------------------------------------------------
BAD = [
    # (spec, line, col, message start) -- col counted by hand, 1-based
    ("input 8x8x3\n  convx-3", 2, 3, "unknown layer 'convx-3'"),
    ("input 8x8x3\nconv3-8 s=2x", 2, 11, "stride must be a whole number or HxW, not '2x'"),
    ("input 8x8x3\nconv3-8 s=1.5", 2, 11, "stride must be a whole number or HxW"),
    ("input 8x8x3\nconv3-8 s=-1", 2, 11, "stride must be a whole number or HxW"),
    ("input 8x8x3\nconv3-8 s=0", 2, 11, "stride must be at least 1, not '0'"),
    ("input 8x8x3\nconv3-8 d=0", 2, 11, "dilation must be at least 1"),
    ("input 8x8x3\nconv3-8 g=0", 2, 11, "groups must be a whole number of at least 1"),
    ("input 8x8x3\nconv3-8 g=2x2", 2, 11, "groups must be a whole number of at least 1"),
    ("input 8x8x3\nconv3-8 bias=maybe", 2, 14, "bias must be true or false, not 'maybe'"),
    ("input 8x8x3\nconv3-0", 2, 7, "output channels must be a positive whole number"),
    ("input 8x8x3\nconv0-8", 2, 5, "kernel must be a positive whole number"),
    ("input 8x8x3\nconv3x0-8", 2, 5, "kernel must be a positive whole number"),
    ("input 8x8x3\nconv3-" + "9" * 40, 2, 7, "output channels must be a positive whole"),
    ("input 8x8x3\nmaxpool0", 2, 8, "pool kernel must be a positive whole number"),
    ("input 8x8x3\nmaxpool p=-1", 2, 11, "pad must be a whole number or HxW"),
    ("input 8x8x3\nFC-0", 2, 4, "output features must be a positive whole number"),
    ("input 8x8x3\ndropout-1.5", 2, 9, "dropout probability must be in [0, 1]"),
    ("input 8x8x3\ndropout p=2", 2, 11, "p must be a number in [0.0, 1.0], not '2'"),
    ("input 8x8x3\nbn eps=nan", 2, 8, "eps must be a number in [0.0, 1.0], not 'nan'"),
    ("input 8x8x3\nlrn size=0", 2, 10, "size must be a whole number of at least 1"),
    ("input 8x0x3\nrelu", 1, 7, "input dimensions must be positive, got '8x0x3'"),
    ("input 8x8x3x2\nrelu", 1, 7, "malformed input shape '8x8x3x2': expected HxWxC (an "
                                   "image), LxC (a sequence of L steps) or N (a vector)"),
    ("input 8²x8x3\nrelu", 1, 7, "malformed input shape"),
    ("input\nrelu", 1, 1, "'input' needs an argument"),
    ("input 8x8x3 4x4x3\nrelu", 1, 13, "'input' takes one argument; unexpected '4x4x3'"),
    # unknown options
    ("input 8x8x3\nconv3-8 q=1", 2, 9, "unknown option 'q' for conv3-8 (options: bias, d, "),
    ("input 8x8x3\nrelu inplace=true", 2, 6, "unknown option 'inplace' for relu "
                                             "(options: none)"),
    ("input 8x8x3\nmaxpool d=2", 2, 9, "unknown option 'd' for maxpool"),
    ("input 8x8x3\nconv3-8 s=2 stride=1", 2, 13, "option 'stride' given twice"),
    ("input 8x8x3\nconv3-8 s", 2, 9, "expected OPTION=VALUE, found 's'"),
    ("input 8x8x3\nrelu x2 x3", 2, 9, "repeat count 'xN' given twice"),
    ("input 8x8x3\nrelu x20000", 2, 7, "repeat count 20000 is larger than 10000"),
    ("input 8x8x3\nresidual mode=A { relu }", 2, 10, "unknown option 'mode' for 'residual'"),
    ("input 8x8x3\nresidual shortcut=E { relu }", 2, 19, "unknown shortcut 'E'"),
    ("input 8x8x3\nresidual shortcut=A shortcut=B { relu }", 2, 21,
     "option 'shortcut' given twice"),
    ("input 8x8x3\nresidual shortcut=B bias=maybe { relu }", 2, 26,
     "bias must be true or false, not 'maybe'"),
    ("input 8x8x3\nresidual shortcut=B bias { relu }", 2, 26, "bias must be true or false"),
    ("input 8x8x3\nresidual bias=1 shortcut=B bias=0 { relu }", 2, 28,
     "option 'bias' given twice"),
    ("input 8x8x3\nresidual bias=true { relu }", 2, 10,
     "bias=true is the projection's; it needs shortcut=B, C or D, not identity"),
    ("input 8x8x3\nresidual shortcut=A bias=1 { relu }", 2, 21,
     "bias=1 is the projection's; it needs shortcut=B, C or D, not A"),
    ("input 8x8x3\nresidual shortcut=A bn=false { relu }", 2, 21,
     "bn=false is the projection's; it needs shortcut=B, C or D, not A"),
    ("input 8x8x3\nresidual stride=2 { relu }", 2, 10,
     "stride=... is the shortcut's; the identity has none"),
    ("input 8x8x3\nresidual shortcut=B stride=0 { relu }", 2, 28,
     "stride must be a whole number or HxW, not '0'"),
    ("param b = 2\ninput 8x8x3\nresidual shortcut=C bias=$b { relu }", 3, 26,
     "bias must be true or false, not '2'"),
    # unbalanced braces and containers
    ("input 8x8x3\nresidual {\n  relu\n", 2, 10, "this '{' is never closed"),
    ("input 8x8x3\nrepeat 2 { relu", 2, 10, "this '{' is never closed"),
    ("input 8x8x3\nconcat { branch { relu }\n", 2, 8, "this '{' is never closed"),
    ("input 8x8x3\nconcat { branch { relu } branch { relu\n", 2, 33,
     "this '{' is never closed"),
    ("input 8x8x3\nrelu\n  }", 3, 3, "'}' without a matching '{'"),
    ("input 8x8x3\n{ relu }", 2, 1, "'{' must follow 'repeat', 'concat', 'branch'"),
    ("input 8x8x3\nrelu {", 2, 6, "unexpected '{'"),
    ("input 8x8x3\nrepeat 2\n{ relu }", 2, 9, "expected '{' after the repeat count, "
                                             "found end of line"),
    ("input 8x8x3\nrepeat x { relu }", 2, 8, "expected a whole number, found 'x'"),
    ("input 8x8x3\nrepeat -1 { relu }", 2, 8, "expected a whole number, found '-1'"),
    ("input 8x8x3\nconcat { relu }", 2, 10, "expected 'branch { ... }' or '}' inside 'concat'"),
    ("input 8x8x3\nconcat { branch { relu } }", 2, 1, "'concat' needs at least two branches"),
    ("input 8x8x3\nbranch { relu }", 2, 1, "'branch' is only allowed inside 'concat"),
    ("input 8x8x3\nresidual { }", 2, 1, "'residual' needs at least one layer"),
    ("input 8x8x3\n" + "repeat 1 {\n" * 60 + "relu\n" + "}\n" * 60, 52, 10,
     "blocks nested more than 50 deep"),
    ("input 8x8x3\nrepeat 10000 { repeat 10000 { relu } }", 2, 31,
     "spec expands to more than 100000"),
    # misplaced header lines
    ("input 8x8x3\nrelu\ninput 4x4x3", 3, 1, "'input' belongs in the header"),
    ("input 8x8x3\nrelu\nparam w = 3", 3, 1, "'param' belongs in the header"),
    ("input 8x8x3\nresidual {\n  model x\n}", 3, 3, "'model' belongs in the header"),
    ("input 8x8x3\nrepeat 0 { relu }\nlet a = 1", 3, 1, "'let' belongs in the header"),
    ("input 8x8x3\ninput 8x8x3\nrelu", 2, 1, "'input' is given twice"),
    ("model a\nmodel b\ninput 8\nrelu", 2, 1, "'model' is given twice"),
    ("relu", 1, 1, "spec has no 'input' line"),
    ("", 1, 1, "spec has no 'input' line"),
    # parameters and expressions
    ("param w = 3\nparam w = 4\ninput 8\nrelu", 2, 7, "parameter 'w' is defined twice"),
    ("param 3w = 3\ninput 8\nrelu", 1, 7, "expected NAME = EXPRESSION"),
    ("param w 3\ninput 8\nrelu", 1, 7, "expected NAME = EXPRESSION"),
    ("param w =\ninput 8\nrelu", 1, 7, "expected NAME = EXPRESSION"),
    ("param w = 2 ** 70\ninput 8\nrelu", 1, 11, "exponent must be a whole number"),
    ("param w =7/2\ninput 8\nrelu", 1, 10, "7/2 = 7/2 is not a whole number"),
    ("let a = b + 1\ninput 8\nrelu", 1, 9, "unknown parameter 'b' (parameters: none)"),
    ("input 8x8x3\nconv3-${w}", 2, 7, "unknown parameter 'w'"),
    ("param w = 2\ninput 8x8x3\nconv3-8 s=${w/4}", 3, 11, "w/4 = 1/2 is not a whole number"),
    ("input 8x8x3\nconv3-${1", 2, 7, "unclosed '${'"),
    ("input 8x8x3\nconv3-$", 2, 7, "'$' must be followed by a name or '{expression}'"),
    ("input 8x8x3\nconv3-$-1", 2, 7, "'$' must be followed by a name"),
    ("param w = 1\nvariant big w=x\ninput 8\nrelu", 2, 13, "expected PARAM=INTEGER, found 'w=x'"),
    ("param w = 1\nvariant big v=2\ninput 8\nrelu", 2, 13,
     "variant sets 'v', which is not a 'param' (parameters: w)"),
]


@pytest.mark.parametrize(("text", "line", "col", "message"), BAD,
                         ids=[f"{i}-{b[3][:30]}" for i, b in enumerate(BAD)])
def test_bad_input_is_located_to_the_column(text: str, line: int, col: int,
                                            message: str) -> None:
    err = fault(text)
    assert err.message.startswith(message), err.message
    assert err.loc is not None
    assert (err.loc.file, err.loc.line, err.loc.col) == ("bad.arch", line, col), str(err)
    assert str(err).startswith(f"bad.arch:{line}:{col}: ")


@pytest.mark.parametrize(
    ("text", "caret_line"),
    [
        # the rendered source line and the caret under the fault, exactly
        ("input 8x8x3\nconv3-64 s=2 q=1", "               ^"),  # under 'q' (col 14)
        ("input 8x8x3\nconv3-0", "        ^"),  # under '0' (col 7)
        ("input 8x8x3\n  residual {\n    relu\n", "             ^"),  # under '{' (col 12)
        ("input 8x8x3\nfoo-3", "  ^"),  # under 'f' (col 1)
    ],
)
def test_render_puts_the_caret_under_the_fault(text: str, caret_line: str) -> None:
    err = fault(text)
    rendered = err.render().splitlines()
    assert rendered[0] == str(err)
    assert rendered[1] == "  " + err.loc.text  # type: ignore[union-attr]
    assert rendered[2] == caret_line


def test_positions_inside_a_substituted_layer_name_fall_back_to_its_start() -> None:
    # the value of $c is not in the source text, so the caret goes under the word
    err = fault("param c = 0\ninput 8x8x3\n  conv3-$c")
    assert err.message.startswith("output channels must be a positive whole number")
    assert (err.loc.line, err.loc.col) == (3, 3)  # type: ignore[union-attr]
