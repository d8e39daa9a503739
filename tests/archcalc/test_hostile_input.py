"""Hostile input to archcalc: every bad spec, option or name ends in one error line (a spec
error may add its source line and a caret under the fault), exit code 2, no traceback, and
in bounded time. Classes of input, each generated or listed below: expressions that blow up
(fraction towers, long sums repeated, random trees), oversized files and lines, line breaks
other than \\n, \\r\\n and \\r, numeric options out of range, names that are not paths or
models, and the smaller items of issue 16 (formula on blocks, ceil pooling's H_out, the
statement limit, did-you-mean)."""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner, Result

from archcalc.cli import app, route
from archcalc.errors import SpecError
from archcalc.notation import MAX_CHARS, MAX_LINE
from archcalc.spec import parse

FAST = 5.0  # seconds any one refusal may take (on a busy two-core machine)
FUZZ = settings(max_examples=40, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])


def invoke(*args: str) -> tuple[Result, float]:
    start = time.perf_counter()
    result = CliRunner().invoke(app, route(list(args)))
    return result, time.perf_counter() - start


def refused(*args: str, limit: float = FAST) -> str:
    """Run archcalc with ``args``, check it refused them as a user's mistake, and return the
    error line."""
    result, elapsed = invoke(*args)
    assert result.exit_code == 2, (result.exit_code, result.output[:500])
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        repr(result.exception))
    assert "Traceback" not in result.output
    assert result.stdout == ""
    lines = result.stderr.rstrip("\n").split("\n")
    if len(lines) == 3:  # a spec error: the source line, then a caret under the fault
        assert lines[1].startswith("  ") and lines[2].strip() == "^", lines
        assert len(lines[1]) < 300, "a long line is cut around the fault"
    else:
        assert len(lines) == 1, lines
    assert lines[0].strip(), result.stderr
    assert elapsed < limit, f"{elapsed:.1f} s"
    return lines[0]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("hostile")


def spec_file(folder: Path, text: str, name: str = "bad.arch") -> str:
    path = folder / name
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    return str(path)


# -- expressions: the evaluator's work is bounded, not only its results ---------------------
@pytest.mark.parametrize("levels", [1, 2, 3, 5])
def test_fraction_towers_are_refused_quickly(folder: Path, levels: int) -> None:
    expr = "(1/3)**64"  # 3^64 > 10^18: one level is refused already
    for _ in range(levels - 1):
        expr = f"({expr})**64"
    line = refused(spec_file(folder, f"input 8x8x3\nconv3-${{{expr}}}\n"))
    assert "fraction with a numerator or denominator larger than 1e+18" in line


@st.composite
def towers(draw: st.DrawFn) -> str:
    """``(p/q)**e1**e2...`` whose denominator passes 10^18 (q > 1, p and q coprime)."""
    q = draw(st.integers(2, 10**6))
    p = draw(st.integers(1, 10**6).filter(lambda p: math.gcd(p, q) == 1))
    exponents = draw(st.lists(st.integers(2, 64), min_size=1, max_size=6))
    expr, power = f"({p}/{q})", 1
    for e in exponents:
        expr, power = f"({expr})**{e}", power * e
    while power * math.log2(q) <= 64:  # q^power still within 10^18: raise it further
        expr, power = f"({expr})**64", power * 64
    return expr


@FUZZ
@given(expr=towers())
def test_fraction_powers_are_refused(folder: Path, expr: str) -> None:
    refused(spec_file(folder, f"input 8x8x3\nconv3-${{{expr}}}\n"))


_ATOMS = st.one_of(st.integers(0, 10**18).map(str), st.sampled_from(["n", "(1/3)", "(2/7)"]))


def _tree(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    ops = st.sampled_from(["+", "-", "*", "/", "//", "%", "**"])
    return st.builds(lambda a, op, b: f"({a}{op}{b})", children, ops, children)


@FUZZ
@given(expr=st.recursive(_ATOMS, _tree, max_leaves=40))
def test_random_expressions_end_in_one_error(folder: Path, expr: str) -> None:
    """Whatever the expression does (a value, a fault), the layer after it is unknown: the
    spec is refused either way, never with a traceback or a hang."""
    refused(spec_file(folder, f"input 8x8x3\nparam n = 7\nlet x = {expr}\nno-such-layer\n"))


@pytest.mark.parametrize(("outer", "terms"), [(10_000, 330), (2_000, 250), (10_000, 10)])
def test_total_expression_work_per_file_is_bounded(folder: Path, outer: int,
                                                   terms: int) -> None:
    """A 3.4 KB file of 50,000 statements with 330-term expressions took 73 s."""
    expr = "+".join(["1"] * terms)
    text = (f"input 8x8x3\nrepeat {outer} {{ repeat 5 {{ conv1-${{{expr}}} s=${{{expr}}} }} }}\n")
    line = refused(spec_file(folder, text))
    assert "operations in all" in line or "expands to more than" in line


# -- size: bounded before anything is tokenized ----------------------------------------------
def test_a_50_mb_spec_is_refused_unread(folder: Path) -> None:
    path = folder / "huge.arch"
    with path.open("wb") as f:
        f.truncate(50_000_000)  # sparse: nothing is written, the size is what is checked
    line = refused(str(path))
    assert f"is 50,000,000 bytes long; at most {MAX_CHARS:,} are allowed" in line


def test_a_spec_one_byte_too_long_is_refused(folder: Path) -> None:
    line = refused(spec_file(folder, "#" * (MAX_CHARS + 1)))
    assert "bytes long" in line


@pytest.mark.parametrize(("length", "col"), [(MAX_LINE + 1, MAX_LINE + 1),
                                             (MAX_CHARS - 20, MAX_LINE + 1),
                                             (MAX_LINE - 10, MAX_LINE - 199)])
def test_long_lines_are_refused_and_not_echoed(folder: Path, length: int, col: int) -> None:
    """An error on a 1 MB line shows only the part of it around the fault."""
    line_text = "relu;" * (length // 5)
    line_text = line_text[: col - 1] + "@" + line_text[col:length]
    line = refused(spec_file(folder, f"input 8x8x3\n{line_text}\n"))
    assert f":2:{col}:" in line, line
    assert len(line) < 300


@pytest.mark.parametrize("statement", ["conv" + "9" * 3000 + "-64", "conv3-64 s=" + "9" * 3000,
                                       "maxpool ceil=" + "x" * 3000, "q" * 3000,
                                       "conv3-64 " + "k" * 3000 + "=1", "dropout p=" + "9" * 3000])
def test_long_words_are_not_echoed_whole(folder: Path, statement: str) -> None:
    line = refused(spec_file(folder, f"input 8x8x3\n{statement}\n"))
    assert len(line) < 400, line


def test_long_line_is_refused_through_the_library() -> None:
    with pytest.raises(SpecError, match="characters long; at most 10,000 are allowed"):
        parse("input 8x8x3\n" + "relu " * 3000)


# -- lines are what editors show ------------------------------------------------------------
BREAKS = ["\f", "\v", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"]


@FUZZ
@given(sep=st.sampled_from(BREAKS), before=st.integers(0, 3))
def test_only_newlines_end_lines(folder: Path, sep: str, before: int) -> None:
    """A form feed, U+2028... is within a line: errors point at the line an editor shows."""
    text = "input 8x8x3\n" + f"relu;{sep}relu\n" * before + f"# a comment{sep}relu\nbogus\n"
    line = refused(spec_file(folder, text))
    assert f"bad.arch:{before + 3}:1: unknown layer 'bogus'" in line, line


@pytest.mark.parametrize("sep", BREAKS)
def test_a_comment_cannot_end_at_a_unicode_line_break(sep: str) -> None:
    graph = parse(f"input 8x8x3\n# comment{sep}conv3-8\nrelu\n")
    assert [n.label for n in graph.body] == ["relu"]


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_newline_conventions_number_lines_alike(folder: Path, newline: str) -> None:
    text = newline.join(["input 8x8x3", "relu", "bogus", ""])
    assert ":3:1: unknown layer 'bogus'" in refused(spec_file(folder, text))


def test_a_byte_order_mark_is_accepted(folder: Path) -> None:
    path = folder / "bom.arch"
    path.write_text("input 8x8x3\nconv3-8\n", encoding="utf-8-sig")
    result, _ = invoke(str(path), "--format", "csv")
    assert result.exit_code == 0, result.output
    assert parse("\ufeffinput 8x8x3\nrelu\n").input_shape == (3, 8, 8)


# -- the statement limit is the documented one ----------------------------------------------
def test_the_statement_limit_is_100_000() -> None:
    """100,000 layers (ten statements of 10,000 copies) pass; one more does not. Each
    layer used to count twice, so 50,001 failed."""
    text = "input 8\n" + "relu x10000\n" * 10
    assert len(parse(text).body) == 100_000
    with pytest.raises(SpecError, match="more than 100000 statements"):
        parse(text + "relu\n")


# -- command-line numbers --------------------------------------------------------------------
BAD_NUMBERS = ["0", "-1", "1e310", "nan", "inf", "-inf", "1.5", "", " ", "٣", "１２",
               "9" * 5000, "0x10", "1_000", "10000000000000000000000"]


@pytest.mark.parametrize("value", BAD_NUMBERS, ids=lambda v: repr(v[:12]))
@pytest.mark.parametrize("option", ["--layers", "--kernel", "--stride", "--dilation"])
def test_rf_options_out_of_range(option: str, value: str) -> None:
    args = {"--layers": "3", "--kernel": "3", option: value}
    refused("rf", *[x for kv in args.items() for x in kv])


@pytest.mark.parametrize("value", BAD_NUMBERS, ids=lambda v: repr(v[:12]))
def test_batch_out_of_range(value: str) -> None:
    refused("mlp-cifar", "--batch", value)


@FUZZ
@given(layers=st.integers(1, 10_000), stride=st.integers(2, 10_000),
       kernel=st.integers(2, 10_000))
def test_rf_fields_past_10_18_are_refused(layers: int, stride: int, kernel: int) -> None:
    strides = (stride**min(layers, 70) - 1) // (stride - 1)
    if 1 + (kernel - 1) * strides <= 10**18:
        return  # a field archcalc can state: not this test's input
    line = refused("rf", "--layers", str(layers), "--kernel", str(kernel), "--stride",
                   str(stride))
    assert "is larger than 10^18" in line


@pytest.mark.parametrize("setting", ["n5=٣", "n5=１２", "n5=" + "1" * 5000, "n5=1e3",
                                     "n5=", "=3", "n5=3=4", "n٣=1", "n5=0x10",
                                     "n5=" + "9" * 19])
def test_set_takes_ascii_whole_numbers(setting: str) -> None:
    line = refused("vgg19", "--table", "--set", setting)
    assert "expected NAME=INTEGER" in line and len(line) < 300


@FUZZ
@given(text=st.text(min_size=1, max_size=30).filter(lambda t: "\x00" not in t))
def test_input_shapes(text: str) -> None:
    """Random text as --input: a shape or a one-line refusal."""
    result, elapsed = invoke("mlp-cifar", "--input", text, "--format", "csv")
    if result.exit_code != 0:
        refused("mlp-cifar", "--input", text, "--format", "csv")
    assert elapsed < FAST


@pytest.mark.parametrize("args", [["vgg19", "--nope"], ["vgg19", "--format", "xml"],
                                  ["rf", "--kernel", "3"], ["formula"],
                                  ["list", "extra"], ["vgg19", "--batch"]],
                         ids=" ".join)
def test_usage_errors_are_one_line(args: list[str]) -> None:
    refused(*args)


# -- names and paths --------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "near"), [("vgg91", "vgg19"), ("resnet-50", "resnet50"),
                                            ("alexnt", "alexnet"), ("VGG19", "vgg19")])
def test_unknown_models_get_a_suggestion(name: str, near: str) -> None:
    assert f"did you mean {near!r}?" in refused(name)


@pytest.mark.parametrize(("layer", "near"), [("reul", "relu"), ("maxpol", "maxpool"),
                                             ("conv3x-64", "conv3-64"), ("batchnrom", "batchnorm"),
                                             ("sofmax", "softmax")])
def test_unknown_layers_get_a_suggestion(layer: str, near: str) -> None:
    assert f"did you mean {near!r}?" in refused("formula", layer, "--input", "8x8x3")


@pytest.mark.parametrize(("args", "near"), [
    (["vgg19", "--set", "n55=3"], "n5"),
    (["formula", "conv3-64 strid=2"], "stride"),
    (["formula", "maxpool ceil_mode=true"], "ceil"),
])
def test_unknown_parameters_and_options_get_a_suggestion(args: list[str], near: str) -> None:
    assert f"did you mean {near!r}?" in refused(*args)


def test_unknown_names_in_a_spec_get_a_suggestion(folder: Path) -> None:
    text = ("input 8x8x3\nparam width = 8\ndefine block(c) { conv3-$c }\n"
            "block cc=4\nconv3-${widht}\nresidual shortcat=B { relu }\n")
    assert "did you mean 'c'?" in refused(spec_file(folder, text))
    text = text.replace("block cc=4\n", "")
    assert "did you mean 'width'?" in refused(spec_file(folder, text))
    text = text.replace("${widht}", "$width")
    assert "did you mean 'shortcut'?" in refused(spec_file(folder, text))


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_is_named_as_such(folder: Path) -> None:
    path = folder / "pipe.arch"
    os.mkfifo(path)
    line = refused(str(path))
    assert "is a FIFO (named pipe), not a regular file" in line


@pytest.mark.parametrize("name", ["x" * 5000, "a\x01b.arch", "dir"])
def test_names_that_are_no_spec(folder: Path, name: str) -> None:
    if name == "dir":
        name = str(folder / "a-directory.arch")
        Path(name).mkdir(exist_ok=True)
    refused(name)


def test_undecodable_spec(folder: Path) -> None:
    path = folder / "latin1.arch"
    path.write_bytes(b"input 8x8x3\n# caf\xe9\nrelu\n")
    assert "cannot read spec file" in refused(str(path))


# -- archcalc formula -------------------------------------------------------------------------
@pytest.mark.parametrize("layer", ["concat { branch { relu } branch { } }",
                                   "residual { conv3-3 p=1 }", "add { branch { } branch { } }",
                                   "split { branch { } branch { } }", "gate { relu }",
                                   "relu; relu", "repeat 2 { relu }", "conv3-8 x2"])
def test_formula_on_a_block_is_one_line(layer: str) -> None:
    assert "is not a single layer" in refused("formula", layer, "--input", "8x8x6")


@FUZZ
@given(size=st.integers(1, 40), kernel=st.integers(1, 6), stride=st.integers(1, 6),
       pad=st.integers(0, 3), ceil=st.booleans())
@example(size=5, kernel=2, stride=2, pad=1, ceil=True)  # the issue's: H_out 4, shape 3
def test_pool_formula_agrees_with_the_shape(size: int, kernel: int, stride: int, pad: int,
                                            ceil: bool) -> None:
    """H_out as the formula writes it is the shape torch gives, last-window rule included."""
    from archcalc.symbolic import layer_formulas

    if 2 * pad > kernel or size + 2 * pad < kernel:
        return
    label = f"maxpool{kernel} s={stride} p={pad} ceil={str(ceil).lower()}"
    found = layer_formulas(label, (3, size, size))
    (h_out,) = [row.value for row in found.rows if row.name == "H_out"]
    assert h_out == found.out_shape[1]


def test_ceil_pool_formula_from_the_issue() -> None:
    result, _ = invoke("formula", "maxpool2 s=2 p=1 ceil=true", "--input", "5x5x3")
    assert result.exit_code == 0, result.output
    assert "-> 3x3x3" in result.stdout and "= 3\n" in result.stdout


@pytest.mark.parametrize("args", [["vgg19", "--batch", "0"], ["vgg19", "--nope"]],
                         ids=" ".join)
def test_usage_errors_are_one_line_through_the_script(args: list[str]) -> None:
    """``archcalc MODEL ...`` runs a one-command app of its own (the fast path)."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", "from archcalc.cli import main; main()",
                           *args], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: "), proc.stderr


# -- expressions: limits that are hit are the limits named -----------------------------------
def test_a_flat_sum_of_500_terms_is_evaluated(folder: Path) -> None:
    """A sum of 500 terms fits the 1,000-character limit; it was refused as "nested too
    deeply" (the evaluator recursed once per term). Its value is the channel count."""
    expr = "+".join(["1"] * 500)
    result, _ = invoke(spec_file(folder, f"input 8x8x3\nconv3-${{{expr}}}\n"), "--format",
                       "json")
    assert result.exit_code == 0, result.output
    import json

    (layer,) = json.loads(result.stdout)["layers"]
    assert layer["output_shape"] == [500, 8, 8]
    assert layer["weights"] == 3 * 3 * 3 * 500


def test_an_expression_one_term_too_long_names_the_length_limit(folder: Path) -> None:
    from archcalc.expr import MAX_LENGTH

    expr = "+".join(["1"] * (MAX_LENGTH // 2 + 1))
    line = refused(spec_file(folder, f"input 8x8x3\nconv3-${{{expr}}}\n"))
    assert f"expression longer than {MAX_LENGTH} characters" in line


# -- memory: the bad inputs above, in a process whose address space is capped ---------------
MEMORY_CAP = 1536 * 2**20  # RLIMIT_AS of the child: past it an allocation fails
PEAK_LIMIT = 250 * 2**20  # resident memory the child may reach (measured: 75 MiB, sympy in)

_CHILD = """
import json, resource, sys
resource.setrlimit(resource.RLIMIT_AS, ({cap}, {cap}))
from archcalc.cli import main
codes = []
for args in json.loads(sys.argv[1]):
    try:
        main(args)
    except SystemExit as exc:
        codes.append(exc.code)
    else:
        codes.append(0)
# this process's own peak (ru_maxrss would keep the forking pytest's across exec)
status = open("/proc/self/status").read().split("VmHWM:")[1]
peak = int(status.split()[0]) * 1024  # kB
print(json.dumps({{"codes": codes, "peak": peak}}))
"""


def _memory_cases(folder: Path) -> list[list[str]]:
    """One input of each class above that made archcalc allocate: fraction towers, long
    sums repeated, a 50 MB spec, a line of ~1 MB, huge words, huge numbers on options."""
    tower = "(1/3)**64"
    for _ in range(4):
        tower = f"({tower})**64"
    terms = "+".join(["1"] * 330)
    huge = folder / "huge-mem.arch"
    with huge.open("wb") as f:
        f.truncate(50_000_000)
    long_line = "relu;" * ((MAX_CHARS - 20) // 5)
    files = {
        "tower.arch": f"input 8x8x3\nconv3-${{{tower}}}\n",
        "sums.arch": f"input 8x8x3\nrepeat 10000 {{ repeat 5 {{ conv1-${{{terms}}} }} }}\n",
        "line.arch": f"input 8x8x3\n{long_line}@\n",
        "word.arch": "input 8x8x3\nconv" + "9" * 3000 + "-64\n",
        "many.arch": "input 8\n" + "relu x10000\n" * 10 + "relu\n",
    }
    cases = [[spec_file(folder, text, name)] for name, text in files.items()]
    return [*cases, [str(huge)], ["rf", "--layers", "10000", "--kernel", "3", "--stride", "2"],
            ["vgg19", "--batch", "1e310"], ["vgg19", "--set", "n5=" + "9" * 5000],
            ["formula", "conv3-${" + tower + "}"]]


@pytest.mark.skipif(not Path("/proc/self/status").is_file(),
                    reason="the peak resident memory is read from Linux's /proc")
def test_bad_inputs_are_refused_within_bounded_memory(folder: Path) -> None:
    """Time is bounded above; this bounds memory. Each case runs in one child process whose
    address space is capped at 1.5 GiB: an input that made archcalc allocate GBs would end
    there in a MemoryError (a traceback, not exit code 2), and one that took hundreds of MB
    shows in the child's peak resident memory."""
    import json
    import subprocess
    import sys

    cases = _memory_cases(folder)
    proc = subprocess.run([sys.executable, "-c", _CHILD.format(cap=MEMORY_CAP),
                           json.dumps(cases)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and "MemoryError" not in proc.stderr
    result = json.loads(proc.stdout.splitlines()[-1])
    assert result["codes"] == [2] * len(cases), list(zip(cases, result["codes"], strict=True))
    assert result["peak"] < PEAK_LIMIT, f"{result['peak'] / 2**20:.0f} MiB"
