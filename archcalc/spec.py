"""Spec text -> Graph. Parsing only: shapes and counts are the engine's business.

Grammar (one statement per line, or separated by ``;``; ``#`` starts a comment)::

    model NAME                    name of the architecture
    source TEXT                   citation (rest of the line)
    input HxWxC | N               input feature map (height x width x channels) or vector
    param NAME = EXPR             overridable whole-number parameter
    let NAME = EXPR               derived parameter (not overridable)
    variant NAME K=V ...          a zoo name for this spec with parameters set
    LAYER [OPTION=VALUE ...] [xN] one layer, repeated N times with ``xN``
    repeat EXPR { STATEMENTS }    the statements EXPR times
    concat { branch { ... } branch { ... } ... }      parallel branches, channels joined
    residual [shortcut=identity|A|B|C] { ... }        body(x) + shortcut(x)

Layers (paper notation, case-insensitive): ``conv3-64`` ``conv1x7-64`` (kernel-out), options
s/stride, p/pad (number, HxW or ``same``; default same for odd kernels, 0 for even),
d/dilation, g/groups, bias; ``maxpool`` ``avgpool3`` ``pool2`` (kernel, default 2; stride
defaults to the kernel; options s, p, ceil); ``gap`` / ``globalmaxpool``; ``FC-4096``
``linear-10`` (option bias); ``bn`` (eps, affine); ``relu`` ``relu6`` ``leakyrelu`` ``elu``
``gelu`` ``silu`` ``sigmoid`` ``tanh`` ``hardswish`` ``soft-max``; ``dropout`` ``dropout-0.5``
(option p); ``flatten``; ``lrn`` (size, alpha, beta, k). Any number may be ``$name`` or
``${expression}`` over the parameters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from archcalc.errors import Loc, SpecError
from archcalc.expr import ExprError, evaluate
from archcalc.layers import (
    ACTIVATIONS, LRN, Activation, BatchNorm, Concat, Conv, Dropout, Flatten, GlobalPool, Graph,
    Layer, Linear, Node, Pool, Residual, Shape,
)

_MAX_REPEAT = 10_000


@dataclass(frozen=True)
class Token:
    kind: str  # "word", "{", "}", "nl", "eof"
    text: str
    line: int
    col: int


def tokenize(text: str) -> list[Token]:
    """Split into words, braces and statement ends; ``${...}`` stays inside its word."""
    tokens: list[Token] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        i, n = 0, len(line)
        while i < n:
            ch = line[i]
            if ch == "#":
                break
            if ch.isspace():
                i += 1
            elif ch in "{}":
                tokens.append(Token(ch, ch, lineno, i + 1))
                i += 1
            elif ch == ";":
                tokens.append(Token("nl", ";", lineno, i + 1))
                i += 1
            else:
                start = i
                while i < n and not line[i].isspace() and line[i] not in "{};#":
                    if line.startswith("${", i):
                        close = line.find("}", i)
                        i = n if close < 0 else close + 1
                    else:
                        i += 1
                tokens.append(Token("word", line[start:i], lineno, start + 1))
        tokens.append(Token("nl", "", lineno, n + 1))
    tokens.append(Token("eof", "", len(text.splitlines()) + 1, 1))
    return tokens


@dataclass
class _Parser:
    text: str
    file: str
    overrides: dict[str, int]
    tokens: list[Token] = field(default_factory=list)
    pos: int = 0
    names: dict[str, int] = field(default_factory=dict)
    overridable: list[str] = field(default_factory=list)
    model: str = ""
    source: str = ""
    input_shape: Shape | None = None

    def __post_init__(self) -> None:
        self.lines = self.text.splitlines()
        self.tokens = tokenize(self.text)

    # -- helpers -------------------------------------------------------------------------
    def loc(self, tok: Token, offset: int = 0) -> Loc:
        line = self.lines[tok.line - 1] if 0 < tok.line <= len(self.lines) else ""
        return Loc(self.file, tok.line, tok.col + offset, line)

    def error(self, tok: Token, message: str, offset: int = 0) -> SpecError:
        return SpecError(message, self.loc(tok, offset))

    def peek(self) -> Token:
        return self.tokens[self.pos]

    def next(self) -> Token:
        tok = self.tokens[self.pos]
        self.pos += 1
        return tok

    def expect(self, kind: str, what: str) -> Token:
        tok = self.next()
        if tok.kind != kind:
            found = "end of line" if tok.kind == "nl" else "end of file" if tok.kind == "eof" else (
                repr(tok.text))
            raise self.error(tok, f"expected {what}, found {found}")
        return tok

    def skip_newlines(self) -> None:
        while self.peek().kind == "nl":
            self.pos += 1

    def rest_of_statement(self) -> list[Token]:
        words = []
        while self.peek().kind == "word":
            words.append(self.next())
        return words

    def end_statement(self) -> None:
        tok = self.peek()
        if tok.kind == "nl":
            self.pos += 1
        elif tok.kind not in ("}", "eof"):
            raise self.error(tok, f"unexpected {tok.text!r}")

    def substitute(self, tok: Token) -> str:
        """Replace ``$name`` and ``${expr}`` in a word by their values."""
        out, text, i = [], tok.text, 0
        while i < len(text):
            if text[i] != "$":
                out.append(text[i])
                i += 1
                continue
            if text.startswith("${", i):
                close = text.find("}", i)
                if close < 0:
                    raise self.error(tok, "unclosed '${'", i)
                expr, end = text[i + 2:close], close + 1
            else:
                m = re.match(r"[A-Za-z_]\w*", text[i + 1:])
                if not m:
                    raise self.error(tok, "'$' must be followed by a name or '{expression}'", i)
                expr, end = m.group(), i + 1 + m.end()
            out.append(str(self.eval(tok, expr, i)))
            i = end
        return "".join(out)

    def eval(self, tok: Token, expr: str, offset: int = 0) -> int:
        try:
            return evaluate(expr, self.names)
        except ExprError as exc:
            raise self.error(tok, str(exc), offset) from None

    # -- statements ----------------------------------------------------------------------
    def parse(self) -> Graph:
        body = self.block(prefix="", closed=False)
        if self.input_shape is None:
            raise SpecError("spec has no 'input' line (e.g. 'input 224x224x3')",
                            Loc(self.file, 1, 1, self.lines[0] if self.lines else ""))
        unknown = sorted(set(self.overrides) - set(self.overridable))
        if unknown:
            known = ", ".join(self.overridable) or "none"
            raise SpecError(f"model {self.model or self.file!r} has no parameter "
                            f"{unknown[0]!r} (parameters: {known})")
        return Graph(
            name=self.model or Path(self.file).stem,
            input_shape=self.input_shape,
            body=tuple(body),
            source=self.source,
            params=tuple((k, self.names[k]) for k in self.overridable),
            file=self.file,
        )

    def block(self, prefix: str, closed: bool) -> list[Node]:
        """Statements up to '}' (closed) or end of file; the '}' is consumed."""
        nodes: list[Node] = []
        index = 0
        while True:
            self.skip_newlines()
            tok = self.peek()
            if tok.kind == "eof":
                if closed:
                    raise self.error(tok, "missing '}' before end of file")
                return nodes
            if tok.kind == "}":
                if not closed:
                    raise self.error(tok, "'}' without a matching '{'")
                self.pos += 1
                return nodes
            if tok.kind == "{":
                raise self.error(tok, "'{' must follow 'repeat', 'concat', 'branch' or 'residual'")
            if self.directive(tok, bool(nodes) or closed):
                continue
            index += 1
            nodes.extend(self.statement(f"{prefix}{index}"))
            self.end_statement()

    def directive(self, tok: Token, in_body: bool) -> bool:
        word = tok.text.lower()
        if word not in ("model", "source", "input", "param", "let", "variant"):
            return False
        if in_body:
            raise self.error(tok, f"'{word}' belongs in the header, before the first layer")
        self.pos += 1
        args = self.rest_of_statement()
        if word == "source":
            self.source = self.lines[tok.line - 1][tok.col + len(tok.text) - 1:].strip()
        elif not args:
            raise self.error(tok, f"'{word}' needs an argument")
        elif word == "model":
            self.model = args[0].text
        elif word == "input":
            self.input_shape = self.shape(args[0])
        elif word in ("param", "let"):
            self.assignment(tok, args, overridable=word == "param")
        self.end_statement()
        return True

    def assignment(self, tok: Token, args: list[Token], overridable: bool) -> None:
        text = " ".join(a.text for a in args)
        name, eq, expr = text.partition("=")
        name = name.strip()
        if not eq or not re.fullmatch(r"[A-Za-z_]\w*", name) or not expr.strip():
            raise self.error(args[0], "expected NAME = EXPRESSION")
        if name in self.names:
            raise self.error(args[0], f"parameter {name!r} is defined twice")
        if overridable and name in self.overrides:
            self.names[name] = self.overrides[name]
        else:
            self.names[name] = self.eval(args[0], expr.replace("$", ""))
        if overridable:
            self.overridable.append(name)

    def shape(self, tok: Token) -> Shape:
        text = self.substitute(tok)
        dims = parse_dims(text)
        if dims is None:
            raise self.error(tok, f"malformed input shape {text!r}: expected HxWxC or N")
        if any(d <= 0 for d in dims):
            raise self.error(tok, f"input dimensions must be positive, got {text!r}")
        if len(dims) == 3:
            h, w, c = dims
            return (c, h, w)
        return dims

    def statement(self, path: str) -> list[Node]:
        tok = self.next()
        word = tok.text.lower()
        if word == "repeat":
            return self.repeat(tok, path)
        if word == "concat":
            return [self.concat(tok, path)]
        if word == "residual":
            return [self.residual(tok, path)]
        if word == "branch":
            raise self.error(tok, "'branch' is only allowed inside 'concat { ... }'")
        return self.layer(tok, path)

    def repeat(self, tok: Token, path: str) -> list[Node]:
        count_tok = self.expect("word", "a repeat count")
        count = self.count(count_tok)
        self.expect("{", "'{' after the repeat count")
        start, nodes = self.pos, []
        for r in range(max(count, 1)):
            self.pos = start
            body = self.block(prefix=f"{path}.{r + 1}.", closed=True)
            if count:
                nodes.extend(body)
        return nodes

    def count(self, tok: Token) -> int:
        text = self.substitute(tok)
        if not text.isdigit():
            raise self.error(tok, f"expected a whole number, found {text!r}")
        value = int(text)
        if value > _MAX_REPEAT:
            raise self.error(tok, f"repeat count {value} is larger than {_MAX_REPEAT}")
        return value

    def concat(self, tok: Token, path: str) -> Node:
        self.expect("{", "'{' after 'concat'")
        branches = []
        while True:
            self.skip_newlines()
            head = self.next()
            if head.kind == "}":
                break
            if head.kind != "word" or head.text.lower() != "branch":
                raise self.error(head, "expected 'branch { ... }' or '}' inside 'concat'")
            self.expect("{", "'{' after 'branch'")
            branches.append(tuple(self.block(prefix=f"{path}.b{len(branches) + 1}.", closed=True)))
        if len(branches) < 2:
            raise self.error(tok, "'concat' needs at least two branches")
        return Node(Concat(tuple(branches)), "concat", path, self.loc(tok))

    def residual(self, tok: Token, path: str) -> Node:
        shortcut = "identity"
        for opt in self.rest_of_statement():
            key, _, value = self.substitute(opt).partition("=")
            if key.lower() != "shortcut":
                raise self.error(opt, f"unknown option {key!r} for 'residual' (options: shortcut)")
            shortcut = {"identity": "identity", "a": "A", "zeropad": "A", "b": "B",
                        "projection": "B", "c": "C"}.get(value.lower(), "")
            if not shortcut:
                raise self.error(opt, f"unknown shortcut {value!r} (identity, A, B, C)",
                                 len(key) + 1)
        self.expect("{", "'{' after 'residual'")
        body = tuple(self.block(prefix=f"{path}.", closed=True))
        if not body:
            raise self.error(tok, "'residual' needs at least one layer in its body")
        return Node(Residual(body, shortcut), f"residual shortcut={shortcut}", path, self.loc(tok))

    def layer(self, tok: Token, path: str) -> list[Node]:
        if tok.kind != "word":
            raise self.error(tok, f"expected a layer, found {tok.text!r}")
        head = self.substitute(tok)
        options, times = {}, 1
        written = [head]
        for opt in self.rest_of_statement():
            text = self.substitute(opt)
            if re.fullmatch(r"[xX]\d+", text):
                times = self.count(Token("word", text[1:], opt.line, opt.col + 1))
                continue
            key, eq, value = text.partition("=")
            if not eq or not key or not value:
                raise self.error(opt, f"expected OPTION=VALUE, found {text!r}")
            if key.lower() in options:
                raise self.error(opt, f"option {key!r} given twice")
            options[key.lower()] = (value, opt, len(key) + 1)
            written.append(text)
        layer = build_layer(head, options, lambda t, m, o=0: self.error(t or tok, m, o))
        label = " ".join(written)
        if times == 1:
            return [Node(layer, label, path, self.loc(tok))]
        return [Node(layer, label, f"{path}.{r + 1}", self.loc(tok)) for r in range(times)]


def parse_dims(text: str) -> tuple[int, ...] | None:
    """``224x224x3`` -> (224, 224, 3); ``3072`` -> (3072,); anything else -> None."""
    parts = re.split(r"[x*×,]", text.strip().lower())
    if len(parts) not in (1, 3) or not all(p.strip().isdigit() for p in parts):
        return None
    return tuple(int(p) for p in parts)


# -- layer notation ----------------------------------------------------------------------
_CONV = re.compile(r"conv(\d+(?:x\d+)?)-(\d+)", re.I)
_POOL = re.compile(r"(max|avg)?pool(\d+(?:x\d+)?)?", re.I)
_FC = re.compile(r"(?:fc|linear)-(\d+)", re.I)
_DROPOUT = re.compile(r"dropout(?:-(\d*\.?\d+))?", re.I)
_GLOBAL = {"gap": "avg", "globalavgpool": "avg", "globalmaxpool": "max", "gmp": "max"}
_OPTIONS = {
    "conv": {"s": "stride", "stride": "stride", "p": "pad", "pad": "pad", "padding": "pad",
             "d": "dilation", "dilation": "dilation", "g": "groups", "groups": "groups",
             "bias": "bias"},
    "pool": {"s": "stride", "stride": "stride", "p": "pad", "pad": "pad", "padding": "pad",
             "ceil": "ceil"},
    "linear": {"bias": "bias"},
    "bn": {"eps": "eps", "affine": "affine"},
    "dropout": {"p": "p"},
    "lrn": {"size": "size", "alpha": "alpha", "beta": "beta", "k": "k"},
}


class _Options:
    """Typed access to OPTION=VALUE pairs, with errors pointing at the value."""

    def __init__(self, kind: str, raw: dict, fail) -> None:
        allowed = _OPTIONS.get(kind, {})
        self.values, self.fail = {}, fail
        for key, (value, tok, offset) in raw.items():
            if key not in allowed:
                names = ", ".join(sorted(set(allowed))) or "none"
                raise fail(tok, f"unknown option {key!r} for {kind} (options: {names})")
            self.values[allowed[key]] = (value, tok, offset)

    def pair(self, name: str, default: tuple[int, int], minimum: int = 1) -> tuple[int, int]:
        if name not in self.values:
            return default
        value, tok, offset = self.values[name]
        dims = _pair_or_none(value)
        if dims is None:
            raise self.fail(tok, f"{name} must be a whole number or HxW, not {value!r}", offset)
        if min(dims) < minimum:
            raise self.fail(tok, f"{name} must be at least {minimum}, not {value!r}", offset)
        return dims

    def raw(self, name: str) -> str | None:
        return self.values[name][0] if name in self.values else None

    def integer(self, name: str, default: int) -> int:
        return self.pair(name, (default, default))[0] if name in self.values else default

    def boolean(self, name: str, default: bool) -> bool:
        if name not in self.values:
            return default
        value, tok, offset = self.values[name]
        flag = {"true": True, "on": True, "yes": True, "1": True,
                "false": False, "off": False, "no": False, "0": False}.get(value.lower())
        if flag is None:
            raise self.fail(tok, f"{name} must be true or false, not {value!r}", offset)
        return flag

    def number(self, name: str, default: float, low: float, high: float) -> float:
        if name not in self.values:
            return default
        value, tok, offset = self.values[name]
        try:
            number = float(value)
        except ValueError:
            number = float("nan")
        if not low <= number <= high:
            raise self.fail(tok, f"{name} must be a number in [{low}, {high}], not {value!r}",
                            offset)
        return number


def _pair_or_none(text: str) -> tuple[int, int] | None:
    parts = re.split(r"[x*×,]", text.strip().lower())
    if len(parts) == 1 and parts[0].isdigit():
        return (int(parts[0]), int(parts[0]))
    if len(parts) == 2 and all(p.isdigit() for p in parts):
        return (int(parts[0]), int(parts[1]))
    return None


def _kernel(text: str) -> tuple[int, int]:
    pair = _pair_or_none(text)
    assert pair is not None  # the regexes only let digits through
    return pair


def build_layer(head: str, raw: dict, fail) -> Layer:
    """One layer from its notation and options; ``fail(tok, msg, offset)`` makes errors."""
    word = head.lower()
    if m := _CONV.fullmatch(word):
        return _conv(_kernel(m.group(1)), int(m.group(2)), _Options("conv", raw, fail), fail)
    if m := _POOL.fullmatch(word):
        kernel = _kernel(m.group(2)) if m.group(2) else (2, 2)
        opts = _Options("pool", raw, fail)
        return Pool(m.group(1) or "max", kernel, opts.pair("stride", kernel),
                    opts.pair("pad", (0, 0), minimum=0), opts.boolean("ceil", False))
    if m := _FC.fullmatch(word):
        return Linear(_positive(int(m.group(1)), fail), _Options("linear", raw, fail).boolean(
            "bias", True))
    if word in _GLOBAL:
        _Options("globalpool", raw, fail)
        return GlobalPool(_GLOBAL[word])
    if word in ("bn", "batchnorm"):
        opts = _Options("bn", raw, fail)
        return BatchNorm(opts.number("eps", 1e-5, 0.0, 1.0), opts.boolean("affine", True))
    if word in ACTIVATIONS or word == "soft-max":
        _Options("activation", raw, fail)
        return Activation("softmax" if word == "soft-max" else word)
    if m := _DROPOUT.fullmatch(word):
        opts = _Options("dropout", raw, fail)
        default = float(m.group(1)) if m.group(1) else 0.5
        if not 0.0 <= default <= 1.0:
            raise fail(None, f"dropout probability must be in [0, 1], not {m.group(1)}")
        return Dropout(opts.number("p", default, 0.0, 1.0))
    if word == "flatten":
        _Options("flatten", raw, fail)
        return Flatten()
    if word == "lrn":
        opts = _Options("lrn", raw, fail)
        return LRN(opts.integer("size", 5), opts.number("alpha", 1e-4, 0.0, 1e6),
                   opts.number("beta", 0.75, 0.0, 1e6), opts.number("k", 2.0, 0.0, 1e6))
    raise fail(None, f"unknown layer {head!r} (e.g. conv3-64, maxpool, FC-4096, bn, relu, "
                     "soft-max; see 'archcalc spec --help')")


def _positive(value: int, fail) -> int:
    if value <= 0:
        raise fail(None, f"size must be positive, got {value}")
    return value


def _conv(kernel: tuple[int, int], out: int, opts: _Options, fail) -> Conv:
    if min(kernel) <= 0:
        raise fail(None, f"kernel must be positive, got {kernel[0]}x{kernel[1]}")
    dilation = opts.pair("dilation", (1, 1))
    stride = opts.pair("stride", (1, 1))
    groups = opts.integer("groups", 1)
    span = tuple(d * (k - 1) for d, k in zip(dilation, kernel, strict=True))
    pad_text = opts.raw("pad")
    if pad_text is None or pad_text.lower() == "same":
        if pad_text is not None and any(s % 2 for s in span):
            value, tok, offset = opts.values["pad"]
            raise fail(tok, "pad=same needs an odd kernel (the padding would be asymmetric)",
                       offset)
        padding = tuple(s // 2 if s % 2 == 0 else 0 for s in span)
    else:
        padding = opts.pair("pad", (0, 0), minimum=0)
    return Conv(_positive(out, fail), kernel, stride, padding, dilation, groups,
                opts.boolean("bias", True))


def parse(text: str, file: str = "<spec>", overrides: dict[str, int] | None = None) -> Graph:
    """Parse spec text into a Graph; ``overrides`` set ``param`` values."""
    return _Parser(text, file, dict(overrides or {})).parse()


def parse_file(path: str | Path, overrides: dict[str, int] | None = None) -> Graph:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"cannot read spec file {str(path)!r}: {exc}") from None
    return parse(text, str(path), overrides)
