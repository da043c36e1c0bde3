"""docs/theory.md §6.5: models whose readout holds facts, outside the lower bound's fixed-readout class.

* **readout-only** (k = 1): fact-free embeddings, attention and MLP; every fact sits in an untied
  readout ``u_a = [c(f_1^{-1}(a)); ...; c(f_K^{-1}(a))]``. The MLP only routes ``c(s)`` into the block
  ``O_r`` of the queried relation.
* **meet in the middle** (k = 2): subject embeddings carry the forward codes ``b(f_r(s))`` (one hop),
  the readout the backward codes ``c(f_r^{-1}(a))`` (the other hop); the MLP places ``c(f_{r_1}(s))`` in
  block ``O_{r_2}``, and ``<c(f_{r_2}^{-1}(a)), c(f_{r_1}(s))>`` is maximal iff ``a = f_{r_2}(f_{r_1}(s))``.
  The tied variant (``U = E^T``) keeps the backward codes in the embeddings too.

Attention and MLP are fact-free in all three. Content bits (docs/theory.md §6.6, readout counted):
readout-only ``P = NKm, B_e = 0``; meet in the middle ``P = NKm, B_e = Km``; tied ``P = 0, B_e = 2Km``.
"""

from __future__ import annotations

import numpy as np
import torch

from georecall.config import TaskConfig
from georecall.constructions.base import Anatomy, Construction, Layout, bits, make_counts, n_bits, signs
from georecall.constructions.gadgets import (
    Mlp,
    assemble,
    check_chain_args,
    concat_units,
    coords,
    gate_units,
    pointer_head,
    positional_table,
    uniform_head,
)
from georecall.tasks import World


def build_readout_only(world: World, *, dtype: torch.dtype = torch.float32) -> Construction:
    """Build docs/theory.md §6.5's readout-only model: one hop answered by facts held only in an untied readout.

    Guarantee: argmax ``= f_r(s)`` on all ``N K`` queries, logit margin exactly 2 (for ``m >= 2``), in any
    float format (uniform attention over two positions is exactly 1/2; all weights are small integers).
    Dimensions: 1 layer, one uniform head ``(d_k, d_v) = (1, m)``, ``d = m + K + Km``, MLP width
    ``Km + K``, no positional embedding, no softmax scale. Embeddings, attention and MLP are fact-free;
    the readout holds ``N K m`` bits. Needs bijections (the readout stores ``f_r^{-1}``).
    """
    check_chain_args(world, 1, None)
    _check_bijective(world)
    n, k_rel = world.n_subjects, world.n_relations
    m = n_bits(n)
    lay = Layout()
    lay.add("S", m)  # the subject's own bits b(s)
    lay.add("Z", k_rel)  # relation one-hot
    lay.add("O", k_rel * m)  # output: block O_r = c(s) for the queried r, 0 elsewhere
    d, v = lay.size, n + k_rel

    w_e = np.zeros((v, d))  # [V, d]
    w_e[:n, lay["S"]] = bits(np.arange(n), m)  # fact-free
    w_e[n:, lay["Z"]] = np.eye(k_rel)
    head = uniform_head(lay, ["S"], ["S"], gain=2.0)  # at position 1: S = b(s) exactly
    # G1 gates ReLU(S_i + Z_r - 1) = b_i(s) [r = r*], output 2 on O_{r,i}; K units ReLU(Z_r) put -1 on O_r.
    gates = gate_units(d, d, np.tile(coords(lay, "S"), (k_rel, 1)), coords(lay, "Z"),
                       coords(lay, "O").reshape(k_rel, m))
    mlp = concat_units(gates, _block_bias_units(lay, k_rel, m))
    w_u = np.zeros((d, v))  # [d, V]; relation columns 0
    w_u[lay["O"], :n] = _backward_codes(world, m).T

    model, params, dims = assemble(w_e=w_e, w_pos=None, heads=[[head]], mlps=[mlp], w_u=w_u, n_ctx=2, dtype=dtype)
    return Construction(
        name="readout-only", model=model, world=world,
        task=TaskConfig(n_subjects=n, n_relations=k_rel, n_hops=1),
        theorem="readout-only model, learned readout (docs/theory.md §6.5 (a))",
        dims={**dims, "beta": None, "m": m}, params=params, formula=readout_only_formula(n, k_rel),
        anatomy=Anatomy(readout="learned", content_bits={"P": n * k_rel * m, "B_e": 0},
                        fact_dependent=("unembed.W_U",), layout=lay),
    )


def build_meet_in_middle(world: World, *, tied: bool = False, beta: float = 20.0,
                         dtype: torch.dtype = torch.float32) -> Construction:
    """Build docs/theory.md §6.5's meet-in-the-middle model: two hops, forward codes in ``e_s``, backward in ``u_a``.

    Guarantee: argmax ``= f_{r_2}(f_{r_1}(s))`` on all ``N K^2`` chains, logit margin 2 (tied: for
    ``m >= 3``; relation logits are at most 1, so tied needs ``N >= 3``). Dimensions: 1 layer, one G4
    head ``(d_k, d_v) = (3, Km + K)`` (center 1/2, doubled), MLP width ``2K^2 m + K`` of three-input G2
    ANDs, ``d = 2Km + 2K + 3`` untied or ``3Km + 2K + 3`` tied, positions ``T = 3``. Attention and MLP
    are fact-free. Untied: the readout holds ``N K m`` bits and ``B_e = Km``; tied (``U = E^T``, built
    with ``tie_unembed=True``): ``B_e = 2Km``, the subject embedding also carries ``c(f_r^{-1}(s))`` in O
    and the head writes into a separate register S' so that S is empty at the answer. Scale
    ``beta >= 4`` is comfortable; needs bijections.
    """
    check_chain_args(world, 2, beta)
    _check_bijective(world)
    n, k_rel = world.n_subjects, world.n_relations
    m = n_bits(n)
    if tied and m < 2:
        raise ValueError(f"the tied meet-in-the-middle model needs N >= 3 (answer logit m = {m} must beat "
                         f"the relation logit 1), got N = {n}")
    lay = Layout()
    lay.add("S", k_rel * m)  # forward tree: block S_r = b(f_r(s))
    if tied:
        lay.add("S'", k_rel * m)  # copied tree, read by the MLP; keeps S empty at the answer
    lay.add("O", k_rel * m)  # output: block O_{r2} = c(f_{r1}(s)); tied: also the backward codes of e_a
    lay.add("Z", k_rel)
    lay.add("R", k_rel)
    lay.add("Pi", 3)
    d, v = lay.size, n + k_rel
    tree = "S'" if tied else "S"

    w_e = np.zeros((v, d))  # [V, d]
    w_e[:n, lay["S"]] = bits(world.maps.T, m).reshape(n, k_rel * m)  # maps [K, N] -> [N, K, m] -> [N, Km]
    w_e[n:, lay["Z"]] = np.eye(k_rel)
    if tied:
        w_e[:n, lay["O"]] = _backward_codes(world, m)
    head = pointer_head(lay, beta, center=0.5, reads=["S", "Z"], writes=[tree, "R"], gain=2.0)
    # G2 AND of S_{r1,i}, R_{r1}, Z_{r2}, output ±2 on O_{r2,i}; K units ReLU(Z_{r2}) put -1 on O_{r2}.
    mlp = concat_units(_three_way_ands(lay, k_rel, m, read=tree), _block_bias_units(lay, k_rel, m))
    w_u = None
    if not tied:
        w_u = np.zeros((d, v))  # [d, V]
        w_u[lay["O"], :n] = _backward_codes(world, m).T

    model, params, dims = assemble(w_e=w_e, w_pos=positional_table(lay, 3), heads=[[head]], mlps=[mlp], w_u=w_u,
                                   n_ctx=3, dtype=dtype)
    content = {"P": 0, "B_e": 2 * k_rel * m} if tied else {"P": n * k_rel * m, "B_e": k_rel * m}
    note = ("unembedding 0: the readout is W_E^T (tie_unembed=True), already counted in the embedding; "
            "the total is attention + MLP + dV + dT, not docs/theory.md §8's 2dV") if tied else ""
    anatomy = Anatomy(readout="tied" if tied else "learned", content_bits=content, layout=lay, note=note,
                      fact_dependent=("embed.W_E[:N]",) if tied else ("embed.W_E[:N]", "unembed.W_U"))
    return Construction(
        name="meet-in-middle", model=model, world=world,
        task=TaskConfig(n_subjects=n, n_relations=k_rel, n_hops=2),
        theorem="meet-in-the-middle model, " + ("tied readout U = E^T" if tied else "learned readout")
                + " (docs/theory.md §6.5 (b))",
        dims={**dims, "beta": beta, "m": m}, params=params,
        formula=meet_in_middle_formula(n, k_rel, tied=tied),
        anatomy=anatomy,
    )


def readout_only_formula(n_subjects: int, n_relations: int) -> dict[str, int]:
    """docs/theory.md §6.5 readout-only counts: attention ``2d + 2md``, MLP ``2wd + w + d``, no positions."""
    k, m = n_relations, n_bits(n_subjects)
    v = n_subjects + n_relations
    d, w = m + k + k * m, k * m + k
    return make_counts(embedding=d * v, positional=0, attention=2 * d + 2 * m * d, mlp=2 * w * d + w + d,
                       unembedding=v * d)


def meet_in_middle_formula(n_subjects: int, n_relations: int, *, tied: bool = False) -> dict[str, int]:
    """docs/theory.md §6.5 meet-in-the-middle counts: attention ``6d + 2(Km + K)d``, MLP ``2wd + w + d``, ``T = 3``.

    Tied: no unembedding parameters (the readout is ``W_E^T``).
    """
    k, m = n_relations, n_bits(n_subjects)
    v = n_subjects + n_relations
    d = (3 if tied else 2) * k * m + 2 * k + 3
    w = 2 * k * k * m + k
    return make_counts(embedding=d * v, positional=3 * d, attention=6 * d + 2 * (k * m + k) * d,
                       mlp=2 * w * d + w + d, unembedding=0 if tied else v * d)


# ---------------------------------------------------------------------------------------------------
# Pieces


def _check_bijective(world: World) -> None:
    if not world.is_bijective():
        raise ValueError("learned-readout models store f_r^{-1} in the readout: "
                         "every relation must be a bijection")


def _backward_codes(world: World, m: int) -> np.ndarray:
    """``[c(f_1^{-1}(a)); ...; c(f_K^{-1}(a))]`` per subject a: [N, K m]."""
    k_rel, n = world.maps.shape
    inverse = np.empty_like(world.maps)  # [K, N]: inverse[r, f_r(s)] = s
    inverse[np.arange(k_rel)[:, None], world.maps] = np.arange(n)[None, :]
    return signs(inverse.T, m).reshape(n, k_rel * m)


def _three_way_ands(lay: Layout, k_rel: int, m: int, *, read: str) -> Mlp:
    """G2 ANDs of ``x = read_{r1,i}``, ``R_{r1}``, ``Z_{r2}``: ``ReLU(2p' - 9/2) - ReLU(2p' - 11/2)``.

    Here ``p' = x + R + Z``; the AND is 1 when all three are 1 and 0 when any is 0 (tolerance 1/4).
    Output ``±2`` on ``O_{r2,i}`` for every ``(r1, r2, i)``: ``2 K^2 m`` units.
    """
    d, n_and = lay.size, k_rel * k_rel * m
    j = np.arange(n_and)  # AND (r1, r2, i) = (r1 K + r2) m + i
    r1, r2, i = j // (k_rel * m), (j // m) % k_rel, j % m
    w_in, w_out = np.zeros((d, 2 * n_and)), np.zeros((2 * n_and, d))
    b_in = np.concatenate([np.full(n_and, -4.5), np.full(n_and, -5.5)])
    for half, sign in ((0, 1.0), (n_and, -1.0)):
        w_in[lay[read].start + r1 * m + i, half + j] = 2.0
        w_in[lay["R"].start + r1, half + j] = 2.0
        w_in[lay["Z"].start + r2, half + j] = 2.0
        w_out[half + j, lay["O"].start + r2 * m + i] = 2.0 * sign
    return Mlp(w_in, b_in, w_out, np.zeros(d))


def _block_bias_units(lay: Layout, k_rel: int, m: int) -> Mlp:
    """K units ``ReLU(Z_r)`` writing ``-1`` on all of ``O_r``: the ``-1`` of ``c = 2b - 1``; queried r."""
    d = lay.size
    w_in, w_out = np.zeros((d, k_rel)), np.zeros((k_rel, d))
    w_in[lay["Z"], :] = np.eye(k_rel)
    for r in range(k_rel):
        w_out[r, lay["O"].start + r * m:lay["O"].start + (r + 1) * m] = -1.0
    return Mlp(w_in, np.zeros(k_rel), w_out, np.zeros(d))

