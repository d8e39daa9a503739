"""Spec text -> Graph. Parsing only: shapes and counts are the engine's business.

Grammar (one statement per line, or separated by ``;``; ``#`` starts a comment)::

    model NAME                    name of the architecture
    source TEXT                   citation (rest of the line)
    input HxWxC | LxC | N         input feature map (height x width x channels), sequence
                                  (length x channels: 1-D layers) or vector
    param NAME = EXPR             overridable whole-number parameter
    let NAME = EXPR               derived parameter (not overridable)
    variant NAME K=V ...          a zoo name for this spec with parameters set
    define NAME(P, ..., P=EXPR) { STATEMENTS }        a named block with parameters (P=EXPR:
                                  a default), written once, expanded where it is called
    LAYER [OPTION=VALUE ...] [xN] one layer, repeated N times with ``xN``
    NAME ARG ... [P=ARG ...]      a call of a defined block: its statements with its
                                  parameters set, by position then by name; each ARG is an
                                  expression without spaces (``32``, ``c``, ``${2*c}``)
    repeat EXPR [as NAME] { STATEMENTS }   the statements EXPR times; ``as i`` names the
                                  copy's index, 0 to EXPR-1 (``conv3-${16 * 2**i}``); a
                                  count of 0 skips the body unread (``repeat $aux { }``
                                  includes a part only when aux is 1)
    concat { branch { ... } branch { ... } ... }      parallel branches, channels joined;
                                  an empty ``branch { }`` is the identity (DenseNet)
    add [inplace=BOOL] { branch { ... } branch { ... } ... }      parallel branches summed
                                  elementwise (any join of paths; ``residual`` writes He et
                                  al.'s); inplace: into the first branch's tensor (+=)
    residual [shortcut=identity|A|B|C|D] [bias=BOOL] [bn=BOOL] [stride=N|HxW] { ... }
                                  body(x) + shortcut(x)
    gate { ... }                  x * body(x), the body's output broadcast over x: each of
                                  its dimensions x's or 1 (squeeze-and-excitation:
                                  ``gate { gap; conv1-16; relu; conv1-64; sigmoid }``)
    split { branch { ... } branch { ... } ... }       the channels cut into equal shares,
                                  one per branch (torch.chunk), outputs joined along
                                  channels; ``branch { }`` passes its share (ShuffleNetV2)
    head NAME { ... }             a second output (an auxiliary classifier): the body runs
                                  on x and its result is an output of the model; the main
                                  path goes on from x. Totals are given per head and whole
    keep NAME                     names the current tensor (the output of the statement
                                  before, or the enclosing sequence's input); the path goes
                                  on with it unchanged
    from NAME                     the tensor most recently kept as NAME becomes the current
                                  one, and the path goes on from there

Layers (paper notation, case-insensitive; options as OPTION=VALUE), one entry per kind::

{layers}

Any number may be ``$name`` or ``${expression}`` over the parameters.

On a sequence (``input 16000x1``), a layer with a window slides along its length, as torch's
1-D modules: ``conv3-64`` is Conv1d (kernel 3), ``maxpool4``, ``gap``, ``aap8`` and ``pad l=2
r=0`` (causal padding) pool and pad along it, so one size is written (``conv1x7`` is an
error). Norms, activations, dropout and blocks work per channel as on maps; ``upsample``,
``deconv`` and ``crop`` need a feature map. Receptive fields have one axis.

Residual shortcuts (He et al. 2016): ``identity`` (the default); ``A`` subsamples and pads the
new channels with zeros; ``B`` (``projection``) is a 1x1 conv with the block's stride and a
``bn`` where the body changes the shape, the identity where it does not; ``C`` projects always;
``D`` (ResNet-D, He et al. 2019) average-pools by the stride (ceil mode) and then projects at
stride 1, where the shape changes. The block's stride is the product of its body's strides;
``stride=`` states it instead. ``bias=true`` gives the projection conv a bias (Keras'
ResNet50) and ``bn=false`` leaves out its BN (pre-activation ResNets), so both need B, C or D.

A gate multiplies once per output element (FLOPs under ``full`` only; torchinfo, fvcore and
FlopCounterMode count no elementwise products) and allocates the product. Its receptive
field joins x's with the body's; a body pooled to 1x1 (``gap``) sees the whole map, held as
a field centred on x's that reaches ``(H-1)*stride`` past the map on each side.
ShuffleNetV2's unit: ``split { branch { } branch { conv1-58 bias=false; bn; relu;
conv3-58 g=58 bias=false; bn; conv1-58 bias=false; bn; relu } }`` then ``shuffle g=2``.

Defined blocks (MobileNetV2's inverted residual written once, called 17 times)::

    define ir(cin, cout, s, t=6) {
      conv1-${cin*t} bias=false; bn; relu6
      conv3-${cin*t} s=$s g=${cin*t} bias=false; bn; relu6
      conv1-$cout bias=false; bn
    }
    ir 16 24 2                    # positional; t takes its default 6
    residual { ir 24 24 s=1 }     # by name after the positional ones

A block's body sees the header's parameters and its own, never its caller's names (a loop
index outside it); its parameter defaults may use the header's and earlier parameters. No
name may hide another: a block's parameter cannot reuse a header parameter's name, nor a loop
index a name in force. A block may call other blocks, not itself (directly or through
others). Its body is checked where it is called, and an error in it names the call. Rows of
a call are numbered as a ``repeat`` copy's: the call's statement number, then the body's.
Block names are case-insensitive, and not a word of the language or a layer's name.

Named tensors (``keep`` and ``from``) write joins whose inputs are not on one path of nested
blocks: NASNet's cells read the outputs of the two cells before them, a DenseNet layer every
earlier feature map. A name is a variable, bound in the order the spec runs: ``keep``
(re)binds it, ``from`` reads the tensor kept under it last, and a ``from`` before any ``keep``
of its name is an error. Both may stand anywhere a statement may: in a branch (``add {
branch { from a } branch { from b; conv1-64 } }`` adds two named tensors), in a ``repeat``
and in a defined block, which reads the names its caller kept. Names are letters, digits and
'_' (``$`` substitutes: ``keep f$i``), apart from parameters and block names, and not a
word of the language. They have no parameters, operations or memory of their own: their
rows show where the path jumps (``from p``), and a kept tensor counts as live until its last
``from``. A NASNet-style cell written once::

    define cell(f) {                # reads ip (the last cell's output) and p (the one before)
      from p; relu; conv1-$f bias=false; bn; keep p1
      from ip; relu; conv1-$f bias=false; bn; keep h
      add { branch { from h; conv3-$f g=$f bias=false } branch { from p1 } }
    }
    conv3-32 s=2; keep p; keep ip
    repeat 3 { cell 32; keep x; from ip; keep p; from x; keep ip }

Header lines come before the first layer; ``model``, ``source`` and ``input`` at most once.
Bounds, so that no text can hang the parser: a spec of at most 1,000,000 characters in
lines of at most 10,000, numbers of at most 18 digits, repeat counts up to 10,000, blocks
(calls included) nested up to 50 deep, up to 100,000 statements expanded (each statement,
call, ``xN`` copy and repeat copy counts one: 100,000 layers pass), and 1,000,000
operations in the file's expressions. Lines end at LF, CR LF or CR only, as editors show
them; a UTF-8 byte-order mark is ignored.
"""

from __future__ import annotations

import re
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from archcalc.errors import Loc, SpecError, shorten, suggest
from archcalc.expr import Budget, ExprError, evaluate
from archcalc.kinds import (
    REGISTRY,
    Add,
    Block,
    Concat,
    From,
    Gate,
    Head,
    Keep,
    Kind,
    Residual,
    ShortcutKind,
    Split,
    build_layer,
    layer_names,
)
from archcalc.kinds.base import is_block
from archcalc.layers import Graph, Node, Shape
from archcalc.notation import (
    INPUT_FORMS,
    MAX_CHARS,
    RawOption,
    Token,
    channels_first,
    check_lines,
    check_size,
    flag,
    pair_or_none,
    parse_dims,
    split_lines,
    tokenize,
    tokenize_lines,
    whole,
)
from archcalc.records import Record

__all__ = ["RESERVED_WORDS", "Header", "parse", "parse_dims", "parse_file", "read_header",
           "tokenize"]

_MAX_REPEAT = 10_000
_MAX_DEPTH = 50  # nested blocks; far beyond any real spec, well inside Python's stack
_MAX_WORK = 100_000  # statements parsed (a layer's ``xN`` copies too), repeat copies: bounds
# the time


@dataclass
class _Parser:
    text: str
    file: str
    overrides: dict[str, int]
    tokens: list[Token] = field(default_factory=list)
    more: Iterator[list[Token]] = field(default_factory=lambda: iter(()))
    pos: int = 0
    names: dict[str, int] = field(default_factory=dict)
    overridable: list[str] = field(default_factory=list)
    model: str = ""
    source: str = ""
    input_shape: Shape | None = None
    seen: set[str] = field(default_factory=set)  # header directives given once
    heads: set[str] = field(default_factory=set)  # names of the model's extra outputs
    variants: list[list[Token]] = field(default_factory=list)
    depth: int = 0
    work: int = 0
    lines: list[str] = field(default_factory=list)
    # ``names`` is the scope in force: the header's parameters (``globals``), plus loop
    # indices in a repeat, or a defined block's arguments (and no caller's names) in a call.
    globals: dict[str, int] = field(default_factory=dict)
    defines: dict[str, _Define] = field(default_factory=dict)
    calling: list[str] = field(default_factory=list)  # blocks being expanded, outermost first
    budget: Budget = field(default_factory=Budget)  # operations left to the expressions
    kept: dict[str, None] = field(default_factory=dict)  # tensor names kept so far, in order
    # Bodies of calls parsed once, by everything their parse depends on (see ``expand``).
    calls: dict[tuple[str, tuple[tuple[str, int], ...], tuple[str, ...], int], _Parsed] = (
        field(default_factory=dict))

    def __post_init__(self) -> None:
        check_size(self.file, self.text)
        self.lines = split_lines(self.text.removeprefix("\ufeff"))  # a BOM is no text
        check_lines(self.file, self.lines)
        self.more = tokenize_lines(self.lines)  # tokens are made as the parser reaches them
        self.globals = self.names  # at the top level the scope is the header's

    # -- helpers -------------------------------------------------------------------------
    def loc(self, tok: Token, offset: int = 0) -> Loc:
        line = self.lines[tok.line - 1] if 0 < tok.line <= len(self.lines) else ""
        return Loc(self.file, tok.line, tok.col + offset, line)

    def error(self, tok: Token, message: str, offset: int = 0) -> SpecError:
        return SpecError(message, self.loc(tok, offset))

    def error_at(self, line: int, col: int, message: str) -> SpecError:
        text = self.lines[line - 1] if 0 < line <= len(self.lines) else ""
        return SpecError(message, Loc(self.file, line, col, text))

    def peek(self) -> Token:
        try:
            return self.tokens[self.pos]
        except IndexError:  # lines are tokenized as the parser reaches them
            while self.pos >= len(self.tokens):
                self.tokens.extend(next(self.more))
            return self.tokens[self.pos]

    def next(self) -> Token:
        tok = self.peek()
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
        self.peek()  # its line is tokenized, up to the "nl" that ends it: no more peeks
        tokens, start = self.tokens, self.pos
        while tokens[self.pos].kind == "word":
            self.pos += 1
        return tokens[start:self.pos]

    def end_statement(self) -> None:
        tok = self.peek()
        if tok.kind == "nl":
            self.pos += 1
        elif tok.kind not in ("}", "eof"):
            raise self.error(tok, f"unexpected {tok.text!r}")

    def substitute(self, tok: Token) -> str:
        """Replace ``$name`` and ``${expr}`` in a word by their values."""
        if "$" not in tok.text:
            return tok.text
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
                m = _DOLLAR_NAME.match(text, i + 1)
                if not m:
                    raise self.error(tok, "'$' must be followed by a name or '{expression}'", i)
                expr, end = m.group(), m.end()
            out.append(str(self.eval(tok, expr, i)))
            i = end
        return "".join(out)

    def eval(self, tok: Token, expr: str, offset: int = 0) -> int:
        try:
            return evaluate(expr, self.names, self.budget)
        except ExprError as exc:
            raise self.error(tok, str(exc), offset) from None

    def spend(self, tok: Token, units: int) -> None:
        """Count parsing work, so nested repeats cannot expand without bound."""
        self.work += units
        if self.work > _MAX_WORK:
            raise self.error(tok, f"spec expands to more than {_MAX_WORK} statements and layers")

    def expand(self, prefix: str, opener: Token) -> tuple[list[Node], _Parsed | None]:
        """A body's statements (:meth:`block`), and what repeating it costs, if a repeat
        is exact: the same tokens read under the same names give the same nodes, bar their
        paths, unless the body names a head (a second copy must fail on the name)."""
        work, left, heads = self.work, self.budget.left, len(self.heads)
        nodes = self.block(prefix=prefix, opener=opener)
        if len(self.heads) != heads:
            return nodes, None
        return nodes, _Parsed(nodes, prefix, self.work - work, left - self.budget.left)

    def replay(self, parsed: _Parsed, prefix: str) -> list[Node] | None:
        """``parsed`` again under ``prefix``, its work and operations counted as parsing it
        counts them; None where they would pass a bound, so that parsing it again fails
        at the very statement or expression it would have."""
        if self.work + parsed.work > _MAX_WORK or self.budget.left < parsed.operations:
            return None
        self.work += parsed.work
        self.budget.spend(parsed.operations)
        return _moved(parsed.nodes, len(parsed.prefix), prefix)

    # -- statements ----------------------------------------------------------------------
    def header(self) -> Header:
        """The header's ``model``, ``source`` and ``variant`` lines, parsed as :meth:`parse`
        parses them, up to the first ``define`` or layer (``variant`` lines come before
        both), so the lines below are never tokenized. Parameters are named, not evaluated:
        a variant may set only those."""
        while True:
            self.skip_newlines()
            tok = self.peek()
            word = tok.text.lower()
            if word in ("param", "let", "input"):
                self.pos += 1
                args = self.rest_of_statement()
                if word == "param" and args:
                    self.overridable.append(args[0].text.partition("=")[0])
                continue
            if word == "define" or not self.directive(tok, in_body=False):
                break
        self.check_variants()
        variants = tuple((args[0].text, tuple(
            (key, int(value)) for key, _, value in (tok.text.partition("=") for tok in args[1:])))
            for args in self.variants)
        return Header(self.model, self.source, variants)

    def parse(self) -> Graph:
        body = self.block(prefix="", opener=None)
        self.check_variants()
        for define in self.defines.values():  # also those never called
            self.check_shadowing(define)
        if self.input_shape is None:
            raise SpecError("spec has no 'input' line (e.g. 'input 224x224x3')",
                            Loc(self.file, 1, 1, self.lines[0] if self.lines else ""))
        unknown = sorted(set(self.overrides) - set(self.overridable))
        if unknown:
            known = ", ".join(self.overridable) or "none"
            raise SpecError(f"model {self.model or self.file!r} has no parameter "
                            f"{unknown[0]!r}{suggest(unknown[0], self.overridable)} "
                            f"(parameters: {known})")
        return Graph(
            name=self.model or Path(self.file).stem,
            input_shape=self.input_shape,
            body=tuple(body),
            source=self.source,
            params=tuple((k, self.names[k]) for k in self.overridable),
            file=self.file,
        )

    def block(self, prefix: str, opener: Token | None) -> list[Node]:
        """Statements up to the '}' that closes ``opener`` (consumed), or to end of file."""
        if self.depth > _MAX_DEPTH:  # the file itself is depth 1
            raise self.error(opener or self.peek(), f"blocks nested more than {_MAX_DEPTH} deep")
        self.depth += 1
        nodes = self.statements(prefix, opener)
        self.depth -= 1
        return nodes

    def statements(self, prefix: str, opener: Token | None) -> list[Node]:
        nodes: list[Node] = []
        index = 0
        while True:
            tok = self.peek()
            while tok.kind == "nl":
                self.pos += 1
                tok = self.peek()
            if tok.kind == "eof":
                if opener is not None:
                    raise self.error(opener, "this '{' is never closed")
                return nodes
            if tok.kind == "}":
                if opener is None:
                    raise self.error(tok, "'}' without a matching '{'")
                self.pos += 1
                return nodes
            if tok.kind == "{":
                raise self.error(tok, "'{' must follow 'repeat', 'concat', 'branch', "
                                      "'residual', 'gate', 'split' or 'define'")
            if self.directive(tok, index > 0 or opener is not None):
                continue
            self.spend(tok, 1)
            index += 1
            nodes.extend(self.statement(f"{prefix}{index}"))
            self.end_statement()

    def directive(self, tok: Token, in_body: bool) -> bool:
        word = tok.text.lower()
        if word not in ("model", "source", "input", "param", "let", "variant", "define"):
            return False
        if in_body:
            raise self.error(tok, f"'{word}' belongs in the header, before the first layer")
        if word == "define":
            self.pos += 1
            self.define(tok)
            self.end_statement()
            return True
        if word == "variant" and self.defines:
            raise self.error(tok, "'variant' lines come before the first 'define'")
        if word in ("model", "source", "input"):
            if word in self.seen:
                raise self.error(tok, f"'{word}' is given twice")
            self.seen.add(word)
        self.pos += 1
        args = self.rest_of_statement()
        if word == "source":  # the rest of the line, ';' and braces included, up to a '#'
            while self.peek().line == tok.line and self.peek().text and self.peek().kind != "eof":
                self.pos += 1
            rest = self.lines[tok.line - 1][tok.col + len(tok.text) - 1:]
            self.source = rest.split("#", 1)[0].strip()
        elif not args:
            raise self.error(tok, f"'{word}' needs an argument")
        elif word in ("model", "input") and len(args) > 1:
            raise self.error(args[1], f"'{word}' takes one argument; unexpected {args[1].text!r}")
        elif word == "model":
            self.model = args[0].text
        elif word == "input":
            self.input_shape = self.shape(args[0])
        elif word in ("param", "let"):
            self.assignment(args, overridable=word == "param")
        else:
            self.variants.append(args)
        self.end_statement()
        return True

    def assignment(self, args: list[Token], overridable: bool) -> None:
        """``NAME = EXPRESSION``; a fault in the expression is located in the expression."""
        text = " ".join(a.text for a in args)
        name, eq, expr = text.partition("=")
        name = name.strip()
        if not eq or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) or not expr.strip():
            raise self.error(args[0], "expected NAME = EXPRESSION")
        if name in self.names:
            raise self.error(args[0], f"parameter {name!r} is defined twice")
        if overridable and name in self.overrides:
            self.names[name] = self.overrides[name]
        else:
            at, offset = _after_equals(args)
            self.names[name] = self.eval(at, _plain(expr), offset)
        if overridable:
            self.overridable.append(name)

    def check_variants(self) -> None:
        """Each ``variant NAME K=V ...`` must set declared ``param``s to whole numbers."""
        for args in self.variants:
            for tok in args[1:]:
                key, eq, value = tok.text.partition("=")
                if not eq or not re.fullmatch(r"-?[0-9]{1,18}", value):
                    raise self.error(tok, f"expected PARAM=INTEGER, found {tok.text!r}")
                if key not in self.overridable:
                    known = ", ".join(self.overridable) or "none"
                    raise self.error(tok, f"variant sets {key!r}, which is not a 'param' "
                                          f"(parameters: {known})")

    def shape(self, tok: Token) -> Shape:
        text = self.substitute(tok)
        dims = parse_dims(text)
        if dims is None:
            raise self.error(tok, f"malformed input shape {text!r}: expected {INPUT_FORMS}")
        if any(d <= 0 for d in dims):
            raise self.error(tok, f"input dimensions must be positive, got {text!r}")
        return channels_first(dims)

    # -- defined blocks ------------------------------------------------------------------
    def define(self, tok: Token) -> None:
        """``define NAME(PARAM, PARAM=DEFAULT, ...) { ... }``: the signature is read from the
        source line up to the '{'; the body is skipped here and parsed at each call."""
        words = self.rest_of_statement()
        opener = self.next()
        if opener.kind != "{":
            at = opener if opener.kind != "nl" or not words else words[-1]
            raise self.error(at, "expected 'define NAME(PARAM, ...) { ... }'",
                             len(at.text) if at is not opener else 0)
        start = tok.col + len(tok.text)  # 1-based column after 'define'
        signature = self.lines[tok.line - 1][start - 1:opener.col - 1]
        define = _signature(signature, tok.line, start, self.error_at)
        self.check_name(define)
        define.body_start, define.opener = self.pos, opener
        self.skip_block(opener)
        self.defines[define.name.lower()] = define

    def check_name(self, define: _Define) -> None:
        word, at = define.name.lower(), (define.line, define.col)
        if word in self.defines:
            raise self.error_at(*at, f"block {define.name!r} is defined twice")
        if word in RESERVED_WORDS:
            raise self.error_at(*at, f"{define.name!r} is a word of the language; name the "
                                     "block otherwise")
        if _is_layer(word):
            raise self.error_at(*at, f"{define.name!r} is a layer's name; name the block "
                                     "otherwise")

    def check_shadowing(self, define: _Define) -> None:
        """A block's parameter may not reuse a header parameter's name: inside the body it
        would silently mean something else than everywhere around it."""
        for param in define.params:
            if param.name in self.globals:
                raise self.error_at(param.line, param.col,
                                    f"parameter {param.name!r} of block {define.name!r} has "
                                    "the name of a spec parameter; rename it")

    def skip_block(self, opener: Token) -> None:
        """Move past the '}' matching ``opener``, parsing nothing."""
        depth = 1
        while depth:
            tok = self.next()
            if tok.kind == "eof":
                raise self.error(opener, "this '{' is never closed")
            depth += {"{": 1, "}": -1}.get(tok.kind, 0)

    def call(self, tok: Token, path: str) -> list[Node]:
        """``NAME ARG ... [PARAM=ARG ...]``: the block's body with its parameters bound, in a
        scope of the header's parameters and those alone (no caller's loop index leaks in)."""
        word = tok.text.lower()
        define = self.defines[word]
        if word in self.calling:
            chain = " -> ".join(self.defines[w].name for w in (*self.calling, word))
            raise self.error(tok, f"block {define.name!r} calls itself ({chain}); recursion "
                                  "is not allowed")
        self.check_shadowing(define)
        bound = self.bind(define, tok, self.rest_of_statement())
        # The body reads the header's names and ``bound``; the blocks being expanded and
        # the depth decide whether a call in it recurses or nests too deep.
        key = (word, tuple(bound.items()), tuple(self.calling), self.depth)
        parsed = self.calls.get(key)
        if parsed is not None:
            again = self.replay(parsed, f"{path}.")
            if again is not None:
                return again
        caller_names, resume = self.names, self.pos
        self.names, self.pos = {**self.globals, **bound}, define.body_start
        self.calling.append(word)
        try:
            nodes, parsed = self.expand(f"{path}.", define.opener or tok)
            if parsed is not None:
                self.calls[key] = parsed
            return nodes
        except SpecError as exc:
            if "(in block " in exc.message:  # the innermost call says where it came from
                raise
            raise SpecError(f"{exc.message} (in block {define.name!r} called at "
                            f"{self.loc(tok)})", exc.loc) from None
        finally:
            self.names, self.pos = caller_names, resume
            self.calling.pop()

    def bind(self, define: _Define, tok: Token, args: list[Token]) -> dict[str, int]:
        """Arguments to parameters: positional first, then PARAM=EXPR; each an expression
        over the caller's names; defaults over the header's and the earlier parameters."""
        names = [p.name for p in define.params]
        listed = ", ".join(names) or "none"
        given: dict[str, int] = {}
        keywords = False
        for i, arg in enumerate(args):
            key, eq, expr = arg.text.partition("=")
            if eq and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
                keywords, offset = True, len(key) + 1
                if key not in names:
                    raise self.error(arg, f"block {define.name!r} has no parameter {key!r}"
                                          f"{suggest(key, names)} "
                                          f"(parameters: {listed})")
            elif keywords:
                raise self.error(arg, "a positional argument cannot follow PARAM=VALUE ones")
            elif i >= len(names):
                raise self.error(arg, f"block {define.name!r} takes {len(names)} argument"
                                      f"{'' if len(names) == 1 else 's'} ({listed}), got "
                                      f"{len(args)}")
            else:
                key, expr, offset = names[i], arg.text, 0
            if key in given:
                raise self.error(arg, f"argument {key!r} given twice")
            if not expr:
                raise self.error(arg, f"argument {key!r} has no value", offset)
            given[key] = self.eval(arg, _plain(expr), offset)
        bound: dict[str, int] = {}
        for param in define.params:
            if param.name in given:
                bound[param.name] = given[param.name]
            elif param.default is None:
                raise self.error(tok, f"block {define.name!r} needs a value for "
                                      f"{param.name!r} (parameters: {listed})")
            else:
                bound[param.name] = self.default(param, {**self.globals, **bound})
        return bound

    def default(self, param: _Param, names: dict[str, int]) -> int:
        assert param.default is not None
        try:
            return evaluate(_plain(param.default), names, self.budget)
        except ExprError as exc:
            raise self.error_at(param.line, param.default_col, str(exc)) from None

    def statement(self, path: str) -> list[Node]:
        tok = self.next()
        word = tok.text.lower()
        if word in self.defines:
            return self.call(tok, path)
        if word == "repeat":
            return self.repeat(tok, path)
        if word == "add":
            return [self.add(tok, path)]
        if word == "concat":
            return [self.concat(tok, path)]
        if word == "residual":
            return [self.residual(tok, path)]
        if word == "gate":
            return [self.gate(tok, path)]
        if word == "split":
            return [self.split(tok, path)]
        if word == "head":
            return [self.head(tok, path)]
        if word in ("keep", "from"):
            return [self.named(tok, path)]
        if word == "branch":
            raise self.error(tok, "'branch' is only allowed inside 'concat { ... }' or "
                                  "'split { ... }'")
        return self.layer(tok, path)

    def named(self, tok: Token, path: str) -> Node:
        """``keep NAME`` names the current tensor, ``from NAME`` makes the tensor most
        recently kept under NAME the current one. Names are dynamic, like variables: they
        are checked in the order the spec runs (a defined block reads what its caller
        kept), so a ``from`` needs a ``keep`` of its name somewhere before it."""
        word = tok.text.lower()
        name_tok = self.expect("word", f"a tensor name after '{word}'")
        name = self.substitute(name_tok)
        if not _NAME.fullmatch(name):
            raise self.error(name_tok, f"a tensor name is a name (letters, digits, '_'), "
                                       f"not {shorten(name)!r}")
        if name.lower() in RESERVED_WORDS:
            raise self.error(name_tok, f"{name!r} is a word of the language; name the "
                                       "tensor otherwise")
        extra = self.rest_of_statement()
        if extra:
            raise self.error(extra[0], f"'{word}' takes one name; unexpected "
                                       f"{shorten(extra[0].text)!r}")
        if word == "from" and name not in self.kept:
            raise self.error(name_tok, f"no tensor is kept as {name!r} before this 'from'"
                                       f"{suggest(name, list(self.kept))} (name one with "
                                       f"'keep {name}')")
        if word == "keep":
            self.kept.setdefault(name, None)
        layer: Kind = Keep(name) if word == "keep" else From(name)
        return Node(layer, f"{word} {name}", path, self.loc(tok))

    def repeat(self, tok: Token, path: str) -> list[Node]:
        count_tok = self.expect("word", "a repeat count")
        count = self.count(count_tok)
        index = self.loop_index()
        opener = self.expect("{", "'{' after the repeat count" if index is None else
                             f"'{{' after 'as {index}'")
        if count == 0:  # ``repeat ${flag} { }``: a part included only when flag is 1
            self.skip_body(opener)
            return []
        start, end, nodes, outer = self.pos, self.pos, [], self.names
        parsed: _Parsed | None = None  # the first copy, when the copies are alike (no index)
        try:
            for r in range(count):
                self.spend(opener, 1)
                prefix = f"{path}.{r + 1}."
                again = None if parsed is None else self.replay(parsed, prefix)
                if again is not None:
                    nodes.extend(again)
                    continue
                self.pos = start
                if index is not None:
                    self.names = {**outer, index: r}
                body, found = self.expand(prefix, opener)
                nodes.extend(body)
                end = self.pos
                if index is None and parsed is None:
                    parsed = found
        finally:
            self.names = outer
        self.pos = end
        return nodes

    def skip_body(self, opener: Token) -> None:
        """Past the '}' that closes ``opener``, reading nothing: a zero count's body, like a
        block never called, may hold values that only make sense when it is expanded."""
        depth = 1
        while depth:
            tok = self.next()
            if tok.kind == "eof":
                raise self.error(opener, "this '{' is never closed")
            depth += {"{": 1, "}": -1}.get(tok.kind, 0)

    def loop_index(self) -> str | None:
        """``as NAME`` after a repeat count: the copy's index, 0 to count-1, in the body."""
        tok = self.peek()
        if tok.kind != "word" or tok.text.lower() != "as":
            return None
        self.pos += 1
        name = self.expect("word", "a name after 'as'")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name.text):
            raise self.error(name, f"a loop index is a name (letters, digits, '_'), not "
                                   f"{name.text!r}")
        if name.text in self.names:
            raise self.error(name, f"{name.text!r} is already defined here; name the loop "
                                   "index otherwise")
        return name.text

    def count(self, tok: Token, offset: int = 0) -> int:
        text = self.substitute(tok)[offset:]
        value = whole(text)
        if value is None:
            raise self.error(tok, f"expected a whole number, found {text!r}", offset)
        if value > _MAX_REPEAT:
            raise self.error(tok, f"repeat count {value} is larger than {_MAX_REPEAT}", offset)
        return value

    def concat(self, tok: Token, path: str) -> Node:
        self.no_options("concat")
        return Node(Concat(self.branches(tok, path)), "concat", path, self.loc(tok))

    def split(self, tok: Token, path: str) -> Node:
        self.no_options("split")
        return Node(Split(self.branches(tok, path)), "split", path, self.loc(tok))

    def add(self, tok: Token, path: str) -> Node:
        """``add [inplace=BOOL] { branch { ... } ... }``: ``inplace`` sums into the first
        branch's tensor (torch's ``out += identity``), allocating nothing."""
        inplace = False
        for opt in self.rest_of_statement():
            key, eq, value = self.substitute(opt).partition("=")
            if key.lower() != "inplace" or not eq:
                raise self.error(opt, f"unknown option {key!r} for 'add' (options: inplace)")
            found = flag(value)
            if found is None:
                raise self.error(opt, f"inplace must be true or false, not {value!r}",
                                 len(key) + 1)
            inplace = found
        label = "add inplace=true" if inplace else "add"
        return Node(Add(self.branches(tok, path), inplace), label, path, self.loc(tok))

    def branches(self, tok: Token, path: str) -> tuple[tuple[Node, ...], ...]:
        """``{ branch { ... } branch { ... } ... }`` after ``concat``, ``add`` or ``split``
        and their options."""
        word = tok.text.lower()
        opener = self.expect("{", f"'{{' after '{word}'")
        branches: list[tuple[Node, ...]] = []
        while True:
            self.skip_newlines()
            head = self.next()
            if head.kind == "}":
                break
            if head.kind == "eof":
                raise self.error(opener, "this '{' is never closed")
            if head.kind != "word" or head.text.lower() != "branch":
                raise self.error(head, f"expected 'branch {{ ... }}' or '}}' inside '{word}'")
            brace = self.expect("{", "'{' after 'branch'")
            prefix = f"{path}.b{len(branches) + 1}."
            branches.append(tuple(self.block(prefix=prefix, opener=brace)))
        if len(branches) < 2:
            raise self.error(tok, f"'{word}' needs at least two branches")
        return tuple(branches)

    def no_options(self, word: str) -> None:
        words = self.rest_of_statement()
        if words:
            raise self.error(words[0], f"'{word}' takes no options; unexpected "
                                       f"{words[0].text!r}")

    def head(self, tok: Token, path: str) -> Node:
        """``head NAME { ... }``: a named second output; names are unique in the model."""
        name_tok = self.expect("word", "the head's name after 'head'")
        name = name_tok.text
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", name) or name == "main":
            raise self.error(name_tok, f"a head's name is a word other than 'main' "
                                       f"(letters, digits, _ and -), not {name!r}")
        if name in self.heads:
            raise self.error(name_tok, f"head {name!r} is defined twice")
        self.heads.add(name)
        opener = self.expect("{", "'{' after the head's name")
        body = tuple(self.block(prefix=f"{path}.", opener=opener))
        if not body:
            raise self.error(tok, "'head' needs at least one layer in its body")
        return Node(Head(body, name), f"head {name}", path, self.loc(tok))

    def gate(self, tok: Token, path: str) -> Node:
        self.no_options("gate")
        opener = self.expect("{", "'{' after 'gate'")
        body = tuple(self.block(prefix=f"{path}.", opener=opener))
        if not body:
            raise self.error(tok, "'gate' needs at least one layer in its body")
        return Node(Gate(body), "gate", path, self.loc(tok))

    def residual(self, tok: Token, path: str) -> Node:
        options, written = self.residual_options()
        opener = self.expect("{", "'{' after 'residual'")
        body = tuple(self.block(prefix=f"{path}.", opener=opener))
        if not body:
            raise self.error(tok, "'residual' needs at least one layer in its body")
        label = " ".join(["residual", *written])
        return Node(Residual(body, **options), label, path, self.loc(tok))

    def residual_options(self) -> tuple[dict[str, Any], list[str]]:
        """``shortcut=KIND``, ``bias=BOOL``, ``bn=BOOL`` and ``stride=N|HxW`` of a residual,
        in any order, as Residual's fields, and the label words. ``bias`` and ``bn`` are the
        projection's, so they need a shortcut that projects (B, C or D); ``stride`` needs one
        that is not the identity."""
        given: dict[str, tuple[Token, str, int]] = {}  # option -> token, value, value offset
        for opt in self.rest_of_statement():
            key, _, value = self.substitute(opt).partition("=")
            if key.lower() not in _RESIDUAL_OPTIONS:
                raise self.error(opt, f"unknown option {shorten(key)!r} for 'residual'"
                                      f"{suggest(key, list(_RESIDUAL_OPTIONS))} (options: "
                                      f"{', '.join(_RESIDUAL_OPTIONS)})")
            if key.lower() in given:
                raise self.error(opt, f"option {key.lower()!r} given twice")
            given[key.lower()] = (opt, value, len(key) + 1)
        shortcut: ShortcutKind = "identity"
        if "shortcut" in given:
            opt, value, offset = given["shortcut"]
            kind = _SHORTCUTS.get(value.lower())
            if kind is None:
                raise self.error(opt, f"unknown shortcut {value!r} (identity, A, B, C, D)",
                                 offset)
            shortcut = kind
        options: dict[str, Any] = {"shortcut": shortcut}
        written = [f"shortcut={shortcut}"]
        for key, field_name, default in (("bias", "shortcut_bias", False),
                                         ("bn", "shortcut_bn", True)):
            flag_value = self.residual_flag(given.get(key), key, shortcut)
            if flag_value is not None and flag_value != default:
                options[field_name] = flag_value
                written.append(f"{key}={'true' if flag_value else 'false'}")
        if "stride" in given:
            opt, value, offset = given["stride"]
            stride = pair_or_none(value)
            if stride is None or min(stride) < 1:
                raise self.error(opt, f"stride must be a whole number or HxW, not {value!r}",
                                 offset)
            if shortcut == "identity":
                raise self.error(opt, "stride=... is the shortcut's; the identity has none")
            options["stride"] = stride
            written.append(f"stride={value}")
        return options, written

    def residual_flag(self, found: tuple[Token, str, int] | None, key: str,
                      shortcut: ShortcutKind) -> bool | None:
        """A projection's ``bias`` or ``bn`` option, if given."""
        if found is None:
            return None
        opt, value, offset = found
        result = flag(value)
        if result is None:
            raise self.error(opt, f"{key} must be true or false, not {value!r}", offset)
        if shortcut in ("identity", "A") and result != (key == "bn"):
            raise self.error(opt, f"{key}={value} is the projection's; it needs "
                                  f"shortcut=B, C or D, not {shortcut}")
        return result

    def layer(self, tok: Token, path: str) -> list[Node]:
        head = self.substitute(tok) if "$" in tok.text else tok.text
        if self.defines and not _is_layer(head):  # before its words are read as options
            blocks = [d.name for d in self.defines.values()]
            near = suggest(head, [*blocks, *layer_names()])
            raise self.error(tok, f"unknown layer or block {shorten(head)!r}{near} (blocks: "
                                  f"{', '.join(blocks)}; layers: see 'archcalc spec --help')")
        options: list[tuple[str, str, Token, int]] = []  # RawOptions, made on a cache miss
        pairs: list[tuple[str, str]] = []  # their keys and values: with head, the cache key
        times: int | None = None
        written = [head]
        for opt in self.rest_of_statement():
            text = self.substitute(opt) if "$" in opt.text else opt.text
            if _TIMES.fullmatch(text):
                if times is not None:
                    raise self.error(opt, "repeat count 'xN' given twice")
                times = self.count(opt, 1)
                continue
            key, eq, value = text.partition("=")
            if not eq or not key or not value:
                raise self.error(opt, f"expected OPTION=VALUE, found {text!r}")
            options.append((key.lower(), value, opt, len(key) + 1))
            pairs.append((key.lower(), value))
            written.append(text)
        words = (head, tuple(pairs))
        layer = _LAYERS.get(words)
        if layer is None:
            layer = self.build(tok, head, [RawOption(*o) for o in options])
            if len(_LAYERS) >= _LAYER_CACHE_SIZE:
                _LAYERS.clear()
            _LAYERS[words] = layer
        loc = Loc(self.file, tok.line, tok.col, self.lines[tok.line - 1])  # self.loc(tok)
        label, opts = " ".join(written), tuple(written[1:])
        if times is None or times == 1:
            return [Node(layer, label, path, loc, opts)]
        self.spend(tok, times - 1)  # the statement itself is counted: a layer is one
        return [Node(layer, label, f"{path}.{r + 1}", loc, opts) for r in range(times)]

    def build(self, tok: Token, head: str, options: list[RawOption]) -> Kind:
        """The layer ``head`` with ``options``; its faults located in the statement."""
        exact = head == tok.text  # offsets into the head hold only if nothing was substituted

        def fail(at: Token | None, message: str, offset: int = 0) -> SpecError:
            return self.error(at or tok, message, offset if at or exact else 0)

        return build_layer(head, options, fail)


class Header(Record):
    """What a spec says of itself before its first layer: ``model`` ("" if not given), its
    ``source`` and its ``variant NAME K=V ...`` lines."""

    model: str
    source: str
    variants: tuple[tuple[str, tuple[tuple[str, int], ...]], ...]


@dataclass(frozen=True)
class _Parsed:
    """A body parsed once, to be repeated: its nodes with paths under ``prefix``, and the
    statements (:attr:`_Parser.work`) and expression operations parsing it counted."""

    nodes: list[Node]
    prefix: str
    work: int
    operations: int


def _moved(nodes: list[Node], cut: int, prefix: str) -> list[Node]:
    """Copies of ``nodes`` with ``prefix`` in place of their paths' first ``cut``
    characters, inside blocks too; the layers themselves are shared."""
    names = Node.__record__[0]
    at_path, at_layer = names.index("path"), names.index("layer")
    moved = []
    for node in nodes:
        values = list(map(node.__dict__.__getitem__, names))  # by position: the fast way
        values[at_path] = prefix + node.path[cut:]
        if is_block(node.layer):
            values[at_layer] = _moved_block(node.layer, cut, prefix)
        moved.append(Node(*values))
    return moved


def _moved_block(block: Block, cut: int, prefix: str) -> Block:
    """``block`` with the nodes of its sequences moved (:func:`_moved`)."""
    return type(block)(*[_moved_value(getattr(block, name), cut, prefix)
                         for name in block.__record__[0]])


def _moved_value(value: object, cut: int, prefix: str) -> object:
    """A block's field: a sequence of nodes, or sequences of them (branches), moved; any
    other value as it is."""
    if type(value) is not tuple or not value:
        return value
    if type(value[0]) is Node:
        return tuple(_moved(list(value), cut, prefix))
    if type(value[0]) is tuple:
        return tuple(_moved_value(item, cut, prefix) for item in value)
    return value


@dataclass
class _Param:
    """A defined block's parameter, where it is written, and its default expression."""

    name: str
    line: int
    col: int
    default: str | None = None
    default_col: int = 0


@dataclass
class _Define:
    """``define NAME(PARAMS) { ... }``: the body's tokens start at ``body_start``."""

    name: str
    line: int
    col: int
    params: list[_Param]
    body_start: int = 0
    opener: Token | None = None


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DOLLAR_NAME = re.compile(r"[A-Za-z_]\w*")  # after a '$'
_TIMES = re.compile(r"[xX][0-9]+")  # a layer's repeat count
# The words of the language: no block, parameter or tensor name may be one (importers too).
RESERVED_WORDS = frozenset({
    "model", "source", "input", "param", "let", "variant", "define", "repeat", "as",
    "concat", "add", "branch", "residual", "gate", "split", "keep", "from", "head"})


def _signature(text: str, line: int, col: int, error: Callable[..., SpecError]) -> _Define:
    """Parse ``NAME``, ``NAME()`` or ``NAME(PARAM, PARAM=DEFAULT, ...)``; ``text`` starts at
    column ``col`` of ``line``, so every fault is located in it."""
    i = len(text) - len(text.lstrip())
    m = _NAME.match(text, i)
    if not m:
        raise error(line, col + i, "expected a block name after 'define' (letters, digits, "
                                   "'_')")
    define, i = _Define(m.group(), line, col + i, []), m.end()
    rest = text[i:].strip()
    if not rest:
        return define
    i = text.index(rest[0], i)
    if rest[0] != "(" or not rest.endswith(")"):
        raise error(line, col + i, "expected '(PARAM, ...)' or '{' after the block name")
    inner_start, inner = i + 1, text[i + 1:text.rindex(")")]
    if inner.strip():
        for offset, piece in _split_params(inner):
            define.params.append(_param(piece, line, col + inner_start + offset, define,
                                        error))
    return define


def _split_params(inner: str) -> list[tuple[int, str]]:
    """Comma-separated pieces outside parentheses, each with its offset in ``inner``."""
    pieces, depth, start = [], 0, 0
    for i, ch in enumerate(inner):
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            pieces.append((start, inner[start:i]))
            start = i + 1
    pieces.append((start, inner[start:]))
    return pieces


def _param(piece: str, line: int, col: int, define: _Define,
           error: Callable[..., SpecError]) -> _Param:
    """One ``NAME`` or ``NAME=DEFAULT`` starting at column ``col``."""
    lead = len(piece) - len(piece.lstrip())
    name, eq, default = piece.strip().partition("=")
    name = name.strip()
    if not _NAME.fullmatch(name):
        raise error(line, col + lead, f"expected a parameter name, found {piece.strip()!r}")
    if any(p.name == name for p in define.params):
        raise error(line, col + lead, f"parameter {name!r} is listed twice")
    if not eq:
        return _Param(name, line, col + lead)
    expr = default.strip()
    if not expr:
        raise error(line, col + lead, f"parameter {name!r} has '=' but no default")
    return _Param(name, line, col + lead, expr, col + piece.index("=") + 1 +
                  (len(default) - len(default.lstrip())))


_SHORTCUTS: dict[str, ShortcutKind] = {"identity": "identity", "a": "A", "zeropad": "A",
                                        "b": "B", "projection": "B", "c": "C", "d": "D"}
_RESIDUAL_OPTIONS = ("bias", "bn", "shortcut", "stride")

# A layer depends only on its words, and layers are immutable: repeated blocks (every
# ResNet stage) and repeated parses share them instead of rebuilding them.
_LAYERS: dict[tuple[str, tuple[tuple[str, str], ...]], Kind] = {}
_LAYER_CACHE_SIZE = 4096


def _is_layer(head: str) -> bool:
    """Whether some layer kind's notation matches ``head`` (its options aside)."""
    found = _HEADS.get(head)
    if found is None:
        found = any(cls.notation is not None and cls.notation.match(head)
                    for cls in REGISTRY.values())
        if len(_HEADS) >= _LAYER_CACHE_SIZE:
            _HEADS.clear()
        _HEADS[head] = found
    return found


_HEADS: dict[str, bool] = {}


def _after_equals(args: list[Token]) -> tuple[Token, int]:
    """The token and offset where the expression of ``NAME = EXPRESSION`` begins."""
    for i, tok in enumerate(args):
        if "=" in tok.text:
            start = tok.text.index("=") + 1
            return (tok, start) if start < len(tok.text) else (args[i + 1], 0)
    raise AssertionError("assignment() checked for '='")


def _plain(expr: str) -> str:
    """``${a + 1} * $b`` -> ``(a + 1) * b``: parameters need no '$' inside an expression."""
    return re.sub(r"\$\{([^}]*)\}", r"(\1)", expr).replace("$", "")


def parse(text: str, file: str = "<spec>", overrides: dict[str, int] | None = None) -> Graph:
    """Parse spec text into a Graph; ``overrides`` set ``param`` values."""
    return _Parser(text, file, dict(overrides or {})).parse()


def parse_file(path: str | Path, overrides: dict[str, int] | None = None) -> Graph:
    return parse(_read(Path(path)), str(path), overrides)


def read_header(path: str | Path) -> Header:
    """A spec file's header (:class:`Header`), read as the parser reads it; listing the zoo
    reads every file's, so the layers below are not parsed."""
    return _Parser(_read(Path(path)), str(path), {}).header()


def _read(path: Path) -> str:
    """A spec file's text, if it is a regular file of at most MAX_CHARS bytes in UTF-8 (a
    byte-order mark is allowed): a FIFO or device is never opened, a large file never read."""
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise SpecError(f"cannot read spec file {str(path)!r}: it is "
                            f"{_file_kind(info.st_mode)}, not a regular file")
        if info.st_size > MAX_CHARS:
            raise SpecError(f"spec file {str(path)!r} is {info.st_size:,} bytes long; at most "
                            f"{MAX_CHARS:,} are allowed")
        with path.open("rb") as f:
            data = f.read(MAX_CHARS + 1)
        return data.decode("utf-8").removeprefix("\ufeff")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"cannot read spec file {str(path)!r}: {exc}") from None


def _file_kind(mode: int) -> str:
    """What a path that is not a regular file is, in words."""
    for test, kind in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device")):
        if test(mode):
            return kind
    return "not a regular file"


def _with_layers(doc: str) -> str:
    """The grammar with one line per registered layer kind (the registry is its source)."""
    import textwrap

    from archcalc.kinds import grammar

    lines = (textwrap.fill(entry, 88, initial_indent="    ", subsequent_indent="        ")
             for entry in grammar())
    return doc.replace("{layers}", "\n".join(lines))


__doc__ = _with_layers(__doc__ or "")
