"""multihop experiment: configs and runs, success and the smallest size, the backward-code probe."""

from __future__ import annotations

import dataclasses
import json
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from georecall.constructions import build_construction
from georecall.experiments import multihop as mh
from georecall.experiments.base import SCALES
from georecall.theory import required_bits

# ------------------------------------------------------------------------------------------------
# Configs and runs


@pytest.mark.parametrize("scale", SCALES)
def test_every_scale_is_valid_and_its_runs_have_the_declared_shapes(scale):
    cfg = mh.config(scale)
    runs = mh.runs(cfg)
    per_k = {k: len({mh.source_condition(k, c) for c in cfg.conditions}) for k in cfg.hops}
    assert len(runs) == sum(per_k.values()) * len(cfg.d_models) * len(cfg.d_mlps) * len(cfg.seeds)
    assert len({r.config_hash() for r in runs}) == len(runs)
    assert not any(r.task.n_hops == 1 and r.task.cot != "none" for r in runs)  # k = 1 CoT is the direct run
    for r in runs:
        assert len(r.seeds) == 1
        k, cot = r.task.n_hops, r.task.cot
        assert cot in ("none", "interleaved")
        assert r.model.n_layers == (1 if cot == "interleaved" else k)
        assert r.train.target_accuracy == cfg.recipe.target_accuracy
        if r.model.frozen_unembedding:
            assert r.model.unembed_init_std == cfg.unembed_init_std
        assert mh.condition_name(cot != "none", r.model.frozen_unembedding) in cfg.conditions


def test_config_rejects_bad_values_naming_them():
    base = mh.config("smoke")
    for change, needle in [({"scale": "huge"}, "huge"), ({"n_relations": 1}, "1"), ({"hops": (2, 1)}, "[2, 1]"),
                           ({"hops": ()}, "()"), ({"conditions": ("direct-tied",)}, "direct-tied"),
                           ({"d_models": (7,)}, "[7]"), ({"seeds": (0, 0)}, "[0, 0]"),
                           ({"probe_folds": 99}, "99"),
                           ({"bits_per_coordinate": 0.0}, "0.0")]:
        with pytest.raises(ValueError, match=re.escape(needle)):
            dataclasses.replace(base, **change)
    with pytest.raises(ValueError, match=re.escape("1.5")):  # the recipe checks its own success level
        dataclasses.replace(base.recipe, success_accuracy=1.5)
    with pytest.raises(ValueError, match="nano"):
        mh.config("nano")
    with pytest.raises(ValueError, match="cot-tied"):
        mh.run_config(base, 1, "cot-tied", 8, 8, 0)


# ------------------------------------------------------------------------------------------------
# Success and the smallest successful size


def test_majority_success_is_a_strict_majority_and_failed_runs_are_misses():
    assert mh.majority_success([1.0, 0.995, 0.5], 0.99)
    assert not mh.majority_success([1.0, 0.5], 0.99)  # a tie is not a majority
    assert not mh.majority_success([1.0, None, None], 0.99)
    assert not mh.majority_success([], 0.99)
    assert mh.majority_success([0.99], 0.99)


def test_trainable_params_leave_out_frozen_groups():
    counts = {"total": 100, "embedding": 30, "positional": 5, "unembedding": 20}
    assert mh.trainable_params(counts, frozen_unembedding=False) == 100
    assert mh.trainable_params(counts, frozen_unembedding=True) == 80
    assert mh.trainable_params(counts, frozen_unembedding=True, frozen_embeddings=True) == 45


_entry = st.fixed_dictionaries({"success": st.booleans(), "trainable_params": st.integers(1, 50),
                                "total_params": st.integers(1, 50), "d_model": st.integers(1, 8),
                                "d_mlp": st.integers(1, 8)})


_KEY = ("trainable_params", "total_params", "d_model", "d_mlp")


@settings(max_examples=200, deadline=None)
@given(st.lists(_entry, max_size=12, unique_by=lambda e: (e["d_model"], e["d_mlp"])), st.randoms(use_true_random=False))
def test_smallest_successful_follows_the_shared_rule_and_is_order_free(entries, rnd):
    best = mh.smallest_successful(entries)

    def above(e, b):  # at least as wide in both d and m
        return e["d_model"] >= b["d_model"] and e["d_mlp"] >= b["d_mlp"]

    qualifying = [b for b in entries if b["success"] and all(e["success"] for e in entries if above(e, b))]
    if not qualifying:
        assert best is None
        return
    assert best["success"] and all(e["success"] for e in entries if above(e, best))
    assert all(tuple(best[k] for k in _KEY) <= tuple(q[k] for k in _KEY) for q in qualifying)
    first = min((e for e in entries if e["success"]), key=lambda e: tuple(e[k] for k in _KEY))
    assert best["rule"]["first_success_trainable_params"] == first["trainable_params"]
    shuffled = list(entries)
    rnd.shuffle(shuffled)
    again = mh.smallest_successful(shuffled)
    assert tuple(again[k] for k in _KEY) == tuple(best[k] for k in _KEY)


def _row(k, cond, d, w, seed, acc, status="done"):
    cot, frozen = cond.startswith("cot"), cond.endswith("frozen")
    counts = {"total": 1000 + 10 * d + w, "embedding": 40 * d, "positional": 4 * d, "attention": 0, "mlp": 0,
              "layernorm": 0, "unembedding": 40 * d}
    row = {"hash": f"{k}{cond}{d}{w}{seed}", "status": status, "run_dir": "x", "config.task.n_hops": k,
           "config.task.cot": "interleaved" if cot else "none", "config.model.frozen_unembedding": frozen,
           "config.model.d_model": d, "config.model.d_mlp": w, "config.seeds": [seed]}
    if status == "done":
        row.update({"result.accuracy": [acc], "result.steps": [10]})
        row.update({f"result.n_params.{g}": v for g, v in counts.items()})
    return row


def test_size_table_counts_seeds_failed_runs_and_picks_the_smallest():
    cfg = dataclasses.replace(mh.config("smoke"), hops=(2,), conditions=("direct-frozen",), d_models=(8, 16),
                              d_mlps=(16,), seeds=(0, 1, 2))
    rows = [_row(2, "direct-frozen", 8, 16, 0, 1.0), _row(2, "direct-frozen", 8, 16, 1, 0.5),
            _row(2, "direct-frozen", 8, 16, 2, None, status="failed"),
            _row(2, "direct-frozen", 16, 16, 0, 1.0), _row(2, "direct-frozen", 16, 16, 1, 0.995)]
    table = mh.size_table(cfg, rows)
    assert [(e["d_model"], e["n_success"], e["n_runs"], e["success"]) for e in table] == [(8, 1, 3, False),
                                                                                         (16, 2, 3, True)]
    big = table[1]
    assert big["trainable_params"] == big["total_params"] - 40 * 16  # frozen readout not counted
    assert big["accuracy"] == [1.0, 0.995] and big["seeds"] == [0, 1]
    assert mh.smallest_successful(table)["d_model"] == 16


def test_k1_cot_reuses_the_direct_runs_of_the_same_readout():
    assert mh.source_condition(1, "cot-frozen") == "direct-frozen"
    assert mh.source_condition(1, "cot-learned") == "direct-learned"
    assert mh.source_condition(2, "cot-learned") == "cot-learned"
    with pytest.raises(ValueError, match="cot-tied"):
        mh.source_condition(1, "cot-tied")
    cfg = dataclasses.replace(mh.config("smoke"), hops=(1, 2), conditions=("cot-learned",), d_models=(8,),
                              d_mlps=(16,), seeds=(0,))
    assert {(r.task.n_hops, r.task.cot) for r in mh.runs(cfg)} == {(1, "none"), (2, "interleaved")}
    rows = [_row(1, "direct-learned", 8, 16, 0, 1.0), _row(2, "cot-learned", 8, 16, 0, 0.5)]
    table = mh.size_table(cfg, rows)
    assert [(e["k"], e["condition"], e["accuracy"], e["success"]) for e in table] == [
        (1, "cot-learned", [1.0], True), (2, "cot-learned", [0.5], False)]


def test_bound_check_scores_direct_models_and_leaves_cot_outside():
    cfg = dataclasses.replace(mh.config("quick"))
    entry = {"k": 3, "condition": "direct-frozen", "d_model": 8, "non_embedding_trainable_params": 1000}
    assumed = mh.bound_check(cfg, entry, 1.0)
    ref = required_bits(cfg.n_subjects, cfg.n_relations, 3, 8.0, readout="fixed")
    assert assumed["P_needed_bits"] == pytest.approx(ref.required_bits)
    assert assumed["below_gamma_L"] == (8.0 < ref.gamma_local) and assumed["below_gamma_L"]
    f32 = mh.bound_check(cfg, entry, 32.0)
    assert not f32["below_gamma_L"] and f32["P_needed_bits"] == 0.0 and f32["holds"]
    cot = mh.bound_check(cfg, {**entry, "condition": "cot-learned"}, 1.0)
    assert cot["in_class"] is False and cot["P_needed_bits"] is None


def test_theory_table_matches_the_bound_and_costs():
    t = mh.theory_table(32, 2, (1, 2, 3))
    assert [e["k"] for e in t] == [1, 2, 3]
    gl = [e["gamma_L"] for e in t]
    assert gl[0] < gl[1] < gl[2]  # the tree grows with k
    assert len({e["cot_d_model"] for e in t}) == 1  # CoT's width does not depend on k
    assert t[2]["precompute_d_model"] > t[1]["precompute_d_model"] > t[0]["precompute_d_model"]
    json.dumps(t)


# ------------------------------------------------------------------------------------------------
# The backward-code probe (docs/theory.md §6.5)


def _perms(n, k, seed):
    rng = np.random.default_rng(seed)
    return np.stack([rng.permutation(n) for _ in range(k)])


def test_backward_targets_hold_the_preimage_codes():
    maps = _perms(16, 3, 0)
    codes = mh.index_codes(16)
    y = mh.backward_targets(maps, codes)
    m = codes.shape[1]
    assert y.shape == (16, 3 * m)
    for r in range(3):
        for s in range(16):
            assert np.array_equal(y[maps[r, s], r * m:(r + 1) * m], codes[s])
    with pytest.raises(ValueError, match="bijection"):
        mh.backward_targets(np.array([[0, 0, 1]]), mh.index_codes(3))


def test_index_codes_are_distinct_signs():
    c = mh.index_codes(20)
    assert c.shape == (20, 5) and set(np.unique(c)) == {-1.0, 1.0}
    assert len({tuple(row) for row in c}) == 20


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_probe_recovers_planted_backward_codes_and_not_random_ones(seed):
    n, k, d = 64, 2, 32
    rng = np.random.default_rng(seed)
    maps = _perms(n, k, seed)
    codes = mh.index_codes(n)
    planted = mh.backward_targets(maps, codes) @ rng.normal(size=(k * codes.shape[1], d))
    planted += 0.3 * rng.normal(size=planted.shape)
    hit = mh.backward_code_probe(planted, maps, codes, seed=seed)
    assert hit.metric == "bit_accuracy" and hit.beats_control and hit.score > 0.95
    assert abs(hit.control_mean - 0.5) < 0.08
    miss = mh.backward_code_probe(rng.normal(size=(n, d)), maps, codes, seed=seed)
    assert not miss.beats_control and abs(miss.score - 0.5) < 0.1
    # A forward code in the readout (u_a = A c(a), the selector's readout) is not a backward code.
    forward = codes @ rng.normal(size=(codes.shape[1], d))
    assert not mh.backward_code_probe(forward, maps, codes, seed=seed).beats_control


def test_probe_with_real_codes_uses_r2():
    n, k, d = 48, 3, 24
    rng = np.random.default_rng(5)
    maps = _perms(n, k, 5)
    codes = rng.normal(size=(n, 4))
    planted = mh.backward_targets(maps, codes) @ rng.normal(size=(k * 4, d))
    hit = mh.backward_code_probe(planted, maps, codes)
    assert hit.metric == "r2" and hit.score > 0.9 and hit.beats_control
    assert hit.control_mean < 0.1
    assert not mh.backward_code_probe(rng.normal(size=(n, d)), maps, codes).beats_control


def test_probe_flags_the_meet_in_the_middle_readout_and_not_the_selector():
    mim = build_construction("meet-in-middle", 64, 3)
    u = mh.readout_rows(mim.model, 64)
    assert mh.backward_code_probe(u, mim.world.maps, mh.index_codes(64)).beats_control
    sel = build_construction("selector", 64, 3)
    u = mh.readout_rows(sel.model, 64)
    assert not mh.backward_code_probe(u, sel.world.maps, mh.index_codes(64)).beats_control


def test_probe_rejects_bad_input():
    maps = _perms(8, 2, 0)
    with pytest.raises(ValueError, match="rows"):
        mh.backward_code_probe(np.zeros((7, 4)), maps, mh.index_codes(8))
    with pytest.raises(ValueError, match="n_folds"):
        mh.backward_code_probe(np.zeros((8, 4)), maps, mh.index_codes(8), n_folds=1)
    with pytest.raises(ValueError, match="metric"):
        mh.probe_metric(np.zeros((2, 2)), np.zeros((2, 2)), "auc")
