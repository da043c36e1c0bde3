"""The additive fit e_s ≈ b + Σ_r M_r a(f_r(s)) (georecall.analysis.additive): exact on the constructions and
localised in their subject blocks, ≈ 0 on controls, right on planted superpositions and fitted codes."""

from __future__ import annotations

import numpy as np
import pytest
from analysis_cases import CASES, K, N, construction, planted

from georecall.analysis.additive import (
    AdditiveFit,
    AdditiveScore,
    additive_r2,
    additive_with_control,
    codes_r2,
    fit_additive,
    fit_codes,
)
from georecall.analysis.vectors import attribute_vectors, subject_embeddings
from georecall.tasks import make_world


def planted_codes(n=N, k_rel=K, d=24, c=2, noise=0.02, seed=1):
    rng = np.random.default_rng(seed)
    world = make_world(n, k_rel, seed=seed)
    z = rng.standard_normal((n, c))
    m = rng.standard_normal((k_rel, d, c))
    return sum(z[world.maps[r]] @ m[r].T for r in range(k_rel)) + noise * rng.standard_normal((n, d)), world


@pytest.mark.parametrize("name", list(CASES))
def test_constructions_are_exactly_additive_and_controls_are_not(name):
    c = construction(name)
    e = subject_embeddings(c.model, c.world)
    attr = attribute_vectors(c.model, c.world, "unembedding")
    res = additive_with_control(e, c.world.maps, attr, seed=0)
    assert isinstance(res.true, AdditiveScore)
    assert res.true.r2 >= 0.999 and res.true.in_sample_r2 >= 0.999
    assert res.true.n_folds == 5 and res.true.n_subjects == N and len(res.true.fold_alphas) == 5
    assert res.random_bijection.r2 <= 0.1


@pytest.mark.parametrize("name", ["selector", "attention-only", "disjoint-mlp"])
def test_each_relation_writes_only_its_subject_block(name):
    """Ground truth from ``c.anatomy``: M_r maps a(f_r(s)) into block S_r and nowhere else."""
    c = construction(name)
    e = subject_embeddings(c.model, c.world)
    attr = attribute_vectors(c.model, c.world)
    fit = fit_additive(e, c.world.maps, attr, kind="unembedding")
    assert fit.kind == "unembedding" and fit.maps.shape == (K, e.shape[1], attr.shape[2])
    for r, block in enumerate(c.anatomy.subject_blocks):
        outside = np.ones(e.shape[1], dtype=bool)
        outside[block] = False
        assert np.abs(fit.maps[r][outside]).max() < 1e-4
        assert np.abs(fit.maps[r][block]).max() > 0.1
    np.testing.assert_allclose(fit.predict(c.world.maps, attr), e, atol=1e-4)


def test_predict_is_the_intercept_plus_the_components():
    e, world, attr = planted()
    fit = fit_additive(e, world.maps, attr)
    assert isinstance(fit, AdditiveFit) and fit.kind == "given"
    comps = sum(fit.component(r, attr[r, world.maps[r]]) for r in range(K))
    np.testing.assert_allclose(fit.predict(world.maps, attr), fit.intercept + comps)
    assert fit.predict(world.maps[:, :0], attr).shape == (0, e.shape[1])
    fixed = fit_additive(e, world.maps, attr, alpha=10.0)
    assert fixed.alpha == 10.0 and np.abs(fixed.maps).sum() < np.abs(fit.maps).sum()  # more shrinkage


def test_planted_superposition_is_recovered_and_noise_is_not():
    e, world, attr = planted()
    res = additive_with_control(e, world.maps, attr, seed=2)
    assert res.true.r2 >= 0.99 and res.random_bijection.r2 <= 0.1
    noise = np.random.default_rng(3).standard_normal(e.shape)
    assert additive_r2(noise, world.maps, attr).r2 <= 0.1
    # Seeded: the same folds and penalties again.
    assert additive_r2(e, world.maps, attr, seed=4) == additive_r2(e, world.maps, attr, seed=4)


def test_fitted_codes_recover_planted_low_dimensional_codes():
    e, world = planted_codes()
    fit = fit_codes(e, world.maps, code_dim=2)
    assert fit.codes.shape == (K, N, 2) and fit.fitted.all() and fit.shared
    assert np.array_equal(fit.codes[0], fit.codes[1])  # one table for every relation
    assert fit.loss[-1] < 1e-3 * e.var()
    score = codes_r2(e, world.maps, code_dim=2, seed=0)
    assert score.r2 >= 0.9 and score.in_sample_r2 >= 0.999 and score.n_lookups == K * N
    assert 0 <= score.n_unfitted < score.n_lookups and len(score.fold_losses) == 5
    control = codes_r2(e, world.redraw(99).maps, code_dim=2, seed=0)
    assert control.r2 <= 0.1


def test_per_relation_codes_in_a_disjoint_world():
    rng = np.random.default_rng(0)
    world = make_world(N, 2, seed=0, attributes="disjoint", n_attributes=6, bijective=False)
    z = rng.standard_normal((2, 6, 2))
    m = rng.standard_normal((2, 12, 2))
    e = sum(z[r, world.maps[r]] @ m[r].T for r in range(2)) + 0.01 * rng.standard_normal((N, 12))
    score = codes_r2(e, world.maps, code_dim=2, n_attributes=6, shared=False, n_folds=4)
    assert score.r2 >= 0.99
    fit = fit_codes(e, world.maps, code_dim=2, n_attributes=6, shared=False)
    assert fit.codes.shape == (2, 6, 2) and not fit.shared


def test_bad_input_raises_clear_errors():
    e, world, attr = planted()
    with pytest.raises(ValueError, match=r"\[N, d\]"):
        fit_additive(e[0], world.maps, attr)
    with pytest.raises(ValueError, match="subjects"):
        fit_additive(e[:-1], world.maps, attr)
    with pytest.raises(ValueError, match="relations"):
        fit_additive(e, world.maps, attr[:2])
    with pytest.raises(ValueError, match=r"\[K, A, d_a\]"):
        additive_r2(e, world.maps, attr[0])
    with pytest.raises(ValueError, match="lie in"):
        fit_additive(e, world.maps, attr[:, :8])
    with pytest.raises(ValueError, match="n_folds"):
        additive_r2(e, world.maps, attr, n_folds=N + 1)
    fit = fit_additive(e, world.maps, attr)
    with pytest.raises(ValueError, match="width"):
        fit.predict(world.maps, attr[..., :3])
    with pytest.raises(ValueError, match="K = 3"):
        fit.predict(world.maps[:2], attr)
    with pytest.raises(ValueError, match="d_a"):
        fit.component(0, np.zeros((2, 5)))
    with pytest.raises(ValueError, match="code_dim"):
        fit_codes(e, world.maps, code_dim=0)
    with pytest.raises(ValueError, match="init"):
        fit_codes(e, world.maps, code_dim=2, init="zeros")
