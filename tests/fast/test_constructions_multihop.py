"""Theorem 4.3 (k hops without CoT) and docs/theory.md §6.5's learned-readout models, executed on every query.

Tracr style: each construction's weights run through the model and are scored on all ``N K^k`` chains
(:func:`score_construction`); counts of the unpadded build are checked against the theory's closed forms;
fact-free parts are checked by building on two worlds and comparing weights.
"""

import dataclasses

import numpy as np
import pytest
import torch

from georecall.constructions.base import Construction, bits, score_construction, signs
from georecall.constructions.multihop import (
    build_kv_memory,
    build_precompute,
    kv_memory_formula,
    precompute_formula,
)
from georecall.constructions.readout import (
    build_meet_in_middle,
    build_readout_only,
    meet_in_middle_formula,
    readout_only_formula,
)
from georecall.tasks import make_world

# Margins are exactly 2 in exact arithmetic (G2 clips the softmax leakage); float32 rounding of sums
# of O(m) terms of size <= 2 stays far below this tolerance.
MARGIN_TOL = 1e-4
DTYPES = [torch.float32, torch.float64]
MULTIHOP_SIZES = [(13, 3, 1), (16, 2, 2), (13, 3, 2), (17, 3, 3), (8, 2, 3)]  # (N, K, k): primes, K = 3


def _state(c: Construction) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in c.model.state_dict().items()}


# ---------------------------------------------------------------------------------------------------
# Theorem 4.3: key-value memory and embedding pre-computation


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n,k_rel,hops", MULTIHOP_SIZES)
@pytest.mark.parametrize("build", [build_kv_memory, build_precompute])
def test_multihop_constructions_answer_every_chain(build, n, k_rel, hops, dtype):
    c = build(make_world(n, k_rel, seed=n + hops), hops, dtype=dtype)
    score = score_construction(c)
    assert score.n_queries == score.n_query_space == n * k_rel ** hops  # all chains, none sampled
    assert score.accuracy == 1.0
    assert score.min_margin == pytest.approx(2.0, abs=MARGIN_TOL)  # docs/theory.md §4.3: margin 2.00
    assert c.params == c.formula
    assert c.model.embed.W_E.dtype == dtype
    assert c.dims["n_layers"] == hops and c.dims["n_ctx"] == hops + 1


@pytest.mark.parametrize("n,k_rel,hops", [(16, 2, 1), (16, 2, 2), (16, 2, 3), (32, 3, 2), (32, 3, 3),
                                          (100, 3, 2), (257, 5, 2), (100, 4, 3)])
def test_multihop_counts_match_theory_table(n, k_rel, hops):
    # docs/theory.md §4.3: d / widths / attn / MLP, measured on the unpadded build and from the closed forms.
    table = {
        (16, 2, 1): ((11, [76], 198, 1759), (19, [20], 494, 799)),
        (16, 2, 2): ((11, [76] * 2, 308, 3518), (35, [36, 20], 1820, 4046)),
        (16, 2, 3): ((11, [76] * 3, 418, 5277), (67, [68, 36, 20], 6298, 16941)),
        (32, 3, 2): ((14, [208] * 2, 476, 12092), (74, [96, 36], 8436, 19816)),
        (32, 3, 3): ((14, [208] * 3, 644, 18138), (209, [276, 96, 36], 63954, 171579)),
        (100, 3, 2): ((16, [620] * 2, 608, 40952), (100, [132, 48], 15000, 36380)),
        (257, 5, 2): ((22, [2598] * 2, 1100, 233864), (292, [460, 100], 140744, 328184)),
        (100, 4, 3): ((18, [822] * 3, 1008, 91296), (606, [904, 232, 64], 568428, 1457418)),
    }[(n, k_rel, hops)]
    world = make_world(n, k_rel, seed=0)
    builds = ((build_kv_memory, kv_memory_formula), (build_precompute, precompute_formula))
    for (build, formula), (d, widths, attn, mlp) in zip(builds, table, strict=True):
        c = build(world, hops)
        assert (c.dims["d_model"], c.dims["mlp_widths"]) == (d, widths)
        assert (c.params["attention"], c.params["mlp"]) == (attn, mlp)
        assert c.params == c.formula == formula(n, k_rel, hops)
        v = n + k_rel  # docs/theory.md §8: total = attention + MLP + 2dV + dT
        assert c.params["total"] == attn + mlp + 2 * d * v + d * (hops + 1)


def test_kv_memory_needs_a_large_enough_softmax_scale():
    # docs/theory.md §4.1 at N = 32, K = 3, k = 3: accuracy 0.60 at beta = 1; beta = 4 is above the sufficient
    # condition max(2.8, ln(2m + 9)/2) and so must be exact.
    world = make_world(32, 3, seed=0)
    low = score_construction(build_kv_memory(world, 3, beta=1.0))
    assert low.accuracy < 0.9 and low.n_wrong > 0
    assert low.min_margin <= 0  # some chain's answer is tied or beaten
    assert score_construction(build_kv_memory(world, 3, beta=0.5)).accuracy < low.accuracy
    assert score_construction(build_kv_memory(world, 3, beta=4.0)).accuracy == 1.0


def test_precompute_needs_a_large_enough_softmax_scale():
    world = make_world(17, 3, seed=1)
    assert score_construction(build_precompute(world, 2, beta=0.5)).accuracy < 1.0
    assert score_construction(build_precompute(world, 2, beta=2.5)).accuracy == 1.0  # condition beta >= 2.1


def test_kv_memory_attention_and_embeddings_are_fact_free_and_mlps_identical():
    a = build_kv_memory(make_world(13, 3, seed=1), 3)
    b = build_kv_memory(make_world(13, 3, seed=1).redraw(7), 3)
    assert not np.array_equal(a.world.maps, b.world.maps)
    sa, sb = _state(a), _state(b)
    for name in sa:
        if name.endswith("mlp.W_out"):  # the lookup table: c(f_r(a)) in the output columns
            assert not torch.equal(sa[name], sb[name]), name
        else:
            assert torch.equal(sa[name], sb[name]), name
    for layer in (1, 2):  # one table, k copies (docs/theory.md §4.1: identical, tieable)
        for leaf in ("W_in", "b_in", "W_out", "b_out"):
            assert torch.equal(sa[f"blocks.{layer}.mlp.{leaf}"], sa[f"blocks.0.mlp.{leaf}"])
    assert a.anatomy.content_bits == {"P": 3 * 13 * 4, "B_e": 0} and a.anatomy.readout == "fixed"


def test_precompute_facts_live_only_in_subject_embeddings():
    n = 13
    a = build_precompute(make_world(n, 3, seed=2), 2)
    b = build_precompute(make_world(n, 3, seed=2).redraw(11), 2)
    sa, sb = _state(a), _state(b)
    for name in sa:
        if name == "embed.W_E":
            assert not torch.equal(sa[name][0, :n], sb[name][0, :n])
            assert torch.equal(sa[name][0, n:], sb[name][0, n:])  # relation embeddings
        else:  # every attention and MLP weight, positions and readout
            assert torch.equal(sa[name], sb[name]), name
    assert a.anatomy.content_bits == {"P": 0, "B_e": 3 ** 2 * 4}


def test_kv_memory_holds_the_current_subject_after_every_layer():
    # Tracr-style check of the mechanism: after block l the answer position holds S = c(s_l), R = 0.
    n, k_rel, hops = 11, 3, 3
    c = build_kv_memory(make_world(n, k_rel, seed=3), hops, dtype=torch.float64)
    rng = np.random.default_rng(0)
    subjects, chains = rng.integers(0, n, 64), rng.integers(0, k_rel, (64, hops))
    path = c.world.apply(subjects, chains)  # [B, k]
    tokens = torch.from_numpy(np.concatenate([subjects[:, None], chains + n], axis=1))
    _, cache = c.model.run_with_cache(tokens, names=[f"blocks.{i}.hook_resid_post" for i in range(hops)])
    s_blk, r_blk = (slice(*c.anatomy.blocks[b]) for b in ("S", "R"))
    for layer in range(hops):
        resid = cache[f"blocks.{layer}.hook_resid_post"][0, :, hops].numpy()  # [B, d] at the answer position
        np.testing.assert_allclose(resid[:, s_blk], signs(path[:, layer], c.dims["m"]), atol=1e-9)
        np.testing.assert_allclose(resid[:, r_blk], 0.0, atol=1e-9)


def test_precompute_shrinks_the_tree_by_one_level_per_layer():
    # After block l the answer position holds L_{l+1}: block q (suffix path, first relation most
    # significant) = b(f_suffix(s_{l+1})).
    n, k_rel, hops = 11, 3, 3
    c = build_precompute(make_world(n, k_rel, seed=4), hops, dtype=torch.float64)
    rng = np.random.default_rng(1)
    subjects, chains = rng.integers(0, n, 32), rng.integers(0, k_rel, (32, hops))
    path = c.world.apply(subjects, chains)  # [B, k]
    tokens = torch.from_numpy(np.concatenate([subjects[:, None], chains + n], axis=1))
    _, cache = c.model.run_with_cache(tokens, names=[f"blocks.{i}.hook_resid_post" for i in range(hops)])
    for layer in range(hops - 1):
        level = slice(*c.anatomy.blocks[f"L{layer + 1}"])
        resid = cache[f"blocks.{layer}.hook_resid_post"][0, :, hops].numpy()[:, level]  # [B, K^(k-l-1) m]
        n_suffix = k_rel ** (hops - layer - 1)
        suffixes = np.stack(np.unravel_index(np.arange(n_suffix), (k_rel,) * (hops - layer - 1)), axis=1)
        for q, suffix in enumerate(suffixes):
            want = c.world.apply(path[:, layer], np.tile(suffix, (len(path), 1)))[:, -1]
            got = resid[:, q * c.dims["m"]:(q + 1) * c.dims["m"]]
            np.testing.assert_allclose(got, bits(want, c.dims["m"]), atol=1e-9)
    final = cache[f"blocks.{hops - 1}.hook_resid_post"][0, :, hops].numpy()  # [B, d]
    answer = final[:, slice(*c.anatomy.blocks["A"])]
    np.testing.assert_allclose(answer, signs(path[:, -1], c.dims["m"]), atol=1e-9)


def test_precompute_rejects_a_single_relation():
    with pytest.raises(ValueError, match="K >= 2"):
        build_precompute(make_world(8, 1, seed=0), 2)
    with pytest.raises(ValueError, match="n_hops"):
        build_kv_memory(make_world(8, 2, seed=0), 0)
    with pytest.raises(ValueError, match="beta"):
        build_kv_memory(make_world(8, 2, seed=0), 2, beta=0.0)


def test_kv_memory_handles_a_single_relation():
    c = build_kv_memory(make_world(9, 1, seed=0), 3)
    assert score_construction(c).accuracy == 1.0


# ---------------------------------------------------------------------------------------------------
# docs/theory.md §6.5: learned and tied readouts


LEARNED = [
    ("readout-only", lambda w, dt: build_readout_only(w, dtype=dt), 1),
    ("meet-in-middle", lambda w, dt: build_meet_in_middle(w, dtype=dt), 2),
    ("meet-in-middle-tied", lambda w, dt: build_meet_in_middle(w, tied=True, dtype=dt), 2),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n,k_rel", [(64, 3), (37, 3)])
@pytest.mark.parametrize("label,build,hops", LEARNED, ids=[x[0] for x in LEARNED])
def test_learned_readout_models_answer_every_query(label, build, hops, n, k_rel, dtype):
    c = build(make_world(n, k_rel, seed=n), dtype)
    score = score_construction(c)
    assert score.n_queries == n * k_rel ** hops
    assert score.accuracy == 1.0
    assert score.min_margin == pytest.approx(2.0, abs=MARGIN_TOL)  # docs/theory.md §6.5: margin 2
    assert c.params == c.formula
    assert c.task.n_hops == hops


@pytest.mark.parametrize("n,k_rel", [(64, 3), (37, 3), (256, 4), (1000, 4)])
def test_learned_readout_dims_match_theory(n, k_rel):
    world = make_world(n, k_rel, seed=0)
    m = int(np.ceil(np.log2(n)))
    ro, mim = build_readout_only(world), build_meet_in_middle(world)
    tied = build_meet_in_middle(world, tied=True)
    assert (ro.dims["d_model"], ro.dims["mlp_widths"]) == (m + k_rel + k_rel * m, [k_rel * m + k_rel])
    width = 2 * k_rel ** 2 * m + k_rel
    assert (mim.dims["d_model"], mim.dims["mlp_widths"]) == (2 * k_rel * m + 2 * k_rel + 3, [width])
    assert tied.dims["mlp_widths"] == [width]
    assert tied.dims["d_model"] == 3 * k_rel * m + 2 * k_rel + 3
    # docs/theory.md §6.5 measured rows (d, width) and the readout-only row at N = 1000, K = 4.
    known = {(64, 3): (45, 111), (256, 4): (75, 260), (1000, 4): (91, 324)}
    if (n, k_rel) in known:
        assert (mim.dims["d_model"], mim.dims["mlp_widths"][0]) == known[(n, k_rel)]
    if (n, k_rel) == (1000, 4):
        assert (ro.dims["d_model"], ro.params["attention"], ro.params["mlp"]) == (54, 1188, 4850)
    assert ro.params == readout_only_formula(n, k_rel)
    assert mim.params == meet_in_middle_formula(n, k_rel)
    assert tied.params == meet_in_middle_formula(n, k_rel, tied=True) and tied.params["unembedding"] == 0
    assert tied.model.cfg.tie_unembed and not hasattr(tied.model.unembed, "W_U")
    # docs/theory.md §6.6 content bits.
    assert ro.anatomy.content_bits == {"P": n * k_rel * m, "B_e": 0}
    assert mim.anatomy.content_bits == {"P": n * k_rel * m, "B_e": k_rel * m}
    assert tied.anatomy.content_bits == {"P": 0, "B_e": 2 * k_rel * m}
    assert [c.anatomy.readout for c in (ro, mim, tied)] == ["learned", "learned", "tied"]


def test_readout_only_embeddings_are_fact_free_and_the_readout_holds_the_facts():
    world = make_world(37, 3, seed=4)
    a, b = build_readout_only(world), build_readout_only(world.redraw(5))
    sa, sb = _state(a), _state(b)
    assert not torch.equal(sa["unembed.W_U"], sb["unembed.W_U"])
    for name in sa:
        if name != "unembed.W_U":  # embeddings, attention, MLP
            assert torch.equal(sa[name], sb[name]), name
    # Swapping in the other world's readout answers the other world's facts.
    with torch.no_grad():
        a.model.unembed.W_U.copy_(b.model.unembed.W_U)
    assert score_construction(dataclasses.replace(a, world=b.world)).accuracy == 1.0


@pytest.mark.parametrize("tied", [False, True])
def test_meet_in_middle_attention_and_mlp_are_fact_free(tied):
    world = make_world(37, 3, seed=6)
    sa, sb = (_state(build_meet_in_middle(w, tied=tied)) for w in (world, world.redraw(9)))
    for name in sa:
        same = torch.equal(sa[name], sb[name])
        assert same == (name not in ("embed.W_E", "unembed.W_U")), name


def test_meet_in_middle_rejects_what_it_cannot_answer():
    with pytest.raises(ValueError, match="N >= 3"):  # tied: answer logit m = 1 ties a relation logit
        build_meet_in_middle(make_world(2, 3, seed=0), tied=True)
    with pytest.raises(ValueError, match="shared"):
        build_readout_only(make_world(8, 2, seed=0, attributes="disjoint"))
