"""archcalc counts of trained models, models built from specs, and the module check."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from torch import nn

from archcalc import zoo
from trainers.counts import (
    CountMismatchError,
    Counts,
    build_model,
    check_module,
    logits_graph,
    model_counts,
)

# Hand arithmetic, independent of archcalc's rules.
MLP_PARAMS = 3072 * 1000 + 1000 + 1000 * 1000 + 1000 + 1000 * 10 + 10
MLP_MACS = 3072 * 1000 + 1000 * 1000 + 1000 * 10
# He et al.'s ResNet-20: conv 3->16, three stages of 3 blocks (two 3x3 convs, no bias, BN
# each), option-A shortcuts without parameters, global pooling, FC 64->10.
RESNET20_CONV = (3 * 16 + 6 * 16 * 16 + (16 * 32 + 5 * 32 * 32) + (32 * 64 + 5 * 64 * 64)) * 9
RESNET20_BN = 2 * (16 + 6 * 16 + 6 * 32 + 6 * 64)
RESNET20_PARAMS = RESNET20_CONV + RESNET20_BN + 64 * 10 + 10
RESNET20_MACS = (32 * 32 * (3 * 16 + 6 * 16 * 16) * 9
                 + 16 * 16 * (16 * 32 + 5 * 32 * 32) * 9
                 + 8 * 8 * (32 * 64 + 5 * 64 * 64) * 9
                 + 64 * 10)


def test_mlp_cifar_counts_equal_hand_arithmetic() -> None:
    counts = model_counts("mlp-cifar")
    assert MLP_PARAMS == 4_084_010
    assert counts == Counts("mlp-cifar", params=MLP_PARAMS, macs=MLP_MACS,
                            flops=2 * MLP_MACS + 2010 + 2000,  # + bias adds + ReLUs
                            activations=3072 + 1000 + 1000 + 10, convention="full")


def test_resnet20_counts_equal_hand_arithmetic() -> None:
    counts = model_counts("resnet20")
    assert (counts.params, counts.macs) == (RESNET20_PARAMS, RESNET20_MACS)
    assert counts.params == 269_722  # the paper's Table 6: 0.27M


def test_spec_parameters_and_input_shape_change_the_counts() -> None:
    assert model_counts("resnet20", params={"classes": 100}).params == (
        RESNET20_PARAMS - (64 * 10 + 10) + 64 * 100 + 100)
    assert model_counts("mlp-cifar", input_shape=(1, 28, 28)).params == (
        784 * 1000 + 1000 + 1000 * 1000 + 1000 + 1000 * 10 + 10)


def test_a_parsed_graph_works_like_its_name_but_takes_no_params() -> None:
    graph = zoo.load("resnet20")
    assert model_counts(graph) == model_counts("resnet20")
    with pytest.raises(TypeError, match="zoo name"):
        model_counts(graph, params={"classes": 100})


def test_logits_counts_leave_out_only_the_softmax() -> None:
    with_softmax = model_counts("resnet20", logits=False)
    trained = model_counts("resnet20")
    assert with_softmax.params == trained.params
    assert with_softmax.flops - trained.flops == 3 * 10  # soft-max: 3 FLOPs per element
    assert logits_graph(zoo.load("mlp-cifar")) == zoo.load("mlp-cifar")  # ends in FC already


def test_logits_model_drops_the_softmax() -> None:
    torch.manual_seed(0)
    probs_model = build_model("resnet20", logits=False).eval()
    torch.manual_seed(0)
    logits_model = build_model("resnet20").eval()
    assert isinstance(probs_model[-1], nn.Softmax)
    assert not isinstance(logits_model[-1], nn.Softmax)
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        probs, logits = probs_model(x), logits_model(x)
    assert torch.allclose(probs.sum(dim=1), torch.ones(4), atol=1e-5)
    assert not torch.allclose(logits.sum(dim=1), torch.ones(4), atol=1e-2)
    assert torch.allclose(logits.softmax(dim=1), probs, atol=1e-6)


def test_built_model_trains_with_cross_entropy() -> None:
    torch.manual_seed(0)
    model = build_model("mlp-cifar", input_shape=(1, 8, 8))
    x, y = torch.randn(16, 1, 8, 8), torch.arange(16) % 10
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    losses = []
    for _ in range(5):
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


@pytest.mark.parametrize("name", zoo.names())
def test_every_zoo_model_builds_with_the_spec_parameter_count(name: str) -> None:
    model = build_model(name)
    assert check_module(model, name) == model_counts(name).params
    assert not isinstance(model[-1], nn.Softmax)


def _hand_mlp(hidden: int = 1000) -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(3072, hidden), nn.ReLU(),
                         nn.Linear(hidden, 1000), nn.ReLU(), nn.Linear(1000, 10))


def test_check_module_accepts_an_equal_hand_built_model() -> None:
    assert check_module(_hand_mlp(), "mlp-cifar") == MLP_PARAMS


def test_check_module_catches_a_drifted_model() -> None:
    with pytest.raises(CountMismatchError, match=r"4,079,937 .* 4,084,010 .*-4,073"):
        check_module(_hand_mlp(hidden=999), "mlp-cifar")


def test_check_module_counts_only_trainable_parameters() -> None:
    model = _hand_mlp()
    model[-1].bias.requires_grad_(False)
    with pytest.raises(CountMismatchError, match="-10"):
        check_module(model, "mlp-cifar")


def test_importing_the_shared_pieces_loads_no_framework() -> None:
    code = ("import sys, trainers.runtime, trainers.plots, trainers.counts; "
            "print(sorted(m for m in ('torch', 'matplotlib', 'numpy', 'sympy') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"
