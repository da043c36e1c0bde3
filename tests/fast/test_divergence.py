"""Divergence: a member whose loss explodes (lr = 10) stops with its reason while the others train on,
in an ensemble and in a sweep; healthy runs are never flagged; the new field keeps earlier hashes."""

from __future__ import annotations

import dataclasses
import math

import pytest

from georecall.config import ModelConfig, RunConfig, TaskConfig, TrainConfig, config_hash, run_config_from_dict
from georecall.results.store import ResultStore
from georecall.training import train
from georecall.training.loop import divergence_reason
from georecall.training.sweep import expand_grid, run_sweep

# V = N + K = 18 tokens: ln V = 2.89, the initial loss of every member at this init.
BASE = RunConfig(task=TaskConfig(n_subjects=16, n_relations=2), model=ModelConfig(d_model=8, d_mlp=32),
                 train=TrainConfig(steps=300, eval_every=25, device="cpu"))


def test_the_rule_is_a_multiple_of_the_initial_loss_floored_at_uniform_guessing():
    ln_v = math.log(18)
    assert divergence_reason(28.0, 100, 2.8, 18, 10.0) is None  # 10 x max(2.8, 2.89) = 28.9
    why = divergence_reason(412.34, 300, 2.8, 18, 10.0)
    assert why == f"diverged: loss 412.3 at step 300, above 10x max(its initial 2.80, ln V {ln_v:.2f})"
    assert divergence_reason(60.0, 100, 7.0, 18, 10.0) is None  # started above ln V: measured against its start
    assert divergence_reason(71.0, 100, 7.0, 18, 10.0) is not None
    assert divergence_reason(1.0, 100, 1e-4, 18, 10.0) is None  # started near zero: ln V is the floor
    assert divergence_reason(1e9, 100, 2.8, 18, None) is None  # switched off
    assert divergence_reason(math.inf, 100, 2.8, 18, 10.0) is None  # left to the non-finite check
    assert divergence_reason(math.nan, 100, 2.8, 18, 10.0) is None


def _planted() -> RunConfig:
    return dataclasses.replace(BASE, seeds=(0, 1), lrs=(10.0, 1e-2))


def test_a_diverging_member_stops_with_its_reason_and_the_healthy_one_reaches_its_result():
    run = train(_planted())
    reason, steps = run.result.stop_reason[0], run.result.steps[0]
    assert reason.startswith("diverged: loss ") and f" at step {steps}, above 10x max(its initial " in reason
    assert 0 < steps < 300 and run.result.accuracy[0] < 0.5
    # The loss in the reason is the one recorded at that evaluation, above 10x the member's step-0 loss.
    mine = {m["step"]: m["loss"] for m in run.metrics if m["member"] == 0}
    assert steps % 25 == 0 and mine[steps] > 10 * max(mine[0], math.log(18))
    assert f"loss {mine[steps]:.1f} " in reason and max(mine) == steps  # nothing recorded after it stopped
    # The healthy member trains as it would alone.
    alone = train(dataclasses.replace(BASE, seeds=(1,)))
    assert run.result.stop_reason[1] == alone.result.stop_reason[0] == "target"
    assert run.result.accuracy[1] == alone.result.accuracy[0] == 1.0
    assert run.result.steps[1] == alone.result.steps[0]


def test_a_healthy_run_at_the_default_lr_is_not_flagged():
    run = train(dataclasses.replace(BASE, seeds=(0, 1, 2)))
    assert run.result.stop_reason == ["target"] * 3 and run.result.accuracy == [1.0] * 3
    assert max(m["loss"] for m in run.metrics) <= 1.01 * max(m["loss"] for m in run.metrics if m["step"] == 0)


def test_a_sweep_records_the_diverged_run_as_done_and_trains_the_others(tmp_path):
    runs = expand_grid(BASE, {"train.lr": [10.0, 1e-2], "seeds": [0, 1]})
    report = run_sweep(runs, tmp_path, experiment="div", device="cpu")
    assert (report.total, report.trained, report.failed) == (4, 4, 0)
    with ResultStore(tmp_path / "results.sqlite") as store:
        rows = store.rows("div")
    assert len(rows) == 4 and {r["status"] for r in rows} == {"done"}
    for row in rows:
        (reason,), (acc,) = row["result"]["stop_reason"], row["result"]["accuracy"]
        if row["config"]["train"]["lr"] == 10.0:
            assert reason.startswith("diverged: loss ") and "above 10x" in reason and acc < 0.5
        else:
            assert reason == "target" and acc == 1.0


def test_the_factor_is_part_of_the_identity_except_at_its_default():
    default = RunConfig()
    assert default.config_hash() == "d6efeb50bf32820ae9a2d81b256388cb2223092edf8052d1a73e011825850fd5"
    data = BASE.to_dict()
    del data["train"]["divergence_factor"]  # a config saved before the field existed
    assert run_config_from_dict(data) == BASE and config_hash(run_config_from_dict(data)) == config_hash(BASE)
    for factor in (20.0, None):
        other = dataclasses.replace(BASE, train=dataclasses.replace(BASE.train, divergence_factor=factor))
        assert other.config_hash() != BASE.config_hash()
    for bad in (1.0, 0.5, math.inf, math.nan):
        with pytest.raises(ValueError, match="divergence_factor"):
            TrainConfig(divergence_factor=bad)


def test_switched_off_a_diverging_member_runs_its_budget():
    cfg = dataclasses.replace(_planted(), train=dataclasses.replace(BASE.train, steps=60, divergence_factor=None))
    run = train(cfg)
    assert run.result.stop_reason[0] == "budget" and run.result.steps[0] == 60
