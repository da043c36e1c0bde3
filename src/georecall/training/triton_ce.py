"""Unembedding + cross-entropy of an ensemble as Triton kernels: the ``[E, R, V]`` logits never exist.

Same contract as :func:`georecall.training.fused_ce.linear_cross_entropy` (the chunked torch path,
which stays the reference): ``x`` [E, R, d] final residual (after ``ln_final``), ``w`` [E, d, V]
readout (any strides: the tied ``W_E.transpose(1, 2)`` view is read in place), ``b`` [E, V],
``targets`` [E, R] -> ``loss`` [E, R] per-row cross-entropy of ``x @ w + b`` (float32; differentiable
in x, w, b) and ``correct`` [E, R] (argmax == target, the argmax being the first maximal index, as
``torch.argmax``).

Tiling (the ensemble member is always a grid axis, so E models run in one launch):

* forward, grid (R / BLOCK_R, E): a program owns BLOCK_R rows and walks the vocabulary in tiles
  of BLOCK_V; each logit tile is ``tl.dot`` over d in steps of BLOCK_K, plus the bias, and is folded
  at once into an online (flash-style) running max and sum of exponentials, the target logit and
  the running argmax (strictly greater wins, tiles go left to right, so ties keep the first index).
  Stored per row: ``lse`` (kept for the backward), ``loss = lse - logit[target]`` and ``correct``.
* backward ``gx``, grid (R / BLOCK_R, d / BLOCK_D, E): recomputes each logit tile,
  ``grad = (exp(logit - lse) - onehot(target)) * g_loss[row]`` and accumulates ``grad @ w^T``.
* backward ``gw``/``gb``, grid (V / BLOCK_V, d / BLOCK_D, E): a program owns a ``[BLOCK_D,
  BLOCK_V]`` tile of ``gw`` (and, on the first d tile, BLOCK_V entries of ``gb``), loops over all
  row tiles, recomputes the logit tile and accumulates ``x^T @ grad`` in registers, then stores
  once. The reduction over rows is thus a fixed-order float32 sum inside one program: no atomics,
  no zero-fill of the outputs, bit-for-bit deterministic from run to run. The price is that the
  logits are recomputed twice in the backward (once per kernel), i.e. five matmul-sized passes in
  all against four for the chunked torch path; atomics would save one pass but make ``gw`` depend
  on scheduling order and need E·R/BLOCK_R programs to contend on every ``gw`` tile.

Memory: besides the inputs and the gradients, only ``lse``, ``loss`` and ``correct`` (E·R numbers
each) are written; every logit lives in registers for one tile. The backward keeps ``x`` (made
contiguous), ``w`` (as given), ``b``, ``targets`` and ``lse``. Rows, vocabulary and d are masked, so
none of them needs to be a multiple of a tile or a power of two.

Precision: accumulation is float32 (float64 for float64 inputs). bfloat16/float16 inputs go to
``tl.dot`` as they are (tensor cores) with float32 accumulation; in the backward the softmax
gradient is rounded to the input dtype before its two dots, as the torch path does for ``gx``
(the torch path keeps it float32 for ``gw``; the difference is within bf16 rounding of the
result). float32 inputs use IEEE float32 dots (exact, but no tensor cores) unless ``allow_tf32``
asks for TF32; its default is torch's own ``torch.backends.cuda.matmul.allow_tf32``, so this path
rounds like the torch path on the same GPU.

Devices: CUDA tensors (NVIDIA; ROCm builds also call their device ``cuda``, untested), or any
tensors under Triton's interpreter, which triton honours only when ``TRITON_INTERPRET=1`` is in the
environment before triton is first imported (that is how the CPU tests run it, in a child process:
slow, for correctness only). Triton 3.7's interpreter multiplies bfloat16 bit patterns as integers
in ``tl.dot``, so under the interpreter half-precision operands are widened to float32 just before
each dot (exact: same products, same float32 sums).

Status: values and gradients are tested under the interpreter (triton 3.7.1, the version torch
2.13's CUDA wheels pin, and 3.9.0), and the three kernels compile for sm_90 (PTX through ptxas;
tensor-core ``mma`` for bf16 and TF32; no register spills for bf16 at d <= 128 with the default
tiles, a few for float32). GPU speed is NOT measured yet, nor has a kernel run on a real GPU: no GPU
was available when this was written, so the block sizes are reasonable defaults, not tuned ones,
and whether this beats the chunked torch path on a GPU is still open.
"""

import contextlib
import functools
import os
from dataclasses import dataclass

import torch

try:
    import triton
    import triton.language as tl

    AVAILABLE = True
except ImportError:  # the optional ``triton`` extra is not installed
    triton = None
    tl = None
    AVAILABLE = False

__all__ = ["AVAILABLE", "Blocks", "triton_linear_cross_entropy"]


@dataclass(frozen=True)
class Blocks:
    """Tile sizes (powers of two, each at least 16 for ``tl.dot``); ``None`` picks a default."""

    r: int | None = None  # rows per tile
    v: int | None = None  # vocabulary entries per tile
    k: int | None = None  # reduction step over d when computing logits
    d: int | None = None  # d entries per program for gx / gw
    num_warps: int = 8


def _pow2(n: int, hi: int) -> int:
    return min(max(16, triton.next_power_of_2(n)), hi)


def _resolve(blocks: Blocks | None, r: int, d: int, v: int, itemsize: int) -> Blocks:
    # Defaults chosen so that ptxas (sm_90, triton 3.7) reports no register spills for bf16 at d <= 128
    # and few for float32 at 8 warps; untuned: no GPU has timed them yet.
    blocks = blocks or Blocks()
    wide = itemsize >= 4  # float32/float64 operands: smaller tiles over d
    out = Blocks(r=blocks.r or _pow2(r, 64), v=blocks.v or _pow2(v, 128), k=blocks.k or _pow2(d, 32 if wide else 64),
                 d=blocks.d or _pow2(d, 64 if wide else 128), num_warps=blocks.num_warps)
    for name in ("r", "v", "k", "d"):
        size = getattr(out, name)
        if size < 16 or size & (size - 1):
            raise ValueError(f"block {name}={size}: tiles must be powers of two >= 16 (tl.dot)")
    return out


def _interpreting() -> bool:
    """Whether Triton's interpreter is asked for (``TRITON_INTERPRET=1``), read at call time."""
    try:
        from triton import knobs  # triton >= 3.4
    except ImportError:
        return os.environ.get("TRITON_INTERPRET", "0").lower() in ("1", "true", "on", "yes")
    return bool(knobs.runtime.interpret)


def _language_interpreted() -> bool:
    """Whether ``triton.language`` itself was imported under the interpreter.

    Its own helpers (``tl.zeros``, ``tl.sum``, ...) are jitted when triton is first imported, so the
    interpreter only works when ``TRITON_INTERPRET=1`` was set before that import.
    """
    from triton.runtime.jit import JITFunction

    return not isinstance(getattr(triton.language.standard, "sum", None), JITFunction)


if AVAILABLE:
    # Plain functions here; ``_kernels`` wraps them (``triton.jit`` or the interpreter) on first use, so
    # importing this module launches or compiles nothing. The logit tile is written out in each kernel
    # rather than in a helper, which would itself have to be jitted.

    def _forward_kernel(x_ptr, w_ptr, b_ptr, t_ptr, lse_ptr, loss_ptr, correct_ptr,
                        R, D, V, stride_we, stride_wd, stride_wv,
                        ACC: tl.constexpr, PRECISION: tl.constexpr, UPCAST: tl.constexpr,
                        BLOCK_R: tl.constexpr, BLOCK_V: tl.constexpr, BLOCK_K: tl.constexpr):
        e = tl.program_id(1).to(tl.int64)
        rows = tl.program_id(0) * BLOCK_R + tl.arange(0, BLOCK_R)
        row_ok = rows < R
        rows64 = rows.to(tl.int64)
        ks = tl.arange(0, BLOCK_K)
        x_rows = x_ptr + e * R * D + rows64[:, None] * D
        w_e = w_ptr + e * stride_we
        tgt = tl.load(t_ptr + e * R + rows64, mask=row_ok, other=0)

        run_max = tl.full([BLOCK_R], float("-inf"), ACC)
        run_sum = tl.zeros([BLOCK_R], ACC)
        tgt_logit = tl.zeros([BLOCK_R], ACC)
        arg = tl.zeros([BLOCK_R], tl.int64)
        for v0 in range(0, V, BLOCK_V):
            cols = v0 + tl.arange(0, BLOCK_V)
            col_ok = cols < V
            logits = tl.zeros([BLOCK_R, BLOCK_V], ACC)
            for k0 in range(0, D, BLOCK_K):
                kk = k0 + ks
                k_ok = kk < D
                xt = tl.load(x_rows + kk[None, :], mask=row_ok[:, None] & k_ok[None, :], other=0.0)
                wt = tl.load(w_e + kk[:, None].to(tl.int64) * stride_wd + cols[None, :].to(tl.int64) * stride_wv,
                             mask=k_ok[:, None] & col_ok[None, :], other=0.0)
                if UPCAST:
                    xt, wt = xt.to(ACC), wt.to(ACC)
                logits = tl.dot(xt, wt, logits, input_precision=PRECISION, out_dtype=ACC)
            bias = tl.load(b_ptr + e * V + cols, mask=col_ok, other=0.0).to(ACC)
            logits = tl.where(col_ok[None, :], logits + bias[None, :], float("-inf"))

            tile_max = tl.max(logits, axis=1)
            # First maximal column of the tile; a later tile takes over only when strictly greater.
            tile_arg = tl.min(tl.where(logits == tile_max[:, None], cols[None, :], V), axis=1).to(tl.int64)
            arg = tl.where(tile_max > run_max, tile_arg, arg)
            new_max = tl.maximum(run_max, tile_max)
            run_sum = run_sum * tl.exp(run_max - new_max) + tl.sum(tl.exp(logits - new_max[:, None]), axis=1)
            run_max = new_max
            tgt_logit += tl.sum(tl.where(cols[None, :] == tgt[:, None], logits, 0.0), axis=1)

        lse = run_max + tl.log(run_sum)
        out = e * R + rows64
        tl.store(lse_ptr + out, lse, mask=row_ok)
        tl.store(loss_ptr + out, lse - tgt_logit, mask=row_ok)
        tl.store(correct_ptr + out, (arg == tgt).to(tl.int8), mask=row_ok)

    def _grad_x_kernel(x_ptr, w_ptr, b_ptr, t_ptr, lse_ptr, g_ptr, gx_ptr,
                       R, D, V, stride_we, stride_wd, stride_wv,
                       ACC: tl.constexpr, PRECISION: tl.constexpr, UPCAST: tl.constexpr,
                       BLOCK_R: tl.constexpr, BLOCK_V: tl.constexpr, BLOCK_K: tl.constexpr, BLOCK_D: tl.constexpr):
        e = tl.program_id(2).to(tl.int64)
        rows = tl.program_id(0) * BLOCK_R + tl.arange(0, BLOCK_R)
        row_ok = rows < R
        rows64 = rows.to(tl.int64)
        ds = tl.program_id(1) * BLOCK_D + tl.arange(0, BLOCK_D)
        d_ok = ds < D
        ks = tl.arange(0, BLOCK_K)
        x_rows = x_ptr + e * R * D + rows64[:, None] * D
        w_e = w_ptr + e * stride_we
        tgt = tl.load(t_ptr + e * R + rows64, mask=row_ok, other=0)
        lse = tl.load(lse_ptr + e * R + rows64, mask=row_ok, other=0.0)
        g = tl.load(g_ptr + e * R + rows64, mask=row_ok, other=0.0)

        gx = tl.zeros([BLOCK_R, BLOCK_D], ACC)
        for v0 in range(0, V, BLOCK_V):
            cols = v0 + tl.arange(0, BLOCK_V)
            col_ok = cols < V
            logits = tl.zeros([BLOCK_R, BLOCK_V], ACC)
            for k0 in range(0, D, BLOCK_K):
                kk = k0 + ks
                k_ok = kk < D
                xt = tl.load(x_rows + kk[None, :], mask=row_ok[:, None] & k_ok[None, :], other=0.0)
                wt = tl.load(w_e + kk[:, None].to(tl.int64) * stride_wd + cols[None, :].to(tl.int64) * stride_wv,
                             mask=k_ok[:, None] & col_ok[None, :], other=0.0)
                if UPCAST:
                    xt, wt = xt.to(ACC), wt.to(ACC)
                logits = tl.dot(xt, wt, logits, input_precision=PRECISION, out_dtype=ACC)
            bias = tl.load(b_ptr + e * V + cols, mask=col_ok, other=0.0).to(ACC)
            p = tl.exp(logits + bias[None, :] - lse[:, None])
            grad = (p - tl.where(cols[None, :] == tgt[:, None], 1.0, 0.0)) * g[:, None]
            grad = tl.where(row_ok[:, None] & col_ok[None, :], grad, 0.0)
            # w^T tile [BLOCK_V, BLOCK_D], read through the strides (no transpose copy).
            wt_t = tl.load(w_e + cols[:, None].to(tl.int64) * stride_wv + ds[None, :].to(tl.int64) * stride_wd,
                           mask=col_ok[:, None] & d_ok[None, :], other=0.0)
            grad = grad.to(wt_t.dtype)
            if UPCAST:
                grad, wt_t = grad.to(ACC), wt_t.to(ACC)
            gx = tl.dot(grad, wt_t, gx, input_precision=PRECISION, out_dtype=ACC)
        tl.store(gx_ptr + e * R * D + rows64[:, None] * D + ds[None, :], gx, mask=row_ok[:, None] & d_ok[None, :])

    def _grad_w_kernel(x_ptr, w_ptr, b_ptr, t_ptr, lse_ptr, g_ptr, gw_ptr, gb_ptr,
                       R, D, V, stride_we, stride_wd, stride_wv,
                       ACC: tl.constexpr, PRECISION: tl.constexpr, UPCAST: tl.constexpr,
                       NEED_W: tl.constexpr, NEED_B: tl.constexpr,
                       BLOCK_R: tl.constexpr, BLOCK_V: tl.constexpr, BLOCK_K: tl.constexpr, BLOCK_D: tl.constexpr):
        e = tl.program_id(2).to(tl.int64)
        cols = tl.program_id(0) * BLOCK_V + tl.arange(0, BLOCK_V)
        col_ok = cols < V
        ds = tl.program_id(1) * BLOCK_D + tl.arange(0, BLOCK_D)
        d_ok = ds < D
        ks = tl.arange(0, BLOCK_K)
        x_e = x_ptr + e * R * D
        w_e = w_ptr + e * stride_we
        bias = tl.load(b_ptr + e * V + cols, mask=col_ok, other=0.0).to(ACC)

        gw = tl.zeros([BLOCK_D, BLOCK_V], ACC)
        gb = tl.zeros([BLOCK_V], ACC)
        for r0 in range(0, R, BLOCK_R):
            rows = r0 + tl.arange(0, BLOCK_R)
            row_ok = rows < R
            rows64 = rows.to(tl.int64)
            tgt = tl.load(t_ptr + e * R + rows64, mask=row_ok, other=0)
            lse = tl.load(lse_ptr + e * R + rows64, mask=row_ok, other=0.0)
            g = tl.load(g_ptr + e * R + rows64, mask=row_ok, other=0.0)
            logits = tl.zeros([BLOCK_R, BLOCK_V], ACC)
            for k0 in range(0, D, BLOCK_K):
                kk = k0 + ks
                k_ok = kk < D
                xt = tl.load(x_e + rows64[:, None] * D + kk[None, :], mask=row_ok[:, None] & k_ok[None, :], other=0.0)
                wt = tl.load(w_e + kk[:, None].to(tl.int64) * stride_wd + cols[None, :].to(tl.int64) * stride_wv,
                             mask=k_ok[:, None] & col_ok[None, :], other=0.0)
                if UPCAST:
                    xt, wt = xt.to(ACC), wt.to(ACC)
                logits = tl.dot(xt, wt, logits, input_precision=PRECISION, out_dtype=ACC)
            p = tl.exp(logits + bias[None, :] - lse[:, None])
            grad = (p - tl.where(cols[None, :] == tgt[:, None], 1.0, 0.0)) * g[:, None]
            grad = tl.where(row_ok[:, None] & col_ok[None, :], grad, 0.0)
            if NEED_W:
                # x^T tile [BLOCK_D, BLOCK_R], read through the strides.
                xt_t = tl.load(x_e + rows64[None, :] * D + ds[:, None], mask=d_ok[:, None] & row_ok[None, :], other=0.0)
                grad_in = grad.to(xt_t.dtype)
                if UPCAST:
                    xt_t, grad_in = xt_t.to(ACC), grad_in.to(ACC)
                gw = tl.dot(xt_t, grad_in, gw, input_precision=PRECISION, out_dtype=ACC)
            if NEED_B:
                gb += tl.sum(grad, axis=0)
        if NEED_W:
            tl.store(gw_ptr + e * D * V + ds[:, None].to(tl.int64) * V + cols[None, :], gw,
                     mask=d_ok[:, None] & col_ok[None, :])
        if NEED_B:
            if tl.program_id(1) == 0:  # every d tile computed gb; the first one stores it
                tl.store(gb_ptr + e * V + cols, gb, mask=col_ok)


@functools.lru_cache(maxsize=2)
def _kernels(interpret: bool):
    if interpret:
        from triton.runtime.interpreter import InterpretedFunction

        wrap = InterpretedFunction
    else:
        wrap = triton.jit
    return wrap(_forward_kernel), wrap(_grad_x_kernel), wrap(_grad_w_kernel)


_TL_ACC = {torch.float32: "float32", torch.float64: "float64"}
_SUPPORTED = (torch.float32, torch.bfloat16, torch.float16, torch.float64)


def _check(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, targets: torch.Tensor) -> bool:
    """Validate the inputs; return whether the interpreter runs the kernels."""
    if not AVAILABLE:
        raise RuntimeError("triton_linear_cross_entropy needs triton: pip install 'georecall[triton]' "
                           "(or use georecall.training.fused_ce.linear_cross_entropy)")
    interpret = _interpreting()
    devices = {t.device for t in (x, w, b, targets)}
    if len(devices) != 1:
        raise RuntimeError(f"triton_linear_cross_entropy: inputs on several devices {sorted(map(str, devices))}")
    if interpret and not _language_interpreted():
        raise RuntimeError("TRITON_INTERPRET=1 was set after triton was imported: the interpreter needs it in "
                           "the environment before the first `import triton` (e.g. on the command line)")
    if not interpret and x.device.type != "cuda":
        raise RuntimeError(f"triton_linear_cross_entropy runs on CUDA tensors, got device {x.device}; set "
                           "TRITON_INTERPRET=1 (before triton is imported) for the slow CPU interpreter, or use "
                           "georecall.training.fused_ce.linear_cross_entropy")
    e, r, d = x.shape
    if w.shape[:2] != (e, d) or b.shape != (e, w.shape[2]) or targets.shape != (e, r):
        raise ValueError(f"shapes x {tuple(x.shape)}, w {tuple(w.shape)}, b {tuple(b.shape)}, targets "
                         f"{tuple(targets.shape)}: expected [E, R, d], [E, d, V], [E, V], [E, R]")
    if x.dtype not in _SUPPORTED or w.dtype != x.dtype:
        raise TypeError(f"x and w must share one of {_SUPPORTED}, got {x.dtype} and {w.dtype}")
    if targets.dtype not in (torch.int64, torch.int32):
        raise TypeError(f"targets must be int64 or int32, got {targets.dtype}")
    return interpret


def _on(x: torch.Tensor):
    """Launch on x's GPU (triton uses the current device and its stream), not on GPU 0."""
    return torch.cuda.device(x.device) if x.is_cuda else contextlib.nullcontext()


class _TritonLinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, targets: torch.Tensor,
                allow_tf32: bool, blocks: Blocks | None) -> tuple[torch.Tensor, torch.Tensor]:
        interpret = _check(x, w, b, targets)
        e, r, d = x.shape
        v = w.shape[2]
        x, b, targets = x.contiguous(), b.contiguous(), targets.contiguous()
        acc = torch.promote_types(x.dtype, torch.float32)
        lse = torch.empty(e, r, dtype=acc, device=x.device)
        loss = torch.empty(e, r, dtype=acc, device=x.device)
        correct = torch.empty(e, r, dtype=torch.int8, device=x.device)
        bl = _resolve(blocks, r, d, v, x.element_size())
        precision = "tf32" if (allow_tf32 and x.dtype == torch.float32) else "ieee"
        # Triton 3.7's interpreter multiplies bfloat16 bit patterns as integers in tl.dot: there, the
        # half-precision operands are widened to float32 first (exact: same products, same float32 sums).
        upcast = interpret and x.dtype in (torch.bfloat16, torch.float16)
        consts = dict(ACC=getattr(tl, _TL_ACC[acc]), PRECISION=precision, UPCAST=upcast, BLOCK_R=bl.r,
                      BLOCK_V=bl.v, BLOCK_K=bl.k, num_warps=bl.num_warps)
        fwd, _, _ = _kernels(interpret)
        if e * r:
            with _on(x):
                fwd[(triton.cdiv(r, bl.r), e)](x, w, b, targets, lse, loss, correct, r, d, v, *w.stride(), **consts)
        ctx.save_for_backward(x, w, b, targets, lse)
        ctx.config = (interpret, consts, bl)
        correct = correct.view(torch.bool)
        ctx.mark_non_differentiable(correct)
        return loss, correct

    @staticmethod
    def backward(ctx, g_loss: torch.Tensor, g_correct: torch.Tensor):  # type: ignore[override]
        x, w, b, targets, lse = ctx.saved_tensors
        interpret, consts, bl = ctx.config
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        e, r, d = x.shape
        v = w.shape[2]
        g = g_loss.to(lse.dtype).contiguous()  # an expanded (stride-0) upstream gradient is common
        _, kx, kw = _kernels(interpret)
        common = dict(consts, BLOCK_D=bl.d)
        strides = w.stride()
        gx = gw = gb = None
        if need_x:
            gx = torch.empty_like(x)
            if gx.numel():
                with _on(x):
                    kx[(triton.cdiv(r, bl.r), triton.cdiv(d, bl.d), e)](
                        x, w, b, targets, lse, g, gx, r, d, v, *strides, **common)
        if need_w or need_b:
            gw_out = torch.empty(e, d, v, dtype=w.dtype, device=w.device) if need_w else lse  # lse: unused dummy
            gb_out = torch.empty(e, v, dtype=b.dtype, device=b.device) if need_b else lse
            if e * v:
                if r == 0:  # no rows: nothing to reduce
                    gw_out.zero_()
                    gb_out.zero_()
                else:
                    with _on(x):
                        kw[(triton.cdiv(v, bl.v), triton.cdiv(d, bl.d) if need_w else 1, e)](
                            x, w, b, targets, lse, g, gw_out, gb_out, r, d, v, *strides,
                            NEED_W=bool(need_w), NEED_B=bool(need_b), **common)
            gw = gw_out if need_w else None
            gb = gb_out if need_b else None
        return gx, gw, gb, None, None, None


def triton_linear_cross_entropy(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, targets: torch.Tensor, *,
                                allow_tf32: bool | None = None,
                                blocks: Blocks | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-row cross-entropy and argmax-correctness of the readout ``x @ w + b``, in Triton kernels.

    ``x`` [E, R, d], ``w`` [E, d, V] (any strides), ``b`` [E, V], ``targets`` [E, R] -> ``loss``
    [E, R] (float32, float64 for float64 inputs; differentiable in x, w, b) and ``correct`` [E, R]
    (bool). Same values and gradients as :func:`georecall.training.fused_ce.linear_cross_entropy`
    without materialising any logits. ``allow_tf32`` (float32 inputs only): TF32 tensor-core dots;
    ``None`` follows ``torch.backends.cuda.matmul.allow_tf32``. ``blocks`` overrides tile sizes.
    Raises ``RuntimeError`` without triton, or off CUDA unless ``TRITON_INTERPRET=1``.
    """
    if allow_tf32 is None:
        allow_tf32 = torch.backends.cuda.matmul.allow_tf32
    return _TritonLinearCrossEntropy.apply(x, w, b, targets, bool(allow_tf32), blocks)
