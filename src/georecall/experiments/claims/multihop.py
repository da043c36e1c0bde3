"""C12, decided by the multihop experiment: the capacity-depth trade-off.

The thresholds below are stated once here, before any run; a verdict is never tuned to an outcome.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from georecall.experiments.claims import Claim, Decision, Payloads

#: C12: the smallest CoT model may grow by at most this factor over the tested k (about one grid step).
C12_MAX_COT_GROWTH = 2.0


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
