"""``multihop``: the capacity–depth trade-off, trained — the smallest model that answers k-hop chains.

Claim (docs/theory.md §4–§6, paper §4.2–4.4): without chain-of-thought a transformer must pay for k hops
in embedding bits or in fact-dependent weights (Theorem 4.2's bound; Theorem 4.3's key-value and
pre-computation constructions), while with chain-of-thought one layer of constant size answers every k
(Theorem 4.4). For every N in ``subjects``, k in ``hops`` and labelled condition this module *searches*
the smallest model that reaches the target accuracy.

**The size axis.** One dimension: a rung i = 1..L of a fixed ladder of widths ``ladder`` (d_model), with
``d_mlp = mlp_ratio · d`` (4 d), the same ladder for every N, k and condition. Rungs are ordered by
parameters for every depth. The size reported is the number of *trainable* parameters at the rung (a
frozen readout is not counted; the total is reported beside it), together with d and d_mlp.

**The search** (:func:`search_path`, prior-free): :func:`~georecall.experiments.base.next_size` over the
rung index from ``search_start`` — the same start for every N, k and condition — doubling the index
while every tried rung fails, halving while every tried rung works, then bisecting to adjacent rungs.
Stage by stage: :func:`next_runs` replays every search on the store's rows and returns the next rung of
each unfinished one. A rung *works* when a strict majority of the seeds succeed. The smallest size is
read by the shared rule (:func:`~georecall.experiments.base.smallest_size`). A cell the search could not
bracket is reported ``bracketed = False`` with its reason: ``range`` (the smallest rung already works,
or no rung up to the top works) or ``budget`` (the search stopped after ``search_max_tries`` rungs). The
top rung lies above the constructions' dense sizes (:func:`~georecall.theory.construction_cost` of
``kv-memory``, ``precompute`` and ``cot``) for every cell: each cell reports ``range_covers_constructions``.
Seed-bootstrap interval (:func:`bootstrap_smallest`): the seeds are resampled with replacement (all n^n
draws for n <= 5 seeds), the majority rule re-applied on the tried rungs, and the ``interval_level``
central interval of the resulting smallest size reported (upper end None: above the range).

**Conditions** (:data:`CONDITIONS`):

* ``direct-frozen``: no CoT, depth k (``n_layers = k``), readout ``W_U, b_U`` frozen at a random,
  fact-independent init — the bound's class (docs/theory.md §6.5).
* ``direct-learned``: the same with a learned untied readout (outside the fixed-readout class), at the
  hops ``learned_hops`` (k = 2 at quick): set against the fixed-readout bound (a learned readout can go
  below it by meeting in the middle, §6.5).
* ``direct1-frozen``: the depth-matched control: no CoT, **one layer for every k** (the CoT models'
  depth), frozen readout. Growth with k here is not architectural.
* ``cot-frozen``: interleaved CoT (``s r1 s1 r2 s2 ...``), one layer, frozen readout, loss on every
  emitted subject. Training accuracy is teacher-forced whole-chain accuracy, equal to greedy whole-chain
  accuracy by induction; the smallest working models are re-scored by greedy generation.
* ``cot-final``: the control without intermediate supervision: as ``cot-frozen`` but the loss is on the
  final answer only (``task.cot_loss = "final"``; the intermediate subjects are still teacher-forced
  inputs). A seed *succeeds* here when its **greedy** final answer (the model generating its own
  intermediate subjects) reaches the target accuracy; training stops at the teacher-forced target.

At k = 1 all frozen-readout conditions are the same model (one layer, ``s r -> a``): they share the
``direct-frozen`` runs (:func:`source_condition`).

**The bound in one unit** (:func:`bound_comparison`): at a stated precision of b bits per number,
``B_e = b · d`` (a subject embedding) and ``P = b · (fact-dependent parameters)``: every trainable
parameter except the N subject rows of ``W_E`` (attention, MLP, LayerNorm, positions, relation rows,
and the readout where learned). Stated precisions ``bits_per_number``: 1 bit (the constructions'
content convention, docs/theory.md §6.6), where the bound bites at d < γ_L, and 32 bits (float32, the
only valid upper estimate of a trained model's content: a model below the bound there would refute the
theorem; it asks 0 bits once 32 d >= γ_L). :func:`break_even_bits` gives b*, the precision below which a
model lies under the bound: Theorem 4.2 says a working model's numbers carry at least b* bits each.
Every successful seed of a direct condition is compared; learned-readout models are compared in their
own class (readout counted) and against the fixed-readout bound (readout not counted).

**Probes** (:func:`forward_tree_probe`, :func:`backward_code_probe`; cross-validated ridge with
shuffled-label controls). Forward tree, the pre-computation signature: from the subject embedding
``e_s`` to the codes of ``f_{r_j}(...f_{r_1}(s))`` for every chain of length j = 1..k. Backward codes, the
meet-in-the-middle signature (learned readouts only): from ``u_a`` to the codes of ``f_r^{-1}(a)``. Code
books: ``index`` (the ±1 bits of the subject id, the constructions' code: it detects them exactly, but a
trained model has no access to the index bits), and two learned code books that can detect a learned
code: ``readout`` (``c(a) = u_a``, the model's readout rows) and ``embedding`` (``c(a) = e_a``). A
probe *beats its control* when its held-out score exceeds every shuffle and both the shuffle mean and
chance (bit accuracy 0.5, R² 0) by ``probe_margin``. Probed: every successful seed at the smallest
working rung of each direct and CoT cell, and at every working rung of ``direct-learned``.

Recipe: AdamW, lr 1e-2, weight decay 0.1, 50 warm-up steps then cosine, full batch, two heads per layer,
LayerNorm, frozen readout std 1.0; members stop at the target (0.99).

Scales (``config(scale)``):

* ``smoke``: N = 8, K = 2, k in {1, 2}, ladder d in {8, 16}, one seed, 60 steps, at most 2 rungs per
  cell (seconds; the same code path).
* ``quick``: N in {8, 16, 64}, K = 2, k in {1, 2, 3}, ladder d in {4, 6, 8, 12, 16, 24, 32, 48, 64, 96},
  start rung 4 (d = 12), at most 6 rungs per cell, seeds 0-2, 600 steps; ``direct-learned`` at k = 2.
  30 searched cells, 291 runs in 4 stages (no search used more than 4 rungs). Measured on 2 CPU cores
  with one torch thread (2026-12-01): 10.6 min wall (622 s in the driver, 23 s of it analysis and
  figures) on a busy machine (load average 4.5-6.2 from other jobs), 7.4 min of CPU time: over the
  9-minute share as measured under that load; about 7.5 min expected on an idle core (CPU time). The
  N = 64 cells take most of it (k = 3 at depth 3 alone about a fifth). In a fresh quick reproduction on
  an otherwise idle machine with two worker processes (2026-12-01) it took 4.0 min.
* ``paper``: N in {64, 128, 512}, K = 3, k in {1, 2, 3}, ladder d from 8 to 512, seeds 0-2, 4000
  steps, ``direct-learned`` at every k, for one GPU (not measured).
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Mapping, Sequence
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
    next_size,
    outcome_table,
    smallest_size,
    validate_config,
)
from georecall.experiments.stats import is_majority, majority_success
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

SCHEMA_VERSION = 2
#: Quick-scale wall time, measured (see the module docstring).
QUICK_MEASURED: dict[str, Any] = {"date": "2026-12-01", "wall_s": 638, "driver_s": 622, "cpu_s": 451,
                                  "load_average": "4.5-6.2 on 2 cores", "runs": 291, "stages": 4}


@dataclass(frozen=True)
class Condition:
    """One labelled training condition."""

    cot: bool  # interleaved chain-of-thought
    one_layer: bool  # one layer for every k (else n_layers = k)
    frozen_readout: bool  # W_U, b_U frozen at a random fact-free init
    cot_loss: str  # "chain" (every emitted subject) or "final" (the final answer only)
    label: str


CONDITIONS: dict[str, Condition] = {
    "direct-frozen": Condition(False, False, True, "chain",
                               "no CoT, depth k, frozen random readout (the bound's class)"),
    "direct-learned": Condition(False, False, False, "chain", "no CoT, depth k, learned readout"),
    "direct1-frozen": Condition(False, True, True, "chain",
                                "no CoT, one layer for every k, frozen readout (depth-matched control)"),
    "cot-frozen": Condition(True, True, True, "chain", "CoT, one layer, frozen readout, loss on every emitted subject"),
    "cot-final": Condition(True, True, True, "final",
                           "CoT, one layer, frozen readout, loss on the final answer only (no intermediate "
                           "supervision; success by greedy generation)"),
}
CONDITION_NAMES: tuple[str, ...] = tuple(CONDITIONS)
#: Constructions whose dense parameter counts are drawn against the trained sizes.
CONSTRUCTION_NAMES: tuple[str, ...] = ("kv-memory", "precompute", "cot")
#: Code books the probes try.
CODE_BOOKS: tuple[str, ...] = ("index", "readout", "embedding")
#: Bits per float32 number: a model below the bound at this precision would refute Theorem 4.2.
FLOAT32_BITS = 32.0
#: The break-even precision is searched in [0, this] bits per number.
MAX_BITS = 64.0


# ---------------------------------------------------------------------------------------------------
# Configs


def _recipe(steps: int, eval_every: int = 100) -> Recipe:
    return Recipe(steps=steps, lr=1e-2, weight_decay=0.1, warmup_steps=50, eval_every=eval_every,
                  target_accuracy=0.99, success_accuracy=0.99)


@dataclass(frozen=True)
class Config(RecipeFields):
    """One scale of the multihop experiment: worlds, conditions, the size ladder, the search and the analysis."""

    scale: str  # smoke | quick | paper
    subjects: tuple[int, ...] = field(metadata={"min": 8, "nonempty": True, "distinct": True, "increasing": True})  # N
    n_relations: int = field(metadata={"min": 2})  # K (>= 2: the pre-computation cost and the bound's regimes)
    hops: tuple[int, ...] = field(metadata={"min": 1, "nonempty": True, "distinct": True, "increasing": True})  # k
    conditions: tuple[str, ...] = field(metadata={"nonempty": True, "distinct": True, "choices": CONDITION_NAMES})
    # Residual widths d of the ladder's rungs (each divisible by n_heads); d_mlp = mlp_ratio * d.
    ladder: tuple[int, ...] = field(metadata={"min": 1, "nonempty": True, "distinct": True, "increasing": True})
    # One run per seed and rung; a rung works when a strict majority reaches recipe.success_accuracy.
    seeds: tuple[int, ...] = field(metadata={"min": 0, "nonempty": True, "distinct": True})
    recipe: Recipe = field(default_factory=lambda: _recipe(600))
    learned_hops: tuple[int, ...] = field(default=(2,), metadata={"min": 1, "distinct": True})  # k of direct-learned
    mlp_ratio: int = field(default=4, metadata={"min": 1})  # d_mlp = mlp_ratio * d
    search_start: int = field(default=4, metadata={"min": 1})  # first rung (1-based) of every search
    search_max_tries: int = field(default=6, metadata={"min": 1})  # rungs per cell before it stops (budget)
    n_heads: int = field(default=2, metadata={"min": 1})  # heads per layer
    unembed_init_std: float = field(default=1.0, metadata={"min": 1e-12})  # std of the frozen random readout
    # Stated precisions (bits per number) at which the bound is compared, B_e = b d and P = b * parameters.
    bits_per_number: tuple[float, ...] = field(default=(1.0, FLOAT32_BITS),
                                               metadata={"min": 1e-9, "nonempty": True, "distinct": True})
    interval_level: float = field(default=0.9, metadata={"min": 1e-9})  # central seed-bootstrap interval
    bootstrap_resamples: int = field(default=2000, metadata={"min": 1})  # random draws when n^n is larger
    probe_folds: int = field(default=4, metadata={"min": 2})  # cross-validation folds of the probes
    probe_ridge: float = field(default=0.1, metadata={"min": 1e-12})  # ridge penalty per training point
    probe_shuffles: int = field(default=20, metadata={"min": 1})  # shuffled-label controls per probe
    # A probe beats chance and its control by at least this (bit accuracy or R^2).
    probe_margin: float = field(default=0.1, metadata={"min": 0})

    def __post_init__(self) -> None:
        validate_config(self)
        bad = [d for d in self.ladder if d % self.n_heads]
        if bad:
            raise ValueError(f"ladder widths must be divisible by n_heads={self.n_heads}, got {bad}")
        if self.search_start > len(self.ladder):
            raise ValueError(f"search_start must be a rung in [1, {len(self.ladder)}], got {self.search_start}")
        if "direct-learned" in self.conditions and not set(self.learned_hops) <= set(self.hops):
            raise ValueError(f"learned_hops must be among hops {self.hops}, got {self.learned_hops}")
        if not self.interval_level < 1:
            raise ValueError(f"interval_level must be in (0, 1), got {self.interval_level}")
        if self.probe_folds > min(self.subjects):
            raise ValueError(f"probe_folds must be in [2, min N = {min(self.subjects)}], got {self.probe_folds}")


def config(scale: str) -> Config:
    """The config of ``scale`` (smoke, quick or paper); see the module docstring."""
    if scale == "smoke":
        return Config(scale="smoke", subjects=(8,), n_relations=2, hops=(1, 2), conditions=CONDITION_NAMES,
                      ladder=(8, 16), seeds=(0,), recipe=_recipe(60, 20), search_start=1, search_max_tries=2,
                      probe_folds=2, probe_shuffles=4)
    if scale == "quick":
        return Config(scale="quick", subjects=(8, 16, 64), n_relations=2, hops=(1, 2, 3), conditions=CONDITION_NAMES,
                      ladder=(4, 6, 8, 12, 16, 24, 32, 48, 64, 96), seeds=(0, 1, 2), recipe=_recipe(600))
    if scale == "paper":
        return Config(scale="paper", subjects=(64, 128, 512), n_relations=3, hops=(1, 2, 3),
                      conditions=CONDITION_NAMES, ladder=(8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512),
                      seeds=(0, 1, 2), recipe=_recipe(4000, 200), learned_hops=(1, 2, 3), search_start=5,
                      search_max_tries=8)
    raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")


def _condition(name: str) -> Condition:
    if name not in CONDITIONS:
        raise ValueError(f"unknown condition {name!r}; choose from {CONDITION_NAMES}")
    return CONDITIONS[name]


def condition_hops(cfg: Config, condition: str) -> tuple[int, ...]:
    """The hop counts at which ``condition`` is tested (``direct-learned``: ``learned_hops``)."""
    _condition(condition)
    return tuple(k for k in cfg.hops if condition != "direct-learned" or k in cfg.learned_hops)


def source_condition(k: int, condition: str) -> str:
    """The condition whose runs stand for ``condition`` at ``k``: at k = 1 every frozen one is ``direct-frozen``.

    At k = 1 the interleaved sequence ``s r -> s_1`` is the direct query, its final answer is its only
    answer, and every model is one layer: the runs would be identical up to labels, so they are trained once.
    """
    c = _condition(condition)
    return "direct-frozen" if k == 1 and c.frozen_readout else condition


def n_layers(condition: str, k: int) -> int:
    """Depth of the models of ``condition`` at k hops."""
    return 1 if _condition(condition).one_layer else k


def cells(cfg: Config) -> list[tuple[int, int, str]]:
    """Every (N, k, condition) reported, in order."""
    return [(n, k, c) for n in cfg.subjects for k in cfg.hops for c in cfg.conditions if k in condition_hops(cfg, c)]


def search_cells(cfg: Config) -> list[tuple[int, int, str]]:
    """The (N, k, condition) whose sizes are searched (k = 1 frozen conditions share ``direct-frozen``)."""
    out: list[tuple[int, int, str]] = []
    for n, k, c in cells(cfg):
        key = (n, k, source_condition(k, c))
        if key not in out:
            out.append(key)
    return out


def shape(cfg: Config, rung: int) -> tuple[int, int]:
    """``(d_model, d_mlp)`` of rung ``rung`` (1-based)."""
    if not 1 <= rung <= len(cfg.ladder):
        raise ValueError(f"rung must be in [1, {len(cfg.ladder)}], got {rung}")
    d = cfg.ladder[rung - 1]
    return d, cfg.mlp_ratio * d


def run_config(cfg: Config, n: int, k: int, condition: str, rung: int, seed: int) -> RunConfig:
    """The one-model run of N = ``n``, k hops, ``condition`` at ladder rung ``rung`` for ``seed``."""
    c = _condition(condition)
    d, w = shape(cfg, rung)
    task = TaskConfig(n_subjects=n, n_relations=cfg.n_relations, n_hops=k, cot="interleaved" if c.cot else "none",
                      cot_loss=c.cot_loss if c.cot else "chain")
    model = ModelConfig(d_model=d, n_layers=n_layers(condition, k), n_heads=cfg.n_heads, d_mlp=w,
                        frozen_unembedding=c.frozen_readout,
                        unembed_init_std=cfg.unembed_init_std if c.frozen_readout else None)
    return RunConfig(task=task, model=model, train=cfg.train_config(), seeds=(seed,))


# ---------------------------------------------------------------------------------------------------
# Outcomes and the search, stage by stage


@dataclass(frozen=True)
class SeedOutcome:
    """One seed at one rung: its teacher-forced accuracy, greedy scores where taken, and whether it succeeded."""

    seed: int
    accuracy: float | None  # teacher-forced accuracy at the end of training (None: the run failed)
    greedy_final: float | None  # greedy final-answer accuracy (cot-final only)
    greedy_chain: float | None  # greedy whole-chain accuracy (cot-final only)
    steps: int | None
    success: bool


def _by_hash(rows: Sequence[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    return {r["hash"]: r for r in rows}


@functools.lru_cache(maxsize=4096)
def _greedy_of(run_path: str) -> tuple[float, float]:
    """``(final, chain)`` greedy accuracy of the one-member CoT run saved at ``run_path`` (cached per path)."""
    import dataclasses

    from georecall.results import load_run
    from georecall.tasks import make_queries, stack_queries
    from georecall.training import score_generation

    run = load_run(run_path)
    task = dataclasses.replace(run.config.task, cot_loss="chain")
    queries = stack_queries([make_queries(w, task, seed=s) for w, s in zip(run.worlds, run.config.seeds, strict=True)])
    score = score_generation(run.model.eval(), run.worlds, queries)
    return float(score.final_accuracy[0]), float(score.chain_accuracy[0])


def seed_outcomes(cfg: Config, n: int, k: int, condition: str, rung: int, by_hash: Mapping[str, Mapping[str, Any]],
                  out_dir: Path | None) -> list[SeedOutcome] | None:
    """Every seed's outcome at a rung; None until every seed has a row.

    A run that failed is a miss. For ``cot-final`` (k >= 2) a seed succeeds by its greedy final answer,
    which needs the saved model (``out_dir``); every other condition by its teacher-forced accuracy.
    """
    rows = []
    for s in cfg.seeds:
        row = by_hash.get(run_config(cfg, n, k, condition, rung, s).config_hash())
        if row is None:
            return None
        rows.append(row)
    greedy = condition == "cot-final" and k >= 2
    out = []
    for s, row in zip(cfg.seeds, rows, strict=True):
        if row.get("status") != "done":
            out.append(SeedOutcome(s, None, None, None, None, False))
            continue
        acc = float(_first(row["result.accuracy"]))
        steps = int(_first(row["result.steps"]))
        if greedy:
            if out_dir is None:
                raise ValueError("cot-final outcomes need the runs' folder (out_dir) for greedy generation")
            final, chain = _greedy_of(str(Path(out_dir) / row["run_dir"]))
            out.append(SeedOutcome(s, acc, final, chain, steps, final >= cfg.success_accuracy - 1e-9))
        else:
            out.append(SeedOutcome(s, acc, None, None, steps, acc >= cfg.success_accuracy - 1e-9))
    return out


def _first(value: Any) -> Any:
    return value[0] if isinstance(value, list) else value


def rung_works(outcomes: Sequence[SeedOutcome], n_seeds: int) -> bool:
    """The majority rule: a strict majority of the ``n_seeds`` seeds succeeded."""
    return is_majority(sum(o.success for o in outcomes), n_seeds)


@dataclass(frozen=True)
class SearchPath:
    """One cell's search replayed on the rows: what was tried and what comes next."""

    tried: dict[int, list[SeedOutcome]]  # rung -> outcomes, in the order tried
    works: dict[int, bool]  # rung -> the majority rule
    next_rung: int | None  # the rung to train next (None: finished or stopped)
    stopped_by_budget: bool  # the search stopped at search_max_tries with rungs left to try


def search_path(cfg: Config, n: int, k: int, condition: str, rows: Sequence[Mapping[str, Any]] | Mapping[str, Any],
                out_dir: Path | None = None) -> SearchPath:
    """Replay the search of one cell on the rows (a list, or a dict by hash).

    Only the rungs the search itself asked for count, in its own order, so a model trained for another
    reason never moves the answer.
    """
    by_hash = rows if isinstance(rows, Mapping) else _by_hash(rows)
    tried: dict[int, list[SeedOutcome]] = {}
    works: dict[int, bool] = {}
    while True:
        nxt = next_size(works, start=cfg.search_start, lo=1, hi=len(cfg.ladder))
        if nxt is None:
            return SearchPath(tried, works, None, False)
        if len(works) >= cfg.search_max_tries:
            return SearchPath(tried, works, None, True)
        out = seed_outcomes(cfg, n, k, condition, nxt, by_hash, out_dir)
        if out is None:
            return SearchPath(tried, works, nxt, False)
        tried[nxt] = out
        works[nxt] = rung_works(out, len(cfg.seeds))


def runs(cfg: Config) -> list[RunConfig]:
    """The first stage: every searched cell at ``search_start``, every seed."""
    return [run_config(cfg, n, k, c, cfg.search_start, s) for n, k, c in search_cells(cfg) for s in cfg.seeds]


def next_runs(cfg: Config, rows: Sequence[Mapping[str, Any]], out_dir: Path) -> list[RunConfig]:
    """The next stage: the next rung of every unfinished search (empty when every search is done)."""
    by_hash = _by_hash(rows)
    out = []
    for n, k, c in search_cells(cfg):
        path = search_path(cfg, n, k, c, by_hash, out_dir)
        if path.next_rung is not None:
            out += [run_config(cfg, n, k, c, path.next_rung, s) for s in cfg.seeds]
    return out


# ---------------------------------------------------------------------------------------------------
# Pure analysis: the smallest size, its status and its seed-bootstrap interval


def smallest_rung(works: Mapping[int, bool], n_rungs: int, *, stopped_by_budget: bool = False) -> dict[str, Any]:
    """The smallest working rung by the shared rule, its status, and why a cell is not bracketed.

    ``status``: ``bracketed`` (a smaller tried rung fails), ``censored_low`` (no smaller rung was tried: the
    need is at most this rung), ``censored_high`` (no rung qualifies: the need lies above the range),
    ``budget`` (the search stopped before it finished) or ``untried``. ``reason`` is None for a bracketed
    cell, else ``range: ...`` or ``budget: ...``.
    """
    if not works:
        return {"rung": None, "first_success": None, "status": "untried", "bracketed": False,
                "reason": "budget: nothing trained", "failed_above": []}
    order = sorted(works)
    est = smallest_size(order, [works[r] for r in order])
    out = {"rung": est.size, "first_success": est.first_success, "status": est.status,
           "bracketed": est.status == "bracketed" and not stopped_by_budget, "reason": None,
           "failed_above": list(est.failed_above)}
    if stopped_by_budget:
        out.update(status="budget", reason=f"budget: the search stopped after {len(works)} rungs")
    elif est.status == "censored_low":
        out["reason"] = "range: the smallest rung tried works (the need is at most it)"
    elif est.status == "censored_high":
        top = max(order)
        out["reason"] = ("range: no rung up to the top of the ladder works" if top == n_rungs else
                         f"range: no rung qualifies (rung {top} tried last fails)")
    return out


def _resamples(n: int, n_draws: int, seed: int) -> np.ndarray:
    """``[M, n]`` seed indices: every n^n ordered draw when that is at most ``n_draws``, else random draws."""
    if n ** n <= n_draws:
        return np.array(list(itertools.product(range(n), repeat=n)), dtype=np.int64).reshape(-1, n)
    return np.random.default_rng(seed).integers(0, n, size=(n_draws, n))


def _quantile(sorted_vals: Sequence[float], q: float) -> float:
    """The inverted-CDF quantile of sorted values (the smallest value whose CDF reaches q)."""
    m = len(sorted_vals)
    return sorted_vals[min(m - 1, max(0, math.ceil(q * m) - 1))]


def bootstrap_smallest(success: Mapping[int, Sequence[bool]], *, level: float = 0.9, n_draws: int = 2000,
                       seed: int = 0) -> dict[str, Any]:
    """Seed-bootstrap interval of the smallest working rung on the tried rungs.

    ``success`` maps each tried rung to per-seed successes, the seeds in one order at every rung. Each
    draw resamples the seeds with replacement (the same draw at every rung), re-applies the strict
    majority rule and the shared smallest-size rule; the central ``level`` interval of the resulting
    rung is returned (``hi`` None: above the tried range in more than the upper tail).
    """
    rungs = sorted(success)
    if not rungs:
        return {"lo": None, "hi": None, "level": level, "n_draws": 0, "p_above_range": None}
    table = np.array([list(success[r]) for r in rungs], dtype=bool)  # [rungs, seeds]
    n = table.shape[1]
    draws = _resamples(n, n_draws, seed)
    vals = []
    for idx in draws:
        wins = table[:, idx].sum(1)
        ok = [bool(is_majority(int(w), n)) for w in wins]
        est = smallest_size(rungs, ok)
        vals.append(math.inf if est.size is None else float(est.size))
    vals.sort()
    lo, hi = _quantile(vals, (1 - level) / 2), _quantile(vals, (1 + level) / 2)
    return {"lo": None if math.isinf(lo) else int(lo), "hi": None if math.isinf(hi) else int(hi), "level": level,
            "n_draws": len(vals), "p_above_range": sum(math.isinf(v) for v in vals) / len(vals)}


def trainable_params(n_params: Mapping[str, int], *, frozen_unembedding: bool) -> int:
    """Trainable parameters of one model from its ``param_counts`` groups (a frozen readout left out)."""
    total = int(n_params["total"])
    return total - int(n_params["unembedding"]) if frozen_unembedding else total


def fact_params(n_params: Mapping[str, int], *, n_subjects: int, d_model: int, frozen_unembedding: bool,
                count_readout: bool = True) -> int:
    """Fact-dependent parameters P of the bound: the trainable ones other than the N subject rows of ``W_E``.

    ``count_readout=False`` leaves a learned readout out too (the fixed-readout class's accounting).
    """
    p = trainable_params(n_params, frozen_unembedding=frozen_unembedding) - n_subjects * d_model
    if not frozen_unembedding and not count_readout:
        p -= int(n_params["unembedding"])
    return p


# ---------------------------------------------------------------------------------------------------
# Pure analysis: the bound in one unit


def bound_comparison(n: int, k_rel: int, k: int, d_model: int, p_params: int, bits: float,
                     readout: str = "fixed") -> dict[str, Any]:
    """Theorem 4.2 at ``b = bits`` per number: ``B_e = b d`` against ``P = b p_params`` (one unit: bits).

    ``below``: P < required (a model that works there holds fewer bits than the theorem demands at
    that precision); ``bites``: the bound asks for P > 0 at all; ``ratio``: P / required (None if 0).
    """
    from georecall.theory import required_bits

    if bits <= 0 or p_params < 0 or d_model < 1:
        raise ValueError(f"need bits > 0, p_params >= 0, d_model >= 1, got {bits}, {p_params}, {d_model}")
    b_e = bits * d_model
    have = bits * p_params
    req = required_bits(n, k_rel, k, b_e, readout=readout)
    need = req.required_bits
    return {"bits": bits, "embedding_bits": b_e, "P_have_bits": have, "required_bits": need,
            "gamma_L": req.gamma_local, "regime": req.regime, "bites": need > 0,
            "below": bool(have < need * (1 - 1e-12) - 1e-9), "ratio": have / need if need > 0 else None}


def break_even_bits(n: int, k_rel: int, k: int, d_model: int, p_params: int, readout: str = "fixed",
                    *, max_bits: float = MAX_BITS, tol: float = 1e-6) -> float | None:
    """b*: the precision (bits per number) below which the model lies under the bound; None if above ``max_bits``.

    ``b p - required(b d)`` increases with b (the requirement does not grow with B_e), so b* is found by
    bisection. A working model that is below the bound at b must carry more than b bits per number on
    average; b* > 32 would refute Theorem 4.2 for a float32 model.
    """
    from georecall.theory import required_bits

    def slack(b: float) -> float:
        return b * p_params - required_bits(n, k_rel, k, b * d_model, readout=readout).required_bits

    if slack(max_bits) < 0:
        return None
    lo, hi = 0.0, max_bits
    if slack(lo) >= 0:
        return 0.0
    while hi - lo > tol * max(1.0, hi):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if slack(mid) < 0 else (lo, mid)
    return hi


def models_below(entries: Sequence[Mapping[str, Any]], bits: float) -> list[Mapping[str, Any]]:
    """The bound entries (see :func:`bound_entry`) below the bound at ``bits`` per number, in their own class."""
    out = []
    for e in entries:
        b_star = e["break_even_bits"]
        if b_star is None or bits < b_star - 1e-9:
            out.append(e)
    return out


def bound_entry(cfg: Config, n: int, k: int, condition: str, rung: int, seed: int,
                counts: Mapping[str, int]) -> dict[str, Any]:
    """One successful direct model against Theorem 4.2 at every stated precision, and its break-even b*."""
    c = _condition(condition)
    d, w = shape(cfg, rung)
    readout = "fixed" if c.frozen_readout else "learned"
    p = fact_params(counts, n_subjects=n, d_model=d, frozen_unembedding=c.frozen_readout)
    entry: dict[str, Any] = {
        "N": n, "k": k, "condition": condition, "rung": rung, "d_model": d, "d_mlp": w, "seed": seed,
        "readout": readout, "in_class": c.frozen_readout, "fact_params": p,
        "comparisons": [bound_comparison(n, cfg.n_relations, k, d, p, b, readout) for b in cfg.bits_per_number],
        "break_even_bits": break_even_bits(n, cfg.n_relations, k, d, p, readout),
    }
    if not c.frozen_readout:  # against the fixed-readout bound: the readout's bits are not counted (§6.5)
        p0 = fact_params(counts, n_subjects=n, d_model=d, frozen_unembedding=False, count_readout=False)
        entry.update(fixed_readout_fact_params=p0,
                     fixed_readout_comparisons=[bound_comparison(n, cfg.n_relations, k, d, p0, b, "fixed")
                                                for b in cfg.bits_per_number],
                     fixed_readout_break_even_bits=break_even_bits(n, cfg.n_relations, k, d, p0, "fixed"))
    return entry


def bound_summary(entries: Sequence[Mapping[str, Any]], bits: Sequence[float]) -> dict[str, Any]:
    """Counts over the bound entries: the fixed-readout class, and learned readouts against the fixed-readout bound."""
    def side(es: Sequence[Mapping[str, Any]], comp: str, be: str) -> dict[str, Any]:
        per_bits = []
        for i, b in enumerate(bits):
            cs = [e[comp][i] for e in es]
            ratios = [c["ratio"] for c in cs if c["ratio"] is not None]
            below = [f"N={e['N']} k={e['k']} {e['condition']} d={e['d_model']} seed {e['seed']}"
                     for e, c in zip(es, cs, strict=True) if c["below"]]
            per_bits.append({"bits": b, "n_bites": sum(c["bites"] for c in cs), "n_below": len(below),
                             "below": below[:20], "min_ratio": min(ratios) if ratios else None})
        stars = [e[be] for e in es]
        finite = [s for s in stars if s is not None]
        return {"n_models": len(es), "per_bits": per_bits, "max_break_even_bits": max(finite) if finite else None,
                "n_break_even_above_max": sum(s is None for s in stars),
                "n_below_float32": sum(s is None or s > FLOAT32_BITS for s in stars)}

    in_class = [e for e in entries if e["in_class"]]
    learned = [e for e in entries if not e["in_class"]]
    return {"in_class": side(in_class, "comparisons", "break_even_bits"),
            "learned_vs_fixed_bound": side(learned, "fixed_readout_comparisons", "fixed_readout_break_even_bits"),
            "learned_own_class": side(learned, "comparisons", "break_even_bits")}


# ---------------------------------------------------------------------------------------------------
# Pure analysis: the probes (docs/theory.md §6.5; the pre-computation signature of §4.2)


def index_codes(n: int) -> np.ndarray:
    """``[n, m]`` ±1 binary codes ``c(s)`` of the subjects, m = ceil(log2 n), least significant bit first."""
    from georecall.constructions import n_bits, signs

    if n < 2:
        raise ValueError(f"n must be >= 2, got {n}")
    return signs(np.arange(n), n_bits(n))


def _check_maps(maps: np.ndarray, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    maps = np.asarray(maps)
    codes = np.asarray(codes, dtype=np.float64)
    if maps.ndim != 2 or codes.ndim != 2 or codes.shape[0] != maps.shape[1]:
        raise ValueError(f"maps must be [K, N] and codes [N, c], got {maps.shape} and {codes.shape}")
    if not all(np.array_equal(np.sort(row), np.arange(maps.shape[1])) for row in maps):
        raise ValueError("maps must be bijections of [N] (each row a permutation)")
    return maps, codes


def backward_targets(maps: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """``[N, K*c]``: row a is ``[codes[f_1^{-1}(a)], ..., codes[f_K^{-1}(a)]]`` for bijections ``maps`` [K, N]."""
    maps, codes = _check_maps(maps, codes)
    inverse = np.argsort(maps, axis=1)  # inverse[r, a] = f_r^{-1}(a) for bijections
    return np.concatenate([codes[inverse[r]] for r in range(maps.shape[0])], axis=1)


def forward_targets(maps: np.ndarray, codes: np.ndarray, depth: int) -> np.ndarray:
    """``[N, K^depth * c]``: row s holds ``codes[f_{r_j}(...f_{r_1}(s))]`` for every chain (r_1..r_j), j = depth.

    Chains in lexicographic order of (r_1, ..., r_j); ``maps[r, s] = f_r(s)``.
    """
    maps, codes = _check_maps(maps, codes)
    if depth < 1:
        raise ValueError(f"depth must be >= 1, got {depth}")
    n = maps.shape[1]
    blocks = []
    for chain in itertools.product(range(maps.shape[0]), repeat=depth):
        s = np.arange(n)
        for r in chain:
            s = maps[r, s]
        blocks.append(codes[s])
    return np.concatenate(blocks, axis=1)


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
    """One linear probe against its shuffled-label control."""

    metric: str  # bit_accuracy (±1 codes) or r2 (real codes)
    score: float  # held-out score of the probe
    control_mean: float  # mean held-out score over label shuffles
    control_max: float  # best shuffle
    beats_control: bool  # score > control_max, score - control_mean >= margin and score - chance >= margin


def linear_probe(x: np.ndarray, y: np.ndarray, *, n_folds: int = 4, ridge: float = 0.1, n_shuffles: int = 20,
                 margin: float = 0.1, seed: int = 0, metric: str | None = None) -> ProbeResult:
    """Held-out ridge probe from ``x`` [n, f] to ``y`` [n, t] against controls that permute the rows of y.

    ``metric`` defaults to ``bit_accuracy`` for ±1 targets and ``r2`` otherwise. The probe *beats its
    control* when its score exceeds every shuffle, the shuffle mean by ``margin`` and chance (0.5 bit
    accuracy, R^2 = 0) by ``margin``.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    n = x.shape[0]
    if y.shape[0] != n:
        raise ValueError(f"x has {n} rows but the targets have {y.shape[0]}")
    if not 2 <= n_folds <= n:
        raise ValueError(f"n_folds must be in [2, {n}], got {n_folds}")
    if n_shuffles < 1:
        raise ValueError(f"n_shuffles must be >= 1, got {n_shuffles}")
    if metric is None:
        metric = "bit_accuracy" if np.all(np.abs(y) == 1) else "r2"
    rng = np.random.default_rng(seed)
    folds = np.array_split(rng.permutation(n), n_folds)
    score = probe_metric(y, cv_ridge_predict(x, y, folds, ridge), metric)
    controls = []
    for _ in range(n_shuffles):
        ys = y[rng.permutation(n)]
        controls.append(probe_metric(ys, cv_ridge_predict(x, ys, folds, ridge), metric))
    c_mean, c_max = float(np.mean(controls)), float(np.max(controls))
    chance = 0.5 if metric == "bit_accuracy" else 0.0
    beats = score > c_max and score - c_mean >= margin and score - chance >= margin
    return ProbeResult(metric=metric, score=score, control_mean=c_mean, control_max=c_max, beats_control=bool(beats))


def backward_code_probe(readout_rows: np.ndarray, maps: np.ndarray, codes: np.ndarray, *, n_folds: int = 4,
                        ridge: float = 0.1, n_shuffles: int = 20, margin: float = 0.1, seed: int = 0,
                        metric: str | None = None) -> ProbeResult:
    """Does the readout ``u_a`` linearly hold the backward codes ``codes[f_r^{-1}(a)]``? (docs/theory.md §6.5).

    ``readout_rows`` [N, d] (row a = u_a), ``maps`` [K, N] bijections, ``codes`` [N, c]; the control
    permutes which attribute each target row belongs to (:func:`linear_probe`).
    """
    u = np.asarray(readout_rows, dtype=np.float64)
    y = backward_targets(maps, codes)
    if y.shape[0] != u.shape[0]:
        raise ValueError(f"readout_rows has {u.shape[0]} rows but the maps have N={y.shape[0]}")
    return linear_probe(u, y, n_folds=n_folds, ridge=ridge, n_shuffles=n_shuffles, margin=margin, seed=seed,
                        metric=metric)


def forward_tree_probe(embeddings: np.ndarray, maps: np.ndarray, codes: np.ndarray, depth: int, *,
                       n_folds: int = 4, ridge: float = 0.1, n_shuffles: int = 20, margin: float = 0.1,
                       seed: int = 0, metric: str | None = None) -> ProbeResult:
    """Does the subject embedding ``e_s`` linearly hold the depth-``depth`` forward tree (pre-computation)?

    ``embeddings`` [N, d] (row s = e_s); targets :func:`forward_targets` (the codes of every
    ``f_{r_j}(...f_{r_1}(s))``); the control permutes which subject each target row belongs to.
    """
    e = np.asarray(embeddings, dtype=np.float64)
    y = forward_targets(maps, codes, depth)
    if y.shape[0] != e.shape[0]:
        raise ValueError(f"embeddings has {e.shape[0]} rows but the maps have N={y.shape[0]}")
    return linear_probe(e, y, n_folds=n_folds, ridge=ridge, n_shuffles=n_shuffles, margin=margin, seed=seed,
                        metric=metric)


def readout_rows(model: Any, n_subjects: int, member: int = 0) -> np.ndarray:
    """``[N, d]`` effective readout rows of the subject tokens: ``W_U`` columns times the final LayerNorm gain."""
    import torch

    with torch.no_grad():
        w_u = model.W_U[member][:, :n_subjects].T.double()  # [N, d]
        gain = getattr(model.ln_final, "w", None)
        if gain is not None:
            w_u = w_u * gain[member].double()
    return w_u.cpu().numpy()


def subject_embeddings(model: Any, n_subjects: int, member: int = 0) -> np.ndarray:
    """``[N, d]`` subject rows ``e_s`` of ``W_E``."""
    import torch

    with torch.no_grad():
        return model.embed.W_E[member][:n_subjects].double().cpu().numpy()


def _code_book(book: str, n: int, u: np.ndarray, e: np.ndarray) -> np.ndarray:
    return index_codes(n) if book == "index" else (u if book == "readout" else e)


def probe_model(cfg: Config, model: Any, maps: np.ndarray, n: int, k: int, *, backward: bool,
                seed: int) -> dict[str, Any]:
    """Forward-tree probes of ``e_s`` (depth 1..k, every code book); if ``backward``, backward probes of ``u_a``."""
    u, e = readout_rows(model, n), subject_embeddings(model, n)
    kw = {"n_folds": cfg.probe_folds, "ridge": cfg.probe_ridge, "n_shuffles": cfg.probe_shuffles,
          "margin": cfg.probe_margin, "seed": seed}
    fwd, bwd = [], []
    for book in CODE_BOOKS:
        codes = _code_book(book, n, u, e)
        for depth in range(1, k + 1):
            p = forward_tree_probe(e, maps, codes, depth, **kw)
            fwd.append({"depth": depth, "code_book": book, **_probe_dict(p)})
        if backward:
            bwd.append({"code_book": book, **_probe_dict(backward_code_probe(u, maps, codes, **kw))})
    return {"forward": fwd, "backward": bwd,
            "forward_tree_at_k": any(p["beats_control"] for p in fwd if p["depth"] == k),
            "backward_codes": any(p["beats_control"] for p in bwd) if backward else None}


def _probe_dict(p: ProbeResult) -> dict[str, Any]:
    return {"metric": p.metric, "score": p.score, "control_mean": p.control_mean, "control_max": p.control_max,
            "beats_control": p.beats_control}


# ---------------------------------------------------------------------------------------------------
# Theory side: the bound and the constructions


def theory_table(n: int, k_rel: int, hops: Sequence[int]) -> list[dict[str, Any]]:
    """Per k at N = n: gamma_G, gamma_L (bits per subject embedding), the bound at B_e = 0, construction costs."""
    from georecall.theory import construction_cost, required_bits

    out = []
    for k in hops:
        b0 = required_bits(n, k_rel, k, 0.0, readout="fixed")
        entry: dict[str, Any] = {"N": n, "k": k, "gamma_G": b0.gamma_global, "gamma_L": b0.gamma_local,
                                 "required_bits_at_zero_embedding": b0.required_bits}
        for name in CONSTRUCTION_NAMES:
            c = construction_cost(name, n, k_rel, k)
            key = name.replace("-", "_")
            entry[f"{key}_d_model"] = c.d_model
            entry[f"{key}_mlp_widths"] = list(c.mlp_widths)
            entry[f"{key}_n_layers"] = c.n_layers
            entry[f"{key}_total_params"] = c.total
            entry[f"{key}_P_bits"] = c.P_bits_content
            entry[f"{key}_embedding_bits"] = c.embedding_bits_content
        entry["max_construction_params"] = max(entry[f"{n_.replace('-', '_')}_total_params"]
                                               for n_ in CONSTRUCTION_NAMES)
        out.append(entry)
    return out


def bound_curve(n: int, k_rel: int, k: int, d_values: Sequence[int], bits: float) -> list[dict[str, Any]]:
    """Theorem 4.2's minimum fact-dependent parameters, ``required(b d) / b``, at each d (a theory line)."""
    from georecall.theory import required_bits

    return [{"d_model": int(d), "min_fact_params": required_bits(n, k_rel, k, bits * d).required_bits / bits}
            for d in d_values]


# ---------------------------------------------------------------------------------------------------
# Result


@dataclass(frozen=True)
class Result:
    """The contract of ``result.json`` for ``multihop`` (plain numbers, lists and flat dicts)."""

    scale: str  # smoke | quick | paper
    subjects: list[int]  # the N values
    n_relations: int  # K
    hops: list[int]  # the k values
    conditions: list[str]  # the labelled conditions
    condition_labels: dict[str, str]  # condition -> what it is
    condition_hops: dict[str, list[int]]  # condition -> the k at which it is tested
    ladder: list[dict[str, Any]]  # rung, d_model, d_mlp
    seeds: list[int]  # seeds per rung
    target_accuracy: float  # success threshold per seed (a rung works with a strict majority)
    steps: int  # step budget per run
    recipe: dict[str, Any]  # the training recipe, heads, readout std, probe settings
    search: dict[str, Any]  # start rung, budget, the rule in words
    bits_per_number: list[float]  # stated precisions of the bound comparison
    cells: list[dict[str, Any]]  # one per (N, k, condition): tried rungs, smallest size, interval, status
    theory: list[dict[str, Any]]  # one per (N, k): gamma_G, gamma_L, bound at B_e = 0, construction costs
    bound: list[dict[str, Any]]  # one per successful direct model (seed x working rung): the bound at each b
    bound_summary: dict[str, Any]  # counts: in the fixed-readout class; learned readouts against that bound
    bound_curves: list[dict[str, Any]]  # per (N, k, b): required(b d)/b over the ladder's d (theory lines)
    probes: list[dict[str, Any]]  # one per probed model: forward-tree and backward-code probes
    n_forward_flagged: int  # probed models whose e_s holds the depth-k forward tree (some code book)
    n_backward_flagged: int  # probed learned readouts holding backward codes (some code book)
    n_failed_runs: int  # runs whose training raised (status 'failed'); they count as misses
    sweep: dict[str, Any] = field(default_factory=dict)  # filled by the driver: total/skipped/trained/failed
    wall_time_s: float = 0.0  # filled by the driver: training + analysis wall time
    schema_version: int = SCHEMA_VERSION


def _counts(cfg: Config, n: int, k: int, condition: str, rung: int,
            by_hash: Mapping[str, Mapping[str, Any]]) -> dict[str, int]:
    """Parameter groups of one model at a rung: from a finished row, else from a model built on the spot."""
    for s in cfg.seeds:
        row = by_hash.get(run_config(cfg, n, k, condition, rung, s).config_hash())
        if row is not None and row.get("status") == "done":
            cell = outcome_table([row], lambda r: (0,))[(0,)]
            if cell.n_params:
                return cell.n_params
    return _counts_of(run_config(cfg, n, k, condition, rung, cfg.seeds[0]))


@functools.lru_cache(maxsize=1024)
def _counts_cached(run: RunConfig) -> tuple[tuple[str, int], ...]:
    from georecall.model import Transformer, param_counts
    from georecall.tasks import Vocab, context_length

    vocab = Vocab(run.task.n_subjects, run.task.n_relations)
    model = Transformer(run.model, d_vocab=vocab.d_vocab, n_ctx=context_length(run.task), n_members=1)
    return tuple(param_counts(model).items())


def _counts_of(run: RunConfig) -> dict[str, int]:
    return dict(_counts_cached(run))


def _size(cfg: Config, n: int, k: int, condition: str, rung: int, by_hash: Mapping[str, Mapping[str, Any]]
          ) -> dict[str, Any]:
    c = _condition(condition)
    counts = _counts(cfg, n, k, condition, rung, by_hash)
    d, w = shape(cfg, rung)
    return {"rung": rung, "d_model": d, "d_mlp": w, "trainable_params": trainable_params(
        counts, frozen_unembedding=c.frozen_readout), "total_params": int(counts["total"])}


def cell_entry(cfg: Config, n: int, k: int, condition: str, by_hash: Mapping[str, Mapping[str, Any]],
               out_dir: Path | None, theory: Mapping[str, Any]) -> dict[str, Any]:
    """One (N, k, condition): its search, the smallest working size by the rule, its interval and status."""
    src = source_condition(k, condition)
    path = search_path(cfg, n, k, src, by_hash, out_dir)
    tried = []
    for rung in sorted(path.tried):
        outs = path.tried[rung]
        tried.append({**_size(cfg, n, k, src, rung, by_hash), "works": path.works[rung],
                      "n_success": sum(o.success for o in outs), "seeds": [o.seed for o in outs],
                      "accuracy": [o.accuracy for o in outs], "steps": [o.steps for o in outs],
                      "greedy_final": [o.greedy_final for o in outs], "greedy_chain": [o.greedy_chain for o in outs],
                      "success": [o.success for o in outs]})
    if path.next_rung is not None:  # not finished (an analysis of a partial store)
        best = {"rung": None, "first_success": None, "status": "searching", "bracketed": False,
                "reason": "budget: the search has not finished", "failed_above": []}
    else:
        best = smallest_rung(path.works, len(cfg.ladder), stopped_by_budget=path.stopped_by_budget)
    boot = bootstrap_smallest({t["rung"]: t["success"] for t in tried}, level=cfg.interval_level,
                              n_draws=cfg.bootstrap_resamples, seed=n * 1000 + k)
    size_of = {t["rung"]: t for t in tried}
    top = _size(cfg, n, k, src, len(cfg.ladder), by_hash)
    entry: dict[str, Any] = {
        "N": n, "k": k, "condition": condition, "source_condition": src, "n_layers": n_layers(src, k),
        "tried": tried, **{f"smallest_{key}": v for key, v in best.items()},
        "smallest": size_of.get(best["rung"]) if best["rung"] is not None else None,
        "first_success": size_of.get(best["first_success"]) if best["first_success"] is not None else None,
        "interval": {**boot,
                     "trainable_params_lo": size_of[boot["lo"]]["trainable_params"] if boot["lo"] else None,
                     "trainable_params_hi": size_of[boot["hi"]]["trainable_params"] if boot["hi"] else None},
        "range_top_trainable_params": top["trainable_params"], "range_top_total_params": top["total_params"],
        "max_construction_params": theory["max_construction_params"],
        "range_covers_constructions": top["total_params"] > theory["max_construction_params"],
    }
    return entry


def analyze(cfg: Config, rows: list[dict[str, Any]], out_dir: Path) -> Result:
    """The searches per (N, k, condition), greedy CoT scores, the bound per successful direct model, the probes."""
    from georecall.results import load_run

    out_dir = Path(out_dir)
    by_hash = _by_hash([r for r in rows])
    theory = [t for n in cfg.subjects for t in theory_table(n, cfg.n_relations, cfg.hops)]
    theory_of = {(t["N"], t["k"]): t for t in theory}
    cell_list = [cell_entry(cfg, n, k, c, by_hash, out_dir, theory_of[(n, k)]) for n, k, c in cells(cfg)]

    def row_of(n: int, k: int, cond: str, rung: int, seed: int) -> Mapping[str, Any] | None:
        row = by_hash.get(run_config(cfg, n, k, cond, rung, seed).config_hash())
        return row if row is not None and row.get("status") == "done" else None

    # Greedy generation of the smallest working CoT models (k >= 2; cot-final already has it).
    for e in cell_list:
        if e["condition"] == "cot-frozen" and e["k"] >= 2 and e["smallest"] is not None:
            rung, chain, final = e["smallest"]["rung"], [], []
            for s in cfg.seeds:
                row = row_of(e["N"], e["k"], "cot-frozen", rung, s)
                g = (None, None) if row is None else _greedy_of(str(out_dir / row["run_dir"]))
                final.append(g[0])
                chain.append(g[1])
            e["smallest"] = {**e["smallest"], "greedy_final": final, "greedy_chain": chain}

    # The bound, for every successful seed at every working rung of the direct conditions (own searches only).
    bound = []
    done_src = set()
    for e in cell_list:
        key = (e["N"], e["k"], e["source_condition"])
        if _condition(e["source_condition"]).cot or key in done_src:
            continue
        done_src.add(key)
        for t in e["tried"]:
            if not t["works"]:
                continue
            counts = _counts(cfg, e["N"], e["k"], e["source_condition"], t["rung"], by_hash)
            for s, ok in zip(t["seeds"], t["success"], strict=True):
                if ok:
                    bound.append(bound_entry(cfg, e["N"], e["k"], e["source_condition"], t["rung"], s, counts))
    summary = bound_summary(bound, cfg.bits_per_number)
    curves = [{"N": n, "k": k, "bits": b, "points": bound_curve(n, cfg.n_relations, k, cfg.ladder, b)}
              for n in cfg.subjects for k in cfg.hops for b in cfg.bits_per_number]

    # Probes: the smallest working rung of every direct and CoT cell (own searches), every working rung of
    # direct-learned; every seed that succeeded there.
    probes = []
    probed = set()
    for e in cell_list:
        src = e["source_condition"]
        if (e["N"], e["k"], src) in probed:
            continue
        probed.add((e["N"], e["k"], src))
        if src == "cot-final":
            continue
        rungs = [t["rung"] for t in e["tried"] if t["works"]] if src == "direct-learned" else (
            [e["smallest"]["rung"]] if e["smallest"] is not None else [])
        for t in e["tried"]:
            if t["rung"] not in rungs:
                continue
            for s, ok, acc in zip(t["seeds"], t["success"], t["accuracy"], strict=True):
                row = row_of(e["N"], e["k"], src, t["rung"], s)
                if not ok or row is None:
                    continue
                run = load_run(out_dir / row["run_dir"])
                p = probe_model(cfg, run.model, run.worlds[0].maps, e["N"], e["k"],
                                backward=not _condition(src).frozen_readout, seed=s)
                probes.append({"N": e["N"], "k": e["k"], "condition": src, "rung": t["rung"],
                               "d_model": t["d_model"], "d_mlp": t["d_mlp"], "seed": s, "accuracy": acc,
                               "smallest": e["smallest"] is not None and t["rung"] == e["smallest"]["rung"], **p})

    recipe = {**cfg.recipe.describe(), "n_heads": cfg.n_heads, "unembed_init_std": cfg.unembed_init_std,
              "layernorm": True, "batch": "full", "mlp_ratio": cfg.mlp_ratio,
              "probe": {"folds": cfg.probe_folds, "ridge": cfg.probe_ridge, "shuffles": cfg.probe_shuffles,
                        "margin": cfg.probe_margin, "code_books": list(CODE_BOOKS)}}
    search = {"start_rung": cfg.search_start, "max_tries": cfg.search_max_tries, "n_rungs": len(cfg.ladder),
              "rule": (f"over the rung index from rung {cfg.search_start} (d = {cfg.ladder[cfg.search_start - 1]}), "
                       "the "
                       "same for every N, k and condition: double the index while every tried rung fails, halve it "
                       "while every tried rung works, then bisect to adjacent rungs; at most "
                       f"{cfg.search_max_tries} rungs per cell. A rung works when a strict majority of the "
                       f"{len(cfg.seeds)} seeds reach {cfg.success_accuracy} within {cfg.steps} steps "
                       "(cot-final: by greedy final-answer accuracy)."),
              "interval": f"seed bootstrap, central {cfg.interval_level:.0%}, the majority rule re-applied on the "
                          "tried rungs"}
    return Result(
        scale=cfg.scale, subjects=list(cfg.subjects), n_relations=cfg.n_relations, hops=list(cfg.hops),
        conditions=list(cfg.conditions), condition_labels={c: CONDITIONS[c].label for c in cfg.conditions},
        condition_hops={c: list(condition_hops(cfg, c)) for c in cfg.conditions},
        ladder=[{"rung": i + 1, "d_model": d, "d_mlp": cfg.mlp_ratio * d} for i, d in enumerate(cfg.ladder)],
        seeds=list(cfg.seeds), target_accuracy=cfg.success_accuracy, steps=cfg.steps, recipe=recipe, search=search,
        bits_per_number=list(cfg.bits_per_number), cells=cell_list, theory=theory, bound=bound,
        bound_summary=summary, bound_curves=curves, probes=probes,
        n_forward_flagged=sum(p["forward_tree_at_k"] for p in probes),
        n_backward_flagged=sum(bool(p["backward_codes"]) for p in probes),
        n_failed_runs=sum(1 for r in rows if r["status"] != "done"))


# ---------------------------------------------------------------------------------------------------
# Figures (from result.json only; drawn by georecall.plotting.multihop)


def plot(result_dir: str | Path) -> list[Path]:
    """The capacity-depth figure, the search grid, the bound comparison and the probes, each PNG beside its CSV."""
    folder = Path(result_dir)
    return multihop_plots.plot(load_result_json(folder), folder)


def summarize(result: Result) -> str:
    """The smallest working model per (N, k, condition), the bound and the probe verdicts, as text."""
    lines = [f"multihop ({result.scale}): N in {result.subjects}, K={result.n_relations}, target "
             f"{result.target_accuracy:.0%}, {result.steps} steps, seeds {result.seeds}"]
    lines.append(f"{'N':>4} {'k':>2} {'condition':<15} {'d':>4} {'d_mlp':>5} {'layers':>6} {'trainable':>9} "
                 f"{'interval':>17}  status")
    for e in result.cells:
        s = e["smallest"]
        iv = e["interval"]
        ivs = f"[{iv['trainable_params_lo'] or '-'}, {iv['trainable_params_hi'] or 'above'}]"
        if s is None:
            lines.append(f"{e['N']:>4} {e['k']:>2} {e['condition']:<15} {'-':>4} {'-':>5} {e['n_layers']:>6} "
                         f"{'-':>9} {ivs:>17}  {e['smallest_status']}: {e['smallest_reason']}")
            continue
        lines.append(f"{e['N']:>4} {e['k']:>2} {e['condition']:<15} {s['d_model']:>4} {s['d_mlp']:>5} "
                     f"{e['n_layers']:>6} {s['trainable_params']:>9} {ivs:>17}  {e['smallest_status']}"
                     + (f" ({e['smallest_reason']})" if e["smallest_reason"] else ""))
    bs = result.bound_summary
    for name, side in (("fixed-readout class", bs["in_class"]),
                       ("learned readouts vs the fixed-readout bound", bs["learned_vs_fixed_bound"])):
        parts = [f"b={p['bits']:g}: {p['n_below']} below, {p['n_bites']} where it bites, min P/required "
                 f"{'-' if p['min_ratio'] is None else format(p['min_ratio'], '.3g')}" for p in side["per_bits"]]
        mb = side["max_break_even_bits"]
        lines.append(f"bound, {name} ({side['n_models']} successful models): " + "; ".join(parts)
                     + f"; max break-even b* {'-' if mb is None else format(mb, '.3g')} bits per number")
    lines.append(f"probes: {len(result.probes)} models; depth-k forward tree in e_s: {result.n_forward_flagged}; "
                 f"backward codes in a learned readout: {result.n_backward_flagged}")
    return "\n".join(lines)


__all__ = [
    "CODE_BOOKS", "CONDITIONS", "CONDITION_NAMES", "ID", "PROVENANCE", "SCHEMA_VERSION", "Condition", "Config",
    "ProbeResult", "Result", "SearchPath", "SeedOutcome", "analyze", "backward_code_probe", "backward_targets",
    "bootstrap_smallest", "bound_comparison", "bound_curve", "bound_entry", "bound_summary", "break_even_bits",
    "cell_entry", "cells", "condition_hops", "config", "cv_ridge_predict", "fact_params", "forward_targets",
    "forward_tree_probe", "index_codes", "linear_probe", "majority_success", "models_below", "n_layers",
    "next_runs", "plot", "probe_metric", "probe_model", "readout_rows", "run_config", "rung_works", "runs",
    "search_cells", "search_path", "seed_outcomes", "shape", "smallest_rung", "source_condition",
    "subject_embeddings", "summarize", "theory_table", "trainable_params",
]
