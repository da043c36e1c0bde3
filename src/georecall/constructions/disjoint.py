"""Disjoint attributes (docs/theory.md §3, the Appendix F setting): each relation owns its attribute tokens.

Relation r's attribute j is token ``N + K + r n_A + j``; ``f_r: [N] -> [n_A]`` need not be a bijection.

* F0 (:func:`build_disjoint`): no MLP. The relation term of the readout does the selecting, which is
  impossible with shared attributes (docs/theory.md §2.3).
* F1 (:func:`build_disjoint_mlp`): the selector of §2.2 run verbatim on global attribute indices
  ``g = r n_A + j``, with a relation-agnostic readout.

Both keep the facts in the subject embeddings only (blocks ``S_r``, recorded in ``c.anatomy.layout``;
``content_bits = {"P": 0, "B_e": K m'}`` with ``m' = m_A`` for F0 and ``ceil(log2(K n_A))`` for F1), so
:func:`georecall.constructions.single_hop.edit_fact` edits them too.
"""

from __future__ import annotations

import numpy as np
import torch

from georecall.config import TaskConfig
from georecall.constructions.base import Construction, make_counts, n_bits, signs, subject_anatomy
from georecall.constructions.gadgets import assemble, coords, selector_gate_units, subject_tree, uniform_head
from georecall.constructions.single_hop import N_CTX, selector_layout, selector_model
from georecall.tasks import World


def _require_disjoint(world: World) -> None:
    if world.attributes != "disjoint":
        raise ValueError(f"the disjoint constructions need disjoint attributes, got {world.attributes!r} "
                         "(use constructions.single_hop)")


def _disjoint_task(world: World) -> TaskConfig:
    return TaskConfig(n_subjects=world.n_subjects, n_relations=world.n_relations, attributes="disjoint",
                      n_attributes=world.vocab.attributes_per_relation, bijective=world.is_bijective())


def build_disjoint(world: World, *, dtype: torch.dtype = torch.float32) -> Construction:
    """F0 of docs/theory.md §3: one uniform copy head and no MLP; the readout's relation term selects the relation.

    Guarantee: for every map ``f_r: [N] -> [n_A]`` all N·K queries are right, exactly in any float
    format, with margin 2: ``logit(r, j) = <c(j), c(f_r(s))> + 2 [r = r*]`` scores ``m_A + 2`` for the
    answer and at most ``m_A`` for any other attribute; subject and relation logits are 0.
    Dimensions: ``m_A = ceil(log2 n_A)``, ``d = K m_A + K``, one head with ``d_k = 1``, ``d_v = K m_A``.
    """
    _require_disjoint(world)
    n, k_rel, n_attr = world.n_subjects, world.n_relations, world.vocab.attributes_per_relation
    v = world.vocab.d_vocab
    m_a = n_bits(n_attr)
    lay = selector_layout(k_rel, m_a, answer_block=False)  # S_0..S_{K-1} (m_A each), Z (K)
    d = lay.size

    w_e = subject_tree(lay, world.maps, m_a, v, encode=signs)  # [V, d]
    w_e[n + np.arange(k_rel), coords(lay, "Z")] = 1.0
    head = uniform_head(lay, ["S"], ["S"], gain=2.0)  # alpha = (1/2, 1/2): position 1 gets the subject's codes back
    w_u = np.zeros((d, v))  # [d, V]; subject and relation columns stay 0
    codes = signs(np.arange(n_attr), m_a).T  # [m_A, n_A]
    for r in range(k_rel):
        cols = slice(world.vocab.attribute(r, 0), world.vocab.attribute(r, n_attr - 1) + 1)
        w_u[lay[f"S_{r}"], cols] = codes
        w_u[lay.index("Z", r), cols] = 2.0  # tau = 2
    model, params, dims = assemble(w_e=w_e, w_pos=None, heads=[[head]], mlps=None, w_u=w_u, n_ctx=N_CTX,
                                   dtype=dtype)
    return Construction(
        name="disjoint", model=model, world=world, task=_disjoint_task(world),
        theorem="Appendix F setting, F0 (docs/theory.md §3)",
        dims={**dims, "m": m_a}, params=params, formula=_disjoint_formula(n, k_rel, n_attr),
        anatomy=subject_anatomy(lay, "signs", k_rel * m_a))


def _disjoint_formula(n: int, k_rel: int, n_attr: int) -> dict[str, int]:
    """docs/theory.md §3 F0: ``d = K m_A + K``, attention ``2d + 2 K m_A d``, MLP 0, ``V = N + K + K n_A``."""
    m_a = n_bits(n_attr)
    d = k_rel * m_a + k_rel
    v = n + k_rel + k_rel * n_attr
    return make_counts(embedding=d * v, attention=2 * d + 2 * k_rel * m_a * d, unembedding=v * d)


def build_disjoint_mlp(world: World, *, dtype: torch.dtype = torch.float32) -> Construction:
    """F1 of docs/theory.md §3: the §2.2 selector on global attribute indices ``g = r n_A + j``.

    Guarantee: for every map ``f_r: [N] -> [n_A]`` all N·K queries are right, exactly in any float
    format; the answer scores ``m'`` and every other attribute at most ``m' - 2`` (subjects and
    relations 0), so the margin is 2 when ``m' >= 2``.
    Dimensions: ``m' = ceil(log2(K n_A))``, ``d = (K+1)m' + K``, one head ``d_k = 1``, ``d_v = K m'``,
    MLP width ``K m'``; ``U[(r, j), A] = c(g)``.
    """
    _require_disjoint(world)
    n, k_rel, n_attr = world.n_subjects, world.n_relations, world.vocab.attributes_per_relation
    v = world.vocab.d_vocab
    m = n_bits(k_rel * n_attr)
    codes = np.arange(k_rel)[:, None] * n_attr + world.maps  # [K, N] global index of f_r(s)
    readout = np.zeros((v, m))  # [V, m]
    readout[world.vocab.attribute_offset:] = signs(np.arange(k_rel * n_attr), m)
    model, lay, params, dims = selector_model(codes, m, readout, dtype=dtype)
    return Construction(
        name="disjoint-mlp", model=model, world=world, task=_disjoint_task(world),
        theorem="Appendix F setting, F1 (docs/theory.md §3)",
        dims={**dims, "m": m}, params=params, formula=_disjoint_mlp_formula(n, k_rel, n_attr),
        anatomy=subject_anatomy(lay, "bits", k_rel * m, code_offset=n_attr, gate_hook="blocks.0.mlp.hook_post",
                                gate_units=selector_gate_units(k_rel, m)))


def _disjoint_mlp_formula(n: int, k_rel: int, n_attr: int) -> dict[str, int]:
    """docs/theory.md §3 F1: §2.1's counts with ``m' = ceil(log2(K n_A))`` and ``V = N + K + K n_A``."""
    m = n_bits(k_rel * n_attr)
    d = (k_rel + 1) * m + k_rel
    v = n + k_rel + k_rel * n_attr
    return make_counts(embedding=d * v, attention=2 * d + 2 * k_rel * m * d,
                       mlp=2 * k_rel * m * d + k_rel * m + d, unembedding=v * d)
