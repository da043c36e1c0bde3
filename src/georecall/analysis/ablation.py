"""Which hidden units serve which relation: attribution by mean activation, and ablation.

The selector claim (docs/theory.md §2.2) is that the MLP's hidden units are gated by the relation: unit
``(r, i)`` is active only on queries of relation r. :func:`unit_attribution` assigns units to relations
from their mean activation at the answer position; :func:`ablation_matrix` knocks out each relation's
units and measures the accuracy drop on every relation — a relation-gated MLP gives a diagonal matrix
(:func:`diagonal_fraction` 1). :func:`random_unit_control` is the same matrix for as many units drawn
at random, the baseline a real assignment must beat.

Activations are read at a hook site of shape ``[1, B, T, U]`` (U hidden units), e.g.
``blocks.0.mlp.hook_post`` or, with two hidden layers, ``blocks.0.mlp.hook_post2``; attribution needs
nonnegative activations (a post-ReLU site). Every query of the world is used (N per relation).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from georecall.analysis._eval import accuracy_by_relation, require_single, require_single_hop, single_hop_queries
from georecall.analysis.patching import ANSWER_POSITION, require_site, site_activation
from georecall.model import Transformer
from georecall.tasks import World, rng_for

AblationMode = Literal["zero", "mean"]
ABLATION_MODES = ("zero", "mean")
DEFAULT_HOOK = "blocks.0.mlp.hook_post"
RANDOM_UNITS_STREAM = 0xAB1A


def answer_activations(model: Transformer, world: World, hook: str = DEFAULT_HOOK, *,
                       chunk: int = 8192) -> tuple[np.ndarray, np.ndarray]:
    """The activation of every unit at the answer position on every query, and the queries' relations.

    Returns ``acts`` [B, U] (float64) and ``relations`` [B], B = N·K.
    """
    require_single(model)
    require_single_hop(model, world)
    require_site(model, hook)
    q = single_hop_queries(world)
    out = []
    for start in range(0, len(q), chunk):
        act = site_activation(model, q.tokens[start:start + chunk], hook)
        if act.dim() != 4:
            raise ValueError(f"hook {hook!r} has activations of shape {tuple(act.shape)}; unit analyses need "
                             "[1, B, T, U] (an MLP or residual site)")
        out.append(act[0, :, ANSWER_POSITION].double().cpu().numpy())
    return np.concatenate(out), q.relations


@dataclass(frozen=True)
class Attribution:
    """Hidden units assigned to relations by their mean activation (:func:`unit_attribution`).

    ``mean_activation[u][r]`` and ``share[u][r]`` are [U][K]; ``units[r]`` lists relation r's units
    (ascending), ``counts[r]`` their number; ``n_dead`` units are below the activity floor.
    """

    hook: str
    mean_activation: list[list[float]]
    share: list[list[float]]
    units: list[list[int]]
    counts: list[int]
    threshold: float
    min_activation: float
    n_units: int
    n_dead: int


def unit_attribution(model: Transformer, world: World, *, hook: str = DEFAULT_HOOK, threshold: float = 0.5,
                     min_activation: float = 1e-6) -> Attribution:
    """Assign hidden units at ``hook`` to relations.

    ``A[u, r]`` is unit u's mean activation at the answer position over the N queries of relation r and
    ``share[u, r] = A[u, r] / Σ_r' A[u, r']``. The rule: unit u is *alive* when its mean activation over
    all queries exceeds ``min_activation`` times the largest unit's (else dead, in no relation), and an
    alive unit belongs to every relation r with ``share[u, r] >= threshold``. With ``threshold > 0.5`` a
    unit belongs to at most one relation; with ``threshold <= 0.5`` it can belong to several (a unit
    shared equally by two relations is in both at 0.5). Units active for all relations alike (share
    ``1/K`` each) belong to none once ``threshold > 1/K``. ``threshold`` must lie in (0, 1].
    Raises ValueError for negative mean activations (use a post-ReLU site).
    """
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold must lie in (0, 1], got {threshold}")
    if min_activation < 0:
        raise ValueError(f"min_activation must be >= 0, got {min_activation}")
    acts, relations = answer_activations(model, world, hook)
    k_rel = world.n_relations
    mean = np.stack([acts[relations == r].mean(axis=0) for r in range(k_rel)], axis=1)  # [U, K]
    if (mean < 0).any():
        raise ValueError(f"hook {hook!r} has negative mean activations; attribution needs a nonnegative "
                         "(post-ReLU) site such as blocks.0.mlp.hook_post")
    total = acts.mean(axis=0)  # [U]
    alive = total > min_activation * total.max() if total.max() > 0 else np.zeros_like(total, dtype=bool)
    sums = mean.sum(axis=1, keepdims=True)
    share = np.divide(mean, sums, out=np.zeros_like(mean), where=sums > 0)
    member = alive[:, None] & (share >= threshold)  # [U, K]
    units = [np.flatnonzero(member[:, r]).tolist() for r in range(k_rel)]
    return Attribution(hook=hook, mean_activation=mean.tolist(), share=share.tolist(), units=units,
                       counts=[len(u) for u in units], threshold=float(threshold),
                       min_activation=float(min_activation), n_units=int(mean.shape[0]),
                       n_dead=int((~alive).sum()))


def _check_mode(mode: str) -> None:
    if mode not in ABLATION_MODES:
        raise ValueError(f"mode must be one of {ABLATION_MODES}, got {mode!r}")


def _ablated_accuracy(model: Transformer, world: World, units: np.ndarray, hook: str,
                      values: np.ndarray) -> np.ndarray:
    """Accuracy per relation with ``units`` set to ``values[units]`` at every position: ``[K]``."""
    if len(units) == 0:
        return accuracy_by_relation(model, world)
    idx = torch.as_tensor(units, dtype=torch.long)
    fill = torch.as_tensor(values[units])

    def replace(act: torch.Tensor, _hook) -> torch.Tensor:  # act: [1, B, T, U]
        act = act.clone()
        act[..., idx.to(act.device)] = fill.to(act.device, act.dtype)
        return act

    return accuracy_by_relation(model, world, fwd_hooks=[(hook, replace)])


def _fill_values(model: Transformer, world: World, hook: str, mode: str) -> tuple[np.ndarray, int]:
    """What ablated units are set to (zeros, or each unit's mean over all queries at the answer position)
    and the number of units U."""
    _check_mode(mode)
    acts, _ = answer_activations(model, world, hook)
    values = acts.mean(axis=0) if mode == "mean" else np.zeros(acts.shape[1])
    return values, acts.shape[1]


def _unit_array(units: Sequence[int], n_units: int) -> np.ndarray:
    arr = np.unique(np.asarray(list(units), dtype=np.int64))
    if arr.size and (arr.min() < 0 or arr.max() >= n_units):
        raise ValueError(f"unit indices must lie in [0, {n_units}), got {sorted(set(int(u) for u in units))}")
    return arr


def ablate(model: Transformer, world: World, units: Sequence[int], *, hook: str = DEFAULT_HOOK,
           mode: AblationMode = "zero") -> np.ndarray:
    """Accuracy per relation ``[K]`` with ``units`` at ``hook`` replaced, at every position, by 0
    (``mode="zero"``) or by their mean over all queries at the answer position (``mode="mean"``)."""
    values, n_units = _fill_values(model, world, hook, mode)
    return _ablated_accuracy(model, world, _unit_array(units, n_units), hook, values)


@dataclass(frozen=True)
class AblationMatrix:
    """Accuracy drops when each relation's units are ablated.

    ``drops[r][q]`` = clean accuracy on relation q − accuracy on q with row r's units ablated ([K][K]);
    ``clean[q]`` the unablated accuracy; ``counts[r]`` the units ablated in row r (a row with none is all
    zero); ``n_draws`` > 1 for :func:`random_unit_control` (drops are the mean over draws).
    """

    hook: str
    mode: str
    clean: list[float]
    drops: list[list[float]]
    counts: list[int]
    n_draws: int
    diagonal_fraction: float | None


def diagonal_fraction(drops: Sequence[Sequence[float]] | np.ndarray) -> float | None:
    """``Σ_r max(drops[r][r], 0) / Σ_{r,q} max(drops[r][q], 0)``: 1 for a purely diagonal matrix, None
    when no drop is positive."""
    d = np.clip(np.asarray(drops, dtype=np.float64), 0, None)
    if d.ndim != 2 or d.shape[0] != d.shape[1]:
        raise ValueError(f"drops must be a square [K, K] matrix, got shape {d.shape}")
    total = d.sum()
    return float(np.trace(d) / total) if total > 0 else None


def _check_per_relation(world: World, items: Sequence, what: str) -> None:
    if len(items) != world.n_relations:
        raise ValueError(f"{what} must have one entry per relation (K = {world.n_relations}), got {len(items)}")


def ablation_matrix(model: Transformer, world: World, units_per_relation: Sequence[Sequence[int]], *,
                    hook: str = DEFAULT_HOOK, mode: AblationMode = "zero") -> AblationMatrix:
    """Ablate ``units_per_relation[r]`` for each r and measure the drop on every relation (:class:`AblationMatrix`)."""
    _check_per_relation(world, units_per_relation, "units_per_relation")
    values, n_units = _fill_values(model, world, hook, mode)
    clean = accuracy_by_relation(model, world)
    rows, counts = [], []
    for units in units_per_relation:
        arr = _unit_array(units, n_units)
        counts.append(int(arr.size))
        ablated = clean if arr.size == 0 else _ablated_accuracy(model, world, arr, hook, values)
        rows.append(clean - ablated)
    drops = np.stack(rows)
    return AblationMatrix(hook=hook, mode=mode, clean=clean.tolist(), drops=drops.tolist(), counts=counts,
                          n_draws=1, diagonal_fraction=diagonal_fraction(drops))


def random_unit_control(model: Transformer, world: World, counts: Sequence[int], *, hook: str = DEFAULT_HOOK,
                        mode: AblationMode = "zero", n_draws: int = 5, seed: int = 0) -> AblationMatrix:
    """:func:`ablation_matrix` with row r ablating ``counts[r]`` units drawn uniformly (without replacement)
    from all U units at ``hook``, averaged over ``n_draws`` draws. Seeded."""
    _check_per_relation(world, counts, "counts")
    if n_draws < 1:
        raise ValueError(f"n_draws must be >= 1, got {n_draws}")
    values, n_units = _fill_values(model, world, hook, mode)
    counts = [int(c) for c in counts]
    if any(not 0 <= c <= n_units for c in counts):
        raise ValueError(f"counts must lie in [0, {n_units}] (the units at {hook!r}), got {counts}")
    rng = rng_for(seed, RANDOM_UNITS_STREAM)
    clean = accuracy_by_relation(model, world)
    drops = np.zeros((world.n_relations, world.n_relations))
    for r, c in enumerate(counts):
        if c == 0:
            continue
        for _ in range(n_draws):
            units = np.sort(rng.choice(n_units, size=c, replace=False))
            drops[r] += clean - _ablated_accuracy(model, world, units, hook, values)
        drops[r] /= n_draws
    return AblationMatrix(hook=hook, mode=mode, clean=clean.tolist(), drops=drops.tolist(), counts=counts,
                          n_draws=n_draws, diagonal_fraction=diagonal_fraction(drops))
