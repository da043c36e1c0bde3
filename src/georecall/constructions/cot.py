"""Theorem 4.4: one-layer chain-of-thought models that emit a whole k-hop chain by greedy decoding.

THEORY §5. The MLP is the single-hop selector of §2.2 (subject embeddings hold the superposed
attribute tree ``sum_r iota_{S_r} b(f_r(s))``, the relation one-hot opens one group of G1 gates); the
attention supplies, at every answer position, the tree of the latest subject and the next relation:

* format A (interleaved, ``s_0 r_1 s_1 ... r_k``): one head, a G4 previous-token pointer. The current
  token is ``r_j`` itself, so the relation is read exactly; the weights do not depend on k.
* format B (question first, ``s_0 r_1 .. r_k s_1 .. s_{k-1}``): two heads, a G4 pointer to ``r_j`` at
  relative offset ``k - 1`` and a "latest subject" head.

The unpadded weights are built first (TransformerLens orientation, each head with its own
``(d_k, d_v)``), counted, and then padded into a :func:`~georecall.constructions.base.zero_model`.
"""

from __future__ import annotations

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

FORMATS = {"interleaved": "cot", "question_first": "cot-question-first"}

# A head's unpadded matrices (TL orientation): W_Q, W_K [d, d_k], W_V [d, d_v], W_O [d_v, d].
_Head = dict[str, np.ndarray]


def build_cot(world: World, n_hops: int, *, fmt: str = "interleaved", beta: float = 10.0,
              dtype: torch.dtype = torch.float32) -> Construction:
    """Build Theorem 4.4's one-layer CoT model (THEORY §5) for ``world`` and chains of ``n_hops`` hops.

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
    (THEORY §7): the quadratic pointer cancels terms of size ``beta T^2``.
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
    n_ctx = 2 * n_hops + 1  # THEORY's positional table length T; inputs are at most 2k long

    if fmt == "interleaved":
        lay = _layout(k_rel, m, question_first=False)
        heads = [_pointer_head(lay, offset=1, beta=beta, read="S", write="S")]
        read_bits, read_rel = "S", "Z"
    else:
        lay = _layout(k_rel, m, question_first=True)
        heads = [_pointer_head(lay, offset=n_hops - 1, beta=beta, read="Z", write="R"),
                 _latest_subject_head(lay, beta=beta, n_ctx=n_ctx)]
        read_bits, read_rel = "S'", "R"
    d = lay.size

    w_e = _embedding(world, lay, m)  # [V, d]
    w_pos = _positions(lay, n_ctx)  # [T, d]
    w_in, b_in, w_out, b_out = _selector_mlp(lay, k_rel, m, read_bits=read_bits, read_rel=read_rel)
    w_u = np.zeros((d, n + k_rel))  # [d, V]; relation columns stay 0 (decoding lemma, §1.3)
    w_u[lay["A"], :n] = signs(np.arange(n), m).T

    model = zero_model(d_model=d, d_vocab=n + k_rel, n_ctx=n_ctx, n_heads=len(heads),
                       d_head=max(max(h["W_Q"].shape[1], h["W_V"].shape[1]) for h in heads),
                       d_mlp=w_in.shape[1], dtype=dtype)
    _load(model, w_e=w_e, w_pos=w_pos, heads=heads, mlp=(w_in, b_in, w_out, b_out), w_u=w_u)

    head_dims = [(h["W_Q"].shape[1], h["W_V"].shape[1]) for h in heads]
    params = make_counts(embedding=w_e.size, positional=w_pos.size,
                         attention=sum(a.size for h in heads for a in h.values()),
                         mlp=w_in.size + b_in.size + w_out.size + b_out.size, unembedding=w_u.size)
    section = "§5.1" if fmt == "interleaved" else "§5.2"
    return Construction(
        name=FORMATS[fmt], model=model, world=world,
        task=TaskConfig(n_subjects=n, n_relations=k_rel, n_hops=n_hops, cot=fmt),
        theorem=f"Theorem 4.4 (THEORY {section})",
        dims={"d_model": d, "mlp_widths": [w_in.shape[1]], "n_layers": 1, "n_heads": len(heads),
              "heads": [head_dims], "n_ctx": n_ctx, "beta": beta, "m": m},
        params=params, formula=cot_formula(n, k_rel, n_hops, fmt=fmt),
        # THEORY §6.6: the facts live only in the subject embeddings, K m bits per subject. The other keys
        # follow constructions.single_hop (layout, how S_r encodes an attribute, the selector's gates).
        notes={"content_bits": {"P": 0, "B_e": k_rel * m}, "readout": "fixed", "layout": lay,
               "subject_code": "bits", "code_offset": 0, "gate_hook": "blocks.0.mlp.hook_post",
               "gate_units": [slice(r * m, (r + 1) * m) for r in range(k_rel)]},
    )


def cot_formula(n_subjects: int, n_relations: int, n_hops: int, *,
                fmt: str = "interleaved") -> dict[str, int]:
    """THEORY §5.1 / §5.2 "Counts" as closed forms, written independently of the build."""
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
    for r in range(n_relations):
        lay.add(f"S_{r}", m)  # subject's attribute tree: S_r = b(f_r(s))
    lay.add("Z", n_relations)  # relation one-hot
    if question_first:
        lay.add("sigma", 1)  # 1 on subject tokens
        for r in range(n_relations):
            lay.add(f"S'_{r}", m)  # copy of the latest subject's tree
        lay.add("R", n_relations)  # copy of the relation to apply now
    lay.add("A", m)  # answer code c(a)
    lay.add("Pi", 3)  # positional code (1, t, t^2)
    return lay


def _embedding(world: World, lay: Layout, m: int) -> np.ndarray:
    """``W_E`` [V, d]: subjects hold their superposed attribute tree (and sigma), relations a one-hot."""
    n, k = world.n_subjects, world.n_relations
    w_e = np.zeros((n + k, lay.size))
    # maps [K, N] -> codes [N, K, m] -> S block [N, K*m] (block r at S_r).
    for r in range(k):
        w_e[:n, lay[f"S_{r}"]] = bits(world.maps[r], m)  # the superposition sum_r iota_{S_r} b(f_r(s))
    for r in range(k):
        w_e[n + r, lay.index("Z", r)] = 1.0
    if "sigma" in lay.blocks:
        w_e[:n, lay.index("sigma")] = 1.0
    return w_e


def _positions(lay: Layout, n_ctx: int) -> np.ndarray:
    """``W_pos`` [T, d]: ``(1, t, t^2)`` in block Pi (gadget G4)."""
    t = np.arange(n_ctx, dtype=np.float64)
    w_pos = np.zeros((n_ctx, lay.size))
    w_pos[:, lay["Pi"]] = np.stack([np.ones_like(t), t, t * t], axis=1)
    return w_pos


def _pointer_head(lay: Layout, *, offset: int, beta: float, read: str, write: str) -> _Head:
    """G4 quadratic pointer to position ``t - offset``, copying block ``read`` into block ``write``.

    Query ``beta (-(t-o)^2, 2(t-o), -1)``, key ``(1, u, u^2)``: score ``-beta (u - (t-o))^2``.
    """
    d, o = lay.size, float(offset)
    pi = lay["Pi"]
    # Column convention (THEORY §1.4): row j gives q_j from the key coordinates (1, t, t^2).
    q_mat = beta * np.array([[-o * o, 2 * o, -1.0], [-2 * o, 2.0, 0.0], [-1.0, 0.0, 0.0]])
    w_q = np.zeros((d, 3))
    w_q[pi] = q_mat.T  # TL orientation: W_Q[h] = (W_Q^h)^T
    w_k = np.zeros((d, 3))
    w_k[pi] = np.eye(3)
    return {"W_Q": w_q, "W_K": w_k, **_copy(lay, read, write)}


def _latest_subject_head(lay: Layout, *, beta: float, n_ctx: int) -> _Head:
    """Attend to the last subject token ``<= t``: score ``beta (T+1) sigma_u + beta u`` (§5.2 head 2)."""
    d = lay.size
    w_q = np.zeros((d, 2))  # query from the constant positional coordinate
    w_q[lay.index("Pi", 0)] = [beta * (n_ctx + 1), beta]
    w_k = np.zeros((d, 2))  # key (sigma_u, u)
    w_k[lay.index("sigma"), 0] = 1.0
    w_k[lay.index("Pi", 1), 1] = 1.0
    return {"W_Q": w_q, "W_K": w_k, **_copy(lay, "S", "S'")}


def _span(lay: Layout, name: str) -> slice:
    """Block ``name``, or the contiguous run of blocks ``name_0 .. name_{K-1}`` (S, S')."""
    if name in lay.blocks:
        return lay[name]
    parts = [sl for key, sl in lay.blocks.items() if key.rpartition("_")[0] == name]
    assert parts and all(a.stop == b.start for a, b in zip(parts[:-1], parts[1:], strict=True)), name
    return slice(parts[0].start, parts[-1].stop)


def _copy(lay: Layout, read: str, write: str) -> _Head:
    """``W_V = Pi_read`` [d, w] and ``W_O = iota_write`` [w, d] for two blocks of equal width."""
    src, dst = _span(lay, read), _span(lay, write)
    width = src.stop - src.start
    assert dst.stop - dst.start == width, (read, write)
    w_v = np.zeros((lay.size, width))
    w_v[src] = np.eye(width)
    w_o = np.zeros((width, lay.size))
    w_o[:, dst] = np.eye(width)
    return {"W_V": w_v, "W_O": w_o}


def _selector_mlp(lay: Layout, n_relations: int, m: int, *, read_bits: str, read_rel: str
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """§2.2 selector: unit ``(r, i)`` = ``ReLU(bit_{r,i} + z_r - 1)`` (G1), output ``A = 2 sum - 1``.

    Returns ``W_in`` [d, Km], ``b_in`` [Km], ``W_out`` [Km, d], ``b_out`` [d].
    """
    d, w = lay.size, n_relations * m
    w_in, b_in = np.zeros((d, w)), -np.ones(w)
    w_out, b_out = np.zeros((w, d)), np.zeros(d)
    for r in range(n_relations):
        for i in range(m):
            u = r * m + i
            w_in[lay.index(f"{read_bits}_{r}", i), u] = 1.0
            w_in[lay.index(read_rel, r), u] = 1.0
            w_out[u, lay.index("A", i)] = 2.0
    b_out[lay["A"]] = -1.0
    return w_in, b_in, w_out, b_out


@torch.no_grad()
def _load(model: Transformer, *, w_e: np.ndarray, w_pos: np.ndarray, heads: list[_Head],
          mlp: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray], w_u: np.ndarray) -> None:
    """Copy the unpadded weights into member 0 of ``model``, padding every head to the common d_head."""
    def put(p: torch.Tensor, value: np.ndarray) -> None:
        if tuple(p.shape) != value.shape:
            raise AssertionError(f"shape mismatch: parameter {tuple(p.shape)}, weights {value.shape}")
        p.copy_(torch.from_numpy(value).to(p.dtype))

    attn = model.blocks[0].attn
    put(model.embed.W_E[0], w_e)
    put(model.pos_embed.W_pos[0], w_pos)
    for h, head in enumerate(heads):
        d_k, d_v = head["W_Q"].shape[1], head["W_V"].shape[1]
        put(attn.W_Q[0, h, :, :d_k], head["W_Q"])
        put(attn.W_K[0, h, :, :d_k], head["W_K"])
        put(attn.W_V[0, h, :, :d_v], head["W_V"])
        put(attn.W_O[0, h, :d_v, :], head["W_O"])
    w_in, b_in, w_out, b_out = mlp
    put(model.blocks[0].mlp.W_in[0], w_in)
    put(model.blocks[0].mlp.b_in[0], b_in)
    put(model.blocks[0].mlp.W_out[0], w_out)
    put(model.blocks[0].mlp.b_out[0], b_out)
    put(model.unembed.W_U[0], w_u)
