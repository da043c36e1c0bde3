"""Shared pieces of the hand-built models: codes, residual layouts, a zeroed model, the record, scoring.

Every construction returns a :class:`Construction`: a :class:`~georecall.model.Transformer` (E = 1)
whose weights are set by formula (never trained), the world it answers, and its dimensions and
dense parameter counts beside the theory's formulas. Column convention of docs/theory.md §1.2 is translated to
TransformerLens orientation here (``W_E[v] = E[:, v]``, ``W_Q[h] = (W_Q^h)^T`` and so on).
"""

from __future__ import annotations

import copy
import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from georecall.config import ModelConfig, TaskConfig
from georecall.model import Transformer
from georecall.model.generate import generate_cot
from georecall.tasks import QuerySet, World, context_length, make_queries, n_query_space, resolve_query_count
from georecall.tasks.queries import QUERY_BYTES_PER_TOKEN, query_set_bytes

PARAM_GROUPS = ("embedding", "positional", "attention", "mlp", "unembedding")


def n_bits(n: int) -> int:
    """``m = ceil(log2 n)``, at least 1 (docs/theory.md §1.3)."""
    return max(1, math.ceil(math.log2(n))) if n > 1 else 1


def bits(values: np.ndarray | int, m: int) -> np.ndarray:
    """Binary digits, least significant first: ``[..., m]`` of 0/1 floats."""
    v = np.asarray(values, dtype=np.int64)
    return ((v[..., None] >> np.arange(m)) & 1).astype(np.float64)


def signs(values: np.ndarray | int, m: int) -> np.ndarray:
    """The ±1 code ``c(a) = 2 b(a) - 1``: ``[..., m]``."""
    return 2 * bits(values, m) - 1


class Layout:
    """Named blocks of residual coordinates, allocated in order: ``lay.add("S", K*m)``, ``lay["S"]``."""

    def __init__(self) -> None:
        self.blocks: dict[str, slice] = {}
        self.size = 0

    def add(self, name: str, width: int) -> slice:
        if name in self.blocks:
            raise ValueError(f"block {name!r} allocated twice")
        self.blocks[name] = slice(self.size, self.size + width)
        self.size += width
        return self.blocks[name]

    def __getitem__(self, name: str) -> slice:
        return self.blocks[name]

    def index(self, name: str, i: int = 0) -> int:
        """Coordinate ``i`` of block ``name``."""
        sl = self.blocks[name]
        if not 0 <= i < sl.stop - sl.start:
            raise IndexError(f"coordinate {i} outside block {name!r} of width {sl.stop - sl.start}")
        return sl.start + i


def zero_model(*, d_model: int, d_vocab: int, n_ctx: int, n_layers: int = 1, n_heads: int = 1, d_head: int = 1,
               d_mlp: int = 1, d_mlp2: int | None = None, attn_only: bool = False, tie_unembed: bool = False,
               dtype: torch.dtype = torch.float32) -> Transformer:
    """A one-member model of the constructions' class (no LayerNorm, no attention biases, unscaled scores)
    with every parameter zero, ready for weights by formula. ``tie_unembed`` makes the readout ``W_E^T``."""
    cfg = ModelConfig(d_model=d_model, n_layers=n_layers, n_heads=n_heads, d_head=d_head, d_mlp=d_mlp,
                      d_mlp2=d_mlp2, attn_only=attn_only, layernorm=False, attn_bias=False, attn_scale=1.0,
                      tie_unembed=tie_unembed)
    model = Transformer(cfg, d_vocab=d_vocab, n_ctx=n_ctx, n_members=1)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
    return model.to(dtype).eval()


def dense_attention_count(d_model: int, heads: list[tuple[int, int]]) -> int:
    """the theory's dense attention count: sum over heads of ``2 d_k d + 2 d_v d`` (unpadded heads)."""
    return sum(2 * dk * d_model + 2 * dv * d_model for dk, dv in heads)


def dense_mlp_count(d_model: int, widths: list[int]) -> int:
    """Dense MLP count with biases: ``w1 d + w1`` (+ ``w2 w1 + w2``) ``+ d w_last + d``."""
    dims = [d_model, *widths]
    total = sum(a * b + b for a, b in zip(dims[:-1], dims[1:], strict=True))
    return total + widths[-1] * d_model + d_model


SubjectCode = Literal["bits", "signs"]
ReadoutKind = Literal["fixed", "learned", "tied"]


@dataclass(frozen=True, eq=False)
class Anatomy:
    """Where a construction keeps its facts, its codes and its gates: the ground truth for ``georecall.analysis``.

    * ``readout``: ``fixed`` (``W_U`` is fact-free), ``learned`` (``W_U`` holds facts) or ``tied`` (``W_U = W_E^T``).
    * ``content_bits``: docs/theory.md §6.6's split of the stored bits, ``{"P": ..., "B_e": ...}``.
    * ``fact_dependent``: the parameters (state-dict names, row ranges in brackets) that depend on the facts.
    * ``layout``: the named residual blocks; ``subject_blocks[r]`` is the block ``S_r`` in which subject s
      holds the code of ``f_r(s)`` (empty when the facts are not stored per relation in ``e_s``).
    * ``subject_code``: how ``S_r`` encodes attribute a: ``bits`` (0/1 ``b(code)``) or ``signs`` (±1 ``c(code)``),
      with ``code = r * code_offset + a``; None when no block holds a per-relation code.
    * ``gate_hook`` and ``gate_units[r]``: the hook site of the MLP's relation-gated units and the units
      of relation r (hidden-unit indices); None / empty without an MLP selector.
    * ``edits``: the facts changed by :func:`~georecall.constructions.single_hop.edit_fact`, in order.
    """

    readout: ReadoutKind
    content_bits: dict[str, int]
    fact_dependent: tuple[str, ...]
    layout: Layout | None = None
    subject_code: SubjectCode | None = None
    code_offset: int = 0
    gate_hook: str | None = None
    gate_units: tuple[tuple[int, ...], ...] = ()
    edits: tuple[tuple[int, int, int], ...] = ()
    note: str = ""  # anything else a reader of the counts needs (e.g. where a tied readout is counted)

    def __post_init__(self) -> None:
        if self.readout not in ("fixed", "learned", "tied"):
            raise ValueError(f"readout must be 'fixed', 'learned' or 'tied', got {self.readout!r}")
        if set(self.content_bits) != {"P", "B_e"}:
            raise ValueError(f"content_bits needs exactly the keys P and B_e, got {sorted(self.content_bits)}")
        if self.subject_code not in (None, "bits", "signs"):
            raise ValueError(f"subject_code must be 'bits', 'signs' or None, got {self.subject_code!r}")
        if self.subject_code is not None and not self.subject_blocks:
            raise ValueError("a subject_code needs a layout with blocks S_0 .. S_{K-1}")
        if (self.gate_hook is None) != (not self.gate_units):
            raise ValueError("gate_hook and gate_units go together (both set or both empty)")
        # Store tuples whatever sequences were passed, so the record stays immutable and hashable in parts.
        object.__setattr__(self, "fact_dependent", tuple(self.fact_dependent))
        object.__setattr__(self, "gate_units", tuple(tuple(int(u) for u in units) for units in self.gate_units))
        object.__setattr__(self, "edits", tuple(tuple(int(x) for x in e) for e in self.edits))

    @property
    def subject_blocks(self) -> tuple[slice, ...]:
        """``S_0 .. S_{K-1}`` when the layout has them, else ()."""
        if self.layout is None:
            return ()
        out, r = [], 0
        while f"S_{r}" in self.layout.blocks:
            out.append(self.layout[f"S_{r}"])
            r += 1
        return tuple(out)

    @property
    def blocks(self) -> dict[str, tuple[int, int]]:
        """Every residual block as ``(start, stop)``."""
        return {} if self.layout is None else {k: (v.start, v.stop) for k, v in self.layout.blocks.items()}


def subject_anatomy(lay: Layout, code: SubjectCode, b_e: int, *, code_offset: int = 0, gate_hook: str | None = None,
                    gate_units: tuple[tuple[int, ...], ...] = ()) -> Anatomy:
    """The anatomy of a build whose facts sit only in the subject blocks ``S_r`` of ``W_E`` (fixed readout).

    ``b_e`` is the content in bits per subject embedding (docs/theory.md §6.6), ``code`` how ``S_r`` holds
    ``code_offset * r + f_r(s)``, ``gate_units[r]`` the MLP's hidden units at ``gate_hook`` gated by relation r.
    """
    return Anatomy(readout="fixed", content_bits={"P": 0, "B_e": b_e}, fact_dependent=("embed.W_E[:N]",),
                   layout=lay, subject_code=code, code_offset=code_offset, gate_hook=gate_hook,
                   gate_units=gate_units)



@dataclass(frozen=True, eq=False)
class Construction:
    """A hand-built model and what it claims.

    ``params`` are dense minimal counts of the unpadded build (heads with their own ``d_k``, ``d_v``),
    ``formula`` the theory's closed forms for the same groups; tests assert they agree. ``anatomy``
    says where the build keeps its facts, codes and gates (:class:`Anatomy`).
    """

    name: str
    model: Transformer  # E = 1, weights by formula
    world: World
    task: TaskConfig  # the queries it answers (hops, CoT format, attribute kind)
    theorem: str  # e.g. "Theorem 4.1 (docs/theory.md §2.2)"
    dims: dict[str, Any]  # d_model, mlp_widths, n_layers, heads [(d_k, d_v)] per layer, beta, n_ctx, ...
    params: dict[str, int]  # embedding / positional / attention / mlp / unembedding / total
    formula: dict[str, int]  # the same groups from the theory's formulas
    anatomy: Anatomy  # where the facts, codes and gates are (the ground truth for georecall.analysis)


def make_counts(**groups: int) -> dict[str, int]:
    """A counts dict with every group of :data:`PARAM_GROUPS` (missing ones 0) and their total."""
    unknown = set(groups) - set(PARAM_GROUPS)
    if unknown:
        raise ValueError(f"unknown parameter groups {sorted(unknown)}")
    out = {g: int(groups.get(g, 0)) for g in PARAM_GROUPS}
    out["total"] = sum(out.values())
    return out


# ---------------------------------------------------------------------------------------------------
# Precision guard (docs/theory.md §7)


def check_precision(device: torch.device | str, dtype: torch.dtype = torch.float32) -> None:
    """Refuse to evaluate constructions under TF32 matmuls or autocast: both break the positional pointer.

    Measured on a GPU (docs/theory.md §7): CoT format A at N = 257, K = 5, k = 24 scored 0.2 % with TF32 on and
    0 % under bf16 autocast already at k = 12. Run in float32 with TF32 off, or in float64 (which TF32
    settings do not touch). Only matmul settings matter: ``cudnn.allow_tf32`` governs convolutions.
    """
    dev = torch.device(device)
    if torch.is_autocast_enabled(dev.type):
        raise RuntimeError(f"constructions must not run under autocast ({dev.type}); "
                           "their softmax pointers need float32 or float64")
    if dtype != torch.float32:
        return
    if torch.get_float32_matmul_precision() != "highest":
        raise RuntimeError("constructions need exact float32 matmuls, but TF32/bf16 matmuls are on "
                           f"(torch.get_float32_matmul_precision() is {torch.get_float32_matmul_precision()!r}); "
                           "set it to 'highest' or use float64")
    if dev.type == "cuda" and torch.backends.cuda.matmul.allow_tf32:
        raise RuntimeError("constructions need exact float32 matmuls, but TF32 is enabled "
                           "(torch.backends.cuda.matmul.allow_tf32); turn it off or use float64")


# ---------------------------------------------------------------------------------------------------
# Scoring on every query


@dataclass(frozen=True)
class ConstructionScore:
    """Argmax accuracy over the whole vocabulary on the scored queries, and the smallest logit margin."""

    accuracy: float  # direct: answer right; CoT: whole greedy chain right
    n_queries: int
    n_query_space: int  # N*K^k; n_queries < n_query_space when the space was sampled
    min_margin: float  # min over queries (and CoT steps) of logit(right) - max logit(any other token)
    n_wrong: int


class _SparseReadout:
    """The unembedding restricted to the residual coordinates it reads, scored on distinct rows only.

    Constructions read the answer from one block (``m`` of ``d`` coordinates), and many queries end in
    the same final vector (the selector's is a function of the answer alone). Scoring therefore keeps
    the used coordinates, deduplicates the rows, and takes the top two logits of each distinct row in
    chunks of at most ``2^25`` logits, never writing the ``[queries, V]`` logits. Skipped terms are
    exact zeros and equal rows have equal logits, so the result is that of the full readout.
    """

    def __init__(self, model: Transformer) -> None:
        w_u = model.W_U[0]  # [d, V]
        self.used = (w_u != 0).any(dim=1).nonzero().squeeze(1)
        self.w = w_u[self.used].contiguous()  # [d_used, V]
        self.b = model.unembed.b_U[0]  # [V]
        self.ln_final = model.ln_final

    def project(self, resid: torch.Tensor) -> torch.Tensor:
        """``[b, P, d] -> [b, P, d_used]``."""
        return self.ln_final(resid[None])[0][..., self.used]

    def score(self, x: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Correctness (argmax is the target, no tie) and margin ``logit(target) - max other``.

        ``x`` [n, d_used], ``targets`` [n] -> [n] bool, [n] float.
        """
        rows, inverse = torch.unique(x, dim=0, return_inverse=True)  # [u, d_used], [n]
        step = max(1, (1 << 25) // self.w.shape[1])
        top_v, top_i = [], []
        for start in range(0, rows.shape[0], step):
            v, i = (rows[start:start + step] @ self.w + self.b).topk(2, dim=-1)  # [c, 2]
            top_v.append(v)
            top_i.append(i[:, 0])
        v = torch.cat(top_v)[inverse]  # [n, 2]
        best = torch.cat(top_i)[inverse]  # [n]
        hit = best == targets
        ok = hit & (v[:, 0] > v[:, 1])
        # Margin: top1 - top2 when the target is on top, else (target logit) - top1 < = 0.
        target_logit = (x * self.w[:, targets].T).sum(-1) + self.b[targets]
        margin = torch.where(hit, v[:, 0] - v[:, 1], target_logit - v[:, 0])
        return ok, margin


#: Bytes one scoring chunk's forward may hold: :func:`score_construction` shrinks its chunk of queries to stay
#: under it (every size of the README's table keeps its 4096-query chunk; kv-memory at N = 1000, K = 4 needs 1 GB).
FORWARD_BYTES = 2 << 30


def forward_bytes_per_query(n_ctx: int, d_model: int, n_heads: int, mlp_width: int, d_vocab: int,
                            itemsize: int) -> int:
    """Peak activation bytes of one query's forward over ``n_ctx`` positions (pure arithmetic, an upper bound).

    Attention scores, mask and softmax: 4 H T^2 (measured 2.7-3.4 H T^2, kv-memory at T = 257, 513); the MLP's
    pre- and post-activations: 2 T w (measured 1.95 T w at w = 8028); residual and projections: 8 T d; one
    position's logits over the vocabulary (greedy CoT generation): 2 V. The T^2 term is what grows with hops.
    """
    return itemsize * (n_ctx * (4 * n_heads * n_ctx + 2 * mlp_width + 8 * d_model) + 2 * d_vocab)


@dataclass(frozen=True)
class ScoringMemory:
    """What scoring a construction allocates at its peak, estimated before anything is allocated (bytes)."""

    n_queries: int  # queries scored
    n_ctx: int  # input positions per query
    query_set: int  # the query set, at make_queries' peak (:func:`georecall.tasks.queries.query_set_bytes`)
    chunk: int  # queries per forward pass
    forward: int  # one chunk's activations (:func:`forward_bytes_per_query`)

    @property
    def total(self) -> int:
        return self.query_set + self.forward


def scoring_memory(task: TaskConfig, *, d_model: int, n_heads: int, mlp_width: int, d_vocab: int, itemsize: int,
                   chunk: int = 4096) -> ScoringMemory:
    """The memory :func:`score_construction` needs for ``task``'s queries (``task.n_queries`` of them, or all up
    to ``task.max_queries``) through a model of these sizes (``mlp_width``: one layer's hidden units, all its
    hidden layers together). Pure arithmetic; a query count that cannot be served raises ValueError."""
    n = resolve_query_count(task)
    per = forward_bytes_per_query(context_length(task), d_model, n_heads, mlp_width, d_vocab, itemsize)
    fits = max(1, min(chunk, n, FORWARD_BYTES // per))
    return ScoringMemory(n_queries=n, n_ctx=context_length(task), query_set=query_set_bytes(task), chunk=fits,
                         forward=fits * per)


def check_scoring_memory(mem: ScoringMemory, what: str, limit: int | None) -> None:
    """Raise ValueError, naming the estimate, its parts, the limit and how many queries would fit, when scoring
    needs more than ``limit`` bytes (None: no limit known)."""
    from georecall.machine import human

    if limit is None or mem.total <= limit:
        return
    fit = (limit - mem.forward) // (mem.n_ctx * QUERY_BYTES_PER_TOKEN)
    hint = (f"score a sample with --n-queries (at most about {fit:,} fit; the time grows as queries x k x T^2) "
            "or use fewer hops" if fit >= 1 else "not even one query fits; use fewer hops")
    raise ValueError(f"scoring {what} needs about {human(mem.total)} of memory ({mem.n_queries:,} queries of "
                     f"{mem.n_ctx:,} tokens: {human(mem.query_set)}; {mem.chunk:,} at a time through the model: "
                     f"{human(mem.forward)}), more than this machine has ({human(limit)}); {hint}")


def model_scoring_memory(c: Construction, task: TaskConfig, chunk: int = 4096) -> ScoringMemory:
    """:func:`scoring_memory` with the sizes of the built model ``c.model``."""
    cfg = c.model.cfg
    widths = (cfg.d_mlp + (cfg.d_mlp2 or 0)) if not cfg.attn_only else 0
    return scoring_memory(task, d_model=cfg.d_model, n_heads=cfg.n_heads, mlp_width=widths,
                          d_vocab=c.model.d_vocab, itemsize=c.model.embed.W_E.dtype.itemsize, chunk=chunk)


@torch.no_grad()
def score_construction(c: Construction, *, n_queries: int | None = None, chunk: int = 4096,
                       device: str | torch.device = "cpu", seed: int = 0) -> ConstructionScore:
    """Run ``c`` on all its queries (or ``n_queries`` sampled from ``seed``) and score the argmax.

    Direct queries are scored at the answer position; CoT queries by greedy generation, where every
    emitted subject must be right and the margin is taken at every step along the model's own chain.
    Argmax is over the whole vocabulary. Memory is bounded: ``chunk`` queries go through the model at
    once (fewer where one chunk's activations would pass :data:`FORWARD_BYTES`: long chains), and the readout
    never holds more than 2^25 logits (:class:`_SparseReadout`). A query set and chunk that together would
    not fit in this machine's memory (:func:`scoring_memory`) raise ValueError before anything is allocated.
    """
    from georecall.machine import available_bytes

    dtype = c.model.embed.W_E.dtype
    check_precision(device, dtype)
    task = c.task if n_queries is None else dataclasses.replace(c.task, n_queries=n_queries)
    mem = model_scoring_memory(c, task, chunk)
    check_scoring_memory(mem, f"{c.name} at N={task.n_subjects}, K={task.n_relations}, k={task.n_hops}",
                         available_bytes())
    chunk = mem.chunk
    queries: QuerySet = make_queries(c.world, task, seed=seed)
    # nn.Module.to moves in place: score a copy when the device differs, so ``c`` stays where it was.
    model = c.model if c.model.embed.W_E.device == torch.device(device) else copy.deepcopy(c.model).to(device)
    readout = _SparseReadout(model)
    n = len(queries)
    block = max(chunk, (1 << 22) // len(queries.positions))  # queries per dedup-and-score block
    n_right, min_margin = 0, math.inf
    for block_start in range(0, n, block):
        xs, oks = [], []
        for start in range(block_start, min(n, block_start + block), chunk):
            sl = slice(start, min(start + chunk, block_start + block))
            if not queries.format.is_cot:
                tokens = queries.tokens[sl].to(device)
                oks.append(torch.ones(tokens.shape[0], dtype=torch.bool, device=device))
            else:
                emitted = generate_cot(model, queries.subjects[sl], queries.chains[sl], c.task.cot,
                                       n_subjects=c.world.n_subjects)[0]  # [b, k]
                # Score every emitted position along the model's own chain, against the world.
                tokens = _own_tokens(queries, sl, emitted.cpu()).to(device)
                oks.append((emitted == queries.targets[sl].to(device)).all(-1))
            xs.append(readout.project(model.residual(tokens)[0][:, list(queries.positions)]))  # [b, P, d_used]
        x = torch.cat(xs)  # [b, P, d_used]
        targets = queries.targets[block_start:block_start + x.shape[0]].to(device)  # [b, P]
        ok, margin = readout.score(x.flatten(0, 1), targets.flatten())
        ok = ok.view(targets.shape).all(-1) & torch.cat(oks)
        n_right += int(ok.sum())
        min_margin = min(min_margin, float(margin.min()))
    return ConstructionScore(accuracy=n_right / n, n_queries=n, n_query_space=n_query_space(c.task),
                             min_margin=min_margin, n_wrong=n - n_right)


def _own_tokens(queries: QuerySet, sl: slice, emitted: torch.Tensor) -> torch.Tensor:
    """The CoT input sequence with the model's emitted subjects ``s_1 .. s_{k-1}`` in place of the true ones."""
    tokens = queries.tokens[sl].clone()
    tokens[:, list(queries.format.subject_positions[1:])] = emitted[:, :-1]
    return tokens
