"""Training support for freeze-and-swap: freezing by name pattern, starting from another run's parameters
(``init_from``), training past the target (``stop_at_target``), and new worlds of the same seed."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from georecall.config import ModelConfig, RunConfig, TaskConfig, TrainConfig, config_hash, run_config_from_dict
from georecall.results.store import STORE_NAME, ResultStore
from georecall.tasks import world_for
from georecall.training import train
from georecall.training.sweep import group_runs, run_sweep, single_runs

TASK = TaskConfig(n_subjects=8, n_relations=2)
MODEL = ModelConfig(d_model=12, d_mlp=24, init_std=12 ** -0.5, unembed_init_std=12 ** -0.5)
BODY = ("pos_embed.*", "blocks.*", "ln_final.*", "unembed.*")


def _run(seed: int = 0, **train_kw) -> RunConfig:
    train_kw = {"steps": 30, "lr": 3e-2, "eval_every": 10, "warmup_steps": 5, **train_kw}
    return RunConfig(task=TASK, model=MODEL, train=TrainConfig(**train_kw), seeds=(seed,))


def test_defaults_leave_every_earlier_hash_unchanged():
    base = _run()
    data = base.to_dict()
    for section, name in [("train", "stop_at_target"), ("train", "freeze"), ("task", "world_variant")]:
        del data[section][name]
    del data["init_from"], data["init_params"]
    rebuilt = run_config_from_dict(data)
    assert rebuilt == base and config_hash(rebuilt) == config_hash(base)
    assert config_hash(dataclasses.replace(base, task=dataclasses.replace(TASK, world_variant=1))) != config_hash(base)
    assert config_hash(_run(stop_at_target=False)) != config_hash(base)


def test_freeze_keeps_matching_parameters_at_their_start():
    run = train(_run(freeze=("blocks.*", "unembed.W_U")))
    fresh = train(_run(steps=0)).model
    for name, p in run.model.state_dict().items():
        same = torch.equal(p, fresh.state_dict()[name])
        assert same == (name.startswith("blocks.") or name == "unembed.W_U"), name


def test_a_freeze_pattern_that_matches_nothing_is_refused():
    with pytest.raises(ValueError, match="match no parameter"):
        train(_run(freeze=("block.*",)))


def test_stop_at_target_false_trains_the_whole_budget_and_records_the_first_hit():
    early = train(_run(steps=200, target_accuracy=0.9))
    full = train(_run(steps=200, target_accuracy=0.9, stop_at_target=False))
    assert early.result.stop_reason == ["target"] and early.result.first_target_step == early.result.steps
    assert full.result.steps == [200] and full.result.stop_reason == ["budget"]
    assert full.result.first_target_step == early.result.first_target_step  # same trajectory up to the hit


def test_world_variant_draws_new_bijections_of_the_same_seed():
    w0 = world_for(TASK, 3)
    w1 = world_for(dataclasses.replace(TASK, world_variant=1), 3)
    again = world_for(dataclasses.replace(TASK, world_variant=1), 3)
    assert w1.is_bijective() and np.array_equal(w1.maps, again.maps) and not np.array_equal(w0.maps, w1.maps)


@pytest.mark.parametrize("bad, match", [
    ({"init_from": ("a" * 64,)}, "init_params"),
    ({"init_params": ("blocks.*",)}, "needs init_from"),
    ({"init_from": ("xyz",), "init_params": ("blocks.*",)}, "64 hex"),
    ({"init_from": ("a" * 64, "b" * 64), "init_params": ("blocks.*",)}, "one source run per seed"),
])
def test_init_from_is_validated(bad, match):
    with pytest.raises(ValueError, match=match):
        dataclasses.replace(_run(), **bad)


def _swap(source: RunConfig, seed: int) -> RunConfig:
    """An embeddings-only run on new bijections, starting from ``source``'s body."""
    return RunConfig(task=dataclasses.replace(TASK, world_variant=1), model=MODEL,
                     train=TrainConfig(steps=30, lr=3e-2, eval_every=10, warmup_steps=5, freeze=BODY),
                     seeds=(seed,), init_from=(source.config_hash(),), init_params=BODY)


def test_dependent_runs_pack_into_ensembles_and_split_back():
    sources = [_run(s) for s in (0, 1)]
    deps = [_swap(src, s) for s, src in zip((0, 1), sources, strict=True)]
    groups = group_runs([*deps, *sources], max_members=8)
    assert [g.init_from is None for g in groups] == [True, False]  # sources first
    assert groups[1].init_from == tuple(d.init_from[0] for d in deps)
    assert [r.config_hash() for r in single_runs(groups[1])] == [d.config_hash() for d in deps]


def test_init_from_through_a_sweep_copies_the_source_and_resumes(tmp_path):
    sources = [_run(s) for s in (0, 1)]
    deps = [_swap(src, s) for s, src in zip((0, 1), sources, strict=True)]
    # A dependent whose source is not trained fails with the reason and is retried later.
    first = run_sweep(deps[:1], tmp_path, experiment="t")
    assert first.failed == 1
    with ResultStore(tmp_path / STORE_NAME) as store:
        assert "not finished" in store.get(deps[0].config_hash())["error"]
    report = run_sweep([*deps, *sources], tmp_path, experiment="t")  # dependents listed first on purpose
    assert report.failed == 0 and report.trained == 4
    with ResultStore(tmp_path / STORE_NAME) as store:
        rows = {h: store.get(h) for h in (r.config_hash() for r in [*sources, *deps])}
    for src, dep in zip(sources, deps, strict=True):
        s_state = load_file(str(tmp_path / rows[src.config_hash()]["run_dir"] / "model.safetensors"))
        d_state = load_file(str(tmp_path / rows[dep.config_hash()]["run_dir"] / "model.safetensors"))
        for name in s_state:
            copied = name.split(".")[0] in {"pos_embed", "blocks", "ln_final", "unembed"}
            assert torch.equal(s_state[name], d_state[name]) == copied, name
    again = run_sweep([*sources, *deps], tmp_path, experiment="t")
    assert (again.skipped, again.trained) == (4, 0)


def test_one_ensemble_may_hold_a_seed_twice_from_two_sources():
    """Two source models of one shape (e.g. two conditions at one d) give dependents of one shape and seed."""
    a, b = _run(0), _run(0, weight_decay=0.1)
    groups = group_runs([_swap(a, 0), _swap(b, 0)], max_members=8)
    assert len(groups) == 1 and groups[0].seeds == (0, 0)
    assert [r.config_hash() for r in single_runs(groups[0])] == [_swap(a, 0).config_hash(), _swap(b, 0).config_hash()]
    with pytest.raises(ValueError, match="must be distinct"):
        dataclasses.replace(groups[0], init_from=(a.config_hash(), a.config_hash()))
