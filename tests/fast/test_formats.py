"""The CoT format object: one layout, used alike by query building, greedy generation and construction scoring."""

from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from georecall.config import ModelConfig, TaskConfig
from georecall.constructions.base import _own_tokens
from georecall.constructions.cot import build_cot
from georecall.model import Transformer, generate_cot
from georecall.tasks import COT_FORMATS, ChainFormat, World, chain_format, context_length, make_queries, make_world

CHAIN_FORMATS = ("interleaved", "question_first")
HOPS = (1, 2, 3, 5)

# The worked example of georecall.tasks.queries: N = 4, K = 2, k = 2, subject 1, chain (0, 1),
# f_0(1) = 3, f_1(3) = 2. Inputs and answer positions per format.
DOC_WORLD = World(np.array([[0, 3, 1, 2], [1, 0, 3, 2]]))
DOC_EXAMPLE = {
    "none": ([1, 4, 5], (2,), [2]),
    "interleaved": ([1, 4, 3, 5], (1, 3), [3, 2]),
    "question_first": ([1, 4, 5, 3], (2, 3), [3, 2]),
}


@pytest.mark.parametrize("cot", COT_FORMATS)
def test_layout_reproduces_the_documented_example(cot: str) -> None:
    tokens, positions, targets = DOC_EXAMPLE[cot]
    fmt = chain_format(cot, 2)
    assert fmt.assemble(np.array([1]), np.array([[4, 5]]), np.array([[3]]))[0].tolist() == tokens
    assert fmt.answer_positions == positions and fmt.n_ctx == len(tokens)
    # The query builder produces the same sequence for the same world.
    q = make_queries(DOC_WORLD, TaskConfig(n_subjects=4, n_relations=2, n_hops=2, cot=cot))
    i = [s == 1 and c == [0, 1] for s, c in zip(q.subjects.tolist(), q.chains.tolist(), strict=True)].index(True)
    assert q.tokens[i].tolist() == tokens and q.targets[i].tolist() == targets and q.positions == positions


@pytest.mark.parametrize("k", HOPS)
def test_layouts_for_several_hops(k: int) -> None:
    none, a, b = (chain_format(c, k) for c in COT_FORMATS)
    assert (none.seq_len, a.seq_len, b.seq_len) == (k + 2, 2 * k + 1, 2 * k + 1)
    # none: s0 r1..rk -> s_k
    assert none.subject_positions == (0,) and none.relation_positions == tuple(range(1, k + 1))
    assert none.answer_positions == (k,) and none.hops == (k,) and none.prompt_length == k + 1
    # interleaved: s0 r1 s1 r2 ... r_k -> answers at each r_j
    assert a.subject_positions == tuple(range(0, 2 * k, 2)) and a.relation_positions == tuple(range(1, 2 * k, 2))
    assert a.answer_positions == a.relation_positions and a.prompt_length == 2
    assert (a.relation_offset, a.subject_offset) == (0, 1)
    # question_first: s0 r1..rk s1..s_{k-1} -> answers from position k on
    assert b.subject_positions == (0, *range(k + 1, 2 * k)) and b.relation_positions == tuple(range(1, k + 1))
    assert b.answer_positions == tuple(range(k, 2 * k)) and b.prompt_length == k + 1
    assert b.relation_offset == k - 1 and b.subject_offset == (1 if k == 1 else None)
    for fmt in (a, b):
        assert fmt.hops == tuple(range(1, k + 1))
        # Every input is a subject or a relation; generation reads at an answer and writes right after it.
        assert sorted(fmt.subject_positions + fmt.relation_positions) == list(range(fmt.n_ctx))
        assert [p + 1 for p in fmt.answer_positions[:-1]] == list(fmt.subject_positions[1:])
        assert fmt.answer_positions[-1] == fmt.n_ctx - 1
    for fmt in (none, a, b):
        assert fmt.n_ctx == context_length(TaskConfig(n_subjects=4, n_relations=2, n_hops=k, cot=fmt.cot))


def test_assemble_takes_numpy_and_torch_alike() -> None:
    fmt = chain_format("question_first", 3)
    s, r, mid = np.array([[1, 2]]), np.array([[[5, 6, 5], [6, 6, 5]]]), np.array([[[0, 3], [2, 1]]])
    out = fmt.assemble(torch.from_numpy(s), torch.from_numpy(r), torch.from_numpy(mid))
    assert isinstance(out, torch.Tensor) and out.shape == (1, 2, 6)
    assert out.tolist() == fmt.assemble(s, r, mid).tolist() == [[[1, 5, 6, 5, 0, 3], [2, 6, 6, 5, 2, 1]]]


def test_rejects_bad_formats() -> None:
    with pytest.raises(ValueError, match="cot"):
        chain_format("A", 2)
    with pytest.raises(ValueError, match="n_hops"):
        ChainFormat("interleaved", 0)
    with pytest.raises(ValueError, match="relations"):
        chain_format("interleaved", 2).assemble(np.array([0]), np.array([[4]]), np.array([[1]]))
    with pytest.raises(ValueError, match="intermediate"):
        chain_format("interleaved", 2).assemble(np.array([0]), np.array([[4, 5]]))


@pytest.mark.parametrize("cot", COT_FORMATS)
@pytest.mark.parametrize("k", HOPS)
def test_query_building_follows_the_format(cot: str, k: int) -> None:
    n = 5
    world = make_world(n, 2, seed=k)
    q = make_queries(world, TaskConfig(n_subjects=n, n_relations=2, n_hops=k, cot=cot))
    fmt = q.format
    assert fmt == chain_format(cot, k)
    assert q.positions == fmt.answer_positions and q.hops == fmt.hops and q.n_ctx == fmt.n_ctx
    path = world.apply(q.subjects.numpy(), q.chains.numpy())
    assert np.array_equal(q.tokens.numpy(), fmt.assemble(q.subjects.numpy(), q.chains.numpy() + n, path[:, :-1]))
    assert np.array_equal(q.tokens[:, list(fmt.relation_positions)].numpy(), q.chains.numpy() + n)
    if fmt.is_cot:  # the token after each answer position is that answer
        nxt = [p + 1 for p in fmt.answer_positions[:-1]]
        assert torch.equal(q.tokens[:, nxt], q.targets[:, :-1])


class _Oracle:
    """A stand-in model that emits the true chain and records where it is asked to read."""

    def __init__(self, tokens: torch.Tensor, targets: torch.Tensor, d_vocab: int, wrong: int | None = None):
        self.n_members, self.embed = 1, SimpleNamespace(W_E=torch.zeros(1))
        self.tokens, self.targets, self.d_vocab, self.wrong = tokens, targets, d_vocab, wrong
        self.calls: list[tuple[int, int]] = []
        self.prefixes: list[torch.Tensor] = []

    def __call__(self, seq: torch.Tensor, positions: list[int]) -> torch.Tensor:
        (pos,) = positions
        self.calls.append((seq.shape[-1], pos))
        self.prefixes.append(seq.clone())
        j = len(self.calls) - 1
        out = self.targets[..., j] if self.wrong is None else torch.full_like(self.targets[..., j], self.wrong)
        return torch.nn.functional.one_hot(out, self.d_vocab).float()[:, :, None]  # [E, B, 1, V]


@pytest.mark.parametrize("cot", CHAIN_FORMATS)
@pytest.mark.parametrize("k", HOPS)
def test_generation_reads_and_writes_where_the_format_says(cot: str, k: int) -> None:
    n = 6
    q = make_queries(make_world(n, 2, seed=0), TaskConfig(n_subjects=n, n_relations=2, n_hops=k, cot=cot))
    fmt = q.format
    oracle = _Oracle(q.tokens[None], q.targets[None], n + 2)
    emitted = generate_cot(oracle, q.subjects, q.chains, cot, n_subjects=n)
    assert torch.equal(emitted[0], q.targets)
    assert oracle.calls == [(p + 1, p) for p in fmt.answer_positions]
    assert oracle.calls[0][0] == fmt.prompt_length
    for (length, _), seen in zip(oracle.calls, oracle.prefixes, strict=True):  # the true inputs, in order
        assert torch.equal(seen[0], q.tokens[:, :length])
    # A model that always says 0 finds its own 0s at the subject positions, and nothing else changed.
    stuck = _Oracle(q.tokens[None], q.targets[None], n + 2, wrong=0)
    assert (generate_cot(stuck, q.subjects, q.chains, cot, n_subjects=n) == 0).all()
    last = stuck.prefixes[-1][0]
    expect = q.tokens.clone()
    expect[:, list(fmt.subject_positions[1:])] = 0
    assert torch.equal(last, expect[:, : last.shape[-1]])


def _reference_generate(model: Transformer, subjects: torch.Tensor, chains: torch.Tensor, cot: str,
                        n_subjects: int) -> torch.Tensor:
    """Greedy generation written out per format, as georecall had it before the format object."""
    subjects, chains = subjects.expand(model.n_members, -1), chains.expand(model.n_members, -1, -1)
    rel, emitted = chains + n_subjects, []
    seq = subjects[..., None] if cot == "interleaved" else torch.cat([subjects[..., None], rel], dim=-1)
    for j in range(chains.shape[-1]):
        if cot == "interleaved":
            seq = torch.cat([seq, rel[..., j:j + 1]], dim=-1)
        nxt = model(seq, [seq.shape[-1] - 1])[:, :, 0].argmax(-1)
        emitted.append(nxt)
        seq = torch.cat([seq, nxt[..., None]], dim=-1)
    return torch.stack(emitted, dim=-1)


@pytest.mark.parametrize("cot", CHAIN_FORMATS)
def test_generation_equals_the_per_format_reference_on_a_random_model(cot: str) -> None:
    n, k = 7, 4
    q = make_queries(make_world(n, 3, seed=1), TaskConfig(n_subjects=n, n_relations=3, n_hops=k, cot=cot,
                                                          n_queries=64))
    model = Transformer(ModelConfig(d_model=16, n_heads=2, d_mlp=16, n_layers=2), d_vocab=n + 3,
                        n_ctx=chain_format(cot, k).n_ctx, n_members=2, seeds=[0, 1]).eval()
    got = generate_cot(model, q.subjects, q.chains, cot, n_subjects=n)
    assert got.shape == (2, 64, k)
    assert torch.equal(got, _reference_generate(model, q.subjects, q.chains, cot, n))


@pytest.mark.parametrize("cot", CHAIN_FORMATS)
def test_construction_scoring_follows_the_format(cot: str) -> None:
    k = 3
    c = build_cot(make_world(8, 2, seed=0), k, fmt=cot)
    fmt = chain_format(cot, k)
    assert c.dims["n_ctx"] == fmt.seq_len == c.model.n_ctx
    q = make_queries(c.world, c.task)
    sl = slice(0, len(q))
    assert torch.equal(_own_tokens(q, sl, q.targets), q.tokens)  # the true chain: the query itself
    own = _own_tokens(q, sl, torch.full_like(q.targets, 7))
    changed = sorted({p for p in range(fmt.n_ctx) if not torch.equal(own[:, p], q.tokens[:, p])})
    assert set(changed) <= set(fmt.subject_positions[1:]) and (own[:, list(fmt.subject_positions[1:])] == 7).all()
    emitted = generate_cot(c.model, q.subjects, q.chains, cot, n_subjects=8)[0]
    assert torch.equal(emitted, q.targets)


def test_constructions_and_model_do_not_import_training() -> None:
    code = ("import sys\n"
            "import georecall.model\n"
            "assert 'georecall.training' not in sys.modules, 'georecall.model imported training'\n"
            "import georecall.constructions\n"
            "assert 'georecall.training' not in sys.modules, 'georecall.constructions imported training'\n")
    subprocess.run([sys.executable, "-c", code], check=True)
