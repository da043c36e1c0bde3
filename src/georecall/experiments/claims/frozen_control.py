"""C11, decided by the frozen_control experiment (schema 2): frozen embeddings make the MLP an associative memory.

The thresholds below are stated once here, before any run; a verdict is never tuned to an outcome.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from georecall.experiments.claims import Claim, Decision, Payloads

#: C11: the N·K exponent α of the needed MLP width (joint fit over d) must have its whole 95 % interval above this.
C11_MIN_EXPONENT = 0.5
#: C11: at the largest N·K, the cheapest frozen model must need at least this many times the learned model's
#: non-embedding (attention + MLP + LayerNorm) parameters.
C11_MIN_RATIO = 2.0
#: C11: the share of frozen (N, K, d) cells that must be bracketed and converged for the scope to count as covered.
C11_MIN_COVERED = 0.75


def _largest_ratio(comparison: list[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    have = [c for c in comparison if c.get("ratio_non_embedding") is not None]
    return max(have, key=lambda c: (c["NK"], c["K"]), default=None)


def decide_c11(payloads: Payloads) -> Decision:
    """C11 on the frozen_control payload: growth exponent, associative-memory law, parameter ratio, scope."""
    p = payloads["frozen_control"]
    fits = p.get("fits", {})
    alpha = (fits.get("joint") or {}).get("alpha") or {}
    beta = (fits.get("joint") or {}).get("beta") or {}
    am = p.get("associative_memory") or {}
    scope = p.get("scope") or {}
    largest = _largest_ratio(list(p.get("comparison", [])))
    n_cells = scope.get("n_frozen_cells", 0)
    n_conv = scope.get("n_frozen_converged", 0)
    covered = n_cells > 0 and n_conv / n_cells >= C11_MIN_COVERED
    a_ci = alpha.get("ci95")
    nums = {"alpha": alpha.get("value"), "alpha_ci95": a_ci, "beta": beta.get("value"), "beta_ci95": beta.get("ci95"),
            "product_exponent": (fits.get("product") or {}).get("value"),
            "product_exponent_ci95": (fits.get("product") or {}).get("ci95"),
            "associative_memory": am.get("verdict"),
            "ratio_at_largest_nk": None if largest is None else largest["ratio_non_embedding"],
            "ratio_ci95": None if largest is None else largest.get("ratio_ci95"),
            "largest_nk": None if largest is None else largest["NK"],
            "learned_param_exponent": ((fits.get("param_exponent") or {}).get("learned") or {}).get("value"),
            "frozen_param_exponent": ((fits.get("param_exponent") or {}).get("frozen") or {}).get("value"),
            "n_frozen_cells": n_cells, "n_frozen_bracketed": scope.get("n_frozen_bracketed", 0),
            "n_frozen_converged": n_conv}
    if a_ci is None:
        return Decision("not reproduced", nums, f"too few bracketed frozen cells to fit the exponents "
                                                f"({scope.get('n_frozen_bracketed', 0)} of {n_cells})")
    if a_ci[0] <= 0:
        return Decision("not reproduced", nums, f"the needed MLP width does not grow with N·K (α's interval "
                                                f"[{a_ci[0]:.2f}, {a_ci[1]:.2f}] reaches 0)")
    ratio = None if largest is None else largest["ratio_non_embedding"]
    if ratio is not None and ratio <= 1:
        return Decision("not reproduced", nums, f"frozen embeddings need no more non-embedding parameters than "
                                                f"learned ones at N·K = {largest['NK']} (ratio {ratio:.2f})")
    exp_ok = a_ci[0] > C11_MIN_EXPONENT
    ratio_ok = ratio is not None and ratio >= C11_MIN_RATIO
    am_ok = am.get("verdict") == "holds"
    if exp_ok and ratio_ok and am_ok and covered:
        return Decision("reproduced", nums, f"d_mlp* ∝ (N·K)^{alpha['value']:.2f} (interval above "
                                            f"{C11_MIN_EXPONENT}), d·d_mlp ∝ N·K holds ({am.get('reason', '')}), "
                                            f"and frozen needs {ratio:.1f}x the learned parameters at N·K = "
                                            f"{largest['NK']}")
    why = []
    if not exp_ok:
        why.append(f"α's interval starts at {a_ci[0]:.2f} (≤ {C11_MIN_EXPONENT})")
    if not am_ok:
        why.append(f"the associative-memory law d·d_mlp ∝ N·K {am.get('verdict', 'untested')}: "
                   f"{am.get('reason', '')}")
    if not ratio_ok:
        why.append(f"frozen needs {ratio:.2f}x (< {C11_MIN_RATIO:g}x) the learned parameters at N·K = "
                   f"{largest['NK']}" if ratio is not None else "no N·K has both conditions bracketed")
    if not covered:
        why.append(f"only {n_conv} of {n_cells} frozen cells bracketed and converged (< {C11_MIN_COVERED:.0%})")
    return Decision("partly", nums, "the MLP width grows with N·K, but " + "; ".join(why))


CLAIMS: tuple[Claim, ...] = (
    Claim(
        id="C11", statement="With frozen random embeddings and readout, the MLP must hold the facts as an associative "
                            "memory — the width it needs grows like N·K/d (d·d_mlp ∝ N·K) — far more parameters "
                            "than learned embeddings with the same frozen readout need.",
        paper_ref="§1, §2 (the associative-memory baseline); §5 (frozen-embedding control)",
        criterion=(f"Frozen embeddings + frozen readout against learned embeddings + frozen readout (threshold's "
                   f"ln_frozen), one recipe. Joint fit log d_mlp* = c + α log(N·K) + β log d over the bracketed "
                   f"frozen cells, seed-bootstrap 95 % intervals. Reproduced: α's interval lies above "
                   f"{C11_MIN_EXPONENT}; the associative-memory law holds (α's interval contains 1 and lies above "
                   f"0.5, β's contains −1 and lies below −0.5); at the largest N·K with both bracketed, the cheapest "
                   f"frozen model needs ≥ {C11_MIN_RATIO:g}x the learned model's attention + MLP + LayerNorm "
                   f"parameters; and ≥ {C11_MIN_COVERED:.0%} of frozen cells are bracketed and converged. Not "
                   f"reproduced: too few bracketed cells, α's interval reaches 0, or the ratio is ≤ 1. Partly: "
                   f"otherwise."),
        experiments=("frozen_control",), decide=decide_c11,
        figures=("frozen_control/needed_width_vs_nk.png", "frozen_control/params_needed_vs_nk.png",
                 "frozen_control/frozen_accuracy_vs_width.png")),
)
