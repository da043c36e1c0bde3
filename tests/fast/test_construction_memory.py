"""Scoring a construction on long chains: the query set (queries x tokens) and the attention scores (T^2 per
query) grow with the hops while the weights stay small. Both are estimated before anything is allocated; a
set that does not fit is refused in one line naming the estimate and the limit, and the forward runs in
chunks small enough to stay bounded."""

from __future__ import annotations

import time

import pytest

import georecall.constructions
import georecall.machine
from georecall.cli import main
from georecall.config import TaskConfig
from georecall.constructions import CONSTRUCTIONS, build_construction, score_construction
from georecall.constructions import base as cbase
from georecall.constructions.registry import check_construction_scoring, construction_scoring_memory
from georecall.tasks import make_queries, make_world
from georecall.tasks.queries import QUERY_BYTES_PER_TOKEN, query_set_bytes

GIB = 1 << 30


def _no_build(*args, **kwargs):
    raise AssertionError("nothing may be built for a refused size")


def test_the_query_set_estimate_is_queries_times_tokens_and_bounds_what_is_allocated():
    long = TaskConfig(n_subjects=8, n_relations=2, n_hops=1000)  # 8 * 2^1000 chains: a 2^21 sample
    assert query_set_bytes(long) == (1 << 21) * 1001 * QUERY_BYTES_PER_TOKEN  # 78 GiB
    small = TaskConfig(n_subjects=8, n_relations=2, n_hops=64, n_queries=256)
    q = make_queries(make_world(8, 2, seed=0), small)
    held = sum(t.numel() * t.element_size() for t in (q.tokens, q.targets, q.relations, q.subjects, q.chains))
    assert held < query_set_bytes(small) < 4 * held


def test_the_closed_form_estimate_matches_the_built_model():
    for name, recipe in CONSTRUCTIONS.items():
        k = recipe.hops or 2
        c = build_construction(name, 37, 3, k)
        built = cbase.model_scoring_memory(c, c.task)
        assert construction_scoring_memory(name, 37, 3, k) == built, name


def test_long_chains_are_scored_in_smaller_chunks_with_the_same_result(monkeypatch):
    c = build_construction("kv-memory", 8, 2, 12)
    whole = score_construction(c, n_queries=512)
    monkeypatch.setattr(cbase, "FORWARD_BYTES", 1 << 20)  # 1 MB: a few dozen queries of 13 tokens at a time
    mem = cbase.model_scoring_memory(c, TaskConfig(n_subjects=8, n_relations=2, n_hops=12, n_queries=512))
    assert 1 < mem.chunk < 512 and mem.forward <= 1 << 20
    assert score_construction(c, n_queries=512) == whole and whole.accuracy == 1.0


def test_a_set_that_does_not_fit_is_refused_with_the_estimate_and_the_limit():
    mem = construction_scoring_memory("kv-memory", 8, 2, 1000)
    assert mem.n_queries == 1 << 21 and mem.n_ctx == 1001 and mem.forward <= cbase.FORWARD_BYTES
    with pytest.raises(ValueError) as err:
        check_construction_scoring("kv-memory", 8, 2, 1000, limit=16 * GIB)
    msg = str(err.value)
    assert msg.startswith("scoring kv-memory at N=8, K=2, k=1000 needs about 80.2 GB of memory")
    assert "2,097,152 queries of 1,001 tokens: 78.2 GB" in msg and "(16.0 GB)" in msg and "--n-queries" in msg
    check_construction_scoring("kv-memory", 8, 2, 1000, n_queries=64, limit=16 * GIB)  # a sample fits


def test_score_construction_refuses_before_making_the_queries(monkeypatch):
    c = build_construction("kv-memory", 8, 2, 40)
    monkeypatch.setattr(georecall.machine, "available_bytes", lambda: 64 << 20)
    monkeypatch.setattr(cbase, "make_queries", _no_build)
    with pytest.raises(ValueError, match=r"more than this machine has \(64.0 MB\)"):
        score_construction(c)


@pytest.mark.parametrize("hops", ["2000", "1000"])
def test_cli_refuses_long_chains_in_one_line_quickly_without_building(hops, monkeypatch, capsys):
    monkeypatch.setattr(georecall.machine, "available_bytes", lambda: 16 * GIB)  # any machine the same
    monkeypatch.setattr(georecall.constructions, "build_construction", _no_build)
    t0 = time.perf_counter()
    assert main(["construct", "kv-memory", "--n-subjects", "8", "--n-relations", "2", "--hops", hops]) == 2
    assert time.perf_counter() - t0 < 5
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("georecall: error:") and hops in err, err
    if hops == "1000":
        assert "needs about 80.2 GB" in err and "16.0 GB" in err


def test_cli_still_refuses_a_precompute_whose_weights_do_not_fit(capsys):
    assert main(["construct", "precompute", "--n-subjects", "1000", "--n-relations", "8", "--hops", "6"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "construction precompute" in err and "TB of memory" in err, err


def test_a_moderate_chain_still_scores_every_query(capsys):
    assert main(["construct", "kv-memory", "--n-subjects", "64", "--n-relations", "2", "--hops", "6"]) == 0
    out = capsys.readouterr().out
    assert "accuracy 1.000000 on 4,096 of 4,096 queries" in out
