"""Theorem 4.3: depth-k transformers that answer k-hop chains without chain-of-thought (THEORY §4).

Two constructions, both with one G4 pointer head per layer (``beta = 20``) and the positional block
``Pi = (1, t, t^2)``; the answer is read at position k (the last relation token):

* **key-value memory** (§4.1): fact-free embeddings ``c(s)``, one lookup table of all ``N K`` facts
  in an MLP of width ``2NK + 2m + 2K``, repeated (identically) in every layer;
* **embedding pre-computation** (§4.2): every subject embedding holds its whole depth-k tree of
  answers, ``K^k m`` bits; attention and MLPs are fact-free and each layer's MLP cuts the tree by a
  factor K.

Layer 1's head points at ``c = 1/2`` (positions 0 and 1 together, ``W_O`` doubled) and copies the
subject block and ``r_1``; layer ``l >= 2`` points at position ``l`` and copies ``r_l`` from block ``Z``,
which no layer writes. The unpadded weights are built first (TransformerLens orientation, each head
with its own ``(d_k, d_v)``, each MLP with its own width), counted, and then zero-padded into a
:func:`~georecall.constructions.base.zero_model`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from georecall.config import TaskConfig
from georecall.constructions.base import (
    Construction,
    Layout,
    bits,
    make_counts,
    n_bits,
    signs,
    zero_model,
)
from georecall.model import Transformer
from georecall.tasks import World

# A head's unpadded matrices (TL orientation): W_Q, W_K [d, d_k], W_V [d, d_v], W_O [d_v, d].
_Head = dict[str, np.ndarray]
# An MLP's unpadded matrices: W_in [d, w], b_in [w], W_out [w, d], b_out [d].
_Mlp = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def build_kv_memory(world: World, n_hops: int, *, beta: float = 20.0,
                    dtype: torch.dtype = torch.float32) -> Construction:
    """Build Theorem 4.3's key-value-memory model (THEORY §4.1) answering every ``n_hops``-hop chain.

    Guarantee: argmax ``= f_{r_k}(... f_{r_1}(s))`` on all ``N K^k`` chains, logit margin 2 (up to the
    softmax leakage, which the G2 clip removes). Dimensions: k layers, one head each (layer 1
    ``(d_k, d_v) = (3, m + K)``, later layers ``(3, K)``), ``d = m + 2K + 3``, every MLP of width
    ``2NK + 2m + 2K`` and all k MLPs identical (one lookup table, tieable). Embeddings and attention
    are fact-free (``E[:, s] = c(s)``); the facts sit in the MLP's output columns. Scale condition
    ``beta >= max(2.8, ln(2m + 9) / 2)`` (sufficient, not tight); the maps may be arbitrary
    functions of the subjects. Run in float32 with TF32 off, or in float64 (THEORY §7).
    """
    _check_args(world, n_hops, beta)
    n, k_rel = world.n_subjects, world.n_relations
    m = n_bits(n)
    lay = Layout()
    lay.add("S", m)  # current subject, c(s_l)
    lay.add("Z", k_rel)  # relation one-hot of the token itself; never written
    lay.add("R", k_rel)  # fetched relation, erased by every MLP
    lay.add("Pi", 3)  # positional code (1, t, t^2)
    d, v = lay.size, n + k_rel

    w_e = np.zeros((v, d))  # [V, d]
    w_e[:n, lay["S"]] = signs(np.arange(n), m)  # fact-free subject codes
    w_e[n:, lay["Z"]] = np.eye(k_rel)
    heads = [_pointer_head(lay, 0.5, beta, reads=["S", "Z"], writes=["S", "R"], gain=2.0)]
    heads += [_pointer_head(lay, float(pos), beta, reads=["Z"], writes=["R"]) for pos in range(2, n_hops + 1)]
    mlp = _kv_mlp(world, lay, m)
    w_u = np.zeros((d, v))  # [d, V]; relation columns stay 0 (decoding lemma, §1.3)
    w_u[lay["S"], :n] = signs(np.arange(n), m).T

    weights = _Weights(w_e=w_e, w_pos=_positions(lay, n_hops + 1), heads=heads, mlps=[mlp] * n_hops, w_u=w_u)
    model, params, dims = _assemble(weights, n_ctx=n_hops + 1, dtype=dtype)
    return Construction(
        name="kv-memory", model=model, world=world,
        task=TaskConfig(n_subjects=n, n_relations=k_rel, n_hops=n_hops),
        theorem="Theorem 4.3, key-value memory (THEORY §4.1)",
        dims={**dims, "beta": beta, "m": m}, params=params, formula=kv_memory_formula(n, k_rel, n_hops),
        # THEORY §6.6: the table (once; the k copies are tied) holds every fact, K N m bits.
        notes={"content_bits": {"P": k_rel * n * m, "B_e": 0}, "readout": "fixed",
               "fact_dependent": ["blocks.*.mlp.W_out"], "blocks": _blocks(lay)},
    )


def build_precompute(world: World, n_hops: int, *, beta: float = 20.0,
                     dtype: torch.dtype = torch.float32) -> Construction:
    """Build Theorem 4.3's embedding pre-computation model (THEORY §4.2) answering every chain.

    Guarantee: argmax ``= f_{r_k}(... f_{r_1}(s))`` on all ``N K^k`` chains, logit margin 2. Needs
    ``K >= 2``. Dimensions: k layers, one head each (layer 1 ``(d_k, d_v) = (3, K^k m + K)``, later
    layers ``(3, K)``), ``d = m (K^{k+1} - 1)/(K - 1) + 2K + 3``, layer l's MLP of width
    ``2 K^{k-l+1} m + 2K`` (the model pads all layers to layer 1's width with zero units). Attention
    and MLPs are fact-free: each subject embedding holds its depth-k tree ``b(f_rho(s))`` for every
    path rho. Scale condition ``beta >= 2.1`` (sufficient). Run in float32 with TF32 off, or float64.
    """
    _check_args(world, n_hops, beta)
    n, k_rel = world.n_subjects, world.n_relations
    if k_rel < 2:
        raise ValueError(f"the pre-computation construction needs K >= 2 relations (THEORY §4.2: its "
                         f"d = m (K^(k+1) - 1)/(K - 1) + 2K + 3), got K = {k_rel}; use build_kv_memory")
    m = n_bits(n)
    lay = Layout()
    for j in range(n_hops):  # level L_j: K^(k-j) blocks of m bits, indexed by suffix paths
        lay.add(f"L{j}", k_rel ** (n_hops - j) * m)
    lay.add("A", m)  # answer code c(a)
    lay.add("Z", k_rel)
    lay.add("R", k_rel)
    lay.add("Pi", 3)
    d, v = lay.size, n + k_rel

    # Paths rho = (r_1..r_k), index sum_i r_i K^(k-i) (r_1 most significant): [K^k, k].
    paths = np.stack(np.unravel_index(np.arange(k_rel ** n_hops), (k_rel,) * n_hops), axis=1)
    subjects = np.repeat(np.arange(n), len(paths))  # [N K^k]
    tree = world.apply(subjects, np.tile(paths, (n, 1)))[:, -1]  # f_rho(s), [N K^k]
    w_e = np.zeros((v, d))  # [V, d]
    w_e[:n, lay["L0"]] = bits(tree, m).reshape(n, len(paths) * m)  # block p of L_0 = b(f_{rho_p}(s))
    w_e[n:, lay["Z"]] = np.eye(k_rel)
    heads = [_pointer_head(lay, 0.5, beta, reads=["L0", "Z"], writes=["L0", "R"], gain=2.0)]
    heads += [_pointer_head(lay, float(pos), beta, reads=["Z"], writes=["R"]) for pos in range(2, n_hops + 1)]
    mlps = [_precompute_mlp(lay, k_rel, n_hops, layer, m) for layer in range(1, n_hops + 1)]
    w_u = np.zeros((d, v))  # [d, V]
    w_u[lay["A"], :n] = signs(np.arange(n), m).T

    weights = _Weights(w_e=w_e, w_pos=_positions(lay, n_hops + 1), heads=heads, mlps=mlps, w_u=w_u)
    model, params, dims = _assemble(weights, n_ctx=n_hops + 1, dtype=dtype)
    return Construction(
        name="precompute", model=model, world=world,
        task=TaskConfig(n_subjects=n, n_relations=k_rel, n_hops=n_hops),
        theorem="Theorem 4.3, embedding pre-computation (THEORY §4.2)",
        dims={**dims, "beta": beta, "m": m}, params=params, formula=precompute_formula(n, k_rel, n_hops),
        # THEORY §6.6: all facts in the subject embeddings, the depth-k tree of K^k m bits.
        notes={"content_bits": {"P": 0, "B_e": k_rel ** n_hops * m}, "readout": "fixed",
               "fact_dependent": ["embed.W_E[:N]"], "blocks": _blocks(lay)},
    )


def kv_memory_formula(n_subjects: int, n_relations: int, n_hops: int) -> dict[str, int]:
    """THEORY §4.1 "Counts" (and §8) as closed forms, written independently of the build."""
    k, m = n_relations, n_bits(n_subjects)
    v, t = n_subjects + n_relations, n_hops + 1
    d = m + 2 * k + 3
    w = 2 * n_subjects * k + 2 * m + 2 * k
    attention = 6 * d + 2 * (m + k) * d + (n_hops - 1) * (6 * d + 2 * k * d)
    return make_counts(embedding=d * v, positional=d * t, attention=attention,
                       mlp=n_hops * (2 * w * d + w + d), unembedding=v * d)


def precompute_formula(n_subjects: int, n_relations: int, n_hops: int) -> dict[str, int]:
    """THEORY §4.2 "Counts" (and §8) as closed forms (``K >= 2``), written independently of the build."""
    k, m = n_relations, n_bits(n_subjects)
    if k < 2:
        raise ValueError(f"the pre-computation formulas need K >= 2, got {k}")
    v, t = n_subjects + n_relations, n_hops + 1
    d = m * (k ** (n_hops + 1) - 1) // (k - 1) + 2 * k + 3
    widths = [2 * k ** (n_hops - layer + 1) * m + 2 * k for layer in range(1, n_hops + 1)]
    attention = 6 * d + 2 * (k ** n_hops * m + k) * d + (n_hops - 1) * (6 * d + 2 * k * d)
    return make_counts(embedding=d * v, positional=d * t, attention=attention,
                       mlp=sum(2 * w * d + w + d for w in widths), unembedding=v * d)


# ---------------------------------------------------------------------------------------------------
# Pieces (shared with georecall.constructions.readout)


@dataclass(frozen=True, eq=False)
class _Weights:
    """A construction's unpadded weights, one head and one MLP per layer (TL orientation)."""

    w_e: np.ndarray  # [V, d]
    w_pos: np.ndarray | None  # [T, d], None when positions are unused
    heads: list[_Head]  # one per layer
    mlps: list[_Mlp]  # one per layer
    w_u: np.ndarray | None  # [d, V], None when tied to W_E


def _check_args(world: World, n_hops: int, beta: float | None) -> None:
    if n_hops < 1:
        raise ValueError(f"n_hops must be >= 1, got {n_hops}")
    if beta is not None and not beta > 0:
        raise ValueError(f"beta must be > 0, got {beta}")
    if world.attributes != "shared":
        raise ValueError(f"these constructions need shared attributes (chains compose), "
                         f"got {world.attributes!r}")


def _blocks(lay: Layout) -> dict[str, list[int]]:
    """The residual layout as ``{block: [start, stop]}`` (for probes and intermediate checks)."""
    return {name: [sl.start, sl.stop] for name, sl in lay.blocks.items()}


def _positions(lay: Layout, n_ctx: int) -> np.ndarray:
    """``W_pos`` [T, d]: ``(1, t, t^2)`` in block Pi (gadget G4)."""
    t = np.arange(n_ctx, dtype=np.float64)
    w_pos = np.zeros((n_ctx, lay.size))
    w_pos[:, lay["Pi"]] = np.stack([np.ones_like(t), t, t * t], axis=1)
    return w_pos


def _pointer_head(lay: Layout, center: float, beta: float, *, reads: list[str], writes: list[str],
                  gain: float = 1.0) -> _Head:
    """G4 pointer to the fixed position ``center``, copying blocks ``reads`` into ``writes`` (times ``gain``).

    Query ``beta (-c^2, 2c, -1)`` from the constant coordinate, key ``(1, u, u^2)``: score
    ``-beta (u - c)^2``. With ``c = 1/2`` positions 0 and 1 share the mass and ``gain = 2`` undoes the 1/2.
    """
    d = lay.size
    w_q = np.zeros((d, 3))  # TL orientation: W_Q[h] = (W_Q^h)^T
    w_q[lay.index("Pi", 0)] = beta * np.array([-center * center, 2 * center, -1.0])
    w_k = np.zeros((d, 3))
    w_k[lay["Pi"]] = np.eye(3)
    widths = [lay[r].stop - lay[r].start for r in reads]
    if widths != [lay[w].stop - lay[w].start for w in writes]:
        raise AssertionError(f"blocks {reads} and {writes} differ in width")
    w_v = np.zeros((d, sum(widths)))  # [d, d_v]
    w_o = np.zeros((sum(widths), d))  # [d_v, d]
    col = 0
    for src, dst, width in zip(reads, writes, widths, strict=True):
        w_v[lay[src], col:col + width] = np.eye(width)
        w_o[col:col + width, lay[dst]] = gain * np.eye(width)
        col += width
    return {"W_Q": w_q, "W_K": w_k, "W_V": w_v, "W_O": w_o}


def _erase_units(lay: Layout, blocks: list[str]) -> _Mlp:
    """G3 erase: units ``ReLU(x_i)``, ``ReLU(-x_i)`` with outputs ``-1``, ``+1`` add exactly ``-x_i``."""
    d = lay.size
    coords = np.concatenate([np.arange(lay[b].start, lay[b].stop) for b in blocks])
    w = 2 * len(coords)
    w_in, w_out = np.zeros((d, w)), np.zeros((w, d))
    units = np.arange(len(coords))
    w_in[coords, 2 * units] = 1.0
    w_out[2 * units, coords] = -1.0
    w_in[coords, 2 * units + 1] = -1.0
    w_out[2 * units + 1, coords] = 1.0
    return w_in, np.zeros(w), w_out, np.zeros(d)


def _concat_units(*parts: _Mlp) -> _Mlp:
    """One MLP holding the hidden units of ``parts`` side by side (output biases add)."""
    return (np.concatenate([p[0] for p in parts], axis=1), np.concatenate([p[1] for p in parts]),
            np.concatenate([p[2] for p in parts], axis=0), sum(p[3] for p in parts))


def _kv_mlp(world: World, lay: Layout, m: int) -> _Mlp:
    """§4.1 lookup table: for every ``(a, r)`` two units clipping ``p = <c(a), S> + 2 R_r - (m+1)``.

    ``p = 1`` iff ``S = c(a)`` and ``R = e_r``, else ``p <= -1``; ``ReLU(p + 1/2) - ReLU(p - 1/2)`` is then
    exactly 1 or 0 and writes ``c(f_r(a))`` on S. G3 erases S and R first (same MLP), so
    ``S = c(f_{r_l}(s_{l-1}))`` and ``R = 0`` afterwards.
    """
    n, k_rel = world.n_subjects, world.n_relations
    d, nk = lay.size, n * k_rel
    a_idx, r_idx = np.repeat(np.arange(n), k_rel), np.tile(np.arange(k_rel), n)  # pair a*K + r: [NK]
    codes = signs(np.arange(n), m)  # [N, m]
    w_in, w_out = np.zeros((d, 2 * nk)), np.zeros((2 * nk, d))
    b_in = np.concatenate([np.full(nk, -m - 0.5), np.full(nk, -m - 1.5)])
    out = codes[world.maps[r_idx, a_idx]]  # c(f_r(a)): [NK, m]
    for half, sign in ((slice(0, nk), 1.0), (slice(nk, 2 * nk), -1.0)):
        w_in[lay["S"], half] = codes[a_idx].T  # row c(a)^T on S
        w_in[lay["R"].start + r_idx, np.arange(2 * nk)[half]] = 2.0  # 2 on R_r
        w_out[half, lay["S"]] = sign * out
    return _concat_units((w_in, b_in, w_out, np.zeros(d)), _erase_units(lay, ["S", "R"]))


def _precompute_mlp(lay: Layout, k_rel: int, n_hops: int, layer: int, m: int) -> _Mlp:
    """§4.2 MLP of ``layer`` (1-based): G2 ANDs ``L_{l-1}[r K^{k-l} + q]_i`` with ``R_r`` into ``L_l[q]_i``.

    The last layer writes ``2 AND - 1`` on A (so ``A = c(answer)``); every layer erases R (G3).
    """
    d = lay.size
    src = lay[f"L{layer - 1}"]
    n_and = src.stop - src.start  # K^(k-l+1) m: one AND per coordinate of L_{l-1}
    sub = n_and // k_rel  # K^(k-l) m: coordinates per relation r, i.e. the width of L_l
    j = np.arange(n_and)  # coordinate of L_{l-1}; relation r = j // sub, target q m + i = j % sub
    dst_start, gain = (lay["A"].start, 2.0) if layer == n_hops else (lay[f"L{layer}"].start, 1.0)
    w_in, w_out = np.zeros((d, 2 * n_and)), np.zeros((2 * n_and, d))
    b_in = np.concatenate([np.full(n_and, -2.5), np.full(n_and, -3.5)])  # ReLU(2x + 2R_r - 5/2 | 7/2)
    for half, sign in ((0, 1.0), (n_and, -1.0)):
        w_in[src.start + j, half + j] = 2.0
        w_in[lay["R"].start + j // sub, half + j] = 2.0
        w_out[half + j, dst_start + j % sub] = sign * gain
    b_out = np.zeros(d)
    if layer == n_hops:
        b_out[lay["A"]] = -1.0
    return _concat_units((w_in, b_in, w_out, b_out), _erase_units(lay, ["R"]))


def _assemble(weights: _Weights, *, n_ctx: int, dtype: torch.dtype
              ) -> tuple[Transformer, dict[str, int], dict[str, object]]:
    """Count the unpadded weights, pad them into a zeroed model, and return model, counts and dims."""
    v, d = weights.w_e.shape
    heads, mlps = weights.heads, weights.mlps
    head_dims = [(h["W_Q"].shape[1], h["W_V"].shape[1]) for h in heads]
    widths = [mlp[0].shape[1] for mlp in mlps]
    model = zero_model(d_model=d, d_vocab=v, n_ctx=n_ctx, n_layers=len(heads),
                       d_head=max(max(dk, dv) for dk, dv in head_dims), d_mlp=max(widths),
                       tie_unembed=weights.w_u is None, dtype=dtype)
    _load(model, weights)
    params = make_counts(
        embedding=weights.w_e.size,
        positional=0 if weights.w_pos is None else weights.w_pos.size,
        attention=sum(a.size for h in heads for a in h.values()),
        mlp=sum(a.size for mlp in mlps for a in mlp),
        unembedding=0 if weights.w_u is None else weights.w_u.size,
    )
    dims: dict[str, object] = {"d_model": d, "mlp_widths": widths, "n_layers": len(heads), "n_heads": 1,
                               "heads": [[hd] for hd in head_dims], "n_ctx": n_ctx}
    return model, params, dims


@torch.no_grad()
def _load(model: Transformer, weights: _Weights) -> None:
    """Copy the unpadded weights into member 0 of ``model``, zero-padding heads and MLP widths."""
    def put(p: torch.Tensor, value: np.ndarray) -> None:
        if tuple(p.shape) != value.shape:
            raise AssertionError(f"shape mismatch: parameter {tuple(p.shape)}, weights {value.shape}")
        p.copy_(torch.from_numpy(value).to(p.dtype))

    put(model.embed.W_E[0], weights.w_e)
    if weights.w_pos is not None:
        put(model.pos_embed.W_pos[0], weights.w_pos)
    layers = zip(model.blocks, weights.heads, weights.mlps, strict=True)
    for block, head, (w_in, b_in, w_out, b_out) in layers:
        d_k, d_v = head["W_Q"].shape[1], head["W_V"].shape[1]
        put(block.attn.W_Q[0, 0, :, :d_k], head["W_Q"])
        put(block.attn.W_K[0, 0, :, :d_k], head["W_K"])
        put(block.attn.W_V[0, 0, :, :d_v], head["W_V"])
        put(block.attn.W_O[0, 0, :d_v, :], head["W_O"])
        w = w_in.shape[1]  # units beyond w stay zero: ReLU(0) = 0 adds nothing
        put(block.mlp.W_in[0, :, :w], w_in)
        put(block.mlp.b_in[0, :w], b_in)
        put(block.mlp.W_out[0, :w, :], w_out)
        put(block.mlp.b_out[0], b_out)
    if weights.w_u is not None:
        put(model.unembed.W_U[0], weights.w_u)
