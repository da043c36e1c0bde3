"""Freeze-and-swap: new subject embeddings in a trained model, built zero-shot from the additive fit.

If ``e_s = b + Σ_r M_r a(f_r(s))`` is how the model stores facts, then for a new world with maps ``g_r`` the
embeddings ``b + Σ_r M_r a(g_r(s))`` should make the *same* network (relation rows, positions, attention,
MLP, LayerNorms, readout untouched) answer the new world's queries, without any training.

Attribute vectors after a swap: in the shared setting attribute tokens are subject tokens. With
``kind="unembedding"`` the readout is kept, so the vectors are what they were (a tied readout is untied
first, :func:`swap_subject_embeddings`); with ``kind="embedding"`` they are taken from the original model,
before the swap.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

from georecall.analysis._eval import accuracy_by_relation, require_single, require_single_hop
from georecall.analysis.additive import AdditiveFit, _r2, fit_additive
from georecall.analysis.vectors import attribute_vectors, subject_embeddings
from georecall.model import Transformer
from georecall.tasks import World


def swap_subject_embeddings(model: Transformer, embeddings: np.ndarray | torch.Tensor) -> Transformer:
    """A copy (E = 1) of ``model`` whose subject rows ``W_E[0, :N]`` are ``embeddings`` [N, d]; all else kept.

    A tied readout (``W_U = W_E^T``) would change with the swap, so the copy of a tied model is untied:
    its ``unembed.W_U`` is the original ``W_E^T`` (``cfg.tie_unembed=False``), and only the input side changes.
    ``model`` is not modified.
    """
    require_single(model)
    emb = torch.as_tensor(np.asarray(embeddings) if not isinstance(embeddings, torch.Tensor) else embeddings)
    d = model.cfg.d_model
    if emb.dim() != 2 or emb.shape[1] != d:
        raise ValueError(f"embeddings must be [N, d_model = {d}], got shape {tuple(emb.shape)}")
    if not 1 <= emb.shape[0] <= model.d_vocab:
        raise ValueError(f"embeddings have {emb.shape[0]} rows; the model's vocabulary has {model.d_vocab} tokens")
    if not torch.isfinite(emb).all():
        raise ValueError("embeddings contain NaN or inf")
    w_e = model.embed.W_E
    if model.cfg.tie_unembed:
        cfg = dataclasses.replace(model.cfg, tie_unembed=False, frozen_unembedding=model.cfg.frozen_embeddings)
        out = Transformer(cfg, d_vocab=model.d_vocab, n_ctx=model.n_ctx, n_members=1).to(device=w_e.device,
                                                                                          dtype=w_e.dtype)
        state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        state["unembed.W_U"] = w_e.detach().transpose(1, 2).clone()
        out.load_state_dict(state)
        out.train(model.training)
    else:
        out = copy.deepcopy(model)
    with torch.no_grad():
        out.embed.W_E[0, :emb.shape[0]] = emb.to(device=w_e.device, dtype=w_e.dtype)
    return out


def zero_shot_embeddings(fit: AdditiveFit, new_world: World, attr: np.ndarray) -> np.ndarray:
    """``b + Σ_r M_r a(g_r(s))`` for the new world's maps ``g`` (``attr`` [K, A, d_a]): ``[N, d]``."""
    if new_world.n_relations != fit.maps.shape[0]:
        raise ValueError(f"the fit has {fit.maps.shape[0]} relations, the new world {new_world.n_relations}")
    return fit.predict(new_world.maps, attr)


@dataclass(frozen=True)
class TransferScore:
    """Accuracy of the swapped model on every query of the new world (``per_relation`` [K]), chance ``1/A``,
    and the in-sample R² and penalty of the additive fit on the original model's subjects."""

    accuracy: float
    per_relation: list[float]
    chance: float
    r2: float
    alpha: float
    kind: str


def _check_same_shape(world: World, new_world: World) -> None:
    old = (world.n_subjects, world.n_relations, world.attributes, world.vocab.attributes_per_relation)
    new = (new_world.n_subjects, new_world.n_relations, new_world.attributes,
           new_world.vocab.attributes_per_relation)
    if old != new:
        raise ValueError(f"the new world must have the old one's (N, K, attributes, A) = {old}, got {new}")


def zero_shot_transfer(model: Transformer, world: World, new_world: World, *, kind: str = "unembedding",
                       alpha: float | None = None) -> TransferScore:
    """Fit the additive map on ``model``'s own subjects and ``world`` (every subject), build ``new_world``'s
    embeddings from it, swap them in and score every query of ``new_world`` (argmax over the vocabulary).

    ``kind``: the attribute vectors (:func:`georecall.analysis.vectors.attribute_vectors`), read from the
    original model; ``alpha``: a fixed ridge penalty, or None for leave-one-out CV.
    """
    require_single(model)
    require_single_hop(model, world)
    _check_same_shape(world, new_world)
    attr = attribute_vectors(model, world, kind)  # [K, A, d], from the model before any swap
    emb = subject_embeddings(model, world)  # [N, d]
    fit = fit_additive(emb, world.maps, attr, alpha=alpha, kind=kind)
    swapped = swap_subject_embeddings(model, zero_shot_embeddings(fit, new_world, attr))
    per_relation = accuracy_by_relation(swapped, new_world)
    return TransferScore(accuracy=float(per_relation.mean()), per_relation=[float(a) for a in per_relation],
                         chance=1.0 / world.vocab.attributes_per_relation,
                         r2=_r2(emb, fit.predict(world.maps, attr), emb.mean(0)), alpha=fit.alpha, kind=kind)
