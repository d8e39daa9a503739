"""What torch and its counting tools measure on a module built by :mod:`archcalc.backends.torch`:
output shapes from forward hooks, parameter and buffer counts, torchinfo's Mult-Adds, fvcore's
and FlopCounterMode's counts, and the receptive-field probe (input gradients of a positive,
linear copy). Tools' per-module numbers map back to report rows through the path each module
carries (:data:`~archcalc.backends.torch.PATH_ATTR`).
"""

from __future__ import annotations

import contextlib
import copy
import warnings
from collections.abc import Callable, Collection
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from archcalc.backends.torch import (
    KIND_ATTR,
    PATH_ATTR,
    NamedTensor,
    Net,
    leaf_names,
    modules_by_path,
)
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
    return shapes_and_flops(model, count_flops=False)[0]


def shapes_and_flops(model: Net, count_flops: bool = True) -> tuple[dict[str, Shape], int]:
    """:func:`output_shapes` and :func:`flopcounter_flops` from one eval forward: the hooks
    only read shapes, so FlopCounterMode counts the same ops as without them."""
    from torch.utils.flop_counter import FlopCounterMode

    shapes: dict[str, Shape] = {}

    def hook(path: str) -> Callable[..., None]:
        return lambda _m, _i, out: shapes.__setitem__(path, tuple(out.shape[1:]))

    counter = FlopCounterMode(display=False)
    handles = [m.register_forward_hook(hook(p)) for p, m in modules_by_path(model).items()]
    try:
        with torch.no_grad(), counter if count_flops else contextlib.nullcontext():
            model.eval()(model.example())
    finally:
        for handle in handles:
            handle.remove()
    return shapes, int(counter.get_total_flops())


def parameter_counts(model: nn.Module) -> tuple[int, int]:
    """(trainable parameters, BN running mean + variance elements, and the sample count
    beside them where a module keeps one: archcalc's standardize, Keras' Normalization)."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    buffers = sum(b.numel() for name, b in model.named_buffers()
                  if name.rsplit(".", 1)[-1] in ("running_mean", "running_var", "count"))
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
    return shapes_and_flops(model)[1]


# -- receptive-field probe --------------------------------------------------------------
def probe_dtype() -> torch.dtype:
    """bfloat16 where oneDNN runs it natively (AVX-512 BF16, AMX), else float32: on this
    machine a 3x3 conv's input gradient on 64x300x300 maps took 0.04 s against 0.21 s."""
    native = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    try:
        return torch.bfloat16 if native is not None and native() else torch.float32
    except RuntimeError:
        return torch.float32


def probe_copy(model: Net, dtype: torch.dtype = torch.float32) -> Net:
    """A copy whose input gradients mark receptive fields: it is linear with positive weights
    (1/fan_in, biases 0), so no path cancels. Max pooling becomes average pooling of the same
    geometry (max routes the gradient to one input); activations, LRN, dropout and batch norm
    become the identity (pointwise or channel-wise: the field is unchanged, and a channel
    softmax sums to a constant whose gradient is zero). An identity returns its input tensor,
    so a conv, its BN and its activation share one output and one probe.

    float32 suffices for :func:`probe_fields`, which resets values and gradients to 0/1 at
    every row's output: between two resets nothing can underflow, however deep the network.
    bfloat16 does as well (the same exponent range; only whether a value is 0 matters, and
    with positive weights nothing cancels), and runs convolutions' backward passes several
    times faster where the CPU has bfloat16 instructions (:func:`probe_dtype`)."""
    probe = copy.deepcopy(model).to(dtype).eval()
    _swap_for_probe(probe)
    _swap_for_probe(probe, _norm_to_identity)
    with torch.no_grad():
        for m in probe.modules():
            if isinstance(m, nn.Conv1d | nn.Conv2d | nn.Linear):
                m.weight.fill_(1.0 / m.weight[0].numel())
                if m.bias is not None:
                    m.bias.zero_()
    for p in probe.parameters():
        p.requires_grad_(False)
    return probe


def _norm_to_identity(m: nn.Module) -> nn.Module:
    """Batch norm in eval mode scales each channel: the field is unchanged."""
    return nn.Identity() if isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d) else m


def _probe_module(m: nn.Module) -> nn.Module:
    """The layer kind's probe module where it differs from the module's class (max pooling
    -> average pooling, activations -> identity); otherwise the module itself."""
    tag = getattr(m, KIND_ATTR, None)
    if tag is None:
        return m
    layer, in_shape = tag
    new = layer.probe_module(in_shape)
    return m if type(new) is type(m) else new


def _swap_for_probe(parent: nn.Module,
                    replace: Callable[[nn.Module], nn.Module] = _probe_module) -> None:
    for name, child in parent.named_children():
        new = replace(child)
        if new is child:
            _swap_for_probe(child, replace)
            continue
        if hasattr(child, PATH_ATTR):
            setattr(new, PATH_ATTR, getattr(child, PATH_ATTR))
        setattr(parent, name, new)


def probe_fields(model: Net, paths: Collection[str] | None = None
                 ) -> dict[str, tuple[Box | None, Box | None]]:
    """Row path -> bounding boxes of the input pixels that reach the first (0, 0) and the
    last (H-1, W-1) output unit, channels summed, for every row with a (C, H, W) output (a
    sequence model: (C, L), its boxes those of the column (L, 1)), or
    for those of them in ``paths``; the probe then leaves out the top-level modules after
    the last of them (VGG's classifier: 120M weights; U-Net's expansive path).

    One forward of two samples (eval mode: samples are independent); sample 0 probes the
    first unit and sample 1 the last, so one backward per distinct row output. Each backward
    starts at the row's own cut (every row is an element of a chain: the network, a branch,
    a body; every path from the input to it passes through the chain element before it);
    from there, :class:`_Descent` carries the 0/1 gradient down one cut at a time, out of
    nested branches through their blocks' inputs, and reuses the field of a gradient it has
    seen at a cut before: rows deep inside a branch (U-Net's encoder, inside its copy-and-crop
    concats) stop where an earlier row's descent went."""
    dtype = probe_dtype()
    probe = probe_copy(model if paths is None else _prefix(model, set(paths)), dtype)
    x = torch.ones((2, *model.input_shape), dtype=dtype)
    if x.dim() == 4:  # oneDNN's fast kernels (depthwise convs above all) want channels-last
        probe = probe.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        x = x.contiguous(memory_format=torch.channels_last)
    x.requires_grad_(True)
    rows, cuts = _probe_forward(probe, x, None if paths is None else set(paths))
    descent = _Descent(cuts)
    wanted = {p: row for p, row in rows.items() if paths is None or p in paths}
    at_cut = {id(cut): k for k, cut in enumerate(cuts.tensors)}
    found: dict[int, tuple[Box | None, Box | None]] = {}
    for out, below in wanted.values():
        if id(out) not in found:  # an identity's output is its input: same field
            k = at_cut.get(id(out), below)  # a row starts at its own cut
            axes = out.dim() - 2  # spatial: 2 for a map, 1 for a sequence
            first: tuple[int | slice, ...] = (0, slice(None), *(0,) * axes)
            last: tuple[int | slice, ...] = (1, slice(None), *(-1,) * axes)
            unit = out[first].sum() + out[last].sum()
            (grad,) = torch.autograd.grad(unit, cuts.tensors[k], retain_graph=True)
            found[id(out)] = descent.fields(k, grad.sign())
    return {path: found[id(out)] for path, (out, _) in wanted.items()}


def _prefix(model: Net, paths: set[str]) -> Net:
    """The top-level modules up to the last that holds a row in ``paths``."""
    children = list(model.named_children())
    keep = 0
    for i, (_, child) in enumerate(children):
        if any(getattr(m, PATH_ATTR, None) in paths for m in child.modules()):
            keep = i + 1
    return Net(model.input_shape, children[:keep])


def _probe_forward(probe: Net, x: torch.Tensor, paths: set[str] | None
                   ) -> tuple[dict[str, tuple[torch.Tensor, int]], Cuts]:
    """One forward with hooks, stopped once every row in ``paths`` has run: row path -> (its
    (N, C, H, W) output, index of the cut it reads), and the cuts (:class:`Cuts`): ``x`` and
    the output of every element of every ``nn.Sequential`` (the network, each branch, each
    body), each with the cut every path to it passes through: the previous element's output,
    or for a chain's first element the chain's entry (the input of the block that holds the
    chain). Every row's output passes through :class:`_Support`."""
    rows: dict[str, tuple[torch.Tensor, int]] = {}
    cuts = Cuts([x], [0])
    reset = {id(x): x}  # the tensors too: a freed tensor's id can come back
    pending = None if paths is None else set(paths)
    starts: list[int] = [0]  # the cut each running chain element reads
    position: dict[int, int] = {id(probe): 0}  # a chain (id of the Sequential) -> its cut

    def row_hook(path: str) -> Callable[..., torch.Tensor | None]:
        def hook(_m: nn.Module, _i: object, out: torch.Tensor) -> torch.Tensor | None:
            new = None
            if out.requires_grad and id(out) not in reset:  # an identity passes it on
                out = new = _Support.apply(out)
                reset[id(out)] = out
            if out.dim() == x.dim() > 2:  # a map's, or a sequence's, row
                rows[path] = (out, 0 if id(_m) in reading else starts[-1])
            if pending is not None:
                pending.discard(path)
                if not pending:
                    raise _Done
            return new
        return hook

    def enter(chain: nn.Sequential) -> Callable[..., None]:
        def hook(_m: nn.Module, _i: object) -> None:
            starts.append(position[id(chain)])
        return hook

    def leave(chain: nn.Sequential) -> Callable[..., None]:
        def hook(_m: nn.Module, _i: object, out: object) -> None:
            start = starts.pop()
            if out is cuts.tensors[start]:  # the identity: the same cut
                position[id(chain)] = start
            elif isinstance(out, torch.Tensor) and out.requires_grad and id(_m) in reading:
                known = cuts.where.get(id(out))  # a from's tensor is a cut already
                position[id(chain)] = cuts.add(out, 0) if known is None else known
            elif isinstance(out, torch.Tensor) and out.requires_grad:
                position[id(chain)] = cuts.add(out, start)
        return hook

    def open_chain(chain: nn.Module, _i: object) -> None:
        position[id(chain)] = starts[-1]  # a branch or a body starts at its block's input

    # row hooks first: they replace outputs, and the cuts are the replaced ones
    handles = [m.register_forward_hook(row_hook(p)) for p, m in modules_by_path(probe).items()]
    # ``from NAME`` reads a tensor off the chain (a NASNet cell, a DenseNet layer): the
    # output of a chain element that reads one need not pass through the element's input.
    # A from's output is the kept tensor, a cut already (or a new one whose parent is x);
    # any other such element's output is a cut whose parent is x, which every path passes
    reading = {id(m) for m in probe.modules() if m is not probe and any(
        isinstance(s, NamedTensor) and s.action == "from" for s in m.modules())}
    for chain in probe.modules():
        if isinstance(chain, nn.Sequential):
            for child in chain.children():
                handles.append(child.register_forward_pre_hook(enter(chain)))
                handles.append(child.register_forward_hook(leave(chain)))
    handles += [m.register_forward_pre_hook(open_chain) for m in probe.modules()
                if isinstance(m, nn.Sequential) and m is not probe]
    try:
        probe(x)
    except _Done:
        pass  # the rest of the network reaches no probed row
    finally:
        for handle in handles:
            handle.remove()
    return rows, cuts


class Cuts:
    """Tensors of the probe's forward that every path from the input to a later one passes
    through, each with its parent: the cut below it (``x``, index 0, is its own)."""

    def __init__(self, tensors: list[torch.Tensor], parents: list[int]) -> None:
        self.tensors, self.parents = tensors, parents
        self.where = {id(t): i for i, t in enumerate(tensors)}  # held: ids stay unique

    def add(self, tensor: torch.Tensor, parent: int) -> int:
        self.tensors.append(tensor)
        self.parents.append(parent)
        self.where[id(tensor)] = len(self.tensors) - 1
        return len(self.tensors) - 1


class _Done(Exception):
    """Raised by a forward hook when every probed row has run."""


class _Support(torch.autograd.Function):
    """Values and gradients to 0/1 (all are >= 0 in the probe): only where they are non-zero
    matters, and a value that is 0 or 1 at every row cannot underflow between rows. Linear
    layers' gradients do not depend on the values; a gate's product does, on their support
    only."""

    @staticmethod
    def forward(ctx: object, x: torch.Tensor) -> torch.Tensor:
        return x.sign()

    @staticmethod
    def backward(ctx: object, grad: torch.Tensor) -> torch.Tensor:
        return grad.sign()


MEMO_LIMIT = 8_000_000  # elements of a cut's gradient (both samples): ResNet-50's largest 1.6M


class _Descent:
    """Fields of 0/1 gradients at the cuts, memoised per cut. The field of a gradient at cut
    k depends on nothing but that gradient (every path to the input passes through the cut),
    so a gradient seen before at a cut has the field found then: deep rows whose fields cover
    a cut, and 1x1 convs (the field of their input), stop early instead of running back
    through the whole network."""

    def __init__(self, cuts: Cuts) -> None:
        self.cuts = cuts
        self.seen: dict[int, dict[bytes, tuple[Box | None, Box | None]]] = {}

    def fields(self, k: int, grad: torch.Tensor) -> tuple[Box | None, Box | None]:
        """Boxes of samples 0 and 1 for the 0/1 gradient ``grad`` at cut ``k``. Cuts larger
        than :data:`MEMO_LIMIT` elements are passed without a key: on the largest maps the
        key costs as much as the step, and rows rarely meet there (U-Net's 570x570 maps)."""
        visited = []
        while k > 0:
            if grad.numel() <= MEMO_LIMIT:
                key = _key(grad)
                seen = self.seen.setdefault(k, {})
                if key in seen:
                    result = seen[key]
                    break
                visited.append((k, key))
            parent = self.cuts.parents[k]
            (grad,) = torch.autograd.grad(self.cuts.tensors[k], self.cuts.tensors[parent],
                                          grad, retain_graph=True)
            grad, k = grad.sign(), parent
        else:
            result = (_box(grad[0]), _box(grad[1]))
        for cut, key in visited:
            self.seen[cut][key] = result
        return result


def _key(grad: torch.Tensor) -> bytes:
    """A gradient's support, one bit per element: a dict compares keys in full, so equal
    keys are equal supports."""
    return np.packbits(grad.ne(0).numpy()).tobytes()


def _box(grad: torch.Tensor) -> Box | None:
    """The bounding box of a sample's gradient (C, H, W), or (C, L) as the column (L, 1)."""
    mask = grad.ne(0).any(dim=0)
    if mask.dim() == 1:
        mask = mask.unsqueeze(1)
    rows, cols = mask.any(dim=1).nonzero(), mask.any(dim=0).nonzero()
    if rows.numel() == 0:
        return None
    return ((int(rows.min()), int(rows.max())), (int(cols.min()), int(cols.max())))
