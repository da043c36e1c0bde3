"""Figures of the ``threshold`` experiment, drawn from its payload alone (torch-free).

* ``d_star_vs_n.png`` / ``.csv``: d* against N, one panel per K, both conditions, bars = the seed
  bootstrap's 95 % interval; the fitted log law ``a + b log₂ N`` and power law ``c N^β`` drawn over the
  tested N; the selector construction's d = (K+1)⌈log₂ N⌉+K (theory); unbracketed cells as open ▲ (above
  the range) or ▼ (below it) at the limit.
* ``d_star_collapse.png``: d*/K against log₂ N, every K on one panel per condition (one curve if
  d* ∝ K log₂ N), the d* ratios of the pairs with equal K log₂ N written beside it.
* ``d_star_vs_budget.png``: d* against the step budget per cell (the convergence check).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from georecall.plotting.style import LABELS, empty_panel, figure_style, log2_axis, new_figure, save
from georecall.plotting.tables import write_csv

DSTAR_FIGURE = "d_star_vs_n"
COLLAPSE_FIGURE = "d_star_collapse"
BUDGET_FIGURE = "d_star_vs_budget"
#: Short description of each condition (the payload's ``conditions`` wins where it has one).
CONDITION_LABELS: dict[str, str] = {
    "ln_frozen": "LayerNorm on, frozen random readout",
    "ln_learned": "LayerNorm on, learned readout",
    "noln_learned": "LayerNorm off, learned readout",
    "noln_frozen": "LayerNorm off, frozen random readout",
}
#: Colour and marker of each condition in every figure (threshold and capacity).
CONDITION_STYLES: dict[str, tuple[str, str]] = {
    "ln_learned": ("tab:blue", "o"), "ln_frozen": ("tab:orange", "s"),
    "noln_learned": ("tab:green", "^"), "noln_frozen": ("tab:red", "v"),
}
SELECTOR_LABEL = "selector construction (theory): d = (K+1)⌈log₂ N⌉+K"
K_COLOURS = ("tab:purple", "tab:cyan", "tab:olive", "tab:brown", "tab:pink")


def condition_label(data: Mapping[str, Any], cond: str) -> str:
    """The description of ``cond``: from the payload's ``conditions``, else :data:`CONDITION_LABELS`."""
    return (data.get("conditions") or {}).get(cond) or CONDITION_LABELS.get(cond, cond)


def condition_style(cond: str) -> tuple[str, str]:
    """(colour, marker) of a condition; black circles for one this module does not know."""
    return CONDITION_STYLES.get(cond, ("k", "o"))


def budget_text(data: Mapping[str, Any]) -> str:
    """``"budgets <b1>, <b2>, ... steps, lr <lr>"`` from the payload's recipe (what d* holds within)."""
    recipe = data.get("recipe") or {}
    budgets = recipe.get("budgets") or ([recipe["steps"]] if recipe.get("steps") is not None else [])
    parts = [f"budgets {', '.join(str(b) for b in budgets)} steps"] if budgets else []
    if recipe.get("lr") is not None:
        parts.append(f"lr {recipe['lr']:g}")
    return ", ".join(parts) or "recipe not recorded"


def _conditions(data: Mapping[str, Any]) -> list[str]:
    return list(data["d_star_by_condition"])


def _ks(data: Mapping[str, Any]) -> list[int]:
    return sorted({e["n_relations"] for es in data["d_star_by_condition"].values() for e in es})


def _grid(lo: float, hi: float, n: int = 50) -> list[float]:
    return [lo * (hi / lo) ** (i / (n - 1)) for i in range(n)] if hi > lo else [lo]


def plot_d_star(data: Mapping[str, Any], folder: Path) -> list[Path]:
    """d* against N per K, with intervals, both laws over the tested N and the selector construction."""
    conds, ks = _conditions(data), _ks(data)
    rows = [(c, e["n_subjects"], e["n_relations"], e["d_star"], *(e["d_star_ci95"] or (None, None)), e["status"],
             e["converged"], e["final_steps"], e["selector_d"], e["gamma_global"])
            for c in conds for e in data["d_star_by_condition"][c]]
    csv_path = write_csv(folder / f"{DSTAR_FIGURE}.csv",
                         ["condition", "n_subjects", "n_relations", "d_star", "ci95_lo", "ci95_hi", "status",
                          "converged", "final_steps", "selector_d", "gamma_global_bits"], rows)
    lo_d, hi_d = (data.get("search") or {}).get("range", [1, None])
    with figure_style():
        fig, axes = new_figure(1, max(1, len(ks)), width=4.2 * max(1, len(ks)), height=4.2)
        for ax, k in zip(axes[0], ks or [None], strict=False):
            if k is None:
                empty_panel(ax, "no cell")
                continue
            ns_all = sorted({e["n_subjects"] for es in data["d_star_by_condition"].values() for e in es
                             if e["n_relations"] == k})
            for cond in conds:
                color, marker = condition_style(cond)
                es = sorted((e for e in data["d_star_by_condition"][cond] if e["n_relations"] == k),
                            key=lambda e: e["n_subjects"])
                ok = [e for e in es if e["d_star"] is not None and e["status"] == "bracketed"]
                if ok:
                    y = [e["d_star"] for e in ok]
                    ci = [e["d_star_ci95"] or [e["d_star"], e["d_star"]] for e in ok]
                    ax.errorbar([e["n_subjects"] for e in ok], y,
                                yerr=[[max(0.0, v - c[0]) for v, c in zip(y, ci, strict=True)],
                                      [max(0.0, c[1] - v) for v, c in zip(y, ci, strict=True)]],
                                fmt=marker, color=color, ls="none", label=f"d*: {condition_label(data, cond)}")
                    unconv = [e for e in ok if e["converged"] is False]
                    if unconv:
                        ax.plot([e["n_subjects"] for e in unconv], [e["d_star"] for e in unconv], marker, ms=10,
                                mfc="none", color=color, ls="none", label=f"{cond}: not converged in budget")
                for e in es:
                    if e["status"] == "censored_high" and hi_d:
                        ax.plot([e["n_subjects"]], [hi_d], "^", mfc="none", color=color, ms=9)
                    elif e["status"] == "censored_low":
                        ax.plot([e["n_subjects"]], [lo_d], "v", mfc="none", color=color, ms=9)
                law = (data.get("laws") or {}).get(cond, {}).get(str(k)) or {}
                if law.get("b") is not None and len(ns_all) > 1:
                    xs = _grid(min(ns_all), max(ns_all))
                    wins = law.get("log_wins_fraction")
                    wins_txt = "" if wins is None else f", better in {wins:.0%} of replicates"
                    ax.plot(xs, [law["a"] + law["b"] * math.log2(x) for x in xs], color=color, lw=1, ls="-",
                            label=f"log law: {law['a']:.1f} + {law['b']:.2f}·log₂ N{wins_txt}")
                    ax.plot(xs, [law["c"] * x ** law["beta"] for x in xs], color=color, lw=1, ls=":",
                            label=f"power law: {law['c']:.2f}·N^{law['beta']:.2f}")
            sel = sorted({(e["n_subjects"], e["selector_d"]) for es in data["d_star_by_condition"].values()
                          for e in es if e["n_relations"] == k})
            ax.plot([n for n, _ in sel], [d for _, d in sel], "k+--", lw=0.6, ms=7, label=SELECTOR_LABEL)
            log2_axis(ax, "x")
            ax.set_xlabel(LABELS["n_subjects"])
            ax.set_ylabel("d* (smallest working d)")
            ax.set_title(f"K = {k}: d* against N (bars: seed-bootstrap 95 % interval)")
            ax.legend(fontsize=5.5, loc="upper left")
        fig.suptitle(f"Threshold ({data['scale']}): {data.get('success_rule', '')}; open ▲/▼: not bracketed "
                     "(above/below the search range)", fontsize=6.5)
        png = save(fig, folder / f"{DSTAR_FIGURE}.png")
    return [png, csv_path]


def plot_collapse(data: Mapping[str, Any], folder: Path) -> list[Path]:
    """d*/K against log₂ N, every K on one panel per condition; the ratios of equal-K log₂ N pairs written in."""
    conds, ks = _conditions(data), _ks(data)
    with figure_style():
        fig, axes = new_figure(1, max(1, len(conds)), width=4.6 * max(1, len(conds)), height=4.0)
        for ax, cond in zip(axes[0], conds, strict=False):
            _, marker = condition_style(cond)
            drawn = False
            for i, k in enumerate(ks):
                es = sorted((e for e in data["d_star_by_condition"][cond] if e["n_relations"] == k
                             and e["d_star"] is not None and e["status"] == "bracketed"), key=lambda e: e["n_subjects"])
                if not es:
                    continue
                drawn = True
                x = [math.log2(e["n_subjects"]) for e in es]
                y = [e["d_star"] / k for e in es]
                ci = [e["d_star_ci95"] or [e["d_star"], e["d_star"]] for e in es]
                ax.errorbar(x, y, yerr=[[max(0.0, v - c[0] / k) for v, c in zip(y, ci, strict=True)],
                                        [max(0.0, c[1] / k - v) for v, c in zip(y, ci, strict=True)]],
                            fmt=marker + "-", color=K_COLOURS[i % len(K_COLOURS)], lw=0.8, label=f"K = {k}")
            coll = (data.get("collapse") or {}).get(cond) or {}
            pairs = "; ".join(f"d*({a[0]},{a[1]}) / d*({b[0]},{b[1]}) = {p['ratio']:.2f}"
                              for p in coll.get("pairs", []) for a, b in [p["cells"]])
            if pairs:
                ax.text(0.98, 0.02, f"equal K log₂ N (N, K): {pairs}", transform=ax.transAxes, ha="right",
                        va="bottom", fontsize=5.5, color="0.3")
            pooled = coll.get("pooled")
            if pooled:
                xs = [math.log2(e["n_subjects"]) for e in data["d_star_by_condition"][cond]]
                lo, hi = min(xs), max(xs)
                r2 = "n/a" if pooled["r2"] is None else f"{pooled['r2']:.2f}"
                line = [pooled["intercept"] + pooled["slope"] * x for x in (lo, hi)]
                ax.plot([lo, hi], line, color="0.4", lw=1, ls="--", label=f"one line for all K: R² {r2}")
            if not drawn:
                empty_panel(ax, "no bracketed cell")
            ax.set_xlabel(LABELS["log2_n"] if "log2_n" in LABELS else "log₂ N")
            ax.set_ylabel("d* / K")
            ax.set_title(f"{condition_label(data, cond)}: d*/K against log₂ N (one curve if d* ∝ K log₂ N)")
            ax.legend(fontsize=6)
        png = save(fig, folder / f"{COLLAPSE_FIGURE}.png")
    return [png]


def plot_budget(data: Mapping[str, Any], folder: Path) -> list[Path]:
    """d* against the step budget, one line per (N, K), one panel per condition."""
    conds, ks = _conditions(data), _ks(data)
    rows = [(c, e["n_subjects"], e["n_relations"], s, d, st) for c in conds for e in data["d_star_by_condition"][c]
            for s, d, st in e["d_star_by_budget"]]
    csv_path = write_csv(folder / f"{BUDGET_FIGURE}.csv",
                         ["condition", "n_subjects", "n_relations", "steps", "d_star", "status"], rows)
    with figure_style():
        fig, axes = new_figure(1, max(1, len(conds)), width=4.6 * max(1, len(conds)), height=4.0)
        for ax, cond in zip(axes[0], conds, strict=False):
            drawn = False
            for e in data["d_star_by_condition"][cond]:
                pts = [(s, d) for s, d, st in e["d_star_by_budget"] if d is not None and st == "bracketed"]
                if not pts:
                    continue
                drawn = True
                color = K_COLOURS[ks.index(e["n_relations"]) % len(K_COLOURS)]
                ax.plot([s for s, _ in pts], [d for _, d in pts], "o-", color=color, lw=0.8, ms=3,
                        alpha=0.5 + 0.5 * math.log2(e["n_subjects"]) / 12)
            for i, k in enumerate(ks):
                ax.plot([], [], "o-", color=K_COLOURS[i % len(K_COLOURS)], label=f"K = {k} (darker: larger N)")
            if not drawn:
                empty_panel(ax, "no bracketed cell")
            else:
                log2_axis(ax, "x")
            ax.set_xlabel("step budget")
            ax.set_ylabel("d*")
            ax.set_title(f"{condition_label(data, cond)}: d* as the budget doubles")
            ax.legend(fontsize=6)
        png = save(fig, folder / f"{BUDGET_FIGURE}.png")
    return [png, csv_path]


def plot(payload: Mapping[str, Any], folder: Path) -> list[Path]:
    """The three threshold figures with their CSVs, from the payload alone."""
    folder = Path(folder)
    return plot_d_star(payload, folder) + plot_collapse(payload, folder) + plot_budget(payload, folder)
