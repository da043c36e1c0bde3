"""Theorem 4.4: one-layer chain-of-thought models that emit a whole k-hop chain by greedy decoding.

docs/theory.md §5. The MLP is the single-hop selector of §2.2 (subject embeddings hold the superposed
attribute tree ``sum_r iota_{S_r} b(f_r(s))``, the relation one-hot opens one group of G1 gates); the
attention supplies, at every answer position, the tree of the latest subject and the next relation:

* format A (interleaved, ``s_0 r_1 s_1 ... r_k``): one head, a G4 previous-token pointer. The current
  token is ``r_j`` itself, so the relation is read exactly; the weights do not depend on k.
* format B (question first, ``s_0 r_1 .. r_k s_1 .. s_{k-1}``): two heads, a G4 pointer to ``r_j`` at
  relative offset ``k - 1`` and a "latest subject" head.

The unpadded weights are built from :mod:`georecall.constructions.gadgets` and assembled there
(counted, then padded into a :func:`~georecall.constructions.base.zero_model`).
"""

from __future__ import annotations

import numpy as np
import torch

from georecall.config import TaskConfig
from georecall.constructions.base import Construction, Layout, make_counts, n_bits, signs, subject_anatomy
from georecall.constructions.gadgets import (
    Head,
    add_blocks,
    assemble,
    coords,
    copy_blocks,
    pointer_head,
    positional_table,
    selector_gate_units,
    selector_units,
    subject_tree,
)
from georecall.tasks import World, chain_format

FORMATS = {"interleaved": "cot", "question_first": "cot-question-first"}


def build_cot(world: World, n_hops: int, *, fmt: str = "interleaved", beta: float = 10.0,
              dtype: torch.dtype = torch.float32) -> Construction:
    """Build Theorem 4.4's one-layer CoT model (docs/theory.md §5) for ``world`` and chains of ``n_hops`` hops.

    Guarantee: greedy decoding of ``s_0 r_1 ...`` emits every ``s_j = f_{r_j}(s_{j-1})`` for every start
    subject and every chain, with logit margin close to 2 (each output coordinate is sign-correct; at
    N = 2, m = 1, the runner-up is a relation token with logit 0 and the margin is close to 1).

    * ``fmt="interleaved"`` (format A, §5.1): 1 layer, 1 head ``(d_k, d_v) = (3, Km)``,
      ``d = (K+1)m + K + 3``, MLP width ``Km``; needs ``beta >= 2`` (sufficient, not tight). The weights
      do not depend on k; only the positional table has ``2k + 1`` rows.
    * ``fmt="question_first"`` (format B, §5.2): 1 layer, heads ``(3, K)`` and ``(2, Km)``,
      ``d = 2Km + 2K + m + 4``, MLP width ``Km``; needs ``beta > ln(4(K+1))``. The pointer offset
      ``k - 1`` ties the weights to k.

    ``m = ceil(log2 N)``. Requires shared attributes (chains compose only then); the maps need not be
    bijections or random. Run the model in float32 with TF32 off, or in float64, never under autocast
    (docs/theory.md §7): the quadratic pointer cancels terms of size ``beta T^2``.
    """
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {sorted(FORMATS)}, got {fmt!r}")
    if n_hops < 1:
        raise ValueError(f"n_hops must be >= 1, got {n_hops}")
    if not beta > 0:
        raise ValueError(f"beta must be > 0, got {beta}")
    if world.attributes != "shared":
        raise ValueError(f"chain-of-thought needs shared attributes, got {world.attributes!r}")
    n, k_rel = world.n_subjects, world.n_relations
    m = n_bits(n)
    layout = chain_format(fmt, n_hops)
    n_ctx = layout.seq_len  # the theory's positional table length T = 2k + 1; inputs are at most 2k long

    if fmt == "interleaved":
        lay = _layout(k_rel, m, question_first=False)
        # At r_j the current token is the relation; the pointer reads s_{j-1}, one position back.
        heads = [pointer_head(lay, beta, offset=layout.subject_offset, reads=["S"], writes=["S"])]
        read_bits, read_rel = "S", "Z"
    else:
        lay = _layout(k_rel, m, question_first=True)
        # r_j lies k - 1 positions before its answer position; the latest subject's distance varies.
        heads = [pointer_head(lay, beta, offset=layout.relation_offset, reads=["Z"], writes=["R"]),
                 _latest_subject_head(lay, beta=beta, n_ctx=n_ctx)]
        read_bits, read_rel = "S'", "R"

    w_e = subject_tree(lay, world.maps, m, n + k_rel)  # the superposition sum_r iota_{S_r} b(f_r(s))
    w_e[n + np.arange(k_rel), coords(lay, "Z")] = 1.0
    if "sigma" in lay.blocks:
        w_e[:n, lay.index("sigma")] = 1.0
    mlp = selector_units(lay, k_rel, m, read_bits=read_bits, read_rel=read_rel)
    w_u = np.zeros((lay.size, n + k_rel))  # [d, V]; relation columns stay 0 (decoding lemma, §1.3)
    w_u[lay["A"], :n] = signs(np.arange(n), m).T

    model, params, dims = assemble(w_e=w_e, w_pos=positional_table(lay, n_ctx), heads=[heads], mlps=[mlp],
                                   w_u=w_u, n_ctx=n_ctx, dtype=dtype)
    section = "§5.1" if fmt == "interleaved" else "§5.2"
    return Construction(
        name=FORMATS[fmt], model=model, world=world,
        task=TaskConfig(n_subjects=n, n_relations=k_rel, n_hops=n_hops, cot=fmt),
        theorem=f"Theorem 4.4 (docs/theory.md {section})",
        dims={**dims, "beta": beta, "m": m},
        params=params, formula=cot_formula(n, k_rel, n_hops, fmt=fmt),
        # docs/theory.md §6.6: the facts live only in the subject embeddings, K m bits per subject, as in
        # constructions.single_hop (layout, how S_r encodes an attribute, the selector's gates).
        anatomy=subject_anatomy(lay, "bits", k_rel * m, gate_hook="blocks.0.mlp.hook_post",
                                gate_units=selector_gate_units(k_rel, m)),
    )


def cot_formula(n_subjects: int, n_relations: int, n_hops: int, *,
                fmt: str = "interleaved") -> dict[str, int]:
    """docs/theory.md §5.1 / §5.2 "Counts" as closed forms, written independently of the build."""
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {sorted(FORMATS)}, got {fmt!r}")
    k, m = n_relations, max(1, (n_subjects - 1).bit_length())  # ceil(log2 N) by integer arithmetic
    v, t = n_subjects + n_relations, 2 * n_hops + 1
    if fmt == "interleaved":
        d = (k + 1) * m + k + 3
        attention = 6 * d + 2 * k * m * d
    else:
        d = 2 * k * m + 2 * k + m + 4
        attention = 6 * d + 2 * k * d + 4 * d + 2 * k * m * d
    return make_counts(embedding=d * v, positional=d * t, attention=attention,
                       mlp=2 * k * m * d + k * m + d, unembedding=v * d)


# ---------------------------------------------------------------------------------------------------
# Pieces


def _layout(n_relations: int, m: int, *, question_first: bool) -> Layout:
    """Residual blocks of §5.1 (S, Z, A, Pi) or §5.2 (S, Z, sigma, S', R, A, Pi).

    S is allocated as K contiguous blocks ``S_0 .. S_{K-1}`` of m (block names as in
    :mod:`georecall.constructions.single_hop`), S' likewise as ``S'_0 .. S'_{K-1}``.
    """
    lay = Layout()
    add_blocks(lay, "S", n_relations, m)  # subject's attribute tree: S_r = b(f_r(s))
    lay.add("Z", n_relations)  # relation one-hot
    if question_first:
        lay.add("sigma", 1)  # 1 on subject tokens
        add_blocks(lay, "S'", n_relations, m)  # copy of the latest subject's tree
        lay.add("R", n_relations)  # copy of the relation to apply now
    lay.add("A", m)  # answer code c(a)
    lay.add("Pi", 3)  # positional code (1, t, t^2)
    return lay


def _latest_subject_head(lay: Layout, *, beta: float, n_ctx: int) -> Head:
    """Attend to the last subject token ``<= t``: score ``beta (T+1) sigma_u + beta u`` (§5.2 head 2)."""
    d = lay.size
    w_q = np.zeros((d, 2))  # query from the constant positional coordinate
    w_q[lay.index("Pi", 0)] = [beta * (n_ctx + 1), beta]
    w_k = np.zeros((d, 2))  # key (sigma_u, u)
    w_k[lay.index("sigma"), 0] = 1.0
    w_k[lay.index("Pi", 1), 1] = 1.0
    return {"W_Q": w_q, "W_K": w_k, **copy_blocks(lay, ["S"], ["S'"])}
