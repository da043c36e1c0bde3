"""C11: the criterion gives each verdict on payloads made for it (schema 2)."""

from georecall.experiments.claims import frozen_control as cc


def _payload(alpha_ci, beta_ci=(-1.2, -0.8), am="holds", ratio=5.0, n_conv=12, n_cells=12):
    mid = None if alpha_ci is None else sum(alpha_ci) / 2
    comparison = [{"NK": 64, "K": 4, "ratio_non_embedding": 0.5, "ratio_ci95": [0.4, 0.6]},
                  {"NK": 512, "K": 4, "ratio_non_embedding": ratio, "ratio_ci95": None}]
    return {"frozen_control": {
        "fits": {"joint": {"alpha": {"value": mid, "ci95": None if alpha_ci is None else list(alpha_ci)},
                           "beta": {"value": sum(beta_ci) / 2, "ci95": list(beta_ci)}},
                 "product": {"value": mid, "ci95": None if alpha_ci is None else list(alpha_ci)},
                 "param_exponent": {"frozen": {"value": 0.9}, "learned": {"value": 0.3}}},
        "associative_memory": {"verdict": am, "reason": "r"},
        "comparison": comparison,
        "scope": {"n_frozen_cells": n_cells, "n_frozen_bracketed": n_conv, "n_frozen_converged": n_conv}}}


def test_c11_gives_each_verdict():
    assert cc.decide_c11(_payload((0.8, 1.1))).verdict == "reproduced"
    assert cc.decide_c11(_payload((0.2, 0.9), am="inconclusive")).verdict == "partly"  # grows, interval below 0.5
    assert cc.decide_c11(_payload((0.8, 1.1), ratio=1.5)).verdict == "partly"  # frozen not 2x costlier
    assert cc.decide_c11(_payload((0.6, 0.8), am="fails")).verdict == "partly"  # grows fast, not d·d_mlp ∝ N·K
    assert cc.decide_c11(_payload((0.8, 1.1), n_conv=6)).verdict == "partly"  # scope short: budget-limited cells
    assert cc.decide_c11(_payload((-0.1, 0.4))).verdict == "not reproduced"  # no growth
    assert cc.decide_c11(_payload((0.8, 1.1), ratio=0.9)).verdict == "not reproduced"  # frozen is not costlier
    assert cc.decide_c11(_payload(None, am="untested")).verdict == "not reproduced"  # too few points


def test_c11_is_decided_at_the_largest_nk_and_says_why():
    d = cc.decide_c11(_payload((0.8, 1.1)))
    assert d.numbers["ratio_at_largest_nk"] == 5.0 and d.numbers["largest_nk"] == 512  # not the 0.5 at N·K = 64
    partly = cc.decide_c11(_payload((0.6, 0.8), am="fails", ratio=1.5))
    assert "associative-memory" in partly.reason and "1.50x" in partly.reason
    assert cc.C11_MIN_EXPONENT == 0.5 and cc.C11_MIN_RATIO == 2.0  # the criterion as stated before the runs
