"""metrics.jsonl's two other views, in the formats people already read: ``metrics.csv`` (a
spreadsheet) and TensorBoard event files under ``tensorboard/`` (``tensorboard --logdir
runs/`` shows every plugin's curves). The store writes them beside every metric line, so no
plugin does anything for them.

metrics.jsonl stays the one record: both views are rebuilt from it whenever a process starts
writing a run (so a resume that cut metrics.jsonl back to its checkpoint cuts them too, and a
crash between a line and its row is repaired), then appended to line by line.

How a record maps to TensorBoard: a record with an integer ``epoch`` is a point of a curve
at that step; its text, boolean and integer fields name the curve (``variant=l2 method=adam``
becomes the TensorBoard run ``l2-adam``, ``M=4`` the run ``M-4``) and its floats are the
scalars. One with an integer ``step`` as well (a point inside an epoch) is placed at its
index within its curve instead, so the axis still only goes forward. A record without
``epoch`` (one per trained network or job) is point N of the run's own curves, N counting
such records, with every number as a scalar. ``time_s`` (seconds since
the process started) is left out: it restarts on a resume.

The event files are written with tensorboard's own record writer and protocol buffers, not
its EventFileWriter or torch's SummaryWriter: those reach ``tensorboard.compat.tf``, which
imports TensorFlow when it is installed (28 s measured here) just to open a file. Without
tensorboard installed (a third-party plugin's run; the built-in ones need it, see
trainers.registry.EXTRAS) only metrics.csv is written.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import os
import re
import shutil
import socket
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import IO, Any

from trainers.store.files import atomic_write

CSV = "metrics.csv"
TENSORBOARD = "tensorboard"
STEP = "epoch"
SUBSTEP = "step"
SKIPPED = frozenset({"time_s", SUBSTEP})


def read_records(path: Path) -> list[dict[str, Any]]:
    """The records of a metrics.jsonl (a torn last line or a non-object line is skipped)."""
    if not path.is_file():
        return []
    records = []
    for line in path.read_bytes().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def has_step(record: Mapping[str, Any]) -> bool:
    step = record.get(STEP)
    return isinstance(step, int) and not isinstance(step, bool)


def series_name(record: Mapping[str, Any]) -> str:
    """The TensorBoard run of an epoch record: its labels, as a folder name ('' for none)."""
    labels = [f"{k}-{v}" if _number(v) else str(v) for k, v in record.items()
              if k != STEP and k not in SKIPPED and not isinstance(v, float)
              and isinstance(v, str | bool | int)]
    return re.sub(r"[^A-Za-z0-9_.=+-]+", "_", "-".join(labels)).strip("._") or ""


def scalars(record: Mapping[str, Any]) -> dict[str, float]:
    """The values TensorBoard plots: the floats of an epoch record, every number of another
    (NaN and infinities kept: TensorBoard shows them as such)."""
    keep = (lambda v: isinstance(v, float)) if has_step(record) else _number
    return {k: float(v) for k, v in record.items() if k not in SKIPPED and keep(v)}


class EventFile:
    """One TensorBoard event file (``events.out.tfevents.*``) of one TensorBoard run."""

    def __init__(self, folder: Path) -> None:
        from tensorboard.summary.writer.record_writer import RecordWriter

        folder.mkdir(parents=True, exist_ok=True)
        name = f"events.out.tfevents.{int(time.time()):010d}.{socket.gethostname()}." \
               f"{os.getpid()}.{len(list(folder.glob('events.out.tfevents.*')))}"
        self._fh: IO[bytes] = open(folder / name, "ab")  # noqa: SIM115 (closed by close())
        self._records = RecordWriter(self._fh)
        self._write(file_version="brain.Event:2")

    def _write(self, **fields: Any) -> None:
        from tensorboard.compat.proto.event_pb2 import Event

        self._records.write(Event(wall_time=time.time(), **fields).SerializeToString())

    def add(self, step: int, values: Mapping[str, float]) -> None:
        from tensorboard.compat.proto.summary_pb2 import Summary

        self._write(step=step, summary=Summary(value=[
            Summary.Value(tag=tag, simple_value=value) for tag, value in values.items()]))

    def flush(self) -> None:
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()


class MetricLogs:
    """metrics.csv and the TensorBoard event files of one run directory, for its writer."""

    def __init__(self, folder: Path, records: Iterable[Mapping[str, Any]]) -> None:
        """Rebuild both views from ``records`` (metrics.jsonl as it now stands)."""
        self.folder = folder
        self._records = [dict(r) for r in records]
        self._columns: list[str] = []
        self._points: dict[str, int] = {}  # points so far, per TensorBoard run
        self._events: dict[str, EventFile] = {}
        self._tensorboard = importlib.util.find_spec("tensorboard") is not None
        shutil.rmtree(folder / TENSORBOARD, ignore_errors=True)
        self._write_csv()
        for record in self._records:
            self._add_events(record)
        self.flush()

    def append(self, record: Mapping[str, Any]) -> None:
        """One more record (already in metrics.jsonl): a CSV row and its TensorBoard points."""
        record = dict(record)
        self._records.append(record)
        if set(record) <= set(self._columns):
            with open(self.folder / CSV, "a", newline="", encoding="utf-8") as fh:
                csv.writer(fh).writerow(self._row(record))
        else:  # a new column: the header changes, so the file is rewritten whole
            self._write_csv()
        self._add_events(record)
        self.flush()

    def _write_csv(self) -> None:
        columns: dict[str, None] = {}
        for record in self._records:
            columns.update(dict.fromkeys(record))
        self._columns = list(columns)
        out = io.StringIO(newline="")
        writer = csv.writer(out)
        writer.writerow(self._columns)
        writer.writerows(self._row(r) for r in self._records)
        atomic_write(self.folder / CSV, out.getvalue())

    def _row(self, record: Mapping[str, Any]) -> list[str]:
        return [_cell(record.get(c)) for c in self._columns]

    def _add_events(self, record: Mapping[str, Any]) -> None:
        values = scalars(record)
        series = series_name(record) if has_step(record) else ""
        index = self._points.get(series, 0)
        self._points[series] = index + 1
        inside = isinstance(record.get(SUBSTEP), int) and not isinstance(record[SUBSTEP], bool)
        step = int(record[STEP]) if has_step(record) and not inside else index
        if not values or not self._tensorboard:
            return
        if series not in self._events:
            self._events[series] = EventFile(self.folder / TENSORBOARD / series)
        self._events[series].add(step, values)

    def flush(self) -> None:
        for events in self._events.values():
            events.flush()

    def close(self) -> None:
        for events in self._events.values():
            events.close()
        self._events.clear()


def _cell(value: Any) -> str:
    """A CSV cell: numbers and text as written, nothing for a missing key, JSON otherwise."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return str(value)
    return json.dumps(value)
