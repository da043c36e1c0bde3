"""Checks that need a CUDA device: training there, and constructions exact on it (TF32 and autocast refused)."""

import pytest
import torch

from georecall.config import ModelConfig, RunConfig, TaskConfig, TrainConfig
from georecall.constructions import CONSTRUCTIONS, build_construction, score_construction
from georecall.training import train

pytestmark = pytest.mark.gpu


def test_training_on_cuda_reaches_full_accuracy():
    cfg = RunConfig(task=TaskConfig(n_subjects=512, n_relations=4), model=ModelConfig(d_model=32),
                    train=TrainConfig(device="cuda"), seeds=(0, 1, 2, 3))
    run = train(cfg)
    assert run.result.device.startswith("cuda") and all(a >= 0.99 for a in run.result.accuracy)


@pytest.mark.parametrize("name", list(CONSTRUCTIONS))
def test_constructions_are_exact_on_cuda_in_float32(name):
    hops = CONSTRUCTIONS[name].hops or 3
    c = build_construction(name, 257, 5, hops)
    score = score_construction(c, device="cuda")
    assert score.accuracy == 1.0 and score.min_margin > 0.5
    assert c.model.embed.W_E.device.type == "cpu"  # scored on a copy


def test_long_cot_chains_on_cuda():
    c = build_construction("cot", 257, 5, 24)
    assert score_construction(c, device="cuda", n_queries=20_000).accuracy == 1.0


def test_tf32_and_autocast_are_refused():
    c = build_construction("cot", 64, 3, 4)
    old = torch.backends.cuda.matmul.allow_tf32
    try:
        torch.backends.cuda.matmul.allow_tf32 = True
        with pytest.raises(RuntimeError, match="TF32"):
            score_construction(c, device="cuda")
    finally:
        torch.backends.cuda.matmul.allow_tf32 = old
    with torch.autocast("cuda", dtype=torch.bfloat16), pytest.raises(RuntimeError, match="autocast"):
        score_construction(c, device="cuda")
    # float64 needs no guard: TF32 does not touch it.
    torch.backends.cuda.matmul.allow_tf32 = True
    try:
        c64 = build_construction("cot", 64, 3, 4, dtype=torch.float64)
        assert score_construction(c64, device="cuda").accuracy == 1.0
    finally:
        torch.backends.cuda.matmul.allow_tf32 = old


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_triton_readout_kernel_equals_the_plain_path_on_cuda(dtype):
    triton_ce = pytest.importorskip("georecall.training.triton_ce")
    if not triton_ce.AVAILABLE:
        pytest.skip("the triton extra is not installed")
    g = torch.Generator(device="cuda").manual_seed(0)
    e, r, d, v = 4, 3000, 32, 4104
    x = torch.randn(e, r, d, device="cuda", generator=g).to(dtype).requires_grad_()
    w = (torch.randn(e, d, v, device="cuda", generator=g) * 0.3).to(dtype).requires_grad_()
    b = torch.randn(e, v, device="cuda", generator=g).to(dtype).requires_grad_()
    t = torch.randint(0, v, (e, r), device="cuda", generator=g)
    up = torch.rand(e, r, device="cuda", generator=g)
    out = []
    for fused in (False, True):
        if fused:
            loss, correct = triton_ce.triton_linear_cross_entropy(x, w, b, t, allow_tf32=False)
        else:
            logits = torch.baddbmm(b.float()[:, None], x.float(), w.float())
            loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), t.flatten(), reduction="none").view(e, r)
            correct = logits.argmax(-1) == t
        (loss * up).sum().backward()
        out.append((loss.detach(), correct, x.grad.float(), w.grad.float(), b.grad.float()))
        x.grad = w.grad = b.grad = None
    tol = dict(rtol=1e-4, atol=1e-4) if dtype == torch.float32 else dict(rtol=3e-2, atol=3e-2)
    assert (out[0][1] == out[1][1]).float().mean() > 0.999
    for a, ref in zip(out[1][:1] + out[1][2:], out[0][:1] + out[0][2:], strict=True):
        torch.testing.assert_close(a, ref, **tol)


def test_training_with_the_fused_readout_on_cuda_reaches_full_accuracy():
    cfg = RunConfig(task=TaskConfig(n_subjects=512, n_relations=4), model=ModelConfig(d_model=32),
                    train=TrainConfig(device="cuda", fused_loss=True), seeds=(0, 1, 2, 3))
    run = train(cfg)
    assert all(a >= 0.99 for a in run.result.accuracy)


def test_opted_in_triton_training_matches_the_torch_fused_path():
    """train.triton_kernels = true on CUDA: the same accuracies as the chunked torch loss (the path is opt-in
    until this passes on a real GPU)."""
    import dataclasses as dc

    triton_ce = pytest.importorskip("georecall.training.triton_ce")
    if not triton_ce.AVAILABLE:
        pytest.skip("the triton extra is not installed")
    base = RunConfig(task=TaskConfig(n_subjects=64, n_relations=4), model=ModelConfig(d_model=16, d_mlp=64),
                     train=TrainConfig(steps=200, lr=1e-2, device="cuda", fused_loss=True), seeds=(0, 1))
    torch_path = train(base).result
    triton_path = train(dc.replace(base, train=dc.replace(base.train, triton_kernels=True))).result
    assert triton_path.accuracy == pytest.approx(torch_path.accuracy, abs=0.02)


def test_the_same_seed_on_cuda_agrees_across_executors_within_tolerance(tmp_path):
    """On CUDA the same seed need not give the same bits (README, Determinism): trained in this process and in a
    worker process, each run must agree on its stop reason, its accuracy within 1/n_queries + 1 % and its loss
    within 5 % (or 0.01)."""
    from georecall.results.store import ResultStore
    from georecall.training.executors import ProcessPool, shutdown_pool
    from georecall.training.sweep import expand_grid, run_sweep

    base = RunConfig(task=TaskConfig(n_subjects=256, n_relations=4), model=ModelConfig(d_model=24),
                     train=TrainConfig(steps=1500, device="cuda", stop_at_target=False))
    runs = expand_grid(base, {"model.d_model": [16, 24], "seeds": [0, 1]})
    run_sweep(runs, tmp_path / "here", experiment="d")
    try:
        run_sweep(runs, tmp_path / "pool", experiment="d", executor=ProcessPool(1))
    finally:
        shutdown_pool()
    with ResultStore(tmp_path / "here" / "results.sqlite") as a, ResultStore(tmp_path / "pool" / "results.sqlite") as b:
        ra, rb = {r["hash"]: r["result"] for r in a.rows()}, {r["hash"]: r["result"] for r in b.rows()}
    assert ra.keys() == rb.keys() and len(ra) == 4
    for h, x in ra.items():
        y = rb[h]
        assert x["stop_reason"] == y["stop_reason"]
        assert abs(x["accuracy"][0] - y["accuracy"][0]) <= 1 / x["n_queries"] + 0.01
        assert abs(x["loss"][0] - y["loss"][0]) <= max(0.05 * x["loss"][0], 0.01)
