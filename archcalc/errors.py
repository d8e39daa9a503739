"""Errors a user can cause. Only the CLI turns them into messages and exit codes."""

from __future__ import annotations

from archcalc.records import Record

SHOWN = 100  # characters of a user's text an error message repeats


def shorten(text: str, limit: int = SHOWN) -> str:
    """``text`` as an error message repeats it: its start, if it is longer than ``limit``."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} characters)"


def suggest(word: str, known: list[str]) -> str:
    """``; did you mean 'vgg19'?`` for the nearest of ``known``, or "" if none is near."""
    from difflib import get_close_matches  # only when a name is wrong

    by_case = {name.lower(): name for name in known}  # compared in any case, shown as known
    close = get_close_matches(word.lower(), list(by_case), n=1)
    return f"; did you mean {by_case[close[0]]!r}?" if close else ""


class Loc(Record):
    """Where something was written: file, 1-based line and column, and that line's text."""

    file: str
    line: int
    col: int
    text: str = ""

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"

    def caret(self) -> str:
        """The source line with a caret under the column, for error messages; of a long
        line, only the part around the column, its cuts marked with '...'."""
        if not self.text:
            return ""
        text, col = self.text, self.col
        if len(text) > 2 * SHOWN:
            start = max(0, min(col - 1 - SHOWN // 2, len(text) - SHOWN))
            head, tail = ("..." if start else ""), ("..." if start + SHOWN < len(text) else "")
            text, col = head + text[start:start + SHOWN] + tail, col - start + len(head)
        text = "".join(ch if ch.isprintable() or ch == "\t" else "?" for ch in text)  # one line
        before = text[: col - 1].ljust(col - 1)
        indent = "".join(ch if ch == "\t" else " " for ch in before)  # tabs keep their width
        return f"  {text}\n  {indent}^"


class ArchcalcError(Exception):
    """Base of every user mistake archcalc reports; never a bug."""


class SpecError(ArchcalcError):
    """A fault in a spec, located at file:line:col."""

    def __init__(self, message: str, loc: Loc | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.loc = loc

    def __str__(self) -> str:
        if self.loc is None:
            return self.message
        return f"{self.loc}: {self.message}"

    def render(self) -> str:
        """One error line plus the offending source line and a caret under the fault."""
        caret = self.loc.caret() if self.loc else ""
        return f"{self}\n{caret}" if caret else str(self)


class UnknownModelError(ArchcalcError):
    """A model name that is neither in the zoo nor a spec file."""

    def __init__(self, name: str, known: list[str]) -> None:
        self.name = name
        self.known = known
        super().__init__(
            f"unknown model {shorten(name)!r}: not a spec file and not in the zoo"
            f"{suggest(name, known)} (known: {', '.join(known)})"
        )


class NoNotation(ArchcalcError, ValueError):
    """A layer the spec language cannot write (``archcalc to-spec`` of an imported model)."""


class UsageError(ArchcalcError):
    """A malformed command-line value (input shape, convention, dtype...)."""


class VerifyUnavailable(ArchcalcError):
    """The verify extra (torch, torchinfo, fvcore) is not installed."""
