"""C11, decided by the frozen_control experiment: frozen embeddings make the MLP hold the facts.

The thresholds below are stated once here, before any run; a verdict is never tuned to an outcome.
"""

from __future__ import annotations

from georecall.experiments.claims import Claim, Decision, Payloads

#: C11: the needed MLP width must grow with N·K at an exponent whose whole 95 % interval exceeds this.
C11_MIN_EXPONENT = 0.5
#: C11: frozen embeddings must need at least this many times the learned model's non-embedding parameters.
C11_MIN_RATIO = 2.0


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


CLAIMS: tuple[Claim, ...] = (
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
)
