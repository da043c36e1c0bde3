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
"""

from __future__ import annotations

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
