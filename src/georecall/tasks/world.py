"""Worlds of facts: N subjects, K relations, one map f_r per relation, drawn from a seed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from georecall.config import TaskConfig
from georecall.tasks.vocab import Vocab

# Stream ids keep the world's randomness apart from init, batching and query sampling of the same seed.
WORLD_STREAM = 0x57_0D
QUERY_STREAM = 0x9E_E5


def rng_for(seed: int, stream: int) -> np.random.Generator:
    """A numpy generator for one purpose (``stream``) of one seed; library code never seeds globals."""
    return np.random.default_rng(np.random.SeedSequence([seed, stream]))


@dataclass(frozen=True, eq=False)
class World:
    """The facts: ``maps[r, s] = f_r(s)``, an int64 array of shape [n_relations, n_subjects]."""

    maps: np.ndarray  # [K, N] int64
    attributes: Literal["shared", "disjoint"] = "shared"
    n_attributes: int | None = None  # codomain size per relation (None = n_subjects)
    seed: int | None = None  # the seed it was drawn from, if any
    vocab: Vocab = field(init=False)

    def __post_init__(self) -> None:
        maps = np.asarray(self.maps)
        if maps.ndim != 2 or not np.issubdtype(maps.dtype, np.integer):
            raise ValueError(f"maps must be a 2-d integer array [K, N], got shape {maps.shape} {maps.dtype}")
        maps = maps.astype(np.int64, copy=False)
        maps.setflags(write=False)
        object.__setattr__(self, "maps", maps)
        vocab = Vocab(maps.shape[1], maps.shape[0], self.attributes, self.n_attributes)
        object.__setattr__(self, "vocab", vocab)
        a = vocab.attributes_per_relation
        if maps.size and (maps.min() < 0 or maps.max() >= a):
            raise ValueError(f"attribute values must lie in [0, {a})")

    @property
    def n_subjects(self) -> int:
        return self.maps.shape[1]

    @property
    def n_relations(self) -> int:
        return self.maps.shape[0]

    def apply(self, subjects: np.ndarray, chain: np.ndarray) -> np.ndarray:
        """Follow relation chains: ``f_{r_k}(... f_{r_1}(s))``, ``r_1 = chain[..., 0]`` applied first.

        ``subjects`` [B], ``chain`` [B, k] relation indices; returns every intermediate subject,
        [B, k] (column j is s_{j+1}); the last column is the answer.
        """
        if self.attributes != "shared" and np.asarray(chain).shape[-1] > 1:
            raise ValueError("chains of more than one hop need shared attributes")
        cur = np.asarray(subjects, dtype=np.int64)
        chain = np.asarray(chain, dtype=np.int64)
        out = np.empty(chain.shape, dtype=np.int64)
        for j in range(chain.shape[-1]):
            cur = self.maps[chain[..., j], cur]
            out[..., j] = cur
        return out

    def redraw(self, seed: int) -> World:
        """Fresh maps of the same kind and sizes from another seed (for freeze-and-swap transfer)."""
        return make_world(self.n_subjects, self.n_relations, seed=seed, attributes=self.attributes,
                          n_attributes=self.n_attributes, bijective=self.is_bijective())

    def is_bijective(self) -> bool:
        """True when every f_r is a permutation of its codomain."""
        a = self.vocab.attributes_per_relation
        return a == self.n_subjects and all(np.array_equal(np.sort(row), np.arange(a)) for row in self.maps)


def make_world(
    n_subjects: int,
    n_relations: int,
    *,
    seed: int,
    attributes: Literal["shared", "disjoint"] = "shared",
    n_attributes: int | None = None,
    bijective: bool = True,
    variant: int = 0,
) -> World:
    """Draw K maps of [N] from ``seed``: uniform random bijections, or uniform random functions.

    ``variant`` > 0 draws another world from the same seed (new bijections for freeze-and-swap transfer).

    >>> w = make_world(4, 2, seed=0); w.maps.shape
    (2, 4)
    """
    cfg = TaskConfig(n_subjects=n_subjects, n_relations=n_relations, attributes=attributes,
                     n_attributes=n_attributes, bijective=bijective)  # validates sizes
    if variant < 0:
        raise ValueError(f"variant must be >= 0, got {variant}")
    # Variant 0 is the seed's world (unchanged since worlds were first drawn); v > 0 another stream of the seed.
    rng = rng_for(seed, WORLD_STREAM) if variant == 0 else \
        np.random.default_rng(np.random.SeedSequence([seed, WORLD_STREAM, variant]))
    a = cfg.attributes_per_relation
    if bijective:
        maps = np.stack([rng.permutation(n_subjects) for _ in range(n_relations)])
    else:
        maps = rng.integers(0, a, size=(n_relations, n_subjects))
    return World(maps, attributes=attributes, n_attributes=n_attributes, seed=seed)


def world_for(task: TaskConfig, seed: int) -> World:
    """The world of ensemble member ``seed`` (``task.world_seed`` when set, shared by every member)."""
    return make_world(task.n_subjects, task.n_relations,
                      seed=seed if task.world_seed is None else task.world_seed,
                      attributes=task.attributes, n_attributes=task.n_attributes, bijective=task.bijective,
                      variant=task.world_variant)
