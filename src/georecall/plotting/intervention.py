"""Figures of the ``intervention`` experiment, drawn from its payload alone (torch-free).

* ``ablation_matrix.png`` / ``.csv``: the primary cell's mean K×K zero-ablation drop matrix (row: the
  ablated relation's units, column: the queried relation) beside the same for as many random units, one
  colour scale, the numbers in the cells; the table also holds the mean-ablation matrices.
* ``edits.png`` / ``.csv``: edit success and collateral against the edit scale α (log), primary cell, mean
  over seeds, with the same-norm random direction's success and changed-rate dashed.
* ``intervention_vs_d.png`` / ``.csv``: the zero-ablation diagonal fraction (random units dashed) and the
  edit success (same-norm random dashed, collateral dotted) against d / d* per condition.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from georecall.plotting.style import empty_panel, figure_style, new_figure, save
from georecall.plotting.superposition import (
    MULTIPLE_LABEL,
    SPREAD_COLUMNS,
    cells_of,
    condition_legend,
    draw_series,
    entry_spread,
    multiple_axis,
    series_legend,
    series_shift,
    spread_row,
    why_empty,
    world_text,
)
from georecall.plotting.tables import write_csv

ABLATION_FIGURE = "ablation_matrix"
EDITS_FIGURE = "edits"
VS_D_FIGURE = "intervention_vs_d"
ABLATION_COLUMNS = ("mode", "units", "ablated_relation", "queried_relation", "drop", "clean_accuracy",
                    "mean_units_of_ablated_relation")
EDIT_COLUMNS = ("condition", "multiple", "d_model", "edit_scale", "success", "collateral", "control_success",
                "control_collateral", "control_changed")
#: (curve of edit_curves, colour, line style, legend text) of edits.png.
EDIT_SERIES = (("success", "tab:blue", "-", "edit success (the model now answers a')"),
               ("collateral", "tab:orange", "-", "collateral (the subject's other relations changed)"),
               ("control_success", "tab:blue", "--", "same-norm random direction: success"),
               ("control_changed", "tab:orange", "--", "same-norm random direction: answer changed"))
#: (metric, line style, legend text) of the two panels of intervention_vs_d.
DIAG_SERIES = (("zero_diagonal_fraction", "-", "attributed units"),
               ("zero_random_diagonal_fraction", "--", "as many random units"))
EDIT_VS_D_SERIES = (("edit_success", "-", "edit success"),
                    ("control_edit_success", "--", "same-norm random direction: success"),
                    ("edit_collateral", ":", "edit collateral"))


def _primary(payload: Mapping[str, Any]) -> Mapping[str, Any]:
    p = payload.get("primary")
    return p if isinstance(p, Mapping) else {}


def _matrix(m: Any) -> list[list[float | None]] | None:
    """A square list-of-lists matrix, else None."""
    if not isinstance(m, Sequence) or not m or not all(isinstance(r, Sequence) and len(r) == len(m) for r in m):
        return None
    return [[None if v is None else float(v) for v in r] for r in m]


def mean_unit_counts(primary: Mapping[str, Any]) -> list[float] | None:
    """The mean (over seeds) number of units attributed to each relation; None if no seed has counts."""
    counts = [c for c in primary.get("unit_counts") or [] if isinstance(c, Sequence) and c]
    if not counts or len({len(c) for c in counts}) != 1:
        return None
    return [sum(float(c[r]) for c in counts) / len(counts) for r in range(len(counts[0]))]


def threshold_text(payload: Mapping[str, Any]) -> str:
    """The attribution rule: the threshold if the design records it, else the rule's first clause."""
    design = payload.get("design") or {}
    th = design.get("attribution_threshold")
    if th is not None:
        return f"a unit belongs to relation r when ≥ {float(th):.0%} of its mean activation comes from r's queries"
    rule = payload.get("attribution_rule")
    if not rule:
        return "attribution rule not recorded"
    return rule.split(", and ")[0]


def _cell_text(primary: Mapping[str, Any], payload: Mapping[str, Any]) -> str:
    m, d = primary.get("multiple", (payload.get("design") or {}).get("primary_multiple")), primary.get("d_model")
    return (f"primary condition at {m if m is not None else 'n/a'} × d* (d = {d if d is not None else 'n/a'}), "
            "mean over seeds")


def _fraction(primary: Mapping[str, Any], name: str) -> str:
    s = entry_spread((primary.get("numbers") or {}).get(name))
    return "n/a" if s is None else f"{s[0]:.2f}"


# ---------------------------------------------------------------------------------------------------
# ablation_matrix


def _ablation_rows(primary: Mapping[str, Any]) -> list[list[Any]]:
    units = mean_unit_counts(primary)
    rows = []
    for mode in ("zero", "mean"):
        ab = primary.get(f"ablation_{mode}") or {}
        clean = ab.get("clean") or (primary.get("ablation_zero") or {}).get("clean")
        for which, key in (("attributed", "drops"), ("random", "random_drops")):
            m = _matrix(ab.get(key))
            if m is None:
                continue
            for i, row in enumerate(m):
                for j, v in enumerate(row):
                    rows.append([mode, which, i, j, v, None if not clean or j >= len(clean) else clean[j],
                                 None if units is None or i >= len(units) else round(units[i], 3)])
    return rows


def _heat(ax: Any, m: list[list[float | None]], vmax: float, clean: Any) -> Any:
    import numpy as np

    arr = np.array([[np.nan if v is None else v for v in r] for r in m], dtype=float)
    im = ax.imshow(arr, cmap="RdBu_r", vmin=-vmax, vmax=vmax)
    k = len(m)
    for i in range(k):
        for j in range(k):
            v = arr[i, j]
            text = "n/a" if math.isnan(v) else f"{v:.2f}"
            ax.text(j, i, text, ha="center", va="center", fontsize=7 if k <= 6 else 5,
                    color="white" if not math.isnan(v) and abs(v) > 0.6 * vmax else "black")
    ax.set_xticks(range(k))
    ax.set_yticks(range(k))
    ax.set_xticklabels([f"r = {j}" + ("" if not clean or j >= len(clean) or clean[j] is None
                                       else f"\nclean {clean[j]:.2f}") for j in range(k)])
    ax.set_yticklabels([f"r = {i}" for i in range(k)])
    ax.set_xlabel("queried relation")
    ax.grid(False)
    return im


def plot_ablation(payload: Mapping[str, Any], folder: Path) -> list[Path]:
    """The primary cell's mean zero-ablation drop matrix beside the random-units one, one colour scale."""
    primary = _primary(payload)
    csv_path = write_csv(folder / f"{ABLATION_FIGURE}.csv", ABLATION_COLUMNS, _ablation_rows(primary))
    ab = primary.get("ablation_zero") or {}
    real, rand = _matrix(ab.get("drops")), _matrix(ab.get("random_drops"))
    clean = ab.get("clean")
    vals = [abs(v) for m in (real, rand) if m for r in m for v in r if v is not None]
    vmax = max([*vals, 1e-6])
    units = mean_unit_counts(primary)
    n_units = primary.get("n_units")
    with figure_style():
        fig, axes = new_figure(1, 2, width=10.0, height=5.6)
        im = None
        for ax, m, title in ((axes[0][0], real, "units attributed to the row's relation"),
                             (axes[0][1], rand, "as many random units (mean over draws)")):
            if m is None:
                what = "no primary cell" if not primary else "no ablation matrix (no model with an MLP measured)"
                empty_panel(ax, why_empty(payload, what))
            else:
                im = _heat(ax, m, vmax, clean)
            ax.set_title(title)
            ax.set_ylabel("ablated units (relation they are attributed to)")
        if im is not None:
            fig.colorbar(im, ax=[axes[0][0], axes[0][1]], shrink=0.85).set_label(
                "accuracy drop on the queried relation (clean − ablated)")
        units_txt = "unit counts n/a" if units is None else (
            "units per relation (mean over seeds): " + ", ".join(f"{u:.3g}" for u in units)
            + ("" if n_units is None else f" of {n_units} hidden units"))
        head = (f"Intervention ({payload.get('scale', 'n/a')}): zero ablation of the MLP's hidden units; "
                f"{_cell_text(primary, payload)}; {world_text(payload)}. Diagonal fraction (share of the positive "
                f"drops on the diagonal): {_fraction(primary, 'zero_diagonal_fraction')} (random units "
                f"{_fraction(primary, 'zero_random_diagonal_fraction')}); {units_txt}. "
                f"Attribution: {threshold_text(payload)}.")
        fig.suptitle(textwrap.fill(head, 140))
        png = save(fig, folder / f"{ABLATION_FIGURE}.png")
    return [png, csv_path]


# ---------------------------------------------------------------------------------------------------
# edits


def _curve(curves: Mapping[str, Any], name: str, n: int) -> list[float | None]:
    c = curves.get(name)
    if not isinstance(c, Sequence) or len(c) != n:
        return [None] * n
    return [None if v is None else float(v) for v in c]


def plot_edits(payload: Mapping[str, Any], folder: Path) -> list[Path]:
    """Edit success and collateral against the edit scale (log), with the same-norm random control dashed."""
    from matplotlib.ticker import FixedFormatter, FixedLocator, NullLocator

    primary = _primary(payload)
    scales = [float(s) for s in primary.get("edit_scales") or []]
    curves = primary.get("edit_curves") or {}
    cols = {name: _curve(curves, name, len(scales)) for name in EDIT_COLUMNS[4:]}
    rows = [[primary.get("condition"), primary.get("multiple"), primary.get("d_model"), s,
             *(cols[n][i] for n in EDIT_COLUMNS[4:])] for i, s in enumerate(scales)]
    csv_path = write_csv(folder / f"{EDITS_FIGURE}.csv", EDIT_COLUMNS, rows)
    headline = payload.get("edit_scale")
    with figure_style():
        fig, axes = new_figure(1, 1, width=7.0, height=4.8)
        ax = axes[0][0]
        drawn = False
        for name, colour, ls, text in EDIT_SERIES:
            pts = [(s, v) for s, v in zip(scales, cols[name], strict=True) if v is not None and s > 0]
            if pts:
                drawn = True
                ax.plot([p[0] for p in pts], [p[1] for p in pts], color=colour, ls=ls, marker="o",
                        mfc=colour if ls == "-" else "none", lw=1.3, label=text)
        if drawn:
            s = entry_spread((primary.get("numbers") or {}).get("edit_success"))
            if s is not None and headline is not None:
                ax.errorbar([float(headline)], [s[0]], yerr=[[s[0] - s[1]], [s[2] - s[0]]], color="tab:blue",
                            ls="none", capsize=3, label="edit success at the headline scale: min–max over seeds")
            if headline is not None:
                ax.axvline(float(headline), color="0.5", ls=":", lw=1,
                           label=f"headline scale α = {float(headline):g} (the fitted map's own)")
            ax.set_xscale("log", base=2)
            ax.xaxis.set_major_locator(FixedLocator(scales))
            ax.xaxis.set_major_formatter(FixedFormatter([f"{v:g}" for v in scales]))
            ax.xaxis.set_minor_locator(NullLocator())
            ax.legend(loc="best", title="mean over seeds", title_fontsize=6)
        else:
            empty_panel(ax, why_empty(payload, "no primary cell" if not primary else "no edit measured"))
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("edit scale α")
        ax.set_ylabel("share of the edits")
        ax.set_title(textwrap.fill(
            f"Fact edits in embedding space, e_s += α M_r (a(a') − a(f_r(s))) ({payload.get('scale', 'n/a')}): "
            f"{_cell_text(primary, payload)}; {world_text(payload)}", 100))
        png = save(fig, folder / f"{EDITS_FIGURE}.png")
    return [png, csv_path]


# ---------------------------------------------------------------------------------------------------
# intervention_vs_d


def _numbers(cell: Mapping[str, Any]) -> Mapping[str, Any]:
    n = cell.get("numbers")
    return n if isinstance(n, Mapping) else {}


def plot_vs_d(payload: Mapping[str, Any], folder: Path) -> list[Path]:
    """The zero-ablation diagonal fraction and the edit success against d / d* per condition."""
    cells = cells_of(payload)
    rows = [spread_row(payload, c, m, _numbers(c).get(m)) for c in cells for m, _, _ in (*DIAG_SERIES,
                                                                                           *EDIT_VS_D_SERIES)]
    csv_path = write_csv(folder / f"{VS_D_FIGURE}.csv", SPREAD_COLUMNS, rows)
    k = (payload.get("design") or {}).get("n_relations")
    multiples = [c["multiple"] for c in cells]
    with figure_style():
        fig, axes = new_figure(1, 2, width=11.5, height=5.7)
        ax0, ax1 = axes[0]
        any_drawn = False
        for ax, series, ylabel in ((ax0, DIAG_SERIES, "zero ablation: share of the positive drops on the diagonal"),
                                   (ax1, EDIT_VS_D_SERIES, f"share of the edits (α = {payload.get('edit_scale')})")):
            drawn = False
            for j, (metric, ls, _) in enumerate(series):
                drawn |= draw_series(ax, payload, cells, lambda c, _m=metric: _numbers(c).get(_m), ls, label=False,
                                     mfc=None if ls == "-" else "none", shift=series_shift(j, len(series)))
            extra = []
            if ax is ax0 and k:
                extra.append(ax.axhline(1.0 / k, color="0.4", lw=0.9,
                                        label=f"1/K = {1.0 / k:.2g} (units serving every relation)"))
            if drawn:
                multiple_axis(ax, multiples)
                series_legend(ax, [(ls, text) for _, ls, text in series], extra)
                any_drawn = True
            else:
                empty_panel(ax, why_empty(payload, "no cell with a measured model"))
                ax.set_xlabel(MULTIPLE_LABEL)
            ax.set_ylim(-0.02, 1.02)
            ax.set_ylabel(ylabel)
        if any_drawn:
            condition_legend(fig, payload, cells)
        ax0.set_title("Selector: ablating a relation's units breaks that relation only (1 = perfect)")
        ax1.set_title("Edits: moving a subject's relation-r component moves that fact")
        fig.suptitle(f"Intervention ({payload.get('scale', 'n/a')}): {world_text(payload)}; per condition against "
                     f"d / d*; dashed: controls")
        png = save(fig, folder / f"{VS_D_FIGURE}.png")
    return [png, csv_path]


def plot(payload: Mapping[str, Any], folder: Path) -> list[Path]:
    """The ablation heat maps, the edit curves and the numbers against d / d*; each with a CSV."""
    folder = Path(folder)
    return [*plot_ablation(payload, folder), *plot_edits(payload, folder), *plot_vs_d(payload, folder)]
