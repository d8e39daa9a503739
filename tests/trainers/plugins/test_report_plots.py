"""Every plugin's plots, drawn from small stored results (results.json and config.toml of tiny
real runs, in report_results/), checked for what makes a plot read: labels, a legend that
covers no data, x increasing along every line, whole epochs, no colliding or "2x10^0" tick
labels, bars where a line would have one point; and the summaries' answers."""

from __future__ import annotations

import itertools
import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

from trainers import config as cfg
from trainers import plots
from trainers.api import ReportContext, Summary
from trainers.registry import registry
from trainers.store.runs import RunInfo

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

STORED = Path(__file__).parent / "report_results"
SCIENTIFIC = re.compile(r"\d\.?\d*e[+-]\d")


@dataclass
class Report:
    summary: Summary
    text: str
    figures: dict[str, Figure] = field(default_factory=dict)


def report(plugin: str, stored: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
           sibling: str | None = None, work: dict[str, str] | None = None) -> Report:
    """Run the plugin's report on a stored result, keeping each figure it saves; ``work``:
    files the run kept in its work folder (name: text)."""
    runs = tmp_path / "runs" / plugin
    run_dir = runs / "20261202-120000-aaaa"
    run_dir.mkdir(parents=True)
    if sibling is not None:  # another run of the same plugin beside this one
        other = runs / "20261202-110000-bbbb"
        other.mkdir()
        shutil.copy(STORED / f"{sibling}.json", other / "results.json")
    for name, text in (work or {}).items():
        (run_dir / "work").mkdir(exist_ok=True)
        (run_dir / "work" / name).write_text(text, encoding="utf-8")
    results = json.loads((STORED / f"{stored}.json").read_text(encoding="utf-8"))
    trainer = registry().get(plugin)
    values = cfg.read_toml(STORED / f"{stored}.toml")[plugin]
    config = cfg.resolve(trainer.config_type, [("stored run", values)])
    info = RunInfo(plugin, run_dir.name, run_dir, "finished", stand_in=True)
    figures: dict[str, Figure] = {}
    real_save = plots.save_figure

    def keep(fig: Figure, path: Any, *args: Any, **kwargs: Any) -> list[Path]:
        figures[Path(path).name] = fig
        return real_save(fig, path, *args, **kwargs)

    monkeypatch.setattr(plots, "save_figure", keep)
    summary = trainer.report(results, ReportContext(info, config, run_dir / "plots", True))
    return Report(summary, summary.markdown, figures)


def data_axes(fig: Figure) -> list[Axes]:
    return [ax for ax in fig.axes if ax.axison and (ax.lines or ax.collections or ax.patches)]


def tick_texts(ax: Axes, axis: str) -> list[Any]:
    lo, hi = getattr(ax, f"get_{axis}lim")()
    ticks = getattr(ax, f"{axis}axis").get_majorticklabels() + \
        getattr(ax, f"{axis}axis").get_minorticklabels()
    return [t for t in ticks if t.get_text() and t.get_visible()
            and min(lo, hi) <= (t.get_position()[0 if axis == "x" else 1]) <= max(lo, hi)]


def assert_reads(name: str, fig: Figure) -> None:
    """The checks every plot passes."""
    axes = data_axes(fig)
    assert axes, f"{name}: nothing drawn"
    plots._drawn(axes[0])  # lay out once: tick labels and legend at their final places
    for ax in axes:
        assert ax.get_xlabel() or ax.get_xticklabels(), f"{name}: no x label"
        assert ax.get_ylabel(), f"{name}: no y label"
        assert ax.get_title(), f"{name}: no title"
        legend = ax.get_legend()
        if legend is not None:
            assert plots.covered_points(ax, legend) == 0, f"{name}: the legend covers data"
        for line in ax.get_lines():
            xs = np.asarray(line.get_xdata(), dtype=float)
            if len(xs) > 1 and line.get_transform() == ax.transData:
                assert np.all(np.diff(xs) >= 0), f"{name}: a line goes back in x"
        for axis in ("x", "y"):
            texts = tick_texts(ax, axis)
            labels = [t.get_text() for t in texts]
            assert not any("10^" in s or "\\times" in s or "×" in s or SCIENTIFIC.search(s)
                           for s in labels), \
                f"{name}: power-of-ten tick labels {labels}"
            boxes = sorted((t.get_window_extent() for t in texts),
                           key=lambda b: b.x0 if axis == "x" else b.y0)
            for a, b in itertools.pairwise(boxes):
                gap = b.x0 - a.x1 if axis == "x" else b.y0 - a.y1
                assert gap > -1, f"{name}: {axis} tick labels collide: {labels}"
        if ax.get_xlabel() == "epoch":
            values = [t.get_position()[0] for t in tick_texts(ax, "x")]
            assert all(float(v).is_integer() for v in values), f"{name}: fractional epochs"


def bad_figure(fault: str) -> Figure:
    with plots.style():
        fig, ax = plots.subplots()
        xs = [3, 1, 2] if fault == "backtrack" else [1, 2, 3]
        ax.plot(xs, [1.0, 1.1, 1.2], label="a")
        ax.plot([1, 2, 3], [1.2, 1.1, 1.0], label="b")
        ax.set(xlabel="epoch", ylabel="loss", title="t")
        if fault == "legend":
            ax.legend(loc="center", fontsize=40, markerscale=5)
        if fault == "sci":
            ax.set_yscale("log")
            ax.set_ylim(1, 3)
    return fig


@pytest.mark.parametrize(("fault", "message"), [
    ("legend", "covers data"), ("backtrack", "back in x"), ("plain", "fractional epochs"),
    ("sci", "power-of-ten")])
def test_the_checks_catch_a_plot_that_does_not_read(fault: str, message: str) -> None:
    with pytest.raises(AssertionError, match=message):
        assert_reads(fault, bad_figure(fault))


def test_optimizer_plots_read_and_loss_both_keeps_its_legend_off_the_curves(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    got = report("optimizers", "optimizers", tmp_path, monkeypatch)
    assert set(got.figures) == {"loss-l2", "loss-dropout", "loss-both"}
    for name, fig in got.figures.items():
        assert_reads(name, fig)
    both = got.figures["loss-both"].axes[0]
    assert len(both.get_legend().get_texts()) == 10
    assert both.get_yscale() == "log"  # the stored losses span more than a factor of 4


def test_optimizer_summary_states_the_test_time_factors_and_explains_the_three_losses(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    got = report("optimizers", "optimizers", tmp_path, monkeypatch)
    values = cfg.read_toml(STORED / "optimizers.toml")["optimizers"]
    q_in, q_hidden = 1 - values["dropout_input"], 1 - values["dropout_hidden"]
    assert f"by **{q_in:g}**" in got.text and f"by **{q_hidden:g}**" in got.text
    assert "best by objective" not in got.text  # the old unexplained columns
    for title in ("training loss, full pass", "objective, full pass", "mean minibatch loss"):
        assert f"- **{title}**:" in got.text
    assert "epochs 3 (protocol 200)" in got.text
    results = json.loads((STORED / "optimizers.json").read_text())
    l2 = sorted(t["history"][-1]["full_train_loss"] for t in results["trainings"]
                if t["variant"] == "l2")
    assert "In the run shown, with l2 the best by final training loss" in got.text
    assert f"{(l2[1] - l2[0]) / l2[1]:.0%} below the runner-up" in got.text
    assert not SCIENTIFIC.search(got.text)


def test_scaling_plots_use_log2_learners_and_bars_for_methods(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    got = report("scaling", "scaling", tmp_path, monkeypatch)
    for name, fig in got.figures.items():
        assert_reads(name, fig)
    for name in ("throughput", "time", "cost", "weak-efficiency"):
        ax = got.figures[name].axes[0]
        assert ax.get_xscale() == "log" and ax.xaxis.get_transform().base == 2
    for name in ("all-reduce", "collectives"):
        ax = got.figures[name].axes[0]
        assert ax.patches and not ax.get_lines()  # bars, no one-point lines
    throughput = got.figures["throughput"].axes[0]
    assert throughput.get_ylim()[0] == 0
    styles = {line.get_label(): line.get_linestyle() for line in throughput.get_lines()}
    assert {styles["strong, measured"], styles["weak, measured"]} == {"-"}
    assert {styles["strong, model"], styles["weak, model"]} == {"--"}


def test_scaling_time_compares_like_with_like(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The measured time drawn is steps x timed iteration, as the model's is steps x
    predicted iteration: at one learner, where the model was fitted, they agree."""
    got = report("scaling", "scaling", tmp_path, monkeypatch)
    results = json.loads((STORED / "scaling.json").read_text())
    ax = got.figures["time"].axes[0]
    lines = {line.get_label(): line for line in ax.get_lines()}
    strong = [j for j in results["jobs"] if j["part"] == "strong" and j.get("iteration_s")]
    one = next(j for j in strong if j["learners"] == 1)
    measured = dict(zip(lines["strong, measured"].get_xdata(),
                        lines["strong, measured"].get_ydata(), strict=True))
    model = dict(zip(lines["strong, model"].get_xdata(), lines["strong, model"].get_ydata(),
                     strict=True))
    assert measured[1] == pytest.approx(one["steps"] * one["iteration_s"])
    assert model[1] == pytest.approx(one["predicted"]["train_s"])
    assert measured[1] / model[1] == pytest.approx(1, rel=0.1)
    assert one["train_s"] / model[1] > 2  # the wall time, warm-up included, would not
    assert "| wall time | time at timed rate | cost at timed rate |" in got.text
    assert "In the run shown, E(" in got.text
    assert not SCIENTIFIC.search(got.text)


def kept_examples(seed: int = 0) -> dict[str, str]:
    """The work file of a run that kept part 1's examples: a real ``--show`` run's (same
    stand-in data as cutout.json) with the seed a training run adds."""
    shown = json.loads((STORED / "cutout_examples.json").read_text())
    record = {**shown["examples"], "seed": seed, "data": shown["data"]}
    return {"cutout-examples.json": json.dumps(record)}


def test_cutout_plots_and_the_run_s_own_examples(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    got = report("cutout", "cutout", tmp_path, monkeypatch, work=kept_examples(7))
    for name in ("val-error", "to-target"):
        assert_reads(name, got.figures[name])
    assert got.figures["val-error"].axes[0].get_ylim() == (0, 1)
    results = json.loads((STORED / "cutout.json").read_text())
    assert not any(t["target"]["reached"] for t in results["trainings"])
    labels = [ax.get_ylabel() for ax in got.figures["to-target"].axes]
    assert not any("epochs" in label for label in labels)  # never reached: no epochs axis
    shown = got.figures["cutout-examples"]
    assert len(shown.axes) == 4 and all(ax.images for ax in shown.axes)
    assert "![examples](plots/cutout-examples.png)" in got.text
    assert "16x16 mask" in got.text and "seed 7" in got.text
    assert "| 1 | none | 64 | not reached | - | 2 |" in got.text
    assert "steps 4 (protocol all)" in got.text


def test_cutout_to_target_draws_epochs_where_the_target_was_reached(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    results = json.loads((STORED / "cutout.json").read_text())
    first = results["trainings"][0]
    first["target"] = {"reached": True, "epoch": 2, "acc": 0.95,
                       "time_s": first["history"][-1]["train_time_s"]}
    (tmp_path / "stored").mkdir()
    (tmp_path / "stored" / "cutout.json").write_text(json.dumps(results))
    shutil.copy(STORED / "cutout.toml", tmp_path / "stored" / "cutout.toml")
    monkeypatch.setattr(f"{__name__}.STORED", tmp_path / "stored")
    got = report("cutout", "cutout", tmp_path, monkeypatch)
    left = got.figures["to-target"].axes[0]
    assert_reads("to-target", got.figures["to-target"])
    assert left.get_ylabel() == "epochs to 94%"
    assert [p.get_height() for p in left.patches] == [2]
    assert [t.get_text() for t in left.texts] == ["not reached"] * 2
    assert "| 1 | none | 64 | 2 |" in got.text


def test_cutout_run_without_examples_says_so_and_ignores_a_show_run_beside_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run made before runs kept their examples: a --show run of the same data in the
    same folder is not taken for its own."""
    got = report("cutout", "cutout", tmp_path, monkeypatch, sibling="cutout_examples")
    assert "cutout-examples" not in got.figures
    assert "work/cutout-examples.json is missing" in got.text
    assert "hw3 run cutout --show 2" in got.text
    assert "cutout/20261202-110000-bbbb" not in got.text


def test_cutout_run_without_cutout_says_it_has_no_examples(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    work = kept_examples()  # a file there, which a run without Cutout would not have written
    (tmp_path / "stored").mkdir()
    shutil.copy(STORED / "cutout.json", tmp_path / "stored" / "cutout.json")
    toml = (STORED / "cutout.toml").read_text().replace("cutout_size = 16", "cutout_size = 0")
    (tmp_path / "stored" / "cutout.toml").write_text(toml)
    monkeypatch.setattr(f"{__name__}.STORED", tmp_path / "stored")
    got = report("cutout", "cutout", tmp_path, monkeypatch, work=work)
    assert "cutout-examples" not in got.figures
    assert "This run used no Cutout (cutout_size 0), so it has no examples." in got.text


def test_cutout_damaged_examples_are_named_and_not_drawn(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    torn = kept_examples()["cutout-examples.json"][:-40]
    got = report("cutout", "cutout", tmp_path, monkeypatch,
                 work={"cutout-examples.json": torn})
    assert "cutout-examples" not in got.figures
    assert "damaged: work/cutout-examples.json cannot be read as JSON" in got.text
    assert "## Per epoch" in got.text


def test_depth_width_plots_read_and_parameters_increase_along_lines(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    got = report("depth-width", "depth_width", tmp_path, monkeypatch)
    for name, fig in got.figures.items():
        assert_reads(name, fig)
    assert "Nesterov momentum 0.9" in got.text and "Batch normalisation" in got.text
    assert "epochs 3 (protocol 2000)" in got.text
    assert "In the run shown" in got.text


def test_model_only_plots_keep_ring_visible_under_nccl(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    got = report("scaling", "scaling_model", tmp_path, monkeypatch)
    for name, fig in got.figures.items():
        assert_reads(name, fig)
    ax = got.figures["model-time"].axes[0]
    lines = {line.get_label(): line for line in ax.get_lines()}
    ring, nccl = lines["ring, strong"], lines["nccl, strong"]
    assert np.allclose(ring.get_ydata(), nccl.get_ydata())  # equal predictions here...
    assert (ring.get_marker(), ring.get_markerfacecolor()) != \
        (nccl.get_marker(), nccl.get_markerfacecolor())  # ...yet both are seen
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
