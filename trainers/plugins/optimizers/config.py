"""Problem 1's settings: the methods, their hyperparameters and the training protocol.

Every value is written here once, with its source beside it (``cite``); torch-free, so
``hw3 list`` stays light.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from trainers.api import setting
from trainers.config import check_names

METHODS = ("adagrad", "rmsprop", "rmsprop-nesterov", "adadelta", "adam")
VARIANTS = ("l2", "dropout")
# Each method's hyperparameters; the config field of one is "<method>_<name>" ('-' -> '_').
HYPERPARAMETERS: dict[str, tuple[str, ...]] = {
    "adagrad": ("lr", "eps"),
    "rmsprop": ("lr", "rho", "eps"),
    "rmsprop-nesterov": ("lr", "rho", "momentum", "eps"),
    "adadelta": ("lr", "rho", "eps"),
    "adam": ("lr", "beta1", "beta2", "eps"),
}


@dataclass(frozen=True)
class Config:
    """Problem 1's protocol: each default is the value a run uses, its source beside it
    (``cite``); plugins.toml only enables the plugin or overrides a value."""

    methods: tuple[str, ...] = setting(METHODS, "Methods to train: " + ", ".join(METHODS) + ".",
        cite="the homework, Problem 1: AdaGrad, RMSProp, RMSProp+Nesterov, AdaDelta, Adam")
    variants: tuple[str, ...] = setting(VARIANTS, "l2: L2 penalty (part 2); dropout: dropout "
                                        "plus the same L2 (part 3).",
        cite="the homework: part 2 L2 only; part 3 dropout plus the same L2")
    hidden: int = setting(1000, "Units in each of the two hidden layers (mlp-cifar's hidden).",
        ge=1, cite="the seed's MLP 3072-1000-1000-10 (archcalc spec mlp-cifar, param hidden)")
    batch_size: int = setting(128, "Minibatch size.",
        ge=1, cite="the homework's seed")
    epochs: int = setting(200, "Epochs per training.",
        ge=1, cite="the homework's seed")
    weight_decay: float = setting(5e-4, "L2 coefficient λ: the objective adds (λ/2)·ΣW² over "
                                  "the weight matrices (not the biases).",
        ge=0, cite="our choice (not in the seed); L2 as objective + (λ/2)·ΣW² over weights")
    dropout_input: float = setting(0.2, "Dropout probability on the input (variant dropout).",
        ge=0, lt=1, cite="the homework, part 3: dropout 0.2 on the input layer")
    dropout_hidden: float = setting(0.5, "Dropout probability after each hidden layer.",
        ge=0, lt=1, cite="the homework, part 3: dropout 0.5 on the hidden layers")
    dropout_style: Literal["classic", "inverted"] = setting(
        "classic", "classic: no rescaling in training, test weights times the keep "
        "probability; inverted: kept units divided by it in training.",
        cite="the seed's: no rescaling in training, test weights × keep probability")
    eval_batch: int = setting(10000, "Samples per forward pass in evaluation (memory only).",
        ge=1, cite="not part of the protocol (memory only)")
    step: Literal["auto", "compile", "eager"] = setting(
        "auto", "How RMSProp, RMSProp+Nesterov and AdaDelta step (Adam and AdaGrad use torch's "
        "fused kernels): compile fuses each step with torch.compile (needs a C++ compiler on "
        "CPU), eager runs torch's per-op step; auto compiles where it can. Same arithmetic.",
        cite="not part of the protocol (same arithmetic; compiling needs a C++ compiler)")
    adagrad_lr: float = setting(0.01, "AdaGrad learning rate.",
        gt=0, cite="Duchi et al. 2011 leave η free; 0.01 is torch's and Keras's default")
    adagrad_eps: float = setting(1e-10, "AdaGrad stabiliser added to the root.",
        gt=0, cite="torch's default (added to the root, as torch does)")
    rmsprop_lr: float = setting(0.001, "RMSProp learning rate.",
        gt=0, cite="Keras's default (torch's 0.01 is coarse for this MLP)")
    rmsprop_rho: float = setting(0.9, "RMSProp decay of the mean square.",
        ge=0, lt=1, cite="Tieleman & Hinton 2012, lecture 6e: MeanSquare = 0.9 ms + 0.1 g²")
    rmsprop_eps: float = setting(1e-8, "RMSProp stabiliser added to the root.",
        gt=0, cite="torch's default")
    rmsprop_nesterov_lr: float = setting(1e-4, "RMSProp+Nesterov learning rate.",
        gt=0, cite="Goodfellow et al. 2016, Alg. 8.6 (no defaults): our choice, "
                   "lr / (1 - momentum) = 0.001 matches RMSProp's step")
    rmsprop_nesterov_rho: float = setting(0.9, "RMSProp+Nesterov decay of the mean square.",
        ge=0, lt=1, cite="as RMSProp (Tieleman & Hinton 2012)")
    rmsprop_nesterov_momentum: float = setting(0.9, "RMSProp+Nesterov momentum.",
        ge=0, lt=1, cite="Sutskever et al. 2013's usual momentum")
    rmsprop_nesterov_eps: float = setting(1e-8, "RMSProp+Nesterov stabiliser.",
        gt=0, cite="torch's default")
    adadelta_lr: float = setting(1.0, "AdaDelta step multiplier (1.0 is Zeiler's rule).",
        gt=0, cite="Zeiler 2012 has no learning rate: 1.0 is his rule exactly")
    adadelta_rho: float = setting(0.95, "AdaDelta decay of both running means.",
        ge=0, lt=1, cite="Zeiler 2012, section 4 experiments")
    adadelta_eps: float = setting(1e-6, "AdaDelta stabiliser.",
        gt=0, cite="Zeiler 2012, section 4 experiments")
    adam_lr: float = setting(0.001, "Adam learning rate.",
        gt=0, cite="Kingma & Ba 2015, Algorithm 1 defaults")
    adam_beta1: float = setting(0.9, "Adam decay of the first moment.",
        ge=0, lt=1, cite="Kingma & Ba 2015, Algorithm 1 defaults")
    adam_beta2: float = setting(0.999, "Adam decay of the second moment.",
        ge=0, lt=1, cite="Kingma & Ba 2015, Algorithm 1 defaults")
    adam_eps: float = setting(1e-8, "Adam stabiliser.",
        gt=0, cite="Kingma & Ba 2015, Algorithm 1 defaults")

    def __post_init__(self) -> None:
        check_names("methods", self.methods, METHODS)
        check_names("variants", self.variants, VARIANTS)
        for name in ("hidden", "batch_size", "epochs", "eval_batch"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("dropout_input", "dropout_hidden"):
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}")


def hyperparameters(config: Config, method: str) -> dict[str, float]:
    """``method``'s hyperparameters from the config, e.g. {"lr": 0.001, "rho": 0.9, ...}."""
    prefix = method.replace("-", "_") + "_"
    return {name: float(getattr(config, prefix + name)) for name in HYPERPARAMETERS[method]}


def hyperparameter_fields() -> list[str]:
    """Every config field that holds a method's hyperparameter."""
    return [f"{m.replace('-', '_')}_{h}" for m, names in HYPERPARAMETERS.items() for h in names]


