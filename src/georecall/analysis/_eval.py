"""Single-hop queries and forward passes of one model (E = 1), with optional changes to its subject embeddings.

Shared by every analysis; torch only, no training code. A query is ``(s, r)``; the answer is read at
position 1 and the prediction is the argmax over the whole vocabulary.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from georecall.config import TaskConfig
from georecall.model import Transformer
from georecall.model.hooks import HookFn
from georecall.tasks import World, make_queries


def require_single(model: Transformer) -> None:
    """Analyses take one model: an ensemble member is ``model.member(e)``."""
    if model.n_members != 1:
        raise ValueError(f"analyses take a single model (E = 1), got an ensemble of {model.n_members}; "
                         "pass model.member(e)")


def require_single_hop(model: Transformer, world: World) -> None:
    if model.d_vocab != world.vocab.d_vocab:
        raise ValueError(f"the model's vocabulary ({model.d_vocab}) is not the world's ({world.vocab.d_vocab})")
    if model.n_ctx < 2:
        raise ValueError(f"single-hop queries need n_ctx >= 2, the model has {model.n_ctx}")


@dataclass(frozen=True, eq=False)
class SingleHop:
    """Every single-hop query of a world, relation-major is not guaranteed: use the index arrays.

    ``tokens`` [B, 2] (subject, relation token), ``subjects`` [B], ``relations`` [B], ``targets`` [B]
    (the answer *token* id: the subject id when attributes are shared), ``attributes`` [B] (``f_r(s)``).
    """

    tokens: torch.Tensor
    subjects: np.ndarray
    relations: np.ndarray
    targets: np.ndarray
    attributes: np.ndarray

    def __len__(self) -> int:
        return len(self.subjects)


def single_hop_queries(world: World) -> SingleHop:
    """All N·K queries ``(s, r)`` of ``world``."""
    task = TaskConfig(n_subjects=world.n_subjects, n_relations=world.n_relations, attributes=world.attributes,
                      n_attributes=world.n_attributes, bijective=world.is_bijective())
    q = make_queries(world, task)
    subjects = q.subjects.numpy()
    relations = q.relations[:, 0].numpy()
    return SingleHop(tokens=q.tokens, subjects=subjects, relations=relations, targets=q.targets[:, 0].numpy(),
                     attributes=world.maps[relations, subjects])


def queries_for(world: World, subjects: Sequence[int] | np.ndarray, relations: Sequence[int] | np.ndarray) -> SingleHop:
    """The queries ``(subjects[i], relations[i])``."""
    s = np.asarray(subjects, dtype=np.int64)
    r = np.asarray(relations, dtype=np.int64)
    vocab = world.vocab
    tokens = torch.from_numpy(np.stack([s, vocab.n_subjects + r], axis=1))
    attrs = world.maps[r, s]
    targets = attrs if world.attributes == "shared" else \
        vocab.attribute_offset + r * vocab.attributes_per_relation + attrs
    return SingleHop(tokens=tokens, subjects=s, relations=r, targets=np.asarray(targets), attributes=attrs)


@torch.no_grad()
def answer_logits(model: Transformer, tokens: torch.Tensor, *, subject_delta: torch.Tensor | np.ndarray | None = None,
                  fwd_hooks: Sequence[tuple[str, HookFn]] = (), chunk: int = 8192) -> torch.Tensor:
    """Logits at the answer position (1) of each query: ``[B, V]`` (float32, CPU).

    ``subject_delta`` [B, d], when given, is added to the subject token's embedding (position 0, at
    ``hook_embed``) of each query: an embedding-space edit that leaves the model's weights alone.
    """
    require_single(model)
    device = model.embed.W_E.device
    out = []
    for start in range(0, tokens.shape[0], chunk):
        tok = tokens[start:start + chunk].to(device)
        hooks = list(fwd_hooks)
        if subject_delta is not None:
            delta = torch.as_tensor(subject_delta[start:start + chunk], dtype=model.embed.W_E.dtype, device=device)

            def add(act: torch.Tensor, hook, _delta=delta) -> torch.Tensor:  # act: [1, b, T, d]
                act = act.clone()
                act[0, :, 0] += _delta
                return act

            hooks.append(("hook_embed", add))
        with model.hooks(hooks):
            logits = model(tok[None] if tok.dim() == 2 else tok, positions=(1,))[0, :, 0]  # [b, V]
        out.append(logits.float().cpu())
    return torch.cat(out)


def predictions(model: Transformer, tokens: torch.Tensor, **kwargs) -> np.ndarray:
    """The argmax token at the answer position of each query: ``[B]``."""
    return answer_logits(model, tokens, **kwargs).argmax(-1).numpy()


def accuracy_by_relation(model: Transformer, world: World, *,
                         fwd_hooks: Sequence[tuple[str, HookFn]] = ()) -> np.ndarray:
    """Accuracy on every query of each relation: ``[K]``."""
    require_single(model)
    require_single_hop(model, world)
    q = single_hop_queries(world)
    right = predictions(model, q.tokens, fwd_hooks=fwd_hooks) == q.targets
    return np.array([right[q.relations == r].mean() for r in range(world.n_relations)])
