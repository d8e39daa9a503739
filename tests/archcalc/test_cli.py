"""The archcalc command line: routing, every documented example, errors at the edge,
and no framework imported by the core commands."""

from __future__ import annotations

import importlib.util
import json
import re
import shlex
import subprocess
import sys
import types
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from archcalc import zoo
from archcalc.cli import COMMANDS, EXAMPLES, ConventionName, Dtype, Fmt, app, route
from archcalc.conventions import CONVENTIONS
from archcalc.render import DTYPE_BYTES, FORMATS, homework_table, render

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).parent / "golden"
SMALL_SPEC = "model small\ninput 32x32x3\nconv3-8; relu; maxpool\nFC-10\n"


def run(*args: str) -> Result:
    return CliRunner().invoke(app, route(list(args)))


def documented_examples() -> list[str]:
    """``archcalc ...`` lines of the README's console blocks and the CLI's own examples."""
    found = [e.removeprefix("archcalc ") for e in EXAMPLES]
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for m in re.finditer(r"^\$ archcalc (.*?)\s*(?:#.*)?$", readme, re.M):
        found.append(m.group(1))
    return list(dict.fromkeys(found))


def export_small_torch(path: Path) -> None:
    """SMALL_TORCH's ResNet as an ONNX file (torch's TorchScript-based exporter)."""
    import io
    import warnings

    import torch

    namespace: dict[str, object] = {}
    exec(SMALL_TORCH, namespace)  # the README's example module, written below
    model = namespace["ResNet"]().eval()  # type: ignore[operator]
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.rand(1, 3, 32, 32),), buffer, dynamo=False,
                          do_constant_folding=False)
    path.write_bytes(buffer.getvalue())


def needs_verify(args: list[str]) -> bool:
    return (args[:1] in (["verify"], ["torch"])
            or any(".py:" in a or a.endswith(".onnx") for a in args))


def needs_keras(args: list[str]) -> bool:
    return args[:1] == ["keras"] or any(a.endswith(".keras") for a in args)


# What a README line 'archcalc torch FILE.py:FACTORY' reads: a small CIFAR-style ResNet.
SMALL_TORCH = """\
import torch.nn as nn


class Block(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(channels), nn.ReLU(),
                                  nn.Conv2d(channels, channels, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(channels))

    def forward(self, x):
        return (self.body(x) + x).relu()


def ResNet(classes=10):
    return nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), Block(16), Block(16),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, classes))
"""


@pytest.mark.parametrize("example", documented_examples())
def test_documented_example_runs(example: str, tmp_path: Path,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    args = shlex.split(example)
    if needs_verify(args) and not (importlib.util.find_spec("torch")
                                   and importlib.util.find_spec("archcalc.verify")):
        pytest.skip("needs the verify extra and archcalc.verify")
    if needs_keras(args) and not importlib.util.find_spec("keras"):
        pytest.skip("needs keras (tensorflow)")
    monkeypatch.chdir(tmp_path)
    for arg in args:
        if arg.endswith(".arch"):
            (tmp_path / arg).write_text(SMALL_SPEC, encoding="utf-8")
        if ".py:" in arg:
            (tmp_path / arg.partition(":")[0]).write_text(SMALL_TORCH, encoding="utf-8")
        if arg.endswith(".onnx"):
            export_small_torch(tmp_path / arg)
    result = run(*args)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() and "\x1b" not in result.stdout


# -- routing ------------------------------------------------------------------------------
@pytest.mark.parametrize(("argv", "routed"), [
    (["vgg19", "--table"], ["analyze", "vgg19", "--table"]),
    (["--table", "vgg19"], ["analyze", "--table", "vgg19"]),
    (["list"], ["list"]),
    (["--help"], ["--help"]),
    ([], []),
])
def test_route(argv: list[str], routed: list[str]) -> None:
    assert route(argv) == routed


def test_every_command_is_routed_to_itself() -> None:
    registered = {c.name for c in app.registered_commands}
    assert registered == COMMANDS


def test_choices_come_from_the_library_registries() -> None:
    assert set(ConventionName) == set(CONVENTIONS)
    assert set(Dtype) == set(DTYPE_BYTES)
    assert set(Fmt) == set(FORMATS)
    help_text = " ".join(run("analyze", "--help").stdout.split())
    for name in (*CONVENTIONS, *DTYPE_BYTES, *FORMATS):  # every choice reaches the user
        assert name in help_text, name


def test_table_output_matches_golden_text() -> None:
    result = run("vgg19", "--table")
    assert result.exit_code == 0
    assert result.stdout == (GOLDEN / "vgg19_table.txt").read_text(encoding="utf-8")


def test_core_command_imports_no_framework() -> None:
    code = ("import sys, contextlib, io\n"
            "from archcalc.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
            "    try:\n        main(['vgg19', '--table'])\n"
            "    except SystemExit as exc:\n        assert exc.code in (0, None), exc.code\n"
            "assert 'TOTAL' in out.getvalue()\n"
            "print(' '.join(sorted(sys.modules)))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, check=True)
    loaded = {m.split(".")[0] for m in proc.stdout.split()}
    assert loaded.isdisjoint({"torch", "tensorflow", "matplotlib", "numpy", "sympy"})


def test_script_runs_in_a_subprocess_without_colour() -> None:
    proc = subprocess.run([sys.executable, "-c", "from archcalc.cli import main; main()",
                           "vgg19", "--table"], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == render(homework_table(__import__("archcalc").analyze(
        __import__("archcalc").load("vgg19"))), "rich")
    assert "\x1b" not in proc.stdout


# -- views and formats --------------------------------------------------------------------
def test_json_output_follows_the_schema() -> None:
    result = run("resnet20", "--format", "json", "--convention", "torchinfo")
    data = json.loads(result.stdout)
    assert data["model"] == "resnet20" and data["convention"] == "torchinfo"
    assert data["layers"][0]["path"] and data["totals"]["params"] > 0


def test_input_and_set_reach_the_model() -> None:
    result = run("vgg", "--set", "n5=2", "--input", "32x32x3", "--format", "csv", "--table")
    assert result.exit_code == 0, result.output
    assert "32*32*64=66K" in result.stdout and "1*1*512=512" in result.stdout


def test_bias_flag() -> None:
    result = run("vgg19", "--table", "--bias", "--format", "md")
    assert r"(3\*3\*3)\*64 + 64 = 1,792" in result.stdout
    assert "**143,667,240**" in result.stdout


def test_full_view_footer_mentions_dtype_and_batch() -> None:
    result = run("mlp-cifar", "--dtype", "bfloat16", "--batch", "32")
    assert "Inference memory (batch 32, bfloat16)" in result.stdout
    assert "Training memory (batch 32, bfloat16, Adam)" in result.stdout


def test_list_shows_every_zoo_model_with_its_source() -> None:
    result = run("list", "--format", "csv")
    for entry in zoo.entries():
        assert f"{entry.name},{entry.file.name}," in result.stdout
        assert entry.source.split(",")[0] in result.stdout


def test_spec_help_prints_the_grammar_verbatim() -> None:
    result = run("spec", "--help")
    assert result.exit_code == 0
    assert "    concat { branch { ... } branch { ... } ... }      parallel branches" in (
        result.stdout)
    assert "    model NAME                    name of the architecture\n" in result.stdout


def test_inception_set_applies_where_the_parameter_exists() -> None:
    result = run("inception", "--set", "r3=64")
    assert result.exit_code == 0, result.output
    assert "32*32*(3*3*64)*192" in result.stdout  # the reduction module's 3x3 conv
    assert "32*32*(3*3*256)*192" in result.stdout  # the naive module's is unchanged


def test_inception_defaults_are_the_seed_figure() -> None:
    result = run("inception", "--format", "csv")
    assert "output after concat,32x32x672,,32x32x480," in result.stdout
    assert "TOTAL,,1115684864,,397410304" in result.stdout


def test_rf_and_formula() -> None:
    assert "one 13x13 convolution" in run("rf", "--layers", "3", "--kernel", "5").stdout
    assert "1,728" in run("formula", "conv3-64", "--input", "224x224x3").stdout


# -- verify (with a stand-in for archcalc.verify) ------------------------------------------
class FakeVerdict:
    def __init__(self, ok: bool) -> None:
        self.ok = ok

    def __rich__(self) -> str:
        return f"verdict ok={self.ok}"


@pytest.mark.parametrize(("ok", "code"), [(True, 0), (False, 1)])
def test_verify_prints_and_exits_by_verdict(ok: bool, code: int,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple] = []

    def verify_model(name: str, input_shape=None, params=None, probe_rf=True) -> FakeVerdict:
        calls.append((name, input_shape, params, probe_rf))
        return FakeVerdict(ok)

    module = types.ModuleType("archcalc.verify")
    module.verify_model = verify_model  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "archcalc.verify", module)
    result = run("verify", "vgg11", "--input", "64x64x3", "--set", "classes=10", "--no-rf")
    assert result.exit_code == code
    assert f"verdict ok={ok}" in result.stdout
    assert calls == [("vgg11", (3, 64, 64), {"classes": 10}, False)]


# -- errors at the edge -------------------------------------------------------------------
ERRORS: list[tuple[list[str], str]] = [
    (["nosuch"], "unknown model 'nosuch'"),
    (["vgg19", "--input", "3x3x3x3"], "--input '3x3x3x3'"),
    (["vgg19", "--input", "0x224x3"], "--input '0x224x3'"),
    (["vgg19", "--set", "n5"], "--set 'n5'"),
    (["vgg19", "--set", "zz=1"], "no parameter 'zz'"),
    (["vgg19", "--format", "xml"], "xml"),
    (["vgg19", "--convention", "nope"], "nope"),
    (["vgg19", "--dtype", "int8"], "int8"),
    (["vgg19", "--batch", "0"], "--batch"),
    (["inception", "--set", "bogus=1"], "bogus"),
    (["rf", "--layers", "0", "--kernel", "3"], "--layers"),
    (["formula", "conv3-64", "--input", "7"], "feature map"),
]


@pytest.mark.parametrize(("args", "message"), ERRORS, ids=lambda v: " ".join(v)
                         if isinstance(v, list) else "")
def test_user_errors_exit_2_without_traceback(args: list[str], message: str) -> None:
    result = run(*args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


@pytest.fixture
def bad_spec(tmp_path: Path) -> Callable[[str], Path]:
    def write(text: str) -> Path:
        path = tmp_path / "bad.arch"
        path.write_text(text, encoding="utf-8")
        return path
    return write


def test_spec_error_shows_file_line_col_and_caret(bad_spec: Callable[[str], Path]) -> None:
    path = bad_spec("model bad\ninput 32x32x3\nconv3-64 q=2; relu\n")
    proc = subprocess.run([sys.executable, "-c", "from archcalc.cli import main; main()",
                           str(path), "--table"], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    first, source, caret = proc.stderr.splitlines()[:3]
    assert first.startswith(f"{path}:3:10: unknown option 'q' for conv")
    assert source == "  conv3-64 q=2; relu"
    assert caret == "  " + " " * 9 + "^"


def test_spec_error_in_the_middle_of_a_shape(bad_spec: Callable[[str], Path]) -> None:
    result = run(str(bad_spec("input 8x8x3\nconv9-4 p=0\n")))
    assert result.exit_code == 2
    assert ":2:1: kernel 9 is larger than the padded input height" in result.stderr
    assert result.stderr.rstrip().endswith("^")
