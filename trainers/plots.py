"""One look for every plugin's figures, saved as PNG (to view) and SVG (to print and diff).

matplotlib is imported inside the functions (``hw3 list`` never loads it). The style is an
``rcParams`` context, not a change at import, so importing this module alters nothing; the
Agg backend is forced on first use, because runs happen on headless machines and in CI.

Typical use, all inside the style so lines and labels pick it up::

    with plots.style():
        fig, ax = plots.subplots()
        ax.plot(epochs, loss, label="SGD")
        if synthetic:
            plots.stamp_synthetic(fig)
        plots.save_figure(fig, run_dir / "plots" / "loss")
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.legend import Legend
    from matplotlib.text import Text

SYNTHETIC_NOTE = "stand-in (synthetic) data"
FORMATS = ("png", "svg")
# Okabe & Ito's palette: distinguishable with the common colour-vision deficiencies.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442",
           "#000000")
# Marker and line style per series, so series with equal values stay visible on top of
# each other (ring under nccl, M=1 under M=2).
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
LINESTYLES = ("-", "--", ":", "-.")
STYLE: dict[str, Any] = {
    "figure.figsize": (6.4, 4.0),
    "figure.dpi": 100,
    "savefig.dpi": 150,
    "savefig.bbox": "tight",
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "axes.grid": True,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.prop_cycle": f"cycler('color', {list(PALETTE)!r})",
    "grid.alpha": 0.3,
    "legend.frameon": False,
    "lines.linewidth": 1.6,
    "image.cmap": "viridis",
    "svg.fonttype": "none",  # text stays text: searchable, and diffs show label changes
    "svg.hashsalt": "hw3",  # stable element ids, so identical plots give identical files
}
# Without a date stamp the same figure writes the same bytes, so reruns do not churn files.
_METADATA: dict[str, dict[str, Any]] = {"svg": {"Date": None}, "png": {}}


def use_agg() -> None:
    """Switch matplotlib to Agg (headless) unless it already is."""
    import matplotlib

    if matplotlib.get_backend().lower() != "agg":
        matplotlib.use("Agg", force=True)


@contextmanager
def style() -> Iterator[None]:
    """The house look for everything drawn inside the block; rcParams are restored after."""
    import matplotlib

    use_agg()
    with matplotlib.rc_context(cast(Any, STYLE)):  # the stubs list every key as a Literal
        yield


def subplots(nrows: int = 1, ncols: int = 1, **kwargs: Any) -> tuple[Figure, Any]:
    """A styled figure kept out of pyplot's registry, so many runs leak no open figures."""
    from matplotlib.figure import Figure

    figsize = kwargs.pop("figsize", None)
    with style():
        fig = Figure(figsize=figsize, layout="constrained")
        axes = fig.subplots(nrows, ncols, **kwargs)
    return fig, axes


def footnote(fig: Figure, text: str) -> Text:
    """Small grey italic text just below the figure's bottom-right corner (kept by the
    tight bounding box, clear of the x label)."""
    return fig.text(0.99, 0.0, text, ha="right", va="top", fontsize="small", color="0.4",
                    style="italic")


def stamp_synthetic(fig: Figure) -> Text:
    """Mark a figure drawn from generated data, so it is never taken for a real result."""
    return footnote(fig, SYNTHETIC_NOTE)


def save_figure(fig: Figure, path_without_suffix: str | os.PathLike[str],
                formats: Sequence[str] = FORMATS) -> list[Path]:
    """Write ``<path>.png`` and ``<path>.svg``; each appears whole or not at all.

    The suffix is appended, never substituted, so names such as ``loss-lr0.1`` survive.
    """
    base = Path(path_without_suffix)
    base.parent.mkdir(parents=True, exist_ok=True)
    with style():
        paths = [_save_atomic(fig, base.with_name(f"{base.name}.{fmt}"), fmt)
                 for fmt in formats]
    if "matplotlib.pyplot" in sys.modules:  # a figure made with pyplot: release it
        import matplotlib.pyplot as plt

        plt.close(fig)
    return paths


def _save_atomic(fig: Figure, path: Path, fmt: str) -> Path:
    """Render to a temporary file beside ``path``, then rename over it (atomic on POSIX)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fig.savefig(fh, format=fmt, metadata=_METADATA.get(fmt, {}))
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; plots are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


# -- axes that read ----------------------------------------------------------------------------
def integer_ticks(ax: Axes, axis: str = "x") -> None:
    """Whole-number ticks (epochs, learners, M): never "1.5 epochs". One tick is enough: with
    the default two, a single epoch's axis (0.95 to 1.05) got fractional ones."""
    from matplotlib.ticker import MaxNLocator

    getattr(ax, f"{axis}axis").set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))


def log_axis(ax: Axes, axis: str = "y", base: int = 10, values: Sequence[float] = ()) -> bool:
    """A log axis labelled in plain numbers at 1-2-5 steps (``0.2``, ``50``; never ``2x10^0``,
    and no minor labels to collide). Kept linear, and False returned, when ``values`` span
    less than a factor of 4 (a log axis then shows one tick or none) or hold a value <= 0."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    finite = [v for v in values if v == v]
    if finite and (min(finite) <= 0 or max(finite) / min(finite) < 4):
        return False
    getattr(ax, f"set_{axis}scale")("log", base=base)
    target = getattr(ax, f"{axis}axis")
    subs = (1.0,) if base == 2 else (1.0, 2.0, 5.0)
    target.set_major_locator(LogLocator(base=base, subs=subs))
    target.set_major_formatter(FuncFormatter(lambda v, _: plain_number(v)))
    target.set_minor_formatter(NullFormatter())
    return True


def plain_number(value: float) -> str:
    """A tick value in positional notation: ``0.00005``, ``100000``; never ``5e-05``."""
    import numpy as np

    return str(np.format_float_positional(value, precision=6, trim="-"))


def fraction_axis(ax: Axes, label: str) -> None:
    """A share in [0, 1] drawn on all of [0, 1], so a change of half a percent looks like one."""
    ax.set_ylim(0, 1)
    ax.set_ylabel(label)


def from_zero(ax: Axes) -> None:
    """Start a linear y axis at 0 (throughput, seconds): bars and gaps keep their proportion."""
    ax.set_ylim(bottom=0)


def place_legend(ax: Axes, **kwargs: Any) -> Legend | None:
    """A legend inside the axes where it covers no data point; outside to the right if no
    such place exists. None when nothing is labelled (every depth-width network diverged),
    instead of matplotlib's "No artists with labels" warning in the terminal."""
    if not ax.get_legend_handles_labels()[1]:
        return None
    legend = ax.legend(loc="best", **kwargs)
    if covered_points(ax, legend):
        legend.remove()
        legend = ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0,
                           **kwargs)
    return legend


def covered_points(ax: Axes, legend: Legend | None = None) -> int:
    """How many data points (line vertices, scatter points, bar tops) the legend's box
    covers on screen; what the plot tests check."""
    import numpy as np
    from matplotlib.patches import Rectangle

    legend = legend or ax.get_legend()
    if legend is None:
        return 0
    box = legend.get_window_extent(_drawn(ax))
    points = [np.asarray(line.get_xydata()) for line in ax.get_lines()
              if line.get_label() and not str(line.get_label()).startswith("_ref")]
    points += [np.asarray(c.get_offsets()) for c in ax.collections]
    points += [np.array([[r.get_x() + r.get_width() / 2, r.get_y() + r.get_height()]])
               for r in ax.patches if isinstance(r, Rectangle)]
    xy = np.concatenate([p.reshape(-1, 2) for p in points if p.size]) if points \
        else np.empty((0, 2))
    if not len(xy):
        return 0
    screen = ax.transData.transform(xy)
    inside = ((screen[:, 0] >= box.x0) & (screen[:, 0] <= box.x1)
              & (screen[:, 1] >= box.y0) & (screen[:, 1] <= box.y1))
    return int(inside.sum())


def _drawn(ax: Axes) -> Any:
    """Lay the figure out and draw it (Agg), so positions on screen are final; the renderer."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = ax.get_figure(root=True)
    assert isinstance(fig, Figure)
    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    canvas.draw()
    return canvas.get_renderer()


def series_style(i: int) -> dict[str, Any]:
    """Colour, marker and line style of the i-th series: overlapping series stay apart."""
    return {"color": PALETTE[i % len(PALETTE)], "marker": MARKERS[i % len(MARKERS)],
            "linestyle": LINESTYLES[i % len(LINESTYLES)],
            "markersize": 8 - 2 * (i % 3), "markerfacecolor": "none" if i % 2 else None}


def grouped_bars(ax: Axes, groups: Sequence[str], series: Mapping[str, Sequence[float | None]],
                 missing: str = "n/a") -> None:
    """One cluster of bars per group, one bar per series; a missing value is written as
    ``missing`` at the foot of its slot instead of a bar, so nothing silently vanishes."""
    width = 0.8 / max(1, len(series))
    for i, (name, values) in enumerate(series.items()):
        xs = [g + (i - (len(series) - 1) / 2) * width for g in range(len(groups))]
        ax.bar([x for x, v in zip(xs, values, strict=True) if v is not None],
               [v for v in values if v is not None], width * 0.9, label=name,
               color=PALETTE[i % len(PALETTE)])
        for x, v in zip(xs, values, strict=True):
            if v is None:
                ax.text(x, 0.02, missing, ha="center", va="bottom", fontsize="small",
                        rotation=90, color="0.3", transform=ax.get_xaxis_transform())
    ax.set_xticks(range(len(groups)), list(groups))
    ax.set_xlim(-0.5, len(groups) - 0.5)  # every slot shown, an empty last one too
    ax.grid(axis="x", visible=False)
