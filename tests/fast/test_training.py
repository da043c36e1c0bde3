"""Training: small models reach 100 %, members stop on their own, non-finite losses are contained,
CPU runs are deterministic, and a trained CoT model's greedy chains are scored against the world."""

import dataclasses

import pytest
import torch

from georecall.config import ModelConfig, RunConfig, TaskConfig, TrainConfig
from georecall.tasks import make_queries, stack_queries
from georecall.training import build_model, lr_factor, resolve_device, score_generation, train

SMALL = RunConfig(task=TaskConfig(n_subjects=32, n_relations=3), model=ModelConfig(d_model=16, d_mlp=64),
                  train=TrainConfig(steps=600, eval_every=25), seeds=(0, 1))


def test_small_ensemble_trains_to_full_accuracy_and_each_member_stops_on_its_own():
    run = train(SMALL)
    assert run.result.accuracy == [1.0, 1.0]
    assert all(r == "target" for r in run.result.stop_reason)
    assert all(0 < s < 600 for s in run.result.steps)
    assert run.result.per_relation == [[1.0] * 3] * 2
    # Step 0 is evaluated, before any update: chance level.
    first = [m for m in run.metrics if m["step"] == 0]
    assert len(first) == 2 and all(m["accuracy"] < 0.2 for m in first)
    assert all(len(m["per_relation"]) == 3 and len(m["per_hop"]) == 1 for m in run.metrics)
    last = [m for m in run.metrics if m["step"] == run.result.steps[m["member"]]]
    assert [m["per_relation"] for m in last] == [[1.0] * 3] * 2  # recorded at each member's stop step
    # A member's weights are those of its stop step: re-scoring the returned model gives 100 %.
    logits = run.model(stack_queries([make_queries(w, SMALL.task) for w in run.worlds]).tokens, (1,))
    targets = torch.stack([make_queries(w, SMALL.task).targets for w in run.worlds])
    assert bool((logits.argmax(-1) == targets).all())


def test_step_budget_and_untrainable_setting_reports_budget():
    cfg = dataclasses.replace(SMALL, train=dataclasses.replace(SMALL.train, steps=3), seeds=(0,))
    run = train(cfg)
    assert run.result.steps == [3] and run.result.stop_reason == ["budget"] and run.result.accuracy[0] < 1.0


def test_cpu_training_is_deterministic_for_a_seed():
    cfg = dataclasses.replace(SMALL, train=dataclasses.replace(SMALL.train, steps=40, batch_size=16))
    a, b = train(cfg), train(cfg)
    for (k, x), y in zip(a.model.state_dict().items(), b.model.state_dict().values(), strict=True):
        assert torch.equal(x, y), k
    assert a.metrics == b.metrics


def test_minibatch_training_reaches_full_accuracy():
    cfg = dataclasses.replace(SMALL, train=dataclasses.replace(SMALL.train, batch_size=32, steps=1500), seeds=(0,))
    run = train(cfg)
    assert run.result.accuracy == [1.0] and run.result.stop_reason == ["target"]


def test_a_non_finite_member_stops_with_its_reason_and_the_others_train_on():
    cfg = dataclasses.replace(SMALL, seeds=(0, 1, 2))
    model = build_model(cfg, d_vocab=35)
    with torch.no_grad():
        model.unembed.W_U[1].fill_(float("nan"))  # member 1 is broken from the start
    run = train(cfg, model=model)
    assert run.result.stop_reason[1] == "non-finite loss at step 0" and run.result.steps[1] == 0
    assert run.result.accuracy[0] == run.result.accuracy[2] == 1.0
    assert run.result.stop_reason[0] == run.result.stop_reason[2] == "target"


def test_frozen_embeddings_do_not_move():
    cfg = dataclasses.replace(SMALL, model=dataclasses.replace(SMALL.model, frozen_embeddings=True),
                              train=dataclasses.replace(SMALL.train, steps=20))
    init = build_model(cfg, d_vocab=35)
    run = train(cfg)
    assert torch.equal(run.model.embed.W_E, init.embed.W_E)
    assert not torch.equal(run.model.blocks[0].mlp.W_in, init.blocks[0].mlp.W_in)


def test_schedule_warms_up_then_decays():
    tc = TrainConfig(steps=100, warmup_steps=10, min_lr_ratio=0.1)
    assert lr_factor(0, tc) == pytest.approx(0.1) and lr_factor(9, tc) == pytest.approx(1.0)
    assert lr_factor(100, tc) == pytest.approx(0.1)
    assert lr_factor(50, dataclasses.replace(tc, schedule="constant")) == 1.0


def test_unavailable_device_is_refused():
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda")
    assert resolve_device("cpu").type == "cpu"


@pytest.mark.parametrize("cot", ["interleaved", "question_first"])
def test_trained_one_layer_cot_model_generates_whole_chains(cot):
    cfg = RunConfig(task=TaskConfig(n_subjects=24, n_relations=2, n_hops=3, cot=cot),
                    model=ModelConfig(d_model=32, d_mlp=128, n_heads=2),
                    train=TrainConfig(steps=1500, eval_every=50), seeds=(0,))
    run = train(cfg)
    assert run.result.accuracy == [1.0]
    queries = stack_queries([make_queries(w, cfg.task) for w in run.worlds])
    score = score_generation(run.model, run.worlds, queries)
    assert score.chain_accuracy == [1.0] and score.final_accuracy == [1.0] and score.step_accuracy == [[1.0] * 3]
    # The scorer can fail: against another world the same model's chains are wrong from step 1.
    other = score_generation(run.model, [run.worlds[0].redraw(99)], queries)
    assert other.step_accuracy[0][0] < 0.2 and other.chain_accuracy[0] < 0.05
    assert max(other.first_error_step[0]) >= 1


def test_per_member_learning_rates_equal_separate_runs():
    """Members with their own lr in one ensemble follow exactly the runs trained alone at that lr."""
    base = dataclasses.replace(SMALL, train=dataclasses.replace(SMALL.train, steps=15, weight_decay=0.1,
                                                                target_accuracy=1.0))
    together = train(dataclasses.replace(base, seeds=(0, 0, 1), lrs=(1e-2, 3e-3, 3e-3)))
    for e, (seed, lr) in enumerate([(0, 1e-2), (0, 3e-3), (1, 3e-3)]):
        alone = train(dataclasses.replace(base, seeds=(seed,), train=dataclasses.replace(base.train, lr=lr)))
        for (k, a), b in zip(together.model.state_dict().items(), alone.model.state_dict().values(), strict=True):
            torch.testing.assert_close(a[e], b[0], rtol=1e-4, atol=1e-6, msg=k)
    with pytest.raises(ValueError, match="one learning rate per seed"):
        RunConfig(seeds=(0, 1), lrs=(1e-2,))


@pytest.mark.parametrize("batch_size", [None, 16])
def test_fused_and_plain_loss_paths_train_the_same_models(batch_size):
    """The chunked readout + cross-entropy is an execution detail: same run, same weights to float tolerance."""
    cfg = dataclasses.replace(SMALL, train=dataclasses.replace(SMALL.train, steps=25, batch_size=batch_size))
    runs = [train(dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, fused_loss=f))) for f in (False, True)]
    assert runs[0].config.config_hash() == runs[1].config.config_hash()
    for (k, a), b in zip(runs[0].model.state_dict().items(), runs[1].model.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5, msg=k)
    assert runs[0].result.accuracy == runs[1].result.accuracy


def test_bf16_readout_trains_to_full_accuracy_and_is_part_of_the_identity():
    cfg = RunConfig(task=TaskConfig(n_subjects=64, n_relations=3), model=ModelConfig(d_model=16),
                    train=TrainConfig(steps=600, lr=1e-2, device="cpu", readout_dtype="bfloat16"), seeds=(0, 1))
    run = train(cfg)
    assert all(a == 1.0 for a in run.result.accuracy)  # final evaluation in float32
    plain = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, readout_dtype="float32"))
    assert plain.config_hash() != cfg.config_hash()
    with pytest.raises(ValueError, match="fused_loss"):
        TrainConfig(readout_dtype="bfloat16", fused_loss=False)


def test_triton_kernels_are_opt_in_and_refused_where_they_cannot_run():
    """The untested-on-GPU Triton path runs only when asked (train.triton_kernels), never by default; asking for
    it off CUDA is a clear error; the option is not part of a run's identity (it computes the same loss)."""
    import dataclasses as dc

    from georecall.config import RunConfig, TaskConfig, TrainConfig

    base = RunConfig(task=TaskConfig(n_subjects=8, n_relations=2), train=TrainConfig(steps=2, device="cpu"))
    assert base.train.triton_kernels is False
    opted = dc.replace(base, train=dc.replace(base.train, triton_kernels=True))
    assert opted.config_hash() == base.config_hash()
    with pytest.raises(ValueError, match="triton_kernels needs a CUDA device"):
        train(opted)
    train(base)  # the default path trains without touching triton
