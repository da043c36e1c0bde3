"""C13: the criterion gives each verdict on payloads made for it."""

from __future__ import annotations

from georecall.experiments.claims import real_lm as cr

RELS = ["capital", "continent"]


def _payload(probe, control, r2, r2c):
    n = len(r2)
    return {"model": "m", "n_facts": 10, "recall_rate": 0.5, "layers": list(range(n)), "relations": RELS,
            "probe_by_relation": {r: probe[r] for r in RELS}, "probe_control_by_relation": {r: control for r in RELS},
            "chance_by_relation": {"capital": 0.01, "continent": 1 / 6}, "additive_r2": r2, "additive_r2_control": r2c}


def test_c13_gives_each_verdict():
    ctrl = [0.01, 0.02, 0.01]
    flat = {"capital": [0.01, 0.02, 0.0], "continent": [0.15, 0.2, 0.18]}
    mid = {"capital": [0.01, 0.6, 0.3], "continent": [0.2, 0.9, 0.45]}  # both readable at layer 1 only
    one = {"capital": [0.01, 0.6, 0.3], "continent": [0.15, 0.2, 0.18]}
    good_r2, bad_r2, r2c = [0.0, 0.4, 0.1], [0.0, 0.05, 0.02], [0.0, 0.0, 0.0]
    d = cr.decide_c13({"real_lm": _payload(mid, ctrl, good_r2, r2c)})
    assert d.verdict == "reproduced" and d.numbers["layers_fully_holding"] == [1]
    d = cr.decide_c13({"real_lm": _payload(mid, ctrl, bad_r2, r2c)})
    assert d.verdict == "partly" and "additive" in d.reason
    d = cr.decide_c13({"real_lm": _payload(one, ctrl, good_r2, r2c)})
    assert d.verdict == "partly" and "1 of 2" in d.reason
    assert cr.decide_c13({"real_lm": _payload(flat, ctrl, good_r2, r2c)}).verdict == "not reproduced"
    # Continent at 0.45 beats the control by 0.2 but not 3x chance (0.5): not readable.
    near = {"capital": [0.0, 0.0, 0.0], "continent": [0.45, 0.45, 0.45]}
    assert cr.decide_c13({"real_lm": _payload(near, [0.2, 0.2, 0.2], good_r2, r2c)}).verdict == "not reproduced"
    assert cr.decide_c13({"real_lm": {"layers": []}}).verdict == "not tested"
