"""The plot style: Agg, a scoped look, atomic PNG + SVG, and the synthetic-data stamp."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import matplotlib
import pytest

from trainers import plots

if TYPE_CHECKING:
    from matplotlib.figure import Figure

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _figure(synthetic: bool = False) -> Figure:
    with plots.style():
        fig, ax = plots.subplots()
        ax.plot([0, 1, 2], [3.0, 1.0, 0.5], label="loss")
        ax.set_xlabel("epoch")
        ax.legend()
        if synthetic:
            plots.stamp_synthetic(fig)
    return fig


def test_save_figure_writes_valid_png_and_svg(tmp_path: Path) -> None:
    paths = plots.save_figure(_figure(), tmp_path / "plots" / "loss-lr0.1")
    assert paths == [tmp_path / "plots" / "loss-lr0.1.png", tmp_path / "plots" / "loss-lr0.1.svg"]
    png, svg = paths
    assert png.read_bytes()[:8] == PNG_MAGIC
    assert png.stat().st_size > 1000
    root = ET.parse(svg).getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert "epoch" in svg.read_text(encoding="utf-8")  # text kept as text (svg.fonttype)


def test_save_figure_leaves_no_temporary_files(tmp_path: Path) -> None:
    plots.save_figure(_figure(), tmp_path / "a")
    plots.save_figure(_figure(), tmp_path / "a")  # overwriting works too
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "a.svg"]


def test_failed_save_keeps_the_old_file_and_no_temp(tmp_path: Path) -> None:
    plots.save_figure(_figure(), tmp_path / "a")
    before = (tmp_path / "a.png").read_bytes()
    fig = _figure()

    def crash_midway(fh: BinaryIO, **_: object) -> None:
        fh.write(b"half a PNG")
        raise OSError("disk full")

    fig.savefig = crash_midway  # type: ignore[method-assign]
    with pytest.raises(OSError, match="disk full"):
        plots.save_figure(fig, tmp_path / "a")
    assert (tmp_path / "a.png").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "a.svg"]


def test_same_figure_saves_identical_svg(tmp_path: Path) -> None:
    first = plots.save_figure(_figure(), tmp_path / "one")[1].read_bytes()
    second = plots.save_figure(_figure(), tmp_path / "two")[1].read_bytes()
    assert first == second


def test_synthetic_stamp_appears_in_the_saved_figure(tmp_path: Path) -> None:
    svg = plots.save_figure(_figure(synthetic=True), tmp_path / "s")[1]
    assert plots.SYNTHETIC_NOTE in svg.read_text(encoding="utf-8")
    plain = plots.save_figure(_figure(), tmp_path / "p")[1]
    assert plots.SYNTHETIC_NOTE not in plain.read_text(encoding="utf-8")


def test_style_is_scoped_not_global() -> None:
    before = dict(matplotlib.rcParams)
    with plots.style():
        assert matplotlib.rcParams["axes.grid"] is True
        assert matplotlib.rcParams["axes.spines.top"] is False
        assert matplotlib.rcParams["axes.prop_cycle"].by_key()["color"][0] == plots.PALETTE[0]
    after = dict(matplotlib.rcParams)
    assert {k: v for k, v in after.items() if k != "backend"} == {
        k: v for k, v in before.items() if k != "backend"}


def test_figures_carry_the_style() -> None:
    with plots.style():
        _fig, axes = plots.subplots(1, 2)
        (line,) = axes[0].plot([0, 1])
    assert len(axes) == 2
    assert axes[0].spines["top"].get_visible() is False
    assert line.get_color().lower() == plots.PALETTE[0].lower()
    assert line.get_linewidth() == plots.STYLE["lines.linewidth"]


def _python(code: str, **env: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={**os.environ, **env})
    return out.stdout.strip()


def test_agg_is_forced_even_when_the_environment_asks_otherwise() -> None:
    code = ("import matplotlib; from trainers import plots; before = matplotlib.get_backend(); "
            "plots.subplots(); import matplotlib.pyplot as plt; "
            "print(before, matplotlib.get_backend(), plt.get_backend())")
    assert _python(code, MPLBACKEND="pdf").lower().split() == ["pdf", "agg", "agg"]


def test_importing_plots_does_not_import_matplotlib() -> None:
    code = "import sys, trainers.plots; print('matplotlib' in sys.modules)"
    assert _python(code) == "False"


def test_log_axis_labels_plain_numbers_and_stays_linear_for_a_narrow_range() -> None:
    _fig, ax = plots.subplots()
    ax.plot([1, 2, 3], [0.003, 0.05, 2.0])
    assert plots.log_axis(ax, "y", values=[0.003, 0.05, 2.0])
    plots._drawn(ax)
    labels = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
    assert "0.005" in labels and "0.5" in labels and "2" in labels
    assert not [t for t in ax.yaxis.get_minorticklabels() if t.get_text()]  # none to collide
    _narrow, ax2 = plots.subplots()
    ax2.plot([1, 2], [2.0, 2.5])
    assert not plots.log_axis(ax2, "y", values=[2.0, 2.5])
    assert ax2.get_yscale() == "linear"


def test_a_legend_that_would_cover_data_moves_beside_the_axes() -> None:
    _fig, ax = plots.subplots()
    xs = list(range(40))
    for k in range(6):  # curves everywhere: no free corner inside
        ax.plot(xs, [((x * (k + 3)) % 17) for x in xs], label=f"series {k}")
    legend = plots.place_legend(ax)
    assert legend is not None
    assert plots.covered_points(ax, legend) == 0
    plots._drawn(ax)
    assert legend.get_window_extent().x0 >= ax.get_window_extent().x1  # outside, right


@pytest.mark.parametrize("epochs", [[1], [1, 2, 3], list(range(1, 31))])
def test_epoch_ticks_are_whole_numbers_even_for_one_epoch(epochs: list[int]) -> None:
    _fig, ax = plots.subplots()
    ax.plot(epochs, [0.5] * len(epochs), marker="o")
    plots.integer_ticks(ax)
    plots._drawn(ax)
    low, high = ax.get_xlim()
    shown = [x for x in ax.get_xticks() if low <= x <= high]
    assert shown and all(float(x).is_integer() for x in shown), shown


def test_no_legend_and_no_warning_when_nothing_is_labelled() -> None:
    _fig, ax = plots.subplots()
    ax.plot([1, 2], [3, 4])  # every labelled series dropped (e.g. all diverged)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib's "No artists with labels" would raise
        assert plots.place_legend(ax) is None
    assert ax.get_legend() is None


def test_grouped_bars_mark_a_missing_value_instead_of_dropping_it() -> None:
    _fig, ax = plots.subplots()
    plots.grouped_bars(ax, ["1 learner", "2 learners"], {"a": [1.0, 2.0], "b": [None, 3.0]})
    assert len(ax.patches) == 3
    assert [t.get_text() for t in ax.texts] == ["n/a"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1 learner", "2 learners"]


def test_series_styles_differ_so_equal_series_stay_visible() -> None:
    looks = [plots.series_style(i) for i in range(4)]
    assert len({(s["marker"], s["linestyle"], s["markerfacecolor"]) for s in looks}) == 4
