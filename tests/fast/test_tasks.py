"""Worlds and query sets: bijections, composition, formats, sampling, limits."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from georecall.config import TaskConfig
from georecall.tasks import Vocab, make_queries, make_world, n_query_space, stack_queries, world_for

sizes = st.tuples(st.integers(2, 40), st.integers(1, 5), st.integers(0, 2**31 - 1))


@settings(max_examples=40, deadline=None)
@given(sizes)
def test_every_relation_is_a_bijection(args):
    n, k, seed = args
    w = make_world(n, k, seed=seed)
    assert w.maps.shape == (k, n)
    for row in w.maps:
        assert np.array_equal(np.sort(row), np.arange(n))
    assert w.is_bijective()


@settings(max_examples=30, deadline=None)
@given(sizes, st.integers(1, 3))
def test_k_hop_answer_is_the_composition_r1_first(args, hops):
    n, k, seed = args
    if k ** hops * n > 20000:
        return
    w = make_world(n, k, seed=seed)
    q = make_queries(w, TaskConfig(n_subjects=n, n_relations=k, n_hops=hops))
    assert len(q) == n * k ** hops  # every chain, once
    assert len({tuple(t) for t in q.tokens.tolist()}) == len(q)
    for tokens, target in zip(q.tokens.tolist()[:200], q.targets[:200, 0].tolist(), strict=True):
        cur = tokens[0]
        for rel_token in tokens[1:]:  # r_1 first
            cur = int(w.maps[rel_token - n, cur])
        assert cur == target


def test_same_seed_same_world_and_redraw_differs():
    a, b = make_world(50, 3, seed=7), make_world(50, 3, seed=7)
    assert np.array_equal(a.maps, b.maps)
    c = a.redraw(8)
    assert c.maps.shape == a.maps.shape and c.is_bijective() and not np.array_equal(c.maps, a.maps)
    # world_seed pins one world for every member; None gives each seed its own.
    t = TaskConfig(n_subjects=50, n_relations=3)
    assert not np.array_equal(world_for(t, 1).maps, world_for(t, 2).maps)
    pinned = TaskConfig(n_subjects=50, n_relations=3, world_seed=5)
    assert np.array_equal(world_for(pinned, 1).maps, world_for(pinned, 2).maps)


def test_cot_formats_follow_the_documented_layout():
    n, k_rel, hops = 6, 2, 3
    w = make_world(n, k_rel, seed=1)
    a = make_queries(w, TaskConfig(n_subjects=n, n_relations=k_rel, n_hops=hops, cot="interleaved"))
    b = make_queries(w, TaskConfig(n_subjects=n, n_relations=k_rel, n_hops=hops, cot="question_first"))
    assert a.positions == (1, 3, 5) and b.positions == (3, 4, 5)
    for i in range(len(a)):
        s0, chain = int(a.subjects[i]), a.chains[i].numpy()
        path = w.apply(np.array([s0]), chain[None])[0]
        assert a.tokens[i].tolist() == [s0, n + chain[0], path[0], n + chain[1], path[1], n + chain[2]]
        assert b.tokens[i].tolist() == [s0, n + chain[0], n + chain[1], n + chain[2], path[0], path[1]]
        assert a.targets[i].tolist() == list(path) == b.targets[i].tolist()
        assert a.relations[i].tolist() == list(chain)


def test_disjoint_world_uses_its_own_attribute_tokens_and_allows_functions():
    w = make_world(10, 3, seed=0, attributes="disjoint", n_attributes=4, bijective=False)
    assert not w.is_bijective()
    task = TaskConfig(n_subjects=10, n_relations=3, attributes="disjoint", n_attributes=4, bijective=False)
    q = make_queries(w, task)
    v = w.vocab
    assert v.d_vocab == 10 + 3 + 12
    for (s, rt), t in zip(q.tokens.tolist(), q.targets[:, 0].tolist(), strict=True):
        r = rt - 10
        assert v.decode(t) == ("attribute", r, int(w.maps[r, s]))
        assert t == v.attribute(r, int(w.maps[r, s]))


def test_vocab_layout_is_documented_and_checked():
    v = Vocab(5, 2)
    assert v.d_vocab == 7 and v.relation(1) == 6 and v.attribute(0, 3) == 3
    assert v.decode(0) == ("subject", 0) and v.decode(5) == ("relation", 0)
    with pytest.raises(ValueError, match="out of range"):
        v.subject(5)


def test_sampling_without_replacement_beyond_the_limit():
    task = TaskConfig(n_subjects=100, n_relations=8, n_hops=6, max_queries=5000)
    assert n_query_space(task) == 100 * 8**6
    w = make_world(100, 8, seed=0)
    q = make_queries(w, task, seed=3)
    assert len(q) == 5000 and q.sampled
    assert len({tuple(t) for t in q.tokens.tolist()}) == 5000  # without replacement
    again = make_queries(w, task, seed=3)
    assert torch.equal(q.tokens, again.tokens)  # from a seed
    assert not torch.equal(q.tokens, make_queries(w, task, seed=4).tokens)


def test_huge_space_samples_digit_by_digit():
    task = TaskConfig(n_subjects=1000, n_relations=20, n_hops=15, n_queries=300)  # 1000*20^15 > 2^62
    q = make_queries(make_world(1000, 20, seed=0), task)
    assert len(q) == 300 and len({tuple(t) for t in q.tokens.tolist()}) == 300


@pytest.mark.parametrize(("n_queries", "match"), [(10**9, "over the memory limit"), (65, "only N\\*K\\^k = 64")])
def test_requests_that_cannot_be_served_say_how_many(n_queries, match):
    task = TaskConfig(n_subjects=16, n_relations=2, n_hops=2, n_queries=n_queries)
    with pytest.raises(ValueError, match=match):
        make_queries(make_world(16, 2, seed=0), task)


def test_stacking_adds_a_member_axis():
    task = TaskConfig(n_subjects=8, n_relations=2)
    qs = stack_queries([make_queries(world_for(task, s), task) for s in (0, 1, 2)])
    assert qs.tokens.shape == (3, 16, 2) and qs.targets.shape == (3, 16, 1) and len(qs) == 16
