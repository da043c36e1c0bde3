"""Figures of the ``frozen_control`` experiment (schema 2), drawn from its payload alone (torch-free).

Symbols as in the paper: N subjects, K relations, d the residual width, d_mlp the MLP width (the
theory's m is the code length ⌈log₂ N⌉, not a width).

* ``frozen_accuracy_vs_width.png`` / ``.csv``: frozen embeddings + frozen readout, one panel per d:
  accuracy against d_mlp, one line per (N, K) (mean over seeds, bars min–max), each width at the
  largest budget it was tried at; the needed d_mlp* starred.
* ``needed_width_vs_nk.png`` / ``.csv``: (a) d_mlp* against N·K per d, (b) d_mlp* against d per N·K,
  (c) d·d_mlp* against N·K — bars are seed-bootstrap 95 % intervals, hollow markers are unbracketed
  cells (drawn at the last size tried), solid lines the joint fit, dashed lines the associative-memory
  law d·d_mlp = C·N·K (one constant C, fitted) over the tested range.
* ``params_needed_vs_nk.png`` / ``.csv``: (a) attention + MLP + LayerNorm parameters needed against N·K:
  frozen (per d) vs learned embeddings (threshold's ln_frozen at d*), with the associative-memory line
  ∝ N·K and the selector construction's count (theory); (b) the learned d* against K log₂ N with its
  interval and the selector's d = (K+1)⌈log₂ N⌉ + K.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from georecall.plotting.style import LABELS, SEED_BARS, empty_panel, figure_style, new_figure, save, seed_spread
from georecall.plotting.tables import write_csv

FROZEN, LEARNED = "frozen", "learned"
FIGURES = ("frozen_accuracy_vs_width", "needed_width_vs_nk", "params_needed_vs_nk")
ACCURACY_COLUMNS = ("N", "K", "NK", "d_model", "d_mlp", "steps", "n_seeds", "n_success", "mean_accuracy",
                    "min_accuracy", "max_accuracy", "needed")
NEED_COLUMNS = ("condition", "N", "K", "NK", "d_model", "d_mlp", "ci_low", "ci_high", "d_times_d_mlp", "status",
                "converged", "reason", "budget")
PARAM_COLUMNS = ("condition", "N", "K", "NK", "k_log2_n", "d_model", "d_mlp", "status", "converged",
                 "params_non_embedding", "params_total", "d_star_ci_low", "d_star_ci_high", "selector_d",
                 "selector_non_embedding")
#: Schema-1 names of the CSV columns, kept so older importers (tests/fast/test_plotting.py) still load.
CURVE_COLUMNS, POINT_COLUMNS = ACCURACY_COLUMNS, NEED_COLUMNS
MARKERS = ("o", "s", "^", "D", "v", "P", "X")
AM_LABEL = "associative memory: d·d_mlp = C·N·K (C fitted)"


def success_level(payload: Mapping[str, Any]) -> float:
    """The accuracy a seed must reach, from a payload or its ``config``: the recipe's ``success_accuracy``
    (schema 2: ``config.threshold.recipe``), else an older flat ``target_accuracy``; default 0.99."""
    cfg = payload.get("config", payload) if isinstance(payload.get("config"), Mapping) else payload
    recipe = (cfg.get("threshold") or {}).get("recipe") or cfg.get("recipe") or {}
    for value in (recipe.get("success_accuracy"), cfg.get("target_accuracy"), recipe.get("target_accuracy")):
        if value is not None:
            return float(value)
    return 0.99


def _colors(n: int) -> list[Any]:
    import matplotlib

    cmap = matplotlib.colormaps["viridis"]
    return [cmap(i / max(1, n - 1) * 0.9) for i in range(n)]


def widths_at_largest_budget(stages: Sequence[Mapping[str, Any]]) -> dict[int, tuple[int, list[float | None]]]:
    """Per width: (budget, per-seed accuracies) at the largest budget it was tried at."""
    out: dict[int, tuple[int, list[float | None]]] = {}
    for st in stages:
        for w, accs in st.get("accuracy", []):
            out[int(w)] = (int(st["steps"]), list(accs))
    return out


def _accuracy_figure(folder: Path, data: Mapping[str, Any], target: float) -> list[Path]:
    cells = data["frozen"]
    ds = sorted({c["d_model"] for c in cells})
    worlds = sorted({(c["N"], c["K"]) for c in cells}, key=lambda t: (t[0] * t[1], t[1]))
    colors = dict(zip(worlds, _colors(len(worlds)), strict=True))
    rows = []
    with figure_style():
        fig, axes = new_figure(1, max(1, len(ds)), width=4.2 * max(1, len(ds)), height=4.2)
        for ax, d in zip(axes[0], ds or [None], strict=False):
            if d is None:
                empty_panel(ax, "no frozen cell")
                continue
            for n, k in worlds:
                c = next((c for c in cells if (c["N"], c["K"], c["d_model"]) == (n, k, d)), None)
                if c is None:
                    continue
                table = widths_at_largest_budget(c["stages"])
                xs, ys, lo, hi = [], [], [], []
                for w in sorted(table):
                    steps, accs = table[w]
                    s = seed_spread(accs)
                    n_ok = sum(a is not None and a >= target - 1e-9 for a in accs)
                    rows.append((n, k, n * k, d, w, steps, len(accs), n_ok, *(s or (None, None, None)),
                                 w == c["d_mlp"]))
                    if s is not None:
                        xs.append(w)
                        ys.append(s[0])
                        lo.append(s[0] - s[1])
                        hi.append(s[2] - s[0])
                if xs:
                    ax.errorbar(xs, ys, yerr=[lo, hi], marker="o", ms=3, lw=1, color=colors[(n, k)],
                                label=f"N = {n}, K = {k} (N·K = {n * k})")
                    if c["d_mlp"] in table and seed_spread(table[c["d_mlp"]][1]):
                        ax.plot([c["d_mlp"]], [seed_spread(table[c["d_mlp"]][1])[0]], marker="*", ms=12,
                                color=colors[(n, k)], mec="black", ls="none")
            ax.axhline(target, color="gray", ls="--", lw=1, label=f"target {target:g}")
            ax.set_xscale("log", base=2)
            ax.set_ylim(-0.02, 1.02)
            ax.set_xlabel(LABELS["d_mlp"])
            ax.set_ylabel("final accuracy (largest budget tried)")
            ax.set_title(f"frozen W_E, W_pos, W_U; d = {d}; ★ = d_mlp* (majority rule)")
            ax.legend(loc="lower right", title=SEED_BARS, title_fontsize=6)
        png = save(fig, folder / f"{FIGURES[0]}.png")
    csv_path = write_csv(folder / f"{FIGURES[0]}.csv", ACCURACY_COLUMNS, rows)
    return [png, csv_path]


def _am_constant(cells: Sequence[Mapping[str, Any]]) -> float | None:
    """C of d·d_mlp = C·N·K: the geometric mean of d·d_mlp*/(N·K) over bracketed frozen cells."""
    vals = [c["d_model"] * c["d_mlp"] / c["NK"] for c in cells if c["status"] == "bracketed" and c["d_mlp"]]
    return math.exp(sum(math.log(v) for v in vals) / len(vals)) if vals else None


def _bars(value: float, ci: Sequence[float] | None) -> list[list[float]]:
    if ci is None:
        return [[0.0], [0.0]]
    return [[max(0.0, value - ci[0])], [max(0.0, ci[1] - value)]]


def _ci_text(stat: Mapping[str, Any] | None) -> str:
    if not stat or stat.get("value") is None:
        return "n/a"
    ci = stat.get("ci95")
    return f"{stat['value']:.2f}" + ("" if ci is None else f" [{ci[0]:.2f}, {ci[1]:.2f}]")


def _need_figure(folder: Path, data: Mapping[str, Any]) -> list[Path]:
    from matplotlib.lines import Line2D

    cells = data["frozen"]
    fits = data.get("fits", {})
    ds = sorted({c["d_model"] for c in cells})
    nks = sorted({c["NK"] for c in cells})
    dcol = dict(zip(ds, _colors(len(ds)), strict=True))
    ncol = dict(zip(nks, _colors(len(nks)), strict=True))
    am = _am_constant(cells)
    joint = (fits.get("joint") or {}).get("ols")
    rows = [(FROZEN, c["N"], c["K"], c["NK"], c["d_model"], c["d_mlp"], *(c.get("d_mlp_ci95") or (None, None)),
             c.get("d_times_d_mlp"), c["status"], c["converged"], c["reason"], c["budget"]) for c in cells]
    csv_path = write_csv(folder / f"{FIGURES[1]}.csv", NEED_COLUMNS, rows)

    def draw(ax: Any, x: float, y: float | None, ci: Sequence[float] | None, color: Any, c: Mapping[str, Any],
             scale: float = 1.0) -> None:
        if c["status"] == "bracketed" and y is not None:
            sci = None if ci is None else [ci[0] * scale, ci[1] * scale]
            ax.errorbar([x], [y * scale], yerr=_bars(y * scale, sci), marker="o", ms=5, color=color, ls="none",
                        mfc=color if c["converged"] is not False else "white")
        else:  # unbracketed: drawn at the last size tried, hollow red
            tried = [w for st in c["stages"] for w, _ in st.get("tried", [])]
            if tried:
                ax.plot([x], [(max(tried) if c["status"] == "censored_high" else min(tried)) * scale], marker="o",
                        ms=6, mfc="none", color="tab:red", ls="none")

    with figure_style():
        fig, axes = new_figure(1, 3, width=15.0, height=5.0)
        ax0, ax1, ax2 = axes[0]
        for c in cells:
            draw(ax0, c["NK"], c["d_mlp"], c.get("d_mlp_ci95"), dcol[c["d_model"]], c)
            draw(ax1, c["d_model"], c["d_mlp"], c.get("d_mlp_ci95"), ncol[c["NK"]], c)
            draw(ax2, c["NK"], c["d_mlp"], c.get("d_mlp_ci95"), dcol[c["d_model"]], c, scale=c["d_model"])
        if nks and ds:
            span_nk = [nks[0] * (nks[-1] / nks[0]) ** (i / 20) for i in range(21)]
            span_d = [ds[0] * (ds[-1] / ds[0]) ** (i / 20) for i in range(21)]
            for d in ds:
                if am is not None:
                    ax0.plot(span_nk, [am * x / d for x in span_nk], ls="--", lw=1, color=dcol[d])
                if joint:
                    ys = [math.exp(joint["c"]) * x ** joint["alpha"] * d ** joint["beta"] for x in span_nk]
                    ax0.plot(span_nk, ys, lw=1, color=dcol[d])
            for nk in nks:
                if am is not None:
                    ax1.plot(span_d, [am * nk / x for x in span_d], ls="--", lw=1, color=ncol[nk])
                if joint:
                    ys = [math.exp(joint["c"]) * nk ** joint["alpha"] * x ** joint["beta"] for x in span_d]
                    ax1.plot(span_d, ys, lw=1, color=ncol[nk])
            if am is not None:
                ax2.plot(span_nk, [am * x for x in span_nk], ls="--", lw=1, color="k")
            prod = (fits.get("product") or {}).get("ols")
            if prod:
                ax2.plot(span_nk, [math.exp(prod["intercept"]) * x ** prod["slope"] for x in span_nk], lw=1, color="k")
        ja, jb = (fits.get("joint") or {}).get("alpha"), (fits.get("joint") or {}).get("beta")
        common = [Line2D([], [], ls="--", color="gray", label=AM_LABEL + ("" if am is None else f", C = {am:.3g}")),
                  Line2D([], [], ls="none", marker="o", mfc="white", color="gray",
                         label="hollow: not converged in budget"),
                  Line2D([], [], ls="none", marker="o", mfc="none", color="tab:red",
                         label="red: unbracketed (drawn at the last d_mlp tried)")]
        h0 = [Line2D([], [], marker="o", ls="none", color=dcol[d], label=f"d = {d}") for d in ds]
        h0.append(Line2D([], [], color="gray", label=f"joint fit: d_mlp ∝ (N·K)^α d^β, α = {_ci_text(ja)}, "
                                                      f"β = {_ci_text(jb)}"))
        h1 = [Line2D([], [], marker="o", ls="none", color=ncol[nk], label=f"N·K = {nk}") for nk in nks]
        h2 = [Line2D([], [], marker="o", ls="none", color=dcol[d], label=f"d = {d}") for d in ds]
        h2.append(Line2D([], [], color="k", label=f"fit: d·d_mlp ∝ (N·K)^{_ci_text(fits.get('product'))}"))
        for ax, h, xl, yl, title in (
            (ax0, h0, LABELS["nk"], "d_mlp* needed", "MLP width needed against N·K (frozen)"),
            (ax1, h1, LABELS["d_model"], "d_mlp* needed", "MLP width needed against d (frozen)"),
            (ax2, h2, LABELS["nk"], "d·d_mlp* needed", "d·d_mlp* against N·K (frozen, every d)"),
        ):
            ax.set_xscale("log", base=2)
            ax.set_yscale("log", base=2)
            ax.set_xlabel(xl)
            ax.set_ylabel(yl)
            ax.set_title(title)
            ax.legend(handles=h + common, loc="upper left", fontsize=6,
                      title="bars: seed-bootstrap 95 % interval", title_fontsize=6)
        if not cells:
            for ax in (ax0, ax1, ax2):
                empty_panel(ax, "no frozen cell")
        amv = data.get("associative_memory") or {}
        fig.suptitle(textwrap.fill(f"Frozen-embedding control ({data.get('scale')}): associative memory "
                                   f"{amv.get('verdict', '?')} — {amv.get('reason', '')}", 200), fontsize=7)
        png = save(fig, folder / f"{FIGURES[1]}.png")
    return [png, csv_path]


def _params_figure(folder: Path, data: Mapping[str, Any]) -> list[Path]:
    from matplotlib.lines import Line2D

    cells, learned = data["frozen"], data["learned"]
    ds = sorted({c["d_model"] for c in cells})
    dcol = dict(zip(ds, _colors(len(ds)), strict=True))
    rows = [(FROZEN, c["N"], c["K"], c["NK"], None, c["d_model"], c["d_mlp"], c["status"], c["converged"],
             c["params_non_embedding"], c["params_total"], None, None, None, None) for c in cells]
    rows += [(LEARNED, e["N"], e["K"], e["NK"], e["k_log2_n"], e["d_star"], e["d_mlp"], e["status"], e["converged"],
              e["params_non_embedding"], e["params_total"], *(e.get("d_star_ci95") or (None, None)),
              e["selector_d"], e["selector_non_embedding"]) for e in learned]
    csv_path = write_csv(folder / f"{FIGURES[2]}.csv", PARAM_COLUMNS, rows)
    fits = data.get("fits", {})
    pe = fits.get("param_exponent", {})
    with figure_style():
        fig, axes = new_figure(1, 2, width=12.0, height=5.0)
        ax0, ax1 = axes[0]
        handles = []
        for d in ds:
            sel = sorted((c for c in cells if c["d_model"] == d and c["params_non_embedding"] is not None),
                         key=lambda c: c["NK"])
            if sel:
                ax0.plot([c["NK"] for c in sel], [c["params_non_embedding"] for c in sel], marker="o", color=dcol[d],
                         lw=1)
            handles.append(Line2D([], [], marker="o", color=dcol[d], label=f"frozen embeddings, d = {d}"))
        sel = sorted((e for e in learned if e["params_non_embedding"] is not None), key=lambda e: e["NK"])
        if sel:
            ax0.plot([e["NK"] for e in sel], [e["params_non_embedding"] for e in sel], marker="s", color="tab:orange",
                     lw=1.5)
        handles.append(Line2D([], [], marker="s", color="tab:orange", lw=1.5,
                              label="learned embeddings (threshold ln_frozen, d*, d_mlp = 4d)"))
        nks = sorted({c["NK"] for c in cells} | {e["NK"] for e in learned})
        fz = [c for c in cells if c["params_non_embedding"] is not None and c["status"] == "bracketed"]
        if nks and fz:  # the associative-memory line ∝ N·K through the frozen points' geometric mean
            cst = math.exp(sum(math.log(c["params_non_embedding"] / c["NK"]) for c in fz) / len(fz))
            span = [nks[0] * (nks[-1] / nks[0]) ** (i / 20) for i in range(21)]
            ax0.plot(span, [cst * x for x in span], ls="--", color="gray", lw=1)
            handles.append(Line2D([], [], ls="--", color="gray", label="associative memory: ∝ N·K (constant fitted)"))
        theory = sorted(learned, key=lambda e: e["NK"])
        if theory:
            ax0.plot([e["NK"] for e in theory], [e["selector_non_embedding"] for e in theory], "k+", ms=8, ls=":")
            handles.append(Line2D([], [], marker="+", ls=":", color="k",
                                  label="selector construction (theory): attention + MLP at d = (K+1)⌈log₂ N⌉+K"))
        handles.append(Line2D([], [], ls="none", label=f"exponents on N·K: frozen (cheapest d) "
                                                       f"{_ci_text(pe.get(FROZEN))}, "
                                                       f"learned {_ci_text(pe.get(LEARNED))}"))
        if nks:
            ax0.set_xscale("log", base=2)
            ax0.set_yscale("log")
        else:
            empty_panel(ax0, "no cell")
        ax0.set_xlabel(LABELS["nk"])
        ax0.set_ylabel("attention + MLP + LayerNorm parameters needed")
        ax0.set_title("Non-embedding parameters needed: frozen vs learned embeddings (frozen readout)")
        ax0.legend(handles=handles, loc="upper left", fontsize=6)
        # (b) learned d* against K log2 N.
        ks = sorted({e["K"] for e in learned})
        for e in learned:
            m = MARKERS[ks.index(e["K"]) % len(MARKERS)]
            if e["d_star"] is not None and e["status"] == "bracketed":
                fill = "tab:orange" if e["converged"] is not False else "white"
                ax1.errorbar([e["k_log2_n"]], [e["d_star"]], yerr=_bars(e["d_star"], e.get("d_star_ci95")), marker=m,
                             color="tab:orange", ls="none", mfc=fill)
            ax1.plot([e["k_log2_n"]], [e["selector_d"]], marker="+", color="k", ms=8, ls="none")
        h1 = [Line2D([], [], marker=MARKERS[i % len(MARKERS)], color="tab:orange", ls="none", label=f"d*, K = {k}")
              for i, k in enumerate(ks)]
        h1.append(Line2D([], [], marker="+", color="k", ls="none", label="selector (theory): d = (K+1)⌈log₂ N⌉+K"))
        h1.append(Line2D([], [], ls="none", label=f"slope of d* on K log₂ N: {_ci_text(fits.get('learned_slope'))}"))
        ax1.set_xlabel(LABELS["k_log2_n"])
        ax1.set_ylabel(LABELS["d_model"] + " needed (d*)")
        ax1.set_title("Learned embeddings: d* against K log₂ N (bars: seed-bootstrap 95 %)")
        ax1.legend(handles=h1, loc="upper left", fontsize=6)
        if not learned:
            empty_panel(ax1, "no learned cell")
        png = save(fig, folder / f"{FIGURES[2]}.png")
    return [png, csv_path]


def plot(payload: Mapping[str, Any], folder: Path) -> list[Path]:
    """The three figures of :data:`FIGURES` and their CSVs, from a schema-2 payload."""
    folder = Path(folder)
    target = success_level(payload)
    return [*_accuracy_figure(folder, payload, target), *_need_figure(folder, payload),
            *_params_figure(folder, payload)]
