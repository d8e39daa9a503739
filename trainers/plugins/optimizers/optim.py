"""RMSProp with Nesterov momentum as a ``torch.optim.Optimizer``; torch's RMSprop only has
plain (heavy-ball) momentum.

The method is Algorithm 8.6 of Goodfellow, Bengio & Courville, *Deep Learning* (2016):
RMSProp's per-parameter scale (Tieleman & Hinton 2012, lecture 6e) inside Nesterov momentum
(Sutskever et al. 2013). With learning rate ε, decay ρ, momentum α, stabiliser δ, parameters
θ and velocity v (both start at v = 0, r = 0)::

    θ̃ = θ + α v                    interim point: where the momentum is about to carry θ
    g = ∇L(θ̃)                      the gradient is taken there, not at θ
    r ← ρ r + (1 − ρ) g ⊙ g         running mean of squared gradients, per parameter
    v ← α v − ε g / (√r + δ)        velocity: the step scaled by each parameter's RMS
    θ ← θ + v

An optimizer gets gradients at the parameters it holds, so here the parameters hold the
interim point φ = θ + α v (the change of variables of Bengio et al. 2013, the same one
torch's ``SGD(nesterov=True)`` makes). Writing b = −v / ε, the step becomes::

    r ← ρ r + (1 − ρ) g ⊙ g
    b ← α b + g / (√r + δ)
    φ ← φ − ε (g / (√r + δ) + α b)

δ is added to √r as torch's RMSprop adds it, so at α = 0 this is exactly
``torch.optim.RMSprop(lr=ε, alpha=ρ, eps=δ)``. ``weight_decay`` λ adds λφ to g first, the
gradient of an L2 penalty (λ/2)‖φ‖², as torch's optimizers do. After training the parameters
hold φ, the point where the last gradient was taken; like torch's Nesterov SGD we evaluate
that network (θ = φ − α v is one momentum step behind). tests/trainers/test_optim.py checks these
equations by hand, one step and several.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch


class RMSPropNesterov(torch.optim.Optimizer):
    """RMSProp with Nesterov momentum; see the module docstring for the update equations."""

    def __init__(self, params: Iterable[Any], lr: float = 1e-4, rho: float = 0.9,
                 momentum: float = 0.9, eps: float = 1e-8, weight_decay: float = 0.0) -> None:
        if lr < 0:
            raise ValueError(f"lr (learning rate) must be >= 0, got {lr}")
        if not 0 <= rho < 1:
            raise ValueError(f"rho must be in [0, 1), got {rho}")
        if not 0 <= momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        if eps < 0:
            raise ValueError(f"eps must be >= 0, got {eps}")
        if weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
        super().__init__(params, {"lr": lr, "rho": rho, "momentum": momentum, "eps": eps,
                                  "weight_decay": weight_decay})

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:  # type: ignore[override]
        """One update of every parameter that has a gradient; returns ``closure()`` if given."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    self._update(p, group)
        return loss

    def _update(self, p: torch.Tensor, group: dict[str, Any]) -> None:
        grad = p.grad
        assert grad is not None
        if grad.is_sparse:
            raise RuntimeError("RMSPropNesterov does not support sparse gradients")
        state = self.state[p]
        if not state:  # a tensor step, as torch's: torch.compile traces it without recompiling
            state["step"] = torch.zeros((), dtype=torch.float32)
            state["square_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            state["momentum_buffer"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        state["step"].add_(1)
        rho, alpha, lr = group["rho"], group["momentum"], group["lr"]
        r, b = state["square_avg"], state["momentum_buffer"]
        if group["weight_decay"]:
            grad = grad.add(p, alpha=group["weight_decay"])  # g + lambda phi
        # Seven passes over memory, one temporary: the step is bandwidth-bound on big layers.
        r.mul_(rho).addcmul_(grad, grad, value=1 - rho)  # r <- rho r + (1 - rho) g*g
        scaled = r.sqrt().add_(group["eps"])
        torch.div(grad, scaled, out=scaled)  # g / (sqrt(r) + delta)
        torch.add(scaled, b, alpha=alpha, out=b)  # b <- alpha b + g / (sqrt(r) + delta)
        p.add_(scaled, alpha=-lr).add_(b, alpha=-lr * alpha)  # phi -= lr (scaled + alpha b)
