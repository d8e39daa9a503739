"""Plots and answers of Problem 2 from stored results alone (matplotlib inside functions)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from trainers import plots
from trainers.api import ReportContext, Summary
from trainers.runtime import hardware_text

Record = Mapping[str, Any]
MEASURES = (("images_per_s", "throughput (images/s)", "throughput"),
            ("train_s", "training time (s)", "time"),
            ("cost_usd", "training cost (USD)", "cost"))


def _finish(fig: Any, ax: Any, title: str, note: str, path: Path) -> list[Path]:
    ax.set_title(title)
    if ax.get_legend_handles_labels()[1]:  # a part that was not run leaves nothing to label
        ax.legend()
    plots.footnote(fig, note)
    return plots.save_figure(fig, path)


def note_of(results: Record, stand_in: bool) -> str:
    """Footnote of every plot: where the numbers come from, so nobody mistakes them."""
    if results.get("model_only"):
        text = "performance model (no training)"
    else:
        text = f"measured on {hardware_text(results['hardware'])}, model {results['model']}"
    return text + (f"; {plots.SYNTHETIC_NOTE}" if stand_in else "")


def ok_jobs(results: Record, part: str) -> list[Record]:
    return sorted((r for r in results.get("jobs", []) if r["part"] == part
                   and r.get("images_per_s")), key=lambda r: r["learners"])


def plot_measure(results: Record, key: str, label: str, note: str, path: Path) -> list[Path]:
    """One measure vs learners for strong and weak scaling, each with the performance
    model's prediction for the same jobs dashed in the same colour."""
    fig, ax = plots.subplots()
    drawn = False
    for part in ("strong", "weak"):
        rows = ok_jobs(results, part)
        if rows:
            line, = ax.plot([r["learners"] for r in rows], [r[key] for r in rows], "o-",
                            label=f"{part}, measured")
            model = [r for r in rows if "predicted" in r]
            if model:
                ax.plot([r["learners"] for r in model], [r["predicted"][key] for r in model],
                        "--", color=line.get_color(), label=f"{part}, model")
            drawn = True
    if drawn:  # a log axis with no points cannot be drawn
        ax.set_xscale("log", base=2)
    ax.set_xlabel("learners")
    ax.set_ylabel(label)
    return _finish(fig, ax, f"{label} vs learners", note, path)


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
    model = model_efficiency(results)
    if model:
        ax.plot([n for n, _ in model], [e for _, e in model], "--", color=line.get_color(),
                label="model E(N)")
    ax.axhline(1.0, color="0.5", linestyle=":", label="perfect")
    if pts:  # no weak jobs (e.g. --parts strong): a log axis with no points cannot be drawn
        ax.set_xscale("log", base=2)
    ax.set_xlabel("learners")
    ax.set_ylabel("t_iter(1) / t_iter(N)")
    return _finish(fig, ax, "weak-scaling efficiency", note, path)


def plot_comm(results: Record, part: str, note: str, path: Path) -> list[Path]:
    """Throughput per communication method; unavailable ones named in the legend."""
    fig, ax = plots.subplots()
    jobs = [r for r in results.get("jobs", []) if r["part"] == part]
    for comm in dict.fromkeys(r["comm"] for r in jobs):
        rows = sorted((r for r in jobs if r["comm"] == comm), key=lambda r: r["learners"])
        good = [r for r in rows if r.get("images_per_s")]
        label = comm + ("" if good else f" ({rows[0]['status']} here)")
        if part == "multi-worker" and good:
            label += f" -> {good[0].get('implementation_used')}"
        ax.plot([r["learners"] for r in good], [r["images_per_s"] for r in good], "o-",
                label=label)
    ax.set_xlabel("learners")
    ax.set_ylabel("throughput (images/s)")
    return _finish(fig, ax, f"{part}: throughput by communication method", note, path)


def plot_model(results: Record, key: str, label: str, note: str, path: Path) -> list[Path]:
    """--model-only: predicted measure vs learners, strong solid and weak dashed."""
    fig, ax = plots.subplots()
    rows = results["predictions"]
    for method in dict.fromkeys(r["method"] for r in rows):
        for part, style in (("strong", "-"), ("weak", "--")):
            pts = [r for r in rows if r["method"] == method and r["part"] == part]
            ax.plot([r["learners"] for r in pts], [r[key] for r in pts], style,
                    label=f"{method}, {part}")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("learners")
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
    rate = f"{best['images_per_s']:.1f} img/s"
    return f"Does AUTO give the best throughput? {verdict} ({rate}).{same}"


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
        lines.append(f"| {r['key']} | {r['learners']} | {_num(r['images_per_s'])} | "
                     f"{_num(r['predicted']['images_per_s'])} | {ratio:.2f} |")
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
    lines = ["| job | status | learners | batch/learner | img/s | iter s | model gap | ops |",
             "|---|---|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        ips, it, gap = r.get("images_per_s"), r.get("iteration_s"), r.get("model_gap")
        ops = r.get("cross_device_ops") or r.get("implementation_used") or r.get("reason", "")
        lines.append(f"| {r['key']} | {r['status']} | {r['learners']} | "
                     f"{r['per_learner_batch']} | {_num(ips)} | {_num(it)} | "
                     f"{'-' if gap is None else f'{gap:+.0%}'} | {ops} |")
    return "\n".join(lines)


def _num(v: Any) -> str:
    return "-" if v is None else f"{v:.4g}"


def summarize(results: Record, ctx: ReportContext) -> Summary:
    """Every plot of the six parts (or the model's), and the Markdown answers."""
    note = note_of(results, ctx.stand_in)
    if results.get("model_only"):
        saved = [p for key, label, name in MEASURES for p in
                 plot_model(results, key, label, note, ctx.plot_path(f"model-{name}"))]
        text = (f"# Scaling: performance model only\n\nGradient bytes "
                f"{results['gradient_bytes']:,}; {results['step_s_per_image'] * 1e3:.3f} ms "
                f"per image on one learner. {note}.\n")
        return Summary(text, tuple(saved))
    saved = [p for key, label, name in MEASURES
             for p in plot_measure(results, key, label, note, ctx.plot_path(name))]
    saved += plot_efficiency(results, note, ctx.plot_path("weak-efficiency"))
    saved += plot_comm(results, "all-reduce", note, ctx.plot_path("all-reduce"))
    saved += plot_comm(results, "multi-worker", note, ctx.plot_path("collectives"))
    eff = ", ".join(f"E({n}) = {e:.2f}" for n, e in efficiency(results)) or "not measured"
    text = (f"# Scaling: strong and weak, tf.distribute\n\n{note}. Data: {results['data']}.\n\n"
            f"{table(results['jobs'])}\n\nWeak-scaling efficiency: {eff}.\n\n"
            f"{answer_auto(results)}\n\nModel gap: (measured - predicted) / predicted "
            f"iteration time.\n\n{model_comparison(results)}\n")
    return Summary(text, tuple(saved))
