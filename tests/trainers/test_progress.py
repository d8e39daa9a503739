"""The progress on and off a terminal, and the metrics it hands to the store."""

from __future__ import annotations

import io
import re
from collections.abc import Mapping
from typing import Any

from rich.console import Console

from trainers.progress import Progress, make_table, plain_value

ANSI = re.compile(r"\x1b\[")


def drive(progress: Progress) -> None:
    """runs > epochs > steps, the shape of every plugin's loop."""
    with progress:
        with progress.bar("runs", total=2, unit="run") as runs:
            for method in ("adam", "sgd"):
                with progress.bar(f"epochs {method}", total=2, unit="epoch") as epochs:
                    for epoch in range(2):
                        for _ in progress.track(range(4), "steps", unit="batch"):
                            pass
                        progress.log({"method": method, "epoch": epoch + 1, "loss": 0.5 / 3})
                        epochs.advance()
                runs.advance()
        progress.table("final", [{"method": "adam", "loss": 0.1234567},
                                 {"method": "sgd", "loss": 2.0}])


def console(terminal: bool) -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=terminal, width=100, color_system=None
                   if not terminal else "standard"), out


def test_plain_mode_prints_log_lines_with_position_and_no_animation() -> None:
    con, out = console(terminal=False)
    drive(Progress(con))
    text = out.getvalue()
    assert not ANSI.search(text)
    lines = text.splitlines()
    assert "[runs 0/2 | epochs adam 0/2] method=adam epoch=1 loss=0.1667" in lines
    assert any(line.startswith("[runs 1/2 | epochs sgd 1/2 | run ETA ") for line in lines)
    assert any(re.fullmatch(r"epochs adam: 2/2 epoch in [\d.]+s(, [\d,.]+ epoch/s)?", line)
               for line in lines)
    assert any(line.startswith("runs: 2/2 run in ") for line in lines)
    assert not any(line.startswith("steps") for line in lines)  # leaf bars stay quiet
    assert "0.1235" in text and "final" in text


def test_terminal_mode_draws_bars_and_the_live_metrics_line() -> None:
    con, out = console(terminal=True)
    progress = Progress(con)
    assert progress.live
    drive(progress)
    text = out.getvalue()
    assert ANSI.search(text)
    plain = ANSI.sub("", re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text))
    assert "runs" in plain and "2/2" in plain
    assert "ETA" in plain and "run/s" in plain
    assert "method=sgd epoch=2 loss=0.1667" in plain  # the live line
    assert "[runs 0/2" not in plain  # no plain log lines on a terminal


def test_every_metric_goes_to_the_sink_as_plain_json_values() -> None:
    records: list[Mapping[str, Any]] = []
    con, _ = console(terminal=False)
    drive(Progress(con, sink=records.append))
    assert len(records) == 4
    assert records[0]["method"] == "adam" and records[0]["epoch"] == 1
    assert all(isinstance(r["time_s"], float) for r in records)


def test_hidden_metrics_are_stored_but_not_printed() -> None:
    records: list[Mapping[str, Any]] = []
    con, out = console(terminal=False)
    progress = Progress(con, sink=records.append)
    progress.log({"step": 1, "loss": 2.0}, show=False)
    assert out.getvalue() == "" and records[0]["loss"] == 2.0


def test_stand_in_data_is_announced_and_tagged() -> None:
    con, out = console(terminal=False)
    progress = Progress(con)
    progress.set_stand_in("fake cifar10")
    progress.log({"acc": 0.5})
    progress.table("accuracy", [{"acc": 0.5}])
    text = out.getvalue()
    assert "STAND-IN DATA: fake cifar10" in text
    assert "[stand-in data] acc=0.5" in text
    assert "accuracy (stand-in data)" in text


def test_plain_value_unwraps_tensor_and_numpy_scalars() -> None:
    import numpy as np
    import torch

    assert plain_value(torch.tensor(1.5)) == 1.5
    assert type(plain_value(np.float32(0.25))) is float
    assert plain_value("adam") == "adam"


def test_live_line_shows_plain_numbers_not_tensor_reprs() -> None:
    import torch

    con, out = console(terminal=True)
    with Progress(con) as progress:
        progress.log({"loss": torch.tensor(0.25, requires_grad=True)}, show=False)
        progress.log({"acc": 0.5})
    assert progress.latest == {"loss": 0.25, "acc": 0.5}
    assert "loss=0.25 acc=0.5" in out.getvalue()


def test_make_table_unions_columns_in_first_seen_order() -> None:
    table = make_table("t", [{"a": 1}, {"b": 0.123456, "a": 2}])
    assert [c.header for c in table.columns] == ["a", "b"]
    assert list(table.columns[1].cells) == ["", "0.1235"]
