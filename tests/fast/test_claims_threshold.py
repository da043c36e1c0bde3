"""C7: the criterion gives each verdict on payloads made for it, and reads a real analysis."""

import math

import pytest

from georecall.experiments.claims import threshold as ct


def _law(b_ci=(1.0, 2.0), wins=0.95, n_br=5):
    return {"n_bracketed": n_br, "b": sum(b_ci) / 2, "b_ci95": list(b_ci), "beta": 0.4, "beta_ci95": [0.3, 0.5],
            "log_wins_fraction": wins}


def _payload(laws_frozen, laws_learned=None, covered=15, cells=15, ratios=(1.0, 1.1)):
    pairs = [{"cells": [[64, 2], [8, 4]], "ratio": r} for r in ratios]
    laws = {"ln_frozen": laws_frozen}
    if laws_learned is not None:
        laws["ln_learned"] = laws_learned
    cov = {"cells": cells, "bracketed": covered, "converged": covered, "bracketed_and_converged": covered}
    return {"threshold": {"laws": laws, "coverage": {c: cov for c in laws},
                          "collapse": {c: {"pairs": pairs} for c in laws}}}


def _all(**kw):
    return {k: _law(**kw) for k in ("2", "4", "8")}


def test_c7_gives_each_verdict():
    good = _all()
    d = ct.decide_c7(_payload(good, good))
    assert d.verdict == "reproduced" and d.numbers["ln_learned"]["verdict"] == "reproduced"
    # The learned readout is reported beside the fixed one and does not decide.
    d = ct.decide_c7(_payload(good, _all(b_ci=(-1.0, 1.0))))
    assert d.verdict == "reproduced" and d.numbers["ln_learned"]["verdict"] == "not reproduced"
    # Partly: neither law clearly preferred at one K; too few cells bracketed and converged; no collapse; no pairs.
    assert ct.decide_c7(_payload({**good, "4": _law(wins=0.5)})).verdict == "partly"
    d = ct.decide_c7(_payload(good, covered=9))
    assert d.verdict == "partly" and "9 of 15" in d.reason
    d = ct.decide_c7(_payload(good, ratios=(1.0, 0.5)))
    assert d.verdict == "partly" and "0.50" in d.reason
    assert ct.decide_c7(_payload(good, ratios=())).verdict == "partly"
    assert ct.decide_c7(_payload({**good, "8": {"n_bracketed": 1, "b": None, "b_ci95": None,
                                                "log_wins_fraction": None}})).verdict == "partly"
    # Not reproduced: no growth at some K; the power law wins at some K; nothing fitted.
    d = ct.decide_c7(_payload({**good, "2": _law(b_ci=(-0.5, 0.5))}))
    assert d.verdict == "not reproduced" and "K = 2" in d.reason
    d = ct.decide_c7(_payload({**good, "8": _law(wins=0.1)}))
    assert d.verdict == "not reproduced" and "power law" in d.reason
    none = {k: {"n_bracketed": 1, "b_ci95": None, "log_wins_fraction": None} for k in ("2", "4")}
    assert ct.decide_c7(_payload(none)).verdict == "not reproduced"
    # The deciding condition absent: not tested.
    assert ct.decide_c7({"threshold": {"laws": {"ln_learned": good}}}).verdict == "not tested"


def test_c7_thresholds_are_stated_once():
    assert 0.5 < ct.C7_MIN_LOG_WINS < 1 and 0 < ct.C7_MIN_COVERED <= 1
    lo, hi = ct.C7_COLLAPSE
    assert lo < 1 < hi and math.isclose(lo * hi, 1.0)
    assert ct.C7_DECIDING == "ln_frozen"
    assert str(round(ct.C7_MIN_LOG_WINS * 100)) in ct.CLAIMS[0].criterion


@pytest.mark.parametrize("law", ["log", "power"])
def test_c7_reads_a_real_analysis_of_planted_thresholds(tmp_path, law):
    """The whole chain on synthetic outcomes: planted d* -> search -> analysis -> verdict."""
    from georecall.experiments import threshold
    from tests.fast.test_threshold_capacity import _drive, _small, _step

    cfg = _small(n_subjects=(8, 16, 64), n_relations=(2, 4), n_bootstrap=50)
    true = {"log": lambda n, k: round(k * (1 + 2 * math.log2(n))),
            "power": lambda n, k: round(k * 2 * n ** 0.7)}[law]
    rows, _ = _drive(cfg, _step(lambda c, n, k, steps: true(n, k)))
    payload = {"threshold": {**vars(threshold.analyze(cfg, rows, tmp_path))}}
    d = ct.decide_c7(payload)
    if law == "log":
        assert d.verdict == "reproduced", d.reason  # (64, 2) and (8, 4) share K log2 N and d*
    else:
        assert d.verdict == "not reproduced" and "power law" in d.reason
