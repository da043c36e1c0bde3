"""Figures of the ``constructions`` experiment, drawn from its saved payload alone (torch-free).

Three figures, each a PNG with the CSV of its numbers beside it:

* ``d_vs_klogn``: d against K log₂ N for every single-hop construction and size, the theory's formula as a line;
* ``size_vs_hops``: d and parameters against k for the depth-k constructions (key-value, pre-computation)
  and the one-layer CoT constructions;
* ``bits_vs_bound``: each construction's content bits P against the bits Theorem 4.2 requires at its B_e,
  and the bound's curve in B_e with the constructions placed on it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from georecall.plotting.style import LABELS, SYMBOLS, figure_style, new_figure, save
from georecall.plotting.tables import write_csv

FIGURES = ("d_vs_klogn", "size_vs_hops", "bits_vs_bound")

#: Marker and colour per construction (stable across figures).
STYLES: dict[str, tuple[str, str]] = {
    "selector": ("o", "C0"), "selector-mlp3": ("s", "C1"), "attention-only": ("^", "C2"),
    "readout-only": ("v", "C3"), "disjoint": ("D", "C4"), "disjoint-mlp": ("P", "C5"),
    "kv-memory": ("o", "C6"), "precompute": ("s", "C7"), "cot": ("^", "C8"), "cot-question-first": ("v", "C9"),
    "meet-in-middle": ("X", "C3"), "meet-in-middle-tied": ("*", "C4"),
}
SINGLE_HOP = ("selector", "selector-mlp3", "attention-only", "readout-only", "disjoint", "disjoint-mlp")
MULTI_HOP = ("kv-memory", "precompute", "cot", "cot-question-first")
N_, K_, D_, k_, M_ = (SYMBOLS[s] for s in ("n_subjects", "n_relations", "d_model", "n_hops", "d_mlp"))


def _style(name: str) -> tuple[str, str]:
    return STYLES.get(name, ("o", "k"))


def plot(payload: Mapping[str, Any], folder: str | os.PathLike[str]) -> list[Path]:
    """Draw the three figures of a ``constructions`` payload into ``folder``; returns PNG and CSV paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out: list[Path] = []
    with figure_style():
        out += _plot_d_vs_klogn(payload, folder)
        out += _plot_size_vs_hops(payload, folder)
        out += _plot_bits_vs_bound(payload, folder)
    return out


def _plot_d_vs_klogn(payload: Mapping[str, Any], folder: Path) -> list[Path]:
    rows = [r for r in payload["constructions"] if r["name"] in SINGLE_HOP]
    names = [n for n in SINGLE_HOP if any(r["name"] == n for r in rows)]
    csv_path = write_csv(folder / "d_vs_klogn.csv",
                          ["construction", "N", "K", "m_code_bits", "K_log2_N", "d", "d_formula", "mlp_widths",
                           "accuracy", "d_over_K_log2_N"],
                          ([r["name"], r["n_subjects"], r["n_relations"], r["m"], r["k_log2_n"], r["d_model"],
                            r["d_model_formula"], " ".join(str(w) for w in r["mlp_widths"]), r["accuracy"],
                            r["d_over_k_log2_n"]] for r in rows))
    ncols = 3
    nrows = max(1, -(-len(names) // ncols))
    fig, axes = new_figure(nrows, ncols, width=10.0, height=3.2 * nrows)
    curves = payload.get("formula_curves", [])
    ks = sorted({r["n_relations"] for r in rows})
    colors = {k: f"C{i}" for i, k in enumerate(ks)}
    for i, ax in enumerate(axes.flat):
        if i >= len(names):
            ax.set_visible(False)
            continue
        name = names[i]
        for k_rel in ks:
            sel = sorted((r for r in rows if r["name"] == name and r["n_relations"] == k_rel),
                         key=lambda r: r["n_subjects"])
            if not sel:
                continue
            ok = all(r["accuracy"] == 1.0 for r in sel)
            ax.plot([r["k_log2_n"] for r in sel], [r["d_model"] for r in sel], _style(name)[0], color=colors[k_rel],
                    mfc=colors[k_rel] if ok else "none", label=f"{K_} = {k_rel} (built{'' if ok else ', not exact'})")
            for c in curves:
                if c["name"] == name and c["n_relations"] == k_rel:
                    ax.plot(c["k_log2_n"], c["d_model_formula"], "-", color=colors[k_rel], lw=0.8, alpha=0.7,
                            label=f"the theory's formula, {K_} = {k_rel}")
        ax.set_title(name)
        ax.set_xlabel(LABELS["k_log2_n"])
        ax.set_ylabel(LABELS["d_model"])
        ax.legend(fontsize=6)
    fig.suptitle(f"{D_} against {SYMBOLS['k_log2_n']}: single-hop constructions at every size "
                 f"(markers: built and scored on every query; lines: the theory's {D_})")
    png = save(fig, folder / "d_vs_klogn.png")
    return [png, csv_path]


def _plot_size_vs_hops(payload: Mapping[str, Any], folder: Path) -> list[Path]:
    rows = sorted((r for r in payload["constructions"] if r["name"] in MULTI_HOP),
                  key=lambda r: (r["name"], r["n_subjects"], r["n_relations"], r["n_hops"]))
    csv_path = write_csv(folder / "size_vs_hops.csv",
                          ["construction", "N", "K", "k", "d", "mlp_widths", "m_total", "params_total",
                           "params_positional", "params_non_positional", "accuracy", "n_queries", "n_query_space"],
                          ([r["name"], r["n_subjects"], r["n_relations"], r["n_hops"], r["d_model"],
                            " ".join(str(w) for w in r["mlp_widths"]), sum(r["mlp_widths"]), r["params_total"],
                            r["params"]["positional"],
                            r["params_non_positional"], r["accuracy"], r["n_queries"], r["n_query_space"]]
                           for r in rows))
    fig, axes = new_figure(1, 3, width=13.0, height=4.2)
    ax_d, ax_m, ax_p = axes[0]
    groups = sorted({(r["name"], r["n_subjects"], r["n_relations"]) for r in rows},
                    key=lambda g: (MULTI_HOP.index(g[0]), g[1], g[2]))
    for j, (name, n, k_rel) in enumerate(groups):
        sel = [r for r in rows if (r["name"], r["n_subjects"], r["n_relations"]) == (name, n, k_rel)]
        marker, _ = _style(name)
        color = f"C{j % 10}"
        ls = "--" if name in ("cot", "cot-question-first") else "-"
        label = f"{name}, {N_} = {n}, {K_} = {k_rel}"
        hops = [r["n_hops"] for r in sel]
        ax_d.plot(hops, [r["d_model"] for r in sel], marker, ls=ls, color=color, label=label)
        ax_m.plot(hops, [sum(r["mlp_widths"]) for r in sel], marker, ls=ls, color=color)
        ax_p.plot(hops, [r["params_non_positional"] for r in sel], marker, ls=ls, color=color, label=label)
    for ax in (ax_d, ax_m, ax_p):
        ax.set_yscale("log")
        ax.set_xlabel(LABELS["n_hops"])
    ax_d.set_ylabel(LABELS["d_model"])
    ax_p.set_ylabel("parameters (positional table excluded)")
    ax_m.set_ylabel(f"{M_}: MLP width, summed over layers")
    ax_d.set_title(f"{D_} against {k_}")
    ax_m.set_title(f"{M_} against {k_}")
    ax_p.set_title(f"parameters against {k_}")
    fig.suptitle(f"Depth-{k_} constructions (key-value, pre-computation: solid) against one-layer CoT (dashed)")
    fig.legend(*ax_d.get_legend_handles_labels(), loc="outside right upper", fontsize=6)
    png = save(fig, folder / "size_vs_hops.png")
    return [png, csv_path]


def _plot_bits_vs_bound(payload: Mapping[str, Any], folder: Path) -> list[Path]:
    rows = payload["constructions"]
    csv_path = write_csv(folder / "bits_vs_bound.csv",
                          ["construction", "N", "K", "k", "readout", "in_class", "B_e_bits", "P_have_bits",
                           "P_required_bits", "holds", "verdict", "regime", "gamma_G", "gamma_L"],
                          ([r["name"], r["n_subjects"], r["n_relations"], r["n_hops"], r["readout"], r["in_class"],
                            r["content_embedding_bits"], r["content_P_bits"], r["bound_required_bits"],
                            r["bound_holds"], r["bound_verdict"], r["regime"], r["gamma_global"], r["gamma_local"]]
                           for r in rows))
    fig, axes = new_figure(1, 2, width=10.5, height=5.0)
    ax_s, ax_c = axes[0]
    names = [n for n in STYLES if any(r["name"] == n for r in rows)]
    for name in names:
        sel = [r for r in rows if r["name"] == name]
        marker, color = _style(name)
        inside = [r for r in sel if r["in_class"]]
        outside = [r for r in sel if not r["in_class"]]
        if inside:
            ax_s.plot([r["bound_required_bits"] for r in inside], [r["content_P_bits"] for r in inside], marker,
                      color=color, ls="none", label=f"{name} ({inside[0]['readout']} readout)")
        if outside:
            ax_s.plot([r["bound_required_bits"] for r in outside], [r["content_P_bits"] for r in outside], marker,
                      color=color, mfc="none", ls="none", label=f"{name} (CoT: outside the bound)")
    top = max([1.0] + [r["bound_required_bits"] for r in rows] + [r["content_P_bits"] for r in rows]) * 2
    ax_s.plot([0, top], [0, top], "k-", lw=0.8, label="P = required (below: would violate the bound)")
    ax_s.set_xscale("symlog", linthresh=1.0)
    ax_s.set_yscale("symlog", linthresh=1.0)
    ax_s.set_xlim(-0.5, top)
    ax_s.set_ylim(-0.5, top)
    ax_s.set_xlabel("bits Theorem 4.2 requires at the construction's B_e")
    ax_s.set_ylabel("content bits P of the construction (fact-dependent, non-embedding)")
    ax_s.set_title("constructions against the bound (every size)")
    fig.legend(*ax_s.get_legend_handles_labels(), loc="outside lower center", ncol=4, fontsize=6)

    curves = payload.get("bound_curves", [])
    multi = [c for c in curves if any(r["name"] in ("kv-memory", "precompute") and (r["n_subjects"], r["n_relations"],
                                                                                 r["n_hops"])
                                      == (c["n_subjects"], c["n_relations"], c["n_hops"]) for r in rows)]
    pick = max(multi or curves, key=lambda c: (c["n_hops"], c["n_subjects"], c["n_relations"]), default=None)
    if pick is not None:
        key = (pick["n_subjects"], pick["n_relations"], pick["n_hops"])
        ax_c.plot(pick["embedding_bits"], pick["required_bits"], "k-", lw=1.2, label="required P (fixed readout)")
        here = [r for r in rows if (r["n_subjects"], r["n_relations"], r["n_hops"]) == key]
        for r in here:
            marker, color = _style(r["name"])
            ax_c.plot([r["content_embedding_bits"]], [r["content_P_bits"]], marker, color=color,
                      mfc=color if r["in_class"] else "none", ls="none",
                      label=f"{r['name']} ({r['readout']}{'' if r['in_class'] else ', outside'})")
        if here:
            ax_c.axvline(here[0]["gamma_global"], color="grey", ls=":", lw=0.8, label="γ_G")
            if here[0]["gamma_local"] is not None:
                ax_c.axvline(here[0]["gamma_local"], color="grey", ls="--", lw=0.8, label="γ_L")
        ax_c.set_yscale("symlog", linthresh=1.0)
        ax_c.set_ylim(bottom=-0.5)
        ax_c.set_title(f"Theorem 4.2 at {N_} = {key[0]}, {K_} = {key[1]}, {k_} = {key[2]}")
    ax_c.set_xlabel("B_e: bits per subject embedding")
    ax_c.set_ylabel("bits P")
    ax_c.legend(fontsize=6)
    png = save(fig, folder / "bits_vs_bound.png")
    return [png, csv_path]
