"""Theorem 4.4 (docs/theory.md §5): one-layer CoT models, executed by greedy generation on their chains."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from georecall.constructions import n_bits, score_construction
from georecall.constructions.cot import build_cot, cot_formula
from georecall.tasks import make_queries, make_world
from georecall.training.evaluate import generate_cot

FORMATS = ("interleaved", "question_first")

# Off-target attention mass is about 2 e^{-beta} = 9e-5 at beta = 10 (G4, docs/theory.md §1.4), which moves each
# answer coordinate by a few times that: docs/theory.md §5.3 measures 2.000 (A) and 1.999 (B). 1e-2 is loose.
MARGIN_TOL = 1e-2


SMALL = [(16, 2, 1), (16, 2, 3), (16, 2, 5), (13, 3, 2), (31, 5, 2)]  # (N, K, k); 13 is prime


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(("n", "k_rel", "n_hops"), SMALL)
def test_every_chain_is_generated_exactly(n: int, k_rel: int, n_hops: int, fmt: str,
                                          dtype: torch.dtype) -> None:
    c = build_cot(make_world(n, k_rel, seed=n + k_rel), n_hops, fmt=fmt, dtype=dtype)
    score = score_construction(c)
    assert score.n_queries == score.n_query_space == n * k_rel ** n_hops  # all chains, none sampled
    assert score.accuracy == 1.0
    assert 2 - MARGIN_TOL < score.min_margin <= 2 + 1e-6  # the decoding lemma's margin is at most 2


@pytest.mark.parametrize("fmt", FORMATS)
def test_long_chain_on_a_sample(fmt: str) -> None:
    # k = 12: T = 25 positions, pointer scores of size beta T^2 ~ 6e3 cancel in float32 (docs/theory.md §7).
    c = build_cot(make_world(257, 5, seed=3), 12, fmt=fmt)
    score = score_construction(c, n_queries=2000)
    assert score.n_queries == 2000 < score.n_query_space
    assert score.accuracy == 1.0
    assert score.min_margin > 2 - MARGIN_TOL


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(("n", "k_rel", "n_hops"), [(16, 2, 1), (16, 2, 8), (13, 3, 2), (1000, 4, 12)])
def test_counts_equal_the_formulas(n: int, k_rel: int, n_hops: int, fmt: str) -> None:
    c = build_cot(make_world(n, k_rel, seed=0), n_hops, fmt=fmt)
    assert c.params == c.formula == cot_formula(n, k_rel, n_hops, fmt=fmt)
    d, v = c.dims["d_model"], n + k_rel
    assert c.params["embedding"] == c.params["unembedding"] == d * v
    assert c.params["positional"] == d * (2 * n_hops + 1) == d * c.dims["n_ctx"]
    assert c.model.pos_embed.W_pos.shape == (1, 2 * n_hops + 1, d)


# docs/theory.md §5.3: N, K -> (A: d, MLP width, attn, MLP params), (B: d, attn, MLP params).
TABLE = {
    (16, 2): ((17, 8, 374, 297), (28, 840, 484)),
    (100, 3): ((34, 21, 1632, 1483), (59, 3422, 2558)),
    (257, 5): ((62, 45, 5952, 5687), (113, 12430, 10328)),
    (1000, 4): ((57, 40, 4902, 4657), (102, 9996, 8302)),
}


@pytest.mark.parametrize(("n", "k_rel"), sorted(TABLE))
def test_dims_match_theory_table(n: int, k_rel: int) -> None:
    (d_a, w_a, attn_a, mlp_a), (d_b, attn_b, mlp_b) = TABLE[n, k_rel]
    m = n_bits(n)
    for n_hops in (2, 5):  # the same sizes for every k
        a = build_cot(make_world(n, k_rel, seed=1), n_hops, fmt="interleaved")
        assert a.name == "cot"
        assert (a.dims["d_model"], a.dims["mlp_widths"], a.params["attention"], a.params["mlp"]) == \
            (d_a, [w_a], attn_a, mlp_a)
        assert (a.dims["n_layers"], a.dims["n_heads"], a.dims["heads"]) == (1, 1, [[(3, k_rel * m)]])
        b = build_cot(make_world(n, k_rel, seed=1), n_hops, fmt="question_first")
        assert b.name == "cot-question-first"
        assert (b.dims["d_model"], b.dims["mlp_widths"], b.params["attention"], b.params["mlp"]) == \
            (d_b, [w_a], attn_b, mlp_b)
        assert (b.dims["n_layers"], b.dims["n_heads"]) == (1, 2)
        assert b.dims["heads"] == [[(3, k_rel), (2, k_rel * m)]]
        for c in (a, b):
            assert c.dims["m"] == m and c.dims["beta"] == 10.0 and c.dims["n_ctx"] == 2 * n_hops + 1
            assert c.anatomy.content_bits == {"P": 0, "B_e": k_rel * m}  # docs/theory.md §6.6
            assert c.anatomy.readout == "fixed"
            assert c.theorem.startswith("Theorem 4.4")
            assert c.task.n_hops == n_hops and c.task.cot in FORMATS


def test_format_a_weights_do_not_depend_on_k() -> None:
    world = make_world(16, 2, seed=5)
    short, long = (build_cot(world, k).model.state_dict() for k in (2, 5))
    assert short.keys() == long.keys()
    for name in short:
        if name == "pos_embed.W_pos":  # the table only grows: its first 2k + 1 rows are shared
            assert torch.equal(long[name][:, : short[name].shape[1]], short[name])
        else:
            assert torch.equal(short[name], long[name]), name


def test_format_a_reads_the_previous_token() -> None:
    # The mechanism, not only the outcome: at r_j the head sits on s_{j-1} (G4, offset 1).
    c = build_cot(make_world(16, 2, seed=0), 4)
    tokens = torch.tensor([[3, 16, 5, 17, 9, 16, 0, 17]])
    _, cache = c.model.run_with_cache(tokens, ["blocks.0.attn.hook_pattern"])
    pattern = cache["blocks.0.attn.hook_pattern"][0, 0, 0]  # [T, T]
    for t in range(1, 8, 2):
        assert pattern[t, t - 1] > 1 - 1e-3  # off-target mass ~2 e^{-10} = 9e-5


@pytest.mark.parametrize("fmt", FORMATS)
def test_ablating_one_relations_gates_breaks_only_its_chains(fmt: str) -> None:
    world = make_world(16, 3, seed=2)
    c = build_cot(world, 2, fmt=fmt)
    queries = make_queries(world, c.task)
    units = list(c.anatomy.gate_units[0])

    def ablate(act: torch.Tensor, hook: object) -> torch.Tensor:
        act = act.clone()
        act[..., units] = 0.0  # act: [E, B, T, d_mlp]
        return act

    with c.model.hooks([(c.anatomy.gate_hook, ablate)]):
        emitted = generate_cot(c.model, queries.subjects, queries.chains, fmt, n_subjects=16)[0]  # [B, k]
    right = (emitted == queries.targets).all(-1)
    uses = (queries.chains == 0).any(-1)
    assert right[~uses].all()
    # With relation 0's gates off the answer block reads c(0) = (-1, ..., -1): right only by coincidence.
    assert right[uses].float().mean() < 0.2


@pytest.mark.parametrize("fmt", FORMATS)
def test_too_small_beta_gets_chains_wrong(fmt: str) -> None:
    # beta = 0.1 makes the pointers nearly uniform: the copied tree is a blur of several subjects.
    c = build_cot(make_world(16, 2, seed=0), 3, fmt=fmt, beta=0.1)
    assert score_construction(c).accuracy < 0.5


@pytest.mark.parametrize("fmt", FORMATS)
def test_scored_against_another_world_fails(fmt: str) -> None:
    world = make_world(16, 2, seed=0)
    c = build_cot(world, 3, fmt=fmt)
    wrong = dataclasses.replace(c, world=world.redraw(seed=1))
    # A chain of 3 hops is right by chance with probability about 1/16^3 per chain.
    assert score_construction(wrong).accuracy < 0.1


def test_refuses_under_autocast() -> None:
    c = build_cot(make_world(16, 2, seed=0), 2)
    with torch.autocast("cpu", dtype=torch.bfloat16), pytest.raises(RuntimeError, match="autocast"):
        score_construction(c)


def test_rejects_bad_arguments() -> None:
    world = make_world(16, 2, seed=0)
    with pytest.raises(ValueError, match="fmt"):
        build_cot(world, 2, fmt="none")
    with pytest.raises(ValueError, match="fmt"):
        build_cot(world, 2, fmt="A")
    with pytest.raises(ValueError, match="n_hops"):
        build_cot(world, 0)
    with pytest.raises(ValueError, match="beta"):
        build_cot(world, 2, beta=0.0)
    with pytest.raises(ValueError, match="shared"):
        build_cot(make_world(16, 2, seed=0, attributes="disjoint"), 1)
