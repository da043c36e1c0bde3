"""Figures of the ``transfer`` experiment, drawn from its payload alone (torch-free).

* ``transfer_vs_d.png`` / ``.csv``: on new bijections, against d / d* per condition (mean over seeds, bars
  min–max over seeds): the zero-shot accuracy, the embeddings-only final accuracy and the untrained-body
  control (dashed), with chance 1/N; beside it the first step at the target (embeddings only, untrained
  body, from scratch; means over the seeds that reached it) with the step budget as the "cap" line. The
  table says how many seeds reached the target (``reached`` of ``seeds``).
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from georecall.plotting.style import empty_panel, figure_style, new_figure, save
from georecall.plotting.superposition import (
    MULTIPLE_LABEL,
    SPREAD_COLUMNS,
    cells_of,
    condition_legend,
    condition_style,
    conditions_of,
    draw_series,
    multiple_axis,
    offsets,
    series_legend,
    series_shift,
    spread_row,
    why_empty,
    world_text,
)
from georecall.plotting.tables import write_csv

FIGURE = "transfer_vs_d"
COLUMNS = (*SPREAD_COLUMNS, "reached", "seeds")
#: (metric, line style, legend text, marker) of the two panels; the colour is the condition's.
ACCURACY_SERIES = (("zero_shot_accuracy", "-", "zero-shot: embeddings built from the fitted maps, no training", "o"),
                   ("embeddings_only_accuracy", "-.", "embeddings only, trained body frozen (final)", "s"),
                   ("untrained_frozen_accuracy", "--", "control: embeddings only, untrained body frozen (final)",
                    "X"))
STEP_SERIES = (("embeddings_only_steps", "-.", "embeddings only, trained body frozen", "s"),
               ("untrained_frozen_steps", "--", "control: embeddings only, untrained body frozen", "X"),
               ("from_scratch_steps", ":", "from scratch (the model's own run, its own world)", "^"))


def _numbers(cell: Mapping[str, Any]) -> Mapping[str, Any]:
    n = cell.get("numbers")
    return n if isinstance(n, Mapping) else {}


def _row(payload: Mapping[str, Any], cell: Mapping[str, Any], metric: str) -> list[Any]:
    entry = _numbers(cell).get(metric)
    entry = entry if isinstance(entry, Mapping) else {}
    per_seed = entry.get("per_seed")
    reached = entry.get("reached")
    if reached is None and metric.endswith("_steps") and per_seed is not None:
        reached = sum(v is not None for v in per_seed)
    return [*spread_row(payload, cell, metric, entry), reached,
            len(per_seed) if per_seed is not None else len(cell.get("seeds") or []) or None]


def _mark_unreached(ax: Any, payload: Mapping[str, Any], cells: list[Mapping[str, Any]], budget: float | None) -> bool:
    """Hollow markers at the cap where no seed reached the target; "r/n" beside points some seeds missed."""
    dx = offsets(conditions_of(payload, cells))
    marked = False
    for c in cells:
        colour = condition_style(c["condition"])[0]
        for j, (metric, _, _, mk) in enumerate(STEP_SERIES):
            x = c["multiple"] * dx[c["condition"]] * series_shift(j, len(STEP_SERIES))
            entry = _numbers(c).get(metric)
            if not isinstance(entry, Mapping) or not entry.get("per_seed"):
                continue
            per_seed = entry["per_seed"]
            reached = sum(v is not None for v in per_seed)
            if reached == 0:
                if budget is not None:
                    ax.plot([x], [budget], marker=mk, mfc="none", color=colour, ls="none", ms=8)
                    marked = True
            elif reached < len(per_seed):
                mean = sum(v for v in per_seed if v is not None) / reached
                ax.annotate(f"{reached}/{len(per_seed)}", (x, mean), xytext=(4, 2), textcoords="offset points",
                            fontsize=6, color=colour)
    return marked


def _draw(ax: Any, payload: Mapping[str, Any], cells: list[Mapping[str, Any]], series: Any) -> bool:
    """Each series, one line per condition (the series' marker and line style, hollow but the first)."""
    drawn = False
    for j, (metric, ls, _, mk) in enumerate(series):
        drawn |= draw_series(ax, payload, cells, lambda c, _m=metric: _numbers(c).get(_m), ls, label=False,
                             marker=mk, mfc=None if j == 0 else "none", shift=series_shift(j, len(series)))
    return drawn


def plot(payload: Mapping[str, Any], folder: Path) -> list[Path]:
    """Zero-shot and embeddings-only accuracy, and the steps to the target, against d / d*; with a CSV."""
    from matplotlib.lines import Line2D

    folder = Path(folder)
    cells = cells_of(payload)
    rows = [_row(payload, c, m) for c in cells for m, _, _, _ in (*ACCURACY_SERIES, *STEP_SERIES)]
    csv_path = write_csv(folder / f"{FIGURE}.csv", COLUMNS, rows)
    chance, budget = payload.get("chance"), payload.get("step_budget")
    budget = None if budget is None else float(budget)
    target = payload.get("target_accuracy")
    multiples = [c["multiple"] for c in cells]
    with figure_style():
        fig, axes = new_figure(1, 2, width=12.0, height=5.9)
        ax0, ax1 = axes[0]
        drawn = any_drawn = _draw(ax0, payload, cells, ACCURACY_SERIES)
        extra = [] if chance is None else [ax0.axhline(float(chance), color="0.4", lw=0.9,
                                                       label=f"chance 1/N = {float(chance):.3g}")]
        if target is not None:
            extra.append(ax0.axhline(float(target), color="0.6", ls=(0, (1, 3)), lw=0.9,
                                     label=f"target accuracy {float(target):g}"))
        if drawn:
            multiple_axis(ax0, multiples)
            series_legend(ax0, [(ls, text, mk) for _, ls, text, mk in ACCURACY_SERIES], extra)
        else:
            empty_panel(ax0, why_empty(payload, "no cell with a measured model"))
            ax0.set_xlabel(MULTIPLE_LABEL)
        ax0.set_ylim(-0.02, 1.02)
        ax0.set_ylabel("accuracy on the new bijections")
        ax0.set_title("New facts on a kept body: accuracy")
        drawn = _draw(ax1, payload, cells, STEP_SERIES)
        marked = _mark_unreached(ax1, payload, cells, budget)
        extra = []
        if budget is not None and (drawn or marked):
            extra.append(ax1.axhline(budget, color="0.3", lw=1.0, label=f"cap: the step budget ({budget:g})"))
            ax1.text(1.0, budget, " cap", transform=ax1.get_yaxis_transform(), va="bottom", ha="right", fontsize=7,
                     color="0.3")
        if marked:
            extra.append(Line2D([], [], marker="o", mfc="none", color="0.35", ls="none", ms=8,
                                label="hollow at the cap: no seed reached the target"))
        if drawn or marked:
            multiple_axis(ax1, multiples)
            ax1.set_ylim(bottom=0, top=None if budget is None else max(ax1.get_ylim()[1], 1.06 * budget))
            series_legend(ax1, [(ls, text, mk) for _, ls, text, mk in STEP_SERIES], extra)
        else:
            empty_panel(ax1, why_empty(payload, "no seed reached the target" if cells else
                                       "no cell with a measured model"))
            ax1.set_xlabel(MULTIPLE_LABEL)
        ax1.set_ylabel("first step at the target accuracy (seeds that reached it)")
        ax1.set_title("Steps to the target (r/n: seeds that reached it)")
        if any_drawn or drawn or marked:
            condition_legend(fig, payload, cells, markers=False)
        fig.suptitle(textwrap.fill(
            f"Transfer ({payload.get('scale', 'n/a')}): new bijections (a world the models never saw), "
            f"{world_text(payload)}; attention, MLP, LayerNorms and readout kept, subject embeddings rebuilt; "
            f"budget {budget if budget is None else f'{budget:g}'} steps, target accuracy "
            f"{'n/a' if target is None else f'{float(target):g}'}", 160))
        png = save(fig, folder / f"{FIGURE}.png")
    return [png, csv_path]
