"""The progress on and off a terminal, and the metrics it hands to the store."""

from __future__ import annotations

import io
import re
from collections.abc import Mapping
from typing import Any

import pytest
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


class FakeClock:
    """A clock the test moves by hand, for ETAs that do not depend on the machine."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_run_eta_counts_inner_bars_as_fractions_of_the_outer_item() -> None:
    con, _ = console(terminal=False)
    clock = FakeClock()
    progress = Progress(con, clock=clock)
    with progress.bar("runs", total=4, unit="run") as runs:
        runs.advance()
        with progress.bar("epochs", total=2, unit="epoch") as epochs:
            epochs.advance()  # 1 run + half of the second: 1.5 of 4 done
            clock.now += 30.0
            # 30 s for 1.5/4 of the run: 2.5/4 left at that pace is 50 s
            assert progress.run_eta() == pytest.approx(50.0)


def test_items_of_a_resumed_run_are_left_out_of_the_pace() -> None:
    con, _ = console(terminal=False)
    clock = FakeClock()
    progress = Progress(con, clock=clock)
    with progress.bar("jobs", total=8, unit="job") as jobs:
        jobs.skip(4)  # done before this process
        assert progress.run_eta() is None  # no pace yet
        clock.now += 10.0
        jobs.advance()  # one job in 10 s here; 3 left
        assert progress.run_eta() == pytest.approx(30.0)


def test_a_second_measure_of_the_same_work_is_not_nested() -> None:
    con, _ = console(terminal=False)
    clock = FakeClock()
    progress = Progress(con, clock=clock)
    with progress.bar("epochs", total=10, unit="epoch") as epochs, \
            progress.bar("networks", total=2, unit="net", part=False) as nets:
        epochs.advance(5)
        nets.advance()
        clock.now += 20.0
        assert progress.run_eta() == pytest.approx(20.0)  # half the epochs in 20 s


def test_a_long_loop_off_a_terminal_prints_a_sparse_position_line() -> None:
    con, out = console(terminal=False)
    clock = FakeClock()
    progress = Progress(con, plain_every=30.0, clock=clock)
    with progress.bar("jobs", total=2, unit="job"), \
            progress.bar("steps", total=100, unit="step") as steps:
        for _ in range(100):
            clock.now += 1.0  # 100 s of steps: a line every 30 s, not one per step
            steps.advance()
    lines = [line for line in out.getvalue().splitlines() if line.startswith("[jobs 0/2")]
    assert len(lines) == 3
    assert lines[0].startswith("[jobs 0/2 | steps 30/100 | run ETA ")


def test_epoch_text_replaces_the_key_value_pairs() -> None:
    con, out = console(terminal=False)
    records: list[Mapping[str, Any]] = []
    progress = Progress(con, sink=records.append)
    progress.log({"epoch": 1, "train_loss": 0.5, "val_acc": 0.25},
                 text="epoch 1: train loss 0.5, val acc 25.0%")
    assert out.getvalue() == "epoch 1: train loss 0.5, val acc 25.0%\n"
    assert records[0]["train_loss"] == 0.5  # every value is still stored


def test_warnings_are_printed_once_and_kept_for_the_run_record() -> None:
    con, out = console(terminal=False)
    progress = Progress(con)
    progress.warn("M=2 diverged")
    progress.warn("M=2 diverged")
    assert progress.warnings == ["M=2 diverged"]
    assert out.getvalue() == "WARNING: M=2 diverged\n"


def test_numbers_are_in_human_form() -> None:
    from trainers.progress import fmt

    assert [fmt(v) for v in (33540.2, 0.007632, 2.0, 1234.5, 7)] == \
        ["33,540", "0.007632", "2", "1234", "7"]


def test_a_bar_polled_without_news_still_shows_its_position() -> None:
    """A job in another process that has not reported a step (its worker still starting)
    is not silent off a terminal: polling it prints the position every ``plain_every``."""
    con, out = console(terminal=False)
    clock = FakeClock()
    progress = Progress(con, plain_every=30.0, clock=clock)
    with progress.bar("jobs", total=2, unit="job"), \
            progress.bar("strong-n1", total=40, unit="step") as job:
        for _ in range(100):  # 100 s of polls, no step yet
            clock.now += 1.0
            job.advance_to(0)
    assert out.getvalue().count("[jobs 0/2 | strong-n1 0/40]") == 3


@pytest.mark.parametrize("width", [80, 50])
def test_a_narrow_table_cuts_no_cell_and_keeps_the_row_names_whole(width: int) -> None:
    rows = [{"job": f"{part}-n{n}-{comm}", "status": "finished", "img/s": 1234.5678 * n,
             "ops": "HierarchicalCopyAllReduce"}
            for part in ("strong", "weak") for n in (1, 8) for comm in ("auto", "ring")]
    out = io.StringIO()
    Console(file=out, width=width).print(make_table("scaling jobs", rows))
    text = out.getvalue()
    assert "…" not in text
    assert all(len(line) <= width for line in text.splitlines())
    for row in rows:  # each job's name on one line, whole: two jobs never read alike
        assert re.search(rf"│ {re.escape(row['job'])}\s+│", text), row["job"]
