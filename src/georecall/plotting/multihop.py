"""Figures of the ``multihop`` experiment, drawn from its payload alone (torch-free).

* ``capacity_depth.png`` / ``.csv``: per N, the smallest working model (trainable parameters) against the hop
  count k for every condition, with seed-bootstrap intervals (an open triangle at the range top: no rung
  worked), beside the constructions' dense parameter counts (theory), the range's top rungs, and Theorem
  4.2's minimum fact-dependent parameters at B_e = 0 (at the first stated precision).
* ``search_grid.png`` / ``.csv``: every cell's search: the fraction of seeds succeeding at each tried rung
  (the smallest working rung boxed).
* ``bound_check.png`` / ``.csv``: per N, every successful direct model's fact-dependent parameters P against
  its d, with Theorem 4.2's ``required(b d) / b`` per k (theory lines over the ladder's d); a model below its
  line is below the bound at b bits per number. Learned readouts are drawn with the readout left out (the
  fixed-readout bound's accounting).
* ``probes.png`` / ``.csv``: forward-tree probes of the subject embeddings (depth 1 and depth k) and backward-code
  probes of learned readouts, each against its shuffled control, per code book.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from georecall.plotting.style import LABELS, empty_panel, figure_style, log2_axis, new_figure, save
from georecall.plotting.tables import write_csv

FIG_CAPACITY = "capacity_depth"
FIG_GRID = "search_grid"
FIG_BOUND = "bound_check"
FIG_PROBE = "probes"
FIGURES: tuple[str, ...] = (FIG_CAPACITY, FIG_GRID, FIG_BOUND, FIG_PROBE)
#: Code books the probes try (the experiment's ``CODE_BOOKS``).
CODE_BOOKS: tuple[str, ...] = ("index", "readout", "embedding")
#: Colour and marker of each condition.
CONDITION_STYLES: dict[str, tuple[str, str]] = {
    "direct-frozen": ("tab:blue", "o"), "direct-learned": ("tab:orange", "s"), "direct1-frozen": ("tab:purple", "D"),
    "cot-frozen": ("tab:green", "^"), "cot-final": ("tab:olive", "v"),
}
#: The constructions drawn (payload key prefix, line style).
_CONSTRUCTIONS = (("kv_memory", "--"), ("precompute", "-."), ("cot", ":"))
CAPACITY_COLUMNS = ("series", "N", "k", "value", "lo", "hi", "unit")
GRID_COLUMNS = ("N", "k", "condition", "rung", "d_model", "d_mlp", "n_success", "n_seeds", "works",
                "trainable_params", "smallest")
BOUND_COLUMNS = ("N", "k", "condition", "d_model", "d_mlp", "seed", "readout", "fact_params_drawn", "bits",
                 "required_bits", "below", "break_even_bits")
PROBE_COLUMNS = ("kind", "depth", "code_book", "N", "k", "condition", "d_model", "seed", "metric", "score",
                 "control_mean", "control_max", "beats_control")


def _style(cond: str) -> tuple[str, str]:
    return CONDITION_STYLES.get(cond, ("black", "x"))


def _label(res: Mapping[str, Any], cond: str) -> str:
    lab = res.get("condition_labels", {}).get(cond)
    return f"{cond} ({lab})" if lab else cond


def _plot_capacity(res: Mapping[str, Any], folder: Path) -> list[Path]:
    subjects, hops, conds = res["subjects"], res["hops"], res["conditions"]
    theory = {(t["N"], t["k"]): t for t in res["theory"]}
    b = res["bits_per_number"][0]
    rows: list[tuple] = []
    with figure_style():
        fig, axes = new_figure(1, len(subjects), width=1.5 + 4.4 * len(subjects), height=6.5)
        for j, n in enumerate(subjects):
            ax = axes[0][j]
            for i, cond in enumerate(conds):
                color, marker = _style(cond)
                shift = 0.06 * (i - (len(conds) - 1) / 2)  # equal values stay visible side by side
                xs, ys, lo, hi, tops = [], [], [], [], []
                for e in res["cells"]:
                    if e["N"] != n or e["condition"] != cond:
                        continue
                    iv = e["interval"]
                    if e["smallest"] is None:
                        tops.append((e["k"], e["range_top_trainable_params"]))
                        rows.append((cond, n, e["k"], None, iv["trainable_params_lo"], None, e["smallest_status"]))
                        continue
                    v = e["smallest"]["trainable_params"]
                    v_lo = iv["trainable_params_lo"] or v
                    v_hi = iv["trainable_params_hi"] or e["range_top_trainable_params"]
                    xs.append(e["k"] + shift)
                    ys.append(v)
                    lo.append(max(0.0, v - v_lo))
                    hi.append(max(0.0, v_hi - v))
                    rows.append((cond, n, e["k"], v, iv["trainable_params_lo"], iv["trainable_params_hi"],
                                 "trainable parameters"))
                if xs:
                    ax.errorbar(xs, ys, yerr=[lo, hi], marker=marker, color=color, capsize=2,
                                label=f"trained, {_label(res, cond)}")
                if tops:
                    ax.scatter([t[0] + shift for t in tops], [t[1] for t in tops], marker="^", facecolors="none",
                               edgecolors=color, s=60, zorder=3,
                               label=f"{cond}: no rung up to the range top works (drawn at the top)")
            ks = [k for k in hops if (n, k) in theory]
            for name, style in _CONSTRUCTIONS:
                vals = [theory[(n, k)][f"{name}_total_params"] for k in ks]
                ax.plot(ks, vals, style, color="gray", label=f"{name.replace('_', '-')} construction (theory): "
                                                              "dense params" if j == 0 else None)
                rows += [(f"construction_{name}_total_params", n, k, v, None, None, "parameters")
                         for k, v in zip(ks, vals, strict=True)]
            req = [theory[(n, k)]["required_bits_at_zero_embedding"] / b for k in ks]
            ax.plot(ks, req, "k-", lw=2, alpha=0.6,
                    label=(f"Theorem 4.2 (theory): minimum fact-dependent params at B_e = 0, {b:g} bit each"
                           if j == 0 else None))
            rows += [("bound_min_fact_params_at_B_e_0", n, k, v, None, None, f"parameters at {b:g} bit")
                     for k, v in zip(ks, req, strict=True)]
            for cond_depth, ls in (("direct-frozen", (0, (1, 3))), ("cot-frozen", (0, (3, 3)))):
                top = [(e["k"], e["range_top_trainable_params"]) for e in res["cells"]
                       if e["N"] == n and e["condition"] == cond_depth]
                if top:
                    depth = "depth k" if cond_depth == "direct-frozen" else "one layer"
                    ax.plot([t[0] for t in top], [t[1] for t in top], color="0.6", ls=ls, lw=1,
                            label=f"top of the searched range ({depth})" if j == 0 else None)
            ax.set_yscale("log")
            ax.set_xticks(hops)
            ax.set_xlabel(LABELS["n_hops"])
            ax.set_ylabel(LABELS["params"] + " (trainable; constructions: all)")
            ax.set_title(f"N = {n}, K = {res['n_relations']}")
        _figure_legend(fig, axes[0])
        level = res["cells"][0]["interval"]["level"] if res["cells"] else 0.0
        fig.suptitle(f"Smallest model reaching {res['target_accuracy']:.0%} against k ({res['scale']}; "
                     f"{res['steps']} steps, seeds {res['seeds']}; d_mlp = {res['recipe'].get('mlp_ratio', 4)} d; "
                     f"bars: seed-bootstrap {level:.0%} interval)")
        png = save(fig, folder / f"{FIG_CAPACITY}.png")
    return [png, write_csv(folder / f"{FIG_CAPACITY}.csv", CAPACITY_COLUMNS, rows)]


def _figure_legend(fig: Any, axes: Sequence[Any]) -> None:
    """One legend below the panels, every label once."""
    seen: dict[str, Any] = {}
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            seen.setdefault(lab, h)
    if seen:
        fig.legend(list(seen.values()), list(seen), loc="outside lower center", ncol=2, fontsize=6)


def _plot_grid(res: Mapping[str, Any], folder: Path) -> list[Path]:
    import numpy as np

    cells = res["cells"]
    n_rungs = len(res["ladder"])
    grid = np.full((max(1, len(cells)), n_rungs), np.nan)
    rows = []
    for i, e in enumerate(cells):
        best = e["smallest"]["rung"] if e["smallest"] else None
        for t in e["tried"]:
            n_seeds = len(t["seeds"])
            grid[i, t["rung"] - 1] = t["n_success"] / n_seeds if n_seeds else np.nan
            rows.append((e["N"], e["k"], e["condition"], t["rung"], t["d_model"], t["d_mlp"], t["n_success"], n_seeds,
                         int(t["works"]), t["trainable_params"], int(t["rung"] == best)))
    with figure_style():
        fig, axes = new_figure(1, 1, width=2.5 + 0.55 * n_rungs, height=1.2 + 0.22 * max(1, len(cells)))
        ax = axes[0][0]
        ax.grid(False)
        if not cells:
            empty_panel(ax, "no cells")
        else:
            image = ax.imshow(grid, vmin=0, vmax=1, cmap="viridis", aspect="auto", origin="upper")
            for i, e in enumerate(cells):
                if e["smallest"]:
                    r = e["smallest"]["rung"] - 1
                    ax.add_patch(_box(r, i))
                if not e["smallest_bracketed"]:
                    ax.text(n_rungs - 0.5, i, f" {e['smallest_status']}", va="center", fontsize=5, color="red")
            ax.set_yticks(range(len(cells)), [f"N={e['N']} k={e['k']} {e['condition']}" for e in cells], fontsize=5)
            ax.set_xticks(range(n_rungs), [f"{r['d_model']}/{r['d_mlp']}" for r in res["ladder"]], rotation=90,
                          fontsize=6)
            fig.colorbar(image, ax=ax, shrink=0.5, label=f"fraction of seeds reaching {res['target_accuracy']:.0%}")
        ax.set_xlabel("rung: d (embedding dimension) / d_mlp (MLP width)")
        fig.suptitle(f"Search per (N, k, condition): tried rungs (blank: not tried), smallest working rung boxed; "
                     f"{res['search']['rule'][:120]}...", fontsize=6)
        png = save(fig, folder / f"{FIG_GRID}.png")
    return [png, write_csv(folder / f"{FIG_GRID}.csv", GRID_COLUMNS, rows)]


def _box(x: int, y: int) -> Any:
    from matplotlib.patches import Rectangle

    return Rectangle((x - 0.5, y - 0.5), 1, 1, fill=False, edgecolor="red", lw=1.2)


def _plot_bound(res: Mapping[str, Any], folder: Path) -> list[Path]:
    subjects, hops = res["subjects"], res["hops"]
    b = res["bits_per_number"][0]
    rows = []
    hop_colors = {k: c for k, c in zip(hops, ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple",
                                              "tab:brown") * 4, strict=False)}
    with figure_style():
        fig, axes = new_figure(1, len(subjects), width=1.5 + 4.4 * len(subjects), height=6.0)
        for j, n in enumerate(subjects):
            ax = axes[0][j]
            for c in res["bound_curves"]:
                if c["N"] == n and c["bits"] == b:
                    pts = [(p["d_model"], p["min_fact_params"]) for p in c["points"]]
                    ax.plot([p[0] for p in pts], [p[1] if p[1] > 0 else math.nan for p in pts], "-",
                            color=hop_colors[c["k"]], lw=1.5,
                            label=f"Theorem 4.2 (theory), k = {c['k']}: required(b d) / b")
            seen = set()
            for e in res["bound"]:
                if e["N"] != n:
                    continue
                learned = not e["in_class"]
                comps = e["fixed_readout_comparisons"] if learned else e["comparisons"]
                p_drawn = e["fixed_readout_fact_params"] if learned else e["fact_params"]
                comp = comps[0]
                be = e["fixed_readout_break_even_bits"] if learned else e["break_even_bits"]
                rows.append((n, e["k"], e["condition"], e["d_model"], e["d_mlp"], e["seed"],
                             "fixed (readout not counted)" if learned else e["readout"], p_drawn, comp["bits"],
                             comp["required_bits"], int(comp["below"]), be))
                _, marker = _style(e["condition"])
                key = (e["condition"], e["k"])
                ax.scatter([e["d_model"]], [max(p_drawn, 1)], marker=marker, s=22,
                           facecolors="none" if learned else hop_colors[e["k"]], edgecolors=hop_colors[e["k"]],
                           label=(f"trained, {e['condition']}, k = {e['k']}" + (" (readout not counted)" if learned
                                                                               else "")) if key not in seen else None)
                seen.add(key)
            if not res["bound"]:
                empty_panel(ax, "no successful direct model")
            ax.set_yscale("log")
            log2_axis(ax, "x")
            ax.set_xlabel(LABELS["d_model"] + f"; B_e = {b:g} bit × d")
            ax.set_ylabel(f"fact-dependent parameters P (bits at {b:g} bit each)")
            ax.set_title(f"N = {n}, K = {res['n_relations']}")
        _figure_legend(fig, axes[0])
        fig.suptitle(f"Theorem 4.2 in one unit (B_e = b d, P = b × parameters, b = {b:g} bit): successful trained "
                     "models against the fixed-readout bound (below a line = below the bound at b; break-even b* in "
                     "the CSV)")
        png = save(fig, folder / f"{FIG_BOUND}.png")
    return [png, write_csv(folder / f"{FIG_BOUND}.csv", BOUND_COLUMNS, rows)]


def _probe_rows(probes: Sequence[Mapping[str, Any]]) -> list[tuple]:
    rows = []
    for p in probes:
        for q in p["forward"]:
            rows.append(("forward", q["depth"], q["code_book"], p["N"], p["k"], p["condition"], p["d_model"], p["seed"],
                         q["metric"], q["score"], q["control_mean"], q["control_max"], int(q["beats_control"])))
        for q in p["backward"]:
            rows.append(("backward", None, q["code_book"], p["N"], p["k"], p["condition"], p["d_model"], p["seed"],
                         q["metric"], q["score"], q["control_mean"], q["control_max"], int(q["beats_control"])))
    return rows


def _plot_probe(res: Mapping[str, Any], folder: Path) -> list[Path]:
    probes = res["probes"]
    rows = _probe_rows(probes)
    panels = (("forward", "depth 1"), ("forward", "depth k"), ("backward", None))
    margin = res["recipe"]["probe"]["margin"]
    with figure_style():
        fig, axes = new_figure(len(panels), len(CODE_BOOKS), width=3.0 + 5.0 * len(CODE_BOOKS), height=9.0)
        for i, (kind, which) in enumerate(panels):
            for j, book in enumerate(CODE_BOOKS):
                ax = axes[i][j]
                sel = []
                for p in probes:
                    for q in p[kind]:
                        want = 1 if which == "depth 1" else p["k"]
                        depth_ok = kind == "backward" or q["depth"] == want
                        if q["code_book"] == book and depth_ok:
                            sel.append((p, q))
                if not sel:
                    empty_panel(ax, f"no {kind} probe" + ("" if kind == "forward" else " (no learned readout)"))
                else:
                    x = list(range(len(sel)))
                    ax.bar([v - 0.2 for v in x], [q["score"] for _, q in sel], 0.4, label="probe (held out)")
                    ax.bar([v + 0.2 for v in x], [q["control_mean"] for _, q in sel], 0.4,
                           label="shuffled control (mean)")
                    ax.scatter([v + 0.2 for v in x], [q["control_max"] for _, q in sel], marker="_", color="k", s=50,
                               label="shuffled control (max)", zorder=3)
                    metric = sel[0][1]["metric"]
                    ax.axhline((0.5 if metric == "bit_accuracy" else 0.0) + margin, color="red", lw=1, ls="--",
                               label="a flag needs chance + margin")
                    ax.set_xticks(x, [f"N={p['N']} k={p['k']} {p['condition']} d={p['d_model']} s{p['seed']}"
                                      for p, _ in sel], rotation=90, fontsize=4)
                    ax.set_ylabel(metric.replace("_", " ") + " (held out)")
                    ax.legend(fontsize=5)
                what = (f"forward tree in e_s, {which}" if kind == "forward"
                        else "backward codes in the readout rows u_a")
                ax.set_title(f"{what}; code book '{book}'")
        fig.suptitle(f"Probes ({res['scale']}): {res['n_forward_flagged']} of {len(probes)} models hold the depth-k "
                     f"forward tree, {res['n_backward_flagged']} learned readouts hold backward codes")
        png = save(fig, folder / f"{FIG_PROBE}.png")
    return [png, write_csv(folder / f"{FIG_PROBE}.csv", PROBE_COLUMNS, rows)]


def plot(payload: Mapping[str, Any], folder: Path) -> list[Path]:
    """The capacity–depth figure, the search grid, the bound comparison and the probes, each PNG beside its CSV."""
    folder = Path(folder)
    return [*_plot_capacity(payload, folder), *_plot_grid(payload, folder), *_plot_bound(payload, folder),
            *_plot_probe(payload, folder)]
