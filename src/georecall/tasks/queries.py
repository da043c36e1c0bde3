"""Query sets: single hop, k hops, and chain-of-thought in both formats (docs/theory.md §1.1).

Worked token examples with N = 4 subjects (ids 0..3) and K = 2 relations (ids 4, 5), k = 2,
subject 1, chain (r_1, r_2) = (0, 1), f_0(1) = 3, f_1(3) = 2:

* direct:          tokens ``[1, 4, 5]``        answer 2 at position 2
* CoT interleaved: tokens ``[1, 4, 3, 5]``     answers 3, 2 at positions 1, 3  (sequence 1 r0 3 r1 2)
* CoT question-1st: tokens ``[1, 4, 5, 3]``    answers 3, 2 at positions 2, 3  (sequence 1 r0 r1 3 2)

The tokens are the model's inputs (the full sequence without its last token); the loss is taken at
the answer positions only, on every emitted subject for CoT (on the final answer alone with
``task.cot_loss = "final"``, a control without intermediate supervision). The layouts are those of
:class:`~georecall.tasks.formats.ChainFormat`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from georecall.config import TaskConfig
from georecall.tasks.formats import ChainFormat, chain_format
from georecall.tasks.world import QUERY_STREAM, World, rng_for

# Above this many queries the index space is sampled digit by digit instead of by index.
_INDEXABLE = 1 << 62


@dataclass(frozen=True, eq=False)
class QuerySet:
    """Queries of one world: B queries, T input positions, P answer positions per query.

    :func:`stack_queries` stacks the sets of an ensemble's worlds; its tensors carry a leading
    member axis (``tokens`` [E, B, T], ``targets`` [E, B, P], ...).
    """

    tokens: torch.Tensor  # [B, T] int64 model inputs
    targets: torch.Tensor  # [B, P] int64 answer token at each answer position
    relations: torch.Tensor  # [B, P] int64 relation applied to produce each answer (0..K-1)
    subjects: torch.Tensor  # [B] int64 start subject s_0
    chains: torch.Tensor  # [B, k] int64 relations r_1..r_k
    positions: tuple[int, ...]  # the P answer positions in ``tokens``
    hops: tuple[int, ...]  # hop number (1..k) of each answer position
    cot: str  # none | interleaved | question_first
    n_total: int  # size of the whole query space, N*K^k
    sampled: bool  # True when the set is a sample of the space, not all of it

    def __len__(self) -> int:
        """Queries per world (B), stacked or not."""
        return self.tokens.shape[-2]

    @property
    def n_ctx(self) -> int:
        return self.tokens.shape[-1]

    @property
    def format(self) -> ChainFormat:
        """The layout of these queries (positions of subjects, relations and answers)."""
        return chain_format(self.cot, self.chains.shape[-1])


def n_query_space(task: TaskConfig) -> int:
    """N*K^k, as an exact Python integer."""
    return task.n_subjects * task.n_relations ** task.n_hops


def context_length(task: TaskConfig) -> int:
    """Input positions per query: k + 1 direct, 2k with chain-of-thought."""
    return chain_format(task.cot, task.n_hops).n_ctx


def resolve_query_count(task: TaskConfig) -> int:
    """How many queries a task asks for, or a ValueError that says why it cannot be served."""
    total = n_query_space(task)
    if task.n_queries is None:
        return min(total, task.max_queries)
    if task.n_queries > task.max_queries:
        raise ValueError(f"the query set asks for {task.n_queries:,} queries, over the memory limit "
                         f"max_queries={task.max_queries:,}")
    if task.n_queries > total:
        raise ValueError(f"the query set asks for {task.n_queries:,} queries but only N*K^k = {total:,} "
                         "distinct queries exist")
    return task.n_queries


#: Peak bytes per query and input position while :func:`make_queries` builds a set: int64 subjects, chains,
#: path, relation tokens and tokens (measured 33-40 B at k = 8-1024, direct queries; CoT sets hold less per
#: token). What grows with the chain length: 2^21 sampled queries of k = 2000 hops are about 160 GB.
QUERY_BYTES_PER_TOKEN = 40


def query_set_bytes(task: TaskConfig) -> int:
    """Bytes :func:`make_queries` allocates at its peak for ``task``'s query set, before building it (pure
    arithmetic: queries x input positions x :data:`QUERY_BYTES_PER_TOKEN`). Raises as
    :func:`resolve_query_count` does."""
    return resolve_query_count(task) * context_length(task) * QUERY_BYTES_PER_TOKEN


def _select(task: TaskConfig, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Start subjects [n] and chains [n, k]: all of them in order, or n distinct ones at random."""
    big_n, k_rel, k = task.n_subjects, task.n_relations, task.n_hops
    total = n_query_space(task)
    if total < _INDEXABLE:
        idx = np.arange(total, dtype=np.int64) if n == total else np.sort(rng.choice(total, size=n, replace=False))
        digits = np.empty((n, k), dtype=np.int64)
        rest = idx
        for j in range(k - 1, -1, -1):  # r_1 is the most significant digit after the subject
            rest, digits[:, j] = np.divmod(rest, k_rel)
        return rest, digits
    # A space too large to index: draw rows digit by digit and drop repeats until n are distinct.
    rows = np.empty((0, k + 1), dtype=np.int64)
    while len(rows) < n:
        need = n - len(rows)
        new = np.concatenate([rng.integers(0, big_n, (need, 1)), rng.integers(0, k_rel, (need, k))], axis=1)
        rows = np.unique(np.concatenate([rows, new]), axis=0)
    rows = rows[rng.permutation(len(rows))[:n]]
    return rows[:, 0], rows[:, 1:]


def make_queries(world: World, task: TaskConfig, *, seed: int = 0) -> QuerySet:
    """The query set of ``task`` over ``world``; sampling (when the space is too big) draws from ``seed``."""
    if (world.n_subjects, world.n_relations) != (task.n_subjects, task.n_relations):
        raise ValueError(f"world has N={world.n_subjects}, K={world.n_relations} but the task asks for "
                         f"N={task.n_subjects}, K={task.n_relations}")
    if world.attributes != task.attributes:
        raise ValueError(f"world has {world.attributes} attributes, the task asks for {task.attributes}")
    n = resolve_query_count(task)
    total = n_query_space(task)
    subjects, chains = _select(task, n, rng_for(seed, QUERY_STREAM))
    path = world.apply(subjects, chains)  # [n, k]: s_1..s_k
    vocab = world.vocab
    rel_tok = chains + vocab.n_subjects
    fmt = chain_format(task.cot, task.n_hops)
    tokens = fmt.assemble(subjects, rel_tok, path[:, :-1])
    positions, hops = fmt.answer_positions, fmt.hops
    if fmt.is_cot and task.cot_loss == "final":  # no intermediate supervision: the final answer only
        targets, relations = path[:, -1:], chains[:, -1:]
        positions, hops = positions[-1:], hops[-1:]
    elif fmt.is_cot:
        targets, relations = path, chains
    else:
        answer = path[:, -1:]
        if task.attributes == "disjoint":
            answer = vocab.attribute_offset + chains[:, -1:] * vocab.attributes_per_relation + answer
        targets, relations = answer, chains[:, -1:]

    def t(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a, dtype=np.int64))

    return QuerySet(tokens=t(tokens), targets=t(targets), relations=t(relations), subjects=t(subjects),
                    chains=t(chains), positions=positions, hops=hops, cot=task.cot, n_total=total,
                    sampled=n < total)


def stack_queries(sets: list[QuerySet]) -> QuerySet:
    """One set whose tensors have a leading member axis, from per-member sets of one shape."""
    first = sets[0]
    if any((len(q), q.positions, q.cot) != (len(first), first.positions, first.cot) for q in sets):
        raise ValueError("query sets of different shapes cannot be stacked")
    return QuerySet(tokens=torch.stack([q.tokens for q in sets]), targets=torch.stack([q.targets for q in sets]),
                    relations=torch.stack([q.relations for q in sets]),
                    subjects=torch.stack([q.subjects for q in sets]), chains=torch.stack([q.chains for q in sets]),
                    positions=first.positions, hops=first.hops, cot=first.cot, n_total=first.n_total,
                    sampled=first.sampled)
