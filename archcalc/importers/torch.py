"""A torch ``nn.Module`` -> an archcalc graph, and the report ``analyze`` gives for it.

The module's ``forward`` is traced into torch.fx's graph of calls, running no arithmetic:
by a lean tracer that makes torch.fx's nodes at a fifth of its cost (:class:`_LeanTracer`),
or by torch.fx itself where the lean one does not mirror it; a forward torch.fx cannot
trace (Python control flow on shapes) is run once on meta tensors instead, recording every
call in the order it ran (:class:`_RunImporter`). Each call of a layer
archcalc has a rule for becomes that layer kind, built from the module's own attributes
(``nn.Conv2d(64, 128, 3, stride=2, padding=1, bias=False)`` is ``conv3-128 s=2 p=1
bias=false``), so the numbers come from the same rules as a spec's.

Joins of paths become blocks (:mod:`archcalc.importers.dataflow`): ``a + b`` an ``add``,
``torch.cat(..., 1)`` a ``concat``, ``x * f(x)`` a ``gate``. torch.fx records ``out +=
identity`` as ``out + identity``, so a traced in-place sum is imported as a new tensor
(``out.add_(identity)`` reads as in place, as does ``+=`` in a module that is run). Where
a tensor is reused by joins that are not one block (torchvision's DenseNet concatenates
every earlier feature map), that part is written with named tensors (``keep`` / ``from``).
A call without a rule is refused: one line naming the call and the module path, never a
silent zero. Asked to
(``skip_unknown``), a call without a rule whose output keeps its input's shape is passed
over as zero cost instead, and named among the report's warnings: the module is then run on
meta tensors, where every call's shapes are known.
"""

from __future__ import annotations

import gc
import inspect
import operator
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal, TypeAlias

import torch
import torch.nn.functional as F
from torch import fx, nn
from torch.fx import graph as _fx_graph

from archcalc.analysis import Report, analyze
from archcalc.errors import Loc
from archcalc.importers.dataflow import Imported, Join, Op, UnsupportedModel, sequences, skip
from archcalc.kinds import (
    Activation,
    AdaptivePool,
    BatchNorm,
    Conv,
    ConvTranspose,
    Dropout,
    Flatten,
    GlobalPool,
    GroupNorm,
    InstanceNorm,
    Kind,
    LayerNorm,
    Linear,
    Pad,
    Pool,
    PReLU,
    Upsample,
)
from archcalc.kinds.norm import LRN
from archcalc.layers import Graph, Seq, Shape

Pair = tuple[int, int]
PoolOp = Literal["max", "avg"]


def from_torch(module: nn.Module, input_size: Sequence[int] = (3, 224, 224),
               convention: str = "full", name: str | None = None,
               skip_unknown: bool = False) -> Report:
    """The report of ``module`` for one sample of ``input_size`` (channels first, as torch:
    (C, H, W), (C, L) or (N,)), as :func:`archcalc.analyze` gives for a spec.
    ``skip_unknown``: calls without a rule that keep their input's shape count as zero,
    each named in the report's warnings."""
    with _collector_paused():
        if not skip_unknown:
            return analyze(torch_graph(module, input_size, name), convention)
        return read_torch(module, input_size, name, skip_unknown=True).report(convention)


def torch_graph(module: nn.Module, input_size: Sequence[int] = (3, 224, 224),
                name: str | None = None) -> Graph:
    """``module``'s layers and joins as an archcalc graph (see the module docstring)."""
    return read_torch(module, input_size, name).graph


def read_torch(module: nn.Module, input_size: Sequence[int] = (3, 224, 224),
               name: str | None = None, skip_unknown: bool = False) -> Imported:
    """:func:`torch_graph`, and the calls ``skip_unknown`` passed over."""
    with _collector_paused():
        return _read(module, input_size, name, skip_unknown)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """CPython's cycle collector paused while a model is read: reading EfficientNet-B0
    makes some 20,000 small objects, enough to set off collections that each walk every
    object torch has loaded (a quarter of the reading time). What was made is collected
    afterwards, as usual."""
    if not gc.isenabled():  # paused already (a reader inside from_torch), or by the user
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _read(module: nn.Module, input_size: Sequence[int], name: str | None,
          skip_unknown: bool) -> Imported:
    model = name or type(module).__name__
    named = list(module.named_modules())  # one walk, for the modes and the tracer
    training = [m for _, m in named if m.training]
    if training:
        module.eval()  # what inference computes: dropout and drop-connect branches as in eval
    try:
        try:
            importer = _traced(module, named, model, skip_unknown)
            body = importer.body()
            importer.release()
        except (UnsupportedModel, _Refused):
            raise
        except Exception:  # user code fx cannot trace (control flow, unknown Python), or
            # a call to pass over, whose shapes a run on meta tensors tells (_RunInstead)
            importer = _RunImporter(module, model, skip_unknown)
            body = importer.run(input_size)
    finally:  # each module back in its own mode, as the user left it (a training model
        for m in training:  # with frozen batch norms keeps them frozen)
            m.training = True
    source = f"torch {type(module).__module__}.{type(module).__qualname__}"
    graph = Graph(model, tuple(int(d) for d in input_size), body, source=source,
                  file=f"<torch {model}>")
    return Imported(graph, tuple(importer.skipped))


# -- calls -> layer kinds ----------------------------------------------------------------
def _pair(value: int | Sequence[int]) -> Pair:
    if isinstance(value, int):
        return (value, value)
    if len(value) == 1:
        return (value[0], value[0])
    return (value[0], value[1])


def _conv(m: nn.Conv1d | nn.Conv2d) -> Kind:
    if m.padding_mode != "zeros":
        raise _Refused(f"padding_mode={m.padding_mode!r} (archcalc pads with zeros)")
    return _conv_kind(m.out_channels, m.kernel_size, m.stride, m.padding, m.dilation,
                      m.groups, m.bias is not None)


def _conv_kind(out: int, kernel_size: Any, stride: Any, pad: Any, dilation_: Any,
               groups: int, bias: bool) -> Kind:
    """A convolution from torch's arguments (a module's or F.conv2d's)."""
    kernel, dilation = _pair(kernel_size), _pair(dilation_)
    pad_end = None
    if pad == "same":
        total = tuple(d * (k - 1) for d, k in zip(dilation, kernel, strict=True))
        padding: Pair = (total[0] // 2, total[1] // 2)
        end = (total[0] - padding[0], total[1] - padding[1])
        pad_end = end if end != padding else None
    elif pad == "valid":
        padding = (0, 0)
    else:
        padding = _pair(pad)
    return Conv(out, kernel, _pair(stride), padding, dilation, groups, bias, pad_end)


def _deconv(m: nn.ConvTranspose2d) -> Kind:
    if m.padding_mode != "zeros":
        raise _Refused(f"padding_mode={m.padding_mode!r}")
    return ConvTranspose(m.out_channels, _pair(m.kernel_size), _pair(m.stride),
                         _pair(m.padding), _pair(m.output_padding),  # type: ignore[arg-type]
                         _pair(m.dilation), m.groups, m.bias is not None)


def _batch_norm(m: nn.BatchNorm1d | nn.BatchNorm2d) -> Kind:
    if not m.track_running_stats:
        raise _Refused("track_running_stats=False (archcalc counts the running mean and "
                       "variance as buffers)")
    return BatchNorm(m.eps, m.affine)


def _pool(op: PoolOp, kernel: Any, stride: Any, padding: Any, ceil_mode: bool,
          dilation: Any = 1) -> Kind:
    if _pair(dilation) != (1, 1):
        raise _Refused(f"dilation={dilation} (archcalc pools without dilation)")
    kernel = _pair(kernel)
    return Pool(op, kernel, _pair(stride) if stride else kernel, _pair(padding), ceil_mode)


def _max_pool(m: nn.MaxPool1d | nn.MaxPool2d) -> Kind:
    if m.return_indices:
        raise _Refused("return_indices=True")
    return _pool("max", m.kernel_size, m.stride, m.padding, m.ceil_mode, m.dilation)


def _avg_pool(m: nn.AvgPool1d | nn.AvgPool2d) -> Kind:
    if not m.count_include_pad or getattr(m, "divisor_override", None):
        raise _Refused("count_include_pad=False or divisor_override (archcalc averages "
                       "over the whole window, padding included)")
    return _pool("avg", m.kernel_size, m.stride, m.padding, m.ceil_mode)


def _adaptive(op: PoolOp, size: Any) -> Kind:
    if size is None or (not isinstance(size, int) and None in size):
        raise _Refused("an output size of None (the input's own)")
    pair = _pair(size)
    return GlobalPool(op) if pair == (1, 1) else AdaptivePool(op, pair)


def _linear(m: nn.Linear) -> Kind:
    return Linear(m.out_features, m.bias is not None)


def _flatten_module(m: nn.Flatten) -> Kind:
    if m.start_dim != 1 or m.end_dim != -1:
        raise _Refused(f"start_dim={m.start_dim}, end_dim={m.end_dim} (archcalc flattens all "
                       "but the batch)")
    return Flatten()


def _layer_norm(m: nn.LayerNorm) -> Kind:
    if len(m.normalized_shape) != 1:
        raise _Refused(f"normalized_shape={tuple(m.normalized_shape)} (archcalc normalises "
                       "one axis: the features of a vector)")
    return LayerNorm(m.eps, m.elementwise_affine)


def _pad(m: nn.ZeroPad2d | nn.ConstantPad2d) -> Kind:
    if getattr(m, "value", 0.0) != 0.0:
        raise _Refused("a constant other than 0")
    left, right, top, bottom = m.padding
    return Pad(top, bottom, left, right)


def _upsample(m: nn.Upsample) -> Kind:
    if m.scale_factor is None or m.mode not in ("nearest", "bilinear") or m.align_corners:
        raise _Refused("archcalc upsamples by whole scale factors, nearest or bilinear "
                       "without align_corners")
    factor = m.scale_factor
    scale = tuple(factor) if isinstance(factor, tuple | list) else (factor, factor)
    if len(scale) != 2 or any(s != int(s) for s in scale):
        raise _Refused(f"scale_factor={m.scale_factor} (whole factors only)")
    return Upsample((int(scale[0]), int(scale[1])), m.mode)  # type: ignore[arg-type]


def _activation(fn: str, m: nn.Module) -> Kind:
    return Activation(fn)


_ACTIVATIONS: dict[type[nn.Module], str] = {
    nn.ReLU: "relu", nn.ReLU6: "relu6", nn.LeakyReLU: "leakyrelu", nn.ELU: "elu",
    nn.GELU: "gelu", nn.SiLU: "silu", nn.Sigmoid: "sigmoid", nn.Tanh: "tanh",
    nn.Hardswish: "hardswish", nn.Hardsigmoid: "hardsigmoid", nn.Mish: "mish",
    nn.Softmax: "softmax"}

# Exact classes: a subclass may override forward and compute something else.
_MODULES: dict[type[nn.Module], Callable[[Any], Kind | None]] = {
    nn.Conv1d: _conv, nn.Conv2d: _conv, nn.ConvTranspose2d: _deconv,
    nn.BatchNorm1d: _batch_norm, nn.BatchNorm2d: _batch_norm,
    nn.MaxPool1d: _max_pool, nn.MaxPool2d: _max_pool,
    nn.AvgPool1d: _avg_pool, nn.AvgPool2d: _avg_pool,
    nn.AdaptiveAvgPool1d: lambda m: _adaptive("avg", m.output_size),
    nn.AdaptiveAvgPool2d: lambda m: _adaptive("avg", m.output_size),
    nn.AdaptiveMaxPool1d: lambda m: _adaptive("max", m.output_size),
    nn.AdaptiveMaxPool2d: lambda m: _adaptive("max", m.output_size),
    nn.Linear: _linear, nn.Flatten: _flatten_module,
    nn.Dropout: lambda m: Dropout(m.p), nn.Dropout1d: lambda m: Dropout(m.p),
    nn.Dropout2d: lambda m: Dropout(m.p), nn.Identity: lambda m: None,
    nn.LayerNorm: _layer_norm,
    nn.GroupNorm: lambda m: GroupNorm(eps=m.eps, affine=m.affine, groups=m.num_groups),
    nn.InstanceNorm1d: lambda m: InstanceNorm(m.eps, m.affine),
    nn.InstanceNorm2d: lambda m: InstanceNorm(m.eps, m.affine),
    nn.LocalResponseNorm: lambda m: LRN(m.size, m.alpha, m.beta, m.k),
    nn.PReLU: lambda m: PReLU(m.num_parameters > 1),
    nn.ZeroPad2d: _pad, nn.ConstantPad2d: _pad, nn.Upsample: _upsample,
    **{cls: partial(_activation, fn) for cls, fn in _ACTIVATIONS.items()},
}

_FUNCTION_ACTIVATIONS: dict[Any, str] = {
    F.relu: "relu", torch.relu: "relu", F.relu6: "relu6", F.leaky_relu: "leakyrelu",
    F.elu: "elu", F.gelu: "gelu", F.silu: "silu", torch.sigmoid: "sigmoid",
    F.sigmoid: "sigmoid", torch.tanh: "tanh", F.tanh: "tanh", F.hardswish: "hardswish",
    F.hardsigmoid: "hardsigmoid", F.mish: "mish", F.softmax: "softmax",
    torch.softmax: "softmax"}
_METHOD_ACTIVATIONS = {"relu": "relu", "relu_": "relu", "sigmoid": "sigmoid",
                       "sigmoid_": "sigmoid", "tanh": "tanh", "softmax": "softmax"}
_PASS_METHODS = ("contiguous",)  # the same values: no layer
_SCALARS = ("size", "dim", "numel")  # calls that give numbers, not tensors
_ADDS = (operator.add, torch.add)
_MULS = (operator.mul, torch.mul)


class _Tracer(fx.Tracer):
    """torch.fx's tracer, finding a parameter's name in one lookup: the stock one searches
    every named parameter on each attribute access (a third of reading EfficientNet)."""

    def __init__(self, root: nn.Module) -> None:
        super().__init__()
        self.names = {id(p): name for name, p in root.named_parameters()}

    def getattr(self, attr: str, attr_val: Any, parameter_proxy_cache: dict[str, Any]) -> Any:
        name = self.names.get(id(attr_val)) if isinstance(attr_val, nn.Parameter) else None
        if name is None:
            return super().getattr(attr, attr_val, parameter_proxy_cache)
        if name not in parameter_proxy_cache:
            parameter_proxy_cache[name] = self.create_proxy("get_attr", name, (), {})
        return parameter_proxy_cache[name]


# -- a lean tracer: torch.fx's graph for the common case, at a fraction of its cost --------
class _Fallback(Exception):  # not an error: a change of tracer
    """Something the lean tracer does not mirror: torch.fx's own tracer reads the module."""


@dataclass(eq=False, slots=True)
class _TracedNode:
    """One node of :class:`_LeanTracer`, with the fields of the torch.fx node it stands
    for (its op, target, arguments, name, module stack, users, and its printed form)."""

    op: str
    target: Any
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    name: str
    type: Any = None
    meta: dict[str, Any] = field(default_factory=dict)
    users: dict[_TracedNode, None] = field(default_factory=dict)
    all_input_nodes: list[_TracedNode] = field(default_factory=list)
    _pretty_print_target = staticmethod(fx.Node._pretty_print_target)

    def format_node(self) -> str | None:
        """As torch.fx prints its node (the text errors and rows point at), a call's
        written here: torch.fx's general printer was a tenth of reading EfficientNet."""
        if self.op not in ("call_function", "call_method", "call_module") or self.type:
            return fx.Node.format_node(self)  # type: ignore[arg-type]
        target = _TARGETS.get(self.target)
        if target is None:
            target = _TARGETS[self.target] = self._pretty_print_target(self.target)
        return (f"%{self.name} : [num_users={len(self.users)}] = {self.op}[target={target}]"
                f"(args = {_printed(self.args)}, kwargs = {_printed(self.kwargs)})")

    def _custom_fx_repr_fn(self) -> str:  # how torch.fx prints a node among arguments
        return f"%{self.name}"

    def __repr__(self) -> str:
        return self.name


_TARGETS: dict[Any, str] = {}  # a call's target as torch.fx prints it: found once each


def _target_to_str(target: Any) -> str:
    """torch.fx's ``Graph._target_to_str``: a call's name before numbering."""
    if callable(target):
        name = target.__name__
    else:
        name = target[2:-2] if _fx_graph._is_magic(target) else target
    return _fx_graph._snake_case(name)


def _printed(arg: Any) -> str:
    """torch.fx's ``_format_arg`` for the arguments the lean tracer records."""
    kind = type(arg)
    if kind is _TracedNode:
        return f"%{arg.name}"
    if kind is list:
        return f"[{', '.join(map(_printed, arg))}]"
    if kind is tuple:
        return f"({', '.join(map(_printed, arg))}{',' if len(arg) == 1 else ''})"
    if kind is dict:
        return "{" + ", ".join(f"{k}: {_printed(v)}" for k, v in arg.items()) + "}"
    return str(arg)


# What the importer reads: torch.fx's node or the lean one. A string, so importing this
# module does not evaluate fx.Node (the docs build imports it with torch mocked).
_Node: TypeAlias = "fx.Node | _TracedNode"
_NODE_TYPES = (fx.Node, _TracedNode)  # the same, for isinstance

_CONSTANTS = frozenset((int, float, bool, str, type(None), type(...), complex, torch.dtype,
                        torch.device, torch.layout, torch.memory_format))
_IS_METHOD: dict[Any, bool] = {}  # torch's own test warns and filters on every call


class _LeanTracer:
    """torch.fx's symbolic tracing for modules of layers, functions and arithmetic, without
    its general machinery (argument trees, tensor constants, wrapped functions, stack
    records): the same nodes, in the same order, with the same names, at a fifth of the
    cost (reading EfficientNet-B0 spent most of its time in torch.fx). Anything it does not
    mirror exactly (a tensor constant, a buffer, unpacking or testing a traced value, a
    namedtuple) raises :class:`_Fallback`, and torch.fx's own tracer reads the module."""

    def __init__(self, root: nn.Module,
                 named: Sequence[tuple[str, nn.Module]] | None = None) -> None:
        self.root = root
        self.nodes: list[_TracedNode] = []
        self.paths: dict[int, str] = {}
        self.params: dict[int, str] = {}  # as named_parameters() names them, in one walk
        self.modules: dict[str, nn.Module] = {}  # for the importer: no second walk
        self.parameters: dict[str, nn.Parameter] = {}
        for path, m in root.named_modules() if named is None else named:
            self.paths[id(m)] = path
            self.modules[path] = m
            for name, p in m._parameters.items():
                if p is not None and id(p) not in self.params:
                    self.params[id(p)] = full = f"{path}.{name}" if path else name
                    self.parameters[full] = p
        self.names: dict[Any, str] = {}  # a target's name before numbering, as torch.fx's
        self.parsed: dict[str, tuple[str, str, str | None]] = {}
        self.used: set[str] = set()
        self.counts: dict[str, int] = {}
        self.param_nodes: dict[str, _Proxy] = {}
        self.stack: dict[str, tuple[str, type]] = {}  # torch.fx's nn_module_stack
        self.snapshot: dict[str, tuple[str, type]] | None = None  # a copy of it, if made
        self.calls: dict[str, int] = {}
        self.leaves: dict[type, bool] = {}
        self.refused = ""  # why this tracer cannot mirror torch.fx, once it knows

    def trace(self) -> list[_TracedNode]:
        from torch.fx import _symbolic_trace as symbolic

        if symbolic._wrapped_methods_to_patch or any(
                not str(space.get("__name__", "")).startswith("torch.")
                for space in symbolic._wrapped_fns_to_patch.values()):
            raise _Fallback("functions registered with torch.fx.wrap")  # torch's own aside
        forward = type(self.root).forward
        params = list(inspect.signature(forward).parameters.values())[1:]
        if len(params) != 1 or params[0].kind is not params[0].POSITIONAL_OR_KEYWORD \
                or params[0].default is not params[0].empty:
            raise _Fallback("a forward of other than one plain argument")
        name = params[0].name
        x = self.create("placeholder", name, (), {},
                        type_=inspect.unwrap(forward).__annotations__.get(name))
        call, get = nn.Module.__call__, nn.Module.__getattr__
        nn.Module.__call__ = lambda m, *a, **k: self.call_module(m, call, a, k)  # type: ignore[method-assign]
        nn.Module.__getattr__ = lambda m, attr: self.getattr(get(m, attr))  # type: ignore[method-assign]
        try:
            out = forward(self.root, x)
        finally:
            nn.Module.__call__, nn.Module.__getattr__ = call, get  # type: ignore[method-assign]
            self.param_nodes.clear()  # their proxies refer back to the tracer
        if self.refused:  # the forward caught the _Fallback and went on
            raise _Fallback(self.refused)
        self.create("output", "output", (out,), {},
                    type_=inspect.unwrap(forward).__annotations__.get("return"))
        return self.nodes

    def call_module(self, m: nn.Module, call: Callable[..., Any], args: tuple[Any, ...],
                    kwargs: dict[str, Any]) -> Any:
        """torch.fx's: a layer of torch.nn is one node; any other module is traced through,
        its path on the module stack of the nodes it makes."""
        path = self.paths.get(id(m))
        if path is None:
            raise self.refuse("a module that is not a submodule")
        count = self.calls.get(path, 0)
        key = f"{path}@{count}" if count else path
        self.stack[key] = (path, type(m))
        self.calls[path] = count + 1
        self.snapshot = None
        try:
            leaf = self.leaves.get(type(m))
            if leaf is None:  # torch.fx's default: torch.nn's own layers
                leaf = self.leaves[type(m)] = (m.__module__.startswith(("torch.nn", "torch.ao.nn"))
                                               and not isinstance(m, nn.Sequential))
            if leaf:
                return self.create("call_module", path, args, kwargs)
            return call(m, *args, **kwargs)
        finally:
            del self.stack[key]
            self.snapshot = None

    def getattr(self, value: Any) -> Any:
        """A module's parameter becomes a ``get_attr`` node, once per parameter."""
        if not isinstance(value, torch.Tensor):
            return value
        path = self.params.get(id(value)) if isinstance(value, nn.Parameter) else None
        if path is None:
            raise self.refuse("a buffer or a tensor attribute")
        if path not in self.param_nodes:
            self.param_nodes[path] = self.create("get_attr", path, (), {})
        return self.param_nodes[path]

    def create(self, op: str, target: Any, args: tuple[Any, ...], kwargs: dict[str, Any],
               name: str | None = None, type_: Any = None) -> _Proxy:
        inputs: dict[_TracedNode, None] = {}
        given, args = args, ()
        for v in given:  # the common cases inline: a traced value, a constant
            kind = type(v)
            if kind is _Proxy:
                inputs[v._node] = None
                args += (v._node,)
            else:
                args += (v if kind in _CONSTANTS else self.arg(v, inputs),)
        kwargs = self.arg(kwargs, inputs) if kwargs else {}
        node = _TracedNode(op, target, args, kwargs,
                           self.unique(self.basename(target) if name is None else name), type_,
                           all_input_nodes=list(inputs))
        if self.stack:  # one copy per module entered, shared by the nodes made inside
            if self.snapshot is None:
                self.snapshot = dict(self.stack)
            node.meta["nn_module_stack"] = self.snapshot
        for used in inputs:
            used.users[node] = None
        self.nodes.append(node)
        return _Proxy(self, node)

    def unique(self, candidate: str) -> str:
        """torch.fx's ``_Namespace.create_name``: ``candidate``, or numbered (``add_3``)
        when taken or a Python keyword or builtin; each candidate parsed once."""
        parsed = self.parsed.get(candidate)
        if parsed is None:
            name = candidate
            match = _fx_graph._name_regex.match(name)
            if match is None:
                name = _fx_graph._illegal_char_regex.sub("_", name) or "_unnamed"
                name = f"_{name}" if name[0].isdigit() else name
                match = _fx_graph._name_regex.match(name)
                assert match is not None
            parsed = self.parsed[candidate] = (name, match.group(1), match.group(2))
        name, base, number = parsed
        used = self.used
        if number is None or name in used:
            count = self.counts.get(base, 0)
            if _fx_graph._illegal_names.get(name) is not None:
                count += 1
                name = f"{base}_{count}"
        else:
            count = int(number)
        while name in used:
            count += 1
            name = f"{base}_{count}"
        used.add(name)
        self.counts[base] = count
        return name

    def refuse(self, why: str) -> _Fallback:
        """The error that hands the module to torch.fx, remembered in case the forward
        catches it (``try: ... except Exception``) and goes on."""
        self.refused = self.refused or why
        return _Fallback(why)

    def basename(self, target: Any) -> str:
        """A node's name before torch.fx numbers it: ``conv2d`` for torch.conv2d."""
        name = self.names.get(target)
        if name is None:
            if type(target) is str and target.islower() and not target.startswith("__"):
                name = target  # a module path in snake case already: as fx's, regex spared
            else:
                name = _target_to_str(target)
            self.names[target] = name
        return name

    def arg(self, value: Any, inputs: dict[_TracedNode, None]) -> Any:
        """A call's argument as a node's: traced values become their nodes."""
        kind = type(value)
        if kind in _CONSTANTS:
            return value
        if kind is _Proxy or kind is _Attribute:
            node = value.node
            inputs[node] = None
            return node
        if kind is tuple or kind is list:
            return kind(self.arg(v, inputs) for v in value)
        if kind is dict and all(type(k) is str for k in value):
            return {k: self.arg(v, inputs) for k, v in value.items()}
        if kind is slice:
            return slice(self.arg(value.start, inputs), self.arg(value.stop, inputs),
                         self.arg(value.step, inputs))
        raise self.refuse(f"an argument of type {kind.__name__}")


class _Proxy:
    """A traced value: what torch.fx's Proxy records, each call a node of the tracer."""

    __slots__ = ("_node", "tracer")

    def __init__(self, tracer: _LeanTracer, node: _TracedNode | None) -> None:
        self.tracer, self._node = tracer, node

    @property
    def node(self) -> _TracedNode:
        assert self._node is not None
        return self._node

    def __getattr__(self, attr: str) -> _Attribute:
        if attr.startswith("__"):  # copy, pickle, numpy probes: not a traced attribute
            raise AttributeError(attr)
        return _Attribute(self, attr)

    def __call__(self, *args: Any, **kwargs: Any) -> _Proxy:
        return self.tracer.create("call_method", "__call__", (self, *args), kwargs)

    def __iter__(self) -> Any:
        raise self.tracer.refuse("unpacking a traced value")

    def __bool__(self) -> bool:
        raise self.tracer.refuse("a traced value tested in Python")

    def __len__(self) -> int:
        raise self.tracer.refuse("len of a traced value")

    def __abs__(self) -> _Proxy:
        return self.tracer.create("call_function", operator.abs, (self,), {})

    @classmethod
    def __torch_function__(cls, func: Any, types: Any, args: tuple[Any, ...] = (),
                           kwargs: dict[str, Any] | None = None) -> _Proxy:
        kwargs = kwargs or {}
        tracer = _tracer_of((*args, *kwargs.values()))
        if tracer is None:
            raise _Fallback(f"a call of {func}")
        if isinstance(func, torch._C.ScriptMethod | torch._ops.OpOverload
                      | torch._ops.HigherOrderOperator):
            raise tracer.refuse(f"a call of {func}")
        method = _IS_METHOD.get(func)
        if method is None:
            method = _IS_METHOD[func] = torch.overrides.is_tensor_method_or_property(func)
        if method:
            return tracer.create("call_method", func.__name__, args, kwargs)
        return tracer.create("call_function", func, args, kwargs,
                             name=tracer.basename(func.__name__))


def _tracer_of(values: Sequence[Any]) -> _LeanTracer | None:
    """The tracer of the first traced value among call arguments (torch.cat's list too)."""
    for value in values:
        if isinstance(value, _Proxy):
            return value.tracer
        if isinstance(value, list | tuple) and (found := _tracer_of(value)) is not None:
            return found
    return None


class _Attribute(_Proxy):
    """``x.attr``: a method call when called, else a ``getattr`` node made when used."""

    __slots__ = ("attr", "root")

    def __init__(self, root: _Proxy, attr: str) -> None:
        super().__init__(root.tracer, None)
        self.root, self.attr = root, attr

    @property
    def node(self) -> _TracedNode:
        if self._node is None:
            self._node = self.tracer.create("call_function", getattr,
                                            (self.root, self.attr), {}).node
        return self._node

    def __call__(self, *args: Any, **kwargs: Any) -> _Proxy:
        return self.tracer.create("call_method", self.attr, (self.root, *args), kwargs)


def _magic(name: str, reflected: bool) -> Callable[..., _Proxy]:
    def call(*args: Any, **kwargs: Any) -> _Proxy:  # operator's function, as torch.fx finds it
        target = getattr(operator, name)
        return args[0].tracer.create("call_function", target, args, kwargs)  # type: ignore[no-any-return]

    def reflect(self: _Proxy, other: Any) -> _Proxy:
        return self.tracer.create("call_function", getattr(operator, name), (other, self), {})

    return reflect if reflected else call


for _name in fx.graph.magic_methods:  # the operators torch.fx's Proxy records, as it does
    setattr(_Proxy, f"__{_name.strip('_')}__", _magic(_name, False))
for _name in fx.graph.reflectable_magic_methods:
    setattr(_Proxy, f"__r{_name.strip('_')}__", _magic(_name, True))


def _traced(module: nn.Module, named: Sequence[tuple[str, nn.Module]], model: str,
            skip_unknown: bool) -> _Importer:
    """The importer of ``module``'s graph as torch.fx traces it: by the lean tracer where
    it can, else by torch.fx (whose errors send the module to a run on meta tensors).
    ``named``: ``module.named_modules()``."""
    tracer = _LeanTracer(module, named)
    try:
        nodes = tracer.trace()
    except Exception:  # _Fallback, or user code the lean tracer did not get through
        return _Importer(module, list(_Tracer(module).trace(module).nodes), model,
                         skip_unknown)
    importer = _Importer(module, nodes, model, skip_unknown)
    importer.modules, importer.parameters = tracer.modules, tracer.parameters
    return importer


class _Refused(Exception):
    """A known call with settings archcalc has no rule for; the importer adds where."""


class _NoRule(_Refused):
    """A call archcalc has no rule for at all: what ``skip_unknown`` may pass over."""


class _RunInstead(Exception):  # not an error: a change of importer
    """A call to pass over whose shapes the traced graph does not know: run the module."""


# -- the graph ----------------------------------------------------------------------------
class _Importer:
    """One traced module: every call node becomes an :class:`Op` (a leaf, a join, or
    nothing), and :func:`~archcalc.importers.dataflow.sequences` writes them as blocks."""

    def __init__(self, root: nn.Module, nodes: Sequence[Any], model: str,
                 skip_unknown: bool = False) -> None:
        self.traced, self.model = root, model  # the module itself: no GraphModule is built
        self.skip_unknown = skip_unknown
        self.skipped: list[str] = []  # warnings: the calls passed over
        self.nodes = list(nodes)  # torch.fx's nodes, or the lean tracer's
        self.index = {n: i for i, n in enumerate(self.nodes, start=1)}
        self.scalars: set[_Node] = set()
        self.modules: dict[str, nn.Module] = {}  # looked up once each
        self.file = f"<torch {model}>"
        self.parameters: dict[str, nn.Parameter] = {}

    def body(self) -> Seq:
        inputs = [n for n in self.nodes if n.op == "placeholder"]
        outputs = [n for n in self.nodes if n.op == "output"]
        if len(inputs) != 1:
            raise UnsupportedModel(f"{self.model}: forward takes {len(inputs)} tensors; "
                                   "archcalc reads models of one input")
        result = outputs[0].args[0]
        if not isinstance(result, _NODE_TYPES):
            raise UnsupportedModel(f"{self.model}: forward returns {type(result).__name__}; "
                                   "archcalc reads models of one output tensor")
        self.find_scalars()
        needed = self.needed(result)
        ops: dict[_Node, Op] = {}
        for n in self.nodes:
            if n.op == "placeholder":
                ops[n] = Op("input", self.loc(n))
            elif n in needed and n.op != "get_attr" and n not in self.scalars:
                ops[n] = self.op(n, [ops[a] for a in self.tensors_in(n) if a in ops])
        return sequences(list(ops.values()), ops[inputs[0]], ops[result], self.model)

    def needed(self, result: _Node) -> set[_Node]:
        """The nodes the output depends on: a call whose result nothing uses (a statistic
        for an assertion) is not part of the model."""
        found: set[_Node] = set()
        stack = [result]
        while stack:
            n = stack.pop()
            if n not in found:
                found.add(n)
                stack.extend(n.all_input_nodes)
        return found

    def find_scalars(self) -> None:
        """``x.size(0)`` and what is computed from it are numbers, not tensors."""
        for n in self.nodes:
            if ((n.op == "call_method" and n.target in _SCALARS)
                    or (n.op == "call_function" and n.target is getattr
                        and n.args[1] == "shape")
                    or (n.op == "call_function" and n.all_input_nodes
                        and all(a in self.scalars for a in n.all_input_nodes))):
                self.scalars.add(n)

    def tensors_in(self, n: _Node) -> list[_Node]:
        return [a for a in n.all_input_nodes if a not in self.scalars and a.op != "get_attr"]

    def op(self, n: _Node, inputs: list[Op]) -> Op:
        join = self.join(n, len(inputs))
        layers = () if join is not None else tuple(self.leaf(n))
        return Op(self.label(n), self.loc(n), tuple(inputs), layers, join,
                  partial(self.where, n))

    def release(self) -> None:
        """Drops the lean tracer's references from each node to its users (the only
        cycles it makes), so that reference counting frees the nodes at once, rather than
        the cycle collector later (a millisecond for EfficientNet-B0's)."""
        for n in self.nodes:
            if type(n) is _TracedNode:
                n.users.clear()

    def submodule(self, path: str) -> nn.Module:
        """The module at ``path``, looked up once (its label and its layer both ask)."""
        found = self.modules.get(path)
        if found is None:
            found = self.modules[path] = self.traced.get_submodule(path)
        return found

    def join(self, n: _Node, tensors: int) -> Join | None:
        """How a call joins paths, or None for a call on one tensor."""
        if self.is_call(n, (torch.cat,)) and tensors >= 1:
            dim = n.kwargs.get("dim", n.args[1] if len(n.args) > 1 else 0)
            if dim not in (1, -3):
                raise self.refuse(n, f"torch.cat along dim {dim} (archcalc joins channels)")
            return "concat"
        if tensors < 2:
            return None
        if self.is_call(n, _ADDS) or (n.op == "call_method" and n.target in ("add", "add_")):
            if n.kwargs.get("alpha", 1) != 1:
                raise self.refuse(n, "add with alpha")
            return "add_inplace" if n.target == "add_" else "add"
        if self.is_call(n, _MULS) or (n.op == "call_method" and n.target == "mul"):
            return "gate"
        raise self.refuse(n, f"no rule for {self.call_name(n)} on {tensors} tensors")

    # -- leaves -------------------------------------------------------------------------
    def leaf(self, n: _Node) -> list[Kind]:
        """The layers of a call on one tensor: none (it passes its input on), one, or
        two (``x.mean((2, 3))``: global pooling, then flattening)."""
        try:
            return self.leaf_layers(n)
        except _NoRule as exc:
            if not self.skip_unknown:
                raise self.refuse(n, str(exc)) from None
            self.skipped.append(skip(self.model, self.where(n), str(exc), *self.shapes(n)))
            return []
        except _Refused as exc:
            raise self.refuse(n, str(exc)) from None

    def shapes(self, n: Any) -> tuple[Shape | None, Shape | None]:
        """The shapes of one sample going into and out of ``n``: a traced graph has none
        (a run on meta tensors has, :class:`_RunImporter`)."""
        raise _RunInstead

    def leaf_layers(self, n: _Node) -> list[Kind]:
        if n.op == "call_module":
            module = self.submodule(str(n.target))
            convert = _MODULES.get(type(module))
            if convert is None:
                raise _NoRule(f"no rule for {type(module).__module__}."
                              f"{type(module).__qualname__}")
            layer = convert(module)
            return [] if layer is None else [layer]
        if n.op == "call_function":
            return self.function(n)
        if n.op == "call_method":
            return self.method(n)
        raise _NoRule(f"no rule for a {n.op} node")

    def function(self, n: _Node) -> list[Kind]:
        fn, args, kwargs = n.target, n.args, n.kwargs
        if fn in _FUNCTION_ACTIVATIONS:
            return [Activation(_FUNCTION_ACTIVATIONS[fn])]
        if fn in (F.conv2d, F.conv1d, torch.conv2d, torch.conv1d):
            return [self.function_conv(n)]
        if fn is F.linear:
            weight = self.parameter(n, 1, "weight")
            bias = n.kwargs.get("bias", n.args[2] if len(n.args) > 2 else None)
            return [Linear(weight.shape[0], bias is not None)]
        if fn is torch.flatten:
            return self.flatten(kwargs.get("start_dim", args[1] if len(args) > 1 else 0),
                                kwargs.get("end_dim", args[2] if len(args) > 2 else -1))
        if fn in (F.adaptive_avg_pool2d, F.adaptive_avg_pool1d):
            return [_adaptive("avg", kwargs.get("output_size", args[1]))]
        if fn in (F.adaptive_max_pool2d, F.adaptive_max_pool1d):
            return [_adaptive("max", kwargs.get("output_size", args[1]))]
        if fn in (F.max_pool2d, F.max_pool1d, F.avg_pool2d, F.avg_pool1d):
            return [self.function_pool(n)]
        if fn is F.dropout:
            return [Dropout(float(kwargs.get("p", args[1] if len(args) > 1 else 0.5)))]  # type: ignore[arg-type]
        if fn is torch.mean:
            return self.mean(args[1:], kwargs)
        raise _NoRule(f"no rule for {self.call_name(n)}")

    def function_conv(self, n: _Node) -> Kind:
        """F.conv2d(x, weight, bias, stride, padding, dilation, groups), the weight a
        parameter of the module (EfficientNet-PyTorch's Conv2dStaticSamePadding)."""
        names = ["input", "weight", "bias", "stride", "padding", "dilation", "groups"]
        given = dict(zip(names, n.args, strict=False)) | dict(n.kwargs)
        shape = self.parameter(n, 1, "weight").shape
        return _conv_kind(shape[0], tuple(shape[2:]), given.get("stride", 1),
                          given.get("padding", 0), given.get("dilation", 1),
                          int(given.get("groups", 1)),
                          given.get("bias") is not None)

    def parameter(self, n: _Node, index: int, name: str) -> torch.Tensor:
        """The parameter a function call takes as argument ``index`` (or ``name``)."""
        arg = n.kwargs.get(name, n.args[index] if len(n.args) > index else None)
        if not isinstance(arg, _NODE_TYPES) or arg.op != "get_attr":
            raise _Refused(f"its {name} is computed, not a parameter of the module")
        found = self.parameters.get(str(arg.target))
        return self.traced.get_parameter(str(arg.target)) if found is None else found

    def function_pool(self, n: _Node) -> Kind:
        fn, args, kw = n.target, list(n.args), dict(n.kwargs)
        names = ["input", "kernel_size", "stride", "padding"]
        given = dict(zip(names, args, strict=False)) | kw
        op: PoolOp = "max" if fn in (F.max_pool2d, F.max_pool1d) else "avg"
        if op == "avg" and not given.get("count_include_pad", True):
            raise _Refused("count_include_pad=False")
        return _pool(op, given["kernel_size"], given.get("stride"), given.get("padding", 0),
                     bool(given.get("ceil_mode", False)), given.get("dilation", 1))

    def method(self, n: _Node) -> list[Kind]:
        name, args = str(n.target), n.args
        if name in _METHOD_ACTIVATIONS:
            return [Activation(_METHOD_ACTIVATIONS[name])]
        if name in _PASS_METHODS:
            return []
        if name == "flatten":
            return self.flatten(n.kwargs.get("start_dim", args[1] if len(args) > 1 else 0),
                                n.kwargs.get("end_dim", args[2] if len(args) > 2 else -1))
        if name in ("view", "reshape"):
            shape = args[1:] if len(args) > 2 or not isinstance(args[1], tuple | list) \
                else args[1]
            if len(shape) == 2 and shape[1] == -1:  # x.view(x.size(0), -1)
                return [Flatten()]
            raise _Refused(f"{name} to {shape} (archcalc reshapes only by flattening)")
        if name == "mean":
            return self.mean(args[1:], n.kwargs)
        raise _NoRule(f"no rule for the tensor method {name}")

    def flatten(self, start: Any, end: Any) -> list[Kind]:
        if start != 1 or end != -1:
            raise _Refused(f"flatten from dim {start} to {end} (archcalc flattens all but "
                           "the batch)")
        return [Flatten()]

    def mean(self, args: Sequence[Any], kwargs: dict[str, Any]) -> list[Kind]:
        """``x.mean((2, 3))``: global average pooling, flattened unless keepdim."""
        dims = kwargs.get("dim", args[0] if args else None)
        keep = kwargs.get("keepdim", args[1] if len(args) > 1 else False)
        axes = {dims} if isinstance(dims, int) else set(dims or ())
        if axes not in ({2, 3}, {-1, -2}, {2}, {-1}):
            raise _Refused(f"mean over {dims} (archcalc averages over the map: (2, 3))")
        pool = GlobalPool("avg", mean=True)
        return [pool] if keep else [pool, Flatten()]

    # -- where ----------------------------------------------------------------------------
    def is_call(self, n: _Node, functions: tuple[Any, ...]) -> bool:
        return n.op == "call_function" and any(n.target is f for f in functions)

    def label(self, n: _Node) -> str:
        """The torch module's class and qualified name (``Conv2d layer1.0.conv1``), or for
        a function the call and the module whose forward makes it (``conv2d in _conv_stem``:
        EfficientNet-PyTorch's padded conv)."""
        if n.op == "call_module":
            return f"{type(self.submodule(str(n.target))).__name__} {n.target}"
        owner = self.owner(n)
        return f"{n.name} in {owner}" if owner else n.name

    def owner(self, n: _Node) -> str:
        """The qualified name of the innermost module whose forward made ``n`` ("" for the
        traced module's own forward)."""
        stack = n.meta.get("nn_module_stack") or {}
        return str(list(stack.values())[-1][0]) if stack else ""

    def loc(self, n: _Node) -> Loc:
        what = str(n.target) if n.op == "call_module" else n.format_node() or n.name
        return Loc(self.file, self.index[n], 1, what)

    def where(self, n: _Node) -> str:
        if n.op == "call_module":
            return f"module {n.target!r}"
        owner = f" in module {self.owner(n)!r}" if self.owner(n) else ""
        return f"{n.op} {n.name!r}{owner} ({self.call_name(n)})"

    def call_name(self, n: _Node) -> str:
        if n.op == "call_method":
            return f"Tensor.{n.target}"
        fn = n.target
        module = getattr(fn, "__module__", None) or getattr(
            getattr(fn, "__self__", None), "__name__", "")  # torch.conv2d: a builtin method
        return f"{module}.{getattr(fn, '__name__', str(fn))}".lstrip(".")

    def refuse(self, n: _Node, why: str) -> UnsupportedModel:
        return UnsupportedModel(f"{self.model}: cannot read {self.where(n)}: {why}")


# -- modules torch.fx cannot trace: run them on meta tensors ------------------------------
@dataclass(eq=False)
class _Call:
    """A call seen while running the module, shaped as the torch.fx node the rules read."""

    op: str  # "call_module", "call_function" or "call_method"
    target: Any  # a module path, a function, or a method name
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    name: str
    meta: dict[str, Any]

    def format_node(self) -> str:
        return f"{self.name} = {self.target}"


_OPERATORS = {"__add__": operator.add, "__radd__": operator.add, "__mul__": operator.mul,
              "__rmul__": operator.mul}
_IN_PLACE = {"__iadd__": "add_", "__imul__": "mul"}


class _RunImporter(_Importer):
    """A module whose forward torch.fx cannot trace (Python control flow on shapes, calls fx
    does not know) is run once on meta tensors (no memory, no arithmetic) with the weights
    swapped for meta copies; every torch call and every call of a layer module with a rule
    is recorded in the order it ran, and the tensors it reads and writes give the graph."""

    def __init__(self, root: nn.Module, model: str, skip_unknown: bool = False) -> None:
        super().__init__(root, [], model, skip_unknown)
        self.calls: list[tuple[_Call, list[_Call | None]]] = []  # None: the input
        self.producer: dict[int, _Call | None] = {}
        self.alive: list[torch.Tensor] = []  # ids stay unique while the tensors live
        self.params: set[int] = set()
        self.stack: list[str] = []
        self.inside_leaf = 0
        self.counter = 0

    def run(self, input_size: Sequence[int]) -> Seq:
        from torch.func import functional_call
        from torch.overrides import TorchFunctionMode

        state = {name: torch.empty_like(t, device="meta") for name, t in
                 [*self.traced.named_parameters(), *self.traced.named_buffers()]}
        self.params = {id(t) for t in state.values()}
        x = torch.empty((1, *input_size), device="meta")
        self.track(x, None)
        importer = self

        class Recorder(TorchFunctionMode):
            def __torch_function__(self, func: Any, types: Any, args: Any = (),
                                   kwargs: Any = None) -> Any:
                result = func(*args, **(kwargs or {}))
                if not importer.inside_leaf:
                    importer.on_call(func, tuple(args), dict(kwargs or {}), result)
                return result

        handles = self.hooks()
        try:
            with Recorder(), torch.no_grad():
                out = functional_call(self.traced, state, (x,))
        except UnsupportedModel:
            raise
        except Exception as exc:  # the user's forward, run on meta tensors
            first = (str(exc).strip().splitlines() or [""])[0]
            raise UnsupportedModel(f"{self.model}: torch.fx cannot trace its forward, and it "
                                   f"does not run on meta tensors ({type(exc).__name__}: "
                                   f"{first})") from None
        finally:
            for handle in handles:
                handle.remove()
        if not isinstance(out, torch.Tensor) or id(out) not in self.producer:
            raise UnsupportedModel(f"{self.model}: forward returns {type(out).__name__}; "
                                   "archcalc reads models of one output tensor")
        return self.write(self.producer[id(out)])

    def write(self, result: _Call | None) -> Seq:
        """Ops for the calls the output depends on, in the order they ran; the others
        (statistics for a check, an assertion) are not part of the model's dataflow."""
        needed: set[_Call] = set()
        stack = [result]
        inputs_of = {id(call): inputs for call, inputs in self.calls}
        while stack:
            call = stack.pop()
            if call is not None and call not in needed:
                needed.add(call)
                stack.extend(inputs_of[id(call)])
        source = Op("input", Loc(f"<torch {self.model}>", 0, 1, "input"))
        ops: dict[_Call | None, Op] = {None: source}
        for call, inputs in self.calls:
            if call in needed:
                ops[call] = self.op(call, [ops[i] for i in inputs])  # type: ignore[arg-type]
        return sequences(list(ops.values()), source, ops[result], self.model)

    def hooks(self) -> list[Any]:
        handles = []
        for path, module in self.traced.named_modules():
            leaf = type(module) in _MODULES
            handles.append(module.register_forward_pre_hook(
                lambda _m, _a, path=path, leaf=leaf: self.enter(path, leaf)))
            handles.append(module.register_forward_hook(
                lambda _m, args, out, path=path, leaf=leaf: self.leave(path, leaf, args, out)))
        return handles

    def enter(self, path: str, leaf: bool) -> None:
        self.stack.append(path)
        self.inside_leaf += leaf

    def leave(self, path: str, leaf: bool, args: tuple[Any, ...], out: Any) -> None:
        self.stack.pop()
        if leaf:
            self.inside_leaf -= 1
            if not self.inside_leaf and path:
                self.record(_Call("call_module", path, args, {}, path, {}), args, out)

    def on_call(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any],
                result: Any) -> None:
        name = getattr(func, "__name__", str(func))
        if getattr(torch.Tensor, name, None) is func or name in _OPERATORS or name in _IN_PLACE:
            if name in _OPERATORS:
                call = _Call("call_function", _OPERATORS[name], args, kwargs, name, {})
            else:
                call = _Call("call_method", _IN_PLACE.get(name, name), args, kwargs, name, {})
        else:
            call = _Call("call_function", func, args, kwargs, name, {})
        self.record(call, (*args, *kwargs.values()), result)

    def record(self, call: _Call, args: tuple[Any, ...], result: Any) -> None:
        """One call of tensors that depend on the input: its Op, and its result tracked."""
        if not isinstance(result, torch.Tensor):
            return
        tracked = [t for t in _tensors(args) if id(t) in self.producer]
        if not tracked:
            return  # computed from weights or constants only
        self.counter += 1
        call.name = f"{call.name.rstrip('_')}_{self.counter}"
        call.meta = {"nn_module_stack": {p: (p, None) for p in self.stack if p},
                     "shapes": (tuple(tracked[0].shape[1:]), tuple(result.shape[1:]))}
        self.index[call] = self.counter
        self.calls.append((call, [self.producer[id(t)] for t in tracked]))
        self.track(result, call)

    def track(self, tensor: torch.Tensor, call: _Call | None) -> None:
        self.producer[id(tensor)] = call
        self.alive.append(tensor)

    def shapes(self, n: Any) -> tuple[Shape | None, Shape | None]:
        """One sample's shape into the call (its first tensor from the input) and out."""
        into, out = n.meta["shapes"]
        return tuple(int(d) for d in into), tuple(int(d) for d in out)

    def parameter(self, n: Any, index: int, name: str) -> torch.Tensor:
        arg = n.kwargs.get(name, n.args[index] if len(n.args) > index else None)
        if not isinstance(arg, torch.Tensor) or id(arg) not in self.params:
            raise _Refused(f"its {name} is computed, not a parameter of the module")
        return arg


def _tensors(values: Any) -> list[torch.Tensor]:
    """The tensors among call arguments, in lists and tuples too (torch.cat's)."""
    found = []
    for value in values:
        if isinstance(value, torch.Tensor):
            found.append(value)
        elif isinstance(value, list | tuple):
            found.extend(_tensors(value))
    return found
