"""Claims decided by the trained capacity experiments: C7 (threshold), C11 (frozen_control), C12 (multihop).

Each criterion reads only the saved payload and compares numbers the experiment computed with seed
intervals; the thresholds below are stated once here, before any run, and a verdict is never tuned to
an outcome.
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
#: C11: the needed MLP width must grow with N·K at an exponent whose whole 95 % interval exceeds this.
C11_MIN_EXPONENT = 0.5
#: C11: frozen embeddings must need at least this many times the learned model's non-embedding parameters.
C11_MIN_RATIO = 2.0
#: C12: the smallest CoT model may grow by at most this factor over the tested k (about one grid step).
C12_MAX_COT_GROWTH = 2.0


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


def decide_c11(payloads: Payloads) -> Decision:
    """C11 on the frozen_control payload: width exponent interval and the frozen/learned parameter ratio."""
    p = payloads["frozen_control"]
    exp = p.get("width_exponent", {})
    ci = exp.get("ci95")
    ratios = [c["ratio_non_embedding"] for c in p.get("comparison", []) if c.get("ratio_non_embedding") is not None]
    largest = max((c for c in p.get("comparison", []) if c.get("ratio_non_embedding") is not None),
                  key=lambda c: c["NK"], default=None)
    nums = {"width_exponent": exp.get("slope"), "width_exponent_ci95": ci, "n_bracketed": exp.get("n_points"),
            "width_slope_units_per_fact": p.get("width_slope", {}).get("slope"),
            "width_slope_ci95": p.get("width_slope", {}).get("ci95"),
            "ratio_at_largest_nk": None if largest is None else largest["ratio_non_embedding"],
            "largest_nk": None if largest is None else largest["NK"], "min_ratio": min(ratios, default=None)}
    if ci is None:
        return Decision("not reproduced", nums, f"too few bracketed frozen points to fit the exponent "
                                                f"({exp.get('n_points', 0)})")
    if ci[0] <= 0:
        return Decision("not reproduced", nums, "the needed MLP width does not grow with N·K (exponent interval "
                                                "reaches 0)")
    ratio_ok = largest is not None and largest["ratio_non_embedding"] >= C11_MIN_RATIO
    exp_ok = ci[0] > C11_MIN_EXPONENT
    if exp_ok and ratio_ok:
        ratio = largest["ratio_non_embedding"]
        return Decision("reproduced", nums, f"needed width ∝ (N·K)^{exp['slope']:.2f}, interval above "
                                            f"{C11_MIN_EXPONENT}, and frozen needs {ratio:.1f}x the learned "
                                            f"model's parameters at N·K = {largest['NK']}")
    why = []
    if not exp_ok:
        why.append(f"the exponent's interval starts at {ci[0]:.2f} (≤ {C11_MIN_EXPONENT})")
    if not ratio_ok:
        why.append("frozen does not need ≥ 2x the learned model's parameters at the largest N·K" if largest else
                   "no N·K has both conditions bracketed")
    return Decision("partly", nums, "the width grows with N·K, but " + " and ".join(why))


def _smallest(p: Mapping[str, Any], cond: str, *, first_success: bool = False) -> dict[int, int | None]:
    """Trainable parameters of the smallest working model per k: by the shared rule, or by first success."""
    if first_success:
        return {int(e["k"]): (e.get("rule") or {}).get("first_success_trainable_params")
                for e in p.get("smallest", []) if e["condition"] == cond}
    return {int(e["k"]): e.get("trainable_params") for e in p.get("smallest", []) if e["condition"] == cond}


def decide_c12(payloads: Payloads) -> Decision:
    """C12 on the multihop payload, in the bound's fixed-readout class (direct-frozen against cot-frozen)."""
    p = payloads["multihop"]
    direct, cot = _smallest(p, "direct-frozen"), _smallest(p, "cot-frozen")
    ks = sorted(set(direct) | set(cot))
    nums: dict[str, Any] = {"k": ks, "direct_frozen_params": [direct.get(k) for k in ks],
                            "cot_frozen_params": [cot.get(k) for k in ks],
                            "learned_readout_direct": [_smallest(p, "direct-learned").get(k) for k in ks],
                            "learned_readout_cot": [_smallest(p, "cot-learned").get(k) for k in ks],
                            # Beside the rule, as the project reports both: the first success, failures above ignored.
                            "direct_frozen_params_first_success": [_smallest(p, "direct-frozen", first_success=True)
                                                                   .get(k) for k in ks],
                            "cot_frozen_params_first_success": [_smallest(p, "cot-frozen", first_success=True).get(k)
                                                                for k in ks]}
    if len(ks) < 2:
        return Decision("not reproduced", nums, "fewer than two hop counts tested")
    d_found = all(direct.get(k) is not None for k in ks)
    c_found = [cot.get(k) for k in ks if cot.get(k) is not None]
    d_vals = [direct.get(k) for k in ks]
    # A direct size not found within the grid means it lies above the grid: growth, as long as a smaller k was found.
    d_grows = (all(a is not None and (b is None or b > a) for a, b in zip(d_vals[:-1], d_vals[1:], strict=True))
               and d_vals[0] is not None)
    cot_growth = (max(c_found) / min(c_found)) if len(c_found) == len(ks) else None
    direct_growth = (d_vals[-1] / d_vals[0]) if d_found else None
    nums.update(direct_growth=direct_growth, cot_growth=cot_growth, direct_all_found=d_found)
    if not d_grows:
        return Decision("not reproduced", nums, "without CoT the smallest model does not grow with every added hop")
    if cot_growth is None:
        return Decision("partly", nums, "without CoT the size grows with k, but CoT found no successful model at "
                                        "some k within the grid")
    if cot_growth <= C12_MAX_COT_GROWTH and (direct_growth is None or direct_growth > cot_growth):
        return Decision("reproduced", nums, f"without CoT the size grows with k; with CoT it grows at most "
                                            f"{cot_growth:.2f}x (≤ {C12_MAX_COT_GROWTH})")
    return Decision("partly", nums, f"without CoT the size grows with k, but with CoT it also grows {cot_growth:.2f}x "
                                    f"over the tested k (> {C12_MAX_COT_GROWTH})")


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
    Claim(
        id="C11", statement="With frozen random embeddings and readout, the MLP must hold the facts, and the width it "
                            "needs grows with N·K — far more parameters than with learned embeddings.",
        paper_ref="§5 (frozen-embedding control); associative-memory scaling",
        criterion=(f"The log-log exponent of the needed MLP width against N·K (frozen condition, bracketed points) "
                   f"has a seed-bootstrap 95 % interval above {C11_MIN_EXPONENT}, and at the largest N·K where both "
                   f"are bracketed frozen embeddings need ≥ {C11_MIN_RATIO:g}x the learned model's non-embedding "
                   "parameters. Partly: the exponent's interval is above 0 only, or the ratio falls short; not "
                   "reproduced: the interval reaches 0 or too few points are bracketed."),
        experiments=("frozen_control",), decide=decide_c11,
        figures=("frozen_control/params_needed_vs_nk.png", "frozen_control/frozen_accuracy_vs_width.png")),
    Claim(
        id="C12", statement="Without chain-of-thought the model needed grows with the number of hops k; with "
                            "chain-of-thought one layer of constant size answers every k.",
        paper_ref="Theorems 4.2-4.4 (capacity-depth trade-off)",
        criterion=(f"In the bound's fixed-readout class: the smallest successful direct model's trainable "
                   f"parameters increase with every added hop (a size above the grid counts as larger), and the "
                   f"smallest CoT model's grow by at most {C12_MAX_COT_GROWTH:g}x over the tested k and less than "
                   "the direct models'. Partly: the direct side holds but CoT grows more, or CoT fails within the "
                   "grid at some k; not reproduced: the direct size does not grow with k."),
        experiments=("multihop",), decide=decide_c12,
        figures=("multihop/capacity_depth.png", "multihop/success_grid.png")),
)
