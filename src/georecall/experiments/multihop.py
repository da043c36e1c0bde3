"""``multihop``: the capacity–depth trade-off, trained — the smallest model that answers k-hop chains.

Claim (docs/theory.md §4–§6, paper §4.2–4.4): without chain-of-thought a depth-k transformer must pay for
k hops in embedding bits or in fact-dependent weights (Theorem 4.2's bound; Theorem 4.3's key-value
and pre-computation constructions), while with chain-of-thought one layer of constant size answers
every k (Theorem 4.4). This module trains, for k in ``hops``, a grid of widths ``d_model`` x
``d_mlp`` under four labelled conditions and reports the smallest model that reaches the target
accuracy for each (k, condition):

* ``direct-frozen``: no CoT, a depth-k model (``n_layers = k``) whose unembedding ``W_U, b_U`` is
  frozen at a random, fact-independent init (``unembed_init_std``). This is the bound's class
  (docs/theory.md §6.5: readout fixed before the facts are drawn).
* ``direct-learned``: the same with a learned untied readout — a separate condition, outside the
  fixed-readout class (a learned readout can hold backward codes, the meet-in-the-middle model).
* ``cot-frozen`` / ``cot-learned``: interleaved chain-of-thought (``s r1 s1 r2 s2 ...``) with a
  one-layer model, frozen or learned readout. Training accuracy is teacher-forced whole-chain
  accuracy, equal to greedy whole-chain accuracy by induction; the smallest successful CoT models are
  nevertheless re-scored by greedy generation (:func:`georecall.training.score_generation`).

"Size" is the number of *trainable* parameters of one model (a frozen readout is not counted;
the total is reported beside it). A size *succeeds* when a strict majority of its seeds reach
``target_accuracy`` (0.99) within the step budget. For k = 1 the CoT and direct tasks are the same
token sequences (``s r -> a``) and the models the same one-layer shape: the k = 1 CoT conditions reuse
the direct runs of the same readout (:func:`source_condition`), and their greedy scores are taken on
those runs with the interleaved task.

The bound (Theorem 4.2, :func:`georecall.theory.required_bits`) is in *bits*: ``gamma_G`` and
``gamma_L`` are bits per subject embedding. A trained model's embedding has ``d_model`` float
coordinates; the analysis states its B_e under an assumed ``bits_per_coordinate`` (default 1, the
constructions' content convention, docs/theory.md §6.6) and under float32 (32 bits per coordinate, where every
model here lies far above ``gamma_L`` and the bound asks for P = 0). The capacity–depth figure plots
trained sizes and the constructions' dense parameter counts (:func:`construction_cost` of
``kv-memory``, ``precompute`` and ``cot``) in parameters, and ``gamma_G``, ``gamma_L`` and the
constructions' content bits B_e against the trained ``d_model`` (coordinates, i.e. bits at 1 bit per
coordinate) in a second panel.

Backward-code check (docs/theory.md §6.5). Every successful ``direct-learned`` model is probed (not only
those below ``gamma_L``): cross-validated ridge regression from its readout rows ``u_a`` (the columns
of ``W_U`` for the N subject tokens, scaled by the final LayerNorm gain) to the backward codes
``[c(f_1^{-1}(a)), ..., c(f_K^{-1}(a))]``, with two code books ``c``:

* ``index``: ``c(s)`` = the ±1 binary code of s, the code book of the meet-in-the-middle
  construction (docs/theory.md §6.5). It detects that construction exactly; a trained model has no access to
  the index bits, so a null result here does not exclude backward information in a learned code.
* ``readout``: ``c(s) = u_s``, the model's own readout row (a self-consistent backward code:
  ``u_a`` linear in the rows of its preimages). A fact-free readout gives held-out R^2 <= 0.

Each score is compared with a control that shuffles which attribute each target belongs to; a model is
flagged "readout holds backward codes" when a probe beats every shuffle, and both the shuffle mean and
chance (bit accuracy 0.5, R^2 0) by at least ``probe_margin``. The bound is never claimed violated:
learned-readout models are scored with ``readout="learned"`` (readout bits counted in P), and at
float32 every embedding is above ``gamma_L``.

Recipe (measured on CPU at N = 32, K = 2): AdamW, lr 1e-2, weight decay 0.1 (without it a 2-hop seed
stalled at 0.97), 50 warm-up steps then cosine, full batch, two heads per layer, LayerNorm on,
frozen readout std 1.0. Multi-hop without CoT is hard to train at large N, so the quick scale uses
N = 32, K = 2. A frozen random readout needs a minimum d for its N random rows to be separable (d = 4
fails even at k = 1), independent of k.

Scales (``config(scale)``):

* ``smoke``: N = 8, K = 2, k in {1, 2}, one size (d 16, d_mlp 32), one seed, 120 steps (seconds; the
  same code path: k = 1 succeeds, so the greedy scoring and the probe run).
* ``quick``: N = 32, K = 2, k in {1, 2, 3}, d in {4, 8, 16}, d_mlp in {16, 64}, seeds 0-2, 1200
  steps, all four conditions: 60 ensembles of 3 (k = 1 CoT shares the direct runs). Sizes that
  fail run the whole budget and dominate the time: measured 5.5 min wall on 2 CPU cores with one torch
  thread (2026-12-01).
* ``paper``: N = 128, K = 3, k in {1, 2, 3}, d in {8, 16, 32, 64, 128}, d_mlp in {32, 128, 512},
  seeds 0-2, 4000 steps, all four conditions: 180 ensembles of 3 (one per size), full batch (at most
  N K^3 = 3456 queries), for one GPU. Measured on an H200 (a sample of nine sizes, 6000-step budget):
  a 3-layer ensemble takes about 18 ms per step and a 1-layer one about 8 ms (Python-bound), so a size
  that fails costs about 70 s (k = 3) or 30 s (k = 1) at 4000 steps, and successes stop after
  150-1600 steps (k = 3 direct at d 32 / d_mlp 128: 450-900 steps; k = 2 direct-frozen at d 16: up to
  1570; k = 3 direct-learned at d 8 failed at 0.22-0.25, k = 1 direct-frozen at d 8 at 0.60-0.67).
  Expect about 1-1.5 hours for the grid on one GPU. On 2 CPU cores, extrapolated from a measured
  fraction (benchmarks/paper_scale.py, 2026-12-01): at most 28 h at full step budgets.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from georecall.config import ModelConfig, RunConfig, TaskConfig
from georecall.experiments.base import (
    SCALES,
    Provenance,
    Recipe,
    RecipeFields,
    load_result_json,
    outcome_table,
    smallest_size,
    validate_config,
)
from georecall.experiments.stats import majority_success
from georecall.plotting import multihop as multihop_plots

ID = "multihop"

PROVENANCE = Provenance(
    claim=("Without chain-of-thought a depth-k transformer pays for k hops in embedding bits or fact-dependent "
           "weights (lower bound and constructions); with chain-of-thought one layer of constant size suffices."),
    paper_section="§4.2 The information bottleneck, §4.3 constructions without CoT, §4.4 breaking the bound with CoT",
    theorems=("Theorem 4.2", "Theorem 4.3", "Theorem 4.4", "docs/theory.md §4", "docs/theory.md §5",
              "docs/theory.md §6.4-6.6"),
    paper_reported={
        # Our copy of the paper (formulas lost) reports no trained multi-hop numbers; these are its claims.
        "no_cot": "either MLP width or embedding dimension must grow (linearly in N, or exponentially in k)",
        "cot": "a single-layer transformer with constant width (independent of k) suffices for any k",
        "bound": "the no-CoT trade-off is near-optimal (counting argument over K-regular edge-colored graphs)",
        "trained_multihop_results": None,
    },
)

SCHEMA_VERSION = 1
#: The labelled conditions: (mode, readout).
CONDITIONS: tuple[str, ...] = ("direct-frozen", "direct-learned", "cot-frozen", "cot-learned")
#: Construction whose dense parameter counts are drawn against the trained sizes.
CONSTRUCTION_NAMES: tuple[str, ...] = ("kv-memory", "precompute", "cot")
#: Code books the backward-code probe tries.
CODE_BOOKS: tuple[str, ...] = ("index", "readout")

FIG_CAPACITY = "capacity_depth"
FIG_GRID = "success_grid"
FIG_PROBE = "backward_probe"


# ---------------------------------------------------------------------------------------------------
# Configs


def _recipe(steps: int, eval_every: int = 100) -> Recipe:
    return Recipe(steps=steps, lr=1e-2, weight_decay=0.1, warmup_steps=50, eval_every=eval_every,
                  target_accuracy=0.99, success_accuracy=0.99)


@dataclass(frozen=True)
class Config(RecipeFields):
    """One scale of the multihop experiment: the world, the grid, the recipe and the analysis settings."""

    scale: str  # smoke | quick | paper
    n_subjects: int = field(metadata={"min": 2})  # N
    # K (>= 2: the pre-computation cost and the bound's regimes need K >= 2).
    n_relations: int = field(metadata={"min": 2})
    hops: tuple[int, ...] = field(metadata={"min": 1, "nonempty": True, "distinct": True, "increasing": True})  # k
    conditions: tuple[str, ...] = field(metadata={"nonempty": True, "distinct": True, "choices": CONDITIONS})
    # Residual widths d swept (each divisible by n_heads) and MLP widths m swept.
    d_models: tuple[int, ...] = field(metadata={"min": 1, "nonempty": True, "distinct": True})
    d_mlps: tuple[int, ...] = field(metadata={"min": 1, "nonempty": True, "distinct": True})
    # One run per seed and size; success = a strict majority reaches recipe.success_accuracy.
    seeds: tuple[int, ...] = field(metadata={"min": 0, "nonempty": True, "distinct": True})
    # AdamW with weight decay 0.1 (multi-hop without it stalls, see the docstring), cosine, full batch.
    recipe: Recipe = field(default_factory=lambda: _recipe(1200))
    n_heads: int = field(default=2, metadata={"min": 1})  # heads per layer
    unembed_init_std: float = field(default=1.0, metadata={"min": 1e-12})  # std of the frozen random readout
    # Assumed bits per embedding coordinate when comparing d with gamma_L.
    bits_per_coordinate: float = field(default=1.0, metadata={"min": 1e-12})
    probe_folds: int = field(default=4, metadata={"min": 2})  # cross-validation folds of the backward-code probe
    probe_ridge: float = field(default=0.1, metadata={"min": 1e-12})  # ridge penalty per training point
    probe_shuffles: int = field(default=20, metadata={"min": 1})  # shuffled-label controls per probe
    # A probe beats chance and its control by at least this (bit accuracy or R^2).
    probe_margin: float = field(default=0.1, metadata={"min": 0})

    def __post_init__(self) -> None:
        validate_config(self)
        bad = [d for d in self.d_models if d % self.n_heads]
        if bad:
            raise ValueError(f"d_models must be divisible by n_heads={self.n_heads}, got {bad}")
        if not self.probe_folds <= self.n_subjects:
            raise ValueError(f"probe_folds must be in [2, n_subjects={self.n_subjects}], got {self.probe_folds}")


def config(scale: str) -> Config:
    """The config of ``scale`` (smoke, quick or paper); see the module docstring."""
    if scale == "smoke":
        return Config(scale="smoke", n_subjects=8, n_relations=2, hops=(1, 2), conditions=CONDITIONS,
                      d_models=(16,), d_mlps=(32,), seeds=(0,), recipe=_recipe(120, 40), probe_folds=2,
                      probe_shuffles=4)
    if scale == "quick":
        return Config(scale="quick", n_subjects=32, n_relations=2, hops=(1, 2, 3), conditions=CONDITIONS,
                      d_models=(4, 8, 16), d_mlps=(16, 64), seeds=(0, 1, 2), recipe=_recipe(1200))
    if scale == "paper":
        return Config(scale="paper", n_subjects=128, n_relations=3, hops=(1, 2, 3), conditions=CONDITIONS,
                      d_models=(8, 16, 32, 64, 128), d_mlps=(32, 128, 512), seeds=(0, 1, 2),
                      recipe=_recipe(4000, 200))
    raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")


def condition_name(cot: bool, frozen_readout: bool) -> str:
    """``direct-frozen``, ``direct-learned``, ``cot-frozen`` or ``cot-learned``."""
    return f"{'cot' if cot else 'direct'}-{'frozen' if frozen_readout else 'learned'}"


def run_config(cfg: Config, k: int, condition: str, d_model: int, d_mlp: int, seed: int) -> RunConfig:
    """The one-model run of hop count ``k``, ``condition`` and size (``d_model``, ``d_mlp``) for ``seed``."""
    if condition not in CONDITIONS:
        raise ValueError(f"unknown condition {condition!r}; choose from {CONDITIONS}")
    cot = condition.startswith("cot")
    frozen = condition.endswith("frozen")
    task = TaskConfig(n_subjects=cfg.n_subjects, n_relations=cfg.n_relations, n_hops=k,
                      cot="interleaved" if cot else "none")
    model = ModelConfig(d_model=d_model, n_layers=1 if cot else k, n_heads=cfg.n_heads, d_mlp=d_mlp,
                        frozen_unembedding=frozen, unembed_init_std=cfg.unembed_init_std if frozen else None)
    return RunConfig(task=task, model=model, train=cfg.train_config(), seeds=(seed,))


def source_condition(k: int, condition: str) -> str:
    """The condition whose runs stand for ``condition`` at ``k``: at k = 1 a CoT condition is the direct one.

    At k = 1 the interleaved sequence ``s r -> s_1`` is the direct query and the one-layer CoT model is
    the depth-1 model, so the runs would be identical up to the ``task.cot`` label; they are trained once.
    """
    if condition not in CONDITIONS:
        raise ValueError(f"unknown condition {condition!r}; choose from {CONDITIONS}")
    return condition.replace("cot-", "direct-") if k == 1 else condition


def runs(cfg: Config) -> list[RunConfig]:
    """Every (k, condition, d_model, d_mlp, seed) run (k = 1 CoT shares the direct runs); seeds of one size
    train as one ensemble."""
    out: dict[str, RunConfig] = {}
    for k in cfg.hops:
        for cond in cfg.conditions:
            for d in cfg.d_models:
                for w in cfg.d_mlps:
                    for s in cfg.seeds:
                        r = run_config(cfg, k, source_condition(k, cond), d, w, s)
                        out.setdefault(r.config_hash(), r)
    return list(out.values())


# ---------------------------------------------------------------------------------------------------
# Pure analysis: success, sizes, the smallest successful model


def trainable_params(n_params: dict[str, int], *, frozen_unembedding: bool, frozen_embeddings: bool = False) -> int:
    """Trainable parameters of one model from its ``param_counts`` groups (frozen groups left out)."""
    total = int(n_params["total"])
    if frozen_unembedding:
        total -= int(n_params["unembedding"])
    if frozen_embeddings:
        total -= int(n_params["embedding"]) + int(n_params["positional"])
    return total


def _size_order(entry: dict[str, Any]) -> tuple:
    return (entry["trainable_params"], entry["total_params"], entry["d_model"], entry["d_mlp"])


def smallest_successful(entries: Iterable[dict[str, Any]]) -> dict[str, Any] | None:
    """The smallest working grid point by the shared rule; None if none qualifies.

    The rule (:func:`~georecall.experiments.base.smallest_size`) over the (d_model, d_mlp) grid, ranked by
    (trainable, total, d_model, d_mlp): the cheapest point that works and from which every point at
    least as wide in both d and m works too. The entry returned carries ``rule`` (status, the first
    success's trainable parameters, and the failing points above it). Each entry needs ``success``
    (bool), ``trainable_params``, ``total_params``, ``d_model`` and ``d_mlp``.
    """
    es = {(e["d_model"], e["d_mlp"]): e for e in entries}
    if not es:
        return None
    est = smallest_size(list(es), [e["success"] for e in es.values()], cost=lambda s: _size_order(es[s]))
    if est.size is None:
        return None
    first = es[est.first_success]
    return {**es[est.size], "rule": {"status": est.status, "first_success_trainable_params": first["trainable_params"],
                                     "non_monotone": est.non_monotone,
                                     "failed_above": [list(v) for v in est.failed_above]}}


def _row_condition(row: dict[str, Any]) -> str:
    return condition_name(row["config.task.cot"] != "none", bool(row["config.model.frozen_unembedding"]))


def size_table(cfg: Config, rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per (k, condition, d_model, d_mlp) of the grid: seeds, accuracies, steps, sizes, success.

    Sizes come from the runs' parameter counts; a size with no finished run gets sizes from a model
    built on the spot (no training).
    """
    cells = outcome_table(rows, lambda row: (row["config.task.n_hops"], _row_condition(row),
                                             row["config.model.d_model"], row["config.model.d_mlp"]))
    out = []
    for k in cfg.hops:
        for cond in cfg.conditions:
            for d in cfg.d_models:
                for w in cfg.d_mlps:
                    cell = cells.get((k, source_condition(k, cond), d, w))
                    seeds = [] if cell is None else list(cell.seeds)
                    accs: list[float | None] = [] if cell is None else list(cell.accuracy)
                    steps: list[int | None] = [] if cell is None else list(cell.steps)
                    counts = None if cell is None else cell.n_params
                    if counts is None:
                        counts = _counts_of(run_config(cfg, k, cond, d, w, 0))
                    group = seeds
                    frozen = cond.endswith("frozen")
                    # Runs never trained (missing rows) count as misses against the configured seeds.
                    n_runs = max(len(cfg.seeds), len(group))
                    padded = accs + [None] * (n_runs - len(accs))
                    out.append({
                        "k": k, "condition": cond, "d_model": d, "d_mlp": w,
                        "n_layers": 1 if cond.startswith("cot") else k,
                        "seeds": seeds, "accuracy": accs, "steps": steps,
                        "n_success": sum(1 for a in accs if a is not None and a >= cfg.success_accuracy),
                        "n_runs": n_runs,
                        "success": majority_success(padded, cfg.success_accuracy),
                        "trainable_params": trainable_params(counts, frozen_unembedding=frozen),
                        "total_params": counts["total"],
                        "non_embedding_trainable_params": trainable_params(counts, frozen_unembedding=frozen)
                        - counts["embedding"],
                    })
    return out


def _counts_of(run: RunConfig) -> dict[str, int]:
    from georecall.model import Transformer, param_counts
    from georecall.tasks import Vocab, context_length

    vocab = Vocab(run.task.n_subjects, run.task.n_relations)
    model = Transformer(run.model, d_vocab=vocab.d_vocab, n_ctx=context_length(run.task), n_members=1)
    return param_counts(model)


# ---------------------------------------------------------------------------------------------------
# Pure analysis: the backward-code probe (docs/theory.md §6.5)


def index_codes(n: int) -> np.ndarray:
    """``[n, m]`` ±1 binary codes ``c(s)`` of the subjects, m = ceil(log2 n), least significant bit first."""
    from georecall.constructions import n_bits, signs

    if n < 2:
        raise ValueError(f"n must be >= 2, got {n}")
    return signs(np.arange(n), n_bits(n))


def backward_targets(maps: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """``[N, K*c]``: row a is ``[codes[f_1^{-1}(a)], ..., codes[f_K^{-1}(a)]]`` for bijections ``maps`` [K, N]."""
    maps = np.asarray(maps)
    codes = np.asarray(codes, dtype=np.float64)
    if maps.ndim != 2 or codes.ndim != 2 or codes.shape[0] != maps.shape[1]:
        raise ValueError(f"maps must be [K, N] and codes [N, c], got {maps.shape} and {codes.shape}")
    inverse = np.argsort(maps, axis=1)  # inverse[r, a] = f_r^{-1}(a) for bijections
    if not np.array_equal(np.take_along_axis(maps, inverse, axis=1), np.broadcast_to(np.arange(maps.shape[1]),
                                                                                     maps.shape)):
        raise ValueError("maps must be bijections of [N] (each row a permutation)")
    return np.concatenate([codes[inverse[r]] for r in range(maps.shape[0])], axis=1)


def cv_ridge_predict(x: np.ndarray, y: np.ndarray, folds: Sequence[np.ndarray], ridge: float) -> np.ndarray:
    """Held-out ridge predictions of ``y`` [n, t] from ``x`` [n, f]: each fold predicted by a fit on the rest.

    Features are standardised on the training part; the penalty is ``ridge * n_train`` on the
    standardised weights; the intercept (the training mean of y) is not penalised.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    pred = np.empty_like(y)
    n = x.shape[0]
    for test in folds:
        train = np.setdiff1d(np.arange(n), test)
        mu, sd = x[train].mean(0), x[train].std(0)
        sd = np.where(sd > 1e-12, sd, 1.0)
        xt = (x[train] - mu) / sd
        ym = y[train].mean(0)
        gram = xt.T @ xt + ridge * len(train) * np.eye(x.shape[1])
        w = np.linalg.solve(gram, xt.T @ (y[train] - ym))
        pred[test] = ((x[test] - mu) / sd) @ w + ym
    return pred


def probe_metric(y: np.ndarray, pred: np.ndarray, metric: str) -> float:
    """``bit_accuracy`` (sign agreement of ±1 targets) or ``r2`` (1 - SSE/SST, pooled over columns)."""
    if metric == "bit_accuracy":
        return float(np.mean(np.sign(pred) == np.sign(y)))
    if metric == "r2":
        sst = float(((y - y.mean(0)) ** 2).sum())
        return 1.0 - float(((y - pred) ** 2).sum()) / sst if sst > 0 else 0.0
    raise ValueError(f"metric must be 'bit_accuracy' or 'r2', got {metric!r}")


@dataclass(frozen=True)
class ProbeResult:
    """One backward-code probe against its shuffled-label control."""

    metric: str  # bit_accuracy (±1 codes) or r2 (real codes)
    score: float  # held-out score of the probe
    control_mean: float  # mean held-out score over label shuffles
    control_max: float  # best shuffle
    beats_control: bool  # score > control_max, score - control_mean >= margin and score - chance >= margin


def backward_code_probe(readout_rows: np.ndarray, maps: np.ndarray, codes: np.ndarray, *, n_folds: int = 4,
                        ridge: float = 0.1, n_shuffles: int = 20, margin: float = 0.1, seed: int = 0,
                        metric: str | None = None) -> ProbeResult:
    """Does the readout ``u_a`` linearly hold the backward codes ``codes[f_r^{-1}(a)]``? (docs/theory.md §6.5).

    ``readout_rows`` [N, d] (row a = u_a), ``maps`` [K, N] bijections, ``codes`` [N, c]. The control
    permutes which attribute each target row belongs to. ``metric`` defaults to ``bit_accuracy`` for
    ±1 codes and ``r2`` otherwise. The probe *beats its control* when its held-out score exceeds every
    shuffle, the shuffle mean by ``margin``, and chance (0.5 bit accuracy, R^2 = 0) by ``margin``: a
    held-out R^2 below 0 predicts worse than the mean, however it compares with the shuffles.
    """
    u = np.asarray(readout_rows, dtype=np.float64)
    y = backward_targets(maps, codes)
    n = u.shape[0]
    if y.shape[0] != n:
        raise ValueError(f"readout_rows has {n} rows but the maps have N={y.shape[0]}")
    if not 2 <= n_folds <= n:
        raise ValueError(f"n_folds must be in [2, {n}], got {n_folds}")
    if n_shuffles < 1:
        raise ValueError(f"n_shuffles must be >= 1, got {n_shuffles}")
    if metric is None:
        metric = "bit_accuracy" if np.all(np.abs(np.asarray(codes)) == 1) else "r2"
    rng = np.random.default_rng(seed)
    folds = np.array_split(rng.permutation(n), n_folds)
    score = probe_metric(y, cv_ridge_predict(u, y, folds, ridge), metric)
    controls = []
    for _ in range(n_shuffles):
        ys = y[rng.permutation(n)]
        controls.append(probe_metric(ys, cv_ridge_predict(u, ys, folds, ridge), metric))
    c_mean, c_max = float(np.mean(controls)), float(np.max(controls))
    chance = 0.5 if metric == "bit_accuracy" else 0.0
    beats = score > c_max and score - c_mean >= margin and score - chance >= margin
    return ProbeResult(metric=metric, score=score, control_mean=c_mean, control_max=c_max, beats_control=bool(beats))


def readout_rows(model: Any, n_subjects: int, member: int = 0) -> np.ndarray:
    """``[N, d]`` effective readout rows of the subject tokens: ``W_U`` columns times the final LayerNorm gain."""
    import torch

    with torch.no_grad():
        w_u = model.W_U[member][:, :n_subjects].T.double()  # [N, d]
        gain = getattr(model.ln_final, "w", None)
        if gain is not None:
            w_u = w_u * gain[member].double()
    return w_u.cpu().numpy()


# ---------------------------------------------------------------------------------------------------
# Theory side: the bound and the constructions


def theory_table(n: int, k_rel: int, hops: Sequence[int]) -> list[dict[str, Any]]:
    """Per k: gamma_G, gamma_L (bits per subject embedding), the bound at B_e = 0, and construction costs."""
    from georecall.theory import construction_cost, required_bits

    out = []
    for k in hops:
        b0 = required_bits(n, k_rel, k, 0.0, readout="fixed")
        entry: dict[str, Any] = {"k": k, "gamma_G": b0.gamma_global, "gamma_L": b0.gamma_local,
                                 "required_bits_at_zero_embedding": b0.required_bits}
        for name in CONSTRUCTION_NAMES:
            c = construction_cost(name, n, k_rel, k)
            key = name.replace("-", "_")
            entry[f"{key}_d_model"] = c.d_model
            entry[f"{key}_mlp_widths"] = list(c.mlp_widths)
            entry[f"{key}_total_params"] = c.total
            entry[f"{key}_non_embedding_params"] = c.attention + c.mlp
            entry[f"{key}_P_bits"] = c.P_bits_content
            entry[f"{key}_embedding_bits"] = c.embedding_bits_content
        out.append(entry)
    return out


def bound_check(cfg: Config, entry: dict[str, Any], bits_per_coordinate: float) -> dict[str, Any]:
    """A trained size against Theorem 4.2 at ``B_e = bits_per_coordinate * d_model``; CoT is outside the class.

    ``P_have`` is 32 bits x the trainable parameters other than the token embedding (attention, MLP,
    LayerNorm, positions, and the readout where it is learned).
    """
    from georecall.theory import required_bits

    readout = "fixed" if entry["condition"].endswith("frozen") else "learned"
    b_e = bits_per_coordinate * entry["d_model"]
    p_have = 32.0 * entry["non_embedding_trainable_params"]
    if entry["condition"].startswith("cot"):
        return {"bits_per_coordinate": bits_per_coordinate, "embedding_bits": b_e, "readout": readout,
                "P_have_bits": p_have, "P_needed_bits": None, "gamma_L": None, "below_gamma_L": None,
                "holds": None, "in_class": False}
    b = required_bits(cfg.n_subjects, cfg.n_relations, entry["k"], b_e, readout=readout)
    return {"bits_per_coordinate": bits_per_coordinate, "embedding_bits": b_e, "readout": readout,
            "P_have_bits": p_have, "P_needed_bits": b.required_bits, "gamma_L": b.gamma_local,
            "below_gamma_L": bool(b.gamma_local is not None and b_e < b.gamma_local),
            "holds": bool(p_have + 1e-9 >= b.required_bits), "in_class": True}


# ---------------------------------------------------------------------------------------------------
# Result


@dataclass(frozen=True)
class Result:
    """The contract of ``result.json`` for ``multihop`` (plain numbers, lists and flat dicts)."""

    scale: str  # smoke | quick | paper
    n_subjects: int  # N
    n_relations: int  # K
    hops: list[int]  # the k values
    conditions: list[str]  # the labelled conditions trained
    d_models: list[int]  # residual widths swept
    d_mlps: list[int]  # MLP widths swept
    seeds: list[int]  # seeds per size
    target_accuracy: float  # success threshold per run (a size succeeds with a strict majority of seeds)
    steps: int  # step budget per run
    recipe: dict[str, Any]  # lr, weight_decay, warmup_steps, n_heads, unembed_init_std, layernorm, batch
    bits_per_coordinate: float  # assumed bits per embedding coordinate (for d against gamma_L)
    sizes: list[dict[str, Any]]  # one per (k, condition, d_model, d_mlp): accuracies, steps, sizes, success
    smallest: list[dict[str, Any]]  # one per (k, condition): the smallest successful size (found=False if none)
    theory: list[dict[str, Any]]  # one per k: gamma_G, gamma_L, bound at B_e = 0, construction costs
    probes: list[dict[str, Any]]  # one per successful direct-learned run: backward-code probes and the flag
    n_flagged: int  # probed runs whose readout holds backward codes (either code book beats its control)
    n_failed_runs: int  # runs whose training raised (status 'failed'); they count as misses
    sweep: dict[str, Any] = field(default_factory=dict)  # filled by the driver: total/skipped/trained/failed
    wall_time_s: float = 0.0  # filled by the driver: training + analysis wall time
    schema_version: int = SCHEMA_VERSION


def _greedy(cfg: Config, k: int, run: Any, seed: int) -> dict[str, float]:
    from georecall.tasks import make_queries, stack_queries
    from georecall.training import score_generation

    task = TaskConfig(n_subjects=cfg.n_subjects, n_relations=cfg.n_relations, n_hops=k, cot="interleaved")
    queries = stack_queries([make_queries(w, task, seed=seed) for w in run.worlds])
    score = score_generation(run.model, run.worlds, queries)
    return {"chain": float(score.chain_accuracy[0]), "final": float(score.final_accuracy[0])}


def _probe_run(cfg: Config, run: Any, seed: int) -> dict[str, Any]:
    u = readout_rows(run.model, cfg.n_subjects)
    maps = run.worlds[0].maps
    out: dict[str, Any] = {}
    flagged = False
    for book in CODE_BOOKS:
        codes = index_codes(cfg.n_subjects) if book == "index" else u
        p = backward_code_probe(u, maps, codes, n_folds=cfg.probe_folds, ridge=cfg.probe_ridge,
                                n_shuffles=cfg.probe_shuffles, margin=cfg.probe_margin, seed=seed)
        out.update({f"{book}_metric": p.metric, f"{book}_score": p.score, f"{book}_control_mean": p.control_mean,
                    f"{book}_control_max": p.control_max, f"{book}_beats_control": p.beats_control})
        flagged |= p.beats_control
    out["readout_holds_backward_codes"] = flagged
    return out


def analyze(cfg: Config, rows: list[dict[str, Any]], out_dir: Path) -> Result:
    """Sizes per grid point, the smallest successful model per (k, condition), greedy CoT scores,
    the bound per smallest model, and the backward-code probes of successful learned-readout models."""
    from georecall.results import load_run

    out_dir = Path(out_dir)
    sizes = size_table(cfg, rows)
    theory = theory_table(cfg.n_subjects, cfg.n_relations, cfg.hops)
    gamma_l = {t["k"]: t["gamma_L"] for t in theory}
    row_of = {(r["config.task.n_hops"], _row_condition(r), r["config.model.d_model"], r["config.model.d_mlp"],
               int(r["config.seeds"][0])): r for r in rows if r["status"] == "done"}

    smallest = []
    for k in cfg.hops:
        for cond in cfg.conditions:
            best = smallest_successful(e for e in sizes if e["k"] == k and e["condition"] == cond)
            if best is None:
                smallest.append({"k": k, "condition": cond, "found": False})
                continue
            entry = {"k": k, "condition": cond, "found": True,
                     **{key: best[key] for key in ("d_model", "d_mlp", "n_layers", "trainable_params", "total_params",
                                                   "non_embedding_trainable_params", "seeds", "accuracy", "steps",
                                                   "n_success", "n_runs", "rule")}}
            entry["bound_assumed"] = bound_check(cfg, best, cfg.bits_per_coordinate)
            entry["bound_float32"] = bound_check(cfg, best, 32.0)
            if cond.startswith("cot"):  # greedy generation, every seed of the smallest successful size
                greedy_chain, greedy_final = [], []
                for s in best["seeds"]:
                    row = row_of.get((k, source_condition(k, cond), best["d_model"], best["d_mlp"], s))
                    if row is None:
                        greedy_chain.append(None)
                        greedy_final.append(None)
                        continue
                    g = _greedy(cfg, k, load_run(out_dir / row["run_dir"]), s)
                    greedy_chain.append(g["chain"])
                    greedy_final.append(g["final"])
                entry["greedy_chain_accuracy"] = greedy_chain
                entry["greedy_final_accuracy"] = greedy_final
            smallest.append(entry)

    probes = []
    for e in sizes:
        if e["condition"] != "direct-learned":
            continue
        for s, acc in zip(e["seeds"], e["accuracy"], strict=True):
            if acc is None or acc < cfg.success_accuracy:
                continue
            row = row_of[(e["k"], e["condition"], e["d_model"], e["d_mlp"], s)]
            gl = gamma_l[e["k"]]
            b_e = cfg.bits_per_coordinate * e["d_model"]
            probes.append({"k": e["k"], "d_model": e["d_model"], "d_mlp": e["d_mlp"], "seed": s, "accuracy": acc,
                           "embedding_bits": b_e, "gamma_L": gl, "below_gamma_L": bool(gl is not None and b_e < gl),
                           **_probe_run(cfg, load_run(out_dir / row["run_dir"]), s)})

    recipe = {**cfg.recipe.describe(), "n_heads": cfg.n_heads, "unembed_init_std": cfg.unembed_init_std,
              "layernorm": True, "batch": "full",
              "probe": {"folds": cfg.probe_folds, "ridge": cfg.probe_ridge, "shuffles": cfg.probe_shuffles,
                        "margin": cfg.probe_margin}}
    return Result(scale=cfg.scale, n_subjects=cfg.n_subjects, n_relations=cfg.n_relations, hops=list(cfg.hops),
                  conditions=list(cfg.conditions), d_models=list(cfg.d_models), d_mlps=list(cfg.d_mlps),
                  seeds=list(cfg.seeds), target_accuracy=cfg.success_accuracy, steps=cfg.steps, recipe=recipe,
                  bits_per_coordinate=cfg.bits_per_coordinate, sizes=sizes, smallest=smallest, theory=theory,
                  probes=probes, n_flagged=sum(p["readout_holds_backward_codes"] for p in probes),
                  n_failed_runs=sum(1 for r in rows if r["status"] != "done"))


# ---------------------------------------------------------------------------------------------------
# Figures (from result.json only; drawn by georecall.plotting.multihop)


def plot(result_dir: str | Path) -> list[Path]:
    """The capacity-depth figure, the success grid and the backward-code probes, each PNG beside its CSV."""
    folder = Path(result_dir)
    return multihop_plots.plot(load_result_json(folder), folder)


def summarize(result: Result) -> str:
    """The smallest successful model per k and condition, and the probe verdicts, as text."""
    lines = [f"multihop ({result.scale}): N={result.n_subjects}, K={result.n_relations}, target "
             f"{result.target_accuracy:.0%}, {result.steps} steps, seeds {result.seeds}"]
    lines.append(f"{'k':>2} {'condition':<15} {'d':>4} {'d_mlp':>5} {'layers':>6} {'trainable':>9} {'total':>7} "
                 f"{'seeds ok':>8}  greedy chain acc (CoT)")
    for s in result.smallest:
        if not s["found"]:
            lines.append(f"{s['k']:>2} {s['condition']:<15} none of the sizes succeeded")
            continue
        greedy = s.get("greedy_chain_accuracy")
        g = "" if greedy is None else ", ".join("-" if v is None else f"{v:.3f}" for v in greedy)
        lines.append(f"{s['k']:>2} {s['condition']:<15} {s['d_model']:>4} {s['d_mlp']:>5} {s['n_layers']:>6} "
                     f"{s['trainable_params']:>9} {s['total_params']:>7} {s['n_success']:>4}/{s['n_runs']:<3}  {g}")
    lines.append("theory per k (bits per subject embedding; constructions as d / MLP widths / dense params):")
    for t in result.theory:
        gl = "n/a" if t["gamma_L"] is None else f"{t['gamma_L']:.1f}"
        cons = "; ".join(f"{n} {t[n.replace('-', '_') + '_d_model']}/{t[n.replace('-', '_') + '_mlp_widths']}/"
                         f"{t[n.replace('-', '_') + '_total_params']}" for n in CONSTRUCTION_NAMES)
        lines.append(f"  k={t['k']}: gamma_G {t['gamma_G']:.1f}, gamma_L {gl}; {cons}")
    below = [s for s in result.smallest if s["found"] and s["bound_assumed"]["below_gamma_L"]]
    lines.append(f"smallest direct models below gamma_L at {result.bits_per_coordinate:g} bit per coordinate: "
                 + (", ".join(f"k={s['k']} {s['condition']} (d={s['d_model']})" for s in below) or "none")
                 + "; at 32 bits per coordinate: "
                 + (", ".join(f"k={s['k']} {s['condition']}" for s in result.smallest
                              if s["found"] and s["bound_float32"]["below_gamma_L"]) or "none"))
    lines.append(f"backward-code check: {len(result.probes)} successful direct-learned runs probed, "
                 f"{result.n_flagged} flagged")
    return "\n".join(lines)


__all__ = [
    "CODE_BOOKS", "CONDITIONS", "ID", "PROVENANCE", "SCHEMA_VERSION", "Config", "ProbeResult", "Result",
    "analyze", "backward_code_probe", "backward_targets", "bound_check", "condition_name", "config",
    "cv_ridge_predict", "index_codes", "majority_success", "plot", "probe_metric", "readout_rows", "run_config",
    "runs", "size_table", "smallest_successful", "source_condition", "summarize", "theory_table", "trainable_params",
]
