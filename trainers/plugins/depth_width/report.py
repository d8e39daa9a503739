"""``hw3 report`` for depth-width: three plots and a Markdown answer, from results alone.

Every sentence of the trade-off comment is computed from the stored numbers (which depth is
best, what it costs in parameters and in time), so the text cannot drift from the run.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from trainers import plots
from trainers.api import ReportContext, Summary
from trainers.reporting import RUN_SHOWN, human, partial_note, seconds
from trainers.runtime import hardware_text

Record = Mapping[str, Any]
WAITING = 1.25  # wall / CPU time of a single-thread worker above this: it waited for a core
DEPTH_LABEL = {1: "1 hidden layer", 2: "2 hidden layers", 3: "3 hidden layers"}


def report(results: Mapping[str, Any], ctx: ReportContext) -> Summary:
    records = [r for r in results["configs"] if r["test_rmse"] is not None]
    note = _footnote(results, ctx)
    saved = [_rmse_vs_units(records, ctx, note), _rmse_vs_params(records, ctx, note),
             _time_vs_params(records, ctx, note)]
    return Summary(markdown(results, records, settings(ctx.config)), tuple(saved))


def settings(config: Any) -> str:
    """The training the homework prescribes, as this run applied it."""
    return (f"Training: SGD with Nesterov momentum {config.momentum:g}, learning rate "
            f"{config.lr:g} ({config.schedule} schedule), batch {config.batch_size:,}, "
            f"{config.epochs:,} epochs, MSE on standardised targets. Batch normalisation "
            "after every hidden layer of the 2- and 3-layer networks, none in the 1-layer "
            "ones (archcalc spec `mlp`). Networks of 1-3 hidden layers of widths "
            f"{', '.join(map(str, config.widths))}, at most {config.unit_budget} hidden "
            "units in all.")


def _footnote(results: Mapping[str, Any], ctx: ReportContext) -> str:
    parts = ["reduced run, not the seed's protocol"] if results["reduced"] else []
    if partial := partial_note(results):
        parts.insert(0, partial.upper())
    if ctx.stand_in:
        parts.append(plots.SYNTHETIC_NOTE)
    return " | ".join(parts)


def by_depth(records: Sequence[Record]) -> dict[int, list[Record]]:
    out: dict[int, list[Record]] = {}
    for r in sorted(records, key=lambda r: (r["layers"], r["units"], r["params"])):
        out.setdefault(int(r["layers"]), []).append(r)
    return out


def averaged(records: Sequence[Record]) -> list[tuple[int, float, float, int]]:
    """(total units, mean test RMSE, mean parameters, networks) per total: the seed's
    averaging of networks with the same number of hidden units."""
    groups: dict[int, list[Record]] = {}
    for r in records:
        groups.setdefault(int(r["units"]), []).append(r)
    return [(u, statistics.fmean(r["test_rmse"] for r in g),
             statistics.fmean(r["params"] for r in g), len(g)) for u, g in sorted(groups.items())]


# -- plots --------------------------------------------------------------------------------
def _save(fig: Any, ctx: ReportContext, name: str, note: str) -> Path:
    if note:
        plots.footnote(fig, note)
    return plots.save_figure(fig, ctx.plot_path(name))[0]


def _rmse_vs_units(records: Sequence[Record], ctx: ReportContext, note: str) -> Path:
    fig, ax = plots.subplots()
    with plots.style():
        for depth, mine in by_depth(records).items():
            rows = averaged(mine)
            ax.plot([u for u, *_ in rows], [m for _, m, *_ in rows],
                    label=DEPTH_LABEL[depth], **plots.series_style(depth - 1))
        units = sorted({int(r["units"]) for r in records})
        ax.set_xscale("log", base=2)
        ax.set_xticks([u for u in units if u & (u - 1) == 0],
                      [str(u) for u in units if u & (u - 1) == 0])
        ax.minorticks_off()
        ax.set_xlabel("total hidden units")
        ax.set_ylabel("test RMSE (mean over networks with that total)")
        ax.set_title("Test RMSE against hidden units")
        plots.place_legend(ax)
    return _save(fig, ctx, "rmse_vs_units", note)


def _rmse_vs_params(records: Sequence[Record], ctx: ReportContext, note: str) -> Path:
    fig, ax = plots.subplots()
    with plots.style():
        for i, (depth, mine) in enumerate(by_depth(records).items()):
            colour = plots.PALETTE[i % len(plots.PALETTE)]
            ax.scatter([r["params"] for r in mine], [r["test_rmse"] for r in mine], s=12,
                       alpha=0.35, color=colour)
            rows = sorted(averaged(mine), key=lambda row: row[2])  # by parameters: no backtrack
            ax.plot([p for *_, p, _ in rows], [m for _, m, *_ in rows],
                    label=DEPTH_LABEL[depth], **{**plots.series_style(depth - 1),
                                                "color": colour})
        plots.log_axis(ax, "x", values=[r["params"] for r in records])
        ax.set_xlabel("parameters (archcalc)")
        ax.set_ylabel("test RMSE")
        ax.set_title("Test RMSE against parameters (dots: networks; lines: same-total "
                     "means, by parameters)", fontsize="medium")
        plots.place_legend(ax)
    return _save(fig, ctx, "rmse_vs_params", note)


def _time_vs_params(records: Sequence[Record], ctx: ReportContext, note: str) -> Path:
    fig, ax = plots.subplots()
    with plots.style():
        for depth, mine in by_depth(records).items():
            look = plots.series_style(depth - 1)
            ax.scatter([r["params"] for r in mine], [r["train_time_s"] for r in mine], s=14,
                       marker=look["marker"], color=look["color"], label=DEPTH_LABEL[depth])
        plots.log_axis(ax, "x", values=[r["params"] for r in records])
        plots.log_axis(ax, "y", values=[r["train_time_s"] for r in records])
        ax.set_xlabel("parameters (archcalc)")
        ax.set_ylabel("training wall time (s)")
        ax.set_title("Training time against parameters")
        plots.place_legend(ax)
    return _save(fig, ctx, "time_vs_params", note)


# -- text -----------------------------------------------------------------------------------
def markdown(results: Mapping[str, Any], records: Sequence[Record], training: str = "") -> str:
    parts = ["# depth-width: depth against width on the Eggholder function", _intro(results)]
    if training:
        parts.append(training)
    if results["reduced"]:
        parts.append("> **Reduced run** (not the seed's protocol): "
                     + "; ".join(results["reduced"]) + ". Its numbers show the pipeline "
                     "works; they do not answer the question.")
    diverged = [r["key"] for r in results["configs"] if r["test_rmse"] is None]
    if diverged:
        parts.append(f"Diverged (left out): {', '.join(diverged)}.")
    if records:
        parts += ["## Networks per depth", _depth_table(results, records),
                  "## Test RMSE by total hidden units (mean over same-total networks)",
                  _units_table(records), "![test RMSE vs hidden units](plots/rmse_vs_units.png)",
                  "![test RMSE vs parameters](plots/rmse_vs_params.png)",
                  "## Trade-off",
                  f"{RUN_SHOWN} (the answer depends on these numbers; a full run replaces "
                  "them" + (f"; {partial}, so only the stored networks are compared"
                            if (partial := partial_note(results)) else "") + "):",
                  tradeoff(records, results["device"] == "cpu"),
                  "![training time vs parameters](plots/time_vs_params.png)"]
    return "\n\n".join(parts) + "\n"


def _intro(results: Mapping[str, Any]) -> str:
    d, s = results["data"], results["session"]
    rate = f", {s['flop_rate'] / 1e9:.2f} GFLOP/s of training" if s.get("flop_rate") else ""
    return (f"{d['points']:,} points ({d['train']:,} train / {d['test']:,} test), noise std "
            f"{d['noise_std']}; targets standardised (mean {d['y_mean']:.2f}, std "
            f"{d['y_std']:.2f}), RMSE in the original units of f. Hardware: "
            f"{hardware_text(results['hardware'])}. Last session trained {s['configs']} "
            f"networks in {seconds(s['wall_s'])}{rate}.")


def _depth_table(results: Mapping[str, Any], records: Sequence[Record]) -> str:
    lines = ["| hidden layers | networks | best (widths) | test RMSE | train RMSE | params | "
             "median train time (s) |", "|---|---|---|---|---|---|---|"]
    partial = bool(partial_note(results))
    for depth, mine in by_depth(records).items():
        best = min(mine, key=lambda r: r["test_rmse"])
        count = results['networks_per_depth'].get(str(depth), len(mine))
        lines.append(f"| {depth} | {f'{len(mine)} of {count}' if partial else count} "
                     f"| {best['key']} | {best['test_rmse']:.2f} | {best['train_rmse']:.2f} | "
                     f"{best['params']:,} | "
                     f"{human(statistics.median(r['train_time_s'] for r in mine))} |")
    return "\n".join(lines)


def _units_table(records: Sequence[Record]) -> str:
    depths = by_depth(records)
    table = {d: {u: m for u, m, _, _ in averaged(rs)} for d, rs in depths.items()}
    units = sorted({u for t in table.values() for u in t})
    lines = ["| total units | " + " | ".join(DEPTH_LABEL[d] for d in depths) + " |",
             "|---|" + "---|" * len(depths)]
    for u in units:
        cells = [f"{table[d][u]:.2f}" if u in table[d] else "" for d in depths]
        lines.append(f"| {u} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def tradeoff(records: Sequence[Record], on_cpu: bool = False) -> str:
    """Bullet points on RMSE against parameters and time, all computed from ``records``."""
    depths = by_depth(records)
    best = {d: min(rs, key=lambda r: r["test_rmse"]) for d, rs in depths.items()}
    lo, hi = min(best), max(best)
    points = [_best_compared(best[lo], best[hi])]
    if lo != hi:
        points.append(_cheapest_beating(best[lo], depths[hi]))
    points.append(_time_sentence(records, depths, on_cpu))
    return "\n".join(f"- {p}" for p in points)


def _best_compared(shallow: Record, deep: Record) -> str:
    if shallow is deep:
        return (f"Only one depth was trained; its best network is {shallow['key']} "
                f"(RMSE {shallow['test_rmse']:.2f}, {shallow['params']:,} parameters).")
    better = "lower" if deep["test_rmse"] < shallow["test_rmse"] else "higher"
    return (f"The best {deep['layers']}-layer network ({deep['key']}: RMSE "
            f"{deep['test_rmse']:.2f}, {deep['params']:,} parameters) has {better} test RMSE "
            f"than the best {shallow['layers']}-layer one ({shallow['key']}: "
            f"{shallow['test_rmse']:.2f}, {shallow['params']:,} parameters): "
            f"{deep['test_rmse'] / shallow['test_rmse']:.2f}x the error for "
            f"{deep['params'] / shallow['params']:.1f}x the parameters and "
            f"{deep['train_time_s'] / shallow['train_time_s']:.1f}x the training time.")


def _cheapest_beating(shallow: Record, deep: Sequence[Record]) -> str:
    winners = [r for r in deep if r["test_rmse"] < shallow["test_rmse"]]
    depth = deep[0]["layers"]
    if not winners:
        return (f"No {depth}-layer network beats the best {shallow['layers']}-layer one, so "
                "depth bought nothing here for any number of parameters.")
    cheapest = min(winners, key=lambda r: r["params"])
    return (f"{len(winners)} of {len(deep)} {depth}-layer networks beat the best "
            f"{shallow['layers']}-layer one; the smallest of them, {cheapest['key']}, has "
            f"{cheapest['params']:,} parameters ({cheapest['params'] / shallow['params']:.1f}x "
            f"those of {shallow['key']}).")


def cpu_wait(records: Sequence[Record]) -> float:
    """Median wall / CPU time of the networks (1.0 without CPU times); a single-thread
    worker that never waited for a core scores about 1."""
    ratios = [r["train_time_s"] / r["train_cpu_s"] for r in records if r.get("train_cpu_s")]
    return statistics.median(ratios) if ratios else 1.0


def _time_sentence(records: Sequence[Record], depths: Mapping[int, Sequence[Record]],
                   on_cpu: bool) -> str:
    rho = spearman([r["params"] for r in records], [r["train_time_s"] for r in records])
    per_param = {d: statistics.median(r["train_time_s"] / r["params"] * 1e3 for r in rs)
                 for d, rs in depths.items()}
    error = spearman([r["params"] for r in records], [r["test_rmse"] for r in records])
    shape = ("grows with the parameter count" if rho > 0.5 else
             "follows the parameter count only loosely" if rho > 0 else
             "does not grow with the parameter count")
    answer = ("so the trade-off carries over to time: more parameters buy lower error and "
              "cost more time" if rho > 0.5 and error < -0.5 else
              "so the trade-off in time is weaker than in error")
    text = (f"Training time {shape} (Spearman rank correlation {rho:.2f} over "
            f"{len(records)} networks; test RMSE against parameters: {error:.2f}), {answer}. "
            "Median milliseconds per parameter: "
            + ", ".join(f"{DEPTH_LABEL[d]} {v:.3g}" for d, v in per_param.items()) + ".")
    waiting = cpu_wait(records) if on_cpu else 1.0
    if waiting > WAITING:
        text += (f" The median network's wall time was {waiting:.2f}x its CPU time: the "
                 "workers waited for a busy machine, so these times overstate the cost.")
    lo, hi = min(per_param), max(per_param)
    if per_param[hi] > per_param[lo]:
        text += (f" Per parameter the {hi}-layer networks train slower than the {lo}-layer "
                 "ones (likely batch norm and a longer chain of small sequential matrix "
                 "products, costs a parameter count does not show).")
    return text


def spearman(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Rank correlation (ties get their mean rank); 0 for fewer than 2 points."""
    if len(xs) < 2:
        return 0.0
    rx, ry = _ranks(xs), _ranks(ys)
    mx, my = statistics.fmean(rx), statistics.fmean(ry)
    cov = sum((a - mx) * (b - my) for a, b in zip(rx, ry, strict=True))
    var = (sum((a - mx) ** 2 for a in rx) * sum((b - my) ** 2 for b in ry)) ** 0.5
    return cov / var if var else 0.0


def _ranks(values: Sequence[float]) -> list[float]:
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2
        i = j + 1
    return ranks
