"""The words of a spec: tokens, whole numbers, and one layer's paper notation with its
options. ``archcalc.spec`` builds statements and blocks from these; the grammar is in its
docstring. Numbers are ASCII digits, at most 18 of them, so no word can make ``int()`` fail
or a count explode. Lines are what editors show (ended by LF, CR LF or CR
only), and a spec's size and its lines' lengths are bounded before any is tokenized.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import NamedTuple, Protocol

from archcalc.errors import Loc, SpecError, shorten, suggest
from archcalc.records import Record

Pair = tuple[int, int]

_WHOLE = re.compile(r"[0-9]{1,18}")  # ASCII only: str.isdigit() also accepts '²'
MAX_CHARS = 1_000_000  # of a spec; the zoo's largest is under 10,000
MAX_LINE = 10_000  # characters of one line
_BREAK = re.compile(r"\r\n|\r|\n")
_DIMS = re.compile(r"[x*×,]")  # between the numbers of 224x224x3 or 1x7


def split_lines(text: str) -> list[str]:
    """The lines an editor shows, ended by LF, CR LF or CR: ``str.splitlines`` also breaks
    at form feeds, FS, GS, RS, NEL and U+2028, which would move every later error and could
    end a comment early."""
    lines = _BREAK.split(text)
    if lines[-1] == "":  # a final line break ends the last line; it starts none
        lines.pop()
    return lines


def check_size(file: str, text: str) -> None:
    """A spec longer than MAX_CHARS is refused before it is split into lines."""
    if len(text) > MAX_CHARS:
        raise SpecError(f"spec is {len(text):,} characters long; at most {MAX_CHARS:,} are "
                        "allowed", Loc(file, 1, 1))


def check_lines(file: str, lines: list[str]) -> None:
    """A line longer than MAX_LINE is refused before it is tokenized."""
    if lines and max(map(len, lines)) > MAX_LINE:
        number = next(i for i, line in enumerate(lines, start=1) if len(line) > MAX_LINE)
        raise SpecError(f"line is {len(lines[number - 1]):,} characters long; at most "
                        f"{MAX_LINE:,} are allowed", Loc(file, number, MAX_LINE + 1,
                                                          lines[number - 1]))


class Token(NamedTuple):
    """A word, brace or statement end, where it was written (1-based line and column).

    A named tuple, not a dataclass: a spec has thousands of tokens and this is the hot path.
    """

    kind: str  # "word", "{", "}", "nl", "eof"
    text: str
    line: int
    col: int


# White space, then a comment, a brace, a ';' or a word, whose first character tells which;
# nothing else can follow white space, so the columns add up. A word keeps ``${...}`` whole
# (up to its '}' or the line end).
_TOKEN = re.compile(r"(\s*)(#.*|[{};]|(?:[^\s{};#$]+|\$\{[^}]*\}?|\$(?!\{))+)")


def tokenize(text: str) -> list[Token]:
    """Split into words, braces and statement ends; ``${...}`` stays inside its word."""
    return [tok for line in tokenize_lines(split_lines(text)) for tok in line]


def tokenize_lines(lines: list[str]) -> Iterator[list[Token]]:
    """The tokens of each line in turn, then the end of file: a reader of the header reads
    only the lines it needs. A blank or comment line has none (most of a zoo file's
    header): it ends no statement, and the parser would only skip its line end."""
    new = tuple.__new__  # a Token without a Python frame: a spec has thousands
    for lineno, line in enumerate(lines, start=1):
        if line.lstrip()[:1] in ("", "#"):
            yield []
            continue
        end = new(Token, ("nl", "", lineno, len(line) + 1))
        tokens: list[Token] = []
        append, col = tokens.append, 1
        for space, text in _TOKEN.findall(line):
            col += len(space)
            first = text[0]
            if first == "#":
                break
            if first == ";":
                append(new(Token, ("nl", ";", lineno, col)))
            elif first in "{}":
                append(new(Token, (text, text, lineno, col)))
            else:
                append(new(Token, ("word", text, lineno, col)))
            col += len(text)
        append(end)
        yield tokens
    yield [new(Token, ("eof", "", len(lines) + 1, 1))]


def whole(text: str) -> int | None:
    """``text`` as a whole number, if it is one of at most 18 ASCII digits."""
    text = text.strip()
    return int(text) if _WHOLE.fullmatch(text) else None


_FLAGS = {"true": True, "on": True, "yes": True, "1": True,
          "false": False, "off": False, "no": False, "0": False}


def flag(text: str) -> bool | None:
    """``true``/``on``/``yes``/``1`` or their opposites, any case; None for anything else.
    0 and 1 count, so a flag can be a parameter (``bias=${bias}``)."""
    return _FLAGS.get(text.lower())


def parse_dims(text: str) -> tuple[int, ...] | None:
    """``224x224x3`` -> (224, 224, 3); ``16000x1`` -> (16000, 1); ``3072`` -> (3072,);
    anything else -> None."""
    parts = [whole(p) for p in _DIMS.split(text.strip().lower())]
    if len(parts) not in (1, 2, 3) or None in parts:
        return None
    return tuple(parts)  # type: ignore[arg-type]


INPUT_FORMS = "HxWxC (an image), LxC (a sequence of L steps) or N (a vector)"


def channels_first(dims: tuple[int, ...]) -> tuple[int, ...]:
    """Dimensions as written, channels last as in papers and Keras (``HxWxC``, ``LxC``),
    to the (C, H, W) / (C, L) / (N,) order of torch and of every rule."""
    return dims if len(dims) == 1 else (dims[-1], *dims[:-1])


class Fail(Protocol):
    """Makes a located error: at ``tok`` (None: the layer's name) plus ``offset`` columns."""

    def __call__(self, tok: Token | None, message: str, offset: int = 0, /) -> SpecError: ...


class RawOption(Record):
    """One OPTION=VALUE as written; ``offset`` is where the value starts in ``tok``."""

    key: str
    value: str
    tok: Token
    offset: int


class Options:
    """Typed access to a layer's OPTION=VALUE pairs, with errors pointing at the value;
    ``allowed`` maps each accepted spelling to the option's name (``s`` -> ``stride``)."""

    def __init__(self, kind: str, allowed: dict[str, str], raw: list[RawOption],
                 fail: Fail) -> None:
        self.values: dict[str, RawOption] = {}
        self.fail = fail
        for opt in raw:
            if opt.key not in allowed:
                names = ", ".join(sorted(allowed)) or "none"
                raise fail(opt.tok, f"unknown option {shorten(opt.key)!r} for {kind}"
                                    f"{suggest(opt.key, sorted(allowed))} (options: {names})")
            name = allowed[opt.key]
            if name in self.values:  # also 's=2 stride=2': aliases name one option
                raise fail(opt.tok, f"option {name!r} given twice")
            self.values[name] = opt

    def pair(self, name: str, default: Pair, minimum: int = 1) -> Pair:
        opt = self.values.get(name)
        if opt is None:
            return default
        dims = pair_or_none(opt.value)
        if dims is None:
            raise self.fail(opt.tok, f"{name} must be a whole number or HxW, not "
                                     f"{shorten(opt.value)!r}", opt.offset)
        if min(dims) < minimum:
            raise self.fail(opt.tok, f"{name} must be at least {minimum}, not "
                                     f"{shorten(opt.value)!r}", opt.offset)
        return dims

    def raw(self, name: str) -> str | None:
        opt = self.values.get(name)
        return opt.value if opt else None

    def integer(self, name: str, default: int, minimum: int = 1) -> int:
        opt = self.values.get(name)
        if opt is None:
            return default
        value = whole(opt.value)
        if value is None or value < minimum:
            raise self.fail(opt.tok, f"{name} must be a whole number of at least {minimum}, "
                                     f"not {shorten(opt.value)!r}", opt.offset)
        return value

    def boolean(self, name: str, default: bool) -> bool:
        opt = self.values.get(name)
        if opt is None:
            return default
        value = flag(opt.value)
        if value is None:
            raise self.fail(opt.tok, f"{name} must be true or false, not {shorten(opt.value)!r}",
                            opt.offset)
        return value

    def number(self, name: str, default: float, low: float, high: float) -> float:
        opt = self.values.get(name)
        if opt is None:
            return default
        try:
            number = float(opt.value)
        except ValueError:
            number = float("nan")
        if not low <= number <= high:  # also rejects nan
            raise self.fail(opt.tok, f"{name} must be a number in [{low}, {high}], "
                                     f"not {shorten(opt.value)!r}", opt.offset)
        return number


def pair_or_none(text: str) -> Pair | None:
    """``3`` -> (3, 3); ``1x7`` -> (1, 7); anything else -> None."""
    parts = [whole(p) for p in _DIMS.split(text.strip().lower())]
    if len(parts) not in (1, 2) or None in parts:
        return None
    return (parts[0], parts[-1])  # type: ignore[return-value]


def sizes(m: re.Match[str], group: int, fail: Fail, what: str) -> Pair:
    """A kernel or width written in the layer's name; the caret goes under the number."""
    dims = pair_or_none(m.group(group))
    if dims is None or min(dims) < 1:
        raise fail(None, f"{what} must be a positive whole number below 10^18, "
                         f"not {shorten(m.group(group))!r}", m.start(group))
    return dims
