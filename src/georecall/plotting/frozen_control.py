"""Figures of the ``frozen_control`` experiment, drawn from its payload alone (torch-free).

* ``frozen_accuracy_vs_width.png`` / ``.csv``: frozen embeddings and readout at fixed d, accuracy against
  the MLP width d_mlp, one line per (N, K) (mean over seeds, bars min–max over seeds), the needed d_mlp starred.
* ``learned_accuracy_vs_d.png`` / ``.csv``: the learned condition, accuracy against d (d_mlp = ratio·d).
* ``params_needed_vs_nk.png`` / ``.csv``: the d_mlp needed (frozen) against N·K with the width-slope fit, and
  the attention + MLP + LayerNorm parameters needed by both conditions against N·K (log-log), with the
  selector construction's attention + MLP count (theory) for learned embeddings.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from georecall.plotting.style import (
    LABELS,
    SEED_BARS,
    empty_panel,
    figure_style,
    integer_ticks,
    new_figure,
    save,
    seed_spread,
)
from georecall.plotting.tables import write_csv
from georecall.theory import construction_cost

FROZEN, LEARNED = "frozen", "learned"
CONDITIONS = (FROZEN, LEARNED)
FIGURES = ("frozen_accuracy_vs_width", "learned_accuracy_vs_d", "params_needed_vs_nk")
CURVE_COLUMNS = ("condition", "N", "K", "NK", "size", "d_model", "d_mlp", "n_seeds", "n_success", "majority",
                 "mean_accuracy", "median_accuracy", "min_accuracy", "max_accuracy", "median_steps",
                 "params_non_embedding", "params_trainable", "params_total")
POINT_COLUMNS = ("condition", "N", "K", "NK", "size_name", "needed_size", "status", "first_success", "d_model",
                 "d_mlp", "params_non_embedding", "params_trainable", "params_total", "information_bits")
#: Colour of each condition; marker of each K (in order of the K values present).
CONDITION_COLORS = {FROZEN: "tab:blue", LEARNED: "tab:orange"}
CONDITION_LABELS = {FROZEN: "frozen random embeddings + readout", LEARNED: "learned embeddings + readout"}
K_MARKERS = ("o", "s", "^", "D", "v", "P", "X")


def success_level(cfg: Mapping[str, Any]) -> float:
    """The accuracy a seed must reach: ``config.recipe.success_accuracy`` (else the older ``target_accuracy``)."""
    recipe = cfg.get("recipe") if isinstance(cfg.get("recipe"), Mapping) else {}
    for value in (recipe.get("success_accuracy"), cfg.get("target_accuracy"), recipe.get("target_accuracy")):
        if value is not None:
            return float(value)
    return 0.99


def _k_marker(k: int, ks: Sequence[int]) -> str:
    return K_MARKERS[sorted(set(ks)).index(k) % len(K_MARKERS)]


def _spread(curve: Mapping[str, Any]) -> tuple[float, float, float] | None:
    """(mean, min, max) over the curve's seeds: from its per-seed accuracies, else its summary fields."""
    s = seed_spread(curve.get("accuracy"))
    if s is None and curve.get("mean_accuracy") is not None:
        s = (curve["mean_accuracy"], curve["min_accuracy"], curve["max_accuracy"])
    return s


def _accuracy_figure(folder: Path, name: str, curves: list[dict[str, Any]], points: list[dict[str, Any]],
                     xlabel: str, title: str, target: float) -> list[Path]:
    import matplotlib
    from matplotlib.lines import Line2D

    csv_path = write_csv(folder / f"{name}.csv", CURVE_COLUMNS, ([r.get(c) for c in CURVE_COLUMNS] for r in curves))
    keys = sorted({(c["N"], c["K"]) for c in curves}, key=lambda t: (t[0] * t[1], t[1]))
    ks = [k for _, k in keys]
    cmap = matplotlib.colormaps["viridis"]
    with figure_style():
        fig, axes = new_figure(1, 1, width=7.5, height=4.8)
        ax = axes[0][0]
        for i, (n, k) in enumerate(keys):
            cs = sorted((c for c in curves if (c["N"], c["K"]) == (n, k) and _spread(c) is not None),
                        key=lambda c: c["size"])
            if not cs:
                continue
            color = cmap(i / max(1, len(keys) - 1) * 0.9)
            spreads = {c["size"]: _spread(c) for c in cs}
            x = [c["size"] for c in cs]
            y = [spreads[s][0] for s in x]
            err = [[spreads[s][0] - spreads[s][1] for s in x], [spreads[s][2] - spreads[s][0] for s in x]]
            ax.errorbar(x, y, yerr=err, marker=_k_marker(k, ks), ms=4, color=color, lw=1.2,
                        label=f"N = {n}, K = {k} (N·K = {n * k})")
            need = next((p for p in points if (p["N"], p["K"]) == (n, k)), None)
            if need is not None and need["needed_size"] in spreads:
                ax.plot([need["needed_size"]], [spreads[need["needed_size"]][0]], marker="*", ms=13, color=color,
                        mec="black", ls="none")
        ax.axhline(target, color="gray", ls="--", lw=1, label=f"target accuracy {target:g}")
        handles, labels = ax.get_legend_handles_labels()
        handles.append(Line2D([], [], marker="*", ms=10, color="white", mec="black", ls="none"))
        labels.append("needed size (majority of seeds, monotone rule)")
        sizes = [c["size"] for c in curves]
        if sizes:
            ax.set_xscale("log")
            integer_ticks(ax, "x", sizes)
            ax.tick_params(axis="x", labelrotation=45)
        else:
            empty_panel(ax, "no curve")
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("final accuracy")
        ax.set_title(title)
        ax.legend(handles, labels, loc="best", title=SEED_BARS, title_fontsize=6)
        png = save(fig, folder / f"{name}.png")
    return [png, csv_path]


def _selector_non_embedding(n: int, k: int) -> int:
    c = construction_cost("selector", n, k, 1)
    return c.attention + c.mlp


def _params_figure(folder: Path, data: Mapping[str, Any]) -> list[Path]:
    from matplotlib.lines import Line2D

    points = data["points"]
    csv_path = write_csv(folder / f"{FIGURES[2]}.csv", POINT_COLUMNS,
                         ([r.get(c) for c in POINT_COLUMNS] for r in points))
    ks = sorted({p["K"] for p in points})
    d = data["config"]["d_model"]
    with figure_style():
        fig, axes = new_figure(1, 2, width=13.0, height=5.2)
        ax0, ax1 = axes[0]
        # (a) needed frozen width against N·K, linear axes, with the width_slope fit.
        fz = [p for p in points if p["condition"] == FROZEN]
        for p in fz:
            m = _k_marker(p["K"], ks)
            if p["status"] == "censored_high":
                ax0.plot([p["NK"]], [max(p["tried"])], marker=m, ls="none", color="tab:red", mfc="none")
            else:
                ax0.plot([p["NK"]], [p["needed_size"]], marker=m, ls="none", color=CONDITION_COLORS[FROZEN],
                         mfc=CONDITION_COLORS[FROZEN] if p["status"] == "bracketed" else "none")
        handles = [Line2D([], [], marker=_k_marker(k, ks), ls="none", color="gray", label=f"K = {k}") for k in ks]
        handles += [Line2D([], [], marker="o", ls="none", color=CONDITION_COLORS[FROZEN],
                           label="filled: bracketed (a smaller d_mlp failed)"),
                    Line2D([], [], marker="o", ls="none", color=CONDITION_COLORS[FROZEN], mfc="none",
                           label="hollow: upper bound (the smallest tried d_mlp passed)"),
                    Line2D([], [], marker="o", ls="none", color="tab:red", mfc="none",
                           label="red: need > the largest tried d_mlp (drawn there)")]
        ws = data["width_slope"]
        if ws["slope"] is not None and fz:
            top = max(p["NK"] for p in fz)
            xs = [top * i / 49 for i in range(50)]
            ci = ws["ci95"]
            ci_txt = "" if ci is None else f"\nslope 95% interval over seeds (bootstrap): [{ci[0]:.3g}, {ci[1]:.3g}]"
            se = "n/a" if ws["stderr"] is None else f"{ws['stderr']:.2g}"
            (line,) = ax0.plot(xs, [ws["intercept"] + ws["slope"] * x for x in xs], color=CONDITION_COLORS[FROZEN],
                               lw=1, label=f"fit: d_mlp = {ws['slope']:.3g}·N·K {ws['intercept']:+.3g} "
                                           f"(OLS s.e. {se}){ci_txt}")
            handles.append(line)
        if not fz:
            empty_panel(ax0, "no frozen point")
        ax0.set_xlabel(LABELS["nk"])
        ax0.set_ylabel(f"d_mlp needed (MLP width; frozen embeddings + readout, d = {d})")
        ax0.set_title("MLP width d_mlp needed for the target (frozen)")
        ax0.legend(handles=handles, loc="upper left")
        # (b) parameters needed against N·K, log-log, frozen vs learned; one marker per K.
        handles = []
        for cond in CONDITIONS:
            color = CONDITION_COLORS[cond]
            sel = [p for p in points if p["condition"] == cond and p["params_non_embedding"] is not None]
            for p in sel:
                ax1.plot([p["NK"]], [p["params_non_embedding"]], marker=_k_marker(p["K"], ks), ls="none",
                         color=color, mfc=color if p["status"] == "bracketed" else "none", ms=7)
            what = "trainable" if cond == FROZEN else "non-embedding"
            handles.append(Line2D([], [], marker="o", ls="none", color=color,
                                  label=f"{CONDITION_LABELS[cond]}: attention+MLP+LN ({what})"))
            fit = data["param_exponent"][cond]
            if fit["slope"] is not None and fit.get("x"):
                xs = sorted(fit["x"])
                (line,) = ax1.plot(xs, [math.exp(fit["intercept"]) * x ** fit["slope"] for x in xs], color=color,
                                   lw=1, label=f"{cond} fit: ∝ (N·K)^{fit['slope']:.2f}")
                handles.append(line)
            if cond == LEARNED:
                for k in ks:
                    tot = sorted((p for p in sel if p["K"] == k and p["params_total"] is not None),
                                 key=lambda p: p["NK"])
                    if tot:
                        ax1.plot([p["NK"] for p in tot], [p["params_total"] for p in tot], marker=_k_marker(k, ks),
                                 ls=":", color=color, mfc="none", alpha=0.5, ms=5)
                handles.append(Line2D([], [], marker="o", ls=":", color=color, mfc="none", alpha=0.5,
                                      label="learned: total (incl. the N·d embeddings and the readout)"))
        nks = sorted({(p["NK"], p["N"], p["K"]) for p in points})
        if nks:
            ax1.plot([t[0] for t in nks], [_selector_non_embedding(t[1], t[2]) for t in nks], "k+", ms=8, ls="none")
            handles.append(Line2D([], [], marker="+", ms=8, ls="none", color="k",
                                  label="selector construction (theory): attention+MLP, d = (K+1)⌈log₂ N⌉+K"))
            ax1.set_xscale("log")
            ax1.set_yscale("log")
            integer_ticks(ax1, "x", [t[0] for t in nks])
        else:
            empty_panel(ax1, "no point")
        handles += [Line2D([], [], marker=_k_marker(k, ks), ls="none", color="gray", label=f"K = {k}") for k in ks]
        handles.append(Line2D([], [], marker="o", ls="none", color="gray", mfc="none", label="hollow: upper bound"))
        ax1.grid(alpha=0.3, which="both")
        ax1.set_xlabel(LABELS["nk"])
        ax1.set_ylabel("parameters of the smallest model reaching the target")
        ax1.set_title("Parameters needed: frozen random vs learned embeddings")
        ax1.legend(handles=handles, loc="upper left")
        recipe = data.get("recipe")
        if isinstance(recipe, Mapping):
            recipe = ", ".join(f"{k} {v}" for k, v in recipe.items() if not isinstance(v, (Mapping, list)))
        fig.suptitle(textwrap.fill(f"Frozen-embedding control ({data['scale']}): {recipe}", 220), fontsize=6)
        png = save(fig, folder / f"{FIGURES[2]}.png")
    return [png, csv_path]


def plot(payload: Mapping[str, Any], folder: Path) -> list[Path]:
    """Accuracy against d_mlp (frozen), accuracy against d (learned), parameters needed against N·K; each with a CSV."""
    folder = Path(folder)
    cfg = payload["config"]
    target = success_level(cfg)
    out: list[Path] = []
    for cond, name, xlabel, title in (
        (FROZEN, FIGURES[0], LABELS["d_mlp"],
         f"Frozen random embeddings + readout (d = {cfg['d_model']}): accuracy against d_mlp"),
        (LEARNED, FIGURES[1], f"{LABELS['d_model']}; d_mlp = {cfg['learned_mlp_ratio']}·d",
         "Learned embeddings + readout: accuracy against d"),
    ):
        curves = [c for c in payload["curves"] if c["condition"] == cond]
        points = [p for p in payload["points"] if p["condition"] == cond]
        out += _accuracy_figure(folder, name, curves, points, xlabel, title, target)
    out += _params_figure(folder, payload)
    return out
