"""Scoring an ensemble on its queries: accuracy overall, per relation and per hop; greedy CoT generation."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from georecall.model import Transformer
from georecall.tasks import QuerySet, World


@dataclass(frozen=True)
class EvalResult:
    """Per-member scores; every list has one entry per ensemble member."""

    accuracy: list[float]  # fraction of queries with every answer position right (the whole chain for CoT)
    loss: list[float]  # mean cross-entropy over answer positions
    per_relation: list[list[float | None]]  # [E][K]: accuracy of answers produced by relation r (None: unseen)
    per_hop: list[list[float]]  # [E][P]: accuracy at hop j (one entry for direct queries)


def answer_scores(logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-query correctness and cross-entropy: ``[E, B, P, V]``, ``[E, B, P]`` -> ``[E, B, P]`` bool, float."""
    correct = logits.argmax(-1) == targets
    ce = F.cross_entropy(logits.flatten(0, 2).float(), targets.flatten(), reduction="none").view_as(targets)
    return correct, ce


class ScoreTally:
    """Running per-member counts of right answers, overall, per relation and per hop."""

    def __init__(self, n_members: int, n_positions: int, n_relations: int, device: torch.device) -> None:
        self.n = 0
        self.right = torch.zeros(n_members, device=device)
        self.loss = torch.zeros(n_members, device=device)
        self.rel_right = torch.zeros(n_members, n_relations, device=device)
        self.rel_total = torch.zeros(n_members, n_relations, device=device)
        self.hop_right = torch.zeros(n_members, n_positions, device=device)

    def add(self, correct: torch.Tensor, ce: torch.Tensor, relations: torch.Tensor) -> None:
        """``correct``, ``ce``, ``relations``: [E, b, P] for b more queries."""
        self.n += correct.shape[1]
        self.right += correct.all(-1).sum(1)
        self.loss += ce.mean(-1).sum(1)
        self.hop_right += correct.sum(1)
        rel = relations.flatten(1)
        self.rel_right.scatter_add_(1, rel, correct.flatten(1).float())
        self.rel_total.scatter_add_(1, rel, torch.ones_like(rel, dtype=torch.float))

    def result(self) -> EvalResult:
        per_rel = (self.rel_right / self.rel_total.clamp(min=1)).tolist()
        seen = (self.rel_total > 0).tolist()  # a sampled set may miss a relation: report None, not NaN
        per_rel = [[v if ok else None for v, ok in zip(row, mask, strict=True)]
                   for row, mask in zip(per_rel, seen, strict=True)]
        return EvalResult(accuracy=(self.right / self.n).tolist(), loss=(self.loss / self.n).tolist(),
                          per_relation=per_rel, per_hop=(self.hop_right / self.n).tolist())


@torch.no_grad()
def evaluate(model: Transformer, queries: QuerySet, n_relations: int, *, chunk: int = 1 << 15) -> EvalResult:
    """Teacher-forced scores of every member on its stacked queries (``tokens`` [E, B, T]), in chunks.

    With teacher forcing, "every answer position right" equals "greedy generation reproduces the whole
    chain" (by induction over the chain), so this is also the CoT chain accuracy.
    """
    device = model.embed.W_E.device
    e, b, p = queries.targets.shape
    tally = ScoreTally(e, p, n_relations, device)
    for start in range(0, b, chunk):
        sl = slice(start, start + chunk)
        tokens, targets = queries.tokens[:, sl].to(device), queries.targets[:, sl].to(device)
        correct, ce = answer_scores(model(tokens, queries.positions), targets)
        tally.add(correct, ce, queries.relations[:, sl].to(device))
    return tally.result()


@torch.no_grad()
def generate_cot(model: Transformer, subjects: torch.Tensor, chains: torch.Tensor, cot: str, *,
                 n_subjects: int) -> torch.Tensor:
    """Greedy chain-of-thought generation: the subjects each member emits, ``[E, B, k]``.

    ``subjects`` [B] or [E, B] start subjects, ``chains`` [B, k] or [E, B, k] relations. Only the
    relations are given; every emitted subject is the model's own argmax, fed back as the next input.
    Relation r is token ``n_subjects + r`` (:class:`~georecall.tasks.Vocab`).
    """
    e = model.n_members
    device = model.embed.W_E.device
    if subjects.dim() == 1:
        subjects, chains = subjects.expand(e, -1), chains.expand(e, -1, -1)
    subjects, chains = subjects.to(device), chains.to(device)
    k = chains.shape[-1]
    rel_tokens = chains + n_subjects
    emitted = []
    if cot == "interleaved":  # s0 r1 [s1] r2 [s2] ...: emit at the position of each relation
        seq = subjects[..., None]
        for j in range(k):
            seq = torch.cat([seq, rel_tokens[..., j:j + 1]], dim=-1)
            nxt = model(seq, [seq.shape[-1] - 1])[:, :, 0].argmax(-1)  # [E, B]
            emitted.append(nxt)
            seq = torch.cat([seq, nxt[..., None]], dim=-1)
    elif cot == "question_first":  # s0 r1..rk [s1] [s2] ...: emit after the question
        seq = torch.cat([subjects[..., None], rel_tokens], dim=-1)
        for _ in range(k):
            nxt = model(seq, [seq.shape[-1] - 1])[:, :, 0].argmax(-1)
            emitted.append(nxt)
            seq = torch.cat([seq, nxt[..., None]], dim=-1)
    else:
        raise ValueError(f"cot must be 'interleaved' or 'question_first', got {cot!r}")
    return torch.stack(emitted, dim=-1)


@dataclass(frozen=True)
class GenerationScore:
    """Greedy CoT generation scored against the world, per member."""

    chain_accuracy: list[float]  # every emitted subject right
    final_accuracy: list[float]  # the last emitted subject (the answer) right
    step_accuracy: list[list[float]]  # [E][k]: subject j right
    first_error_step: list[list[int]]  # [E][B]: first wrong step (1-based), 0 when the chain is right


@torch.no_grad()
def score_generation(model: Transformer, worlds: list[World], queries: QuerySet, *, chunk: int = 4096
                     ) -> GenerationScore:
    """Generate every chain greedily (``queries`` stacked, one world per member) and score it step by step."""
    outs = []
    for start in range(0, queries.subjects.shape[1], chunk):
        sl = slice(start, start + chunk)
        outs.append(generate_cot(model, queries.subjects[:, sl], queries.chains[:, sl], queries.cot,
                                 n_subjects=worlds[0].n_subjects).cpu())
    emitted = torch.cat(outs, dim=1)  # [E, B, k]
    truth = torch.stack([torch.from_numpy(w.apply(queries.subjects[i].numpy(), queries.chains[i].numpy()))
                         for i, w in enumerate(worlds)])
    right = emitted == truth
    wrong = ~right
    first = torch.where(wrong.any(-1), wrong.float().argmax(-1) + 1, torch.zeros_like(wrong[..., 0], dtype=torch.long))
    return GenerationScore(chain_accuracy=right.all(-1).float().mean(1).tolist(),
                           final_accuracy=right[..., -1].float().mean(1).tolist(),
                           step_accuracy=right.float().mean(1).tolist(), first_error_step=first.long().tolist())
