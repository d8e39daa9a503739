"""Named tensors, ``keep NAME`` and ``from NAME``: joins of tensors that are not on one
series-parallel path (NASNet's cells read the two previous cells' outputs). Parsing and its
errors, the analysis against a torch module written out by hand, peak live memory by hand,
the writer's round trip, ``archcalc verify`` and the CLI table."""

from __future__ import annotations

import importlib.util
import math
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

import archcalc
from archcalc.cli import app, route
from archcalc.errors import Loc, SpecError
from archcalc.kinds import From, Keep
from archcalc.layers import Graph, Node
from archcalc.writer import to_spec

needs_verify = pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("torch", "torchinfo", "fvcore")),
    reason="the verify extra (torch, torchinfo, fvcore) is not installed")

# a: conv on the input; b: a strided conv of a; c: a strided 1x1 conv of a, added to b;
# then a pooled a beside that sum, and a 1x1 conv of the concatenation
DAG = """input 8x8x3
conv3-4 bias=false; keep a
conv3-6 s=2; keep b
from a; conv1-6 s=2
add { branch { } branch { from b } }
concat { branch { from a; maxpool2 } branch { } }
conv1-2
"""


def parse_error(text: str) -> SpecError:
    with pytest.raises(SpecError) as info:
        archcalc.parse(text, file="net.arch")
    return info.value


# -- parsing ------------------------------------------------------------------------------
def test_from_an_unknown_name_is_located_and_suggests_the_kept_one() -> None:
    err = parse_error("input 8x8x3\nconv3-4; keep skip\nconv3-4\nfrom skp; conv1-2")
    assert err.loc is not None and (err.loc.line, err.loc.col) == (4, 6)
    assert "'skp'" in err.message and "did you mean 'skip'" in err.message
    assert str(err).startswith("net.arch:4:6: ")


def test_from_before_its_keep_is_an_error() -> None:
    """Names are read in the order the spec runs: a later keep does not count."""
    err = parse_error("input 8x8x3\nfrom a\nkeep a")
    assert err.loc is not None and (err.loc.line, err.loc.col) == (2, 6)


@pytest.mark.parametrize("word", ["concat", "repeat", "keep", "from", "Branch", "head"])
def test_a_language_word_is_no_tensor_name(word: str) -> None:
    err = parse_error(f"input 8x8x3\nconv3-4; keep {word}")
    assert "is a word of the language" in err.message
    assert err.loc is not None and (err.loc.line, err.loc.col) == (2, 15)


@pytest.mark.parametrize(("statement", "message"), [
    ("keep 2a", "a tensor name is a name"),
    ("keep a b", "'keep' takes one name; unexpected 'b'"),
    ("keep", "expected a tensor name after 'keep'"),
])
def test_malformed_statements(statement: str, message: str) -> None:
    assert message in parse_error(f"input 8x8x3\n{statement}").message


def test_names_are_apart_from_parameters_and_blocks() -> None:
    """A tensor may share its name with a parameter and a defined block (three namespaces),
    and ``$`` in a name substitutes (one name per loop copy)."""
    graph = archcalc.parse("param c = 4\ndefine c2(n) { conv1-$n }\ninput 8x8x3\n"
                           "conv3-$c; keep c; c2 4; keep c2\n"
                           "repeat 2 as i { keep t$i }\nfrom c; from t1")
    labels = [n.label for n in archcalc.layers.walk(graph.body)]
    assert labels == ["conv3-4", "keep c", "conv1-4", "keep c2", "keep t0", "keep t1",
                      "from c", "from t1"]


def test_a_defined_block_reads_what_its_caller_kept() -> None:
    """NASNet's cell(ip, p): the block reads ``ip`` and ``p``, and its caller moves the
    names on after each call."""
    text = ("define cell(f) {\n  from p; conv1-$f; keep p1\n  from ip; conv3-$f\n"
            "  add { branch { } branch { from p1 } }\n}\n"
            "input 8x8x4\nkeep p; conv3-8; keep ip\n"
            "repeat 2 { cell 8; keep x; from ip; keep p; from x; keep ip }\nconv1-2")
    report = archcalc.analyze(archcalc.parse(text))
    convs = [r for r in report.rows if r.kind == "conv"]
    # the first cell's 1x1 reads the input (4 channels), the second's reads the first
    # conv3-8's output (8 channels): p moved on to the previous ip
    assert [r.in_shape[0] for r in convs] == [4, 4, 8, 8, 8, 8]
    assert [r.params.weights for r in convs] == [3 * 3 * 4 * 8, 4 * 8, 3 * 3 * 8 * 8,
                                                 8 * 8, 3 * 3 * 8 * 8, 8 * 2]


def test_an_unknown_name_in_a_block_names_the_call() -> None:
    err = parse_error("define cell { from q }\ninput 8x8x3\nkeep p\ncell")
    assert "in block 'cell' called at net.arch:4:1" in err.message
    assert err.loc is not None and err.loc.line == 1


def test_a_graph_built_without_the_parser_is_checked_too() -> None:
    """Importers build nodes directly: the walker refuses an unknown name at its node."""
    loc = Loc("model.py", 7, 3, "y = f(skip)")
    graph = Graph("g", (3, 8, 8), (
        Node(layer=Keep(name="skip"), label="keep skip", path="1", loc=loc),
        Node(layer=From(name="skp"), label="from skp", path="2", loc=loc)))
    with pytest.raises(SpecError, match="did you mean 'skip'") as info:
        archcalc.analyze(graph)
    assert info.value.loc == loc


# -- analysis against torch, written out by hand -------------------------------------------
def hand_module():  # type: ignore[no-untyped-def]
    """:data:`DAG` as one writes it in torch, without archcalc."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    class Hand(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Conv2d(3, 4, 3, padding=1, bias=False)
            self.b = nn.Conv2d(4, 6, 3, stride=2, padding=1)
            self.c = nn.Conv2d(4, 6, 1, stride=2)
            self.d = nn.Conv2d(10, 2, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            a = self.a(x)
            total = self.c(a) + self.b(a)
            return self.d(torch.cat([F.max_pool2d(a, 2), total], 1))

    return Hand()


@needs_verify
def test_dag_counts_match_a_hand_written_torch_module() -> None:
    import torch
    import torchinfo

    hand = hand_module()
    report = archcalc.analyze(archcalc.parse(DAG))
    shapes = {}
    for name in ("a", "b", "c", "d"):
        getattr(hand, name).register_forward_hook(
            lambda m, i, o, name=name: shapes.__setitem__(name, tuple(o.shape[1:])))
    out = hand(torch.rand(1, 3, 8, 8))
    convs = [r for r in report.rows if r.kind == "conv"]
    assert [r.out_shape for r in convs] == [shapes[n] for n in "abcd"]
    assert report.rows[-1].out_shape == tuple(out.shape[1:]) == (2, 4, 4)
    assert report.totals.params == sum(p.numel() for p in hand.parameters())
    assert [r.params.trainable for r in convs] == [
        sum(p.numel() for p in getattr(hand, n).parameters()) for n in "abcd"]
    stats = torchinfo.summary(hand, input_size=(1, 3, 8, 8), verbose=0)
    ti = archcalc.analyze(archcalc.parse(DAG), "torchinfo")
    assert ti.totals.macs == stats.total_mult_adds
    # and by hand: k*k*Cin*Cout per output position
    assert [r.macs for r in convs] == [64 * 27 * 4, 16 * 36 * 6, 16 * 4 * 6, 16 * 10 * 2]


def test_dag_rows_fields_and_zero_costs() -> None:
    report = archcalc.analyze(archcalc.parse(DAG))
    rows = {r.path: r for r in report.rows}
    named = [r for r in report.rows if r.kind in ("keep", "from")]
    assert [r.label for r in named] == ["keep a", "keep b", "from a", "from b", "from a"]
    for r in named:
        assert r.params.trainable == r.params.buffers == r.macs == r.flops == 0
        assert r.inplace and not r.stored and not r.homework_row
    # from restores the kept tensor's shape and field; the add joins conv3 s=2 (5, stride
    # 2, centre 0) with conv1 s=2 on a (3, stride 2, centre 0): 5
    assert rows["5"].label == "from a" and rows["5"].in_shape == (6, 4, 4)
    assert rows["5"].out_shape == (4, 8, 8)
    assert rows["5"].rf == rows["2"].rf and rows["5"].rf is not None
    assert rows["5"].rf.size == (3, 3)
    assert rows["7.b2.1"].rf == rows["4"].rf
    assert rows["7"].kind == "add" and rows["7"].rf is not None
    assert rows["7"].rf.size == (5, 5) and rows["7"].rf.stride == (2, 2)
    assert report.totals.activations == 3 * 64 + 4 * 64 + 6 * 16 * 3 + 4 * 16 + 10 * 16 + 2 * 16


# -- memory -------------------------------------------------------------------------------
@pytest.mark.parametrize(("body", "peak"), [
    # a (8x4x4 = 128) stays live while two conv3-2 run: 128 + 32 in + 32 out
    ("conv3-8; keep a; conv3-2; conv3-2; from a; conv1-1", 128 + 32 + 32),
    # without the from, a dies when the first conv3-2 has read it: 128 in + 32 out
    ("conv3-8; keep a; conv3-2; conv3-2; conv1-1", 128 + 32),
    # relu in place would overwrite a, which a later from reads, so it allocates; conv3-2
    # then runs on relu's 128 beside a's 128: 128 + 128 + 32
    ("conv3-8; keep a; relu; conv3-2; from a; conv1-1", 128 + 128 + 32),
    # the same tensor kept twice is counted once: 128 + 32 + 32
    ("conv3-8; keep a; keep b; conv3-2; conv3-2; from a; from b", 128 + 32 + 32),
])
def test_kept_tensor_stays_live_until_its_last_from(body: str, peak: int) -> None:
    report = archcalc.analyze(archcalc.parse(f"input 4x4x1\n{body}"))
    assert report.peak_live == peak


def test_kept_tensor_is_held_across_a_block() -> None:
    """a (128) is held while the residual runs on its conv's output x (32): the body's
    conv3-2 reads x and writes 32: 128 + 32 + 32 (and so does the join: body + x)."""
    report = archcalc.analyze(archcalc.parse(
        "input 4x4x1\nconv3-8; keep a; conv3-2\nresidual { conv3-2 }\nfrom a"))
    assert report.peak_live == 128 + 32 + 32


def test_a_block_on_a_kept_tensor_holds_it_to_its_join() -> None:
    """The concat starts on a (128), which a later from reads: a stays live through the
    branches and at the join, beside both branch outputs (32 each) and the joined 64."""
    report = archcalc.analyze(archcalc.parse(
        "input 4x4x1\nconv3-8; keep a\nconcat { branch { conv1-2 } branch { conv1-2 } }\n"
        "from a"))
    assert report.peak_live == 128 + 32 + 32 + 64


def test_a_residual_on_a_kept_tensor_is_an_upper_bound() -> None:
    """x = a (128) and the body's 128 are live at the join (256); the residual's own rule
    counts its identity shortcut's x again beside the held a: at most one tensor (a) more,
    never less."""
    report = archcalc.analyze(archcalc.parse(
        "input 4x4x1\nconv3-8; keep a; residual { conv3-8 }; from a; conv1-1"))
    assert 128 + 128 <= report.peak_live <= 128 + 128 + 128


# -- writer -------------------------------------------------------------------------------
def test_writer_round_trip_keeps_names_and_numbers() -> None:
    graph = archcalc.parse(DAG)
    text = to_spec(graph)
    assert "keep a" in text and "from b" in text
    again = archcalc.parse(text)
    before, after = archcalc.analyze(graph), archcalc.analyze(again)
    assert [(r.kind, r.in_shape, r.out_shape, r.params, r.ops, r.rf) for r in after.rows] == [
        (r.kind, r.in_shape, r.out_shape, r.params, r.ops, r.rf) for r in before.rows]
    assert after.totals == before.totals and after.peak_live == before.peak_live
    assert to_spec(again) == text


# -- torch and verify ---------------------------------------------------------------------
@needs_verify
def test_built_model_matches_the_hand_module_and_holds_no_tensor() -> None:
    import torch

    from archcalc.backends.torch import build_module, modules_by_path

    net = build_module(archcalc.parse(DAG)).eval()
    hand = hand_module().eval()
    by_path = modules_by_path(net)
    with torch.no_grad():
        for name, path in (("a", "1"), ("b", "3"), ("c", "6"), ("d", "9")):
            getattr(hand, name).load_state_dict(by_path[path].state_dict())
    x = torch.rand(2, 3, 8, 8)
    assert torch.allclose(net(x), hand(x))
    assert all(not tensors for tensors in net.tensors)  # nothing kept between calls
    assert torch.allclose(net(x), hand(x))


@needs_verify
def test_verify_runs_every_check_on_a_dag_spec() -> None:
    from archcalc.verify import verify

    report = verify(archcalc.parse(DAG))
    assert report.ok, [(c.name, c.path, c.expected, c.actual) for c in report.failures]
    names = {c.name for c in report.checks}
    assert {"output shape", "params (torch numel)", "params (torchinfo total_params)",
            "MACs (torchinfo total_mult_adds)", "MACs (fvcore total)",
            "FLOPs (torch FlopCounterMode)", "RF first unit", "RF last unit"} <= names
    probed = {c.path for c in report.checks if c.name == "RF first unit"}
    assert {"5", "6", "7.b2.1", "8.b1.2", "9"} <= probed  # rows after a from, and the from rows


# -- CLI ----------------------------------------------------------------------------------
def test_cli_table_on_a_dag_spec_fits_80_columns(tmp_path: Path) -> None:
    spec = tmp_path / "dag.arch"
    spec.write_text(DAG, encoding="utf-8")
    result = CliRunner().invoke(app, route([str(spec), "--table"]))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    table = [line for line in lines if line[:1] in "┌│├└"]
    assert table and max(len(line) for line in table) <= 80
    assert "KEEP" not in result.stdout and "FROM" not in result.stdout
    note = next(line for line in lines if "keep/from" in line)
    assert "5 keep/from statements" in note and len(note) <= 80
    assert sum(1 for line in table if "CONV" in line) == 4


def test_cli_unknown_name_is_one_line_exit_2(tmp_path: Path) -> None:
    spec = tmp_path / "bad.arch"
    spec.write_text("input 8x8x3\nconv3-4; keep a\nfrom b\n", encoding="utf-8")
    result = CliRunner().invoke(app, route([str(spec), "--format", "json"]))
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert f"{spec}:3:6" in result.output and "'b'" in result.output


def test_json_report_has_named_rows() -> None:
    from archcalc.render import report_dict

    data = report_dict(archcalc.analyze(archcalc.parse(DAG)))
    kinds = [row["kind"] for row in data["layers"]]
    assert kinds.count("keep") == 2 and kinds.count("from") == 3
    assert math.prod(data["layers"][-1]["output_shape"]) == 32


def test_replace_keeps_constructors_simple() -> None:
    """What importers build: ``Keep(name=...)``/``From(name=...)``, equal by value."""
    assert Keep(name="p") == Keep("p") and replace(Keep("p"), name="q") == Keep("q")
    assert Keep("p") != From("p") and From("p").spec() == "from p"


def test_formula_refuses_a_statement_that_is_no_layer() -> None:
    """``archcalc formula`` shows one layer's formulas; keep/from have none to show."""
    from archcalc.errors import UsageError
    from archcalc.symbolic import layer_formulas

    with pytest.raises(UsageError, match="not a single layer"):
        layer_formulas("keep p", (3, 8, 8))


@pytest.mark.parametrize("first", ["from a", "conv3-4; keep b"])
def test_inplace_add_may_not_overwrite_a_named_tensor(first: str) -> None:
    """torch's ``out += y`` would change the kept tensor that a later ``from`` reads."""
    text = f"input 8x8x4\nkeep a\nadd inplace=true {{ branch {{ {first} }} branch {{ }} }}"
    with pytest.raises(SpecError, match="would overwrite it") as info:
        archcalc.analyze(archcalc.parse(text, file="net.arch"))
    assert info.value.loc is not None and info.value.loc.line == 3
    fine = "input 8x8x4\nkeep a\nadd inplace=true { branch { from a; conv3-4 } branch { } }"
    assert archcalc.analyze(archcalc.parse(fine)).rows[-1].kind == "add"


CELLS = """input 16x16x3
define cell(f) {
  from p; relu; conv1-$f bias=false; bn; keep p1
  from ip; relu; conv1-$f bias=false; bn; keep h
  add { branch { from h; conv3-$f g=$f bias=false } branch { from p1; maxpool3 s=1 p=1 } }
}
conv3-8 s=2; keep p; conv3-8; keep ip
repeat 3 { cell 8; keep x; from ip; keep p; from x; keep ip }
conv3-4 s=2
"""


@needs_verify
@pytest.mark.parametrize("text", [DAG, CELLS], ids=["dag", "cells"])
def test_probe_cuts_give_the_fields_of_direct_gradients(text: str) -> None:
    """The RF probe descends cut by cut (a from's tensor is a cut already, a block that
    reads a name starts a cut on the input itself); every row's field must equal the one
    its gradient taken straight back to the input gives."""
    import torch

    from archcalc.backends import measure
    from archcalc.backends.torch import build_module

    model = build_module(archcalc.parse(text))
    fields = measure.probe_fields(model)
    probe = measure.probe_copy(model)
    x = torch.ones((2, *model.input_shape), requires_grad=True)
    rows, _ = measure._probe_forward(probe, x, None)
    assert set(rows) == set(fields) and len(rows) > 10
    for path, (out, _) in rows.items():
        unit = out[0, :, 0, 0].sum() + out[1, :, -1, -1].sum()
        (grad,) = torch.autograd.grad(unit, x, retain_graph=True)
        assert fields[path] == (measure._box(grad[0]), measure._box(grad[1])), path


def test_repeated_statements_are_folded_only_as_they_parse() -> None:
    """``xN`` repeats a layer; keep/from statements in a row fold as ``repeat N { }``."""
    graph = archcalc.parse("input 8x8x3\nconv3-4; keep a; keep a; relu; relu; from a; from a")
    text = to_spec(graph)
    assert "relu x2" in text and "keep a x2" not in text and "from a x2" not in text
    assert to_spec(archcalc.parse(text)) == text
    assert archcalc.analyze(archcalc.parse(text)).totals == archcalc.analyze(graph).totals


def test_a_tensor_kept_inside_a_block_is_never_left_out() -> None:
    """b (64), kept inside the first branch and read after the concat: the true peak is the
    second branch's conv1-2, x (128) + the first branch's 32 + b + its own 32 = 256 (the
    join holds only 32 + 32 + 64 + b = 192). The block's rules do not know b lives past
    their join, so b is added to the block's peak: an upper bound, by at most b."""
    report = archcalc.analyze(archcalc.parse(
        "input 4x4x1\nconv3-8\nconcat { branch { conv1-4; keep b; conv1-2 } "
        "branch { conv1-2 } }\nfrom b; conv1-1"))
    assert 128 + 32 + 64 + 32 <= report.peak_live <= 128 + 32 + 64 + 32 + 64
