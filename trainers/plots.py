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
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from matplotlib.text import Text

SYNTHETIC_NOTE = "stand-in (synthetic) data"
FORMATS = ("png", "svg")
# Okabe & Ito's palette: distinguishable with the common colour-vision deficiencies.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442",
           "#000000")
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
