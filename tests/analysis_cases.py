"""Shared inputs of the analysis tests: the constructions they must be exact on, and planted superpositions."""

from __future__ import annotations

import functools

import numpy as np

from georecall.constructions.disjoint import build_disjoint, build_disjoint_mlp
from georecall.constructions.single_hop import build_attention_only, build_selector, build_selector_mlp3
from georecall.tasks import make_world

N, K = 32, 3
# (builder, world kwargs): the shared builds and the disjoint ones, bijective and not.
CASES = {
    "selector": (build_selector, {}),
    "selector-mlp3": (build_selector_mlp3, {}),
    "attention-only": (build_attention_only, {}),
    "disjoint-mlp": (build_disjoint_mlp, {"attributes": "disjoint"}),
    "disjoint-mlp-functions": (build_disjoint_mlp, {"attributes": "disjoint", "n_attributes": 8, "bijective": False}),
    "disjoint": (build_disjoint, {"attributes": "disjoint"}),
}


@functools.cache
def construction(name: str):
    """The construction ``name`` of CASES on its N = 32, K = 3 world (seed 0), built once per session."""
    builder, kw = CASES[name]
    return builder(make_world(N, K, seed=0, **kw))


def planted(n=N, k_rel=K, d=24, d_a=6, noise=0.05, seed=0):
    """``e_s = Σ_r M_r U[f_r(s)] + noise``, U [A, d_a] shared by the relations: (e, world, attr [K, A, d_a])."""
    rng = np.random.default_rng(seed)
    world = make_world(n, k_rel, seed=seed)
    u = rng.standard_normal((n, d_a))
    m = rng.standard_normal((k_rel, d, d_a))
    e = sum(u[world.maps[r]] @ m[r].T for r in range(k_rel)) + noise * rng.standard_normal((n, d))
    return e, world, np.broadcast_to(u, (k_rel, n, d_a))
