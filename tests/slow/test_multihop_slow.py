"""Slow tier, multihop: the quick recipe trains three hops at N = 16 in the bound's class and with CoT, and CoT
greedy generation agrees with teacher-forced chain accuracy."""

import dataclasses

import pytest

from georecall.experiments import multihop as mh
from georecall.tasks import make_queries, stack_queries
from georecall.training import score_generation, train

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("condition", ["direct-frozen", "cot-frozen"])
def test_three_hops_train_at_the_quick_recipe(condition):
    # Measured by the quick run (2026-12-01): N = 16, k = 3 works at d = 12 (direct, depth 3) and d = 8 (CoT).
    cfg = mh.config("quick")
    rung = cfg.ladder.index(24) + 1  # above both measured sizes
    run_cfg = mh.run_config(cfg, 16, 3, condition, rung, 0)
    run = train(dataclasses.replace(run_cfg, seeds=(0, 1, 2)))
    assert sum(a >= cfg.success_accuracy for a in run.result.accuracy) >= 2, run.result
    if condition.startswith("cot"):
        queries = stack_queries([make_queries(w, run.config.task, seed=s)
                                 for w, s in zip(run.worlds, run.config.seeds, strict=True)])
        greedy = score_generation(run.model, run.worlds, queries)
        assert greedy.chain_accuracy == pytest.approx(run.result.accuracy, abs=1e-9)
