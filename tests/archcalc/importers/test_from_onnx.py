"""archcalc model.onnx: the models of test_from_torch.py (and EfficientNet-PyTorch's B0)
exported by torch's ONNX exporter give the numbers archcalc reads from the torch modules
themselves; an ONNX node without a rule is named."""

from __future__ import annotations

import io
import json
import warnings

import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

from test_from_torch import MODELS  # noqa: E402

import archcalc  # noqa: E402
from archcalc.importers.dataflow import UnsupportedModel  # noqa: E402
from archcalc.importers.onnx import onnx_graph  # noqa: E402
from archcalc.importers.torch import torch_graph  # noqa: E402


def exported(module: torch.nn.Module, input_size: tuple[int, ...]) -> onnx.ModelProto:
    """torch's TorchScript-based exporter (the dynamo one needs onnxscript), without
    constant folding, so batch norms stay batch norms."""
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module.eval(), (torch.rand((1, *input_size)),), buffer,
                          dynamo=False, do_constant_folding=False)
    return onnx.load_from_string(buffer.getvalue())


# 'assorted' holds AdaptiveMaxPool2d, which torch's exporter cannot export; the exporter
# writes 'shape-dependent''s out += x as a new tensor
@pytest.mark.parametrize("name", [n for n in MODELS if n not in ("assorted", "shape-dependent")])
def test_exported_models_give_the_torch_numbers(name: str) -> None:
    factory, input_size = MODELS[name]
    module = factory()
    graph = onnx_graph(exported(module, input_size), name=name)
    assert graph.input_shape == input_size
    for convention in ("full", "flopcounter", "torchinfo"):
        ours = archcalc.analyze(graph, convention).totals
        assert ours == archcalc.analyze(torch_graph(module, input_size), convention).totals


def test_efficientnet_pytorch_exported() -> None:
    efficientnet = pytest.importorskip("efficientnet_pytorch")
    model = efficientnet.EfficientNet.from_name("efficientnet-b0", image_size=64)
    model.set_swish(memory_efficient=False)
    graph = onnx_graph(exported(model, (3, 64, 64)), name="efficientnet-b0")
    ours, theirs = (archcalc.analyze(g, "flopcounter").totals
                    for g in (graph, torch_graph(model, (3, 64, 64))))
    # The exporter writes SiLU as x * sigmoid(x) (a gate of a sigmoid, a new tensor): the
    # weights, buffers and multiply-accumulates are the module's; 'full' FLOPs and
    # activations count what the ONNX graph computes.
    assert (ours.params, ours.buffers, ours.macs, ours.flops) == (
        theirs.params, theirs.buffers, theirs.macs, theirs.flops)


def test_cli_reads_an_onnx_file(tmp_path) -> None:
    from typer.testing import CliRunner

    from archcalc.cli import app, route

    factory, input_size = MODELS["resnetish"]
    module = factory()
    path = tmp_path / "resnetish.onnx"
    onnx.save(exported(module, input_size), str(path))
    result = CliRunner().invoke(app, route([str(path), "--format", "json"]))
    assert result.exit_code == 0, result.output
    totals = json.loads(result.output)["totals"]
    assert totals["params"] == sum(p.numel() for p in module.parameters())  # torch's count


def test_a_node_without_a_rule_is_named() -> None:
    module = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Softplus())
    with pytest.raises(UnsupportedModel, match=r"cannot read node .*\(Softplus\): no rule "
                                               "for Softplus"):
        onnx_graph(exported(module, (3, 8, 8)))
