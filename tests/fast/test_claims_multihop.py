"""C12: the criterion gives each verdict on synthetic multihop payloads made for it."""

import json
import math

import pytest

from georecall.experiments.claims import VERDICTS, Decision
from georecall.experiments.claims import multihop as cc

HIGH = "high"  # no rung up to the range top works
BUDGET = "budget"  # the search stopped on its budget


def _cell(n, k, cond, value, spread=0.0):
    """One payload cell; ``value`` trainable params, HIGH or BUDGET; ``spread`` widens the seed interval."""
    if value == HIGH:
        return {"N": n, "k": k, "condition": cond, "smallest": None, "smallest_status": "censored_high",
                "interval": {"trainable_params_lo": None, "trainable_params_hi": None}}
    if value == BUDGET:
        return {"N": n, "k": k, "condition": cond, "smallest": None, "smallest_status": "budget",
                "interval": {"trainable_params_lo": None, "trainable_params_hi": None}}
    return {"N": n, "k": k, "condition": cond, "smallest": {"trainable_params": value}, "smallest_status": "bracketed",
            "interval": {"trainable_params_lo": value / (1 + spread), "trainable_params_hi": value * (1 + spread)}}


def _payload(ns=(8, 16, 64), direct=None, depth1=None, cot=None, cot_final=None, spread=0.0):
    """Sizes per k (k = 1, 2, 3) for every N, scaled by N so growth with N is visible unless overridden."""
    direct = direct or [1000, 3000, 9000]
    depth1 = depth1 or [1000, 4000, 16000]
    cot = cot or [1000, 1100, 1200]
    cot_final = cot_final or [1000, HIGH, HIGH]
    cells = []
    for n in ns:
        for cond, sizes in (("direct-frozen", direct), ("direct1-frozen", depth1), ("cot-frozen", cot),
                            ("cot-final", cot_final)):
            for k, v in enumerate(sizes, start=1):
                cells.append(_cell(n, k, cond, v if isinstance(v, str) else v * n / 8, spread))
    return {"multihop": {"cells": cells}}


def _decide(p):
    d = cc.decide_c12(p)
    assert isinstance(d, Decision) and d.verdict in VERDICTS and d.reason
    json.dumps(d.numbers, allow_nan=False)  # plain JSON, no inf
    return d


def test_c12_reproduced_when_direct_and_depth_matched_grow_and_cot_stays_flat():
    d = _decide(_payload())
    assert d.verdict == "reproduced"
    assert d.numbers["direct_grows"] == [True] * 3 and d.numbers["direct1_grows"] == [True] * 3
    assert d.numbers["cot_growth"] == [pytest.approx(1.2)] * 3 and "needs the supervised chain" in d.reason
    assert d.numbers["N_span"] == 8
    # above the range at k = 3 counts as growth; a flat no-intermediate-supervision control is stated
    d = _decide(_payload(direct=[1000, 3000, HIGH], cot_final=[1000, 1000, 1100]))
    assert d.verdict == "reproduced" and "without intermediate supervision" in d.reason
    assert d.numbers["direct_growth"] == ["above range"] * 3


@pytest.mark.parametrize("change, needle", [
    ({"depth1": [1000, 1000, 16000]}, "depth-matched"),  # at one layer the size is flat from k = 1 to 2
    ({"cot": [1000, 1500, 2500]}, "CoT grows more"),  # 2.5x > 2x
    ({"cot": [1000, BUDGET, 1100]}, "CoT grows more"),  # not found at some k
    ({"spread": 3.0}, "seed-bootstrap"),  # the growth is inside the seed intervals
    ({"ns": (8, 16)}, "spans"),  # N spans 2x only
    ({"depth1": [1000, 4000, BUDGET]}, "depth-matched"),  # unknown at k = 3
])
def test_c12_partly_when_a_control_or_the_scope_fails(change, needle):
    d = _decide(_payload(**change))
    assert d.verdict == "partly" and needle in d.reason


def test_c12_partly_when_the_size_does_not_grow_with_n():
    p = _payload()
    for c in p["multihop"]["cells"]:  # the same sizes at every N
        if c["smallest"] is not None:
            c["smallest"]["trainable_params"] = c["smallest"]["trainable_params"] * 8 / c["N"]
            c["interval"] = {k: v * 8 / c["N"] for k, v in c["interval"].items()}
    d = _decide(p)
    assert d.verdict == "partly" and "smallest to the largest N" in d.reason


def test_c12_partly_when_direct_grows_at_some_n_only():
    p = _payload()
    for c in p["multihop"]["cells"]:
        if c["N"] == 16 and c["condition"] == "direct-frozen" and c["k"] == 2:
            c["smallest"]["trainable_params"] = 2000.0  # equal to k = 1 at N = 16
    d = _decide(p)
    assert d.verdict == "partly" and "N = [16]" in d.reason


def test_c12_not_reproduced_when_direct_is_flat_or_cot_grows_as_much():
    assert _decide(_payload(direct=[1000, 1000, 9000])).verdict == "not reproduced"
    assert _decide(_payload(direct=[HIGH, HIGH, HIGH])).verdict == "not reproduced"  # inf to inf is no growth
    d = _decide(_payload(cot=[1000, 3000, 9000]))
    assert d.verdict == "not reproduced" and "at least as much" in d.reason


def test_c12_not_tested_without_the_cells_it_needs():
    assert _decide({"multihop": {"cells": []}}).verdict == "not tested"
    p = _payload()
    p["multihop"]["cells"] = [c for c in p["multihop"]["cells"] if c["k"] == 1]
    assert _decide(p).verdict == "not tested"
    p = _payload()
    p["multihop"]["cells"] = [c for c in p["multihop"]["cells"] if c["condition"] != "cot-frozen"]
    assert _decide(p).verdict == "not tested"


def test_c12_criterion_states_its_thresholds():
    claim = cc.CLAIMS[0]
    assert claim.id == "C12" and claim.experiments == ("multihop",)
    assert f"{cc.C12_MAX_COT_GROWTH:g}x" in claim.criterion and f"{cc.C12_MIN_N_SPAN:g}x" in claim.criterion
    assert math.isclose(cc.C12_MAX_COT_GROWTH, 2.0)
