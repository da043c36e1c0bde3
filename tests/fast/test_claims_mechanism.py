"""C8, C9 and C10: every criterion gives each verdict on payloads made for it."""

from __future__ import annotations

import pytest

from georecall.experiments.claims import all_claims
from georecall.experiments.claims import mechanism as cm

DESIGN = {"primary_multiple": 2.0}


def _spread(values):
    return {"per_seed": list(values), "mean": sum(values) / len(values), "min": min(values), "max": max(values),
            "n": len(values), "missing": 0}


def _sp_cell(cond="primary", mult=2.0, probe=(0.95, 0.97, 0.99), ctrl=(0.01, 0.02, 0.0), r2=(0.8, 0.85, 0.9),
             r2c=(0.0, 0.01, -0.02)):
    u = {"probe_accuracy": _spread(probe), "probe_random_bijection": _spread(ctrl), "probe_shuffled": _spread(ctrl),
         "additive_r2": _spread(r2), "additive_r2_control": _spread(r2c)}
    return {"condition": cond, "multiple": mult, "d_model": 20, "seeds": [0, 1, 2], "unembedding": u}


def _c8(*cells):
    return cm.decide_c8({"superposition": {"chance": 1 / 128, "design": DESIGN, "cells": list(cells)}})


def test_c8_gives_each_verdict():
    good, free = _sp_cell(), _sp_cell("frozen_readout")
    assert _c8(good, free).verdict == "reproduced"
    assert _c8(_sp_cell(probe=(0.5, 0.6, 0.7)), free).verdict == "partly"  # beats controls, too small
    d = _c8(good)  # no leakage-free cell
    assert d.verdict == "partly" and "not trained" in d.reason
    assert _c8(good, _sp_cell("frozen_readout", probe=(0.01, 0.02, 0.0))).verdict == "partly"
    # One seed at control level: the direction fails.
    assert _c8(_sp_cell(probe=(0.95, 0.97, 0.05)), free).verdict == "not reproduced"
    assert _c8(_sp_cell(r2=(0.05, 0.0, 0.02)), free).verdict == "not reproduced"
    assert _c8(_sp_cell(mult=4.0)).verdict == "not tested"  # no primary cell
    assert [c["condition"] for c in _c8(good, free).numbers["map"]] == ["primary", "frozen_readout"]


def _iv_cell(frac=(0.9, 0.95, 0.92), rfrac=(0.3, 0.25, 0.3), drop=0.8, rdrop=0.05, edit=(0.9, 0.95, 1.0),
             ctrl=(0.0, 0.0, 0.02), coll=(0.02, 0.0, 0.05)):
    n = {"zero_diagonal_fraction": _spread(frac), "zero_random_diagonal_fraction": _spread(rfrac),
         "zero_diagonal_drop": _spread([drop] * 3), "zero_random_diagonal_drop": _spread([rdrop] * 3),
         "edit_success": _spread(edit), "control_edit_success": _spread(ctrl), "edit_collateral": _spread(coll)}
    return {"condition": "primary", "multiple": 2.0, "d_model": 20, "seeds": [0, 1, 2], "numbers": n}


def _c9(cell):
    return cm.decide_c9({"intervention": {"design": DESIGN, "cells": [cell], "edit_scale": 1.0}})


def test_c9_gives_each_verdict():
    assert _c9(_iv_cell()).verdict == "reproduced"
    d = _c9(_iv_cell(frac=(0.5, 0.55, 0.6)))  # gating above random but not concentrated enough
    assert d.verdict == "partly" and "gating" in d.reason
    assert _c9(_iv_cell(coll=(0.3, 0.4, 0.5))).verdict == "partly"  # edits work but spill over
    assert _c9(_iv_cell(frac=(0.2, 0.3, 0.3), drop=0.1, edit=(0.1, 0.0, 0.05))).verdict == "not reproduced"
    assert cm.decide_c9({"intervention": {"design": DESIGN, "cells": []}}).verdict == "not tested"


def _tr_cell(cond="primary", mult=2.0, zs=(0.95, 0.93, 0.97), emb=(1.0, 1.0, 1.0), untr=(0.4, 0.5, 0.45),
             emb_steps=(100, 120, 110), untr_steps=(None, None, None)):
    def steps(v):
        reached = [x for x in v if x is not None]
        s = _spread(reached) if reached else {"per_seed": list(v), "mean": None, "min": None, "max": None}
        return {**s, "per_seed": list(v), "reached": len(reached)}

    n = {"zero_shot_accuracy": _spread(zs), "embeddings_only_accuracy": _spread(emb),
         "untrained_frozen_accuracy": _spread(untr), "embeddings_only_steps": steps(emb_steps),
         "untrained_frozen_steps": steps(untr_steps)}
    return {"condition": cond, "multiple": mult, "d_model": 20, "seeds": [0, 1, 2], "numbers": n}


def _c10(*cells):
    return cm.decide_c10({"transfer": {"chance": 1 / 128, "design": DESIGN, "cells": list(cells)}})


def test_c10_gives_each_verdict():
    assert _c10(_tr_cell()).verdict == "reproduced"
    low = dict(zs=(0.3, 0.4, 0.35))
    d = _c10(_tr_cell(**low))
    assert d.verdict == "partly" and "no condition passes" in d.reason
    d = _c10(_tr_cell(**low), _tr_cell("weight_decay", 4.0))
    assert d.verdict == "partly" and "weight_decay ×4.0" in d.reason
    assert d.numbers["conditions_over_bar"] == [("weight_decay", 4.0)]
    # The trained body helps by steps alone (the untrained one also reaches the target, 3x slower).
    assert _c10(_tr_cell(untr=(1.0, 1.0, 1.0), untr_steps=(330, 360, 300))).verdict == "reproduced"
    # Zero-shot at chance and the body no help: not reproduced.
    assert _c10(_tr_cell(zs=(0.01, 0.0, 0.02), untr=(1.0, 1.0, 1.0), untr_steps=(100, 120, 110))).verdict == \
        "not reproduced"
    assert _c10(_tr_cell(mult=8.0)).verdict == "not tested"


@pytest.mark.parametrize("cid, exp", [("C8", "superposition"), ("C9", "intervention"), ("C10", "transfer")])
def test_the_mechanism_claims_are_registered_with_their_experiment(cid, exp):
    claim = next(c for c in all_claims() if c.id == cid)
    assert claim.experiments == (exp,) and claim.decide is not None and claim.figures
