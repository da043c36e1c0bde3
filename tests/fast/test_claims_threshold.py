"""C7: the criterion gives each verdict on payloads made for it; the law comparison picks a planted law."""

import numpy as np
import pytest

from georecall.experiments import threshold
from georecall.experiments.claims import threshold as cc


def _law(log_ci=(0.1, 0.3), beta_ci=(0.1, 0.4), wins=0.9, n_br=12, n_cells=12):
    return {"n_cells": n_cells, "n_bracketed": n_br, "log_slope": 0.2, "log_slope_ci95": list(log_ci), "beta": 0.2,
            "beta_ci95": list(beta_ci), "sse_log": 1.0, "sse_power": 2.0, "log_wins_fraction": wins}


def _c7(**by_cond):
    return cc.decide_c7({"threshold": {"laws": by_cond}})


def test_c7_gives_each_verdict():
    good = _law()
    assert _c7(ln_learned=good, ln_frozen=good).verdict == "reproduced"
    # Growth and sub-linearity hold but the power law fits as well: partly.
    assert _c7(ln_learned=_law(wins=0.5), ln_frozen=good).verdict == "partly"
    # Scope: too few cells bracketed.
    assert _c7(ln_learned=_law(n_br=6), ln_frozen=_law(n_br=6)).verdict == "partly"
    # One condition fails outright: partly.
    assert _c7(ln_learned=good, ln_frozen=_law(log_ci=(-0.1, 0.3))).verdict == "partly"
    # No growth, or linear in N, in both: not reproduced.
    assert _c7(ln_learned=_law(log_ci=(-0.1, 0.3)), ln_frozen=_law(beta_ci=(0.6, 1.2))).verdict == "not reproduced"
    nothing = {"n_cells": 4, "n_bracketed": 1, "log_slope_ci95": None, "beta_ci95": None, "log_wins_fraction": None}
    d = _c7(ln_learned=nothing, ln_frozen=nothing)
    assert d.verdict == "not reproduced" and "too few" in d.reason
    # Only one condition trained: it can be at most partly.
    assert _c7(ln_learned=good).verdict == "partly"
    assert cc.decide_c7({"threshold": {"laws": {}}}).verdict == "not tested"


def _curves(d_star_of, ns=(16, 32, 64, 128), ks=(2, 4, 8), n_seeds=3, d_grid=range(1, 80)):
    """Accuracy curves with a sharp threshold at d_star_of(N, K) for every seed."""
    return {(n, k): [(d, [1.0 if d >= d_star_of(n, k) else 0.1] * n_seeds) for d in d_grid] for n in ns for k in ks}


def test_law_comparison_prefers_the_planted_law():
    # d* = 2 + K log2 N / 2 exactly (log2 N is an integer here), every seed alike.
    log_law = threshold.law_comparison(_curves(lambda n, k: 2 + round(0.5 * k * np.log2(n))), 3, 0.99, 20, 0)
    assert log_law["n_bracketed"] == 12 and log_law["log_wins_fraction"] == 1.0
    assert log_law["log_slope_ci95"][0] > 0 and log_law["beta_ci95"][1] < 1
    linear = threshold.law_comparison(_curves(lambda n, k: round(k * n / 8), d_grid=range(1, 140)), 3, 0.99, 20, 0)
    assert linear["sse_power"] < linear["sse_log"]  # the power law fits linear growth better
    assert linear["beta"] == pytest.approx(1.0, abs=0.15)
    verdict = cc._law_verdict(linear)[0]
    assert verdict in ("not reproduced", "partly") and verdict != "reproduced"


def test_law_comparison_with_too_few_cells_says_so():
    out = threshold.law_comparison(_curves(lambda n, k: 10, ns=(16,), ks=(2,)), 3, 0.99, 10, 0)
    assert out["log_slope"] is None and out["log_slope_ci95"] is None and out["n_cells"] == 1
    assert cc._law_verdict(out)[0] == "not reproduced"


