"""Claim C13, decided by the ``real_lm`` experiment: a pretrained LM holds a subject's attributes linearly and
additively at some layer.

The payload gives, per layer of the LM (0 = the embeddings), the held-out-subject probe accuracy of each
relation beside its shuffled-label control and chance, and the held-out R² of the additive fit beside
its random-label control, all at the subject's last token of a prompt that names no relation. The
numbers below are fixed here before any run; a verdict is never tuned to an outcome.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from georecall.experiments.claims import Claim, Decision, Payloads

#: A relation is linearly readable at a layer when its probe beats its shuffled control by this much...
C13_PROBE_MARGIN = 0.2
#: ... and reaches at least this many times chance.
C13_TIMES_CHANCE = 3.0
#: The additive form holds at a layer when its held-out R² beats its control's by this much (and is > 0).
C13_R2_MARGIN = 0.1


def _at(values: Sequence[Any] | None, i: int) -> float | None:
    if values is None or i >= len(values) or values[i] is None:
        return None
    return float(values[i])


def layer_tests(payload: Mapping[str, Any], layer: int) -> dict[str, Any]:
    """Which relations are readable at ``layer`` and whether the additive form holds there."""
    relations = list(payload.get("relations") or [])
    probe = payload.get("probe_by_relation") or {}
    control = payload.get("probe_control_by_relation") or {}
    chance = payload.get("chance_by_relation") or {}
    readable = []
    for r in relations:
        acc, ctrl, ch = _at(probe.get(r), layer), _at(control.get(r), layer), chance.get(r)
        if acc is not None and ctrl is not None and ch is not None and acc >= ctrl + C13_PROBE_MARGIN \
                and acc >= C13_TIMES_CHANCE * float(ch):
            readable.append(r)
    r2, r2c = _at(payload.get("additive_r2"), layer), _at(payload.get("additive_r2_control"), layer)
    additive = r2 is not None and r2c is not None and r2 > 0 and r2 >= r2c + C13_R2_MARGIN
    return {"layer": layer, "readable": readable, "all_readable": bool(relations) and len(readable) == len(relations),
            "additive_r2": r2, "additive_r2_control": r2c, "additive": bool(additive)}


def decide_c13(payloads: Payloads) -> Decision:
    p = payloads["real_lm"]
    layers = list(p.get("layers") or [])
    if not layers or not p.get("relations"):
        return Decision("not tested", {}, "the payload holds no layers or relations")
    tests = [layer_tests(p, i) for i in range(len(layers))]
    full = [t["layer"] for t in tests if t["all_readable"] and t["additive"]]
    all_read = [t["layer"] for t in tests if t["all_readable"]]
    some = [t["layer"] for t in tests if t["readable"]]
    nums = {"model": p.get("model"), "n_facts": p.get("n_facts"), "recall_rate": p.get("recall_rate"),
            "layers_fully_holding": [layers[i] for i in full], "layers_all_readable": [layers[i] for i in all_read],
            "layers_some_readable": [layers[i] for i in some],
            "readable_by_layer": {str(layers[t["layer"]]): t["readable"] for t in tests},
            "additive_by_layer": {str(layers[t["layer"]]): [t["additive_r2"], t["additive_r2_control"]]
                                  for t in tests},
            "criterion": {"probe_margin": C13_PROBE_MARGIN, "times_chance": C13_TIMES_CHANCE,
                          "r2_margin": C13_R2_MARGIN}}
    if full:
        return Decision("reproduced", nums, f"at layer(s) {[layers[i] for i in full]} every relation is linearly "
                                            "readable beyond its control and the additive fit beats its control")
    if some:
        if all_read:
            why = (f"every relation is readable at layer(s) {[layers[i] for i in all_read]}, but the additive fit "
                   "does not beat its control there")
        else:
            best = max(tests, key=lambda t: len(t["readable"]))
            why = (f"at most {len(best['readable'])} of {len(p['relations'])} relations are readable at one layer "
                   f"(layer {layers[best['layer']]}: {', '.join(best['readable'])})")
        return Decision("partly", nums, why)
    return Decision("not reproduced", nums, "no relation is linearly readable beyond its shuffled control at any layer")


CLAIMS: tuple[Claim, ...] = (
    Claim(
        id="C13", statement="Pretrained language models hold a subject's attributes linearly and additively at some "
                            "layer (the geometric structure may emerge at intermediate layers).",
        paper_ref="§6 (preliminary experiments on pretrained LMs)",
        criterion=f"At the subject's last token of a prompt naming no relation, per layer: a relation is readable when "
                  f"its probe (cross-validated over subjects) beats its shuffled-label control by "
                  f"{C13_PROBE_MARGIN} and reaches {C13_TIMES_CHANCE:.0f}× chance; the additive form holds when the "
                  f"held-out R² of the additive fit is > 0 and beats its random-label control by {C13_R2_MARGIN}. "
                  "Reproduced: some layer where every relation is readable and the additive form holds; partly: "
                  "some layer with at least one readable relation; not reproduced: none.",
        experiments=("real_lm",), decide=decide_c13,
        figures=("real_lm/probe_by_layer.png", "real_lm/additive_by_layer.png")),
)
