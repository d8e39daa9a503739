"""ONNX models saved with external data (``onnx.save_model(..., save_as_external_data=
True)``, as models over 2 GB must be): archcalc reads only the graph and the initializers'
dimensions, so ``archcalc model.onnx`` gives the same numbers with the data file deleted.
A constant a rule needs (a clip bound) stored in a data file that is gone is one line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
np = pytest.importorskip("numpy")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from onnx.external_data_helper import uses_external_data  # noqa: E402
from test_from_onnx import exported  # noqa: E402
from test_from_torch import MODELS  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

import archcalc  # noqa: E402
from archcalc.cli import app, route  # noqa: E402
from archcalc.importers.torch import torch_graph  # noqa: E402


def save_external(model: Any, path: Path, threshold: int = 1024) -> Path:
    """``model`` saved as ``path`` with every tensor of ``threshold`` bytes or more in one
    data file beside it (onnx's own default threshold: 1024); the data file's path."""
    onnx.save_model(model, str(path), save_as_external_data=True,
                    all_tensors_to_one_file=True, location=f"{path.name}.data",
                    size_threshold=threshold)
    return path.with_name(f"{path.name}.data")


def cli_json(*args: str) -> Any:
    result = CliRunner().invoke(app, route([*args, "--format", "json"]))
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


@pytest.mark.parametrize("name", ["resnetish", "mobilenetish"])
def test_numbers_without_the_data_file(name: str, tmp_path: Path) -> None:
    factory, input_size = MODELS[name]
    module = factory()
    path = tmp_path / f"{name}.onnx"
    data = save_external(exported(module, input_size), path, threshold=0)
    saved = onnx.load(str(path), load_external_data=False).graph.initializer
    assert saved and all(uses_external_data(t) for t in saved)  # every weight is there
    data.unlink()
    expected = archcalc.analyze(torch_graph(module, input_size)).totals
    totals = cli_json(str(path))["totals"]
    assert totals["params"] == sum(p.numel() for p in module.parameters())  # torch's count
    assert (totals["params"], totals["macs"], totals["flops"]) == (
        expected.params, expected.macs, expected.flops)
    spec = CliRunner().invoke(app, ["to-spec", str(path)])  # the other path to a graph
    assert spec.exit_code == 0, spec.output
    assert archcalc.analyze(archcalc.parse(spec.output)).totals == expected


def clipped() -> Any:
    """conv3-8 (3 input channels), relu6 as Clip with its bounds as initializers, global
    average pooling, flatten and a fully connected layer of 4: 3*3*3*8 + 8 + 8*4 + 4
    = 260 parameters."""
    rng = np.random.default_rng(0)

    def init(name: str, shape: tuple[int, ...]) -> Any:
        return numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name)

    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Clip", ["c", "low", "high"], ["r"]),
             helper.make_node("GlobalAveragePool", ["r"], ["p"]),
             helper.make_node("Flatten", ["p"], ["f"]),
             helper.make_node("Gemm", ["f", "fc", "fcb"], ["y"], transB=1)]
    inits = [init("w", (8, 3, 3, 3)), init("b", (8,)), init("fc", (4, 8)), init("fcb", (4,)),
             numpy_helper.from_array(np.array(0.0, np.float32), "low"),
             numpy_helper.from_array(np.array(6.0, np.float32), "high")]
    graph = helper.make_graph(
        nodes, "clipped", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    return model


def test_a_constant_in_external_data_is_read_alone(tmp_path: Path) -> None:
    """Every tensor external (threshold 0): the clip bounds are read from the data file,
    each at its offset; the weights are not needed."""
    path = tmp_path / "clipped.onnx"
    save_external(clipped(), path, threshold=0)
    data = cli_json(str(path))
    assert data["totals"]["params"] == 3 * 3 * 3 * 8 + 8 + 8 * 4 + 4
    assert [layer["kind"] for layer in data["layers"]][:2] == ["conv", "act"]


def test_a_needed_constant_whose_data_file_is_gone(tmp_path: Path) -> None:
    path = tmp_path / "clipped.onnx"
    save_external(clipped(), path, threshold=0).unlink()
    result = CliRunner().invoke(app, route([str(path)]))
    assert result.exit_code == 2
    assert result.output.strip().count("\n") == 0
    assert "'low', which a rule needs, is in external data that cannot be read" in (
        result.output)


@pytest.mark.parametrize(("content", "why"), [
    (b"garbage\n", "Error parsing message"),  # text, or a truncated download
    (b"", "it holds no graph nodes"),  # an empty protobuf parses as an empty model
])
def test_a_file_that_is_not_an_onnx_model(tmp_path: Path, content: bytes, why: str) -> None:
    path = tmp_path / "model.onnx"
    path.write_bytes(content)
    for args in ([str(path)], ["to-spec", str(path)]):
        result = CliRunner().invoke(app, route(args))
        assert result.exit_code == 2, result.output
        assert result.output.strip().count("\n") == 0
        assert f"{path} is not an ONNX model: " in result.output and why in result.output
