"""Query formats: where subjects, relations and answers sit in a k-hop sequence (docs/theory.md §1.1).

The full sequences, for start subject ``s_0``, relations ``r_1..r_k`` and ``s_j = f_{r_j}(s_{j-1})``::

    none            s_0 r_1 .. r_k  s_k                      k + 2 tokens
    interleaved     s_0 r_1 s_1 r_2 s_2 .. r_k s_k           2k + 1 tokens
    question_first  s_0 r_1 .. r_k  s_1 .. s_k               2k + 1 tokens

The model's inputs are the full sequence without its last token; the answer to hop j is predicted at the
input position just before ``s_j`` (for ``none``, only ``s_k``). Greedy generation starts from the
prompt (the inputs before the first answer is due), reads the prediction at each answer position and
writes the emitted subject at the next position.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from georecall.config import CotFormat

COT_FORMATS: tuple[str, ...] = typing.get_args(CotFormat)


@dataclass(frozen=True)
class ChainFormat:
    """The layout of k-hop queries in one format (``none``, ``interleaved`` or ``question_first``).

    Positions index the model's inputs (``n_ctx`` of them), 0-based. Build it with :func:`chain_format`.
    """

    cot: str
    n_hops: int

    def __post_init__(self) -> None:
        if self.cot not in COT_FORMATS:
            raise ValueError(f"cot must be one of {COT_FORMATS}, got {self.cot!r}")
        if self.n_hops < 1:
            raise ValueError(f"n_hops must be >= 1, got {self.n_hops}")

    @property
    def is_cot(self) -> bool:
        """True when every intermediate subject is emitted (the model sees its own chain)."""
        return self.cot != "none"

    @property
    def seq_len(self) -> int:
        """Tokens in the full sequence, final answer included: k + 2 direct, 2k + 1 with CoT."""
        return self.n_hops + 2 if self.cot == "none" else 2 * self.n_hops + 1

    @property
    def n_ctx(self) -> int:
        """Input positions per query (the full sequence without its last token)."""
        return self.seq_len - 1

    @property
    def subject_positions(self) -> tuple[int, ...]:
        """Input positions of ``s_0 .. s_{k-1}`` (only ``s_0`` for ``none``)."""
        k = self.n_hops
        if self.cot == "none":
            return (0,)
        if self.cot == "interleaved":
            return tuple(range(0, 2 * k, 2))
        return (0, *range(k + 1, 2 * k))

    @property
    def relation_positions(self) -> tuple[int, ...]:
        """Input positions of ``r_1 .. r_k``."""
        k = self.n_hops
        return tuple(range(1, 2 * k, 2)) if self.cot == "interleaved" else tuple(range(1, k + 1))

    @property
    def hops(self) -> tuple[int, ...]:
        """Hop number (1..k) of each answer position: all k with CoT, only k direct."""
        return tuple(range(1, self.n_hops + 1)) if self.is_cot else (self.n_hops,)

    @property
    def answer_positions(self) -> tuple[int, ...]:
        """Input positions at which the answers of :attr:`hops` are predicted (the one before each ``s_j``)."""
        k = self.n_hops
        if self.cot == "none":
            return (k,)
        if self.cot == "interleaved":
            return self.relation_positions
        return tuple(range(k, 2 * k))

    @property
    def prompt_length(self) -> int:
        """Inputs known before generation: ``s_0 r_1`` (interleaved), ``s_0 r_1 .. r_k`` otherwise."""
        return self.answer_positions[0] + 1

    @property
    def relation_offset(self) -> int:
        """How far each answer position lies after the relation it applies (0 interleaved, k - 1 question-first)."""
        gap = self._offset([self.relation_positions[h - 1] for h in self.hops])
        assert gap is not None  # the same for every hop in every format
        return gap

    @property
    def subject_offset(self) -> int | None:
        """How far each answer position lies after the subject its relation applies to, when that distance
        is the same for every hop (1 interleaved); None when it varies (question-first) or ``s_{k-1}`` is
        not in the sequence (none)."""
        if not self.is_cot:
            return None
        return self._offset(self.subject_positions)

    def _offset(self, sources: list[int] | tuple[int, ...]) -> int | None:
        gaps = {p - q for p, q in zip(self.answer_positions, sources, strict=True)}
        return gaps.pop() if len(gaps) == 1 else None

    def assemble(self, subjects: Any, relations: Any, intermediates: Any = None) -> Any:
        """The input tokens ``[..., n_ctx]`` from start subjects ``[...]``, relation *tokens* ``[..., k]`` and
        intermediate subjects ``s_1 .. s_{k-1}`` ``[..., k-1]`` (ignored, and may be None, for ``none``).

        Takes and returns numpy arrays or torch tensors (the output is of the type, dtype and device of
        ``subjects``).
        """
        shape = (*subjects.shape, self.n_ctx)
        if isinstance(subjects, torch.Tensor):
            out = torch.empty(shape, dtype=subjects.dtype, device=subjects.device)
        else:
            out = np.empty(shape, dtype=np.asarray(subjects).dtype)
        if relations.shape[-1] != self.n_hops:
            raise ValueError(f"expected {self.n_hops} relations, got {relations.shape[-1]}")
        out[..., 0] = subjects
        out[..., list(self.relation_positions)] = relations
        if self.is_cot and self.n_hops > 1:
            if intermediates is None or intermediates.shape[-1] != self.n_hops - 1:
                raise ValueError(f"expected {self.n_hops - 1} intermediate subjects")
            out[..., list(self.subject_positions[1:])] = intermediates
        return out


def chain_format(cot: str, n_hops: int) -> ChainFormat:
    """The :class:`ChainFormat` of ``cot`` queries with ``n_hops`` hops."""
    return ChainFormat(cot=cot, n_hops=n_hops)
