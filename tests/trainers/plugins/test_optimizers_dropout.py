"""Classic and inverted dropout (the optimizers plugin's dropout.py) and the weight-scaled
test network."""

from __future__ import annotations

import copy
from collections.abc import Iterator

import pytest
import torch
from torch import nn

from trainers.plugins.optimizers.dropout import Dropout, Style, weight_scaled_network, with_dropout


@pytest.fixture(autouse=True)
def _float64() -> Iterator[None]:
    """The statistical checks here run in float64; the default is restored afterwards."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


@pytest.mark.parametrize("p", [0.2, 0.5])
def test_weight_scaled_linear_layer_is_the_mean_of_dropout_samples(p: float) -> None:
    torch.manual_seed(0)
    drop, layer = Dropout(p, "classic"), nn.Linear(30, 6)
    x = torch.randn(1, 30)
    n = 40_000
    samples = layer(drop(x.expand(n, 30))).detach()  # n independent masks, training mode
    mean, se = samples.mean(dim=0), samples.std(dim=0) / n ** 0.5
    scaled = weight_scaled_network(nn.Sequential(drop, layer))(x)[0].detach()
    assert torch.all((mean - scaled).abs() < 5 * se)
    unscaled = layer(x)[0].detach()  # forgetting the scale is caught by the same test
    assert torch.any((mean - unscaled).abs() > 5 * se)
    test_layer = weight_scaled_network(nn.Sequential(drop, layer))[0]
    torch.testing.assert_close(test_layer.weight, (1 - p) * layer.weight)  # weights only:
    torch.testing.assert_close(test_layer.bias, layer.bias)  # the bias sees no dropout


def mlp(style: Style) -> nn.Sequential:
    torch.manual_seed(3)
    return nn.Sequential(nn.Flatten(), Dropout(0.2, style), nn.Linear(12, 9), nn.ReLU(),
                         Dropout(0.5, style), nn.Linear(9, 9), nn.ReLU(),
                         Dropout(0.5, style), nn.Linear(9, 4))


def as_inverted(classic: nn.Sequential) -> nn.Sequential:
    """The inverted-dropout network equivalent to ``classic``: weights after dropout times q."""
    inverted = copy.deepcopy(classic)
    keep = 1.0
    for m in inverted:
        if isinstance(m, Dropout):
            m.style, keep = "inverted", m.keep
        elif isinstance(m, nn.Linear):
            with torch.no_grad():
                m.weight.mul_(keep)
            keep = 1.0
    return inverted


def test_classic_and_inverted_give_the_same_networks() -> None:
    """Same masks (same RNG draws), same training outputs, identical test networks."""
    classic = mlp("classic")
    inverted = as_inverted(classic)
    x = torch.randn(64, 3, 2, 2)
    torch.manual_seed(9)
    out_classic = classic.train()(x)
    torch.manual_seed(9)
    out_inverted = inverted.train()(x)
    torch.testing.assert_close(out_classic, out_inverted)
    test_c, test_i = weight_scaled_network(classic), weight_scaled_network(inverted)
    for a, b in zip(test_c.parameters(), test_i.parameters(), strict=True):
        torch.testing.assert_close(a, b)
    assert not any(isinstance(m, Dropout) for m in test_c)
    torch.testing.assert_close(test_c(x), test_i(x))
    assert not torch.allclose(test_c(x), classic.train()(x))  # dropout did act in training


@pytest.mark.parametrize("style", ["classic", "inverted"])
def test_eval_mode_is_the_test_network_and_the_model_is_untouched(style: Style) -> None:
    model = mlp(style)
    before = [p.detach().clone() for p in model.parameters()]
    x = torch.randn(16, 3, 2, 2)
    test = weight_scaled_network(model)
    torch.testing.assert_close(model.eval()(x), test(x))
    for a, b in zip(before, model.parameters(), strict=True):
        assert torch.equal(a, b)
    assert sum(isinstance(m, Dropout) for m in model) == 3
    assert not test.training


@pytest.mark.parametrize("style", ["classic", "inverted"])
def test_drop_rate_and_scale(style: Style) -> None:
    torch.manual_seed(1)
    out = Dropout(0.3, style).train()(torch.ones(200_000))
    assert (out == 0).double().mean().item() == pytest.approx(0.3, abs=0.005)
    kept = out[out != 0]
    assert torch.all(kept == (1.0 if style == "classic" else 1 / 0.7))


@pytest.mark.parametrize("layers", [
    [Dropout(0.5), nn.ReLU(), nn.Linear(3, 3)],
    [nn.Linear(3, 3), Dropout(0.5)],
])
def test_scale_needs_a_linear_layer_to_carry_it(layers: list[nn.Module]) -> None:
    with pytest.raises(TypeError, match="dropout"):
        weight_scaled_network(nn.Sequential(*layers))


def torch_dropout_model() -> nn.Sequential:
    return nn.Sequential(nn.Dropout(0.9), nn.Linear(3, 3), nn.Dropout(0.9), nn.Linear(3, 2))


def test_with_dropout_replaces_torch_dropout_in_order() -> None:
    model = with_dropout(torch_dropout_model(), (0.2, 0.5), "inverted")
    drops = [m for m in model if isinstance(m, Dropout)]
    assert [(d.p, d.style) for d in drops] == [(0.2, "inverted"), (0.5, "inverted")]
    assert not any(isinstance(m, nn.Dropout) for m in model)
    with pytest.raises(ValueError, match="2 dropout layers, 3"):
        with_dropout(torch_dropout_model(), (0.1, 0.1, 0.1), "classic")


@pytest.mark.parametrize(("p", "style"), [(1.0, "classic"), (-0.1, "classic"), (0.5, "gauss")])
def test_rejects_bad_settings(p: float, style: str) -> None:
    with pytest.raises(ValueError):
        Dropout(p, style)  # type: ignore[arg-type]
