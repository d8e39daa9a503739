"""archcalc's numbers for the model a plugin trains, and the torch module built from its spec.

The spec is the one description of an architecture: :func:`build_model` makes the module from
it, :func:`model_counts` reports its parameters and FLOPs, and :func:`check_module` catches a
plugin whose hand-built model drifted from the spec. archcalc and torch are imported inside
the functions, so importing this module is free.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, TypeAlias

if TYPE_CHECKING:
    from torch import nn

    from archcalc.backends.torch import Net
    from archcalc.layers import Graph, Shape

ModelRef: TypeAlias = "str | Graph"  # a zoo name, a path to an .arch file, or a parsed Graph


class CountMismatchError(AssertionError):
    """A torch module whose trainable parameters differ from its archcalc spec: a bug."""


@dataclass(frozen=True)
class Counts:
    """Per-sample totals under one archcalc counting convention."""

    model: str
    params: int  # trainable parameters
    macs: int
    flops: int
    activations: int  # output elements of every layer that allocates one, input included
    convention: str = "full"


def resolve(model: ModelRef, params: Mapping[str, int] | None = None) -> Graph:
    """The Graph for a zoo name or spec path (with ``param`` overrides), or ``model`` itself."""
    from archcalc import zoo

    if isinstance(model, str):
        return zoo.load(model, **dict(params or {}))
    if params:
        raise TypeError("params apply to a zoo name or spec path, not to a parsed Graph")
    return model


def logits_graph(graph: Graph) -> Graph:
    """``graph`` without a final soft-max: papers end in one, cross-entropy wants logits."""
    from archcalc.kinds import Activation

    last = graph.body[-1].layer if graph.body else None
    if isinstance(last, Activation) and last.fn == "softmax":
        return replace(graph, body=graph.body[:-1])
    return graph


def model_counts(model: ModelRef, input_shape: Shape | None = None,
                 params: Mapping[str, int] | None = None, *, logits: bool = True,
                 convention: str = "full") -> Counts:
    """archcalc's totals for ``model``; with ``logits`` (as :func:`build_model` builds it)
    the final soft-max is left out, so the FLOPs are those of the network actually trained."""
    from archcalc import analyze

    graph = resolve(model, params)
    if logits:
        graph = logits_graph(graph)
    totals = analyze(graph, convention, input_shape).totals
    return Counts(graph.name, totals.params, totals.macs, totals.flops, totals.activations,
                  convention)


def build_model(model: ModelRef, params: Mapping[str, int] | None = None, logits: bool = True,
                input_shape: Shape | None = None) -> Net:
    """The torch module of the spec, with torch's default initialisation; ``logits`` drops a
    final soft-max so the output feeds ``cross_entropy`` directly."""
    from archcalc.backends.torch import build_module

    graph = resolve(model, params)
    return build_module(logits_graph(graph) if logits else graph, input_shape)


def trainable_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def check_module(module: nn.Module, model: ModelRef,
                 params: Mapping[str, int] | None = None) -> int:
    """Raise CountMismatchError unless ``module`` has exactly the spec's trainable
    parameters; returns the count. Catches a plugin whose own model drifted from its spec."""
    graph = resolve(model, params)
    expected = model_counts(graph).params
    actual = trainable_parameters(module)
    if actual != expected:
        raise CountMismatchError(
            f"{type(module).__name__} has {actual:,} trainable parameters but the spec "
            f"{graph.name!r} has {expected:,} (difference {actual - expected:+,})")
    return actual
