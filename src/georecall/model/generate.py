"""Greedy chain-of-thought generation: the model emits every intermediate subject itself."""

from __future__ import annotations

import torch

from georecall.model.transformer import Transformer
from georecall.tasks.formats import chain_format


@torch.no_grad()
def generate_cot(model: Transformer, subjects: torch.Tensor, chains: torch.Tensor, cot: str, *,
                 n_subjects: int) -> torch.Tensor:
    """Greedy chain-of-thought generation: the subjects each member emits, ``[E, B, k]``.

    ``subjects`` [B] or [E, B] start subjects, ``chains`` [B, k] or [E, B, k] relations. Only the
    relations are given; every emitted subject is the model's own argmax, fed back as the next input.
    Relation r is token ``n_subjects + r`` (:class:`~georecall.tasks.Vocab`). Where the model reads and
    writes is the format's (:class:`~georecall.tasks.ChainFormat`): the prediction at answer position
    ``answer_positions[j]``, from the inputs up to it, becomes the subject at ``subject_positions[j + 1]``.
    """
    if cot not in ("interleaved", "question_first"):
        raise ValueError(f"cot must be 'interleaved' or 'question_first', got {cot!r}")
    e = model.n_members
    device = model.embed.W_E.device
    if subjects.dim() == 1:
        subjects, chains = subjects.expand(e, -1), chains.expand(e, -1, -1)
    subjects, chains = subjects.to(device), chains.to(device)
    k = chains.shape[-1]
    fmt = chain_format(cot, k)
    # The inputs with placeholder subjects, overwritten by the model's own as they are emitted.
    seq = fmt.assemble(subjects, chains + n_subjects, torch.zeros_like(chains[..., 1:]))  # [E, B, 2k]
    emitted = []
    for j, pos in enumerate(fmt.answer_positions):
        nxt = model(seq[..., :pos + 1], [pos])[:, :, 0].argmax(-1)  # [E, B]
        emitted.append(nxt)
        if j + 1 < k:
            seq[..., fmt.subject_positions[j + 1]] = nxt
    return torch.stack(emitted, dim=-1)
