"""What torch and its counting tools measure on a module built by :mod:`archcalc.backends.torch`:
output shapes from forward hooks, parameter and buffer counts, torchinfo's Mult-Adds, fvcore's
and FlopCounterMode's counts, and the receptive-field probe (input gradients of a positive,
linear copy). Tools' per-module numbers map back to report rows through the path each module
carries (:data:`~archcalc.backends.torch.PATH_ATTR`).
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from archcalc.backends.torch import KIND_ATTR, PATH_ATTR, Net, leaf_names, modules_by_path
from archcalc.layers import Shape

Box = tuple[tuple[int, int], tuple[int, int]]  # ((first row, last row), (first col, last col))


# -- measurements -----------------------------------------------------------------------
@dataclass(frozen=True)
class ToolCount:
    """A tool's total and its per-row numbers (leaf modules only)."""

    total: int
    layers: dict[str, int]


def output_shapes(model: Net) -> dict[str, Shape]:
    """Per-sample output shape of every tagged module, from forward hooks."""
    shapes: dict[str, Shape] = {}

    def hook(path: str) -> Callable:
        return lambda _m, _i, out: shapes.__setitem__(path, tuple(out.shape[1:]))

    handles = [m.register_forward_hook(hook(p)) for p, m in modules_by_path(model).items()]
    try:
        with torch.no_grad():
            model.eval()(model.example())
    finally:
        for handle in handles:
            handle.remove()
    return shapes


def parameter_counts(model: nn.Module) -> tuple[int, int]:
    """(trainable parameters, BN running mean + variance elements)."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    buffers = sum(b.numel() for name, b in model.named_buffers()
                  if name.rsplit(".", 1)[-1] in ("running_mean", "running_var"))
    return trainable, buffers


def torchinfo_counts(model: Net) -> tuple[ToolCount, ToolCount]:
    """torchinfo's (Mult-Adds, parameters), totals and per leaf row."""
    import torchinfo

    stats = torchinfo.summary(model, input_size=(1, *model.input_shape), device="cpu",
                              mode="eval", verbose=0)
    paths = {id(m): p for p, m in modules_by_path(model).items()}
    leaves = [(paths[id(i.module)], i) for i in stats.summary_list
              if i.is_leaf_layer and id(i.module) in paths]
    return (ToolCount(stats.total_mult_adds, {p: i.macs for p, i in leaves}),
            ToolCount(stats.total_params, {p: i.num_params for p, i in leaves}))


def fvcore_count(model: Net) -> ToolCount:
    """fvcore's FlopCountAnalysis (one per multiply-add) in eval mode, its warnings silenced."""
    with warnings.catch_warnings():  # fvcore's import and jit trace warn about torch.jit
        warnings.simplefilter("ignore")
        from fvcore.nn import FlopCountAnalysis

        analysis = FlopCountAnalysis(model.eval(), model.example())
        analysis.unsupported_ops_warnings(False)
        analysis.uncalled_modules_warnings(False)
        analysis.tracer_warnings("none")
        by_module = analysis.by_module()
        total = analysis.total()
    return ToolCount(int(total), {p: int(by_module[n]) for p, n in leaf_names(model).items()})


def flopcounter_flops(model: Net) -> int:
    """torch.utils.flop_counter's total for one eval forward."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model.eval()(model.example())
    return int(counter.get_total_flops())


# -- receptive-field probe --------------------------------------------------------------
def probe_copy(model: Net) -> Net:
    """A float64 copy whose input gradients mark receptive fields: it is linear with positive
    weights (1/fan_in, BN with identity statistics), so no path cancels. Max pooling becomes
    average pooling of the same geometry (max routes the gradient to one input); activations,
    LRN and dropout become the identity (pointwise or channel-wise: the field is unchanged,
    and a channel softmax sums to a constant whose gradient is zero)."""
    probe = copy.deepcopy(model).double().eval()
    _swap_for_probe(probe)
    with torch.no_grad():
        for m in probe.modules():
            if isinstance(m, nn.Conv2d | nn.Linear):
                m.weight.fill_(1.0 / m.weight[0].numel())
                if m.bias is not None:
                    m.bias.zero_()
            elif isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d):
                m.reset_parameters()  # mean 0, variance 1, weight 1, bias 0
    for p in probe.parameters():
        p.requires_grad_(False)
    return probe


def _probe_module(m: nn.Module) -> nn.Module:
    """The layer kind's probe module where it differs from the module's class (max pooling
    -> average pooling, activations -> identity); otherwise the module itself."""
    tag = getattr(m, KIND_ATTR, None)
    if tag is None:
        return m
    layer, in_shape = tag
    new = layer.probe_module(in_shape)
    return m if type(new) is type(m) else new


def _swap_for_probe(parent: nn.Module) -> None:
    for name, child in parent.named_children():
        new = _probe_module(child)
        if new is child:
            _swap_for_probe(child)
            continue
        if hasattr(child, PATH_ATTR):
            setattr(new, PATH_ATTR, getattr(child, PATH_ATTR))
        setattr(parent, name, new)


def probe_fields(model: Net) -> dict[str, tuple[Box | None, Box | None]]:
    """Row path -> bounding boxes of the input pixels that reach the first (0, 0) and the
    last (H-1, W-1) output unit, channels summed, for every row with a (C, H, W) output.
    One forward; sample 0 probes the first unit and sample 1 the last, so one backward per
    row (BN is in eval mode: samples are independent)."""
    probe = probe_copy(model)
    outputs: dict[str, torch.Tensor] = {}

    def hook(path: str) -> Callable:
        return lambda _m, _i, out: outputs.__setitem__(path, out) if out.dim() == 4 else None

    handles = [m.register_forward_hook(hook(p)) for p, m in modules_by_path(probe).items()]
    x = torch.ones((2, *model.input_shape), dtype=torch.float64, requires_grad=True)
    try:
        probe(x)
    finally:
        for handle in handles:
            handle.remove()
    found: dict[int, tuple[Box | None, Box | None]] = {}
    for out in outputs.values():
        if id(out) not in found:  # an identity's output is its input: same field
            unit = out[0, :, 0, 0].sum() + out[1, :, -1, -1].sum()
            (grad,) = torch.autograd.grad(unit, x, retain_graph=True)
            found[id(out)] = (_box(grad[0]), _box(grad[1]))
    return {path: found[id(out)] for path, out in outputs.items()}


def _box(grad: torch.Tensor) -> Box | None:
    mask = grad.ne(0).any(dim=0)
    rows, cols = mask.any(dim=1).nonzero(), mask.any(dim=0).nonzero()
    if rows.numel() == 0:
        return None
    return ((int(rows.min()), int(rows.max())), (int(cols.min()), int(cols.max())))
