"""RMSProp with Nesterov momentum (the optimizers plugin's optim.py) against the update
equations by hand."""

from __future__ import annotations

import math

import pytest
import torch

from trainers.plugins.optimizers.optim import RMSPropNesterov

SQRT10 = math.sqrt(10)


def quadratic_step(opt: torch.optim.Optimizer, p: torch.Tensor, a: torch.Tensor) -> None:
    """One step on L = 0.5 * sum(a * p^2), whose gradient a * p is taken where p is."""
    opt.zero_grad()
    (0.5 * (a * p * p).sum()).backward()
    opt.step()


def test_one_step_by_hand() -> None:
    # theta0 = (1, -2), L = 0.5 (2 t1^2 + 0.5 t2^2): g = (2, -1); r = 0.1 g^2 = (0.4, 0.1);
    # g / sqrt(r) = (sqrt 10, -sqrt 10); v1 = -0.01 g / sqrt(r); theta1 = theta0 + v1;
    # the parameters hold phi1 = theta1 + 0.9 v1 = theta0 - 0.019 sqrt(10) sign(g).
    p = torch.tensor([1.0, -2.0], dtype=torch.float64, requires_grad=True)
    opt = RMSPropNesterov([p], lr=0.01, rho=0.9, momentum=0.9, eps=0.0)
    quadratic_step(opt, p, torch.tensor([2.0, 0.5], dtype=torch.float64))
    assert p.detach().tolist() == pytest.approx([0.9399167245, -1.9399167245], abs=1e-10)
    state = opt.state[p]
    assert state["square_avg"].tolist() == pytest.approx([0.4, 0.1], abs=1e-15)
    assert state["momentum_buffer"].tolist() == pytest.approx([SQRT10, -SQRT10], abs=1e-12)
    assert state["step"] == 1


def textbook(theta: list[float], a: list[float], steps: int, lr: float, rho: float,
             alpha: float, eps: float) -> list[tuple[list[float], list[float]]]:
    """Goodfellow et al. Algorithm 8.6 in plain floats: (theta, v) after each step."""
    v, r, out = [0.0] * len(theta), [0.0] * len(theta), []
    for _ in range(steps):
        interim = [t + alpha * vi for t, vi in zip(theta, v, strict=True)]
        g = [ai * ti for ai, ti in zip(a, interim, strict=True)]  # gradient at the interim
        r = [rho * ri + (1 - rho) * gi * gi for ri, gi in zip(r, g, strict=True)]
        v = [alpha * vi - lr * gi / (math.sqrt(ri) + eps)
             for vi, gi, ri in zip(v, g, r, strict=True)]
        theta = [t + vi for t, vi in zip(theta, v, strict=True)]
        out.append((theta, v))
    return out


@pytest.mark.parametrize(("lr", "rho", "alpha", "eps"), [
    (0.05, 0.9, 0.9, 1e-3), (0.1, 0.5, 0.6, 0.0), (0.02, 0.99, 0.0, 1e-8)])
def test_several_steps_follow_the_textbook_algorithm(lr: float, rho: float, alpha: float,
                                                     eps: float) -> None:
    theta0, a = [1.5, -0.7, 0.2, 3.0], [1.0, 4.0, 0.3, 2.5]
    p = torch.tensor(theta0, dtype=torch.float64, requires_grad=True)
    opt = RMSPropNesterov([p], lr=lr, rho=rho, momentum=alpha, eps=eps)
    for theta, v in textbook(theta0, a, 6, lr, rho, alpha, eps):
        quadratic_step(opt, p, torch.tensor(a, dtype=torch.float64))
        phi = [t + alpha * vi for t, vi in zip(theta, v, strict=True)]  # p holds theta + a v
        assert p.detach().tolist() == pytest.approx(phi, rel=1e-12, abs=1e-12)
        assert opt.state[p]["momentum_buffer"].tolist() == pytest.approx(
            [-vi / lr for vi in v], rel=1e-12, abs=1e-12)


def test_nesterov_differs_from_heavy_ball_momentum() -> None:
    """torch's RMSprop(momentum=...) is the heavy-ball form: the paths part after step 1."""
    a = torch.tensor([1.0, 4.0], dtype=torch.float64)
    ours = torch.tensor([1.0, -1.0], dtype=torch.float64, requires_grad=True)
    heavy = ours.detach().clone().requires_grad_(True)
    opt_ours = RMSPropNesterov([ours], lr=0.01, rho=0.9, momentum=0.9, eps=1e-8)
    opt_heavy = torch.optim.RMSprop([heavy], lr=0.01, alpha=0.9, momentum=0.9, eps=1e-8)
    for _ in range(3):
        quadratic_step(opt_ours, ours, a)
        quadratic_step(opt_heavy, heavy, a)
    assert not torch.allclose(ours, heavy, rtol=1e-6, atol=0)


def mlp(seed: int) -> torch.nn.Sequential:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.ReLU(), torch.nn.Linear(7, 3))


def train(model: torch.nn.Module, opt: torch.optim.Optimizer, steps: int,
          gen: torch.Generator | None = None) -> None:
    gen = gen or torch.Generator().manual_seed(1)
    for _ in range(steps):
        x, y = torch.randn(8, 5, generator=gen), torch.randint(0, 3, (8,), generator=gen)
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()


def test_without_momentum_it_is_torch_rmsprop() -> None:
    ours, theirs = mlp(0), mlp(0)
    train(ours, RMSPropNesterov(ours.parameters(), lr=0.01, rho=0.9, momentum=0.0, eps=1e-8), 5)
    train(theirs, torch.optim.RMSprop(theirs.parameters(), lr=0.01, alpha=0.9, eps=1e-8), 5)
    for a, b in zip(ours.parameters(), theirs.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


def test_state_dict_resumes_exactly() -> None:
    """A checkpoint mid-training (as hw3 takes one) continues bit for bit."""
    whole, split = mlp(2), mlp(2)
    train(whole, RMSPropNesterov(whole.parameters(), lr=0.01), 4)
    gen = torch.Generator().manual_seed(1)
    first = RMSPropNesterov(split.parameters(), lr=0.01)
    train(split, first, 2, gen)
    second = RMSPropNesterov(split.parameters(), lr=0.01)
    second.load_state_dict(first.state_dict())
    train(split, second, 2, gen)
    assert second.state[next(split.parameters())]["step"] == 4
    for a, b in zip(whole.parameters(), split.parameters(), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("kwargs", [{"lr": -1.0}, {"rho": 1.0}, {"momentum": 1.0},
                                    {"momentum": -0.1}, {"eps": -1e-8}])
def test_rejects_bad_hyperparameters(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        RMSPropNesterov([torch.zeros(1, requires_grad=True)], **kwargs)
