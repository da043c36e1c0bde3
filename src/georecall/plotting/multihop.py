"""Figures of the ``multihop`` experiment, drawn from its payload alone (torch-free).

* ``capacity_depth.png`` / ``.csv``: the smallest successful model per hop count k and condition (trainable
  parameters, and its d as bits per subject embedding) beside the constructions' dense parameter counts
  and content bits (theory) and Theorem 4.2's γ_G, γ_L and required P at B_e = 0 (theory).
* ``success_grid.png`` / ``.csv``: the fraction of seeds reaching the target over the (d, d_mlp) grid, one
  panel per (condition, k).
* ``backward_probe.png`` / ``.csv``: the backward-code probes of the successful direct-learned models
  against their shuffled controls.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from georecall.plotting.style import LABELS, empty_panel, figure_style, new_figure, save
from georecall.plotting.tables import write_csv

FIG_CAPACITY = "capacity_depth"
FIG_GRID = "success_grid"
FIG_PROBE = "backward_probe"
#: Code books the backward-code probe tries (the experiment's ``CODE_BOOKS``).
CODE_BOOKS: tuple[str, ...] = ("index", "readout")
#: Colour and marker of each condition.
CONDITION_STYLES: dict[str, tuple[str, str]] = {
    "direct-frozen": ("tab:blue", "o"), "direct-learned": ("tab:orange", "s"),
    "cot-frozen": ("tab:green", "^"), "cot-learned": ("tab:red", "v"),
}
CONDITION_LABELS: dict[str, str] = {
    "direct-frozen": "no CoT, frozen random readout", "direct-learned": "no CoT, learned readout",
    "cot-frozen": "CoT, frozen random readout", "cot-learned": "CoT, learned readout",
}
#: The constructions drawn (payload key prefix, line style, colour).
_CONSTRUCTIONS = (("kv_memory", "--", "gray"), ("precompute", "-.", "gray"), ("cot", ":", "black"))


def _cond_label(cond: str) -> str:
    return f"{cond} ({CONDITION_LABELS[cond]})" if cond in CONDITION_LABELS else cond


def _plot_capacity(res: Mapping[str, Any], folder: Path) -> list[Path]:
    hops = res["hops"]
    theory = {t["k"]: t for t in res["theory"]}
    b = res["bits_per_coordinate"]
    csv_rows: list[tuple] = []
    with figure_style():
        fig, axes = new_figure(1, 2, width=12.5, height=5.0)
        ax_p, ax_e = axes[0]
        conds = res["conditions"]
        for i, cond in enumerate(conds):
            pts = [(s["k"], s["trainable_params"], s["d_model"]) for s in res["smallest"]
                   if s["condition"] == cond and s["found"]]
            color, marker = CONDITION_STYLES.get(cond, ("black", "x"))
            shift = 0.05 * (i - (len(conds) - 1) / 2)  # equal values stay visible side by side
            if pts:
                ax_p.plot([p[0] + shift for p in pts], [p[1] for p in pts], marker=marker, color=color,
                          label=f"trained, {_cond_label(cond)}: trainable params")
                ax_e.plot([p[0] + shift for p in pts], [b * p[2] for p in pts], marker=marker, color=color,
                          label=f"trained, {cond}: d × {b:g} bit")
            for s in res["smallest"]:
                if s["condition"] == cond:
                    csv_rows.append(("trained_" + cond, s["k"], s.get("trainable_params"), "trainable parameters"))
                    csv_rows.append(("trained_" + cond + "_d_model", s["k"], s.get("d_model"), "coordinates"))
        for name, style, color in _CONSTRUCTIONS:
            pretty = name.replace("_", "-")
            vals = [theory[k][f"{name}_total_params"] for k in hops]
            ax_p.plot(hops, vals, style, color=color, label=f"{pretty} construction (theory): dense params")
            csv_rows += [(f"construction_{name}_total_params", k, v, "parameters")
                         for k, v in zip(hops, vals, strict=True)]
            bits = [theory[k][f"{name}_embedding_bits"] for k in hops]
            csv_rows += [(f"construction_{name}_embedding_bits", k, v, "bits") for k, v in zip(hops, bits, strict=True)]
            if any(v > 0 for v in bits):
                ax_e.plot(hops, [v if v > 0 else math.nan for v in bits], style, color=color,
                          label=f"{pretty} construction (theory): B_e (bits)")
        g_g = [theory[k]["gamma_G"] for k in hops]
        g_l = [theory[k]["gamma_L"] if theory[k]["gamma_L"] is not None else math.nan for k in hops]
        ax_e.plot(hops, g_g, "k-", lw=2, alpha=0.5, label="Theorem 4.2 bound (theory): γ_G (bits)")
        ax_e.plot(hops, g_l, "k-", lw=2, label="Theorem 4.2 bound (theory): γ_L (bits; P = 0 above)")
        csv_rows += [("bound_gamma_G", k, v, "bits") for k, v in zip(hops, g_g, strict=True)]
        csv_rows += [("bound_gamma_L", k, theory[k]["gamma_L"], "bits") for k in hops]
        req0 = [theory[k]["required_bits_at_zero_embedding"] for k in hops]
        ax_p.plot(hops, [v / 32 for v in req0], "k-", lw=2,
                  label="Theorem 4.2 bound (theory): P at B_e = 0, in float32 params (bits / 32)")
        csv_rows += [("bound_required_bits_at_B_e_0", k, v, "bits") for k, v in zip(hops, req0, strict=True)]
        for ax in (ax_p, ax_e):
            ax.set_yscale("log")
            ax.set_xticks(hops)
            ax.set_xlabel(LABELS["n_hops"])
            ax.legend(fontsize=6)
        n, kk = res["n_subjects"], res["n_relations"]
        ax_p.set_ylabel(LABELS["params"])
        ax_p.set_title(f"Smallest model reaching {res['target_accuracy']:.0%} of the chains (N = {n}, K = {kk})")
        ax_e.set_ylabel(f"bits per subject embedding (trained: d coordinates × {b:g} bit)")
        ax_e.set_title("Embedding: trained d against γ_G, γ_L (float32 would be 32 bits per coordinate)")
        fig.suptitle(f"Capacity–depth ({res['scale']}; {res['steps']} steps, seeds {res['seeds']}; a size "
                     "succeeds when a strict majority of its seeds reach the target)")
        png = save(fig, folder / f"{FIG_CAPACITY}.png")
    return [png, write_csv(folder / f"{FIG_CAPACITY}.csv", ("series", "k", "value", "unit"), csv_rows)]


def _plot_grid(res: Mapping[str, Any], folder: Path) -> list[Path]:
    import numpy as np

    conds, hops, ds, ws = res["conditions"], res["hops"], res["d_models"], res["d_mlps"]
    csv_rows = []
    with figure_style():
        fig, axes = new_figure(len(conds), len(hops), width=1.2 + 3.2 * len(hops), height=0.6 + 2.6 * len(conds))
        image = None
        for i, cond in enumerate(conds):
            for j, k in enumerate(hops):
                ax = axes[i][j]
                ax.grid(False)
                grid = np.full((len(ds), len(ws)), np.nan)
                for e in res["sizes"]:
                    if e["condition"] == cond and e["k"] == k:
                        frac = e["n_success"] / e["n_runs"] if e["n_runs"] else 0.0
                        grid[ds.index(e["d_model"]), ws.index(e["d_mlp"])] = frac
                        csv_rows.append((cond, k, e["d_model"], e["d_mlp"], e["n_success"], e["n_runs"],
                                         int(e["success"]), e["trainable_params"], e["total_params"]))
                image = ax.imshow(grid, vmin=0, vmax=1, cmap="viridis", origin="lower", aspect="auto")
                for a in range(len(ds)):
                    for c in range(len(ws)):
                        if not np.isnan(grid[a, c]):
                            ax.text(c, a, f"{grid[a, c]:.2f}", ha="center", va="center", fontsize=7,
                                    color="white" if grid[a, c] < 0.5 else "black")
                ax.set_xticks(range(len(ws)), [str(w) for w in ws])
                ax.set_yticks(range(len(ds)), [str(d) for d in ds])
                ax.set_title(f"{cond}, k = {k}")
                if j == 0:
                    ax.set_ylabel(LABELS["d_model"])
                if i == len(conds) - 1:
                    ax.set_xlabel(LABELS["d_mlp"])
        if image is not None:
            fig.colorbar(image, ax=axes, shrink=0.6, label=f"fraction of seeds reaching {res['target_accuracy']:.0%}")
        n_seeds = len(res["seeds"])
        fig.suptitle(f"Fraction of seeds reaching {res['target_accuracy']:.0%} (N = {res['n_subjects']}, "
                     f"K = {res['n_relations']}, {res['steps']} steps, {n_seeds} seed{'s' * (n_seeds != 1)})")
        png = save(fig, folder / f"{FIG_GRID}.png")
    header = ("condition", "k", "d_model", "d_mlp", "n_success", "n_runs", "success", "trainable_params",
              "total_params")
    return [png, write_csv(folder / f"{FIG_GRID}.csv", header, csv_rows)]


def _plot_probe(res: Mapping[str, Any], folder: Path) -> list[Path]:
    probes = res["probes"]
    csv_rows = []
    for p in probes:
        csv_rows.append((p["k"], p["d_model"], p["d_mlp"], p["seed"], p["embedding_bits"], p["gamma_L"],
                         int(p["below_gamma_L"]),
                         *[p[f"{b}_{f}"] for b in CODE_BOOKS for f in ("score", "control_mean", "control_max")],
                         int(p["readout_holds_backward_codes"])))
    with figure_style():
        fig, axes = new_figure(1, len(CODE_BOOKS), width=6.0 * len(CODE_BOOKS), height=4.8)
        for ax, book in zip(axes[0], CODE_BOOKS, strict=True):
            if probes:
                x = list(range(len(probes)))
                ax.bar([v - 0.2 for v in x], [p[f"{book}_score"] for p in probes], 0.4, label="probe (held out)")
                ax.bar([v + 0.2 for v in x], [p[f"{book}_control_mean"] for p in probes], 0.4,
                       label="shuffled control (mean over shuffles)")
                ax.scatter([v + 0.2 for v in x], [p[f"{book}_control_max"] for p in probes], marker="_", color="k",
                           s=80, label="shuffled control (max over shuffles)", zorder=3)
                ax.set_xticks(x, [f"k={p['k']} d={p['d_model']} d_mlp={p['d_mlp']} seed {p['seed']}" for p in probes],
                              rotation=90, fontsize=6)
                metric = probes[0][f"{book}_metric"]
                floor = (0.5 if metric == "bit_accuracy" else 0.0) + res["recipe"]["probe"]["margin"]
                ax.axhline(floor, color="red", lw=1, ls="--", label="a flag needs at least chance + margin")
                ax.legend()
                ax.set_ylabel(metric.replace("_", " ") + " (held out)")
            else:
                empty_panel(ax, "no successful direct-learned model to probe")
                ax.set_ylabel("score")
            ax.set_xlabel("successful direct-learned runs")
            ax.set_title(f"Backward codes in the readout rows u_a, code book '{book}'")
        fig.suptitle(f"Backward-code probes ({res['scale']}; N = {res['n_subjects']}, K = {res['n_relations']}): "
                     f"{res['n_flagged']} of {len(probes)} runs flagged")
        png = save(fig, folder / f"{FIG_PROBE}.png")
    header = ("k", "d_model", "d_mlp", "seed", "embedding_bits", "gamma_L", "below_gamma_L",
              *[f"{b}_{f}" for b in CODE_BOOKS for f in ("score", "control_mean", "control_max")], "flagged")
    return [png, write_csv(folder / f"{FIG_PROBE}.csv", header, csv_rows)]


def plot(payload: Mapping[str, Any], folder: Path) -> list[Path]:
    """The capacity–depth figure, the success grid and the backward-code probes, each PNG beside its CSV."""
    folder = Path(folder)
    return [*_plot_capacity(payload, folder), *_plot_grid(payload, folder), *_plot_probe(payload, folder)]
