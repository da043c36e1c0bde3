"""Single hop, shared attributes (Theorem 4.1, docs/theory.md §2): the selector, its 3-layer-MLP variant and the
attention-only model.

All three store the facts only in the subject embeddings, as a *superposition* of per-relation codes:
subject s holds the code of ``f_r(s)`` in its own block ``S_r`` for every relation r. Attention (and the
MLP) are fact-free; the unembedding reads the ±1 code ``c(a)`` of the answer from block ``A``.

Layouts (column convention of docs/theory.md; our weights are the TransformerLens transposes):

* selector:        ``S_0 .. S_{K-1}`` (m each, 0/1 bits), ``Z`` (K, relation one-hot), ``A`` (m)
* selector-mlp3:   ``S_0 .. S_{K-1}`` (m each), ``Z`` (l, ±1 relation code), ``A`` (m)
* attention-only:  ``S_0 .. S_{K-1}`` (m each, ±1 codes), ``Z`` (K), ``sigma`` (1), ``A`` (m)

``c.anatomy`` (:class:`~georecall.constructions.base.Anatomy`) of every construction here (and of
:mod:`georecall.constructions.disjoint`) holds the ``layout``, how block ``S_r`` encodes an attribute
(``subject_code``: ``"bits"`` or ``"signs"``, plus ``code_offset`` per relation), and, where there is an
MLP, the hook site and hidden units of the per-relation gates (``gate_hook``, ``gate_units[r]``), so
probing, ablation and :func:`edit_fact` need no knowledge of the weights. The facts sit only in the
subject rows of ``W_E``: ``content_bits = {"P": 0, "B_e": K m}`` (docs/theory.md §6.6), readout fixed.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from typing import Any

import numpy as np
import torch

from georecall.config import TaskConfig
from georecall.constructions.base import Construction, Layout, bits, make_counts, n_bits, signs, subject_anatomy
from georecall.constructions.gadgets import (
    Mlp,
    add_blocks,
    assemble,
    coords,
    copy_blocks,
    gate_units,
    selector_gate_units,
    selector_units,
    span,
    subject_tree,
    uniform_head,
)
from georecall.model import Transformer
from georecall.tasks import World

N_CTX = 2  # a single-hop query is (s, r); the answer is read at position 1


# ---------------------------------------------------------------------------------------------------
# The §2.2 selector (also used by constructions.disjoint)


def selector_layout(n_relations: int, m: int, *, z_width: int | None = None, sigma: bool = False,
                    answer_block: bool = True) -> Layout:
    """Blocks ``S_0..S_{K-1}`` (m each), ``Z`` (``z_width``, default K), optional ``sigma`` (1), ``A`` (m)."""
    lay = Layout()
    add_blocks(lay, "S", n_relations, m)
    lay.add("Z", n_relations if z_width is None else z_width)
    if sigma:
        lay.add("sigma", 1)
    if answer_block:
        lay.add("A", m)
    return lay


def selector_blocks(n_subjects: int, n_relations: int) -> Layout:
    """The residual layout of the selector (docs/theory.md §2.2): ``S_r`` blocks of m, ``Z`` (K), ``A`` (m).

    ``lay[f"S_{r}"]`` is the block where a subject embedding holds ``b(f_r(s))``: the linear probe
    ``b(f_r(s)) = Pi_{S_r} E[:, s]``. Its MLP unit ``(r, i)`` is hidden unit ``r*m + i``.
    """
    if n_subjects < 2 or n_relations < 1:
        raise ValueError(f"need n_subjects >= 2 and n_relations >= 1, got {n_subjects}, {n_relations}")
    return selector_layout(n_relations, n_bits(n_subjects))


def selector_model(codes: np.ndarray, m: int, readout: np.ndarray, *, dtype: torch.dtype
                   ) -> tuple[Transformer, Layout, dict[str, int], dict[str, Any]]:
    """The selector of docs/theory.md §2.2 for subject codes ``codes[r, s]`` (< 2^m) and readout rows ``readout``.

    ``codes`` [K, N] ints; ``readout`` [V, m] (row v is what token v reads from block A: ``c(a)`` for an
    answer token, 0 otherwise). Relation r is token ``N + r``. Returns model, layout, counts and dims.
    """
    k_rel, n = codes.shape
    lay = selector_layout(k_rel, m)
    w_e = subject_tree(lay, codes, m, readout.shape[0])  # the superposition sum_r iota_{S_r} b(f_r(s))
    w_e[n + np.arange(k_rel), coords(lay, "Z")] = 1.0
    # Uniform head (W_Q = W_K = 0): v = Pi_S h, W_O = 2 iota_S; at position 1 alpha = (1/2, 1/2) exactly.
    head = uniform_head(lay, ["S"], ["S"], gain=2.0)
    # Gate (r, i) = ReLU(S_{r,i} + Z_r - 1) = b_i(f_r(s)) [r = r*]   (G1), written as 2 b_i - 1 into A_i.
    mlp = selector_units(lay, k_rel, m)
    w_u = np.zeros((lay.size, readout.shape[0]))  # [d, V]
    w_u[lay["A"], :] = readout.T
    model, params, dims = assemble(w_e=w_e, w_pos=None, heads=[[head]], mlps=[mlp], w_u=w_u, n_ctx=N_CTX,
                                   dtype=dtype)
    return model, lay, params, dims


def _require_shared(world: World) -> None:
    if world.attributes != "shared":
        raise ValueError(f"the single-hop constructions need shared attributes, got {world.attributes!r} "
                         "(use constructions.disjoint)")


def _shared_task(world: World) -> TaskConfig:
    return TaskConfig(n_subjects=world.n_subjects, n_relations=world.n_relations)


def _subject_readout(n_subjects: int, n_relations: int, m: int) -> np.ndarray:
    """``U[a, A] = c(a)`` for subjects, relation rows 0: ``[N + K, m]``."""
    return np.concatenate([signs(np.arange(n_subjects), m), np.zeros((n_relations, m))])


# ---------------------------------------------------------------------------------------------------
# Theorem 4.1


def build_selector(world: World, *, dtype: torch.dtype = torch.float32) -> Construction:
    """The selector of Theorem 4.1 (docs/theory.md §2.2): one layer, one uniform head, a one-hidden-layer ReLU MLP.

    Guarantee: for every N >= 2, K >= 1 and every choice of maps (bijections or not), the argmax over the
    whole vocabulary is ``f_r(s)`` on all N·K queries ``(s, r)``, exactly in any float format. The
    answer's logit is m and every other subject's at most m - 2, so the margin is 2 for N >= 3; relation
    logits are 0, so at N = 2 (m = 1) the margin is 1.
    Dimensions: ``m = ceil(log2 N)``, ``d = (K+1)m + K``, one head with ``d_k = 1``, ``d_v = Km``, MLP
    width ``Km``, no positional embedding, no softmax scale. Only the subject embeddings depend on the facts.
    """
    _require_shared(world)
    n, k_rel = world.n_subjects, world.n_relations
    m = n_bits(n)
    model, lay, params, dims = selector_model(world.maps, m, _subject_readout(n, k_rel, m), dtype=dtype)
    return Construction(
        name="selector", model=model, world=world, task=_shared_task(world),
        theorem="Theorem 4.1 (docs/theory.md §2.2)",
        dims={**dims, "m": m}, params=params, formula=_selector_formula(n, k_rel),
        anatomy=subject_anatomy(lay, "bits", k_rel * m, gate_hook="blocks.0.mlp.hook_post",
                                gate_units=selector_gate_units(k_rel, m)))


def _selector_formula(n: int, k_rel: int) -> dict[str, int]:
    """docs/theory.md §2.1: attention ``2d + 2Kmd``, MLP ``2Kmd + Km + d``, embedding and unembedding ``d(N+K)``."""
    m = n_bits(n)
    d = (k_rel + 1) * m + k_rel
    v = n + k_rel
    return make_counts(embedding=d * v, attention=2 * d + 2 * k_rel * m * d,
                       mlp=2 * k_rel * m * d + k_rel * m + d, unembedding=v * d)


def build_selector_mlp3(world: World, *, dtype: torch.dtype = torch.float32) -> Construction:
    """The selector of Theorem 4.1 with a two-hidden-layer ("3-layer") MLP, docs/theory.md §2.2 (the paper's wording).

    Guarantee: as :func:`build_selector` (all N·K queries right, exactly, margin 2 for N >= 3, 1 at N = 2).
    Dimensions: relation r carries the ±1 code ``c(r)`` of length ``l = max(1, ceil(log2 K))`` in Z, so
    ``d = Km + l + m``; hidden widths ``Km + K`` (pass-through ``ReLU(S_j)`` and relation indicators
    ``ReLU(<c(r), z> - l + 1) = [r = r*]``) and ``Km`` (gates ``ReLU(x_{r,i} + ind_r - 1)``).
    """
    _require_shared(world)
    n, k_rel = world.n_subjects, world.n_relations
    m, l_z = n_bits(n), n_bits(k_rel)
    km, w1 = k_rel * m, k_rel * m + k_rel
    lay = selector_layout(k_rel, m, z_width=l_z)
    d, s_all, z_blk = lay.size, span(lay, "S"), lay["Z"]

    w_e = subject_tree(lay, world.maps, m, n + k_rel)  # [V, d]
    w_e[n:, z_blk] = signs(np.arange(k_rel), l_z)
    head = uniform_head(lay, ["S"], ["S"], gain=2.0)
    w_in = np.zeros((d, w1))  # [d, Km + K]: units 0..Km-1 pass S through, Km + r is relation r's indicator
    w_in[s_all, :km] = np.eye(km)
    w_in[z_blk, km:] = signs(np.arange(k_rel), l_z).T
    b_in = np.zeros(w1)
    b_in[km:] = 1 - l_z  # <c(r), c(r*)> = l if r = r*, else <= l - 2
    # Hidden layer 2: G1 gates of the passed-through bit (r, i) and indicator r, written as 2 b_i - 1 into A_i.
    gates = gate_units(w1, d, np.arange(km).reshape(k_rel, m), km + np.arange(k_rel),
                       np.tile(coords(lay, "A"), (k_rel, 1)))
    b_out = np.zeros(d)
    b_out[lay["A"]] = -1.0
    mlp = Mlp(w_in, b_in, gates.w_out, b_out, w_hidden=gates.w_in, b_hidden=gates.b_in)
    w_u = np.zeros((d, n + k_rel))  # [d, V]
    w_u[lay["A"], :] = _subject_readout(n, k_rel, m).T
    model, params, dims = assemble(w_e=w_e, w_pos=None, heads=[[head]], mlps=[mlp], w_u=w_u, n_ctx=N_CTX,
                                   dtype=dtype)
    return Construction(
        name="selector-mlp3", model=model, world=world, task=_shared_task(world),
        theorem="Theorem 4.1, 3-layer MLP variant (docs/theory.md §2.2)",
        dims={**dims, "m": m, "l": l_z}, params=params, formula=_selector_mlp3_formula(n, k_rel),
        anatomy=subject_anatomy(lay, "bits", k_rel * m, gate_hook="blocks.0.mlp.hook_post2",
                                gate_units=selector_gate_units(k_rel, m)))


def _selector_mlp3_formula(n: int, k_rel: int) -> dict[str, int]:
    """docs/theory.md §2.2: attention ``2d + 2Kmd``; MLP ``w1 d + w1 + Km w1 + Km + d Km + d``, ``w1 = Km + K``."""
    m, l_z = n_bits(n), n_bits(k_rel)
    km = k_rel * m
    d = km + l_z + m
    w1 = km + k_rel
    v = n + k_rel
    return make_counts(embedding=d * v, attention=2 * d + 2 * km * d,
                       mlp=w1 * d + w1 + km * w1 + km + d * km + d, unembedding=v * d)


def build_attention_only(world: World, *, beta: float | None = None,
                         dtype: torch.dtype = torch.float32) -> Construction:
    """The attention-only variant of Theorem 4.1 (docs/theory.md §2.3): K heads, one per relation, no MLP.

    Head r scores the subject ``+beta`` when the query's relation is r and ``-beta`` otherwise, and copies
    ``c(f_r(s))`` into A; the softmax is the nonlinearity that selects. Guarantee: every query is right
    when ``e^beta > K - 1`` (any ``beta > 0`` for K <= 2), with margin at least
    ``2 (lam(beta) - (K-1) lam(-beta))``, ``lam(x) = 1/(1 + e^{-x})``. Default ``beta = ln K + 3``.
    Dimensions: ``d = (K+1)m + K + 1``, K heads with ``d_k = 1``, ``d_v = m``, positions unused.
    """
    _require_shared(world)
    n, k_rel = world.n_subjects, world.n_relations
    beta = math.log(k_rel) + 3 if beta is None else float(beta)
    if not (math.isfinite(beta) and beta > 0):
        raise ValueError(f"beta must be a finite number > 0, got {beta}")
    m = n_bits(n)
    lay = selector_layout(k_rel, m, sigma=True)
    d = lay.size

    w_e = subject_tree(lay, world.maps, m, n + k_rel, encode=signs)  # [V, d]
    w_e[n + np.arange(k_rel), coords(lay, "Z")] = 1.0
    w_e[:n, lay.index("sigma")] = 1.0
    heads = []
    for r in range(k_rel):
        w_q = np.zeros((d, 1))  # beta (2 e_{Z_r} - sum_r' e_{Z_r'})
        w_q[lay["Z"], 0] = -beta
        w_q[lay.index("Z", r), 0] = beta
        w_k = np.zeros((d, 1))
        w_k[lay.index("sigma"), 0] = 1.0
        heads.append({"W_Q": w_q, "W_K": w_k, **copy_blocks(lay, [f"S_{r}"], ["A"])})
    w_u = np.zeros((d, n + k_rel))  # [d, V]
    w_u[lay["A"], :] = _subject_readout(n, k_rel, m).T
    model, params, dims = assemble(w_e=w_e, w_pos=None, heads=[heads], mlps=None, w_u=w_u, n_ctx=N_CTX,
                                   dtype=dtype)
    return Construction(
        name="attention-only", model=model, world=world, task=_shared_task(world),
        theorem="Theorem 4.1, attention-only variant (docs/theory.md §2.3)",
        dims={**dims, "m": m, "beta": beta}, params=params, formula=_attention_only_formula(n, k_rel),
        anatomy=subject_anatomy(lay, "signs", k_rel * m))


def _attention_only_formula(n: int, k_rel: int) -> dict[str, int]:
    """docs/theory.md §2.3: ``d = (K+1)m + K + 1``, attention ``K (2d + 2md)``, no MLP."""
    m = n_bits(n)
    d = (k_rel + 1) * m + k_rel + 1
    v = n + k_rel
    return make_counts(embedding=d * v, attention=k_rel * (2 * d + 2 * m * d), unembedding=v * d)


# ---------------------------------------------------------------------------------------------------
# Editing one fact (docs/theory.md §7, last bullet)


def edit_fact(c: Construction, subject: int, relation: int, new_attribute: int) -> Construction:
    """A new construction in which ``f_relation(subject) = new_attribute``: one block of one embedding edited.

    The edit is ``Pi_{S_r} E[:, s] := code(new_attribute)`` (``b(a')`` for the selectors, ``c(a')`` for the
    ±1-coded builds); attention, MLP and readout are untouched, so exactly that fact changes. The returned
    world has the edited map (relation r is then no longer a bijection in general); ``c`` is not modified.
    Works for every construction whose ``anatomy`` records a ``subject_code`` (this module,
    :mod:`georecall.constructions.disjoint` and the CoT models); the edit is appended to ``anatomy.edits``.
    """
    anatomy = c.anatomy
    if anatomy.subject_code is None or anatomy.layout is None:
        raise ValueError(f"construction {c.name!r} does not record a per-relation subject code; cannot edit")
    world = c.world
    n, k_rel, n_attr = world.n_subjects, world.n_relations, world.vocab.attributes_per_relation
    if not 0 <= subject < n:
        raise ValueError(f"subject {subject} out of range [0, {n})")
    if not 0 <= relation < k_rel:
        raise ValueError(f"relation {relation} out of range [0, {k_rel})")
    if not 0 <= new_attribute < n_attr:
        raise ValueError(f"new_attribute {new_attribute} out of range [0, {n_attr})")
    block = anatomy.layout[f"S_{relation}"]
    width = block.stop - block.start
    code = relation * anatomy.code_offset + new_attribute
    encode = bits if anatomy.subject_code == "bits" else signs
    model = copy.deepcopy(c.model)
    with torch.no_grad():
        w_e = model.embed.W_E  # [E, V, d]
        w_e[0, subject, block] = torch.as_tensor(encode(code, width), dtype=w_e.dtype)
    maps = world.maps.copy()  # [K, N]
    maps[relation, subject] = new_attribute
    new_world = World(maps, attributes=world.attributes, n_attributes=world.n_attributes)
    task = c.task
    if world.attributes == "disjoint":
        task = TaskConfig(**{**c.task.__dict__, "bijective": new_world.is_bijective()})
    edited = dataclasses.replace(anatomy, edits=(*anatomy.edits, (subject, relation, new_attribute)))
    return dataclasses.replace(c, model=model, world=new_world, task=task, anatomy=edited)
