"""multihop experiment: configs and runs, the adaptive search on synthetic outcomes, the seed bootstrap,
the bound in one unit, and the probes (forward tree and backward codes)."""

from __future__ import annotations

import dataclasses
import json
import re

import numpy as np
import pytest

from georecall.constructions import build_construction
from georecall.experiments import multihop as mh
from georecall.experiments.base import SCALES
from georecall.theory import construction_cost, required_bits

# ------------------------------------------------------------------------------------------------
# Configs and runs


@pytest.mark.parametrize("scale", SCALES)
def test_every_scale_is_valid_and_its_first_stage_starts_every_search_at_one_rung(scale):
    cfg = mh.config(scale)
    first = mh.runs(cfg)
    assert len({r.config_hash() for r in first}) == len(first) == len(mh.search_cells(cfg)) * len(cfg.seeds)
    start_d = cfg.ladder[cfg.search_start - 1]
    for r in first:
        assert len(r.seeds) == 1 and r.model.d_model == start_d and r.model.d_mlp == cfg.mlp_ratio * start_d
        assert r.train.target_accuracy == cfg.recipe.target_accuracy
        if r.task.n_hops == 1:  # k = 1: every frozen condition is the direct-frozen run
            assert r.task.cot == "none" and r.model.n_layers == 1
    if scale != "smoke":
        assert max(cfg.subjects) / min(cfg.subjects) >= 8 and tuple(cfg.hops) == (1, 2, 3)


@pytest.mark.parametrize("scale", ["quick", pytest.param("paper", marks=pytest.mark.slow)])  # paper: 8 s of models
def test_the_range_reaches_above_every_construction(scale):
    cfg = mh.config(scale)
    for n, k, c in mh.cells(cfg):
        top = mh._counts_of(mh.run_config(cfg, n, k, mh.source_condition(k, c), len(cfg.ladder), 0))["total"]
        biggest = max(construction_cost(name, n, cfg.n_relations, k).total for name in mh.CONSTRUCTION_NAMES)
        assert top > biggest, (n, k, c, top, biggest)


def test_conditions_build_the_models_they_name():
    cfg = mh.config("quick")
    for cond in mh.CONDITION_NAMES:
        r = mh.run_config(cfg, 16, 3, cond, 2, 0)
        c = mh.CONDITIONS[cond]
        assert r.model.n_layers == (1 if c.one_layer else 3)
        assert r.task.cot == ("interleaved" if c.cot else "none")
        assert r.task.cot_loss == ("final" if cond == "cot-final" else "chain")
        assert r.model.frozen_unembedding == c.frozen_readout
    assert mh.source_condition(1, "cot-final") == "direct-frozen" == mh.source_condition(1, "direct1-frozen")
    assert mh.source_condition(1, "direct-learned") == "direct-learned"
    assert mh.condition_hops(cfg, "direct-learned") == (2,)
    assert {c for _, k, c in mh.cells(cfg) if k == 1} == {"direct-frozen", "direct1-frozen", "cot-frozen", "cot-final"}


def test_config_rejects_bad_values_naming_them():
    base = mh.config("smoke")
    for change, needle in [({"scale": "huge"}, "huge"), ({"n_relations": 1}, "1"), ({"hops": (2, 1)}, "[2, 1]"),
                           ({"hops": ()}, "()"), ({"conditions": ("direct-tied",)}, "direct-tied"),
                           ({"ladder": (7,)}, "[7]"), ({"seeds": (0, 0)}, "[0, 0]"), ({"search_start": 9}, "9"),
                           ({"learned_hops": (5,)}, "(5,)"), ({"interval_level": 1.5}, "1.5"),
                           ({"bits_per_number": (0.0,)}, "[0.0]"), ({"subjects": (16, 8)}, "[16, 8]")]:
        with pytest.raises(ValueError, match=re.escape(needle)):
            dataclasses.replace(base, **change)
    with pytest.raises(ValueError, match="nano"):
        mh.config("nano")
    with pytest.raises(ValueError, match="cot-tied"):
        mh.run_config(base, 8, 1, "cot-tied", 1, 0)


def test_final_answer_loss_keeps_the_chain_as_input_and_supervises_the_last_hop_only():
    from georecall.config import TaskConfig, config_hash
    from georecall.tasks import make_queries, world_for

    task = TaskConfig(n_subjects=8, n_relations=2, n_hops=3, cot="interleaved")
    final = dataclasses.replace(task, cot_loss="final")
    w = world_for(task, 0)
    a, b = make_queries(w, task), make_queries(w, final)
    assert np.array_equal(a.tokens.numpy(), b.tokens.numpy())  # the intermediate subjects are still inputs
    assert b.positions == a.positions[-1:] and b.hops == (3,)
    assert np.array_equal(b.targets.numpy(), a.targets.numpy()[:, -1:])
    assert config_hash(mh.run_config(mh.config("smoke"), 8, 2, "cot-frozen", 1, 0)) != config_hash(
        mh.run_config(mh.config("smoke"), 8, 2, "cot-final", 1, 0))
    with pytest.raises(ValueError, match="cot_loss"):
        TaskConfig(cot_loss="final")  # a direct query has one answer


# ------------------------------------------------------------------------------------------------
# The search on synthetic outcomes


def _row(run, acc):
    counts = {"total": 1000 + run.model.d_model * 100, "embedding": 20 * run.model.d_model, "positional": 0,
              "attention": 0, "mlp": 0, "layernorm": 0, "unembedding": 20 * run.model.d_model}
    return {"hash": run.config_hash(), "status": "done" if acc is not None else "failed", "run_dir": "x",
            "config.seeds": [run.seeds[0]], "result.accuracy": [acc], "result.steps": [10],
            **{f"result.n_params.{g}": v for g, v in counts.items()}}


def _drive(cfg, outcome):
    """Run the staged search with outcome(n, k, cond, rung, seed) -> accuracy; return the rows and the stages."""
    rows, batch, stages = [], mh.runs(cfg), 0
    while batch:
        stages += 1
        for r in batch:
            n, k, rung, s = r.task.n_subjects, r.task.n_hops, cfg.ladder.index(r.model.d_model) + 1, r.seeds[0]
            cond = next(c for c in cfg.conditions
                        if mh.run_config(cfg, n, k, c, rung, s).config_hash() == r.config_hash())
            rows.append(_row(r, outcome(n, k, cond, rung, s)))
        batch = mh.next_runs(cfg, rows, None)
        assert stages < 30
    return rows, stages


def _cfg(**kw):
    base = dict(subjects=(8,), hops=(2,), conditions=("direct-frozen",), ladder=tuple(range(2, 42, 2)),
                seeds=(0, 1, 2), search_start=4, search_max_tries=20)
    return dataclasses.replace(mh.config("smoke"), **{**base, **kw})


@pytest.mark.parametrize("threshold", [1, 2, 3, 4, 5, 7, 12, 19, 20])
def test_the_search_finds_a_planted_threshold_exactly(threshold):
    cfg = _cfg()
    # seed 2 always fails: the majority (2 of 3) decides; a failed run (None) counts as a miss
    rows, _ = _drive(cfg, lambda n, k, c, rung, s: (None if s == 2 else (1.0 if rung >= threshold else 0.4)))
    path = mh.search_path(cfg, 8, 2, "direct-frozen", rows)
    best = mh.smallest_rung(path.works, len(cfg.ladder))
    assert path.next_rung is None and best["rung"] == threshold
    assert best["bracketed"] == (threshold > 1) and best["status"] == ("bracketed" if threshold > 1 else "censored_low")
    assert (best["reason"] is None) == (threshold > 1)
    assert len(path.works) <= 2 + 2 * int(np.log2(len(cfg.ladder)))  # doubling then bisection, not a scan
    cell = mh.cell_entry(cfg, 8, 2, "direct-frozen", mh._by_hash(rows), None, {"max_construction_params": 0})
    assert cell["smallest"]["rung"] == threshold and cell["smallest"]["d_model"] == cfg.ladder[threshold - 1]


def test_unbracketed_cells_report_range_and_budget():
    cfg = _cfg()
    rows, _ = _drive(cfg, lambda *a: 0.1)  # nothing works: above the range
    high = mh.cell_entry(cfg, 8, 2, "direct-frozen", mh._by_hash(rows), None, {"max_construction_params": 0})
    assert high["smallest"] is None and high["smallest_status"] == "censored_high" and not high["smallest_bracketed"]
    assert high["smallest_reason"].startswith("range") and max(t["rung"] for t in high["tried"]) == len(cfg.ladder)
    assert high["interval"]["hi"] is None and high["interval"]["p_above_range"] == 1.0
    small = _cfg(search_max_tries=2)
    rows, _ = _drive(small, lambda n, k, c, rung, s: 1.0 if rung >= 11 else 0.0)
    cut = mh.cell_entry(small, 8, 2, "direct-frozen", mh._by_hash(rows), None, {"max_construction_params": 0})
    assert len(cut["tried"]) == 2 and cut["smallest_status"] == "budget" and not cut["smallest_bracketed"]
    assert cut["smallest_reason"].startswith("budget")


def test_the_same_start_is_used_for_every_cell_and_outcomes_need_every_seed():
    cfg = _cfg(subjects=(8, 16), hops=(1, 2), conditions=("direct-frozen", "cot-frozen"))
    assert {r.model.d_model for r in mh.runs(cfg)} == {cfg.ladder[cfg.search_start - 1]}
    run0 = mh.run_config(cfg, 8, 2, "cot-frozen", cfg.search_start, 0)
    partial = [_row(run0, 1.0)]  # seeds 1 and 2 have no row yet: the rung is still pending
    path = mh.search_path(cfg, 8, 2, "cot-frozen", partial)
    assert path.next_rung == cfg.search_start and not path.works


# ------------------------------------------------------------------------------------------------
# The seed bootstrap


def test_bootstrap_interval_widens_only_with_seed_disagreement():
    agree = mh.bootstrap_smallest({3: [False] * 3, 4: [True] * 3, 5: [True] * 3})
    assert (agree["lo"], agree["hi"], agree["n_draws"]) == (4, 4, 27)
    split = mh.bootstrap_smallest({3: [False] * 3, 4: [True, True, False], 5: [True] * 3})
    # rung 4 works in a resample when >= 2 of its 3 draws come from seeds 0, 1: probability 20/27
    assert (split["lo"], split["hi"]) == (4, 5)
    assert mh.bootstrap_smallest({4: [True, True, False]}, level=0.4)["hi"] == 4  # 7/27 of draws fail it
    assert mh.bootstrap_smallest({4: [True, True, False]}, level=0.6)["hi"] is None
    top = mh.bootstrap_smallest({4: [False, False, True], 5: [True, False, False]})
    assert top["hi"] is None and top["p_above_range"] > 0.5


# ------------------------------------------------------------------------------------------------
# The bound in one unit


def test_bound_comparison_is_in_one_unit_and_flags_a_planted_model_below_it():
    planted = mh.bound_comparison(64, 2, 2, d_model=2, p_params=10, bits=1.0)
    ref = required_bits(64, 2, 2, 2.0)
    assert planted["required_bits"] == pytest.approx(ref.required_bits) and planted["P_have_bits"] == 10.0
    assert planted["bites"] and planted["below"] and planted["ratio"] == pytest.approx(10 / ref.required_bits)
    at32 = mh.bound_comparison(64, 2, 2, d_model=2, p_params=10, bits=32.0)
    assert at32["embedding_bits"] == 64.0 and at32["P_have_bits"] == 320.0  # both sides at 32 bits per number
    b_star = mh.break_even_bits(64, 2, 2, 2, 10)
    assert 1.0 < b_star
    for b in (0.5 * b_star, 0.99 * b_star, 1.01 * b_star, 2 * b_star):
        assert mh.bound_comparison(64, 2, 2, 2, 10, b)["below"] == (b < b_star)
    big = mh.bound_comparison(64, 2, 2, d_model=8, p_params=5000, bits=1.0)
    assert big["bites"] and not big["below"]
    # P = 0: the bound holds only once b d reaches gamma_L (23.9 bits at N = 64, K = 2, k = 2)
    assert mh.break_even_bits(64, 2, 2, 1, 0) == pytest.approx(required_bits(64, 2, 2, 0.0).gamma_local, rel=1e-4)
    assert mh.break_even_bits(64, 2, 2, 1, 0, max_bits=16.0) is None
    entries = [{"break_even_bits": b_star}, {"break_even_bits": 0.01}, {"break_even_bits": None}]
    assert mh.models_below(entries, 1.0) == [entries[0], entries[2]]


def test_bound_entry_counts_the_fact_dependent_parameters_and_the_learned_readout_both_ways():
    cfg = mh.config("quick")
    counts = mh._counts_of(mh.run_config(cfg, 16, 2, "direct-learned", 3, 0))
    e = mh.bound_entry(cfg, 16, 2, "direct-learned", 3, 0, counts)
    d = cfg.ladder[2]
    assert e["fact_params"] == counts["total"] - 16 * d
    assert e["fixed_readout_fact_params"] == counts["total"] - 16 * d - counts["unembedding"]
    assert [c["bits"] for c in e["comparisons"]] == list(cfg.bits_per_number)
    assert not e["in_class"] and e["readout"] == "learned"
    frozen = mh._counts_of(mh.run_config(cfg, 16, 2, "direct-frozen", 3, 0))
    f = mh.bound_entry(cfg, 16, 2, "direct-frozen", 3, 0, frozen)
    assert f["in_class"] and "fixed_readout_comparisons" not in f
    s = mh.bound_summary([e, f], cfg.bits_per_number)
    assert s["in_class"]["n_models"] == 1 and s["learned_vs_fixed_bound"]["n_models"] == 1
    json.dumps(s, allow_nan=False)


def test_theory_table_matches_the_bound_and_costs():
    t = mh.theory_table(32, 2, (1, 2, 3))
    assert [e["k"] for e in t] == [1, 2, 3]
    gl = [e["gamma_L"] for e in t]
    assert gl[0] < gl[1] < gl[2]  # the tree grows with k
    assert len({e["cot_d_model"] for e in t}) == 1  # CoT's width does not depend on k
    assert t[2]["precompute_d_model"] > t[1]["precompute_d_model"] > t[0]["precompute_d_model"]
    assert all(e["max_construction_params"] >= e["kv_memory_total_params"] for e in t)
    curve = mh.bound_curve(32, 2, 2, (2, 8, 64), 1.0)
    assert curve[0]["min_fact_params"] > curve[1]["min_fact_params"] >= curve[2]["min_fact_params"] == 0.0
    json.dumps(t)


# ------------------------------------------------------------------------------------------------
# The probes


def _perms(n, k, seed):
    rng = np.random.default_rng(10_000 + seed)  # not the probes' stream: a shuffle must not replay a map
    return np.stack([rng.permutation(n) for _ in range(k)])


def test_forward_targets_compose_the_maps():
    maps = _perms(16, 2, 0)
    codes = mh.index_codes(16)
    y = mh.forward_targets(maps, codes, 2)
    m = codes.shape[1]
    assert y.shape == (16, 4 * m)
    for s in range(16):
        for i, (r1, r2) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
            assert np.array_equal(y[s, i * m:(i + 1) * m], codes[maps[r2, maps[r1, s]]])
    with pytest.raises(ValueError, match="bijection"):
        mh.forward_targets(np.array([[0, 0, 1]]), mh.index_codes(3), 1)


@pytest.mark.parametrize("seed", [0, 1])
def test_forward_probe_finds_a_planted_tree_and_is_at_chance_on_a_control(seed):
    n, k, d = 64, 2, 48
    rng = np.random.default_rng(seed)
    maps = _perms(n, k, seed)
    codes = mh.index_codes(n)
    tree = np.concatenate([mh.forward_targets(maps, codes, 1), mh.forward_targets(maps, codes, 2)], axis=1)
    planted = tree @ rng.normal(size=(tree.shape[1], d)) + 0.3 * rng.normal(size=(n, d))
    for depth in (1, 2):
        hit = mh.forward_tree_probe(planted, maps, codes, depth, seed=seed)
        # 36 code columns in 48 noisy dims, fit on 48 subjects: measured 0.93-0.95 held out
        assert hit.metric == "bit_accuracy" and hit.beats_control and hit.score > 0.9
        assert abs(hit.control_mean - 0.5) < 0.08
    miss = mh.forward_tree_probe(rng.normal(size=(n, d)), maps, codes, 2, seed=seed)
    assert not miss.beats_control and abs(miss.score - 0.5) < 0.1
    # A one-hop embedding (the selector's) holds depth 1, not the depth-2 tree.
    one_hop = mh.forward_targets(maps, codes, 1) @ rng.normal(size=(k * codes.shape[1], d))
    assert mh.forward_tree_probe(one_hop, maps, codes, 1, seed=seed).beats_control
    assert not mh.forward_tree_probe(one_hop, maps, codes, 2, seed=seed).beats_control


def test_forward_probe_with_learned_codes_uses_r2():
    n, k, d = 48, 2, 40
    rng = np.random.default_rng(5)
    maps = _perms(n, k, 5)
    codes = rng.normal(size=(n, 4))  # a learned code book (e.g. the model's own readout rows)
    planted = mh.forward_targets(maps, codes, 2) @ rng.normal(size=(k ** 2 * 4, d))
    hit = mh.forward_tree_probe(planted, maps, codes, 2)
    assert hit.metric == "r2" and hit.score > 0.9 and hit.beats_control
    assert not mh.forward_tree_probe(rng.normal(size=(n, d)), maps, codes, 2).beats_control


def test_forward_probe_sees_the_precompute_construction_and_not_the_selector_tree():
    pre = build_construction("precompute", 64, 2, 2)
    e = mh.subject_embeddings(pre.model, 64)
    assert mh.forward_tree_probe(e, pre.world.maps, mh.index_codes(64), 2).beats_control
    sel = build_construction("selector", 64, 2)
    e = mh.subject_embeddings(sel.model, 64)
    assert mh.forward_tree_probe(e, sel.world.maps, mh.index_codes(64), 1).beats_control
    assert not mh.forward_tree_probe(e, sel.world.maps, mh.index_codes(64), 2).beats_control


def test_backward_probe_flags_the_meet_in_the_middle_readout_and_not_the_selector():
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
        mh.forward_tree_probe(np.zeros((8, 4)), maps, mh.index_codes(8), 1, n_folds=1)
    with pytest.raises(ValueError, match="metric"):
        mh.probe_metric(np.zeros((2, 2)), np.zeros((2, 2)), "auc")
    with pytest.raises(ValueError, match="depth"):
        mh.forward_targets(maps, mh.index_codes(8), 0)


# ------------------------------------------------------------------------------------------------
# A smoke run end to end


@pytest.mark.slow  # 4-10 s here (training, greedy scoring, probes, four figures); the fast tier runs the smoke
# scale end to end in tests/fast/test_experiments.py
def test_smoke_run_searches_decides_and_draws_from_the_payload(tmp_path):
    import csv

    from georecall.experiments.base import result_dir, run_experiment
    from georecall.experiments.claims import VERDICTS

    done = run_experiment(mh, "smoke", tmp_path)
    p = json.loads(json.dumps(done.envelope["payload"]))
    cfg = mh.config("smoke")
    assert p["schema_version"] == mh.SCHEMA_VERSION and len(p["cells"]) == len(mh.cells(cfg))
    for cell in p["cells"]:
        assert cell["smallest_status"] in ("bracketed", "censored_low", "censored_high", "budget")
        assert cell["smallest_bracketed"] == (cell["smallest_reason"] is None)
        assert isinstance(cell["range_covers_constructions"], bool)  # the smoke ladder is too short to cover them
        if cell["condition"] == "cot-final" and cell["k"] >= 2:  # judged by greedy generation
            assert all(t["greedy_final"][0] is not None for t in cell["tried"])
    assert {c["id"]: c["verdict"] in VERDICTS for c in done.envelope["claims"]} == {"C12": True}
    assert all(not e["in_class"] or "fixed_readout_comparisons" not in e for e in p["bound"])
    names = {f.name for f in done.figures}
    assert {f"{n}.png" for n in mh.multihop_plots.FIGURES} <= names
    with open(result_dir(tmp_path, "multihop", "smoke") / "capacity_depth.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    for name in ("kv_memory", "precompute", "cot"):  # theory lines span every tested k
        assert {r["k"] for r in rows if r["series"] == f"construction_{name}_total_params"} == {"1", "2"}
    assert mh.summarize(done.result).startswith("multihop (smoke)")
