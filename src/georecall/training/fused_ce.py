"""Unembedding and cross-entropy fused over chunks: the ``[E, B, V]`` logits never exist at once.

With a vocabulary of N + K tokens, the logits of a full batch are the largest tensor of a training
step by far (E models × N·K queries × N+K tokens: 540 MB at E = 32, N = 1024, K = 4), and every
pass over them (matmul out, softmax, argmax, softmax gradient, two matmuls in) goes through main
memory. Here the forward computes, chunk by chunk of queries, the logits, their log-sum-exp, the
target logit and the argmax, and keeps only ``[E, B]`` numbers; the backward recomputes each chunk's
logits and turns them straight into the gradients of the residual, the readout and its bias. A
chunk small enough to stay in cache makes each pass cheap; the cost is one extra matmul.

The gradients are those of ``F.cross_entropy(resid @ W_U + b_U, targets, reduction="none")``
(tests compare both paths to float tolerance).

Training needs less: each member's *mean* loss, whose gradient in a row is the member's upstream
gradient over R, the same for every row. :func:`mean_linear_cross_entropy` therefore computes the
gradients in the forward pass, while each chunk's logits are in cache, and the backward only scales
them by the upstream gradient (one matmul and one softmax fewer than the general function; the idea
of Liger-Kernel's fused linear cross-entropy). Per chunk it takes three matmuls (the bias rides
along as a column of ones), one fused softmax and one vectorised max (see :func:`_chunk_scores`).
"""

from __future__ import annotations

import math

import torch

#: Logits per chunk (E × rows × V): 2^20 floats = 4 MB, sized for a CPU's cache; GPUs take more.
CPU_CHUNK_LOGITS = 1 << 20
CUDA_CHUNK_LOGITS = 1 << 26


def _rows_per_chunk(e: int, v: int, device: torch.device, chunk_logits: int | None) -> int:
    budget = chunk_logits or (CUDA_CHUNK_LOGITS if device.type == "cuda" else CPU_CHUNK_LOGITS)
    return max(1, budget // (e * v))


class _LinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, targets: torch.Tensor,
                rows: int) -> tuple[torch.Tensor, torch.Tensor]:
        # x [E, R, d], w [E, d, V], b [E, V], targets [E, R] -> loss [E, R], correct [E, R]
        e, r, _ = x.shape
        acc = torch.promote_types(x.dtype, torch.float32)  # bf16/fp16 inputs accumulate in float32
        loss = torch.empty(e, r, dtype=acc, device=x.device)
        correct = torch.empty(e, r, dtype=torch.bool, device=x.device)
        for s in range(0, r, rows):
            t = targets[:, s:s + rows, None]
            logits = torch.baddbmm(b[:, None, :], x[:, s:s + rows], w).to(acc)  # [E, c, V]
            loss[:, s:s + rows] = logits.logsumexp(-1) - logits.gather(-1, t).squeeze(-1)
            correct[:, s:s + rows] = logits.argmax(-1) == t.squeeze(-1)
        ctx.save_for_backward(x, w, b, targets)
        ctx.rows = rows
        ctx.mark_non_differentiable(correct)
        return loss, correct

    @staticmethod
    def backward(ctx, g_loss: torch.Tensor, g_correct: torch.Tensor):  # type: ignore[override]
        x, w, b, targets = ctx.saved_tensors
        rows = ctx.rows
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        acc = torch.promote_types(x.dtype, torch.float32)
        gx = torch.empty_like(x) if need_x else None
        gw = torch.zeros(w.shape, dtype=acc, device=w.device) if need_w else None
        gb = torch.zeros(b.shape, dtype=acc, device=b.device) if need_b else None
        for s in range(0, x.shape[1], rows):
            xs = x[:, s:s + rows]
            logits = torch.baddbmm(b[:, None, :], xs, w).to(acc)
            grad = logits.softmax(-1)  # d loss / d logits = softmax - onehot, times the upstream grad
            idx = targets[:, s:s + rows, None]
            grad.scatter_add_(-1, idx, torch.full(idx.shape, -1.0, dtype=grad.dtype, device=grad.device))
            grad.mul_(g_loss[:, s:s + rows, None])
            if need_x:
                gx[:, s:s + rows] = torch.bmm(grad.to(x.dtype), w.transpose(1, 2))
            if need_w:
                gw.baddbmm_(xs.transpose(1, 2).to(acc), grad)
            if need_b:
                gb.add_(grad.sum(1))
        return (gx, None if gw is None else gw.to(w.dtype), None if gb is None else gb.to(b.dtype), None, None)


#: Below this a softmax probability is recomputed as exp(-log-sum-exp) rather than trusted for its log.
_TINY = 1e-30


def _chunk_scores(logits: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``logits`` [E, c, V] (overwritten), ``t`` [E, c, 1] -> softmax, loss [E, c], correct [E, c].

    Vectorised reductions only (``amax``; ``argmax`` runs an unvectorised loop on the CPU, ~13x slower):
    the loss is ``-log p[target]`` (rows whose ``p[target]`` underflows take the log-sum-exp), and a
    row is correct when its target logit beats every other logit, or ties the best of them at a lower
    index (the first maximal index, as ``argmax``).
    """
    p = logits.softmax(-1)
    lt = logits.gather(-1, t).squeeze(-1)
    loss = p.gather(-1, t).squeeze(-1).log().neg_()
    small = loss > -math.log(_TINY)
    if small.any():
        loss[small] = logits[small].logsumexp(-1) - lt[small]
    others = logits.scatter_(-1, t, float("-inf"))
    best_other = others.amax(-1)
    correct = lt > best_other
    tie = lt == best_other
    if tie.any():
        correct[tie] = t.squeeze(-1)[tie] < (others[tie] == lt[tie][:, None]).int().argmax(-1)
    return p, loss, correct


class _MeanLinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, targets: torch.Tensor, rows: int,
                with_grad: bool, matmul_dtype: torch.dtype | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        # x [E, R, d], w [E, d, V], b [E, V], targets [E, R] -> mean [E], loss [E, R], correct [E, R]
        e, r, d = x.shape
        acc = torch.promote_types(x.dtype, torch.float32)
        mm = matmul_dtype or acc  # the matmuls' operands; their sums, the softmax and the buffers stay in acc
        need_x, need_w, need_b = (with_grad and n for n in ctx.needs_input_grad[:3])
        # The bias rides in the matmul as a last input column of ones: no broadcast copy per chunk,
        # and the readout's gradient row d is the bias gradient.
        xa = torch.cat([x.to(mm), x.new_ones(e, r, 1, dtype=mm)], -1)  # [E, R, d+1]
        wa = torch.cat([w.to(mm), b.to(mm)[:, None]], 1)  # [E, d+1, V]
        loss = torch.empty(e, r, dtype=acc, device=x.device)
        correct = torch.empty(e, r, dtype=torch.bool, device=x.device)
        gx = torch.empty(e, r, d, dtype=acc, device=x.device) if need_x else None
        gwa = torch.zeros(wa.shape, dtype=acc, device=w.device) if need_w or need_b else None
        wat = wa[:, :d].transpose(1, 2)
        for s in range(0, r, rows):
            xs, t = xa[:, s:s + rows], targets[:, s:s + rows, None]
            p, loss[:, s:s + rows], correct[:, s:s + rows] = _chunk_scores(torch.bmm(xs, wa).to(acc), t)
            if not (need_x or need_w or need_b):
                continue
            p.scatter_add_(-1, t, torch.full(t.shape, -1.0, dtype=p.dtype, device=p.device))  # softmax - onehot
            pm = p.to(mm)
            if need_x:
                gx[:, s:s + rows] = torch.bmm(pm, wat)
            if gwa is not None:
                if mm == acc:
                    gwa.baddbmm_(xs.transpose(1, 2), pm)
                else:  # each chunk's product rounds to mm once; the sum over chunks is in acc
                    gwa.add_(torch.bmm(xs.transpose(1, 2), pm))
        gw, gb = (gwa[:, :d], gwa[:, d]) if gwa is not None else (None, None)
        ctx.save_for_backward(*(g if g is not None else torch.empty(0) for g in (gx, gw, gb)))
        ctx.meta = (r, x.dtype, w.dtype, b.dtype, need_x, need_w, need_b)
        ctx.mark_non_differentiable(loss, correct)
        return loss.mean(1), loss, correct

    @staticmethod
    def backward(ctx, g_mean: torch.Tensor, g_loss: torch.Tensor, g_correct: torch.Tensor):  # type: ignore[override]
        r, x_dtype, w_dtype, b_dtype, need_x, need_w, need_b = ctx.meta
        gx, gw, gb = ctx.saved_tensors
        scale = g_mean / r  # [E]: d mean / d row loss, per member
        return (gx.mul_(scale[:, None, None]).to(x_dtype) if need_x else None,
                gw.mul_(scale[:, None, None]).to(w_dtype) if need_w else None,
                gb.mul_(scale[:, None]).to(b_dtype) if need_b else None, None, None, None, None)


def mean_linear_cross_entropy(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, targets: torch.Tensor, *,
                              chunk_logits: int | None = None, matmul_dtype: torch.dtype | None = None
                              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Each member's mean cross-entropy of the readout ``x @ w + b``, with gradients computed in the forward.

    Returns ``mean`` [E] (differentiable in x, w, b), ``loss`` [E, R] (per query, no gradient) and
    ``correct`` [E, R] (bool). Same shapes and chunking as :func:`linear_cross_entropy`. The gradient
    buffers (the size of x, w and b) are filled while gradients are enabled; ``mean.backward`` may be
    called once. ``matmul_dtype=torch.bfloat16`` runs the three matmuls on bf16 operands (each product
    summed in float32 by the matmul, its result rounded to bf16 once); the softmax, the loss and the
    gradient buffers stay in float32. On a CPU the matmuls alone run 2-4x faster in bf16, but the
    conversions cost more than that saves (benchmarks/RESULTS.md).
    """
    rows = _rows_per_chunk(x.shape[0], w.shape[-1], x.device, chunk_logits)
    return _MeanLinearCrossEntropy.apply(x, w, b, targets, rows, torch.is_grad_enabled(), matmul_dtype)


def linear_cross_entropy(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, targets: torch.Tensor, *,
                         chunk_logits: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-query cross-entropy and argmax-correctness of the readout ``x @ w + b``, chunked.

    ``x`` [E, R, d] final residual (after ``ln_final``), ``w`` [E, d, V], ``b`` [E, V], ``targets``
    [E, R] -> ``loss`` [E, R] (float32, or float64 for float64 inputs; differentiable in x, w, b) and
    ``correct`` [E, R] (bool).
    At most ``chunk_logits`` logits (default: 4 MB worth on a CPU, 256 MB on a GPU) exist at once.
    """
    rows = _rows_per_chunk(x.shape[0], w.shape[-1], x.device, chunk_logits)
    return _LinearCrossEntropy.apply(x, w, b, targets, rows)
