"""``--skip-unknown`` (issue 13): an operation archcalc has no rule for is one error line
naming it (exit code 2); asked to, the importers pass over such an operation as zero cost
when its output keeps its input's shape, and say which they passed over (a warning line,
and the JSON's ``warnings``). One that changes the shape, or whose shape is unknown, is
still refused. Torch, Keras and ONNX, on small hand-written models."""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from archcalc.cli import app, route

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

import archcalc  # noqa: E402
from archcalc.importers.dataflow import UnsupportedModel  # noqa: E402

TORCH_MODELS = '''
import torch
from torch import nn


class Net(nn.Module):
    """conv, torch.roll and Softplus (no rule for either; both keep the shape), a head."""

    def __init__(self, width: int = 8):
        super().__init__()
        self.conv = nn.Conv2d(3, width, 3, padding=1)
        self.act = nn.Softplus()
        self.head = nn.Linear(width * 8 * 8, 10)

    def forward(self, x):
        x = torch.roll(self.conv(x), 1, dims=2)
        return self.head(self.act(x).flatten(1))


class Plain(nn.Module):
    """Net without the two operations: what skipping them must count."""

    def __init__(self, width: int = 8):
        super().__init__()
        self.conv = nn.Conv2d(3, width, 3, padding=1)
        self.head = nn.Linear(width * 8 * 8, 10)

    def forward(self, x):
        return self.head(self.conv(x).flatten(1))


class Shrinks(nn.Module):
    """PixelUnshuffle: no rule, and it changes the shape (8x8x8 -> 4x4x32)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.shuffle = nn.PixelUnshuffle(2)

    def forward(self, x):
        return self.shuffle(self.conv(x))
'''
INPUT = (3, 8, 8)


def run(*args: str) -> Result:
    return CliRunner().invoke(app, route(list(args)))


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    path = tmp_path_factory.mktemp("skip") / "skipnets.py"
    path.write_text(TORCH_MODELS, encoding="utf-8")
    namespace: dict[str, Any] = {}
    exec(compile(TORCH_MODELS, str(path), "exec"), namespace)
    return path, namespace


def numel(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# -- torch --------------------------------------------------------------------------------
def test_without_the_option_an_unknown_call_is_one_error(models: tuple[Path, Any]) -> None:
    path, ns = models
    with pytest.raises(UnsupportedModel, match=r"cannot read call_function 'roll' "
                                               r"\(torch.roll\): no rule for torch.roll"):
        archcalc.from_torch(ns["Net"](), INPUT)
    result = run("torch", f"{path}:Net", "--input", "8x8x3")
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "no rule for torch.roll" in result.stderr


def test_skipped_calls_count_zero_and_are_named(models: tuple[Path, Any]) -> None:
    _, ns = models
    net, plain = ns["Net"](), ns["Plain"]()
    report = archcalc.from_torch(net, INPUT, skip_unknown=True)
    assert report.totals == archcalc.from_torch(plain, INPUT).totals
    assert report.totals.params == numel(net) == numel(plain)
    skipped = [w for w in report.warnings if w.startswith("skipped ")]
    assert len(skipped) == 2
    assert "torch.roll" in skipped[0] and "8x8x8" in skipped[0]
    assert "softplus" in skipped[1] and "in module 'act'" in skipped[1]


def test_a_model_with_rules_for_everything_is_read_alike(models: tuple[Path, Any]) -> None:
    """--skip-unknown changes nothing where there is nothing to skip."""
    _, ns = models
    plain = ns["Plain"]()
    with_option = archcalc.from_torch(plain, INPUT, skip_unknown=True)
    assert with_option == archcalc.from_torch(plain, INPUT)


def test_a_skipped_call_must_keep_the_shape(models: tuple[Path, Any]) -> None:
    path, ns = models
    with pytest.raises(UnsupportedModel, match=r"changes the shape 8x8x8 -> 4x4x32"):
        archcalc.from_torch(ns["Shrinks"](), INPUT, skip_unknown=True)
    result = run("torch", f"{path}:Shrinks", "--input", "8x8x3", "--skip-unknown")
    assert result.exit_code == 2 and result.stderr.count("\n") == 1
    assert "pixel_unshuffle" in result.stderr and "changes the shape" in result.stderr


def test_cli_says_which_calls_were_skipped(models: tuple[Path, Any]) -> None:
    path, ns = models
    args = ["torch", f"{path}:Net", "--input", "8x8x3", "--skip-unknown"]
    data = json.loads(run(*args, "--format", "json").stdout)
    assert len(data["warnings"]) == 2 and "torch.roll" in data["warnings"][0]
    assert data["totals"]["params"] == numel(ns["Net"]())
    text = run(*args, "--table")
    assert text.exit_code == 0
    lines = [x for x in text.stdout.splitlines() if x.startswith("Warning: skipped")]
    assert len(lines) == 2 and "torch.roll" in lines[0]


def test_spec_models_take_no_skip_option() -> None:
    result = run("vgg19", "--skip-unknown")
    assert result.exit_code == 2 and "--skip-unknown is for imported models" in result.stderr


# -- Keras --------------------------------------------------------------------------------
KERAS_MODELS = '''
import keras


def doubled(keep: bool = True):
    """conv, a Lambda (no rule: archcalc cannot see into Python), a head. Keeping the shape
    (x * 2) or not (every second row and column)."""
    x = inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(8, 3, padding="same")(x)
    if keep:
        x = keras.layers.Lambda(lambda t: t * 2.0)(x)
    else:
        x = keras.layers.Lambda(lambda t: t[:, ::2, ::2, :])(x)
    x = keras.layers.Flatten()(x)
    return keras.Model(inputs, keras.layers.Dense(10)(x))
'''


def test_keras_skips_a_layer_that_keeps_the_shape(tmp_path: Path) -> None:
    pytest.importorskip("keras")
    path = tmp_path / "kerasnets.py"
    path.write_text(KERAS_MODELS, encoding="utf-8")
    from archcalc.importers.keras import from_keras

    namespace: dict[str, Any] = {}
    exec(compile(KERAS_MODELS, str(path), "exec"), namespace)
    model = namespace["doubled"]()
    with pytest.raises(UnsupportedModel, match=r"no rule for keras\.layers.*Lambda"):
        from_keras(model)
    report = from_keras(model, skip_unknown=True)
    assert report.totals.params == model.count_params()  # 3*3*3*8+8 + 512*10+10
    (skipped,) = [w for w in report.warnings if w.startswith("skipped ")]
    assert "Lambda" in skipped and "8x8x8" in skipped
    result = run("keras", f"{path}:doubled", "--skip-unknown", "--format", "json")
    assert result.exit_code == 0, result.output
    (warning,) = json.loads(result.stdout)["warnings"]  # a new model: a new layer name
    assert "(keras.layers.core.lambda_layer.Lambda): no rule for" in warning
    result = run("keras", f"{path}:doubled", "--arg", "keep=false", "--skip-unknown")
    assert result.exit_code == 2 and result.stderr.count("\n") == 1
    assert "changes the shape 8x8x8 -> 4x4x8" in result.stderr


# -- ONNX ---------------------------------------------------------------------------------
class Absolute(nn.Module):
    """conv, |x| (ONNX Abs: no rule; onnx's shape inference knows it keeps the shape)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.head = nn.Linear(8 * 8 * 8, 10)

    def forward(self, x: Any) -> Any:
        return self.head(torch.abs(self.conv(x)).flatten(1))


def exported(module: nn.Module, path: Path) -> Path:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module.eval(), (torch.rand((1, *INPUT)),), buffer, dynamo=False,
                          do_constant_folding=False)
    path.write_bytes(buffer.getvalue())
    return path


def test_onnx_skips_a_node_that_keeps_the_shape(tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    module = Absolute()
    path = exported(module, tmp_path / "absolute.onnx")
    result = run(str(path))
    assert result.exit_code == 2 and "no rule for Abs" in result.stderr
    data = json.loads(run(str(path), "--skip-unknown", "--format", "json").stdout)
    assert data["totals"]["params"] == numel(module)
    (skipped,) = data["warnings"]
    assert "(Abs): no rule for Abs" in skipped and "8x8x8" in skipped


def test_onnx_node_of_unknown_shape_is_still_refused(tmp_path: Path) -> None:
    """A node of another domain: onnx's shape inference cannot tell its output."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(torch.ones(4, 3, 3, 3).numpy(), "w")
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Mystery", ["c"], ["y"], domain="example.ops")]
    graph = helper.make_graph(nodes, "mystery",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                             [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              [weight])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                    helper.make_opsetid("example.ops", 1)])
    path = tmp_path / "mystery.onnx"
    onnx.save(model, str(path))
    result = run(str(path), "--skip-unknown")
    assert result.exit_code == 2 and result.stderr.count("\n") == 1
    assert "no rule for Mystery; its output shape is unknown" in result.stderr
