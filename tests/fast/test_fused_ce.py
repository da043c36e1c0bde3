"""The chunked unembedding + cross-entropy equals the plain path in value and gradient."""

import pytest
import torch
import torch.nn.functional as F

from georecall.training.fused_ce import linear_cross_entropy, mean_linear_cross_entropy


def _inputs(seed):
    """Float64 residual, readout table [E, V, d], bias and targets; the generator goes on for more draws."""
    g = torch.Generator().manual_seed(seed)
    e, r, d, v = 3, 37, 5, 11
    x = torch.randn(e, r, d, generator=g, dtype=torch.float64, requires_grad=True)
    table = torch.randn(e, v, d, generator=g, dtype=torch.float64, requires_grad=True)
    b = torch.randn(e, v, generator=g, dtype=torch.float64, requires_grad=True)
    return g, x, table, b, torch.randint(0, v, (e, r), generator=g)


def _plain(x, w, b, t):
    logits = torch.baddbmm(b[:, None, :], x, w)
    loss = F.cross_entropy(logits.flatten(0, 1), t.flatten(), reduction="none").view_as(t)
    return loss, logits.argmax(-1) == t


@pytest.mark.parametrize("chunk_logits", [1, 7 * 3 * 11, 10**9], ids=["row-by-row", "odd-chunks", "one-chunk"])
@pytest.mark.parametrize("tied", [False, True])
def test_values_and_gradients_equal_the_plain_path(chunk_logits, tied):
    g, x, table, b, t = _inputs(0)
    upstream = torch.rand(t.shape, generator=g, dtype=torch.float64)
    grads = []
    for fn in (_plain, lambda *a: linear_cross_entropy(*a, chunk_logits=chunk_logits)):
        w = table.transpose(1, 2) if tied else table.detach().transpose(1, 2).contiguous().requires_grad_()
        loss, correct = fn(x, w, b, t)
        (loss.double() * upstream).sum().backward()
        leaf = table if tied else w
        grads.append((loss.detach().double(), correct, x.grad.clone(), leaf.grad.clone(), b.grad.clone()))
        for p in (x, table, b):
            p.grad = None
    (l0, c0, gx0, gw0, gb0), (l1, c1, gx1, gw1, gb1) = grads
    assert torch.equal(c0, c1)
    # float64 throughout: only summation order differs between the paths.
    torch.testing.assert_close(l1, l0, rtol=1e-12, atol=1e-12)
    for a, bb in [(gx1, gx0), (gw1, gw0), (gb1, gb0)]:
        torch.testing.assert_close(a, bb, rtol=1e-10, atol=1e-12)


def test_frozen_readout_gets_no_gradient():
    x = torch.randn(2, 9, 4, requires_grad=True)
    w, b = torch.randn(2, 4, 6), torch.zeros(2, 6)
    loss, _ = linear_cross_entropy(x, w, b, torch.randint(0, 6, (2, 9)), chunk_logits=12)
    loss.sum().backward()
    assert x.grad is not None and w.grad is None


@pytest.mark.parametrize("chunk_logits", [1, 7 * 3 * 11, 10**9], ids=["row-by-row", "odd-chunks", "one-chunk"])
@pytest.mark.parametrize("tied", [False, True])
def test_mean_with_gradients_in_forward_equals_the_plain_path(chunk_logits, tied):
    _, x, table, b, t = _inputs(1)
    t[0, :4] = table[0].detach().matmul(x[0, :4].detach().T).add(b[0, :, None].detach()).argmax(0)  # some correct
    upstream = torch.tensor([0.5, 0.0, 2.0], dtype=torch.float64)  # a stopped member gets 0
    out = []
    for fused in (False, True):
        w = table.transpose(1, 2) if tied else table.detach().transpose(1, 2).contiguous().requires_grad_()
        if fused:
            mean, loss, correct = mean_linear_cross_entropy(x, w, b, t, chunk_logits=chunk_logits)
            assert not loss.requires_grad and not correct.requires_grad
        else:
            loss, correct = _plain(x, w, b, t)
            mean = loss.mean(1)
        (mean * upstream).sum().backward()
        leaf = table if tied else w
        out.append((mean.detach(), loss.detach(), correct, x.grad.clone(), leaf.grad.clone(), b.grad.clone()))
        for p in (x, table, b):
            p.grad = None
    assert torch.equal(out[0][2], out[1][2]) and out[1][2].any()
    for a, bb in zip(out[1][:2] + out[1][3:], out[0][:2] + out[0][3:], strict=True):
        torch.testing.assert_close(a, bb, rtol=1e-10, atol=1e-12)


def test_mean_is_stable_for_large_logits_and_takes_the_first_of_tied_maxima():
    x = torch.tensor([[[1.0], [1.0]]]) * 100  # logits 100 * w: a loss near 200 must not overflow
    w = torch.tensor([[[1.0, -1.0, 1.0]]], requires_grad=True)
    b = torch.zeros(1, 3)
    mean, loss, correct = mean_linear_cross_entropy(x, w, b, torch.tensor([[1, 2]]))
    ref = F.cross_entropy(torch.tensor([[100.0, -100.0, 100.0]] * 2), torch.tensor([1, 2]), reduction="none")
    torch.testing.assert_close(loss[0], ref)
    assert correct.tolist() == [[False, False]]  # index 0 and 2 tie: argmax is 0
    mean.sum().backward()
    assert torch.isfinite(w.grad).all()


def test_mean_without_gradients_computes_no_buffers():
    x = torch.randn(2, 9, 4, requires_grad=True)
    with torch.no_grad():
        mean, loss, correct = mean_linear_cross_entropy(x, torch.randn(2, 4, 6), torch.zeros(2, 6),
                                                        torch.randint(0, 6, (2, 9)))
    assert not mean.requires_grad
    torch.testing.assert_close(mean, loss.mean(1))


def test_bf16_matmuls_stay_close_to_the_float32_path():
    g = torch.Generator().manual_seed(2)
    e, r, d, v = 2, 300, 16, 257
    x = torch.randn(e, r, d, generator=g, requires_grad=True)
    w = (torch.randn(e, d, v, generator=g) / 4).requires_grad_()
    b = torch.randn(e, v, generator=g, requires_grad=True)
    t = torch.randint(0, v, (e, r), generator=g)
    out = []
    for mm in (None, torch.bfloat16):
        mean, loss, correct = mean_linear_cross_entropy(x, w, b, t, chunk_logits=4000, matmul_dtype=mm)
        mean.sum().backward()
        assert loss.dtype == torch.float32 and x.grad.dtype == w.grad.dtype == torch.float32
        out.append((mean.detach(), loss, correct, x.grad.clone(), w.grad.clone(), b.grad.clone()))
        x.grad = w.grad = b.grad = None
    (m0, l0, c0, *g0), (m1, l1, c1, *g1) = out
    torch.testing.assert_close(m1, m0, rtol=1e-2, atol=1e-2)
    assert (l1 - l0).abs().max() < 0.1 and (c1 == c0).float().mean() > 0.97  # bf16 logits: ~3 digits
    for a, ref in zip(g1, g0, strict=True):
        assert (a - ref).norm() < 0.02 * ref.norm()
