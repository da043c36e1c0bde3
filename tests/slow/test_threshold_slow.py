"""Slow tier: the threshold experiment's search and recipe on two real cells of its quick grid (minutes on a CPU)."""

import pytest

from georecall.experiments import capacity, threshold
from georecall.experiments.base import run_experiment


@pytest.mark.slow
def test_threshold_grows_with_k_and_a_frozen_readout_needs_more(tmp_path):
    done = run_experiment(threshold, "quick", tmp_path, overrides=[
        "sensitivity_cells=[]", "sensitivity_lrs=[]", "n_subjects=[32]", "n_relations=[2,8]", "n_bootstrap=50"])
    res = done.result
    d = {(e["condition"], e["n_relations"]): e for es in res.d_star_by_condition.values() for e in es}
    assert all(e["status"] == "bracketed" and e["d_star"] is not None for e in d.values()), d
    assert d[("ln_learned", 8)]["d_star"] > d[("ln_learned", 2)]["d_star"]
    assert d[("ln_frozen", 8)]["d_star"] > d[("ln_frozen", 2)]["d_star"]
    assert d[("ln_frozen", 8)]["d_star"] >= d[("ln_learned", 8)]["d_star"]  # the readout can hold facts
    for e in d.values():  # the width just below d* fails at the final budget: a real bracket, by the rule
        final = e["stages"][-1]
        tried = dict((w, ok) for w, ok in final["tried"])
        assert tried[e["d_star"] - 1] is False and tried[e["d_star"]] is True
        assert e["d_star_ci95"][0] <= e["d_star"] <= e["d_star_ci95"][1]
    cap = run_experiment(capacity, "quick", tmp_path, overrides=[
        "sensitivity_cells=[]", "sensitivity_lrs=[]", "n_subjects=[32]", "n_relations=[2,8]", "n_bootstrap=50"])
    assert cap.envelope["meta"]["sweep"]["trained"] == 0  # the threshold's runs, found done
    for e in cap.result.entries:
        assert 0 < e["bits_per_param_total"] < e["bits_per_param_embedding"]
