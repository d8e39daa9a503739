"""Ctrl-C during a run: the first stops it at its next checkpoint, the second at once."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from trainers.store.runs import Run


@contextlib.contextmanager
def interrupt_guard(run: Run, warn: Any) -> Iterator[None]:
    """Ctrl-C once: stop at the next checkpoint (``warn`` gets a message); twice: stop now."""
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum: int, frame: Any) -> None:
        if run.stop_requested or not run.request_stop():
            raise KeyboardInterrupt
        warn("Ctrl-C: stopping after the next checkpoint; press Ctrl-C again to stop now")

    signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
