"""``hw3 report`` for the ``optimizers`` plugin: plots, tables and a summary from results alone.

Every statement in the summary is computed from the stored records: the best method of a
part is the one with the lowest final training loss (full pass of the deterministic network,
the same network that is tested), never a name written in advance. torch-free.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from trainers import plots
from trainers.api import ReportContext, Summary
from trainers.progress import fmt
from trainers.reporting import RUN_SHOWN, human, partial_note, reduced_banner, reductions
from trainers.runtime import hardware_text

Record = Mapping[str, Any]
LOSS = "full_train_loss"


# -- numbers ---------------------------------------------------------------------------------
def final(training: Record) -> Record:
    """The last epoch's record of one training."""
    return training["history"][-1]  # type: ignore[no-any-return]


def _rank(value: float) -> float:
    return math.inf if math.isnan(value) else value  # a diverged run ranks last


def variants(trainings: Sequence[Record]) -> list[str]:
    return list(dict.fromkeys(t["variant"] for t in trainings))


def methods(trainings: Sequence[Record]) -> list[str]:
    return list(dict.fromkeys(t["method"] for t in trainings))


def find(trainings: Sequence[Record], variant: str, method: str) -> Record | None:
    return next((t for t in trainings if t["variant"] == variant and t["method"] == method),
                None)


def ranking(trainings: Sequence[Record], variant: str, key: str = LOSS) -> list[tuple[str, float]]:
    """(method, final value of ``key``) of one variant, lowest first."""
    rows = [(t["method"], float(final(t)[key])) for t in trainings if t["variant"] == variant]
    return sorted(rows, key=lambda row: _rank(row[1]))


def best_by_variant(trainings: Sequence[Record]) -> dict[str, tuple[str, float]]:
    """Per variant: the method with the lowest final training loss, and that loss."""
    return {v: ranking(trainings, v)[0] for v in variants(trainings)}


# -- tables ------------------------------------------------------------------------------------
def best_rows(trainings: Sequence[Record]) -> list[dict[str, Any]]:
    """Per variant: the homework's best (lowest final full-pass training loss), its loss and
    the runner-up's. The other two losses rank differently for reasons MEASURES states."""
    rows = []
    for v in variants(trainings):
        ranked = ranking(trainings, v)
        (method, loss), runner = ranked[0], ranked[1] if len(ranked) > 1 else ("-", math.nan)
        rows.append({"variant": v, "best method": method, "final training loss": human(loss),
                     "runner-up": runner[0], "runner-up loss": human(runner[1])})
    return rows


MEASURES = (
    (LOSS, "training loss, full pass",
     "cross-entropy of the deterministic network (dropout off, test-time weights) over the "
     "whole training set after the last epoch: the homework's training loss, and the ranking "
     "above"),
    ("full_train_objective", "objective, full pass",
     "the same plus the L2 penalty: a method whose weights grew larger ranks lower here"),
    ("train_loss", "mean minibatch loss",
     "the mean over the last epoch's minibatches, each measured before its step and, with "
     "dropout, on a randomly thinned network: it lags the weights and carries the dropout "
     "noise"))


def measure_rows(trainings: Sequence[Record]) -> list[dict[str, Any]]:
    """The best method of each variant by each of the three recorded losses."""
    return [{"loss": title, **{v: ranking(trainings, v, key)[0][0] for v in variants(trainings)}}
            for key, title, _ in MEASURES]


def measures_text(trainings: Sequence[Record]) -> str:
    """Why three losses can name three different winners, and whether they did here."""
    disagree = [v for v in variants(trainings)
                if len({ranking(trainings, v, key)[0][0] for key, *_ in MEASURES}) > 1]
    lines = [f"- **{title}**: {why}." for _, title, why in MEASURES]
    verdict = (f"{RUN_SHOWN}, the three disagree for {' and '.join(disagree)}: with differences "
               "this small, which loss is measured decides the winner." if disagree else
               f"{RUN_SHOWN}, all three name the same method for each variant.")
    return "\n".join(lines) + "\n\n" + verdict


def time_rows(trainings: Sequence[Record]) -> list[dict[str, Any]]:
    """Training seconds per method and variant, and dropout / l2 where both ran."""
    rows = []
    for m in methods(trainings):
        row: dict[str, Any] = {"method": m}
        for v in variants(trainings):
            t = find(trainings, v, m)
            row[f"{v} (s)"] = t["train_seconds"] if t is not None else math.nan
        if "l2 (s)" in row and "dropout (s)" in row:
            row["dropout / l2"] = f"{row['dropout (s)'] / row['l2 (s)']:.2f}x"
        rows.append({k: human(v) if isinstance(v, float) else v for k, v in row.items()})
    return rows


def accuracy_rows(trainings: Sequence[Record]) -> list[dict[str, Any]]:
    """Final test accuracy of every training (dropout networks weight-scaled)."""
    rows = []
    for m in methods(trainings):
        row: dict[str, Any] = {"method": m}
        for v in variants(trainings):
            t = find(trainings, v, m)
            row[v] = f"{float(final(t)['test_acc']):.2%}" if t is not None else "-"
        rows.append(row)
    return rows


def result_rows(trainings: Sequence[Record]) -> list[tuple[str, list[dict[str, Any]]]]:
    """The three result tables, titled, for the run's console and the summary."""
    return [("Best method by final training loss", best_rows(trainings)),
            ("Best method by each recorded loss", measure_rows(trainings)),
            ("Training time per method (s, training alone)", time_rows(trainings)),
            ("Test accuracy (weight-scaled for dropout)", accuracy_rows(trainings))]


def markdown_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """Rows as a GitHub Markdown table, floats to 4 significant digits."""
    columns = list(dict.fromkeys(k for row in rows for k in row))
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(row.get(c, "")) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


# -- plots -------------------------------------------------------------------------------------
def _curve(training: Record, key: str) -> tuple[list[int], list[float]]:
    history = training["history"]
    return [h["epoch"] for h in history], [float(h[key]) for h in history]


def _finish(fig: Any, ax: Any, title: str, stand_in: bool, path: Path,
            outside: bool = False, partial: str = "") -> list[Path]:
    values = [float(v) for line in ax.get_lines() for v in line.get_ydata()]
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss (cross-entropy)" + (", log scale" if plots.log_axis(
        ax, "y", values=values) else ""))
    plots.integer_ticks(ax, "x")
    ax.set_title(title + (f"\n({partial.upper()})" if partial else ""))
    if outside:  # ten entries: beside the axes, where no curve can be
        ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0),
                  borderaxespad=0)
    else:
        plots.place_legend(ax, fontsize="small")
    if stand_in:
        plots.stamp_synthetic(fig)
    return plots.save_figure(fig, path)


def plot_variant(trainings: Sequence[Record], variant: str, stand_in: bool,
                 path: Path, partial: str = "") -> list[Path]:
    """Five methods of one variant: full pass (solid) and mean minibatch loss (dashed)."""
    fig, ax = plots.subplots()
    for i, t in enumerate(x for x in trainings if x["variant"] == variant):
        colour = plots.PALETTE[i % len(plots.PALETTE)]
        marker = "o" if len(t["history"]) <= 20 else None
        ax.plot(*_curve(t, LOSS), color=colour, marker=marker, label=t["method"])
        ax.plot(*_curve(t, "train_loss"), color=colour, linestyle="--", linewidth=0.9)
    return _finish(fig, ax, f"{variant}: solid full pass, dashed minibatch mean", stand_in,
                   path, partial=partial)


def plot_both(trainings: Sequence[Record], stand_in: bool, path: Path,
              partial: str = "") -> list[Path]:
    """Both variants together: colour is the method, line style the variant."""
    fig, ax = plots.subplots(figsize=(8.4, 4.0))
    styles = dict(zip(variants(trainings), ("-", "--", ":", "-."), strict=False))
    colours = {m: plots.PALETTE[i % len(plots.PALETTE)] for i, m in enumerate(methods(trainings))}
    for t in trainings:
        marker = "o" if len(t["history"]) <= 20 else None
        ax.plot(*_curve(t, LOSS), color=colours[t["method"]], linestyle=styles[t["variant"]],
                marker=marker, label=f"{t['method']} ({t['variant']})")
    return _finish(fig, ax, "Full-pass training loss, " + " vs ".join(styles), stand_in, path,
                   outside=True, partial=partial)


def draw(trainings: Sequence[Record], ctx: ReportContext, partial: str = "") -> list[Path]:
    saved = []
    for v in variants(trainings):
        saved += plot_variant(trainings, v, ctx.stand_in, ctx.plot_path(f"loss-{v}"),
                              partial)
    saved += plot_both(trainings, ctx.stand_in, ctx.plot_path("loss-both"), partial)
    return saved


# -- the summary ---------------------------------------------------------------------------
REDUCIBLE = ("epochs", "batch_size", "methods", "variants", "hidden")
WHY = {
    "adagrad": "its per-parameter steps start large and shrink as squared gradients add up, "
               "which favours short runs and rarely active inputs",
    "rmsprop": "it normalises each parameter's step by its recent gradient size, so no "
               "parameter stalls and steps do not decay to zero",
    "rmsprop-nesterov": "it adds a velocity to RMSProp's normalised steps, and takes the "
                        "gradient at the look-ahead point, which speeds up consistent "
                        "directions",
    "adadelta": "its step is the ratio of recent update and gradient sizes, so it adapts "
                "without a learning rate to tune",
    "adam": "it combines momentum (a smoothed direction) with RMSProp's per-parameter size "
            "and corrects both for their start at zero",
}


def summarize(results: Mapping[str, Any], ctx: ReportContext) -> Summary:
    trainings = results["trainings"]
    partial = partial_note(results)
    saved = draw(trainings, ctx, partial)
    reduced = reductions(ctx.config, REDUCIBLE)
    parts = [_intro(results, ctx.config), reduced_banner(reduced, ctx.stand_in),
             test_network(ctx.config), _findings(trainings), answer(trainings, partial)]
    for title, rows in result_rows(trainings):
        parts.append(f"## {title}\n\n{markdown_table(rows)}")
        if title.startswith("Best method by each"):
            parts.append(measures_text(trainings))
    parts.append("## Plots\n\n" + "\n\n".join(_plot_line(p, saved) for p in saved
                                                 if p.suffix == ".png"))
    return Summary("\n\n".join(parts) + "\n", tuple(saved))


def _plot_line(png: Path, saved: Sequence[Path]) -> str:
    """The PNG shown, its SVG linked (so the host adds no second list of plots)."""
    svg = [f" ([SVG](plots/{p.name}))" for p in saved if p == png.with_suffix(".svg")]
    return f"![{png.stem}](plots/{png.name}){''.join(svg)}"


def _intro(results: Mapping[str, Any], config: Any) -> str:
    model = results["model"]
    return (f"# optimizers: adaptive learning-rate methods on CIFAR-10 (Problem 1)\n\n"
            f"Model `{model['spec']}` with {model['hidden']} units per hidden layer: "
            f"{model['params']:,} parameters, {model['flops_per_sample']:,} FLOPs per sample "
            f"(archcalc). Batch {config.batch_size}, {config.epochs} epochs, L2 coefficient "
            f"{config.weight_decay:g}; dropout {config.dropout_input:g} (input) and "
            f"{config.dropout_hidden:g} (hidden), {config.dropout_style} style. "
            f"Hardware: {hardware_text(results['hardware'])}. Data: {results['data']}.")


def test_network(config: Any) -> str:
    """Part 4: the weight scaling the test network actually applied."""
    q_in, q_hidden = 1 - config.dropout_input, 1 - config.dropout_hidden
    if config.dropout_style == "classic":
        how = (f"keeps every unit and multiplies the weights leaving each dropped layer by "
               f"its keep probability: the first layer's weights (fed by the input, dropout "
               f"{config.dropout_input:g}) by **{q_in:g}**, each later layer's (fed by a "
               f"hidden layer, dropout {config.dropout_hidden:g}) by **{q_hidden:g}**")
    else:
        how = (f"keeps every unit with weights unchanged (factor **1**): inverted dropout "
               f"already divided the kept units by {q_in:g} (input) and {q_hidden:g} "
               f"(hidden) during training")
    return f"**Test network (part 4).** For the dropout variant the tested network {how}."


def _findings(trainings: Sequence[Record]) -> str:
    lines = ["## Findings", ""]
    for v, (method, loss) in best_by_variant(trainings).items():
        said = f"only {method} ran; its training loss is" if len(ranking(trainings, v)) == 1 \
            else f"{method} reaches the lowest training loss,"
        lines.append(f"- **{v}**: {said} {human(loss)} (full pass of the deterministic "
                     "network after the last epoch).")
    lines += _dropout_effect(trainings)
    acc = max(trainings, key=lambda t: float(final(t)["test_acc"]))
    lines.append(f"- Highest test accuracy: {acc['method']} ({acc['variant']}), "
                 f"{float(final(acc)['test_acc']):.2%}.")
    return "\n".join(lines)


def answer(trainings: Sequence[Record], partial: str = "") -> str:
    """The seed's question, which method is best and why, answered from this run only (of a
    partial run: among the trainings that finished)."""
    best = best_by_variant(trainings)
    names = {m for m, _ in best.values()}
    lines = ["## Which method is best, and why", ""]
    if partial:
        lines += [f"Only the trainings that finished are compared ({partial}): a method "
                  "that did not run may be better.", ""]
    if all(len(ranking(trainings, v)) == 1 for v in best):
        lines.append("- One method ran for each variant, so this run ranks none: "
                     + "; ".join(f"{v}: {m} ({human(loss)})" for v, (m, loss) in best.items())
                     + ".")
        return "\n".join(lines)
    for v, (method, loss) in best.items():
        ranked = ranking(trainings, v)
        runner = ranked[1][1] if len(ranked) > 1 else math.nan
        gap = (runner - loss) / runner if runner > 0 else math.nan
        margin = (f", {gap:.0%} below the runner-up {ranked[1][0]}" if gap == gap else "")
        lines.append(f"- {RUN_SHOWN}, with {v} the best by final training loss is {method} "
                     f"({human(loss)}{margin}).")
    lines.append("- " + ("One variant ran" if len(best) == 1 else
                         "The same method wins both variants" if len(names) == 1 else
                         "The variants have different winners") +
                 "; a mechanism that can explain it: " +
                 "; ".join(f"{m}: {WHY[m]}" for m in sorted(names) if m in WHY) + ".")
    lines.append("- Rankings of runs this short, or on stand-in data, can change with the "
                 "seed and with more epochs; a full run on CIFAR-10 answers for the homework.")
    return "\n".join(lines)


def _dropout_effect(trainings: Sequence[Record]) -> list[str]:
    pairs = [(find(trainings, "l2", m), find(trainings, "dropout", m)) for m in methods(trainings)]
    both = [(a, b) for a, b in pairs if a is not None and b is not None]
    if not both:
        return []
    higher = sum(_rank(float(final(b)[LOSS])) > _rank(float(final(a)[LOSS])) for a, b in both)
    ratios = [b["train_seconds"] / a["train_seconds"] for a, b in both]
    return [f"- Dropout ends with a higher training loss than L2 alone for {higher} of "
            f"{len(both)} methods.",
            f"- Training with dropout takes {min(ratios):.2f}x to {max(ratios):.2f}x the time "
            f"without (median {statistics.median(ratios):.2f}x)."]
