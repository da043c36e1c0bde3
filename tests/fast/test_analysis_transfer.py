"""Freeze-and-swap (georecall.analysis.transfer): zero-shot embeddings from the additive fit make a construction
answer a world it never saw; the swap changes only the subject rows; one model at a time."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from analysis_cases import CASES, K, N, construction

from georecall.analysis._eval import accuracy_by_relation, answer_logits, single_hop_queries
from georecall.analysis.additive import fit_additive
from georecall.analysis.transfer import (
    TransferScore,
    swap_subject_embeddings,
    zero_shot_embeddings,
    zero_shot_transfer,
)
from georecall.analysis.vectors import attribute_vectors, subject_embeddings
from georecall.config import ModelConfig
from georecall.constructions.single_hop import build_attention_only
from georecall.model import Transformer
from georecall.tasks import make_world

SEED = 0


def small_model(world, *, tie: bool = False, n_members: int = 1) -> Transformer:
    cfg = ModelConfig(d_model=16, d_mlp=32, tie_unembed=tie)
    return Transformer(cfg, d_vocab=world.vocab.d_vocab, n_ctx=2, n_members=n_members, seeds=range(n_members)).eval()


@pytest.mark.parametrize("name", list(CASES))
def test_constructions_transfer_zero_shot_to_a_redrawn_world(name):
    c = construction(name)
    new_world = c.world.redraw(SEED + 1)
    assert not np.array_equal(new_world.maps, c.world.maps)
    before = {k: v.clone() for k, v in c.model.state_dict().items()}
    res = zero_shot_transfer(c.model, c.world, new_world)
    assert isinstance(res, TransferScore) and res.kind == "unembedding"
    assert res.accuracy == 1.0 and res.per_relation == [1.0] * K
    assert res.chance == pytest.approx(1 / c.world.vocab.attributes_per_relation) and res.r2 >= 0.999
    assert all(torch.equal(before[k], v) for k, v in c.model.state_dict().items())  # the original is untouched
    # The model without the swap knows the old world only (near chance on the new one).
    assert accuracy_by_relation(c.model, new_world).mean() <= 0.3


def test_swap_changes_only_the_subject_rows():
    c = construction("selector")
    e = subject_embeddings(c.model, c.world)
    new = np.random.default_rng(0).standard_normal(e.shape)
    swapped = swap_subject_embeddings(c.model, new)
    assert swapped is not c.model and swapped.n_members == 1
    np.testing.assert_allclose(swapped.embed.W_E[0, :N].detach().double().numpy(), new, atol=1e-6)
    for (k, v), (_, w) in zip(c.model.state_dict().items(), swapped.state_dict().items(), strict=True):
        if k == "embed.W_E":
            assert torch.equal(v[0, N:], w[0, N:])
        else:
            assert torch.equal(v, w), k
    # Swapping in the model's own embeddings changes nothing.
    q = single_hop_queries(c.world)
    same = swap_subject_embeddings(c.model, e)
    assert torch.equal(answer_logits(same, q.tokens), answer_logits(c.model, q.tokens))


def test_a_tied_readout_is_kept_by_untying():
    world = make_world(16, 2, seed=0)
    model = small_model(world, tie=True)
    readout = model.W_U.detach().clone()
    swapped = swap_subject_embeddings(model, np.zeros((16, 16)))
    assert not swapped.cfg.tie_unembed and torch.equal(swapped.W_U, readout)
    assert torch.equal(swapped.embed.W_E[0, :16], torch.zeros(16, 16))
    assert torch.equal(swapped.embed.W_E[0, 16:], model.embed.W_E[0, 16:])
    identity = swap_subject_embeddings(model, subject_embeddings(model, world))
    q = single_hop_queries(world)
    torch.testing.assert_close(answer_logits(identity, q.tokens), answer_logits(model, q.tokens))


def test_zero_shot_embeddings_are_the_fit_on_the_new_maps():
    c = construction("attention-only")
    attr = attribute_vectors(c.model, c.world)
    fit = fit_additive(subject_embeddings(c.model, c.world), c.world.maps, attr)
    new_world = c.world.redraw(7)
    emb = zero_shot_embeddings(fit, new_world, attr)
    assert emb.shape == (N, c.model.cfg.d_model)
    np.testing.assert_allclose(emb, fit.predict(new_world.maps, attr))
    # On the construction, that is exactly the construction built for the new world.
    rebuilt = build_attention_only(new_world)
    np.testing.assert_allclose(emb, subject_embeddings(rebuilt.model, new_world), atol=1e-4)


def test_embedding_vectors_come_from_the_model_before_the_swap():
    world = make_world(16, 2, seed=0)
    model = small_model(world)
    res = zero_shot_transfer(model, world, world.redraw(1), kind="embedding", alpha=1.0)
    assert res.kind == "embedding" and res.alpha == 1.0 and 0.0 <= res.accuracy <= 1.0
    assert len(res.per_relation) == 2 and res.chance == pytest.approx(1 / 16)


def test_bad_input_raises():
    c = construction("selector")
    d = c.model.cfg.d_model
    with pytest.raises(ValueError, match="d_model"):
        swap_subject_embeddings(c.model, np.zeros((N, d + 1)))
    with pytest.raises(ValueError, match="vocabulary"):
        swap_subject_embeddings(c.model, np.zeros((c.model.d_vocab + 1, d)))
    with pytest.raises(ValueError, match="NaN"):
        swap_subject_embeddings(c.model, np.full((N, d), np.nan))
    with pytest.raises(ValueError, match="new world"):
        zero_shot_transfer(c.model, c.world, make_world(N, K + 1, seed=1))
    with pytest.raises(ValueError, match="new world"):
        zero_shot_transfer(c.model, c.world, make_world(N, K, seed=1, attributes="disjoint"))
    with pytest.raises(ValueError, match="attribute vectors"):
        zero_shot_transfer(c.model, c.world, c.world.redraw(1), kind="codes")
    fit = fit_additive(subject_embeddings(c.model, c.world), c.world.maps, attribute_vectors(c.model, c.world))
    with pytest.raises(ValueError, match="relations"):
        zero_shot_embeddings(fit, make_world(N, K - 1, seed=1), attribute_vectors(c.model, c.world))


def test_an_ensemble_is_refused():
    world = make_world(16, 2, seed=0)
    ensemble = small_model(world, n_members=2)
    with pytest.raises(ValueError, match="E = 1"):
        swap_subject_embeddings(ensemble, np.zeros((16, 16)))
    with pytest.raises(ValueError, match="E = 1"):
        zero_shot_transfer(ensemble, world, world.redraw(1))
    swap_subject_embeddings(ensemble.member(1), np.zeros((16, 16)))  # one member is fine
