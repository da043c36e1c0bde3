"""The Triton unembedding + cross-entropy equals the plain path in value and gradient.

The kernels run on the CPU through Triton's interpreter, which triton only honours when
``TRITON_INTERPRET=1`` is in the environment before triton is first imported (it jits its own
``tl.sum``, ``tl.zeros``, ... at import). So the kernel tests run in a child pytest started with that
variable (``test_kernels_under_the_interpreter``), and this process, whose other tests must not see
the flag, skips them. Everything is skipped when the optional ``triton`` extra is not installed.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

pytest.importorskip("triton")

from georecall.training import triton_ce  # noqa: E402
from georecall.training.triton_ce import Blocks, triton_linear_cross_entropy  # noqa: E402

INTERPRETED = triton_ce._language_interpreted()
kernels = pytest.mark.skipif(not INTERPRETED, reason="runs in test_kernels_under_the_interpreter")

#: Small tiles: several row, vocabulary, d and reduction tiles even at these sizes.
SMALL = Blocks(r=16, v=32, k=16, d=16)


@pytest.mark.skipif(INTERPRETED, reason="already in the interpreter")
def test_kernels_under_the_interpreter():
    env = dict(os.environ, TRITON_INTERPRET="1")
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(Path(__file__)),
                           "-k", "not test_kernels_under_the_interpreter"],
                          cwd=root, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-8000:] + proc.stderr[-4000:]
    summary = proc.stdout.strip().splitlines()[-1]
    assert " passed" in summary and "skipped" not in summary, proc.stdout[-2000:]  # every kernel test ran


def _plain(x, w, b, t):
    logits = torch.baddbmm(b[:, None, :], x, w)
    loss = F.cross_entropy(logits.flatten(0, 1), t.flatten(), reduction="none").view_as(t)
    return loss, logits.argmax(-1) == t


def _inputs(e, r, d, v, *, dtype=torch.float32, scale=1.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = (torch.randn(e, r, d, generator=g) * scale).to(dtype).requires_grad_()
    table = (torch.randn(e, v, d, generator=g) / d**0.5).to(dtype).requires_grad_()  # W_E-like [E, V, d]
    b = torch.randn(e, v, generator=g).to(dtype).requires_grad_()
    t = torch.randint(0, v, (e, r), generator=g)
    upstream = torch.rand(e, r, generator=g) + 0.5  # non-uniform upstream gradient
    return x, table, b, t, upstream


def _run(fn, x, table, b, t, upstream, *, tied):
    """Loss, correct and the gradients of x, the readout (the table when tied) and b."""
    if tied:  # the tied readout: a non-contiguous transpose view of the embedding table
        w = table.transpose(1, 2)
    else:
        w = table.detach().transpose(1, 2).contiguous().requires_grad_()
    loss, correct = fn(x, w, b, t)
    (loss * upstream.to(loss.dtype)).sum().backward()
    leaf = table if tied else w
    out = (loss.detach(), correct, x.grad.clone(), leaf.grad.clone(), b.grad.clone())
    for p in (x, table, b):
        p.grad = None
    return out


def _upcast(*tensors):
    return [p.detach().double().requires_grad_() if p.is_floating_point() else p for p in tensors]


@kernels
@pytest.mark.parametrize(("d", "v", "tied", "blocks"), [
    (5, 53, True, None),
    (16, 130, False, None),
    (5, 130, True, SMALL),
    (37, 53, False, SMALL),
], ids=["d5-v53-tied", "d16-v130", "d5-v130-tied-small-tiles", "d37-v53-small-tiles"])
def test_float32_equals_the_plain_path(d, v, tied, blocks):
    x, table, b, t, up = _inputs(3, 37, d, v)
    ref = _run(_plain, x, table, b, t, up, tied=tied)
    got = _run(lambda *a: triton_linear_cross_entropy(*a, blocks=blocks), x, table, b, t, up, tied=tied)
    assert got[0].dtype == torch.float32 and got[1].dtype == torch.bool
    assert torch.equal(got[1], ref[1])
    for a, e in zip(got[:1] + got[2:], ref[:1] + ref[2:], strict=True):
        torch.testing.assert_close(a, e, rtol=1e-5, atol=1e-5)


@kernels
def test_float64_is_exact_up_to_summation_order():
    x, table, b, t, up = _upcast(*_inputs(2, 37, 21, 70))
    ref = _run(_plain, x, table, b, t, up, tied=True)
    got = _run(lambda *a: triton_linear_cross_entropy(*a, blocks=SMALL), x, table, b, t, up, tied=True)
    assert got[0].dtype == torch.float64 and torch.equal(got[1], ref[1])
    for a, e in zip(got[:1] + got[2:], ref[:1] + ref[2:], strict=True):
        torch.testing.assert_close(a, e, rtol=1e-10, atol=1e-12)


@kernels
def test_bfloat16_accumulates_in_float32():
    x, table, b, t, up = _inputs(3, 37, 16, 130, dtype=torch.bfloat16)
    # Reference: the plain path in float64 on the same (bf16-representable) values; the kernels
    # round only the softmax gradient to bf16 before its dots, and the stored gradients.
    ref = _run(_plain, *_upcast(x, table, b, t, up), tied=True)
    got = _run(triton_linear_cross_entropy, x, table, b, t, up, tied=True)
    assert got[0].dtype == torch.float32 and got[2].dtype == got[3].dtype == got[4].dtype == torch.bfloat16
    torch.testing.assert_close(got[0].double(), ref[0], rtol=1e-5, atol=1e-5)  # float32 accumulation
    assert torch.equal(got[1], ref[1])
    for a, e in zip(got[2:], ref[2:], strict=True):
        torch.testing.assert_close(a.double(), e, rtol=2e-2, atol=2e-2 * e.abs().max().item())


@kernels
def test_large_logits_are_stable():
    # |logits| up to ~80: exp overflows float32 beyond ~88, so only a max-shifted sum survives.
    x, table, b, t, up = _inputs(3, 37, 16, 130, scale=12.0)
    with torch.no_grad():
        b.mul_(20.0)
    ref = _run(_plain, x, table, b, t, up, tied=False)
    logits = torch.baddbmm(b[:, None], x, table.transpose(1, 2))
    assert logits.abs().max() > 60 and ref[0].max() > 60
    got = _run(lambda *a: triton_linear_cross_entropy(*a, blocks=SMALL), x, table, b, t, up, tied=False)
    assert all(torch.isfinite(a).all() for a in got[:1] + got[2:])
    assert torch.equal(got[1], ref[1])
    torch.testing.assert_close(got[0], ref[0], rtol=1e-5, atol=1e-4)
    for a, e in zip(got[2:], ref[2:], strict=True):
        torch.testing.assert_close(a, e, rtol=1e-5, atol=1e-4)


@kernels
def test_ties_take_the_first_index_like_argmax():
    # Exact ties: columns whose readout is zero have logit = bias, and equal biases tie exactly.
    e, r, d, v = 2, 20, 5, 70
    x = torch.randn(e, r, d)
    w = torch.randn(e, d, v) * 0.1
    b = torch.zeros(e, v)
    w[:, :, [3, 7, 40]] = 0.0
    b[:, [3, 7, 40]] = 50.0  # far above every other logit; 3 and 7 share a tile of 32, 40 is in the next
    t = torch.tensor([3, 7, 40, 5] * 5).expand(e, r).contiguous()
    _, ref = _plain(x, w, b, t)
    for blocks in (None, SMALL):
        _, correct = triton_linear_cross_entropy(x, w, b, t, blocks=blocks)
        assert torch.equal(correct, ref)
    assert correct[:, 0::4].all() and not correct[:, 1::4].any() and not correct[:, 2::4].any()


@kernels
def test_frozen_readout_and_summed_loss():
    # loss.sum() sends an expanded (stride-0) upstream gradient; w frozen, b trained: gb without gw.
    x, table, b, t, _ = _inputs(2, 37, 5, 53)
    w = table.detach().transpose(1, 2)
    loss, _ = triton_linear_cross_entropy(x, w, b, t, blocks=SMALL)
    loss.sum().backward()
    got_x, got_b = x.grad.clone(), b.grad.clone()
    x.grad = b.grad = None
    _plain(x, w, b, t)[0].sum().backward()
    assert w.grad is None
    torch.testing.assert_close(got_x, x.grad, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got_b, b.grad, rtol=1e-5, atol=1e-5)


def test_clear_errors_off_cuda_or_without_triton(monkeypatch):
    x, w, b, t = torch.randn(1, 3, 4), torch.randn(1, 4, 5), torch.randn(1, 5), torch.zeros(1, 3, dtype=torch.long)
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    with pytest.raises(RuntimeError, match="CUDA"):
        triton_linear_cross_entropy(x, w, b, t)
    if not INTERPRETED:  # asking for the interpreter once triton is imported is too late
        monkeypatch.setenv("TRITON_INTERPRET", "1")
        with pytest.raises(RuntimeError, match="before the first `import triton`"):
            triton_linear_cross_entropy(x, w, b, t)
    monkeypatch.setattr(triton_ce, "AVAILABLE", False)
    with pytest.raises(RuntimeError, match="needs triton"):
        triton_linear_cross_entropy(x, w, b, t)
