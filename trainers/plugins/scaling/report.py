"""Plots and answers of Problem 2 from stored results alone (matplotlib inside functions)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from trainers import plots
from trainers.api import ReportContext, Summary
from trainers.reporting import (
    RUN_SHOWN,
    human,
    partial_note,
    reduced_banner,
    reductions,
    seconds,
)
from trainers.runtime import hardware_text

Record = Mapping[str, Any]
MEASURES = (("images_per_s", "throughput (images/s)", "throughput"),
            ("steady_s", "training time at the timed rate (s)", "time"),
            ("steady_cost_usd", "training cost at the timed rate (USD)", "cost"))
REDUCIBLE = ("model", "learners", "epochs", "steps", "train_samples", "all_reduce_learners",
             "warmup_steps", "batch_size", "weak_batch_per_learner")
LIKE_WITH_LIKE = (
    "Time and cost compare like with like: measured is the job's steps at the iteration time "
    "timed after warm-up (steps x measured seconds per iteration), the model is the same "
    "steps at the predicted iteration time. Neither includes the warm-up steps (graph "
    "tracing, first allocations) or checkpoints, which the wall time in the table does.")


def _finish(fig: Any, ax: Any, title: str, note: str, path: Path) -> list[Path]:
    ax.set_title(title)
    if ax.get_legend_handles_labels()[1]:  # a part that was not run leaves nothing to label
        plots.place_legend(ax, fontsize="small")
    plots.footnote(fig, note)
    return plots.save_figure(fig, path)


def note_of(results: Record, stand_in: bool) -> str:
    """Footnote of every plot: where the numbers come from, so nobody mistakes them."""
    if results.get("model_only"):
        text = "performance model (no training)"
    else:
        text = f"measured on {hardware_text(results['hardware'])}, model {results['model']}"
    partial = partial_note(results)
    return (f"{partial.upper()}; " if partial else "") + text + \
        (f"; {plots.SYNTHETIC_NOTE}" if stand_in else "")


def ok_jobs(results: Record, part: str) -> list[Record]:
    return sorted((r for r in results.get("jobs", []) if r["part"] == part
                   and r.get("images_per_s")), key=lambda r: r["learners"])


def hour_usd(r: Record) -> float | None:
    """The price per learner-hour the job's cost was computed with."""
    if not r.get("cost_usd") or not r.get("train_s"):
        return None
    return float(r["cost_usd"]) / (float(r["train_s"]) * r["learners"] / 3600)


def measure(r: Record, key: str, predicted: bool = False) -> float | None:
    """``key`` of a job, measured or (``predicted``) the model's; ``steady_s`` and
    ``steady_cost_usd`` are the job's steps at the timed (after warm-up) iteration time."""
    source = r.get("predicted", {}) if predicted else r
    if key == "images_per_s":
        return source.get("images_per_s")
    iteration = source.get("iteration_s")
    if iteration is None or not r.get("steps"):
        return None
    steady = float(r["steps"]) * float(iteration)
    if key == "steady_s":
        return steady
    price = hour_usd(r)
    return None if price is None else steady * r["learners"] * price / 3600


def plot_measure(results: Record, key: str, label: str, note: str, path: Path) -> list[Path]:
    """One measure vs learners (log2) for strong and weak scaling, each with the performance
    model's prediction for the same jobs dashed in the same colour; time and cost on a log
    axis, so 1 to 16 learners all read."""
    fig, ax = plots.subplots()
    drawn: list[float] = []
    for i, part in enumerate(("strong", "weak")):
        rows = [r for r in ok_jobs(results, part) if measure(r, key) is not None]
        if rows:
            look = {**plots.series_style(i), "linestyle": "-"}  # measured solid, model dashed
            values = [float(measure(r, key) or 0) for r in rows]
            ax.plot([r["learners"] for r in rows], values, label=f"{part}, measured", **look)
            model = [r for r in rows if measure(r, key, True) is not None]
            if model:
                predicted = [float(measure(r, key, True) or 0) for r in model]
                ax.plot([r["learners"] for r in model], predicted, linestyle="--",
                        marker="x", color=look["color"], label=f"{part}, model")
                drawn += predicted
            drawn += values
    learners = sorted({r["learners"] for p in ("strong", "weak") for r in ok_jobs(results, p)})
    if learners:  # a log axis with no points cannot be drawn
        _learner_axis(ax, learners)
    if key == "images_per_s" or not plots.log_axis(ax, "y", values=drawn):
        plots.from_zero(ax)
    ax.set_ylabel(label)
    return _finish(fig, ax, f"{label.split(' (')[0]} vs learners", note, path)


def _learner_axis(ax: Any, learners: Sequence[int]) -> None:
    """Learners on a log2 axis, ticked at the counts run (1, 2, 4, ...), labelled plainly."""
    ax.set_xscale("log", base=2)
    ax.set_xticks(list(learners), [str(n) for n in learners])
    ax.minorticks_off()
    ax.set_xlabel("learners")


def efficiency(results: Record) -> list[tuple[int, float]]:
    """Weak scaling E(N) = t_iter(1) / t_iter(N), where one learner was measured."""
    rows = ok_jobs(results, "weak")
    base = next((r["iteration_s"] for r in rows if r["learners"] == 1), None)
    return [] if base is None else [(r["learners"], base / r["iteration_s"]) for r in rows]


def model_efficiency(results: Record) -> list[tuple[int, float]]:
    """E(N) of the performance model's iteration times for the weak jobs."""
    rows = [r for r in ok_jobs(results, "weak") if "predicted" in r]
    base = next((r["predicted"]["iteration_s"] for r in rows if r["learners"] == 1), None)
    return [] if base is None else [(r["learners"], base / r["predicted"]["iteration_s"])
                                    for r in rows]


def plot_efficiency(results: Record, note: str, path: Path) -> list[Path]:
    fig, ax = plots.subplots()
    pts = efficiency(results)
    line, = ax.plot([n for n, _ in pts], [e for _, e in pts], "o-", label="measured E(N)")
    ax.set_ylim(0, max([1.1, *(e * 1.1 for _, e in pts)]))
    model = model_efficiency(results)
    if model:
        ax.plot([n for n, _ in model], [e for _, e in model], "--", color=line.get_color(),
                label="model E(N)")
    ax.axhline(1.0, color="0.5", linestyle=":", label="perfect")
    if pts:  # no weak jobs (e.g. --parts strong): a log axis with no points cannot be drawn
        _learner_axis(ax, [n for n, _ in pts])
    ax.set_xlabel("learners")
    ax.set_ylabel("t_iter(1) / t_iter(N)")
    return _finish(fig, ax, "weak-scaling efficiency", note, path)


def plot_comm(results: Record, part: str, note: str, path: Path) -> list[Path]:
    """Throughput per communication method as bars grouped by learners (one or two learner
    counts: bars, not lines of one point); unavailable ones marked in their slot."""
    fig, ax = plots.subplots()
    jobs = [r for r in results.get("jobs", []) if r["part"] == part]
    counts = sorted({r["learners"] for r in jobs})
    series: dict[str, list[float | None]] = {}
    for comm in dict.fromkeys(r["comm"] for r in jobs):
        rows = {r["learners"]: r for r in jobs if r["comm"] == comm}
        good = [r for r in rows.values() if r.get("images_per_s")]
        label = comm + ("" if good else f" ({next(iter(rows.values()))['status']} here)")
        if part == "multi-worker" and good:
            label += f" -> {good[0].get('implementation_used')}"
        series[label] = [rows[n].get("images_per_s") if n in rows else None for n in counts]
    if counts:
        plots.grouped_bars(ax, [f"{n} learner{'s' if n > 1 else ''}" for n in counts], series)
    ax.set_ylabel("throughput (images/s)")
    plots.from_zero(ax)
    return _finish(fig, ax, f"{part}: throughput by communication method", note, path)


def plot_model(results: Record, key: str, label: str, note: str, path: Path) -> list[Path]:
    """--model-only: predicted measure vs learners (log2), strong solid and weak dashed,
    each method with its own marker so equal predictions (ring and nccl) both show."""
    fig, ax = plots.subplots()
    rows = results["predictions"]
    values: list[float] = []
    for i, method in enumerate(dict.fromkeys(r["method"] for r in rows)):
        look = plots.series_style(i)
        for part, style in (("strong", "-"), ("weak", "--")):
            pts = sorted((r for r in rows if r["method"] == method and r["part"] == part),
                         key=lambda r: r["learners"])
            ax.plot([r["learners"] for r in pts], [r[key] for r in pts],
                    **{**look, "linestyle": style}, label=f"{method}, {part}")
            values += [r[key] for r in pts]
    _learner_axis(ax, sorted({r["learners"] for r in rows}))
    if key == "images_per_s" or not plots.log_axis(ax, "y", values=values):
        plots.from_zero(ax)
    ax.set_ylabel(label)
    return _finish(fig, ax, f"model: {label}", note, path)


def answer_auto(results: Record) -> str:
    """Does AUTO give the best throughput? From the measured multi-worker jobs."""
    rows = [r for r in results.get("jobs", []) if r["part"] == "multi-worker"
            and r.get("images_per_s")]
    if not rows:
        return "No multi-worker job ran, so the question stays open."
    best = max(rows, key=lambda r: r["images_per_s"])
    used = {r.get("implementation_used") for r in rows}
    same = " All ran as RING on this hardware, so the differences are noise." \
        if used == {"RING"} else ""
    verdict = "yes" if best["comm"] == "auto" else f"no, {best['comm'].upper()} was fastest"
    rate = f"{human(best['images_per_s'])} img/s"
    return f"Does AUTO give the best throughput? {RUN_SHOWN}, {verdict} ({rate}).{same}"


def model_comparison(results: Record) -> str:
    """How far measurement and model differ, from the stored measured and predicted values:
    measured / predicted throughput per job and the largest relative error."""
    rows = [r for r in results.get("jobs", []) if r.get("images_per_s") and "predicted" in r]
    fitted = results.get("performance_model")
    if not rows or not fitted:
        return "Model vs measurement: no one-learner job ran, so the model was not fitted."
    lines = ["| job | learners | measured img/s | model img/s | measured / model |",
             "|---|---:|---:|---:|---:|"]
    errors = []
    for r in rows:
        ratio = r["images_per_s"] / r["predicted"]["images_per_s"]
        errors.append((abs(ratio - 1), r["key"]))
        lines.append(f"| {r['key']} | {r['learners']} | {human(r['images_per_s'])} | "
                     f"{human(r['predicted']['images_per_s'])} | {ratio:.2f} |")
    worst, where = max(errors)
    mean = sum(e for e, _ in errors) / len(errors)
    shared = (" Learners share one physical device here: the model gives them its arithmetic "
              "in turn and overlaps their fixed per-step time." if fitted.get("shared_device")
              else "")
    return (f"Model vs measurement (perf.py; compute {fitted['fixed_s'] * 1e3:.3g} ms + "
            f"{fitted['per_image_s'] * 1e3:.3g} ms per image, fitted to "
            f"{', '.join(fitted['fitted_to'])}; all-reduce over "
            f"{fitted['link']['name']}).{shared}\n\n" + "\n".join(lines) +
            f"\n\nThroughput differs from the model by {mean:.0%} on average and by at most "
            f"{worst:.0%} ({where}).")


def table(rows: Sequence[Record]) -> str:
    """Every job: throughput, iteration, steps, wall time (with warm-up), time and cost at
    the timed rate, and the model's gap."""
    lines = ["| job | status | learners | batch/learner | img/s | iteration | steps (timed) "
             "| wall time | time at timed rate | cost at timed rate | model gap | ops |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        ips, it, gap = r.get("images_per_s"), r.get("iteration_s"), r.get("model_gap")
        ops = r.get("cross_device_ops") or r.get("implementation_used") or r.get("reason", "")
        steps = f"{r['steps']} ({r.get('timed_steps', '?')})" if r.get("steps") else "-"
        cost = measure(r, "steady_cost_usd")
        lines.append(f"| {r['key']} | {r['status']} | {r['learners']} | "
                     f"{r['per_learner_batch']} | {human(ips)} | "
                     f"{'-' if it is None else f'{human(it * 1e3)} ms'} | {steps} | "
                     f"{seconds(r.get('train_s'))} | {seconds(measure(r, 'steady_s'))} | "
                     f"{'-' if cost is None else f'${human(cost, 2)}'} | "
                     f"{'-' if gap is None else f'{gap:+.0%}'} | {ops} |")
    return "\n".join(lines)


def efficiency_answer(results: Record) -> str:
    """The seed's discussion of weak-scaling efficiency, from this run's numbers."""
    pts = efficiency(results)
    if len(pts) < 2:
        return "Weak-scaling efficiency: not measured (no weak jobs beside one learner)."
    n, e = pts[-1]
    model = dict(model_efficiency(results))
    shared = results.get("performance_model", {}).get("shared_device")
    why = ("the learners are logical devices of one processor, so N of them share its "
           "arithmetic: an iteration of N x the work takes about N x as long, and E(N) "
           "near 1/N is what this hardware can give" if shared else
           "each learner computes the same batch as one learner alone, so the growth of the "
           "iteration time is the all-reduce of the gradient and the synchronisation")
    expected = f" (model {model[n]:.2f})" if n in model else ""
    return ("Weak-scaling efficiency: "
            + ", ".join(f"E({k}) = {v:.2f}" for k, v in pts) + ".\n\n"
            f"{RUN_SHOWN}, E({n}) = {e:.2f}{expected}: with {n} learners an iteration takes "
            f"{1 / e:.2f}x the one-learner time. Why: {why}. Ideal weak scaling keeps E = 1; "
            "on GPUs the gap is the communication the model's all-reduce term predicts.")


def summarize(results: Record, ctx: ReportContext) -> Summary:
    """Every plot of the six parts (or the model's), and the Markdown answers."""
    note = note_of(results, ctx.stand_in)
    if results.get("model_only"):
        saved = [p for key, label, name in MEASURES for p in
                 plot_model(results, _model_key(key), label.replace(" at the timed rate", ""),
                            note, ctx.plot_path(f"model-{name}"))]
        text = (f"# Scaling: performance model only\n\nGradient bytes "
                f"{results['gradient_bytes']:,}; {results['step_s_per_image'] * 1e3:.3f} ms "
                f"per image on one learner. {note}.\n")
        return Summary(text, tuple(saved))
    saved = [p for key, label, name in MEASURES
             for p in plot_measure(results, key, label, note, ctx.plot_path(name))]
    saved += plot_efficiency(results, note, ctx.plot_path("weak-efficiency"))
    saved += plot_comm(results, "all-reduce", note, ctx.plot_path("all-reduce"))
    saved += plot_comm(results, "multi-worker", note, ctx.plot_path("collectives"))
    banner = reduced_banner(reductions(ctx.config, REDUCIBLE), ctx.stand_in)
    if partial := partial_note(results):
        banner += (f"\n\n**Only the finished jobs are shown ({partial}).** The answers below "
                   "cover those jobs; a job that has not run yet can change them.")
    text = (f"# Scaling: strong and weak, tf.distribute\n\n{note}. Data: {results['data']}.\n\n"
            f"{banner}\n\n{table(results['jobs'])}\n\nWall time: the whole job, warm-up "
            "and checkpoints included. Time and cost at timed rate: the job's steps at the "
            "iteration time measured after warm-up, cost = that time x learners x price per "
            f"learner-hour (${ctx.config.gpu_hour_usd:g}).\n\n{LIKE_WITH_LIKE}\n\n"
            f"{efficiency_answer(results)}\n\n{answer_auto(results)}\n\nModel gap: (measured "
            f"- predicted) / predicted iteration time.\n\n{model_comparison(results)}\n")
    return Summary(text, tuple(saved))


def _model_key(key: str) -> str:
    return {"steady_s": "train_s", "steady_cost_usd": "cost_usd"}.get(key, key)
