"""The vectors analyses work with: subject embeddings and, per relation, a vector for every attribute.

``subject_embeddings`` are the rows ``W_E[s]`` of the subject tokens. An attribute's vector ``a(·)`` is
one of (``kind``):

* ``"unembedding"``: the model's readout column ``W_U[:, t]`` of the attribute's token (``W_E[t]`` when
  tied). A learned readout is trained on every fact, the held-out subject's own included, so held-out
  scores against it are *optimistic*; a frozen random readout is fact-free.
* ``"embedding"``: the attribute token's input embedding ``W_E[t]`` (in the shared setting the attribute
  is itself a subject, so this is that subject's embedding).

Arrays are float64 numpy, shapes in the names: ``[N, d]`` and ``[K, A, d]`` (A attributes per relation).
"""

from __future__ import annotations

import typing
from typing import Literal

import numpy as np

from georecall.analysis._eval import require_single
from georecall.model import Transformer
from georecall.tasks import World

AttributeVectors = Literal["unembedding", "embedding"]
ATTRIBUTE_VECTORS: tuple[str, ...] = typing.get_args(AttributeVectors)


def subject_embeddings(model: Transformer, world: World) -> np.ndarray:
    """``W_E[s]`` for every subject: ``[N, d]``."""
    require_single(model)
    return model.embed.W_E[0, :world.n_subjects].detach().cpu().double().numpy()


def attribute_tokens(world: World) -> np.ndarray:
    """The token id of attribute ``a`` of relation ``r``: ``[K, A]``."""
    v = world.vocab
    a = v.attributes_per_relation
    if world.attributes == "shared":
        return np.tile(np.arange(a), (world.n_relations, 1))
    return v.attribute_offset + np.arange(world.n_relations)[:, None] * a + np.arange(a)[None, :]


def attribute_vectors(model: Transformer, world: World, kind: str = "unembedding") -> np.ndarray:
    """Each relation's vector for each of its attributes: ``[K, A, d]`` (``kind``: see the module docstring)."""
    require_single(model)
    if kind not in ATTRIBUTE_VECTORS:
        raise ValueError(f"attribute vectors must be one of {ATTRIBUTE_VECTORS}, got {kind!r}")
    table = model.W_U[0].T if kind == "unembedding" else model.embed.W_E[0]  # [V, d]
    table = table.detach().cpu().double().numpy()
    return table[attribute_tokens(world)]
