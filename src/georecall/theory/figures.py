"""Figures of the closed-form theory: cost against hops, and the selector's width against N (docs/theory.md §4-§6, §8).

matplotlib only, drawn on a bare :class:`~matplotlib.figure.Figure` with the Agg canvas (no pyplot state,
no torch). Each function returns the Figure and writes a PNG when ``path`` is given; file names are the
caller's.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Sequence

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from georecall.results.atomic import write_atomic
from georecall.theory.bound import (
    _as_int,
    construction_cost,
    gamma_global,
    gamma_local,
    required_bits,
)


def _new_figure(width: float, height: float, ncols: int = 1) -> tuple[Figure, list]:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    return fig, list(axes)


def _save(fig: Figure, path: str | os.PathLike | None) -> None:
    if path is not None:  # through a temporary file renamed into place: a reader never sees half a figure
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=120)
        write_atomic(path, buf.getvalue())


def _positive(values: Sequence[float]) -> list[float]:
    """Zeros become NaN so a log axis leaves a gap instead of failing."""
    return [v if v > 0 else math.nan for v in values]


def _check_ints(name: str, values: Sequence[int], minimum: int) -> list[int]:
    out = [_as_int(name, v, minimum) for v in values]
    if not out:
        raise ValueError(f"{name} must be a non-empty sequence, got {values!r}")
    return sorted(set(out))


def plot_cost_vs_hops(N: int, K: int, ks: Sequence[int], path: str | os.PathLike | None = None) -> Figure:
    """Cost of key-value, pre-computation and CoT against the number of hops k, beside the bound (docs/theory.md §4-§6).

    Left panel: dense parameter counts (attention + MLP + embeddings + unembedding + positions, §8) of
    key-value memory (§4.1), pre-computation (§4.2; drawn only for K >= 2) and CoT format A (§5.1).
    Right panel, in bits under the content convention of §6.6, where each construction keeps its facts:
    key-value's weight bits ``P = K N m`` against the bound at its own ``B_e = 0``; pre-computation's
    embedding bits ``N B_e = N K^k m`` against ``N gamma_L``, the embedding bits at which the bound's
    P reaches 0; CoT's embedding bits ``N K m``, and the P a no-CoT model would need at CoT's
    ``B_e = K m`` (CoT has ``P = 0``: it lies outside the bound for k >= 2). Zeros leave gaps on the log axis.
    """
    N = _as_int("N", N, 2)
    K = _as_int("K", K, 1)
    ks = _check_ints("ks", ks, 1)
    costs = {name: [construction_cost(name, N, K, k) for k in ks] for name in ("kv-memory", "cot")}
    if K >= 2:
        costs["precompute"] = [construction_cost("precompute", N, K, k) for k in ks]
    labels = {"kv-memory": "key-value (§4.1)", "precompute": "pre-computation (§4.2)", "cot": "CoT, format A (§5.1)"}
    colors = {"kv-memory": "C0", "precompute": "C1", "cot": "C2"}

    fig, (ax_p, ax_b) = _new_figure(11.0, 4.2, ncols=2)
    for name, rows in costs.items():
        ax_p.plot(ks, [c.total for c in rows], "o-", color=colors[name], label=labels[name])
    ax_p.set_yscale("log")
    ax_p.set_xlabel("hops k")
    ax_p.set_ylabel("dense parameter count (total)")
    ax_p.set_title("Model size (§8 formulas)")
    ax_p.set_xticks(ks)
    ax_p.legend()

    m = costs["kv-memory"][0].m
    # Hollow and larger: at equal m, CoT's N K m embedding bits coincide with key-value's K N m weight bits.
    ax_b.plot(ks, _positive([c.P_bits_content for c in costs["kv-memory"]]), "o-", color="C0", markersize=10,
              markerfacecolor="none", label="key-value: weight bits $P = KNm$")
    ax_b.plot(ks, _positive([required_bits(N, K, k, 0.0).required_bits for k in ks]), "--", color="C0",
              label="bound: P needed at B_e = 0")
    if "precompute" in costs:
        ax_b.plot(ks, [N * c.embedding_bits_content for c in costs["precompute"]], "s-", color="C1",
                  label="pre-computation: embedding bits $N K^k m$")
    gam_l = [gamma_local(N, K, k) for k in ks]
    ax_b.plot(ks, _positive([N * g if g is not None else math.nan for g in gam_l]), "--", color="C1",
              label="bound: N·γ_L (P needed reaches 0)")
    ax_b.plot(ks, [N * c.embedding_bits_content for c in costs["cot"]], "^-", color="C2",
              label="CoT: embedding bits $NKm$ ($P = 0$)")
    ax_b.plot(ks, _positive([required_bits(N, K, k, K * m).required_bits for k in ks]), ":", color="C2",
              label="bound: P needed at CoT's B_e = Km")
    ax_b.set_yscale("log")
    ax_b.set_xlabel("hops k")
    ax_b.set_ylabel("fact-dependent bits (content convention, §6.6)")
    ax_b.set_title("Where the facts sit, against Theorem 4.2")
    ax_b.set_xticks(ks)
    ax_b.legend(fontsize="small")
    fig.suptitle(f"Cost of k hops without and with CoT (N = {N}, K = {K}, m = {m})")
    _save(fig, path)
    return fig


def plot_dmodel_vs_n(K: int, Ns: Sequence[int], path: str | os.PathLike | None = None) -> Figure:
    """The single-hop selector's d_model against N, beside K log2 N bits per subject (docs/theory.md §2.1, §6.4, §6.6).

    Markers: d_model of :func:`construction_cost` for the selector; steps: the exact formula
    ``(K+1) ceil(log2 N) + K`` over every integer N in range; dashed: ``K log2 N`` (the k = 1 threshold
    gamma_L, where the bound's P reaches 0); dotted: gamma_G = ``K log2 N! / N``, where G alone vanishes.
    The selector's own embedding uses ``K ceil(log2 N)`` of its d coordinates for facts.
    """
    K = _as_int("K", K, 1)
    Ns = _check_ints("Ns", Ns, 2)
    d_model = [construction_cost("selector", n, K, 1).d_model for n in Ns]
    lo, hi = Ns[0], Ns[-1]
    # The step curve: evaluate at every power-of-two edge, where ceil(log2 N) jumps, plus the ends.
    grid = sorted({lo, hi} | {2**j for j in range(1, hi.bit_length() + 1) if lo <= 2**j <= hi}
                  | {2**j + 1 for j in range(1, hi.bit_length() + 1) if lo <= 2**j + 1 <= hi})
    exact = [(K + 1) * max(1, (n - 1).bit_length()) + K for n in grid]

    fig, (ax,) = _new_figure(6.4, 4.4)
    ax.step(grid, exact, where="post", color="C0", alpha=0.6, label="(K+1)·⌈log2 N⌉ + K (exact)")
    ax.plot(Ns, d_model, "o", color="C0", label="selector d_model (§2.1)")
    ax.plot(Ns, [K * math.log2(n) for n in Ns], "--", color="C3", label="K·log2 N (γ_L at k = 1)")
    ax.plot(Ns, [gamma_global(n, K, 1) for n in Ns], ":", color="C2", label="γ_G = K·log2 N! / N")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("subjects N")
    ax.set_ylabel("d_model / bits per subject")
    ax.set_title(f"Single-hop selector width against N (K = {K})")
    ax.legend()
    _save(fig, path)
    return fig
