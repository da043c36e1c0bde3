"""Configs: checks at the edge, JSON round-trip with a stable hash, typed overrides."""

import dataclasses

import pytest

from georecall.config import (
    ModelConfig,
    RunConfig,
    TaskConfig,
    TrainConfig,
    apply_overrides,
    config_hash,
    run_config_from_dict,
)


def test_round_trip_and_stable_hash():
    cfg = RunConfig(task=TaskConfig(n_subjects=64, n_relations=3, n_hops=2, cot="interleaved"),
                    model=ModelConfig(d_model=24, n_heads=3, d_mlp2=16), train=TrainConfig(betas=(0.8, 0.9)),
                    seeds=(3, 1))
    again = run_config_from_dict(cfg.to_dict())
    assert again == cfg
    assert config_hash(again) == config_hash(cfg)
    # The hash is a function of content: a different field gives a different hash.
    assert config_hash(dataclasses.replace(cfg, seeds=(3, 2))) != config_hash(cfg)
    assert len(cfg.config_hash()) == 64
    # Where a run executes is not part of what it is.
    moved = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, device="cpu", eval_chunk=7))
    assert config_hash(moved) == config_hash(cfg)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: TaskConfig(n_subjects=1), "n_subjects must be >= 2"),
        (lambda: TaskConfig(n_relations=0), "n_relations must be >= 1"),
        (lambda: TaskConfig(n_hops=0), r"n_hops must be in \[1, 1000\], got 0"),
        (lambda: TaskConfig(n_hops=10**20), r"n_hops must be in \[1, 1000\], got 10+"),
        (lambda: TaskConfig(attributes="disjoint", n_hops=2), "single-hop"),
        (lambda: TaskConfig(attributes="disjoint", n_attributes=7), "bijective"),
        (lambda: ModelConfig(d_model=0), "d_model must be >= 1"),
        (lambda: ModelConfig(d_model=30, n_heads=4), "divisible by n_heads"),
        (lambda: TrainConfig(device="tpu"), "unknown device"),
        (lambda: TrainConfig(lr=0), "lr must be > 0"),
        (lambda: RunConfig(seeds=(1, 1)), "distinct"),
    ],
)
def test_bad_values_raise_value_error_naming_the_field(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_d_head_lifts_divisibility():
    assert ModelConfig(d_model=30, n_heads=4, d_head=8).head_dim == 8


def test_overrides_are_typed_and_checked():
    cfg = apply_overrides(RunConfig(), ["model.d_mlp=64", "train.batch_size=none", "task.cot=interleaved",
                                        "model.layernorm=false", "train.betas=0.9,0.95"])
    assert cfg.model.d_mlp == 64 and cfg.train.batch_size is None and cfg.task.cot == "interleaved"
    assert cfg.model.layernorm is False and cfg.train.betas == (0.9, 0.95)
    for bad, match in [("model.d_mlp", "malformed"), ("model.nope=1", "unknown key 'model.nope'"),
                       ("foo.x=1", "unknown section"), ("model.d_mlp=abc", "expects int"),
                       ("task.cot=sideways", "expects"), ("model.d_model=0", "d_model must be >= 1")]:
        with pytest.raises(ValueError, match=match):
            apply_overrides(RunConfig(), [bad])


def test_unknown_keys_in_stored_config_are_rejected():
    data = RunConfig().to_dict()
    data["model"]["bogus"] = 1
    with pytest.raises(ValueError, match="unknown key"):
        run_config_from_dict(data)


def test_hashes_of_runs_stored_before_new_fields_still_hold():
    # Computed at commit b521f71, before train.compile and train.readout_dtype existed: stores keyed by
    # these hashes must still recognise their finished runs.
    assert RunConfig().config_hash() == "d6efeb50bf32820ae9a2d81b256388cb2223092edf8052d1a73e011825850fd5"
    cfg = RunConfig(task=TaskConfig(n_subjects=64, n_relations=3, n_hops=2), model=ModelConfig(d_model=16, n_layers=2),
                    train=TrainConfig(steps=10, lr=3e-3, compile=True), seeds=(4,))
    assert cfg.config_hash() == "765eca2b4b14f021cea0b9ff90e8eaf8796ef2c0f492cb12d497a221e8c3e9f5"
    bf16 = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, readout_dtype="bfloat16"))
    assert bf16.config_hash() != cfg.config_hash()
