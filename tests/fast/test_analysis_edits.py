"""Fact edits in embedding space (analysis.edits), exact on the hand-built constructions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from georecall.analysis._eval import predictions, queries_for
from georecall.analysis.edits import draw_edits, edit_directions, edit_facts
from georecall.analysis.vectors import attribute_tokens, attribute_vectors, subject_embeddings
from georecall.config import ModelConfig
from georecall.constructions.disjoint import build_disjoint_mlp
from georecall.constructions.single_hop import build_attention_only, build_selector, edit_fact
from georecall.model import Transformer
from georecall.tasks import make_world


def exact_maps(model: Transformer, world) -> tuple[np.ndarray, np.ndarray]:
    """Least squares of ``e_s`` on ``[1, a_0(f_0(s)), ..., a_{K-1}(f_{K-1}(s))]``: maps ``[K, d, d_a]`` and the
    attribute vectors ``[K, A, d_a]`` (readout columns). Asserts the fit is exact and identified."""
    e = subject_embeddings(model, world)  # [N, d]
    attr = attribute_vectors(model, world, "unembedding")  # [K, A, d]
    k_rel, _, d_a = attr.shape
    x = np.concatenate([np.ones((world.n_subjects, 1))] + [attr[r, world.maps[r]] for r in range(k_rel)], axis=1)
    coef, _, rank, _ = np.linalg.lstsq(x, e, rcond=None)
    # Identified: no dependence across relations beyond the intercept, so M_r (a' - a) is unique.
    assert rank == 1 + sum(np.linalg.matrix_rank(attr[r] - attr[r].mean(0)) for r in range(k_rel))
    np.testing.assert_allclose(x @ coef, e, atol=1e-9)
    return coef[1:].reshape(k_rel, d_a, -1).transpose(0, 2, 1), attr


@pytest.fixture(scope="module")
def selector():
    return build_selector(make_world(16, 3, seed=0), dtype=torch.float64)


@pytest.fixture(scope="module")
def attention_only():
    return build_attention_only(make_world(16, 3, seed=0), dtype=torch.float64)


def test_selector_edits_exact_at_scale_one(selector):
    maps_r, attr = exact_maps(selector.model, selector.world)
    res = edit_facts(selector.model, selector.world, maps_r, attr, n_edits=64, seed=0)
    i = res.scales.index(1.0)
    assert res.baseline_accuracy == 1.0 and res.n_edits == 64 and len(res.edits) == 64
    assert res.success[i] == 1.0 and res.collateral[i] == 0.0
    assert all(res.success[j] == 1.0 for j, a in enumerate(res.scales) if a >= 1)
    # The gates threshold the bits by a bias, so codes pushed past 1 (alpha = 2: S_{r,i} = 2) leak into
    # the other relations' gates: the selector's edits are exact at alpha = 1 only.
    assert res.collateral[res.scales.index(2.0)] > 0
    # A random direction of the same norm rarely lands on the new answer.
    assert res.control_success[i] <= 0.15 and res.control_changed[i] > 0.1
    assert 0 < res.edit_norm[i] < 1
    np.testing.assert_allclose(np.array(res.edit_norm) / res.edit_norm[i], res.scales)


def test_attention_only_edits_have_no_collateral(attention_only):
    maps_r, attr = exact_maps(attention_only.model, attention_only.world)
    res = edit_facts(attention_only.model, attention_only.world, maps_r, attr, scales=(1, 2, 4), n_edits=48)
    assert res.success == [1.0, 1.0, 1.0] and res.collateral == [0.0, 0.0, 0.0]
    assert max(res.control_success) <= 0.15


@pytest.mark.parametrize("build, attributes", [(build_selector, "shared"), (build_attention_only, "shared"),
                                               (build_disjoint_mlp, "disjoint")])
def test_edit_matches_edit_fact(build, attributes):
    c = build(make_world(16, 3, seed=1, attributes=attributes), dtype=torch.float64)
    maps_r, attr = exact_maps(c.model, c.world)
    for s, r, a in draw_edits(c.world, 4, seed=3):
        delta = edit_directions(c.world, maps_r, attr, [(s, r, a)])  # [1, d]
        edited = edit_fact(c, int(s), int(r), int(a))
        # The same change of the embedding ...
        w_diff = (edited.model.embed.W_E[0, s] - c.model.embed.W_E[0, s]).detach().numpy()
        np.testing.assert_allclose(delta[0], w_diff, atol=1e-9)
        # ... and the same new answers on every relation of s.
        q = queries_for(c.world, np.full(3, s), np.arange(3))
        ours = predictions(c.model, q.tokens, subject_delta=np.repeat(delta, 3, axis=0))
        theirs = predictions(edited.model, q.tokens)
        np.testing.assert_array_equal(ours, theirs)
        assert ours[r] == attribute_tokens(c.world)[r, a]
    res = edit_facts(c.model, c.world, maps_r, attr, scales=(1,), n_edits=32)
    assert res.success == [1.0] and res.collateral == [0.0]


def test_draw_edits_is_seeded_and_changes_the_answer():
    w = make_world(16, 3, seed=0)
    a, b = draw_edits(w, 40, seed=5), draw_edits(w, 40, seed=5)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, draw_edits(w, 40, seed=6))
    assert (a[:, 2] != w.maps[a[:, 1], a[:, 0]]).all()
    assert len({(s, r) for s, r, _ in a}) == 40  # without replacement while n_edits <= N K


def test_k1_collateral_is_none():
    c = build_selector(make_world(16, 1, seed=0))
    maps_r, attr = exact_maps(c.model, c.world)
    res = edit_facts(c.model, c.world, maps_r, attr, scales=(1,), n_edits=8)
    assert res.collateral is None and res.control_collateral is None and res.success == [1.0]


def test_bad_inputs(selector):
    maps_r, attr = exact_maps(selector.model, selector.world)
    with pytest.raises(ValueError, match="maps_r"):
        edit_facts(selector.model, selector.world, maps_r[:2], attr)
    with pytest.raises(ValueError, match="attr"):
        edit_facts(selector.model, selector.world, maps_r, attr[:, :5])
    with pytest.raises(ValueError, match="n_edits"):
        edit_facts(selector.model, selector.world, maps_r, attr, n_edits=0)
    ensemble = Transformer(ModelConfig(d_model=8, d_mlp=8), d_vocab=19, n_ctx=2, n_members=2)
    with pytest.raises(ValueError, match="single model"):
        edit_facts(ensemble, selector.world, np.zeros((3, 8, 8)), np.zeros((3, 16, 8)))
