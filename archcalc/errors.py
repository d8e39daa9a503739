"""Errors a user can cause. Only the CLI turns them into messages and exit codes."""

from __future__ import annotations

from archcalc.records import Record


class Loc(Record):
    """Where something was written: file, 1-based line and column, and that line's text."""

    file: str
    line: int
    col: int
    text: str = ""

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"

    def caret(self) -> str:
        """The source line with a caret under the column, for error messages."""
        if not self.text:
            return ""
        before = self.text[: self.col - 1].ljust(self.col - 1)
        indent = "".join(ch if ch == "\t" else " " for ch in before)  # tabs keep their width
        return f"  {self.text}\n  {indent}^"


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
            f"unknown model {name!r}: not a spec file and not in the zoo "
            f"(known: {', '.join(known)})"
        )


class UsageError(ArchcalcError):
    """A malformed command-line value (input shape, convention, dtype...)."""


class VerifyUnavailable(ArchcalcError):
    """The verify extra (torch, torchinfo, fvcore) is not installed."""
