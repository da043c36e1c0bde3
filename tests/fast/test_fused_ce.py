"""The chunked unembedding + cross-entropy equals the plain path in value and gradient."""

import pytest
import torch
import torch.nn.functional as F

from georecall.training.fused_ce import linear_cross_entropy


def _plain(x, w, b, t):
    logits = torch.baddbmm(b[:, None, :], x, w)
    loss = F.cross_entropy(logits.flatten(0, 1), t.flatten(), reduction="none").view_as(t)
    return loss, logits.argmax(-1) == t


@pytest.mark.parametrize("chunk_logits", [1, 7 * 3 * 11, 10**9], ids=["row-by-row", "odd-chunks", "one-chunk"])
@pytest.mark.parametrize("tied", [False, True])
def test_values_and_gradients_equal_the_plain_path(chunk_logits, tied):
    g = torch.Generator().manual_seed(0)
    e, r, d, v = 3, 37, 5, 11
    x = torch.randn(e, r, d, generator=g, dtype=torch.float64, requires_grad=True)
    table = torch.randn(e, v, d, generator=g, dtype=torch.float64, requires_grad=True)
    b = torch.randn(e, v, generator=g, dtype=torch.float64, requires_grad=True)
    t = torch.randint(0, v, (e, r), generator=g)
    upstream = torch.rand(e, r, generator=g, dtype=torch.float64)
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
