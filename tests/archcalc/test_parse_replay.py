"""The parser reads a ``repeat`` body without a loop index once and copies it for the other
copies (paths renumbered), and a defined block's body once per set of arguments, blocks
being expanded and depth. These tests check that a copy is exactly what reading the body
again gives, and that the bounds and faults that could differ between copies still apply
to each copy where parsing it again would have met them."""

from __future__ import annotations

from test_spec_reuse import fault, nodes

from archcalc.layers import walk
from archcalc.spec import parse

BODY = "residual { conv3-8 bias=false; bn; relu\n  concat { branch { relu } branch { } } }; relu"


def test_copies_of_a_repeat_equal_copies_read_one_by_one() -> None:
    """With ``as i`` (unused) every copy is read again; without it, copied: the same graph,
    nested blocks and branches included."""
    copied = parse(f"input 8x8x8\nrepeat 3 {{\n{BODY}\n}}", "t.arch")
    read = parse(f"input 8x8x8\nrepeat 3 as i {{\n{BODY}\n}}", "t.arch")
    assert copied == read
    paths = [n.path for n in walk(copied.body)]
    assert len(paths) == len(set(paths)) == 3 * 7
    assert paths[7:14] == ["1.2.1", "1.2.1.1", "1.2.1.2", "1.2.1.3", "1.2.1.4", "1.2.1.4.b1.1",
                           "1.2.2"]


def test_copies_that_differ_by_the_index_are_read_each() -> None:
    got = nodes("input 8x8x3\nrepeat 3 as i { conv1-${4 + i}; repeat 2 { conv1-${8 * i + 1} } }")
    assert [n.label for n in got] == ["conv1-4", "conv1-1", "conv1-1", "conv1-5", "conv1-9",
                                      "conv1-9", "conv1-6", "conv1-17", "conv1-17"]
    assert [n.path for n in got][3:6] == ["1.2.1", "1.2.2.1.1", "1.2.2.2.1"]


def test_a_head_in_a_repeated_body_fails_on_the_second_copy() -> None:
    err = fault("input 8x8x3\nrepeat 2 {\n  relu\n  head aux { gap }\n}")
    assert "head 'aux' is defined twice" in err.message
    assert (err.loc.line, err.loc.col) == (4, 8)


def test_the_statement_bound_is_met_inside_the_copy_that_passes_it() -> None:
    """Each copy counts 1 + 4 * 10,000 statements: the third passes 100,000 at its second
    layer (1 + 40,001 + 40,001 + 1 + 10,000 + 10,000)."""
    text = "input 8\nrepeat 3 {\n" + "  relu x10000\n" * 4 + "}"
    err = fault(text)
    assert "spec expands to more than 100000 statements" in err.message
    assert (err.loc.line, err.loc.col) == (4, 3)
    assert len(parse(text.replace("repeat 3", "repeat 2")).body) == 80_000


def test_the_expression_budget_is_met_inside_the_copy_that_passes_it() -> None:
    """An expression of 748 operations (250 numbers, 249 additions, their operators), 500
    times a copy (374,000): the third copy passes 1,000,000 in its body's expression (at
    its '$'), not at its start."""
    expr = "+".join(["1"] * 250)
    text = f"input 8x8x3\nrepeat 3 {{\n  repeat 500 as i {{ conv1-${{{expr}}} }}\n}}"
    err = fault(text)
    assert "more than 1,000,000 operations" in err.message
    assert (err.loc.line, err.loc.col) == (3, 27)
    assert len(list(walk(parse(text.replace("repeat 3", "repeat 2")).body))) == 1000


def test_calls_with_the_same_arguments_give_the_same_layers_at_their_own_paths() -> None:
    text = "define cbr(c) { conv3-$c; bn\n  residual { relu } }\ninput 8x8x3\ncbr 8\ncbr 8\ncbr 16"
    got = nodes(text)
    assert [n.path for n in got] == ["1.1", "1.2", "1.3", "1.3.1", "2.1", "2.2", "2.3",
                                     "2.3.1", "3.1", "3.2", "3.3", "3.3.1"]
    assert [n.label for n in got if n.label.startswith("conv")] == ["conv3-8", "conv3-8",
                                                                    "conv3-16"]
    assert [n.layer for n in got[:4]] != [n.layer for n in got[4:8]]  # paths inside differ
    assert [n.layer.kind for n in got[:4]] == [n.layer.kind for n in got[4:8]]
    assert got[0].layer is got[4].layer  # a leaf layer is shared, not rebuilt


def test_a_call_that_recursed_only_from_another_caller_still_fails() -> None:
    """``a`` calls ``w`` (y=0: an empty body) fine at the top level; called inside ``w``,
    the same call (same arguments) goes round w -> a -> w."""
    text = ("define w(y=0) { repeat $y { a } }\ndefine a { w }\ninput 4x4x3\nrelu\na\nw 1")
    err = fault(text)
    assert "block 'w' calls itself (w -> a -> w)" in err.message
    assert (err.loc.line, err.loc.col) == (2, 12)


def test_a_call_that_fit_at_a_shallow_depth_still_fails_nested_too_deep() -> None:
    """The body of ``f`` opens one more block: called at the top it fits, inside 49 gates
    it is nested 51 deep."""
    text = "define f { gate { relu } }\ninput 4x4x3\nf\n" + "gate {\n" * 49 + "f\n" + "}\n" * 49
    err = fault(text)
    assert "blocks nested more than 50 deep" in err.message
    assert (err.loc.line, err.loc.col) == (1, 17)
    assert len(nodes(text.replace("gate {\n" * 49, "gate {\n" * 48).replace("}\n" * 49,
                                                                            "}\n" * 48))) > 0


def test_copies_with_named_tensors_equal_copies_read_one_by_one() -> None:
    """keep/from in a copied body (names only grow, so a copy reads what the first did):
    the same graph and the same analysis as copies read again."""
    from archcalc.analysis import analyze

    cell = ("define cell(f) {\n  from p; conv1-$f bias=false; keep p1\n"
            "  from ip; conv1-$f bias=false; keep h\n"
            "  add { branch { from h; relu } branch { from p1 } }\n}\n")
    body = "cell 8\nkeep x; from ip; keep p; from x; keep ip"
    text = cell + "input 8x8x8\nconv1-8; keep p; keep ip\nrepeat 3 INDEX{\n" + body + "\n}"
    copied = parse(text.replace("INDEX", ""), "t.arch")
    read = parse(text.replace("INDEX", "as i "), "t.arch")
    assert copied == read
    assert analyze(copied) == analyze(read)
    assert sum(n.label == "from ip" for n in walk(copied.body)) == 6

