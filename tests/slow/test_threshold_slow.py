"""Slow tier: the threshold experiment's recipe on two real cells of its quick grid (a minute or two on a CPU)."""

import dataclasses

import pytest

from georecall.experiments import capacity, threshold
from georecall.results.store import ResultStore
from georecall.training.sweep import STORE_NAME, run_sweep


@pytest.mark.slow
def test_threshold_grows_with_k_and_a_frozen_readout_needs_more(tmp_path):
    quick = threshold.config("quick")
    cfg = dataclasses.replace(quick, n_subjects=(32,), n_relations=(2, 8), conditions=("ln_learned", "ln_frozen"),
                              recipe=dataclasses.replace(quick.recipe, device="cpu"))
    report = run_sweep(threshold.runs(cfg), tmp_path, experiment="t")
    assert report.failed == 0
    with ResultStore(tmp_path / STORE_NAME) as store:
        rows = store.table("t", status=None)
    res = threshold.analyze(cfg, rows, tmp_path)
    d = {(e["condition"], e["n_relations"]): e for es in res.d_star_by_condition.values() for e in es}
    assert all(e["d_star"] is not None and not e["at_grid_min"] for e in d.values()), d
    assert d[("ln_learned", 8)]["d_star"] > d[("ln_learned", 2)]["d_star"]
    assert d[("ln_frozen", 8)]["d_star"] > d[("ln_frozen", 2)]["d_star"]
    assert d[("ln_frozen", 8)]["d_star"] >= d[("ln_learned", 8)]["d_star"]  # the readout can hold facts
    # Far below the threshold the majority fails; the thresholds are real, not grid artefacts.
    below = sorted((p for p in res.points if p["condition"] == "ln_learned" and p["n_relations"] == 8
                    and p["d_model"] < d[("ln_learned", 8)]["d_star"]), key=lambda p: p["d_model"])
    assert below and not threshold.majority_success(below[0]["accuracy"], 0.99)  # the smallest tried d fails
    assert not threshold.majority_success(below[-1]["accuracy"], 0.99)  # and so does the one just below d*
    cap = capacity.analyze(cfg, rows, tmp_path)
    for e in cap.entries:
        assert e["bits_per_param_total"] is not None and 0 < e["bits_per_param_total"] < e["bits_per_param_embedding"]
