"""The figure of the ``capacity`` experiment, drawn from its payload alone (torch-free).

``bits_per_param.png`` / ``.csv``: bits stored per parameter (K log₂ N! over all parameters, and over the
token embedding W_E) of the smallest successful model (at d*) against N·K, the selector construction's
(theory) beside it, and the information content against model size. The ≈2 bits per parameter reported
for language models by Allen-Zhu & Li (2024) is drawn as an *external* reference: it is that paper's
number, neither this paper's nor ours.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from georecall.plotting.style import (
    LABELS,
    empty_panel,
    external_label,
    figure_style,
    integer_ticks,
    new_figure,
    save,
)
from georecall.plotting.tables import write_csv
from georecall.plotting.threshold import budget_text, condition_label, condition_style

FIGURE = "bits_per_param"
#: The external reference (not this paper's, not measured here): bits of knowledge per parameter of LMs.
LM_BITS_PER_PARAM = 2.0
LM_BITS_PER_PARAM_SOURCE = "Allen-Zhu & Li 2024, Physics of Language Models 3.3"
REFERENCE_LABEL = external_label(f"≈{LM_BITS_PER_PARAM:g} bits/param reported for LMs", LM_BITS_PER_PARAM_SOURCE)
COLUMNS = ("condition", "n_subjects", "n_relations", "n_facts", "information_bits", "d_star", "status",
           "params_total", "params_trainable", "params_embedding", "bits_per_param_total",
           "bits_per_param_trainable", "bits_per_param_embedding", "selector_d", "selector_params_total",
           "selector_bits_per_param", "params_over_bound_1bit", "params_over_bound_32bit")


def plot(payload: Mapping[str, Any], folder: Path) -> list[Path]:
    """Bits per parameter against N·K (all parameters; W_E only) and information against parameters."""
    folder = Path(folder)
    data = payload
    entries = data["entries"]
    csv_path = write_csv(folder / f"{FIGURE}.csv", COLUMNS, ([e[c] for c in COLUMNS] for e in entries))
    ref = LM_BITS_PER_PARAM
    conds = list(data["conditions"]) or sorted({e["condition"] for e in entries})
    # One selector point per (N, K): the construction does not depend on the condition.
    sel = sorted({(e["n_subjects"], e["n_relations"]): e for e in entries}.values(), key=lambda e: e["n_facts"])
    with figure_style():
        fig, axes = new_figure(1, 3, width=15.0, height=5.4)
        ax_all, ax_emb, ax_info = axes[0]
        for cond in conds:
            color, marker = condition_style(cond)
            es = [e for e in entries if e["condition"] == cond and e["d_star"] is not None]
            label = f"at d*: {condition_label(data, cond)}"
            ax_all.plot([e["n_facts"] for e in es], [e["bits_per_param_total"] for e in es], marker, color=color,
                        ls="none", label=label)
            ax_emb.plot([e["n_facts"] for e in es], [e["bits_per_param_embedding"] for e in es], marker,
                        color=color, ls="none", label=label)
            ax_info.plot([e["params_total"] for e in es], [e["information_bits"] for e in es], marker, color=color,
                         ls="none", label=label)
        ax_all.plot([e["n_facts"] for e in sel], [e["selector_bits_per_param"] for e in sel], "k+", ms=8,
                    label="selector construction (theory; at its own d)")
        ax_info.plot([e["selector_params_total"] for e in sel], [e["information_bits"] for e in sel], "k+", ms=8,
                     label="selector construction (theory; at its own d)")
        any_point = any(e["d_star"] is not None for e in entries)
        facts = [e["n_facts"] for e in entries]
        ax_all.axhline(1.0, color="purple", ls=":", lw=1,
                       label="bound (Theorem 4.2, k = 1): at most b bits per parameter at b-bit precision; b = 1 drawn")
        for ax in (ax_all, ax_emb):
            ax.axhline(ref, color="grey", ls="--", lw=1, label=REFERENCE_LABEL)
            if facts:  # the same N·K range on both panels, even where one has no point
                ax.set_xscale("log", base=2)
                ax.set_yscale("log")
                ax.set_xlim(min(facts) / 1.5, max(facts) * 1.5)
                integer_ticks(ax, "x", facts)
            ax.set_xlabel(LABELS["nk"])
        if not any_point:
            for ax in (ax_emb, ax_info):
                empty_panel(ax, "no successful model (no d* at any N, K)")
        ax_all.set_ylabel("K log₂ N! / parameters (bits per parameter)")
        ax_all.set_title("Bits per parameter at d* (all parameters, a frozen readout counted)")
        ax_emb.set_ylabel("K log₂ N! / token-embedding parameters (W_E)")
        ax_emb.set_title("Bits per embedding parameter at d*")
        params = [v for e in entries for v in (e["params_total"], e["selector_params_total"]) if v]
        if params:
            lo, hi = min(params), max(params)
            ax_info.plot([lo, hi], [ref * lo, ref * hi], color="grey", ls="--", lw=1,
                         label="external reference, not this paper: the same LM rate as information = "
                               f"{ref:g} bits × parameters")
        if params:
            ax_info.plot([lo, hi], [lo, hi], color="purple", ls=":", lw=1,
                         label="bound at 1 bit per parameter: information = parameters")
            ax_info.set_xscale("log")
            ax_info.set_yscale("log")
        ax_info.set_xlabel("parameters of the model")
        ax_info.set_ylabel("information content K log₂ N! (bits)")
        ax_info.set_title("Information content against model size")
        handles, labels = ax_all.get_legend_handles_labels()
        seen = set(labels)
        for h, lab in zip(*ax_info.get_legend_handles_labels(), strict=True):
            if lab not in seen and not lab.startswith("at d*"):
                handles.append(h)
                labels.append(lab)
                seen.add(lab)
        fig.legend(handles, labels, loc="outside lower center", ncol=2)
        fig.suptitle(f"Capacity ({data['scale']}; {budget_text(data)}): {data.get('success_rule', '')}", fontsize=7)
        png = save(fig, folder / f"{FIGURE}.png")
    return [png, csv_path]
