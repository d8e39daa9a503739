"""The live progress display every plugin talks through (``ctx.progress``); no plugin prints.

On a terminal: nested progress bars (runs, epochs, steps) with ETA and throughput, a live
line of the latest metrics under them, and results tables printed above. Elsewhere (CI,
pipes): the same events as plain log lines, no animation. Every logged metric also goes to
the run's metrics.jsonl through ``sink``. Rich's Progress keeps the task arithmetic (speed,
ETA) in both modes; only the live display is switched by ``console.is_terminal``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, TypeVar

from rich.console import Console, RenderableType
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.progress import Progress as RichProgress
from rich.table import Table
from rich.text import Text

T = TypeVar("T")
PLAIN_EVERY_S = 30.0  # off a terminal: a position line at least this often in a long loop
Sink = Callable[[Mapping[str, Any]], None]


def fmt(value: Any) -> str:
    """A metric as a person reads it: 4 significant digits for floats, and large ones in
    full with thousands separators (33,540, never 3.354e+04)."""
    if not isinstance(value, float):
        return str(value)
    return f"{value:,.0f}" if 1e4 <= abs(value) < 1e15 else f"{value:.4g}"


def plain_value(value: Any) -> Any:
    """A metric value JSON can hold: tensors and numpy scalars become Python numbers."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if hasattr(value, "item"):
        return value.item()
    return float(value)


def make_table(title: str, rows: Sequence[Mapping[str, Any]]) -> Table:
    """A results table: one column per key (in first-seen order), floats to 4 digits.

    On a narrow terminal no cell is cut with an ellipsis: cells fold onto more lines, and
    the first column (what names the row: a job, a method) keeps its full width, since
    ``strong-n1-…`` and ``strong-n1-…`` would name two jobs alike."""
    columns: dict[str, None] = {}
    for row in rows:
        columns.update(dict.fromkeys(row))
    table = Table(title=title, min_width=len(title) + 4)  # the title never wraps
    for i, name in enumerate(columns):
        names_rows = i == 0 and _is_text(rows, name)
        widest = max((len(fmt(r.get(name, ""))) for r in rows), default=0)
        table.add_column(name, justify="left" if _is_text(rows, name) else "right",
                         overflow="fold", no_wrap=names_rows,
                         min_width=min(widest, 40) if names_rows else None)
    for row in rows:
        table.add_row(*(fmt(row.get(name, "")) for name in columns))
    return table


def _is_text(rows: Sequence[Mapping[str, Any]], name: str) -> bool:
    return any(isinstance(r.get(name), str) for r in rows)


class RateColumn(ProgressColumn):
    """Throughput in the bar's own unit (``img/s``, ``epoch/s``)."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        unit = task.fields.get("unit", "step")
        return Text("" if speed is None else f"{speed:,.1f} {unit}/s", style="progress.data.speed")


class _LiveProgress(RichProgress):
    """Progress bars plus one line of the latest metrics under them."""

    def __init__(self, *columns: ProgressColumn | str, line: Callable[[], Text],
                 console: Console, get_time: Callable[[], float]) -> None:
        self._line = line  # before super(): Live renders once while it is being made
        super().__init__(*columns, console=console, auto_refresh=True, transient=False,
                         get_time=get_time)

    def get_renderables(self) -> Iterable[RenderableType]:
        yield self.make_tasks_table(self.tasks)
        yield self._line()


class Bar:
    """One progress bar; ``advance`` it, leave the ``with`` block to close it."""

    def __init__(self, owner: Progress, task: TaskID, depth: int, part: bool = True) -> None:
        self.owner, self.task, self.depth, self.part = owner, task, depth, part
        self.has_children = False  # a leaf (steps) bar closes without a plain log line
        self.skipped = 0.0  # done before this process (a resumed run): not in the pace

    def advance(self, n: float = 1) -> None:
        self.owner._progress.advance(self.task, n)
        self.owner._tick()

    def advance_to(self, completed: float) -> None:
        """Move to ``completed`` (a count reported from elsewhere, e.g. a worker process);
        called as it polls, so off a terminal a job that has not reported a step yet (a
        worker still starting) still shows its position every ``plain_every`` seconds."""
        now = self.owner._task(self.task).completed
        if completed > now:
            self.advance(completed - now)
        else:
            self.owner._tick()

    def skip(self, n: float) -> None:
        """Count ``n`` items a resumed run finished before, leaving them out of the ETA."""
        self.skipped += n
        self.owner._progress.advance(self.task, n)

    def __enter__(self) -> Bar:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.owner._close(self)


class Progress:
    """Progress, metrics, notes and tables for one run; a context manager around ``run``."""

    def __init__(self, console: Console | None = None, sink: Sink | None = None,
                 plain_every: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.console = console or Console()
        self.plain_every = PLAIN_EVERY_S if plain_every is None else plain_every
        self.clock = clock
        self._last_print = clock()
        self.live = self.console.is_terminal
        self.sink = sink
        self.stand_in = ""
        self.latest: dict[str, Any] = {}
        self.warnings: list[str] = []
        self._latest_text: str | None = None
        self._bars: list[Bar] = []
        self._start = clock()
        self._progress = _LiveProgress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), RateColumn(),
            line=self._metrics_line, console=self.console, get_time=clock)

    def __enter__(self) -> Progress:
        if self.live:
            self._progress.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.live:
            self._progress.stop()

    # -- progress ------------------------------------------------------------------------
    def bar(self, description: str, total: float | None = None, unit: str = "step",
            *, part: bool = True) -> Bar:
        """A progress bar nested under the bars still open (runs > epochs > steps).

        ``part``: each item of the bar above is made of this bar's items, so the whole
        run's ETA counts them; False for a second measure of the same work (networks
        beside their epochs), shown but left out of the ETA."""
        depth = len(self._bars)
        if self._bars:
            self._bars[-1].has_children = True
        task = self._progress.add_task("  " * depth + description, total=total, unit=unit)
        bar = Bar(self, task, depth, part)
        self._bars.append(bar)
        return bar

    def track(self, items: Iterable[T], description: str, total: float | None = None,
              unit: str = "step") -> Iterator[T]:
        """Iterate ``items`` under a bar that advances once per item."""
        if total is None and hasattr(items, "__len__"):
            total = len(items)  # type: ignore[arg-type]
        with self.bar(description, total, unit) as bar:
            for item in items:
                yield item
                bar.advance()

    def _close(self, bar: Bar) -> None:
        if bar in self._bars:
            self._bars.remove(bar)
        task = self._task(bar.task)
        if not self.live and (bar.depth == 0 or bar.has_children):
            self._print(self._done_line(task))
        if bar.depth > 0:
            self._progress.remove_task(bar.task)
        else:
            self._progress.stop_task(bar.task)

    def _tick(self) -> None:
        """Off a terminal, a position line when nothing was printed for ``plain_every``
        seconds, so a long epoch or job is not silent (and a log stays sparse)."""
        if self.live or self.clock() - self._last_print < self.plain_every:
            return
        self._print(self._position().rstrip())

    def run_eta(self) -> float | None:
        """Seconds left in the whole run: the outermost bar's fraction done, inner bars'
        fractions included, at this process's pace so far (None until there is a pace)."""
        if not self._bars:
            return None
        outer = self._task(self._bars[0].task)
        if not outer.total or outer.elapsed is None or outer.elapsed <= 0:
            return None
        done = 0.0
        for bar in reversed(self._bars):  # innermost first: a fraction of its parent's item
            if not bar.part and bar is not self._bars[0]:
                continue
            task = self._task(bar.task)
            if not task.total:
                return None
            done = (task.completed + min(done, 1.0)) / task.total
        fresh = done - self._bars[0].skipped / outer.total
        if fresh <= 0:
            return None
        return max(outer.elapsed * (1 - done) / fresh, 0.0)

    def _task(self, task_id: TaskID) -> Task:
        return next(t for t in self._progress.tasks if t.id == task_id)

    def _done_line(self, task: Task) -> str:
        unit = task.fields.get("unit", "step")
        total = f"/{task.total:g}" if task.total is not None else ""
        elapsed = task.finished_time or task.elapsed or 0.0
        rate = f", {task.completed / elapsed:,.1f} {unit}/s" if elapsed > 0 else ""
        return f"{task.description.strip()}: {task.completed:g}{total} {unit} " \
               f"in {elapsed:.1f}s{rate}"

    # -- metrics and messages ------------------------------------------------------------
    def log(self, values: Mapping[str, Any], *, show: bool = True,
            text: str | None = None) -> None:
        """Record metrics (appended to metrics.jsonl); ``show`` puts them on screen too, as
        ``text`` when given (the few numbers that matter, said plainly), else as key=value
        pairs."""
        record = {k: plain_value(v) for k, v in values.items()}
        record["time_s"] = round(self.clock() - self._start, 3)
        if self.sink is not None:
            self.sink(record)
        self.latest.update((k, v) for k, v in record.items() if k != "time_s")
        self._latest_text = text
        if show and not self.live:
            self._print(self._position() + (text or _pairs(record)))

    def _position(self) -> str:
        shown = self._bars
        if not shown:
            return self._tag()
        parts = []
        for bar in shown:
            task = self._task(bar.task)
            total = f"/{task.total:g}" if task.total is not None else ""
            parts.append(f"{task.description.strip()} {task.completed:g}{total}")
        eta = self.run_eta()
        suffix = f" | run ETA {eta_text(eta)}" if eta is not None else ""
        return f"{self._tag()}[{' | '.join(parts)}{suffix}] "

    def _tag(self) -> str:
        return "[stand-in data] " if self.stand_in else ""

    def _metrics_line(self) -> Text:
        if not self.latest:
            return Text("")
        eta = self.run_eta()
        run = f"run ETA {eta_text(eta)}  " if eta is not None else ""
        return Text(self._tag() + run + (self._latest_text or _pairs(self.latest)),
                    style="dim")

    def note(self, message: str) -> None:
        """A message for the person watching (above the bars on a terminal)."""
        self._print(message)

    def warn(self, message: str) -> None:
        """A result that would mislead (a diverged training, a reduced protocol): printed,
        and kept in :attr:`warnings` for the run record (results.json's ``warnings``)."""
        if message not in self.warnings:
            self.warnings.append(message)
            self._print(f"WARNING: {message}")

    def set_stand_in(self, why: str) -> None:
        """Mark everything printed from now on as coming from stand-in data."""
        self.stand_in = why
        self.note(f"STAND-IN DATA: {why}. Numbers printed for this run are not real results.")

    def table(self, title: str, rows: Sequence[Mapping[str, Any]]) -> None:
        """The final results table."""
        if self.stand_in:
            title += " (stand-in data)"
        self.console.print(make_table(title, rows))

    def _print(self, text: str) -> None:
        self._last_print = self.clock()
        self.console.print(text, markup=False, highlight=False, soft_wrap=True)


def eta_text(seconds: float) -> str:
    """A time left as people read it: 45s, 12m05s, 3h07m, 2d04h."""
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def _pairs(values: Mapping[str, Any]) -> str:
    return " ".join(f"{k}={fmt(v)}" for k, v in values.items() if k != "time_s")
