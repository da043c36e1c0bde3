"""Slow tier: larger trained models, several seeds."""

import pytest

from georecall.config import ModelConfig, RunConfig, TaskConfig, TrainConfig
from georecall.training import train

pytestmark = pytest.mark.slow


def test_two_hop_without_cot_trains_a_two_layer_model():
    # Measured: without weight decay one of three seeds stalled at 0.97 after 6000 steps (lr 3e-3);
    # with weight decay 0.1 at lr 1e-2 all three reached 100 % within 520 steps.
    cfg = RunConfig(task=TaskConfig(n_subjects=32, n_relations=2, n_hops=2),
                    model=ModelConfig(d_model=64, n_layers=2, n_heads=2, d_mlp=256),
                    train=TrainConfig(steps=4000, lr=1e-2, weight_decay=0.1, eval_every=100), seeds=(0, 1, 2))
    run = train(cfg)
    assert all(a >= 0.99 for a in run.result.accuracy), run.result


def test_larger_world_three_seeds_learned_embeddings():
    cfg = RunConfig(task=TaskConfig(n_subjects=2048, n_relations=8), model=ModelConfig(d_model=64, d_mlp=256),
                    train=TrainConfig(steps=3000, eval_every=100), seeds=(0, 1, 2))
    run = train(cfg)
    assert all(a >= 0.99 for a in run.result.accuracy), run.result


def test_compiled_body_trains_the_same_models():
    # torch.compile changes the order of floating-point operations only: after 30 steps the losses agree
    # closely and the same members reach the same accuracy.
    def run(compile_):
        cfg = RunConfig(task=TaskConfig(n_subjects=64, n_relations=3), model=ModelConfig(d_model=16),
                        train=TrainConfig(steps=30, lr=1e-2, eval_every=10, device="cpu", compile=compile_),
                        seeds=(0, 1))
        return train(cfg).result

    plain, compiled = run(False), run(True)
    assert compiled.steps == plain.steps
    for a, b in zip(compiled.loss, plain.loss, strict=True):
        assert abs(a - b) < 1e-3 * max(1.0, abs(b))
    for a, b in zip(compiled.accuracy, plain.accuracy, strict=True):
        assert abs(a - b) <= 2 / (64 * 3)  # at most a couple of near-tied queries differ
