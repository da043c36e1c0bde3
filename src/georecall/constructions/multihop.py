"""Theorem 4.3: depth-k transformers that answer k-hop chains without chain-of-thought (docs/theory.md §4).

Two constructions, both with one G4 pointer head per layer (``beta = 20``) and the positional block
``Pi = (1, t, t^2)``; the answer is read at position k (the last relation token):

* **key-value memory** (§4.1): fact-free embeddings ``c(s)``, one lookup table of all ``N K`` facts
  in an MLP of width ``2NK + 2m + 2K``, repeated (identically) in every layer;
* **embedding pre-computation** (§4.2): every subject embedding holds its whole depth-k tree of
  answers, ``K^k m`` bits; attention and MLPs are fact-free and each layer's MLP cuts the tree by a
  factor K.

Layer 1's head points at ``c = 1/2`` (positions 0 and 1 together, ``W_O`` doubled) and copies the
subject block and ``r_1``; layer ``l >= 2`` points at position ``l`` and copies ``r_l`` from block ``Z``,
which no layer writes. The unpadded weights (each head with its own ``(d_k, d_v)``, each MLP with its
own width) are assembled by :func:`georecall.constructions.gadgets.assemble`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from georecall.config import TaskConfig
from georecall.constructions.base import Anatomy, Construction, Layout, bits, make_counts, n_bits, signs
from georecall.constructions.gadgets import (
    Mlp,
    assemble,
    check_chain_args,
    concat_units,
    erase_units,
    pointer_head,
    positional_table,
)
from georecall.model import Transformer
from georecall.tasks import World


def build_kv_memory(world: World, n_hops: int, *, beta: float = 20.0,
                    dtype: torch.dtype = torch.float32) -> Construction:
    """Build Theorem 4.3's key-value-memory model (docs/theory.md §4.1) answering every ``n_hops``-hop chain.

    Guarantee: argmax ``= f_{r_k}(... f_{r_1}(s))`` on all ``N K^k`` chains, logit margin 2 (up to the
    softmax leakage, which the G2 clip removes). Dimensions: k layers, one head each (layer 1
    ``(d_k, d_v) = (3, m + K)``, later layers ``(3, K)``), ``d = m + 2K + 3``, every MLP of width
    ``2NK + 2m + 2K`` and all k MLPs identical (one lookup table, tieable). Embeddings and attention
    are fact-free (``E[:, s] = c(s)``); the facts sit in the MLP's output columns. Scale condition
    ``beta >= max(2.8, ln(2m + 9) / 2)`` (sufficient, not tight); the maps may be arbitrary
    functions of the subjects. Run in float32 with TF32 off, or in float64 (docs/theory.md §7).
    """
    check_chain_args(world, n_hops, beta)
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
    mlp = _kv_mlp(world, lay, m)
    w_u = np.zeros((d, v))  # [d, V]; relation columns stay 0 (decoding lemma, §1.3)
    w_u[lay["S"], :n] = signs(np.arange(n), m).T

    model, params, dims = _assemble_chain(lay, w_e, [mlp] * n_hops, w_u, subject="S", beta=beta, dtype=dtype)
    return Construction(
        name="kv-memory", model=model, world=world,
        task=TaskConfig(n_subjects=n, n_relations=k_rel, n_hops=n_hops),
        theorem="Theorem 4.3, key-value memory (docs/theory.md §4.1)",
        dims={**dims, "beta": beta, "m": m}, params=params, formula=kv_memory_formula(n, k_rel, n_hops),
        # docs/theory.md §6.6: the table (once; the k copies are tied) holds every fact, K N m bits.
        anatomy=Anatomy(readout="fixed", content_bits={"P": k_rel * n * m, "B_e": 0},
                        fact_dependent=("blocks.*.mlp.W_out",), layout=lay),
    )


def build_precompute(world: World, n_hops: int, *, beta: float = 20.0,
                     dtype: torch.dtype = torch.float32) -> Construction:
    """Build Theorem 4.3's embedding pre-computation model (docs/theory.md §4.2) answering every chain.

    Guarantee: argmax ``= f_{r_k}(... f_{r_1}(s))`` on all ``N K^k`` chains, logit margin 2. Needs
    ``K >= 2``. Dimensions: k layers, one head each (layer 1 ``(d_k, d_v) = (3, K^k m + K)``, later
    layers ``(3, K)``), ``d = m (K^{k+1} - 1)/(K - 1) + 2K + 3``, layer l's MLP of width
    ``2 K^{k-l+1} m + 2K`` (the model pads all layers to layer 1's width with zero units). Attention
    and MLPs are fact-free: each subject embedding holds its depth-k tree ``b(f_rho(s))`` for every
    path rho. Scale condition ``beta >= 2.1`` (sufficient). Run in float32 with TF32 off, or float64.
    """
    check_chain_args(world, n_hops, beta)
    n, k_rel = world.n_subjects, world.n_relations
    if k_rel < 2:
        raise ValueError(f"the pre-computation construction needs K >= 2 relations (docs/theory.md §4.2: its "
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
    mlps = [_precompute_mlp(lay, k_rel, n_hops, layer, m) for layer in range(1, n_hops + 1)]
    w_u = np.zeros((d, v))  # [d, V]
    w_u[lay["A"], :n] = signs(np.arange(n), m).T

    model, params, dims = _assemble_chain(lay, w_e, mlps, w_u, subject="L0", beta=beta, dtype=dtype)
    return Construction(
        name="precompute", model=model, world=world,
        task=TaskConfig(n_subjects=n, n_relations=k_rel, n_hops=n_hops),
        theorem="Theorem 4.3, embedding pre-computation (docs/theory.md §4.2)",
        dims={**dims, "beta": beta, "m": m}, params=params, formula=precompute_formula(n, k_rel, n_hops),
        # docs/theory.md §6.6: all facts in the subject embeddings, the depth-k tree of K^k m bits.
        anatomy=Anatomy(readout="fixed", content_bits={"P": 0, "B_e": k_rel ** n_hops * m},
                        fact_dependent=("embed.W_E[:N]",), layout=lay),
    )


def kv_memory_formula(n_subjects: int, n_relations: int, n_hops: int) -> dict[str, int]:
    """docs/theory.md §4.1 "Counts" (and §8) as closed forms, written independently of the build."""
    k, m = n_relations, n_bits(n_subjects)
    v, t = n_subjects + n_relations, n_hops + 1
    d = m + 2 * k + 3
    w = 2 * n_subjects * k + 2 * m + 2 * k
    attention = 6 * d + 2 * (m + k) * d + (n_hops - 1) * (6 * d + 2 * k * d)
    return make_counts(embedding=d * v, positional=d * t, attention=attention,
                       mlp=n_hops * (2 * w * d + w + d), unembedding=v * d)


def precompute_formula(n_subjects: int, n_relations: int, n_hops: int) -> dict[str, int]:
    """docs/theory.md §4.2 "Counts" (and §8) as closed forms (``K >= 2``), written independently of the build."""
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
# Pieces


def _assemble_chain(lay: Layout, w_e: np.ndarray, mlps: list[Mlp], w_u: np.ndarray, *, subject: str, beta: float,
                    dtype: torch.dtype) -> tuple[Transformer, dict[str, int], dict[str, Any]]:
    """One G4 head per layer, positions ``0..k``, then :func:`assemble` (k = ``len(mlps)``).

    Layer 1's head points at ``c = 1/2`` (``W_O`` doubled) and copies block ``subject`` and ``r_1`` (Z) into
    ``subject`` and R; layer ``l >= 2`` points at position ``l`` and copies ``r_l`` from Z into R.
    """
    n_hops = len(mlps)
    heads = [[pointer_head(lay, beta, center=0.5, reads=[subject, "Z"], writes=[subject, "R"], gain=2.0)]]
    heads += [[pointer_head(lay, beta, center=pos, reads=["Z"], writes=["R"])] for pos in range(2, n_hops + 1)]
    return assemble(w_e=w_e, w_pos=positional_table(lay, n_hops + 1), heads=heads, mlps=mlps, w_u=w_u,
                    n_ctx=n_hops + 1, dtype=dtype)


def _kv_mlp(world: World, lay: Layout, m: int) -> Mlp:
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
    return concat_units(Mlp(w_in, b_in, w_out, np.zeros(d)), erase_units(lay, ["S", "R"]))


def _precompute_mlp(lay: Layout, k_rel: int, n_hops: int, layer: int, m: int) -> Mlp:
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
    return concat_units(Mlp(w_in, b_in, w_out, b_out), erase_units(lay, ["R"]))
