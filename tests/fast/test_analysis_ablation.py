"""Unit attribution and ablation (analysis.ablation): exact on the selectors and on a planted lookup MLP."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from georecall.analysis.ablation import (
    ablate,
    ablation_matrix,
    diagonal_fraction,
    random_unit_control,
    unit_attribution,
)
from georecall.analysis.vectors import attribute_tokens
from georecall.config import ModelConfig
from georecall.constructions.disjoint import build_disjoint_mlp
from georecall.constructions.single_hop import build_attention_only, build_selector, build_selector_mlp3
from georecall.model import Transformer
from georecall.tasks import World, make_world

N, K = 16, 3


# ---------------------------------------------------------------------------------------------------
# A planted model, independent of the constructions: a lookup-table MLP with one unit per fact


def planted_lookup(world: World, *, seed: int = 0) -> tuple[Transformer, dict]:
    """One layer, no LayerNorm. Subject s is one-hot in block [0, N), relation r one-hot at N + r; a uniform
    head copies the subject block to position 1. Hidden units, in a seeded random order:

    * fact units ``(r, s)``: ``ReLU(x_s + z_r - 1)`` (1 on query (s, r) only), writing ``f_r(s)`` one-hot
      into the answer block, which ``W_U`` reads;
    * ``shared`` units: ``ReLU(1)`` on every query, writing nothing;
    * a ``mixed`` unit: ``ReLU(z_0 + z_1 / 3)`` (share 3/4 on relation 0, 1/4 on 1);
    * a ``pair`` unit: ``ReLU(z_1 + z_2)`` (share 1/2 each);
    * ``dead`` units: always 0.
    """
    n, k_rel = world.n_subjects, world.n_relations
    n_shared, n_dead = 5, 4
    u_total = n * k_rel + n_shared + 2 + n_dead
    d, v = 2 * n + k_rel, n + k_rel
    order = np.random.default_rng(seed).permutation(u_total)
    fact = order[:n * k_rel].reshape(k_rel, n)  # fact[r, s] = the unit of (s, r)
    shared = order[n * k_rel:n * k_rel + n_shared]
    mixed, pair = order[n * k_rel + n_shared], order[n * k_rel + n_shared + 1]
    dead = order[n * k_rel + n_shared + 2:]
    cfg = ModelConfig(d_model=d, n_heads=1, d_head=n, d_mlp=u_total, layernorm=False, attn_bias=False,
                      attn_scale=1.0)
    model = Transformer(cfg, d_vocab=v, n_ctx=2)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        w_e = model.embed.W_E[0]
        w_e[:n, :n] = torch.eye(n)
        w_e[n + np.arange(k_rel), n + np.arange(k_rel)] = 1.0
        attn = model.blocks[0].attn
        attn.W_V[0, 0, :n] = torch.eye(n)
        attn.W_O[0, 0, :, :n] = 2 * torch.eye(n)  # alpha = (1/2, 1/2) at position 1
        mlp = model.blocks[0].mlp
        for r in range(k_rel):
            for s in range(n):
                u = fact[r, s]
                mlp.W_in[0, s, u] = mlp.W_in[0, n + r, u] = 1.0
                mlp.b_in[0, u] = -1.0
                mlp.W_out[0, u, n + k_rel + world.maps[r, s]] = 1.0
        mlp.b_in[0, shared] = 1.0
        mlp.W_in[0, n, mixed], mlp.W_in[0, n + 1, mixed] = 1.0, 1 / 3
        mlp.W_in[0, n + 1, pair] = mlp.W_in[0, n + 2, pair] = 1.0
        model.unembed.W_U[0, n + k_rel:, :n] = torch.eye(n)
    units = {"fact": fact, "shared": shared, "mixed": int(mixed), "pair": int(pair), "dead": dead}
    return model.eval(), units


@pytest.fixture(scope="module")
def planted():
    world = make_world(N, K, seed=0)
    model, units = planted_lookup(world)
    return model, world, units


def test_planted_attribution_recovers_the_assignment(planted):
    model, world, units = planted
    att = unit_attribution(model, world)
    fact, mixed, pair = units["fact"], units["mixed"], units["pair"]
    want = [sorted([*fact[r].tolist(), *([mixed] if r == 0 else []), *([pair] if r in (1, 2) else [])])
            for r in range(K)]
    assert att.units == want  # at 0.5 the pair unit is in both of its relations
    assert att.n_dead == len(units["dead"]) and att.n_units == fact.size + len(units["shared"]) + 2 + len(units["dead"])
    mean = np.array(att.mean_activation)
    np.testing.assert_allclose(mean[fact[1]], np.tile([0, 1 / N, 0], (N, 1)))
    np.testing.assert_allclose(np.array(att.share)[mixed], [0.75, 0.25, 0])
    np.testing.assert_allclose(np.array(att.share)[units["shared"]], 1 / K)
    # Above 1/2 a unit is in at most one relation: the pair unit drops out, the mixed one stays until 3/4.
    strict = unit_attribution(model, world, threshold=0.6)
    assert strict.units == [sorted([*fact[0].tolist(), mixed]), sorted(fact[1].tolist()), sorted(fact[2].tolist())]
    assert unit_attribution(model, world, threshold=0.8).units == [sorted(f.tolist()) for f in fact]
    # With the activity floor above a fact unit's mean (1/(NK)) only the mixed and the pair unit remain.
    assert unit_attribution(model, world, min_activation=1.5 / (N * K)).counts == [1, 1, 1]


def test_planted_ablation_is_diagonal_and_random_units_are_not(planted):
    model, world, units = planted
    planted_units = [sorted(f.tolist()) for f in units["fact"]]
    m = ablation_matrix(model, world, planted_units)
    drops = np.array(m.drops)
    assert m.clean == [1.0] * K and m.counts == [N] * K and m.n_draws == 1
    # Zeroing relation r's units leaves all logits 0; argmax is token 0, right only where f_r(s) = 0.
    np.testing.assert_allclose(np.diag(drops), 1 - 1 / N)
    assert (drops[~np.eye(K, dtype=bool)] == 0).all() and m.diagonal_fraction == 1.0
    control = random_unit_control(model, world, m.counts, n_draws=5, seed=0)
    assert control.n_draws == 5 and control.counts == m.counts
    assert control.diagonal_fraction < 1 / K + 0.15  # measured 0.32: random units hit every relation alike
    # A shuffled assignment (the planted units relabelled) is off-diagonal.
    shuffled = ablation_matrix(model, world, planted_units[1:] + planted_units[:1])
    assert shuffled.diagonal_fraction == 0.0
    assert random_unit_control(model, world, m.counts, seed=0).drops == control.drops  # seeded


def test_planted_mean_ablation(planted):
    model, world, units = planted
    # Mean ablation sets every fact unit to 1/(NK): each answer token gets the same logit, so the answer is
    # token 0 again for the ablated relation, and only it.
    m = ablation_matrix(model, world, [sorted(f.tolist()) for f in units["fact"]], mode="mean")
    drops = np.array(m.drops)
    np.testing.assert_allclose(np.diag(drops), 1 - 1 / N)
    assert m.diagonal_fraction == 1.0
    # Ablating always-on or dead units changes nothing, in either mode.
    for mode in ("zero", "mean"):
        np.testing.assert_array_equal(ablate(model, world, units["dead"].tolist(), mode=mode), 1.0)
    np.testing.assert_array_equal(ablate(model, world, units["shared"].tolist(), mode="zero"), 1.0)


# ---------------------------------------------------------------------------------------------------
# The constructions: the recorded gates are the units attribution finds, and ablating them is diagonal


@pytest.mark.parametrize("build", [build_selector, build_selector_mlp3])
@pytest.mark.parametrize("size", [(16, 3), (17, 2), (32, 4)])
def test_selector_gates_are_found_and_diagonal(build, size):
    c = build(make_world(*size, seed=0))
    n, k_rel = size
    hook = c.anatomy.gate_hook
    att = unit_attribution(c.model, c.world, hook=hook)
    assert [tuple(u) for u in att.units] == list(c.anatomy.gate_units)
    assert att.n_dead == 0
    m = ablation_matrix(c.model, c.world, att.units, hook=hook)
    drops = np.array(m.drops)
    assert m.clean == [1.0] * k_rel
    assert (drops[~np.eye(k_rel, dtype=bool)] == 0).all() and m.diagonal_fraction == 1.0
    np.testing.assert_allclose(np.diag(drops), 1 - 1 / n)  # every gate off: A = -1, the answer is subject 0
    # Random units of the same counts hit every relation alike: measured 0.50, 0.33, 0.27 at K = 2, 3, 4.
    control = random_unit_control(c.model, c.world, m.counts, hook=hook, n_draws=4, seed=0)
    assert control.diagonal_fraction < 1 / k_rel + 0.15


def test_selector_mlp3_first_layer_is_shared_plus_indicators():
    c = build_selector_mlp3(make_world(16, 3, seed=0))
    m = c.dims["m"]
    att = unit_attribution(c.model, c.world, hook="blocks.0.mlp.hook_post")
    # Units 0..Km-1 pass the subject's bits through for every relation (share 1/K); unit Km + r is r's indicator.
    assert att.units == [[K * m + r] for r in range(K)]
    np.testing.assert_allclose(np.array(att.share)[:K * m], 1 / K)


def _live_gate_units(world: World, gate_units) -> list[list[int]]:
    """The gates of disjoint-mlp that ever fire: bit i of some global index r n_A + j."""
    n_attr = world.vocab.attributes_per_relation
    out = []
    for r, units in enumerate(gate_units):
        codes = r * n_attr + world.maps[r]
        out.append([u for i, u in enumerate(units) if ((codes >> i) & 1).any()])
    return out


def test_disjoint_mlp_gates():
    world = make_world(16, 3, seed=0, attributes="disjoint")
    c = build_disjoint_mlp(world)
    hook = c.anatomy.gate_hook
    att = unit_attribution(c.model, world, hook=hook)
    live = _live_gate_units(world, c.anatomy.gate_units)
    assert att.units == live  # gates of bits no code of the relation sets never fire (dead)
    assert att.n_dead == sum(len(g) for g in c.anatomy.gate_units) - sum(len(g) for g in live)
    m = ablation_matrix(c.model, world, att.units, hook=hook)
    drops = np.array(m.drops)
    assert (drops[~np.eye(K, dtype=bool)] == 0).all() and m.diagonal_fraction == 1.0
    # With every gate of r off, the answer is attribute 0 of relation 0: right for relation 0 only.
    np.testing.assert_allclose(np.diag(drops), [1 - 1 / N, 1, 1])
    assert attribute_tokens(world)[0, 0] == world.vocab.attribute_offset


def test_diagonal_fraction():
    assert diagonal_fraction(np.eye(3)) == 1.0
    assert diagonal_fraction([[0.0, 0.0], [0.0, 0.0]]) is None
    assert diagonal_fraction([[1.0, -1.0], [1.0, 0.0]]) == 0.5  # negative drops count as 0
    with pytest.raises(ValueError, match="square"):
        diagonal_fraction([[1.0, 0.0]])


def test_empty_rows_and_bad_inputs(planted):
    model, world, units = planted
    m = ablation_matrix(model, world, [[], sorted(units["fact"][1].tolist()), []])
    assert np.array(m.drops)[[0, 2]].tolist() == [[0.0] * K] * 2 and m.counts == [0, N, 0]
    with pytest.raises(ValueError, match="unknown hook site"):
        unit_attribution(model, world, hook="blocks.0.mlp.hook_postt")
    with pytest.raises(ValueError, match="no hook site"):
        unit_attribution(model, world, hook="blocks.0.mlp.hook_post2")
    with pytest.raises(ValueError, match="negative"):
        unit_attribution(model, world, hook="blocks.0.mlp.hook_pre")
    with pytest.raises(ValueError, match="one entry per relation"):
        ablation_matrix(model, world, [[0], [1]])
    with pytest.raises(ValueError, match="one entry per relation"):
        random_unit_control(model, world, [1, 1])
    with pytest.raises(ValueError, match="vocabulary"):
        unit_attribution(model, make_world(N, K + 1, seed=0))
    with pytest.raises(ValueError, match="unit indices"):
        ablate(model, world, [10_000])
    with pytest.raises(ValueError, match="mode"):
        ablate(model, world, [0], mode="resample")
    with pytest.raises(ValueError, match="threshold"):
        unit_attribution(model, world, threshold=0.0)
    with pytest.raises(ValueError, match="activations of shape"):
        unit_attribution(model, world, hook="blocks.0.attn.hook_pattern")
    ensemble = Transformer(model.cfg, d_vocab=model.d_vocab, n_ctx=2, n_members=2)
    with pytest.raises(ValueError, match="single model"):
        unit_attribution(ensemble, world)
    attn_only = build_attention_only(make_world(N, K, seed=0))
    with pytest.raises(ValueError, match="no hook site"):
        ablate(attn_only.model, attn_only.world, [0])
