"""Figures of the ``threshold`` experiment, drawn from its payload alone (torch-free).

* ``accuracy_vs_d.png`` / ``.csv``: final accuracy against d, one panel per (condition, K), one line per
  N (mean over seeds, bars min–max over seeds), the threshold d* of each N dotted.
* ``d_star_vs_k_log2_n.png`` / ``.csv`` and ``d_star_fits.csv``: d* against K log₂ N with the fits, the
  selector construction's d = (K+1)⌈log₂ N⌉+K (theory) and the bound's γ (bits, on their own axis);
  and d* against N per K.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from georecall.plotting.style import (
    LABELS,
    SEED_BARS,
    empty_panel,
    figure_style,
    integer_ticks,
    log2_axis,
    new_figure,
    save,
    seed_spread,
)
from georecall.plotting.tables import write_csv

ACC_FIGURE = "accuracy_vs_d"
DSTAR_FIGURE = "d_star_vs_k_log2_n"
FITS_TABLE = "d_star_fits.csv"
#: Short description of each condition (the payload's ``conditions`` wins where it has one).
CONDITION_LABELS: dict[str, str] = {
    "ln_learned": "LayerNorm on, learned readout",
    "ln_frozen": "LayerNorm on, frozen random readout",
    "noln_learned": "LayerNorm off, learned readout",
    "noln_frozen": "LayerNorm off, frozen random readout",
}
#: Colour and marker of each condition in every figure (threshold and capacity).
CONDITION_STYLES: dict[str, tuple[str, str]] = {
    "ln_learned": ("tab:blue", "o"), "ln_frozen": ("tab:orange", "s"),
    "noln_learned": ("tab:green", "^"), "noln_frozen": ("tab:red", "v"),
}
#: Accuracies within this of the success level count as reaching it (float rounding of counts).
ACC_TOL = 1e-9
SELECTOR_LABEL = "selector construction (theory): d = (K+1)⌈log₂ N⌉+K"


def condition_label(data: Mapping[str, Any], cond: str) -> str:
    """The description of ``cond``: from the payload's ``conditions``, else :data:`CONDITION_LABELS`."""
    return (data.get("conditions") or {}).get(cond) or CONDITION_LABELS.get(cond, cond)


def condition_style(cond: str) -> tuple[str, str]:
    """(colour, marker) of a condition; black circles for one this module does not know."""
    return CONDITION_STYLES.get(cond, ("k", "o"))


def majority_success(accuracies: Sequence[float | None], success_accuracy: float) -> bool:
    """True when a strict majority of the seeds reach ``success_accuracy`` (the experiment's rule)."""
    if not accuracies:
        return False
    hits = sum(1 for a in accuracies if a is not None and a >= success_accuracy - ACC_TOL)
    return 2 * hits > len(accuracies)


def success_level(data: Mapping[str, Any]) -> float:
    """The accuracy a seed must reach (``recipe.success_accuracy``, else its ``target_accuracy``, else 0.99)."""
    recipe = data.get("recipe") or {}
    return float(recipe.get("success_accuracy", recipe.get("target_accuracy", 0.99)))


def budget_text(data: Mapping[str, Any]) -> str:
    """``"<steps> steps, lr <lr>"`` from the payload's step budget and recipe (what d* holds within)."""
    recipe = data.get("recipe") or {}
    steps = data.get("step_budget", recipe.get("steps"))
    parts = [] if steps is None else [f"{steps} steps"]
    if recipe.get("lr") is not None:
        parts.append(f"lr {recipe['lr']:g}")
    return ", ".join(parts) or "recipe not recorded"


def _conditions(data: Mapping[str, Any]) -> list[str]:
    return list(data["d_star_by_condition"])


def plot_accuracy(data: Mapping[str, Any], folder: Path) -> list[Path]:
    """Accuracy against d: one panel per (condition, K), one line per N (mean over seeds, bars min–max)."""
    import matplotlib

    points = data["points"]
    success = success_level(data)
    conds = _conditions(data) or [data.get("primary_condition", "")]
    ks = sorted({p["n_relations"] for p in points}) or [0]
    ns = sorted({p["n_subjects"] for p in points})
    csv_path = write_csv(folder / f"{ACC_FIGURE}.csv",
                         ["condition", "n_subjects", "n_relations", "d_model", "seed", "accuracy", "steps",
                          "stop_reason", "majority_success"],
                         [(p["condition"], p["n_subjects"], p["n_relations"], p["d_model"], s, a, st, r,
                           majority_success(p["accuracy"], success))
                          for p in points
                          for s, a, st, r in zip(p["seeds"], p["accuracy"], p["steps"], p["stop_reason"],
                                                 strict=True)])
    d_star = {(e["condition"], e["n_subjects"], e["n_relations"]): e["d_star"]
              for c in _conditions(data) for e in data["d_star_by_condition"][c]}
    cmap = matplotlib.colormaps["viridis"]
    with figure_style():
        fig, axes = new_figure(len(conds), len(ks), width=max(7.0, 3.6 * len(ks)), height=0.4 + 2.6 * len(conds))
        for i, cond in enumerate(conds):
            for j, k in enumerate(ks):
                ax = axes[i][j]
                drawn = False
                for t, n in enumerate(ns):
                    color = cmap(t / max(1, len(ns) - 1) * 0.9)
                    pts = sorted((p for p in points if p["condition"] == cond and p["n_subjects"] == n
                                  and p["n_relations"] == k and seed_spread(p["accuracy"]) is not None),
                                 key=lambda p: p["d_model"])
                    if not pts:
                        continue
                    drawn = True
                    spreads = [seed_spread(p["accuracy"]) for p in pts]
                    ax.errorbar([p["d_model"] for p in pts], [s[0] for s in spreads],
                                yerr=[[s[0] - s[1] for s in spreads], [s[2] - s[0] for s in spreads]],
                                marker="o", ms=3, lw=1.2, color=color, label=f"N = {n}")
                    ds_star = d_star.get((cond, n, k))
                    if ds_star is not None:
                        ax.axvline(ds_star, color=color, ls=":", lw=1)
                ax.axhline(success, color="grey", ls="--", lw=0.8)
                if drawn:
                    ax.set_xscale("log", base=2)
                    integer_ticks(ax, "x", [p["d_model"] for p in points if p["condition"] == cond
                                            and p["n_relations"] == k and seed_spread(p["accuracy"]) is not None])
                else:
                    empty_panel(ax, "no finished run")
                ax.set_ylim(-0.02, 1.02)
                ax.set_title(f"{condition_label(data, cond)}, K = {k}")
                ax.set_xlabel(LABELS["d_model"])
                ax.set_ylabel("final accuracy")
                if i == 0 and j == 0 and ax.get_legend_handles_labels()[0]:
                    ax.legend(title=f"{SEED_BARS}\ndotted: d* of that N; dashed: success level", title_fontsize=6,
                              loc="lower right")
        fig.suptitle(f"Threshold ({data['scale']}): accuracy against d; {budget_text(data)}; "
                     f"success = accuracy ≥ {success:g}")
        png = save(fig, folder / f"{ACC_FIGURE}.png")
    return [png, csv_path]


def _fit_rows(data: Mapping[str, Any]) -> list[list[Any]]:
    rows = []
    for cond, f in data["fits"].items():
        for name in ("vs_k_log2_n", "vs_n"):
            fit = f[name]
            rows.append([cond, name, ""] + ([None] * 4 if fit is None else
                                            [fit["slope"], fit["intercept"], fit["r2"], fit["n_points"]]))
        for k, fit in f["vs_n_by_k"].items():
            rows.append([cond, "vs_n", k] + ([None] * 4 if fit is None else
                                             [fit["slope"], fit["intercept"], fit["r2"], fit["n_points"]]))
    return rows


def plot_d_star(data: Mapping[str, Any], folder: Path) -> list[Path]:
    """d* against K log₂ N (fits, the selector construction's d, the bound's γ in bits) and against N."""
    conds = _conditions(data)
    all_entries = [e for c in conds for e in data["d_star_by_condition"][c]]
    csv_path = write_csv(folder / f"{DSTAR_FIGURE}.csv",
                         ["condition", "n_subjects", "n_relations", "k_log2_n", "d_star", "at_grid_min",
                          "non_monotone", "d_tested_max", "selector_d", "gamma_global_bits", "gamma_local_bits"],
                         [(e["condition"], e["n_subjects"], e["n_relations"], e["k_log2_n"], e["d_star"],
                           e["at_grid_min"], e["non_monotone"], max(e["d_tested"], default=None), e["selector_d"],
                           e["gamma_global"], e["gamma_local"]) for e in all_entries])
    fits_path = write_csv(folder / FITS_TABLE, ["condition", "fit", "n_relations", "slope", "intercept", "r2",
                                                "n_points"], _fit_rows(data))
    cells = sorted({(e["n_subjects"], e["n_relations"]): e for e in all_entries}.values(),
                   key=lambda e: e["k_log2_n"])
    xs = [e["k_log2_n"] for e in cells]
    all_k = sorted({e["n_relations"] for e in all_entries})
    k_styles = {k: (":", "--", "-", "-.")[idx % 4] if len(all_k) > 1 else "-" for idx, k in enumerate(all_k)}
    with figure_style():
        fig, axes = new_figure(1, 2, width=12.5, height=5.0)
        ax, ax_n = axes[0]
        ax.plot(xs, [e["selector_d"] for e in cells], "k+", ms=8, label=SELECTOR_LABEL)
        ax.plot(xs, xs, color="0.6", lw=0.8, label="d = K log₂ N (numerically γ_L for k = 1)")
        for cond in conds:
            color, marker = condition_style(cond)
            es = data["d_star_by_condition"][cond]
            ok = [e for e in es if e["d_star"] is not None]
            ax.plot([e["k_log2_n"] for e in ok], [e["d_star"] for e in ok], marker, color=color, ls="none",
                    label=f"d*: {condition_label(data, cond)}")
            none = [e for e in es if e["d_star"] is None]
            if none:  # censored: no tested d worked, drawn at the largest tested d, open upward triangle
                ax.plot([e["k_log2_n"] for e in none], [max(e["d_tested"], default=1) for e in none], marker="^",
                        color=color, ls="none", mfc="none", ms=9)
            fit = data["fits"][cond]["vs_k_log2_n"]
            if fit is not None and xs:
                lo, hi = min(xs), max(xs)
                r2 = "n/a" if fit["r2"] is None else f"{fit['r2']:.2f}"
                ax.plot([lo, hi], [fit["slope"] * lo + fit["intercept"], fit["slope"] * hi + fit["intercept"]],
                        color=color, lw=1, ls="--",
                        label=f"fit {cond}: d* = {fit['slope']:.2f}·K log₂ N {fit['intercept']:+.1f} (R² {r2})")
            for k in sorted({e["n_relations"] for e in ok}):
                sub = sorted((e for e in ok if e["n_relations"] == k), key=lambda e: e["n_subjects"])
                ax_n.plot([e["n_subjects"] for e in sub], [e["d_star"] for e in sub], marker=marker, color=color,
                          ls=k_styles[k], lw=1, label=f"d*: {cond}, K = {k}")
        for k in all_k:  # the theory beside the measurement, per K
            sub = sorted((e for e in cells if e["n_relations"] == k), key=lambda e: e["n_subjects"])
            ax_n.plot([e["n_subjects"] for e in sub], [e["selector_d"] for e in sub], "k+", ls=k_styles[k], lw=0.6,
                      ms=7, alpha=0.6, label=f"selector construction (theory), K = {k}")
        # The bound's thresholds are bits per subject embedding, not dimensions: a separate, labelled axis.
        ax2 = ax.twinx()
        ax2.grid(False)
        ax2.plot(xs, [e["gamma_global"] for e in cells], "x", color="purple", ms=6, label="bound γ_G (bits)")
        ax2.plot(xs, [e["gamma_local"] if e["gamma_local"] is not None else float("nan") for e in cells], "1",
                 color="brown", ms=9, label="bound γ_L = K log₂ N (bits)")
        ax2.set_ylabel("bound's thresholds γ: bits per subject embedding\n(bits ≠ dimensions: our d are floats)")
        hi_y = max([*(e["selector_d"] for e in cells), *(max(e["d_tested"], default=0) for e in all_entries), 1])
        ax.set_ylim(0, hi_y * 1.05)
        ax2.set_ylim(0, hi_y * 1.05)
        ax.set_xlabel(LABELS["k_log2_n"])
        ax.set_ylabel(LABELS["d_model"])
        ax.set_title("Threshold d* against K log₂ N (open ▲: no tested d worked, drawn at the largest)")
        h1, l1 = ax.get_legend_handles_labels()
        h2, l2 = ax2.get_legend_handles_labels()
        ax.legend(h1 + h2, l1 + l2, fontsize=6, loc="upper left")
        if ax_n.get_legend_handles_labels()[0]:
            log2_axis(ax_n, "x")
            ax_n.legend(fontsize=6, ncol=2, loc="upper left")
        else:
            empty_panel(ax_n, "no (N, K) cell")
        ax_n.set_xlabel(LABELS["n_subjects"])
        ax_n.set_ylabel("d* (d of the threshold)")
        ax_n.set_title("d* against N, per K (line style) and condition (colour)")
        fig.suptitle(f"Threshold ({data['scale']}): {data.get('success_rule', budget_text(data))}", fontsize=7)
        png = save(fig, folder / f"{DSTAR_FIGURE}.png")
    return [png, csv_path, fits_path]


def plot(payload: Mapping[str, Any], folder: Path) -> list[Path]:
    """Accuracy-vs-d and d*-vs-K log₂ N figures with their CSVs, from the threshold payload alone."""
    folder = Path(folder)
    return plot_accuracy(payload, folder) + plot_d_star(payload, folder)
