"""Scoring an ensemble on its queries: accuracy overall, per relation and per hop; greedy CoT chains.

Greedy generation itself lives in :mod:`georecall.model.generate` (``generate_cot`` is re-exported here).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from georecall.model import Transformer
from georecall.model.generate import generate_cot
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
