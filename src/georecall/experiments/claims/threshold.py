"""C7, decided by the threshold experiment: d* grows like K log N.

The thresholds below are stated once here, before any run; a verdict is never tuned to an outcome.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from georecall.experiments.claims import Claim, Decision, Payloads

#: C7: the fraction of (N, K) cells whose d* must be bracketed for the scope to count as covered.
C7_MIN_BRACKETED = 0.75
#: C7: the log law must beat the power law in at least this share of seed-bootstrap replicates.
C7_MIN_LOG_WINS = 0.8
#: C7: the conditions decided: the primary (learned readout) and the fixed-readout class of the bound.
C7_CONDITIONS = ("ln_learned", "ln_frozen")


def _law_verdict(law: Mapping[str, Any]) -> tuple[str, dict[str, Any], str]:
    """C7's test on one condition's ``laws`` entry: (verdict, numbers, reason)."""
    n_cells, n_br = law.get("n_cells", 0), law.get("n_bracketed", 0)
    log_ci = law.get("log_slope_ci95")
    beta_ci = law.get("beta_ci95")
    wins = law.get("log_wins_fraction")
    nums = {"n_cells": n_cells, "n_bracketed": n_br, "log_slope": law.get("log_slope"), "log_slope_ci95": log_ci,
            "beta": law.get("beta"), "beta_ci95": beta_ci, "sse_log": law.get("sse_log"),
            "sse_power": law.get("sse_power"), "log_wins_fraction": wins}
    if log_ci is None or beta_ci is None or wins is None:
        return "not reproduced", nums, f"too few bracketed cells to fit the laws ({n_br} of {n_cells})"
    grows = log_ci[0] > 0
    sublinear = beta_ci[1] < 1
    if not (grows and sublinear):
        why = "d* does not grow with K log2 N (slope interval reaches 0)" if not grows else \
            "d* is not sub-linear in N (the exponent's interval reaches 1)"
        return "not reproduced", nums, why
    covered = n_cells > 0 and n_br / n_cells >= C7_MIN_BRACKETED
    log_better = wins >= C7_MIN_LOG_WINS
    if covered and log_better:
        return "reproduced", nums, (f"d* grows with K log2 N, sub-linearly in N, and the log law beats the power law "
                                    f"in {wins:.0%} of replicates")
    missing = []
    if not log_better:
        missing.append(f"the log law beats the power law N^β in only {wins:.0%} of replicates "
                       f"(< {C7_MIN_LOG_WINS:.0%})")
    if not covered:
        missing.append(f"only {n_br} of {n_cells} cells bracketed (< {C7_MIN_BRACKETED:.0%})")
    return "partly", nums, "d* grows sub-linearly, but " + " and ".join(missing)


def decide_c7(payloads: Payloads) -> Decision:
    """C7 on the threshold payload: both conditions must pass for ``reproduced``."""
    laws = payloads["threshold"].get("laws", {})
    per: dict[str, Any] = {}
    verdicts = []
    reasons = []
    for cond in C7_CONDITIONS:
        if cond not in laws:
            per[cond] = {"verdict": "not tested"}
            reasons.append(f"{cond}: not trained")
            continue
        v, nums, why = _law_verdict(laws[cond])
        per[cond] = {"verdict": v, **nums}
        verdicts.append(v)
        reasons.append(f"{cond}: {why}")
    if not verdicts:
        return Decision("not tested", per, "no condition of the criterion was trained")
    if all(v == "reproduced" for v in verdicts) and len(verdicts) == len(C7_CONDITIONS):
        verdict = "reproduced"
    elif all(v == "not reproduced" for v in verdicts):
        verdict = "not reproduced"
    else:
        verdict = "partly"
    return Decision(verdict, per, "; ".join(reasons))


CLAIMS: tuple[Claim, ...] = (
    Claim(
        id="C7", statement="The trained threshold d* (the smallest d at which a one-layer transformer with learned "
                           "embeddings stores all N·K facts) grows like K log N.",
        paper_ref="§5 (capacity threshold); Theorem 4.1",
        criterion=(f"Per condition ({', '.join(C7_CONDITIONS)}), over the bracketed (N, K) cells, with a seed "
                   "bootstrap: the slope of d* against K log2 N has a 95 % interval above 0 (grows); the exponent β "
                   "of the rival power law d* = c_K N^β has a 95 % interval below 1 (sub-linear); and the log law "
                   "d* = a_K + b·K log2 N (an intercept per K, one slope) fits with a smaller squared error than the "
                   f"power law (the same number of parameters) in ≥ {C7_MIN_LOG_WINS:.0%} of replicates, with "
                   f"≥ {C7_MIN_BRACKETED:.0%} of cells "
                   "bracketed. Reproduced: all of it in both conditions; partly: growth and sub-linearity hold but "
                   "the log law does not win, or the scope is short, or one condition fails; not reproduced: no "
                   "growth or no sub-linearity in either."),
        experiments=("threshold",), decide=decide_c7,
        figures=("threshold/d_star_vs_k_log2_n.png", "threshold/accuracy_vs_d.png")),
)
