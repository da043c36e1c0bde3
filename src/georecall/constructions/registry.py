"""Every construction by name: which world it needs, which hop counts it answers, how to build it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from georecall.config import TaskConfig
from georecall.constructions.base import Construction, ScoringMemory, check_scoring_memory, scoring_memory
from georecall.constructions.cot import build_cot
from georecall.constructions.disjoint import build_disjoint, build_disjoint_mlp
from georecall.constructions.multihop import build_kv_memory, build_precompute
from georecall.constructions.readout import build_meet_in_middle, build_readout_only
from georecall.constructions.single_hop import build_attention_only, build_selector, build_selector_mlp3
from georecall.tasks import World, make_world

if TYPE_CHECKING:
    from georecall.theory.bound import CostResult


@dataclass(frozen=True)
class Recipe:
    """How to build one construction."""

    name: str
    theorem: str
    attributes: str  # "shared" or "disjoint": the world it answers
    hops: int | None  # the only hop count it answers, or None for any k >= 1
    build: Callable[[World, int, torch.dtype], Construction]


CONSTRUCTIONS: dict[str, Recipe] = {r.name: r for r in [
    Recipe("selector", "Theorem 4.1", "shared", 1, lambda w, k, dt: build_selector(w, dtype=dt)),
    Recipe("selector-mlp3", "Theorem 4.1, 3-layer MLP", "shared", 1, lambda w, k, dt: build_selector_mlp3(w, dtype=dt)),
    Recipe("attention-only", "Theorem 4.1, attention only", "shared", 1,
           lambda w, k, dt: build_attention_only(w, dtype=dt)),
    Recipe("disjoint", "docs/theory.md §3 F0", "disjoint", 1, lambda w, k, dt: build_disjoint(w, dtype=dt)),
    Recipe("disjoint-mlp", "docs/theory.md §3 F1", "disjoint", 1, lambda w, k, dt: build_disjoint_mlp(w, dtype=dt)),
    Recipe("kv-memory", "Theorem 4.3, key-value", "shared", None, lambda w, k, dt: build_kv_memory(w, k, dtype=dt)),
    Recipe("precompute", "Theorem 4.3, pre-computation", "shared", None,
           lambda w, k, dt: build_precompute(w, k, dtype=dt)),
    Recipe("cot", "Theorem 4.4, format A", "shared", None, lambda w, k, dt: build_cot(w, k, dtype=dt)),
    Recipe("cot-question-first", "Theorem 4.4, format B", "shared", None,
           lambda w, k, dt: build_cot(w, k, fmt="question_first", dtype=dt)),
    Recipe("meet-in-middle", "docs/theory.md §6.5", "shared", 2, lambda w, k, dt: build_meet_in_middle(w, dtype=dt)),
    Recipe("meet-in-middle-tied", "docs/theory.md §6.5, tied", "shared", 2,
           lambda w, k, dt: build_meet_in_middle(w, tied=True, dtype=dt)),
    Recipe("readout-only", "docs/theory.md §6.5", "shared", 1, lambda w, k, dt: build_readout_only(w, dtype=dt)),
]}


def build_construction(name: str, n_subjects: int, n_relations: int, n_hops: int | None = None, *,
                       seed: int = 0, dtype: torch.dtype = torch.float32) -> Construction:
    """Draw a world from ``seed`` and build construction ``name`` on it; bad combinations raise ValueError.

    ``n_hops`` defaults to the construction's own hop count (1 for those that take any).
    """
    if name not in CONSTRUCTIONS:
        raise ValueError(f"unknown construction {name!r}; choose from {', '.join(CONSTRUCTIONS)}")
    recipe = CONSTRUCTIONS[name]
    k = n_hops if n_hops is not None else (recipe.hops or 1)
    if k < 1:
        raise ValueError(f"hops must be >= 1, got {k}")
    if recipe.hops is not None and k != recipe.hops:
        raise ValueError(f"{name} answers {recipe.hops}-hop queries only, got --hops {k}")
    world = make_world(n_subjects, n_relations, seed=seed, attributes=recipe.attributes)
    return recipe.build(world, k, dtype)


def construction_scoring_memory(name: str, n_subjects: int, n_relations: int, n_hops: int, *,
                                n_queries: int | None = None, itemsize: int = 4,
                                cost: CostResult | None = None) -> ScoringMemory:
    """What scoring construction ``name`` on every query (or ``n_queries`` of them) would allocate, from the
    theory's closed-form sizes (:func:`georecall.theory.construction_cost`, or ``cost`` when already computed),
    before anything is built.

    Pure arithmetic. Bad sizes raise ValueError as the cost and the query count do."""
    from georecall.theory import construction_cost

    if cost is None:
        cost = construction_cost(name, n_subjects, n_relations, n_hops)
    cot = {"cot": "interleaved", "cot-question-first": "question_first"}.get(name, "none")
    task = TaskConfig(n_subjects=n_subjects, n_relations=n_relations, n_hops=n_hops, cot=cot,
                      attributes=CONSTRUCTIONS[name].attributes, n_queries=n_queries)
    width = sum(cost.mlp_widths) if cost.n_layers == 1 else max(cost.mlp_widths, default=0)
    return scoring_memory(task, d_model=cost.d_model, n_heads=cost.n_heads, mlp_width=width,
                          d_vocab=cost.d_vocab, itemsize=itemsize)


def check_construction_scoring(name: str, n_subjects: int, n_relations: int, n_hops: int, *,
                               n_queries: int | None = None, itemsize: int = 4, limit: int | None = None) -> None:
    """Refuse (ValueError naming the estimate, the limit and how many queries would fit) to score a construction
    whose queries and activations would not fit in ``limit`` bytes (default: this machine's memory)."""
    from georecall.machine import available_bytes

    mem = construction_scoring_memory(name, n_subjects, n_relations, n_hops, n_queries=n_queries, itemsize=itemsize)
    check_scoring_memory(mem, f"{name} at N={n_subjects}, K={n_relations}, k={n_hops}",
                         available_bytes() if limit is None else limit)


def check_construction_fits(name: str, n_subjects: int, n_relations: int, n_hops: int | None = None, *,
                            itemsize: int = 4, n_queries: int | None = None) -> None:
    """Refuse, before building, a construction whose weights (the theory's closed-form count) or whose scoring
    (its query set and activations, which grow with the hops) would not fit in this machine's memory:
    ValueError naming the estimate. ``n_hops`` defaults to the construction's own, as
    :func:`build_construction` does. A size not costed in closed form, or a bad one (which the builder
    reports), passes."""
    from georecall.machine import available_bytes, check_fits
    from georecall.theory import construction_cost

    k = n_hops if n_hops is not None else (CONSTRUCTIONS[name].hops or 1)
    try:
        cost = construction_cost(name, n_subjects, n_relations, k)
    except (ValueError, KeyError):
        return
    what = f"{name} at N={n_subjects}, K={n_relations}, k={k}"
    cap = available_bytes()
    check_fits(cost.total * itemsize, f"construction {what}", limit=cap)
    mem = construction_scoring_memory(name, n_subjects, n_relations, k, n_queries=n_queries, itemsize=itemsize,
                                      cost=cost)
    check_scoring_memory(mem, what, cap)
