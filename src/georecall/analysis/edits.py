"""Fact edits in embedding space: move one subject's embedding along one relation's map and read the answers.

If the subject embeddings are additive, ``e_s ≈ b + Σ_r M_r a_r(f_r(s))`` (``M_r`` [d, d_a], ``a_r(·)``
the relation's attribute vectors [d_a]), then changing the fact ``f_r(s) = a`` to ``a'`` should only need

    Δ = α · M_r (a_r(a') − a_r(a)),        e_s ← e_s + Δ,

with ``α = 1`` the exact edit. :func:`edit_facts` applies such edits to the subject token's embedding
inside the forward pass (the weights are untouched; see :func:`~georecall.analysis._eval.answer_logits`)
and measures, per scale α:

* ``success``: the share of edits after which the model answers ``a'`` (its answer token) to ``(s, r)``;
* ``collateral``: among the pairs (edit, ``r' != r``) whose query ``(s, r')`` the unedited model answered
  right, the share whose answer changed (None when K = 1: there is no other relation);
* the same for a *control* edit: a random direction (isotropic Gaussian, seeded) with the norm of Δ —
  ``control_success`` (answers ``a'``), ``control_collateral`` (other relations changed) and
  ``control_changed`` (the edited relation's answer changed at all);
* ``edit_norm``: mean ``||Δ||`` over the edits divided by the mean ``||e_s||`` over all N subjects.

The maps come from a fit of the embeddings (for example ``analysis.additive``) or, on a construction,
from an exact least-squares solve; this module takes them as an array and depends on no fit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from georecall.analysis._eval import (
    predictions,
    queries_for,
    require_single,
    require_single_hop,
    single_hop_queries,
)
from georecall.analysis.vectors import attribute_tokens, subject_embeddings
from georecall.model import Transformer
from georecall.tasks import World, rng_for

EDIT_STREAM = 0xED17  # which facts are edited and to what
CONTROL_STREAM = 0xC0DE  # the random directions of the control edits


@dataclass(frozen=True)
class EditResult:
    """Outcome of :func:`edit_facts`; every list is aligned with ``scales``.

    ``collateral`` and ``control_collateral`` are None when K = 1; an entry is NaN when the unedited
    model answered none of the other relations' queries of the edited subjects right.
    ``edits`` are the ``(s, r, a')`` drawn (``a'`` an attribute index of relation r, never ``f_r(s)``);
    ``baseline_accuracy`` is the unedited model's accuracy over all N·K queries.
    """

    scales: list[float]
    success: list[float]
    collateral: list[float] | None
    control_success: list[float]
    control_collateral: list[float] | None
    control_changed: list[float]
    edit_norm: list[float]
    n_edits: int
    baseline_accuracy: float
    edits: list[tuple[int, int, int]]
    seed: int


def draw_edits(world: World, n_edits: int, *, seed: int = 0) -> np.ndarray:
    """``n_edits`` facts ``(s, r, a')`` with ``a' != f_r(s)``: ``[n_edits, 3]`` int64.

    The ``(s, r)`` are drawn uniformly without replacement while ``n_edits <= N·K`` (with replacement
    beyond), ``a'`` uniformly among the relation's other attributes.
    """
    n, k_rel, n_attr = world.n_subjects, world.n_relations, world.vocab.attributes_per_relation
    if n_edits < 1:
        raise ValueError(f"n_edits must be >= 1, got {n_edits}")
    if n_attr < 2:
        raise ValueError(f"editing a fact needs at least 2 attributes per relation, the world has {n_attr}")
    rng = rng_for(seed, EDIT_STREAM)
    flat = rng.choice(n * k_rel, size=n_edits, replace=n_edits > n * k_rel)
    s, r = flat % n, flat // n
    old = world.maps[r, s]
    new = (old + rng.integers(1, n_attr, size=n_edits)) % n_attr  # uniform over the n_attr - 1 others
    return np.stack([s, r, new], axis=1).astype(np.int64)


def edit_directions(world: World, maps_r: np.ndarray, attr: np.ndarray, edits: np.ndarray) -> np.ndarray:
    """The exact-scale edit ``Δ = M_r (attr[r, a'] − attr[r, f_r(s)])`` of each ``(s, r, a')`` in ``edits``
    [n, 3]: ``[n, d]``. ``maps_r`` [K, d, d_a], ``attr`` [K, A, d_a]."""
    edits = np.asarray(edits, dtype=np.int64).reshape(-1, 3)
    s, r, new = edits.T
    maps_r, attr = np.asarray(maps_r, dtype=np.float64), np.asarray(attr, dtype=np.float64)
    return np.einsum("edk,ek->ed", maps_r[r], attr[r, new] - attr[r, world.maps[r, s]])


def edit_facts(model: Transformer, world: World, maps_r: np.ndarray, attr: np.ndarray, *,
               scales: Sequence[float] = (0.5, 1, 2, 4), n_edits: int = 64, seed: int = 0) -> EditResult:
    """Edit ``n_edits`` random facts by ``Δ = α M_r (attr[r, a'] − attr[r, f_r(s)])`` and score them (module docstring).

    ``maps_r`` [K, d, d_a] are the per-relation maps ``M_r`` of the subject embeddings, ``attr`` [K, A, d_a]
    the attribute vectors they act on (A attributes per relation, e.g. from
    :func:`~georecall.analysis.vectors.attribute_vectors`). Seeded: the same ``seed`` draws the same edits
    and the same control directions.
    """
    require_single(model)
    require_single_hop(model, world)
    maps_r = np.asarray(maps_r, dtype=np.float64)
    attr = np.asarray(attr, dtype=np.float64)
    k_rel, n_attr, d = world.n_relations, world.vocab.attributes_per_relation, model.cfg.d_model
    if maps_r.ndim != 3 or maps_r.shape[:2] != (k_rel, d):
        raise ValueError(f"maps_r must be [K={k_rel}, d={d}, d_a], got shape {maps_r.shape}")
    if attr.ndim != 3 or attr.shape != (k_rel, n_attr, maps_r.shape[2]):
        raise ValueError(f"attr must be [K={k_rel}, A={n_attr}, d_a={maps_r.shape[2]}], got shape {attr.shape}")
    scales = [float(a) for a in scales]
    if not scales:
        raise ValueError("scales must not be empty")
    edits = draw_edits(world, n_edits, seed=seed)
    s, r, new = edits.T
    direction = edit_directions(world, maps_r, attr, edits)  # [n, d], Δ at α = 1
    norms = np.linalg.norm(direction, axis=1)  # [n]
    noise = rng_for(seed, CONTROL_STREAM).standard_normal((n_edits, d))
    control = noise / np.linalg.norm(noise, axis=1, keepdims=True) * norms[:, None]  # same norm as Δ at α = 1

    # Every query of each edited subject, edit-major: row i*K + q is (s_i, q).
    qs, qr = np.repeat(s, k_rel), np.tile(np.arange(k_rel), n_edits)
    q = queries_for(world, qs, qr)
    clean = predictions(model, q.tokens).reshape(n_edits, k_rel)  # [n, K]
    right = clean == q.targets.reshape(n_edits, k_rel)
    own = np.zeros((n_edits, k_rel), dtype=bool)
    own[np.arange(n_edits), r] = True
    others = right & ~own  # the (edit, r' != r) pairs the unedited model got right
    new_token = attribute_tokens(world)[r, new]  # [n] the answer token of a'

    def outcome(delta: np.ndarray) -> tuple[float, float, float | None]:
        pred = predictions(model, q.tokens, subject_delta=np.repeat(delta, k_rel, axis=0)).reshape(n_edits, k_rel)
        mine = pred[np.arange(n_edits), r]
        collateral = None if k_rel == 1 else \
            (float((pred != clean)[others].mean()) if others.any() else float("nan"))
        return float((mine == new_token).mean()), float((mine != clean[np.arange(n_edits), r]).mean()), collateral

    success, collateral, c_success, c_collateral, c_changed, edit_norm = [], [], [], [], [], []
    mean_e = float(np.linalg.norm(subject_embeddings(model, world), axis=1).mean())
    for alpha in scales:
        hit, _, coll = outcome(alpha * direction)
        c_hit, c_chg, c_coll = outcome(alpha * control)
        success.append(hit)
        collateral.append(coll)
        c_success.append(c_hit)
        c_collateral.append(c_coll)
        c_changed.append(c_chg)
        edit_norm.append(float(abs(alpha) * norms.mean() / mean_e) if mean_e > 0 else float("nan"))

    all_q = single_hop_queries(world)
    baseline = float((predictions(model, all_q.tokens) == all_q.targets).mean())
    return EditResult(
        scales=scales, success=success, collateral=None if k_rel == 1 else collateral,
        control_success=c_success, control_collateral=None if k_rel == 1 else c_collateral,
        control_changed=c_changed, edit_norm=edit_norm, n_edits=n_edits, baseline_accuracy=baseline,
        edits=[(int(a), int(b), int(c)) for a, b, c in edits], seed=seed)
