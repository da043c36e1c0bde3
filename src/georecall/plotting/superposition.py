"""Figures of the ``superposition`` experiment, drawn from its payload alone (torch-free).

* ``probe_vs_d.png`` / ``.csv``: held-out probe accuracy and held-out additive R² (unembedding vectors,
  held-out subjects) against d / d*, one line per condition (mean over seeds, bars min–max over seeds),
  the random-bijection (dashed) and shuffled-label (dotted) controls, chance 1/N as a horizontal line.
* ``projection.png`` / ``.csv``: the primary model's 2-D views of the subject embeddings, one panel per
  relation and the control panel, each subject coloured by its attribute's score.

The helpers of the mechanism figures (condition labels and styles, the d / d* axis, one line per condition)
live here and are shared by :mod:`georecall.plotting.intervention` and :mod:`georecall.plotting.transfer`.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from georecall.plotting.style import SEED_BARS, empty_panel, figure_style, new_figure, save, seed_spread
from georecall.plotting.tables import write_csv

PROBE_FIGURE = "probe_vs_d"
PROJECTION_FIGURE = "projection"
PRIMARY = "primary"
VECTORS = "unembedding"  # the attribute vectors of the headline numbers (the model's own readout rows)
#: The columns of every "<metric> against d / d*" table of the mechanism figures.
SPREAD_COLUMNS = ("condition", "label", "multiple", "d_star", "d_model", "metric", "mean", "min", "max", "n_seeds",
                  "n_missing")
PROJECTION_COLUMNS = ("panel", "relation", "subject", "x", "y", "colour")
#: (metric, line style, legend text) of the two panels of probe_vs_d.
PROBE_SERIES = (("probe_accuracy", "-", "true attributes"),
                ("probe_random_bijection", "--", "control: unrelated random bijections"),
                ("probe_shuffled", ":", "control: shuffled labels"))
R2_SERIES = (("additive_r2", "-", "true attributes"),
             ("additive_r2_control", "--", "control: unrelated random bijections"))
#: Colour and marker of each condition of the mechanism experiments.
CONDITION_STYLES: dict[str, tuple[str, str]] = {
    "primary": ("tab:blue", "o"), "no_layernorm": ("tab:green", "^"), "frozen_readout": ("tab:orange", "s"),
    "tied_readout": ("tab:purple", "D"), "weight_decay": ("tab:red", "v"), "stop_at_target": ("tab:brown", "P"),
    "strong_weight_decay": ("darkred", "X"),
}
MULTIPLE_LABEL = "d / d* (width as a multiple of the measured threshold d*)"


# ---------------------------------------------------------------------------------------------------
# Helpers shared by the mechanism figures


def condition_style(cond: str) -> tuple[str, str]:
    """(colour, marker) of a condition; black circles for one this module does not know."""
    return CONDITION_STYLES.get(cond, ("k", "o"))


def full_label(payload: Mapping[str, Any], cond: str) -> str | None:
    """``design.conditions[cond].label`` of the payload (None where it has none)."""
    info = ((payload.get("design") or {}).get("conditions") or {}).get(cond)
    return info.get("label") if isinstance(info, Mapping) else None


def condition_label(payload: Mapping[str, Any], cond: str, width: int = 72) -> str:
    """The short legend name of ``cond``: its design label without "as primary, ", shortened to ``width``."""
    label = full_label(payload, cond)
    if not label:
        return cond
    return textwrap.shorten(f"{cond}: {label.removeprefix('as primary, ')}", width, placeholder="…")


def conditions_of(payload: Mapping[str, Any], cells: Sequence[Mapping[str, Any]]) -> list[str]:
    """The conditions that have a cell, in the design's order, then any other (transfer has no tied readout)."""
    have = {c.get("condition") for c in cells}
    order = [c for c in (payload.get("design") or {}).get("conditions") or {} if c in have]
    return order + sorted(have - set(order) - {None})


def cells_of(payload: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The payload's cells that name a condition and a multiple (others are skipped)."""
    return [c for c in payload.get("cells") or [] if isinstance(c, Mapping) and c.get("condition") is not None
            and c.get("multiple") is not None]


def entry_spread(entry: Any) -> tuple[float, float, float] | None:
    """(mean, min, max) of one spread entry: from its per-seed values, else its summary fields; None if empty."""
    if not isinstance(entry, Mapping):
        return None
    s = seed_spread([v for v in entry.get("per_seed") or [] if v is None or math.isfinite(float(v))])
    if s is None and entry.get("mean") is not None:
        mean, lo, hi = float(entry["mean"]), entry.get("min"), entry.get("max")
        s = (mean, mean if lo is None else float(lo), mean if hi is None else float(hi))
    return s


def spread_row(payload: Mapping[str, Any], cell: Mapping[str, Any], metric: str, entry: Any) -> list[Any]:
    """One row of a :data:`SPREAD_COLUMNS` table (empty cells where the entry has nothing)."""
    s = entry_spread(entry)
    entry = entry if isinstance(entry, Mapping) else {}
    per_seed = entry.get("per_seed")
    n = entry.get("n", None if per_seed is None else sum(v is not None for v in per_seed))
    missing = entry.get("missing", None if per_seed is None else sum(v is None for v in per_seed))
    return [cell["condition"], full_label(payload, cell["condition"]), cell["multiple"], cell.get("d_star"),
            cell.get("d_model"), metric, *(s if s is not None else (None, None, None)), n, missing]


def offsets(conds: Sequence[str]) -> dict[str, float]:
    """A small multiplicative x offset per condition, so that error bars at one multiple do not overlap."""
    n = len(conds)
    return {c: 2 ** (0.06 * (i - (n - 1) / 2)) for i, c in enumerate(conds)}


def series_shift(j: int, n: int) -> float:
    """A smaller multiplicative x offset of series j of n within a condition (a metric and its controls)."""
    return 2 ** (0.018 * (j - (n - 1) / 2))


def multiple_axis(ax: Any, multiples: Sequence[float]) -> None:
    """A log d / d* axis with the measured multiples (plain numbers) as its ticks."""
    from matplotlib.ticker import FixedFormatter, FixedLocator, NullLocator

    vals = sorted({float(m) for m in multiples if m is not None and m > 0})
    ax.set_xscale("log", base=2)
    if not vals:
        return
    ax.xaxis.set_major_locator(FixedLocator(vals))
    ax.xaxis.set_major_formatter(FixedFormatter([f"{v:g}" for v in vals]))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlim(vals[0] / 1.35, vals[-1] * 1.35)
    ax.set_xlabel(MULTIPLE_LABEL)


def draw_series(ax: Any, payload: Mapping[str, Any], cells: Sequence[Mapping[str, Any]], get: Any,
                ls: str = "-", *, label: bool = True, marker: str | None = None, mfc: str | None = None,
                shift: float = 1.0) -> bool:
    """One line per condition of ``get(cell)``'s spread against d / d* (mean, bars min–max); True if drawn.

    x is the cell's multiple times the condition's offset and ``shift`` (the series' own offset).
    """
    conds = conditions_of(payload, cells)
    dx = offsets(conds)
    drawn = False
    for cond in conds:
        pts = []
        for c in sorted((c for c in cells if c["condition"] == cond), key=lambda c: c["multiple"]):
            s = entry_spread(get(c))
            if s is not None:
                pts.append((c["multiple"] * dx[cond] * shift, s))
        if not pts:
            continue
        drawn = True
        colour, mk = condition_style(cond)
        ax.errorbar([p[0] for p in pts], [p[1][0] for p in pts],
                    yerr=[[p[1][0] - p[1][1] for p in pts], [p[1][2] - p[1][0] for p in pts]],
                    color=colour, marker=marker or mk, ls=ls, lw=1.2, mfc=mfc or colour,
                    label=condition_label(payload, cond) if label else None)
    return drawn


def series_legend(ax: Any, series: Sequence[tuple[str, str] | tuple[str, str, str]], extra: Sequence[Any] = (),
                  loc: str = "best") -> None:
    """The panel's legend: its series by line style (grey proxies) and its reference lines (``extra``).

    A series is ``(line style, text)`` or ``(line style, text, marker)``; hollow markers stand for controls.
    """
    from matplotlib.lines import Line2D

    handles = []
    for ser in series:
        ls, text, mk = (*ser, None)[:3]
        handles.append(Line2D([], [], color="0.35", ls=ls, marker=mk, mfc="0.35" if ls == "-" else "none",
                              label=text, lw=1.2))
    ax.legend(handles=[*handles, *extra], loc=loc, fontsize=6)


def condition_legend(fig: Any, payload: Mapping[str, Any], cells: Sequence[Mapping[str, Any]], *,
                     markers: bool = True) -> None:
    """The figure's legend under its panels: the conditions by colour (and marker), and what the bars are."""
    from matplotlib.lines import Line2D

    conds = conditions_of(payload, cells)
    if not conds:
        return
    handles = [Line2D([], [], color=condition_style(c)[0], marker=condition_style(c)[1] if markers else None, ls="-",
                      label=condition_label(payload, c)) for c in conds]
    fig.legend(handles=handles, loc="outside lower center", ncol=min(3, len(handles)),
               title=f"condition (colour); {SEED_BARS}; conditions offset slightly along x", title_fontsize=6,
               fontsize=6)


def why_empty(payload: Mapping[str, Any], what: str) -> str:
    """The text of an empty panel: what is missing, and the payload's first note (why, when it says)."""
    notes = [n for n in payload.get("notes") or [] if isinstance(n, str)]
    parts = [what] + ([f"({textwrap.shorten(notes[0], 120, placeholder='…')})"] if notes else [])
    return "\n".join(textwrap.fill(t, 60) for t in parts)


def world_text(payload: Mapping[str, Any]) -> str:
    """``"N = 128, K = 4"`` from the payload's design (``n/a`` where absent)."""
    design = payload.get("design") or {}
    return f"N = {design.get('n_subjects', 'n/a')}, K = {design.get('n_relations', 'n/a')}"


def _seeds_text(payload: Mapping[str, Any]) -> str:
    seeds = (payload.get("design") or {}).get("seeds")
    return "" if not seeds else f", {len(seeds)} seeds"


# ---------------------------------------------------------------------------------------------------
# probe_vs_d


def _vectors(cell: Mapping[str, Any]) -> Mapping[str, Any]:
    v = cell.get(VECTORS)
    return v if isinstance(v, Mapping) else {}


def plot_probe(payload: Mapping[str, Any], folder: Path) -> list[Path]:
    """Held-out probe accuracy and additive R² against d / d* per condition, with the controls and chance."""
    cells = cells_of(payload)
    rows = [spread_row(payload, c, m, _vectors(c).get(m)) for c in cells
            for m, _, _ in (*PROBE_SERIES, *R2_SERIES)]
    csv_path = write_csv(folder / f"{PROBE_FIGURE}.csv", SPREAD_COLUMNS, rows)
    chance = payload.get("chance")
    multiples = [c["multiple"] for c in cells]
    with figure_style():
        fig, axes = new_figure(1, 2, width=11.5, height=5.7)
        ax0, ax1 = axes[0]
        any_drawn = False
        for ax, series, ylabel in ((ax0, PROBE_SERIES, "held-out probe accuracy (nearest attribute vector)"),
                                   (ax1, R2_SERIES, "held-out R² of e_s ≈ b + Σ_r M_r a(f_r(s))")):
            drawn = False
            for j, (metric, ls, _) in enumerate(series):
                drawn |= draw_series(ax, payload, cells, lambda c, _m=metric: _vectors(c).get(_m), ls, label=False,
                                     mfc=None if ls == "-" else "none", shift=series_shift(j, len(series)))
            extra = []
            if ax is ax0 and chance is not None:
                extra.append(ax.axhline(float(chance), color="0.4", lw=0.9, label=f"chance 1/N = {chance:.3g}"))
            if ax is ax1:
                extra.append(ax.axhline(0.0, color="0.4", lw=0.9, label="R² = 0 (no better than the mean)"))
            if drawn:
                multiple_axis(ax, multiples)
                series_legend(ax, [(ls, text) for _, ls, text in series], extra)
                any_drawn = True
            else:
                empty_panel(ax, why_empty(payload, "no cell with a measured model"))
                ax.set_xlabel(MULTIPLE_LABEL)
            ax.set_ylabel(ylabel)
        if any_drawn:
            condition_legend(fig, payload, cells)
        ax0.set_ylim(-0.02, 1.02)
        lo = ax1.get_ylim()[0]
        ax1.set_ylim(min(-0.02, lo), 1.02)
        ax0.set_title("Linear probes: each attribute read from e_s (held-out subjects)")
        ax1.set_title("Additive fit: e_s as a sum of its attributes' vectors (held-out subjects)")
        fig.suptitle(textwrap.fill(
            f"Superposition ({payload.get('scale', 'n/a')}): {world_text(payload)}{_seeds_text(payload)}; "
            f"subjects held out (cross-validated over subjects); attribute vectors a(·) = the model's readout "
            f"rows (a learned readout saw every fact, so its held-out scores are optimistic)", 150))
        png = save(fig, folder / f"{PROBE_FIGURE}.png")
    return [png, csv_path]


# ---------------------------------------------------------------------------------------------------
# projection


def _panels(payload: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any], str]]:
    """(title, panel, colour-bar label) of each projection panel that has points."""
    proj = payload.get("projection")
    if not isinstance(proj, Mapping):
        return []
    out = []
    for p in proj.get("panels") or []:
        if isinstance(p, Mapping) and p.get("x"):
            r = p.get("relation")
            out.append((f"relation {r}", p, f"where f_{r}(s) puts s: its fitted component M_{r} a(f_{r}(s)) on PC 1"))
    ctrl = proj.get("control")
    if isinstance(ctrl, Mapping) and ctrl.get("x"):
        out.append(("control: random bijection", ctrl,
                    f"the same for an unrelated bijection's attribute (view of relation {ctrl.get('relation')})"))
    return out


def _primary_d(payload: Mapping[str, Any]) -> str:
    primary = payload.get("primary") or {}
    d, m = primary.get("d_model"), primary.get("multiple", (payload.get("design") or {}).get("primary_multiple"))
    return f"primary model at {m if m is not None else 'n/a'} × d* (d = {d if d is not None else 'n/a'}), first seed"


def plot_projection(payload: Mapping[str, Any], folder: Path) -> list[Path]:
    """The 2-D views of the subject embeddings, one panel per relation and the control, with colour bars."""
    panels = _panels(payload)
    rows = [[title, p.get("relation"), i, x, y, c] for title, p, _ in panels
            for i, (x, y, c) in enumerate(zip(p["x"], p.get("y") or [], p.get("colour") or [], strict=False))]
    csv_path = write_csv(folder / f"{PROJECTION_FIGURE}.csv", PROJECTION_COLUMNS, rows)
    n = max(1, len(panels))
    ncols = min(n, 3)
    nrows = math.ceil(n / ncols)
    with figure_style():
        fig, axes = new_figure(nrows, ncols, width=3.9 * ncols, height=0.6 + 3.3 * nrows)
        flat = [ax for row in axes for ax in row]
        if not panels:
            empty_panel(flat[0], why_empty(payload, "no projection: the primary cell has no trained model"))
        for ax, (title, p, cbar) in zip(flat, panels, strict=False):
            colour = p.get("colour") or []
            pts = [(x, y, c) for x, y, c in zip(p["x"], p.get("y") or [], colour, strict=False)
                   if x is not None and y is not None and c is not None]
            if not pts:
                empty_panel(ax, "no point")
            else:
                sc = ax.scatter([t[0] for t in pts], [t[1] for t in pts], c=[t[2] for t in pts], cmap="viridis",
                                s=10, edgecolors="none")
                fig.colorbar(sc, ax=ax, shrink=0.9).set_label(textwrap.fill(cbar, 40), fontsize=6)
            r = p.get("relation")
            ax.set_title(title)
            ax.set_xlabel(f"PC 1 of relation {r}'s fitted component M_r a(f_r(s))")
            ax.set_ylabel("PC 2")
        for ax in flat[len(panels) or 1:]:
            ax.set_axis_off()
        fig.suptitle(textwrap.fill(
            f"Superposition ({payload.get('scale', 'n/a')}): centred subject embeddings e_s projected on each "
            f"relation's fitted component, coloured by that relation's attribute; {_primary_d(payload)}; "
            f"{world_text(payload)}. A left-to-right colour gradient: e_s moves with its attribute; the control "
            f"colours "
            f"relation {panels[-1][1].get('relation') if panels else 0}'s view by an unrelated bijection.", 150))
        png = save(fig, folder / f"{PROJECTION_FIGURE}.png")
    return [png, csv_path]


def plot(payload: Mapping[str, Any], folder: Path) -> list[Path]:
    """Probe accuracy and additive R² against d / d*, and the 2-D projection; each with a CSV."""
    folder = Path(folder)
    return [*plot_probe(payload, folder), *plot_projection(payload, folder)]
