"""Activation patching (analysis.patching): where the relation enters, on the hand-built constructions."""

from __future__ import annotations

import numpy as np
import pytest

from georecall.analysis._eval import answer_logits, queries_for
from georecall.analysis.patching import (
    PatchScore,
    has_site,
    patch_logits,
    relation_pairs,
    relation_patching,
    seq_axis,
)
from georecall.config import ModelConfig
from georecall.constructions.disjoint import build_disjoint_mlp
from georecall.constructions.single_hop import build_attention_only, build_selector, build_selector_mlp3
from georecall.model import Transformer
from georecall.tasks import make_world


@pytest.fixture(scope="module")
def selector():
    return build_selector(make_world(16, 3, seed=0))


@pytest.mark.parametrize("build", [build_selector, build_selector_mlp3])
def test_selector_relation_patching(build):
    c = build(make_world(16, 3, seed=0))
    scores = relation_patching(c.model, c.world)
    assert list(scores) == ["hook_embed", "blocks.0.hook_attn_out", "blocks.0.mlp.hook_post",
                            "blocks.0.hook_resid_mid"]
    assert all(p.n == scores["hook_embed"].n > 0 for p in scores.values())
    # The relation token enters at position 1 ...
    assert scores["hook_embed"] == PatchScore(switch=1.0, keep=0.0, n=scores["hook_embed"].n)
    # ... the uniform head copies only the subject's blocks, which clean and source share ...
    assert (scores["blocks.0.hook_attn_out"].switch, scores["blocks.0.hook_attn_out"].keep) == (0.0, 1.0)
    # ... and the gated units (the selector's only hidden units; the mlp3's pass-through + indicators) decide.
    assert (scores["blocks.0.mlp.hook_post"].switch, scores["blocks.0.mlp.hook_post"].keep) == (1.0, 0.0)
    assert scores["blocks.0.hook_resid_mid"].switch == 1.0


def test_disjoint_mlp_relation_patching():
    c = build_disjoint_mlp(make_world(16, 3, seed=0, attributes="disjoint"))
    scores = relation_patching(c.model, c.world, n_queries=20, seed=1)
    assert scores["hook_embed"].switch == 1.0 and scores["blocks.0.hook_attn_out"].keep == 1.0
    assert scores["blocks.0.mlp.hook_post"].switch == 1.0 and scores["hook_embed"].n == 20  # answers always differ


def test_attention_only_omits_mlp_sites_and_patches_the_pattern():
    c = build_attention_only(make_world(16, 3, seed=0))
    scores = relation_patching(c.model, c.world, sites=("hook_embed", "blocks.0.mlp.hook_post",
                                                        "blocks.0.attn.hook_pattern", "blocks.0.hook_attn_out"))
    assert list(scores) == ["hook_embed", "blocks.0.attn.hook_pattern", "blocks.0.hook_attn_out"]
    # The heads select by where they look: the source's pattern (query axis 3) carries the relation.
    assert scores["blocks.0.attn.hook_pattern"].switch == 1.0
    assert scores["blocks.0.hook_attn_out"].switch == 1.0  # here the head's output holds the answer


def test_patch_logits_generic(selector):
    model, world = selector.model, selector.world
    rng = np.random.default_rng(0)
    clean = queries_for(world, rng.integers(0, 16, 10), rng.integers(0, 3, 10))
    source = queries_for(world, rng.integers(0, 16, 10), rng.integers(0, 3, 10))
    # Patching the embedding at every position is running the source.
    out = patch_logits(model, clean.tokens, source.tokens, "hook_embed", [0, 1])
    np.testing.assert_allclose(out.numpy(), answer_logits(model, source.tokens).numpy(), atol=1e-6)
    # Patching a run from itself changes nothing, at any site.
    for site in ("blocks.0.hook_resid_pre", "blocks.0.attn.hook_pattern", "blocks.0.mlp.hook_pre"):
        np.testing.assert_allclose(patch_logits(model, clean.tokens, clean.tokens, site, [1]).numpy(),
                                   answer_logits(model, clean.tokens).numpy(), atol=1e-6)
    # Position 0 of the embedding only carries the subject: patching it moves the answer to the source subject's.
    same_rel = queries_for(world, source.subjects, clean.relations)
    out = patch_logits(model, clean.tokens, source.tokens, "hook_embed", [0]).argmax(-1).numpy()
    np.testing.assert_array_equal(out, same_rel.targets)
    assert seq_axis("blocks.0.attn.hook_pattern") == 3 and seq_axis("blocks.0.hook_attn_out") == 2


def test_relation_pairs_are_seeded_and_informative():
    w = make_world(16, 3, seed=0)
    s, r, src = relation_pairs(w, seed=4)
    assert (src != r).all() and (w.maps[src, s] != w.maps[r, s]).all()
    assert len(s) == 16 * 3 - sum(  # queries whose answer no other relation differs from are dropped
        all(w.maps[q, i] == w.maps[p, i] for q in range(3) if q != p) for p in range(3) for i in range(16))
    for a, b in zip(relation_pairs(w, seed=4), (s, r, src), strict=True):
        np.testing.assert_array_equal(a, b)
    assert len(relation_pairs(w, n_queries=10, seed=0)[0]) <= 10


def test_bad_inputs(selector):
    model, world = selector.model, selector.world
    q = queries_for(world, [0, 1], [0, 1])
    assert has_site(model, "blocks.0.mlp.hook_post") and not has_site(model, "blocks.0.mlp.hook_post2")
    for bad in ("blocks.0.mlp.hook_postt", "blocks.1.hook_resid_pre", "embed"):
        with pytest.raises(ValueError, match="unknown hook site"):
            relation_patching(model, world, sites=(bad,))
    with pytest.raises(ValueError, match="no hook site"):
        patch_logits(model, q.tokens, q.tokens, "blocks.0.mlp.hook_post2", [1])
    with pytest.raises(ValueError, match="positions"):
        patch_logits(model, q.tokens, q.tokens, "hook_embed", [2])
    with pytest.raises(ValueError, match=r"\[B, T\]"):
        patch_logits(model, q.tokens, q.tokens[:1], "hook_embed", [1])
    with pytest.raises(ValueError, match="K >= 2"):
        c1 = build_selector(make_world(16, 1, seed=0))
        relation_patching(c1.model, c1.world)
    with pytest.raises(ValueError, match="vocabulary"):
        relation_patching(model, make_world(16, 4, seed=0))
    ensemble = Transformer(ModelConfig(d_model=8, d_mlp=8), d_vocab=world.vocab.d_vocab, n_ctx=2, n_members=2)
    with pytest.raises(ValueError, match="single model"):
        relation_patching(ensemble, world)
