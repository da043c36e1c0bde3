"""frozen_control: the majority/monotone rule, the fits and their seed bootstrap, configs, analysis and plots."""

import dataclasses
import json
import math
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from georecall.experiments import frozen_control as fc
from georecall.experiments.base import save_result

# ---------------------------------------------------------------------------------------------------
# The majority and needed-size rules


def test_majority_is_strict():
    assert fc.is_majority(2, 3) and fc.is_majority(2, 2) and fc.is_majority(3, 5)
    assert not fc.is_majority(1, 2) and not fc.is_majority(1, 3) and not fc.is_majority(0, 1)
    with pytest.raises(ValueError, match="4/3"):
        fc.is_majority(4, 3)


def test_needed_size_threshold_and_statuses():
    sizes = [8, 16, 32, 64]
    assert fc.needed_size(sizes, [0, 1, 3, 3], [3] * 4) == (32, "bracketed")
    assert fc.needed_size(sizes, [2, 3, 3, 3], [3] * 4) == (8, "censored_low")
    assert fc.needed_size(sizes, [3, 3, 3, 1], [3] * 4) == (None, "censored_high")
    # A lucky small width followed by a failure does not count; first_success still reports it.
    assert fc.needed_size(sizes, [2, 1, 2, 3], [3] * 4) == (32, "bracketed")
    assert fc.first_success(sizes, [2, 1, 2, 3], [3] * 4) == 8
    assert fc.first_success(sizes, [0, 0, 1, 1], [3] * 4) is None


def test_needed_size_rejects_bad_input():
    with pytest.raises(ValueError, match="one length"):
        fc.needed_size([1, 2], [1], [1, 1])
    with pytest.raises(ValueError, match="distinct"):
        fc.needed_size([4, 4], [1, 1], [1, 1])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 3), min_size=1, max_size=8), st.randoms(use_true_random=False))
def test_needed_size_property(successes, rnd):
    sizes = [2 ** i for i in range(len(successes))]
    totals = [3] * len(sizes)
    size, status = fc.needed_size(sizes, successes, totals)
    ok = [fc.is_majority(s, 3) for s in successes]
    if size is None:
        assert status == "censored_high" and not ok[-1]
    else:
        j = sizes.index(size)
        assert all(ok[j:])  # every size from the need on passes
        assert (j == 0) == (status == "censored_low")
        if j > 0:
            assert not ok[j - 1]  # and the one just below fails
    order = list(range(len(sizes)))
    rnd.shuffle(order)  # the order the cells are listed in does not matter
    assert fc.needed_size([sizes[i] for i in order], [successes[i] for i in order], totals) == (size, status)


# ---------------------------------------------------------------------------------------------------
# Fits


def test_fit_line_exact_and_scaling():
    x = [16.0, 32.0, 64.0, 128.0]
    fit = fc.fit_line(x, [3 + 0.25 * v for v in x])
    assert fit["slope"] == pytest.approx(0.25) and fit["intercept"] == pytest.approx(3)
    assert fit["stderr"] == pytest.approx(0, abs=1e-9) and fit["r2"] == pytest.approx(1)
    rng = np.random.default_rng(0)
    y = [0.25 * v + rng.normal(0, 2) for v in x]
    a, b = fc.fit_line(x, y), fc.fit_line(x, [10 * v for v in y])
    assert b["slope"] == pytest.approx(10 * a["slope"]) and b["stderr"] == pytest.approx(10 * a["stderr"])
    assert a["stderr"] > 0
    # The OLS standard error agrees with the textbook formula computed independently.
    xa, ya = np.array(x), np.array(y)
    beta, alpha = np.polyfit(xa, ya, 1)
    s2 = ((ya - alpha - beta * xa) ** 2).sum() / (len(x) - 2)
    assert a["stderr"] == pytest.approx(math.sqrt(s2 / ((xa - xa.mean()) ** 2).sum()))
    assert fc.fit_line([1, 2], [1, 5])["stderr"] is None
    with pytest.raises(ValueError, match="distinct x"):
        fc.fit_line([3, 3, 3], [1, 2, 3])


def test_fit_loglog_recovers_the_exponent():
    x = [32, 64, 128, 512]
    fit = fc.fit_loglog(x, [3 * v ** 1.5 for v in x])
    assert fit["slope"] == pytest.approx(1.5) and math.exp(fit["intercept"]) == pytest.approx(3)
    with pytest.raises(ValueError, match="positive"):
        fc.fit_loglog([1, 2], [0, 1])


def _outcomes(nk, sizes, need_per_seed):
    """A point whose seed j succeeds exactly at sizes >= need_per_seed[j]."""
    return fc.PointOutcomes(x=float(nk), sizes=tuple(sizes),
                            success=tuple(tuple(s >= need for need in need_per_seed) for s in sizes))


def test_bootstrap_degenerate_when_seeds_agree_and_spreads_when_they_do_not():
    sizes = [4, 8, 16, 32, 64, 128]
    same = [_outcomes(nk, sizes, [nk // 4] * 3) for nk in (32, 64, 128, 256)]
    out = fc.slope_with_spread(same, 200, 0)
    assert out["slope"] == pytest.approx(0.25) and out["n_points"] == 4
    assert out["ci95"] == pytest.approx([0.25, 0.25]) and out["boot_stderr"] == pytest.approx(0)
    rnd = random.Random(1)
    mixed = [_outcomes(nk, sizes, [nk // rnd.choice([2, 4, 8]) for _ in range(3)]) for nk in (32, 64, 128, 256)]
    a, b = fc.slope_with_spread(mixed, 300, 7), fc.slope_with_spread(mixed, 300, 7)
    assert a == b  # deterministic given the bootstrap seed
    assert a["ci95"][0] <= a["ci95"][1] and a["boot_stderr"] > 0
    log = fc.slope_with_spread(same, 50, 0, log=True)
    assert log["slope"] == pytest.approx(1.0)


def test_slope_is_none_without_two_bracketed_points():
    sizes = [4, 8]
    pts = [_outcomes(32, sizes, [4, 4, 4]), _outcomes(64, sizes, [100, 100, 100])]  # censored low, high
    out = fc.slope_with_spread(pts, 10, 0)
    assert out["slope"] is None and out["ci95"] is None and out["n_points"] == 0


# ---------------------------------------------------------------------------------------------------
# Configs and runs


def test_sqrt2_grid():
    assert fc.sqrt2_grid(4, 64) == (4, 6, 8, 11, 16, 23, 32, 45, 64)
    with pytest.raises(ValueError):
        fc.sqrt2_grid(5, 2)


def test_configs_validate():
    with pytest.raises(ValueError, match="'huge'"):
        fc.config("huge")
    quick = fc.config("quick")
    with pytest.raises(ValueError, match="seeds"):
        dataclasses.replace(quick, seeds=(0,))
    with pytest.raises(ValueError, match=r"\(N, K\) = \(65536, 8\)"):
        dataclasses.replace(quick, points=((65536, 8),))  # no grid width within the window
    with pytest.raises(ValueError, match="width_window"):
        dataclasses.replace(quick, width_window=(0.5, 0.1))
    with pytest.raises(ValueError, match="learned_d_grid"):
        dataclasses.replace(quick, learned_d_grid=(8, 4))


@pytest.mark.parametrize("scale", ["smoke", "quick", "paper"])
def test_runs_are_single_seed_and_frozen_where_they_should_be(scale):
    cfg = fc.config(scale)
    runs = fc.runs(cfg)
    assert all(len(r.seeds) == 1 for r in runs)
    assert len({r.config_hash() for r in runs}) == len(runs)
    n_frozen = sum(len(cfg.widths_for(*p)) for p in cfg.points) * len(cfg.seeds)
    assert len(runs) == n_frozen + len(cfg.points) * len(cfg.learned_d_grid) * len(cfg.seeds)
    for r in runs:
        m = r.model
        assert m.frozen_embeddings == m.frozen_unembedding
        if m.frozen_embeddings:
            assert m.d_model == cfg.d_model and m.unembed_init_std == pytest.approx(cfg.d_model ** -0.5)
        else:
            assert m.d_mlp == cfg.learned_mlp_ratio * m.d_model
        assert r.train.target_accuracy == cfg.recipe.target_accuracy and r.train.batch_size is None
        assert m.n_layers == 1 and r.task.n_hops == 1


# ---------------------------------------------------------------------------------------------------
# Analysis and plots on synthetic rows (no training)


def _n_params(d, w, n_vocab, n_ctx=2):
    att, mlp, ln = 4 * d * d + 4 * d, 2 * d * w + w + d, 6 * d
    emb, pos, unemb = n_vocab * d, n_ctx * d, n_vocab * d + n_vocab
    return {"embedding": emb, "positional": pos, "attention": att, "mlp": mlp, "layernorm": ln,
            "unembedding": unemb, "total": emb + pos + att + mlp + ln + unemb}


def _rows(cfg, frozen_need, learned_need, lucky=None, failed=None):
    """Store-like rows: a frozen run succeeds iff d_mlp >= frozen_need(NK), a learned one iff d >= learned_need."""
    rows = []
    for r in fc.runs(cfg):
        n, k, seed = r.task.n_subjects, r.task.n_relations, r.seeds[0]
        frozen = r.model.frozen_embeddings
        size = r.model.d_mlp if frozen else r.model.d_model
        ok = size >= (frozen_need(n * k) if frozen else learned_need)
        if lucky is not None and (frozen, n, k, size, seed) == lucky:
            ok = True
        row = {"hash": r.config_hash(), "status": "done", "error": None, "run_dir": "x",
               "config.seeds": [seed], "config.model.frozen_embeddings": frozen,
               "config.model.d_mlp": r.model.d_mlp, "config.model.d_model": r.model.d_model,
               "config.task.n_subjects": n, "config.task.n_relations": k,
               "result.accuracy": [1.0 if ok else 0.5], "result.steps": [100 if ok else cfg.steps]}
        row.update({f"result.n_params.{g}": v for g, v in _n_params(r.model.d_model, r.model.d_mlp, n + k).items()})
        if failed is not None and (frozen, n, k, size, seed) == failed:
            row = {k_: v for k_, v in row.items() if not k_.startswith("result.")} | {"status": "failed",
                                                                                       "error": "boom"}
        rows.append(row)
    return rows


@pytest.fixture
def small_cfg():
    return dataclasses.replace(fc.config("quick"), points=((16, 2), (32, 2), (64, 2), (32, 4)),
                               learned_d_grid=(4, 6, 8), n_bootstrap=50)


def test_analyze_recovers_a_linear_need(small_cfg, tmp_path):
    # Seed 0 is lucky at a too-small width of N=32, K=2; a member of N=64 crashed: neither moves the need.
    rows = _rows(small_cfg, lambda nk: nk / 4, 6, lucky=(True, 32, 2, 8, 0), failed=(True, 64, 2, 32, 1))
    res = fc.analyze(small_cfg, rows, tmp_path)
    need = {(p["N"], p["K"]): p for p in res.points if p["condition"] == "frozen"}
    assert need[(16, 2)]["needed_size"] == 8 and need[(16, 2)]["status"] == "bracketed"
    assert need[(32, 2)]["needed_size"] == 16
    assert need[(64, 2)]["needed_size"] == 32 and need[(32, 4)]["needed_size"] == 32
    assert res.width_slope["slope"] == pytest.approx(0.25) and res.width_slope["n_points"] == 4
    lo, hi = res.width_slope["ci95"]  # the crashed member moves some replicates' need at N=64 up
    assert lo == pytest.approx(0.25) and hi > 0.25
    assert res.width_exponent["slope"] == pytest.approx(1.0)
    assert res.n_failed_runs == 1 and res.n_runs == len(rows)
    learned = [p for p in res.points if p["condition"] == "learned"]
    assert all(p["needed_size"] == 6 and p["status"] == "bracketed" for p in learned)
    # Frozen: trainable = non-embedding; learned: trainable = total.
    f = need[(64, 2)]
    assert f["params_trainable"] == f["params_non_embedding"] == 4 * 256 + 64 + 2 * 16 * 32 + 32 + 16 + 96
    assert all(p["params_trainable"] == p["params_total"] for p in learned)
    assert res.param_exponent["learned"]["slope"] == pytest.approx(0, abs=1e-9)  # same d everywhere
    assert res.param_exponent["frozen"]["slope"] > 0.3
    assert all(c["ratio_non_embedding"] > 1 for c in res.comparison)
    assert "width_slope" in fc.summarize(res)


def test_plot_rebuilds_from_saved_files(small_cfg, tmp_path):
    res = fc.analyze(small_cfg, _rows(small_cfg, lambda nk: nk / 4, 6), tmp_path)
    save_result(res, tmp_path)
    figs = fc.plot(tmp_path)
    names = sorted(f.name for f in figs)
    assert names == sorted(f"{n}.{ext}" for n in fc.FIGURES for ext in ("png", "csv"))
    assert all(f.stat().st_size > 0 for f in figs)
    header = (tmp_path / "params_needed_vs_nk.csv").read_text().splitlines()[0]
    assert "params_non_embedding" in header and "needed_size" in header
    saved = json.loads((tmp_path / "result.json").read_text())["payload"]
    assert saved["schema_version"] == fc.SCHEMA_VERSION and saved["width_slope"]["slope"] == pytest.approx(0.25)
    for f in figs:
        f.unlink()
    assert sorted(fc.plot(tmp_path)) == sorted(figs)
