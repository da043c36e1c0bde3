"""The threshold and capacity experiments: threshold extraction, fits, grids, runs and the analysis of rows."""

import dataclasses
import math
import random
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from georecall.experiments import capacity, threshold
from georecall.experiments.threshold import (
    CONDITIONS,
    ThresholdConfig,
    d_grid,
    extract_threshold,
    fit_line,
    majority_success,
)
from georecall.results.store import ResultStore
from georecall.theory import construction_cost, information_bits
from georecall.training.sweep import STORE_NAME, group_runs, shape_key

# ---------------------------------------------------------------------------------------------------
# Majority rule and threshold extraction


def test_majority_is_strict():
    assert majority_success([0.99, 0.99], 0.99)
    assert not majority_success([0.99, 0.98], 0.99)  # 1 of 2 is not a majority
    assert majority_success([1.0, 0.5, 0.995], 0.99)  # 2 of 3
    assert not majority_success([1.0, 0.5, 0.3], 0.99)
    assert not majority_success([], 0.99)
    assert majority_success([0.99 - 1e-12, 1.0], 0.99)  # float rounding of a count at the level


def test_threshold_is_smallest_majority_d():
    table = [(4, 0, 0.2), (4, 1, 0.3), (8, 0, 1.0), (8, 1, 0.9), (16, 0, 1.0), (16, 1, 0.995), (32, 0, 1.0),
             (32, 1, 1.0)]
    est = extract_threshold(table, 0.99)
    assert est.d_star == 16
    assert est.tested == (4, 8, 16, 32)
    assert est.successes == (False, False, True, True)
    assert not est.non_monotone and not est.at_grid_min


def test_non_monotone_failure_above_is_reported_not_hidden():
    table = [(4, 0, 0.1), (4, 1, 0.1), (8, 0, 1.0), (8, 1, 1.0), (16, 0, 0.008), (16, 1, 1.0), (32, 0, 1.0),
             (32, 1, 1.0)]
    est = extract_threshold(table, 0.99)
    # The shared rule: d* is where every larger d works too (32); the first success (8) is reported beside it.
    assert est.d_star == 32 and est.first_success == 8 and est.status == "bracketed"
    assert est.non_monotone and est.failed_above == (16,)


def test_no_success_gives_none_and_grid_min_is_flagged():
    est = extract_threshold([(4, 0, 0.5), (8, 0, 0.9)], 0.99)
    assert est.d_star is None and not est.at_grid_min and not est.non_monotone and est.status == "censored_high"
    est = extract_threshold([(4, 0, 1.0), (8, 0, 0.5)], 0.99)  # works only below a failure: above the range
    assert est.d_star is None and est.first_success == 4 and est.non_monotone
    est = extract_threshold([(4, 0, 1.0), (8, 0, 1.0)], 0.99)
    assert est.d_star == 4 and est.at_grid_min
    assert extract_threshold([], 0.99).d_star is None


def test_repeated_seed_raises():
    with pytest.raises(ValueError, match=r"\(4, 0\)"):
        extract_threshold([(4, 0, 1.0), (4, 0, 0.5)], 0.99)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([2, 3, 4, 6, 8, 12, 16]), st.floats(0, 1)), min_size=1, max_size=7,
                unique_by=lambda t: t[0]),
       st.integers(1, 3), st.randoms(use_true_random=False))
def test_threshold_properties(curve, n_seeds, rnd):
    """d* is the start of the working suffix, the first success no larger, and row order does not matter."""
    table = [(d, s, min(1.0, max(0.0, acc + 0.01 * s))) for d, acc in curve for s in range(n_seeds)]
    est = extract_threshold(table, 0.99)
    shuffled = list(table)
    rnd.shuffle(shuffled)
    assert extract_threshold(shuffled, 0.99) == est
    by_d = {d: [a for dd, _, a in table if dd == d] for d, _ in curve}
    ok = {d: majority_success(accs, 0.99) for d, accs in by_d.items()}
    first = min((d for d in ok if ok[d]), default=None)
    assert est.first_success == first
    if est.d_star is None:
        assert not ok[max(ok)]
    else:
        assert all(ok[d] for d in ok if d >= est.d_star)
        assert est.d_star == min(ok) or not ok[max(d for d in ok if d < est.d_star)]
        assert first <= est.d_star
    if first is not None:
        assert set(est.failed_above) == {d for d in ok if d > first and not ok[d]}


# ---------------------------------------------------------------------------------------------------
# Fits


def test_fit_recovers_an_exact_line():
    fit = fit_line([1, 2, 3, 4], [3.5, 6.0, 8.5, 11.0])
    assert fit["slope"] == pytest.approx(2.5) and fit["intercept"] == pytest.approx(1.0)
    assert fit["r2"] == pytest.approx(1.0) and fit["n_points"] == 4


def test_fit_edge_cases():
    assert fit_line([1.0], [2.0]) is None
    assert fit_line([3, 3, 3], [1, 2, 3]) is None  # no spread in x
    assert fit_line([1, 2, 3], [5, 5, 5])["r2"] is None  # nothing to explain
    with pytest.raises(ValueError, match="same length"):
        fit_line([1, 2], [1])


def test_fit_r2_is_between_0_and_1_on_noisy_data():
    rng = random.Random(0)
    x = [float(i) for i in range(20)]
    y = [0.5 * v + rng.gauss(0, 2) for v in x]
    fit = fit_line(x, y)
    assert 0 <= fit["r2"] <= 1
    assert fit["slope"] == pytest.approx(0.5, abs=0.25)


# ---------------------------------------------------------------------------------------------------
# Configs, grids and runs


@pytest.mark.parametrize("scale", ["smoke", "quick", "paper"])
def test_scales_are_valid_and_quick_paper_span_the_issue_grid(scale):
    cfg = threshold.config(scale)
    assert cfg.scale == scale
    if scale != "smoke":
        span = max(cfg.n_subjects) / min(cfg.n_subjects)
        assert span >= (8 if scale == "quick" else 64)
        assert len(cfg.n_relations) >= 3 and len(cfg.seeds) >= 2
        assert set(cfg.conditions) == set(CONDITIONS)
    assert capacity.config(scale) == cfg


def test_bad_config_values_raise_naming_them():
    base = threshold.config("smoke")
    with pytest.raises(ValueError, match="'huge'"):
        threshold.config("huge")
    with pytest.raises(ValueError, match="n_subjects"):
        dataclasses.replace(base, n_subjects=(1, 8))
    with pytest.raises(ValueError, match="ln_learned"):
        dataclasses.replace(base, conditions=("ln_frozen",))
    with pytest.raises(ValueError, match="conditions"):
        dataclasses.replace(base, conditions=("ln_learned", "bogus"))
    with pytest.raises(ValueError, match="d_window"):
        dataclasses.replace(base, d_window=(0.5, -1.0))
    with pytest.raises(ValueError, match="noln_frozen"):
        dataclasses.replace(base, d_centers=base.d_centers[:3])
    with pytest.raises(ValueError, match="d_centers"):
        dataclasses.replace(base, d_centers=((),))
    with pytest.raises(ValueError, match="d_centers"):
        dataclasses.replace(base, d_centers=(("ln_learned", -1.0, 0.2),))
    with pytest.raises(ValueError, match="lr"):
        dataclasses.replace(base, recipe=dataclasses.replace(base.recipe, lr=0.0))
    with pytest.raises(ValueError, match="'tied'"):
        d_grid(base, 16, 2, "tied")


def test_d_grid_is_a_window_around_a_centre_growing_with_k_log2_n():
    cfg = threshold.config("quick")
    for cond in cfg.conditions:
        a, b = {c[0]: c[1:] for c in cfg.d_centers}[cond]
        for n in cfg.n_subjects:
            for k in cfg.n_relations:
                grid = d_grid(cfg, n, k, cond)
                assert grid == sorted(set(grid)) and min(grid) >= cfg.d_min and len(grid) >= 4
                center = a + b * k * math.log2(n)
                assert threshold.d_center(cfg, n, k, cond) == pytest.approx(center)
                assert max(grid) == math.floor(max(cfg.d_window) * center + 0.5)
                assert min(grid) <= center <= max(grid)
        assert max(d_grid(cfg, 128, 8, cond)) > 2 * max(d_grid(cfg, 16, 2, cond))


def test_runs_cover_the_grid_one_seed_each_and_seeds_share_an_ensemble():
    cfg = threshold.config("quick")
    rs = threshold.runs(cfg)
    expected = sum(len(d_grid(cfg, n, k, c)) for n in cfg.n_subjects for k in cfg.n_relations
                   for c in cfg.conditions) * len(cfg.seeds)
    assert len(rs) == expected == len({r.config_hash() for r in rs})
    assert all(len(r.seeds) == 1 for r in rs)
    assert len(group_runs(rs, 64)) == expected // len(cfg.seeds)
    for r in rs:
        m = r.model
        assert m.n_layers == 1 and m.d_mlp == cfg.mlp_ratio * m.d_model
        assert r.train.steps == cfg.steps and r.train.target_accuracy == cfg.recipe.target_accuracy
        assert m.init_std == m.unembed_init_std == pytest.approx(m.d_model ** -0.5)  # both readouts start alike
    by_cond = Counter(threshold.condition_of(r.model.layernorm, r.model.frozen_unembedding) for r in rs)
    assert set(by_cond) == set(cfg.conditions)
    for cond, count in by_cond.items():
        cells = sum(len(d_grid(cfg, n, k, cond)) for n in cfg.n_subjects for k in cfg.n_relations)
        assert count == cells * len(cfg.seeds)
    a, b = rs[0], rs[1]
    assert a.seeds != b.seeds and shape_key(a) == shape_key(b)


def test_capacity_trains_exactly_the_threshold_runs():
    cfg = threshold.config("quick")
    assert [r.config_hash() for r in capacity.runs(cfg)] == [r.config_hash() for r in threshold.runs(cfg)]


# ---------------------------------------------------------------------------------------------------
# Analysis of (synthetic) store rows


def _fake_rows(cfg: ThresholdConfig, succeed_from: float):
    """Rows as the store gives them: a seed succeeds when d >= succeed_from * K log2 N."""
    rows = []
    for r in threshold.runs(cfg):
        n, k, d = r.task.n_subjects, r.task.n_relations, r.model.d_model
        ok = d >= succeed_from * k * math.log2(n)
        emb = (n + k) * d
        unemb = d * (n + k) + (n + k)
        rows.append({"hash": r.config_hash(), "status": "done", "error": None, "run_dir": "x",
                     "config.task.n_subjects": n, "config.task.n_relations": k, "config.model.d_model": d,
                     "config.model.layernorm": r.model.layernorm,
                     "config.model.frozen_unembedding": r.model.frozen_unembedding, "config.seeds": list(r.seeds),
                     "result.accuracy": [1.0 if ok else 0.5], "result.steps": [50 if ok else r.train.steps],
                     "result.stop_reason": ["target" if ok else "budget"],
                     "result.n_params.total": emb + unemb + 1000, "result.n_params.embedding": emb,
                     "result.n_params.unembedding": unemb})
    return rows


def test_analysis_reports_d_star_per_cell_and_null_when_none_worked(tmp_path):
    cfg = threshold.config("smoke")
    rows = _fake_rows(cfg, succeed_from=1.0)  # smoke grids are 0.5 and 1.5 x d_hat >= K log2 N: d* = the top
    res = threshold.analyze(cfg, rows, tmp_path)
    assert res.primary_condition == "ln_learned" and res.step_budget == cfg.steps
    assert [(e["n_subjects"], e["n_relations"]) for e in res.d_star] == [(8, 2), (16, 2)]
    for e in res.d_star:
        assert {"n_subjects", "n_relations", "d_star"} <= set(e)
        assert e["d_star"] == max(d_grid(cfg, e["n_subjects"], e["n_relations"], "ln_learned"))
        assert e["selector_d"] == construction_cost("selector", e["n_subjects"], 2, 1).d_model
    assert set(res.d_star_by_condition) == set(cfg.conditions)
    fit = res.fits["ln_learned"]["vs_k_log2_n"]
    assert fit["n_points"] == 2 and fit["r2"] == pytest.approx(1.0)
    # Nothing succeeds: every d* is null and a note says so.
    res = threshold.analyze(cfg, _fake_rows(cfg, succeed_from=99.0), tmp_path)
    assert all(e["d_star"] is None for es in res.d_star_by_condition.values() for e in es)
    assert res.fits["ln_learned"]["vs_k_log2_n"] is None and res.notes


def test_failed_runs_are_counted_and_missing_from_the_curve(tmp_path):
    cfg = threshold.config("smoke")
    rows = _fake_rows(cfg, succeed_from=1.0)
    rows[0] = {k: v for k, v in rows[0].items() if not k.startswith("result.")} | {"status": "failed",
                                                                                   "error": "boom"}
    res = threshold.analyze(cfg, rows, tmp_path)
    assert res.n_failed_runs == 1 and any("boom" in n for n in res.notes)
    assert sum(len(p["accuracy"]) for p in res.points) == len(rows) - 1


def test_capacity_bits_per_parameter_at_d_star(tmp_path):
    cfg = threshold.config("smoke")
    res = capacity.analyze(cfg, _fake_rows(cfg, succeed_from=0.3), tmp_path)
    assert len(res.entries) == len(cfg.conditions) * len(cfg.n_subjects) * len(cfg.n_relations)
    for e in res.entries:
        assert e["d_star"] is not None
        info = information_bits(e["n_subjects"], e["n_relations"])
        assert e["information_bits"] == pytest.approx(info)
        assert e["bits_per_param_total"] == pytest.approx(info / e["params_total"])
        assert e["bits_per_param_embedding"] == pytest.approx(info / e["params_embedding"])
        assert e["bits_per_param_embedding"] > e["bits_per_param_total"]
        frozen = CONDITIONS[e["condition"]][1] == "frozen"
        assert (e["params_trainable"] < e["params_total"]) == frozen
    none = capacity.analyze(cfg, _fake_rows(cfg, succeed_from=99.0), tmp_path)
    assert all(e["bits_per_param_total"] is None and e["params_total"] is None for e in none.entries)
    assert capacity.bits_per_param(10.0, None) is None
    with pytest.raises(ValueError, match="-3"):
        capacity.bits_per_param(10.0, -3)
    assert "lm_bits_per_param" not in capacity.PROVENANCE.paper_reported  # another paper's number, not this one's
    assert capacity.EXTERNAL_REFERENCE["lm_bits_per_param"] == 2.0


def test_rows_written_under_the_other_experiment_are_found_by_hash(tmp_path):
    """capacity and threshold share runs; a row carries the sweep name that wrote it last."""
    cfg = threshold.config("smoke")
    rows = _fake_rows(cfg, succeed_from=1.0)
    with ResultStore(tmp_path / STORE_NAME) as store:
        for r, run in zip(rows, threshold.runs(cfg), strict=True):
            store.put(hash=r["hash"], experiment="capacity-smoke", status="done", config=run.to_dict(),
                      result={"accuracy": r["result.accuracy"], "steps": r["result.steps"],
                              "stop_reason": r["result.stop_reason"],
                              "n_params": {"total": r["result.n_params.total"],
                                           "embedding": r["result.n_params.embedding"],
                                           "unembedding": r["result.n_params.unembedding"]}},
                      run_dir="capacity-smoke/x")
    full = threshold.analyze(cfg, rows, tmp_path)
    found = threshold.analyze(cfg, rows[:3], tmp_path)  # the driver handed only 3 rows
    assert found.d_star_by_condition == full.d_star_by_condition
