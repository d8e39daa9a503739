"""archcalc.backends.torch: the module built from a Graph has one tagged module per report
row, the spec's layers and options, and shapes derived by torch rather than by archcalc."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

import archcalc  # noqa: E402
from archcalc.backends.measure import (  # noqa: E402
    _box,
    output_shapes,
    parameter_counts,
    probe_copy,
    probe_fields,
)
from archcalc.backends.modules import (  # noqa: E402
    AddBranches,
    FlattenLinear,
    ResidualBlock,
    ZeroPad,
)
from archcalc.backends.torch import PATH_ATTR, build_module, modules_by_path  # noqa: E402
from archcalc.kinds import REGISTRY  # noqa: E402
from archcalc.zoo import names  # noqa: E402

_ROW_MODULES = {
    "conv": nn.Conv2d, "bn": (nn.BatchNorm1d, nn.BatchNorm2d), "linear": nn.Linear,
    "flatten": nn.Flatten, "dropout": nn.Dropout, "lrn": nn.LocalResponseNorm,
    "pool": (nn.MaxPool2d, nn.AvgPool2d), "globalpool": (nn.AdaptiveAvgPool2d,
                                                         nn.AdaptiveMaxPool2d),
    "zeropad": ZeroPad, "add": (ResidualBlock, AddBranches),  # residual, or add { }
}


@pytest.mark.slow
@pytest.mark.parametrize("name", names())
def test_zoo_module_has_a_module_per_row_and_the_same_counts(name: str) -> None:
    graph = archcalc.load(name)
    report = archcalc.analyze(graph)
    model = build_module(graph)
    by_path = modules_by_path(model)
    assert set(by_path) == {r.path for r in report.rows}
    for row in report.rows:
        expected = _ROW_MODULES.get(row.kind)
        if expected is not None:
            assert isinstance(by_path[row.path], expected), row.path
    assert parameter_counts(model) == (report.totals.params, report.totals.buffers)
    names_by_module = {m: n for n, m in model.named_modules()}
    for path, module in by_path.items():  # child names are the paths, "." -> "_"
        assert names_by_module[module].rsplit(".", 1)[-1] == path.replace(".", "_")


def test_layer_options_reach_the_modules() -> None:
    graph = archcalc.parse("input 20x18x4\nconv3-8 s=2 d=2 g=2 p=1 bias=false; "
                           "avgpool3 s=2 p=1 ceil=true; bn eps=0.001 affine=false; "
                           "globalmaxpool; FC-5; bn; soft-max")
    m = modules_by_path(build_module(graph))
    conv = m["1"]
    assert (conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
            conv.dilation, conv.groups, conv.bias) == (4, 8, (3, 3), (2, 2), (1, 1), (2, 2),
                                                       2, None)
    pool = m["2"]
    assert isinstance(pool, nn.AvgPool2d) and pool.ceil_mode and pool.count_include_pad
    assert isinstance(m["3"], nn.BatchNorm2d) and m["3"].eps == 0.001 and not m["3"].affine
    assert isinstance(m["4"], nn.AdaptiveMaxPool2d)
    assert m["5"].in_features == 8 and isinstance(m["6"], nn.BatchNorm1d)
    assert isinstance(m["7"], nn.Softmax) and m["7"].dim == 1


def test_linear_on_a_feature_map_is_flattened_first() -> None:
    model = build_module(archcalc.parse("input 4x4x3\nFC-7"))
    (fc,) = model.children()  # one module per row: tools count it as torch's Linear
    assert isinstance(fc, nn.Linear) and fc.in_features == 4 * 4 * 3
    assert model(torch.rand(2, 3, 4, 4)).shape == (2, 7)


def test_shapes_come_from_torch_not_from_archcalc(monkeypatch) -> None:
    def broken(*_args):
        raise AssertionError("the backend must not use archcalc's shape rules")

    for cls in REGISTRY.values():
        monkeypatch.setattr(cls, "output_shape", broken)
    model = build_module(archcalc.load("resnet20"))
    assert output_shapes(model)["9"] == (64, 8, 8)  # the first block of stage 3


def test_initialisation_is_torch_default_not_empty_memory() -> None:
    model = build_module(archcalc.parse("input 8x8x3\nconv3-16; bn; FC-10"))
    conv, bn, linear = (modules_by_path(model)[p] for p in ("1", "2", "3"))
    bound = 1 / math.sqrt(27)  # kaiming_uniform(a=sqrt(5)) as nn.Conv2d.reset_parameters
    assert 0 < conv.weight.abs().max() <= bound and conv.weight.std() > bound / 4
    assert torch.equal(bn.running_var, torch.ones(16)) and torch.equal(bn.weight,
                                                                       torch.ones(16))
    assert torch.isfinite(linear.weight).all() and linear.weight.device.type == "cpu"


def test_zero_pad_shortcut_subsamples_and_centres_the_channels() -> None:
    x = torch.arange(2 * 5 * 5, dtype=torch.float32).reshape(1, 2, 5, 5)
    y = ZeroPad(6, (2, 2))(x)
    assert y.shape == (1, 6, 3, 3)
    assert torch.equal(y[:, 2:4], x[:, :, ::2, ::2])
    assert not y[:, :2].any() and not y[:, 4:].any()
    assert ZeroPad(5, (1, 1))(x)[:, 1:3].equal(x)  # odd padding: (5-2)//2 = 1 in front


@pytest.mark.parametrize("kind, modules", [("identity", []), ("A", [ZeroPad]),
                                            ("B", [nn.Conv2d, nn.BatchNorm2d])])
def test_residual_shortcuts_come_from_the_residual_rule(kind: str, modules: list[type]) -> None:
    body = "conv3-8 s=2; bn" if kind != "identity" else "conv3-4; bn"
    model = build_module(archcalc.parse(f"input 8x8x4\nresidual shortcut={kind} {{ {body} }}"))
    block = modules_by_path(model)["1"]
    assert [type(m) for m in block.shortcut] == modules
    if kind == "B":
        assert block.shortcut[0].stride == (2, 2) and block.shortcut[0].bias is None
    assert [getattr(m, PATH_ATTR) for m in block.shortcut] == [
        f"1.s{i}" for i in range(1, len(modules) + 1)]
    x = torch.rand(1, 4, 8, 8)
    assert torch.allclose(block.eval()(x), block.body(x) + block.shortcut(x))


def test_projection_bias_reaches_the_shortcut_conv() -> None:
    graph = archcalc.parse("input 8x8x4\nresidual shortcut=B bias=true { conv3-8 s=2; bn }")
    model = build_module(graph)
    conv = modules_by_path(model)["1.s1"]
    assert isinstance(conv, nn.Conv2d) and conv.bias is not None and conv.bias.shape == (8,)
    totals = archcalc.analyze(graph).totals
    assert parameter_counts(model) == (totals.params, totals.buffers)


def test_lrn_uses_the_papers_alpha() -> None:
    """Krizhevsky's b = a / (k + alpha * sum of a^2 over n neighbours)^beta; torch divides
    alpha by n, so the backend must pass alpha * n."""
    model = build_module(archcalc.parse("input 2x2x7\nlrn size=5 alpha=0.01 beta=0.75 k=2"))
    a = torch.rand(1, 7, 2, 2) * 3
    squares = torch.nn.functional.pad(a ** 2, (0, 0, 0, 0, 2, 2))
    window = sum(squares[:, i:i + 7] for i in range(5))
    assert torch.allclose(model(a), a / (2 + 0.01 * window) ** 0.75)


def test_probe_copy_is_positive_linear_and_leaves_the_model_alone() -> None:
    graph = archcalc.parse("input 9x9x2\nconv3-4; relu; lrn; maxpool; dropout; "
                           "globalmaxpool; flatten; FC-3; bn")
    model = build_module(graph)
    probe = probe_copy(model)
    kinds = {p: type(m) for p, m in modules_by_path(probe).items()}
    assert kinds == {"1": nn.Conv2d, "2": nn.Identity, "3": nn.Identity, "4": nn.AvgPool2d,
                     "5": nn.Identity, "6": nn.AdaptiveAvgPool2d, "7": nn.Flatten,
                     "8": FlattenLinear, "9": nn.Identity}
    conv = modules_by_path(probe)["1"]
    assert conv.weight.dtype == torch.float32 and torch.all(conv.weight == 1 / 18)
    assert not conv.bias.any() and not any(p.requires_grad for p in probe.parameters())
    assert isinstance(modules_by_path(model)["4"], nn.MaxPool2d)
    assert isinstance(modules_by_path(model)["9"], nn.BatchNorm1d)
    assert modules_by_path(model)["1"].weight.dtype == torch.float32


def test_probe_fields_match_a_hand_computed_case() -> None:
    # conv3 (pad 1) then 2x2/2 pool on 6x6: unit (0, 0) sees rows/cols 0..2 (its field
    # [-1, 2] clipped), the last unit (2, 2) sees 3..5 ([3, 6] clipped).
    model = build_module(archcalc.parse("input 6x6x1\nconv3-2; maxpool"))
    fields = probe_fields(model)
    assert fields["1"] == (((0, 1), (0, 1)), ((4, 5), (4, 5)))
    assert fields["2"] == (((0, 2), (0, 2)), ((3, 5), (3, 5)))


def test_probe_fields_of_some_rows_leave_out_the_rest() -> None:
    model = build_module(archcalc.parse("input 6x6x1\nconv3-2; maxpool; conv1-2; FC-3; bn"))
    every = probe_fields(model)
    assert set(every) == {"1", "2", "3"}
    assert probe_fields(model, {"2"}) == {"2": every["2"]}
    assert probe_fields(model, {"5"}) == {}  # a vector row has no field to probe


def _fields_per_row_float64(model: nn.Module) -> dict:
    """The probe as it was: a float64 copy and one backward from each row to the input, no
    resets, no reuse."""
    probe = probe_copy(model, torch.float64)
    outputs = {}
    handles = [m.register_forward_hook(
        lambda _m, _i, out, p=p: outputs.__setitem__(p, out) if out.dim() == 4 else None)
        for p, m in modules_by_path(probe).items()]
    x = torch.ones((2, *model.input_shape), dtype=torch.float64, requires_grad=True)
    probe(x)
    for handle in handles:
        handle.remove()
    fields = {}
    for path, out in outputs.items():
        unit = out[0, :, 0, 0].sum() + out[1, :, -1, -1].sum()
        (grad,) = torch.autograd.grad(unit, x, retain_graph=True)
        fields[path] = (_box(grad[0]), _box(grad[1]))
    return fields


def test_probe_fields_equal_one_float64_backward_per_row() -> None:
    # many top-level modules (cuts), 1x1 convs and residuals whose fields repeat at a cut,
    # fields that cover the map, dilation, a concat and a gate (its product uses values)
    model = build_module(archcalc.parse(
        "input 23x19x3\nconv3-8 s=2; bn; relu\n"
        "repeat 3 { residual { conv1-8; bn; relu; conv3-8; bn }; relu }\n"
        "concat { branch { conv1-4 } branch { maxpool3 s=1 p=1; conv3-4 d=2 p=2 } }\n"
        "gate { gap; conv1-2; relu; conv1-8; sigmoid }\n"
        "residual shortcut=B { conv3-16 s=2; bn }; conv1x3-8; conv3-8; gap; FC-3"))
    assert probe_fields(model) == _fields_per_row_float64(model)


def test_probe_fields_do_not_underflow_in_float32() -> None:
    # 130 conv3 on a 2x2 map: every input pixel reaches unit (0, 0) with weight (4/9)^130
    # ~ 4e-47, below float32's smallest subnormal, and so small are the values a gate
    # after them multiplies by
    chain = "conv3-1 bias=false x130"
    probe = probe_copy(build_module(archcalc.parse(f"input 2x2x1\n{chain}")))
    x = torch.ones((1, 1, 2, 2), requires_grad=True)
    (plain,) = torch.autograd.grad(probe(x)[0, :, 0, 0].sum(), x)
    assert not plain.any()  # a plain float32 backward underflows
    # in one top-level module (no cut inside), values and gradients reset to 0/1 at each
    # row let the probe see what float64 sees
    model = build_module(archcalc.parse(f"input 2x2x1\nresidual {{ {chain}; gate {{ conv1-1 }} }}"))
    whole = ((0, 1), (0, 1))
    fields = probe_fields(model)
    assert fields["1.1.130"] == fields["1.2"] == (whole, whole)
