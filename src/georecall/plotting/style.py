"""One figure style for every georecall figure, and the paper's symbols (torch-free).

Figures are bare Agg ``Figure`` objects (no pyplot state; library code never calls
``matplotlib.use``), drawn inside :func:`figure_style`, saved as PNG by :func:`save`.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from georecall.results.atomic import write_atomic

#: The paper's symbols, used in every axis label and title.
SYMBOLS: dict[str, str] = {
    "n_subjects": "N", "n_relations": "K", "d_model": "d", "n_hops": "k", "d_mlp": "d_mlp",
    "k_log2_n": "K log₂ N", "log2_n": "log₂ N", "nk": "N·K",
}
#: Axis labels built from the symbols.
LABELS: dict[str, str] = {
    "n_subjects": "N (subjects)", "n_relations": "K (relations)", "d_model": "d (embedding dimension)",
    "n_hops": "k (hops)", "d_mlp": "d_mlp (MLP width)", "k_log2_n": "K log₂ N", "nk": "N·K (facts)",
    "accuracy": "accuracy", "params": "parameters",
}
_RC: dict[str, Any] = {
    "font.size": 8, "axes.titlesize": 8, "axes.labelsize": 8, "legend.fontsize": 7, "xtick.labelsize": 7,
    "ytick.labelsize": 7, "axes.grid": True, "grid.alpha": 0.3, "lines.markersize": 4, "errorbar.capsize": 2,
    "savefig.dpi": 110, "figure.dpi": 110,
}


@contextlib.contextmanager
def figure_style() -> Iterator[None]:
    """The georecall rcParams for the figures drawn inside the block (restored after)."""
    import matplotlib

    with matplotlib.rc_context(_RC):
        yield


def new_figure(nrows: int = 1, ncols: int = 1, *, width: float = 6.4, height: float = 4.0) -> tuple[Any, Any]:
    """A bare Agg Figure with constrained layout and its 2-D array of axes (``squeeze=False``)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.subplots(nrows, ncols, squeeze=False)


def save(fig: Any, path: str | os.PathLike[str]) -> Path:
    """Save ``fig`` as a PNG at ``path`` (written to a temp name, then renamed); returns the path."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return write_atomic(path, buf.getvalue())


# ---------------------------------------------------------------------------------------------------
# Helpers shared by the experiment figures

#: Legend wording of the seed error bars drawn by :func:`seed_spread` users.
SEED_BARS = "mean over seeds; bars: min–max over seeds"


def seed_spread(values: Any) -> tuple[float, float, float] | None:
    """``(mean, min, max)`` over the seeds' values (None entries, failed runs, skipped); None if none is left."""
    vals = [float(v) for v in (values or []) if v is not None]
    if not vals:
        return None
    return sum(vals) / len(vals), min(vals), max(vals)


def external_label(text: str, source: str) -> str:
    """The legend label of a reference value taken from another paper, never presented as this paper's."""
    return f"external reference, not this paper: {text} ({source})"


def integer_ticks(ax: Any, axis: str, values: Any) -> None:
    """Plain integer tick labels at exactly ``values`` on a (log) axis ``"x"`` or ``"y"``, no minor ticks."""
    from matplotlib.ticker import FixedFormatter, FixedLocator, NullLocator

    vals = sorted({int(v) for v in values})
    target = ax.xaxis if axis == "x" else ax.yaxis
    target.set_major_locator(FixedLocator(vals))
    target.set_major_formatter(FixedFormatter([str(v) for v in vals]))
    target.set_minor_locator(NullLocator())


def log2_axis(ax: Any, axis: str = "x") -> None:
    """A base-2 log axis with plain numbers (8, 16, 32, ...) as tick labels."""
    from matplotlib.ticker import ScalarFormatter

    if axis == "x":
        ax.set_xscale("log", base=2)
        ax.xaxis.set_major_formatter(ScalarFormatter())
    else:
        ax.set_yscale("log", base=2)
        ax.yaxis.set_major_formatter(ScalarFormatter())


def empty_panel(ax: Any, text: str) -> None:
    """Write ``text`` in the middle of an axes that has nothing to draw (so a figure never looks broken)."""
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize=8, color="0.3")
