"""archcalc.from_torch on model definitions nobody here wrote: EfficientNet-PyTorch
(lukemelas/EfficientNet-PyTorch, a torch-only package; torchvision's wheel on the registry
is built for CUDA torch and does not import beside the CPU torch), B0 to B7 at a small
input. Its convs pad statically for the image size ('same' padding as TensorFlow computes
it) inside Conv2dStaticSamePadding.forward, which the importer reads as F.pad + F.conv2d.
Parameters and buffers against numel, FLOPs against FlopCounterMode and fvcore on the
package's own module, and the imported graph against torch (verify)."""

from __future__ import annotations

import warnings

import pytest

torch = pytest.importorskip("torch")
efficientnet = pytest.importorskip("efficientnet_pytorch")

import archcalc  # noqa: E402
from archcalc.importers.torch import torch_graph  # noqa: E402

SIZE = 64  # every B0-B7 stage keeps a map at 64 px (the last is 2x2)
VARIANTS = [f"efficientnet-b{i}" for i in range(8)]


def build(name: str) -> torch.nn.Module:
    model = efficientnet.EfficientNet.from_name(name, image_size=SIZE)
    model.set_swish(memory_efficient=False)  # the memory-efficient one is a custom autograd op
    return model.eval()


@pytest.mark.parametrize("name", VARIANTS)
def test_efficientnet_pytorch_counts(name: str) -> None:
    model = build(name)
    graph = torch_graph(model, (3, SIZE, SIZE))
    report = archcalc.analyze(graph)
    assert report.totals.params == sum(p.numel() for p in model.parameters())
    assert report.totals.buffers == sum(b.numel() for n, b in model.named_buffers()
                                        if n.endswith(("running_mean", "running_var")))
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.rand((1, 3, SIZE, SIZE))
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x)
    assert archcalc.analyze(graph, "flopcounter").totals.flops == counter.get_total_flops()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fvcore.nn import FlopCountAnalysis

        analysis = FlopCountAnalysis(model, x)
        analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        assert archcalc.analyze(graph, "fvcore").totals.macs == analysis.total()


def test_efficientnet_b0_at_224_has_its_published_size() -> None:
    """Tan & Le 2019, Table 2: 5.3M parameters; torchvision's efficientnet_b0: 5,288,548."""
    model = efficientnet.EfficientNet.from_name("efficientnet-b0")
    model.set_swish(memory_efficient=False)
    assert archcalc.from_torch(model, (3, 224, 224)).totals.params == 5_288_548


@pytest.mark.slow
def test_efficientnet_b0_verifies_against_torch() -> None:
    from archcalc.verify import verify

    report = verify(torch_graph(build("efficientnet-b0"), (3, SIZE, SIZE)))
    assert report.ok, [(c.name, c.path, c.expected, c.actual) for c in report.failures]
