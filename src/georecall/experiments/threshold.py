"""Threshold: the smallest d_model at which a one-layer transformer with learned embeddings recalls every fact.

Claim (paper §5, "the capacity threshold predicted by theory is borne out empirically"; Theorem 4.1,
docs/theory.md §4.1, §6.4-§6.6): trained with learned embeddings, a one-layer transformer memorises all N·K
single-hop facts ``(s, r) -> f_r(s)`` once d_model passes a threshold d*(N, K) that grows like
``K log2 N`` (the selector construction needs ``d = (K+1) ceil(log2 N) + K``; the lower bound speaks of
``gamma = K log2 N`` *bits* per subject embedding — bits, not float dimensions). Its rival is a modest
power law ``d* = c N^β``: the two are decided against each other per K (:func:`law_comparison`).

What is trained. One layer, one head, a ReLU MLP of width ``mlp_ratio * d``, learned token and position
embeddings (init N(0, 1)), every other matrix initialised N(0, 1/d), full-batch AdamW on all ``N K``
queries, lr ``recipe.lr`` (cosine after a warm-up), members stop at ``target_accuracy`` (0.99). Two
conditions are primary (:data:`CONDITIONS`):

* ``ln_frozen``: pre-LayerNorm and a frozen, fact-independent random unembedding (``W_U ~ N(0, 1/d)``,
  ``b_U = 0``, drawn from the init seed before the facts): the fixed-readout class of the lower bound
  (docs/theory.md §6.5). Only here must the facts live in the embeddings (and the MLP), so the claim
  "the embeddings hold the facts" (C7) is decided on it.
* ``ln_learned``: the usual model, a learned untied readout ``W_U``, which can hold facts itself (the
  readout-only model of §6.5), so its d* cannot tell embedding-stored from readout-stored facts.
* ``noln_learned``, ``noln_frozen`` (paper scale): the same without LayerNorm.

The search (per condition, N, K; no prior on the answer). :func:`cell_trace` replays it from the store:

1. **Bracket, then bisect**, with :func:`~georecall.experiments.base.next_size`: from ``search_start``
   (the same d for every N, K and condition), doubling while every tried d fails and halving while every
   one works, then bisecting to the integer. A d *works* when a strict majority of the seeds reach
   ``success_accuracy`` within the budget; d* is read by the shared rule
   (:func:`~georecall.experiments.base.smallest_size`: the smallest tried d from which every larger tried
   d works). A cell the range ``[d_min, search_max]`` cannot bracket is reported so (``censored_low``,
   ``censored_high``), never fitted.
2. **A budget that does not decide the answer.** The search runs at the first budget of ``budgets``;
   at each next budget (twice the last) it starts at the last d* and d* − 1 and goes on from there.
   d* is *converged* when it moves by at most ``max(converge_abs, converge_rel · d*)`` between two
   consecutive budgets; the ladder stops there (d* at the larger budget is reported) or at its end
   (``converged`` false: reported, and the claim's scope counts it short). d* at every budget tried is
   in the result.
3. **Monotonicity re-tested.** Bisection assumes success is monotone in d. At the final budget the
   widths ``d* + j`` (``retest_above``) are trained too; a failure there is a violation, reported
   (``violations``), and the rule then moves d* above it.
4. **Sensitivity** (``sensitivity_cells``): those cells are searched again at the learning rates
   ``sensitivity_lrs`` (at their final budget, starting from d*), reporting how d* moves.

Intervals: a seed bootstrap (a replicate redraws each cell's seeds with replacement — a seed is one
world, one init and one readout — and re-applies the rule to the tried widths) gives a 95 % interval
on every d*, on the laws' parameters and on the model comparison.

Scales (members that reach the target stop, so failing widths below d* spend the budget; a step of
these tiny models costs about 3.5 ms on one CPU core whatever its size):

* ``smoke``: N in {4, 8}, K = 2, ``ln_frozen`` and ``ln_learned``, 2 seeds, budgets (200, 400): the same
  code path in seconds.
* ``quick``: N in {8, 16, 64, 128} (16×; 64 and 8 give two pairs of equal K log2 N across K), K in
  {2, 4, 8}, both primary conditions, 3 seeds, budgets (500, 1000) at lr 3e-2, retests d* + 1 and d* + 2,
  sensitivity at (N, K) = (64, 4) for the fixed readout with lr 1e-2 and 1e-1. Chosen for the 30-minute
  budget of the whole reproduction, measured (2026-12-01, 2 CPU cores, 2 workers): with N = 32 too and
  budgets (1000, 2000) the threshold took 29 min of CPU time (23 min wall on a shared machine; d* moved
  by more than max(1, 10 %) from 1000 to 2000 steps in 3 of 30 cells); without N = 32 it still took
  13.9 min wall of a fresh reproduction, which left no room for the rest. Halving the budgets halves
  the cost; more cells may then be reported not converged (the result says which), and d* at both
  budgets is in the result. At (500, 1000) the threshold took 7.8 min of a fresh reproduction (two
  workers), with 8 of 12 cells per condition converged.
* ``paper``: N in {64, ..., 4096} (64×), K in {2, 4, 8}, all four conditions, 3 seeds, budgets
  (1000, 2000, 4000, 8000), for one GPU.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from georecall.config import ModelConfig, RunConfig, TaskConfig, TrainConfig
from georecall.experiments import stats
from georecall.experiments.base import (
    Provenance,
    Recipe,
    RecipeFields,
    SmallestSize,
    load_result_json,
    outcome_table,
    replay_search,
    smallest_size,
    validate_config,
)
from georecall.experiments.base import converged as base_converged
from georecall.plotting import threshold as threshold_plots
from georecall.theory import construction_cost, gamma_global, information_bits

ID = "threshold"
SCHEMA_VERSION = 2

PROVENANCE = Provenance(
    claim="With learned embeddings, a one-layer transformer memorises all N·K single-hop facts once d_model "
          "passes a threshold that grows like K log2 N (logarithmic in N), as the selector construction predicts.",
    paper_section="§5 Empirical verification (capacity threshold); §4.1 (single hop)",
    theorems=("Theorem 4.1", "Theorem 4.2", "docs/theory.md §4.1", "docs/theory.md §6.4", "docs/theory.md §6.5",
              "docs/theory.md §6.6"),
    paper_reported={
        "threshold": "our copy of the paper states that 'the capacity threshold predicted by theory is borne out "
                     "empirically' (§1, §5); its numbers and figure were lost with the formulas",
    },
)

#: The conditions, (layernorm, readout); the first two are both primary.
CONDITIONS: dict[str, tuple[bool, str]] = {
    "ln_frozen": (True, "frozen"),
    "ln_learned": (True, "learned"),
    "noln_learned": (False, "learned"),
    "noln_frozen": (False, "frozen"),
}
#: Both primary: the fixed readout decides "the embeddings hold the facts"; the learned readout is the usual model.
PRIMARY_CONDITIONS: tuple[str, ...] = ("ln_frozen", "ln_learned")
CONDITION_LABELS: dict[str, str] = threshold_plots.CONDITION_LABELS  # one wording, in figures and results
#: Accuracies within this of the success level count as reaching it (float rounding of counts).
ACC_TOL = 1e-9


# ---------------------------------------------------------------------------------------------------
# Config


@dataclass(frozen=True)
class ThresholdConfig(RecipeFields):
    """One scale of the threshold experiment: the (N, K, condition) cells, the search and the recipe."""

    scale: str  # smoke | quick | paper
    n_subjects: tuple[int, ...] = field(metadata={"min": 2, "nonempty": True, "distinct": True})  # N values
    n_relations: tuple[int, ...] = field(metadata={"min": 1, "nonempty": True, "distinct": True})  # K values
    # Seeds per width (world, init and frozen readout all drawn from the seed).
    seeds: tuple[int, ...] = field(metadata={"min": 0, "nonempty": True, "distinct": True})
    # The budget ladder: recipe.steps, then doubled this many times; the search runs at the first budget and
    # each next one tests convergence (see ``budgets``).
    budget_doublings: int = field(metadata={"min": 0, "max": 30})  # 2^30 x recipe.steps is past any budget
    recipe: Recipe = field(default_factory=lambda: Recipe(steps=500, lr=3e-2, target_accuracy=0.99, eval_every=50))
    conditions: tuple[str, ...] = field(default=PRIMARY_CONDITIONS,
                                        metadata={"nonempty": True, "distinct": True, "choices": tuple(CONDITIONS)})
    search_start: int = field(default=8, metadata={"min": 1})  # first d of every search (no prior)
    d_min: int = field(default=1, metadata={"min": 1})  # the search's range [d_min, search_max]
    search_max: int = field(default=512, metadata={"min": 1})
    converge_abs: int = field(default=1, metadata={"min": 0})  # d* converged: |Δd*| <= max(abs, rel·d*)
    converge_rel: float = field(default=0.1, metadata={"min": 0.0})
    retest_above: tuple[int, ...] = field(default=(1, 2), metadata={"min": 1, "distinct": True})  # d* + j re-tested
    # (N, K) cells searched again at other learning rates (at their final budget).
    sensitivity_cells: tuple[tuple[int, int], ...] = ()
    sensitivity_lrs: tuple[float, ...] = field(default=(), metadata={"min": 1e-9, "distinct": True})
    # The conditions searched again there (empty: every condition).
    sensitivity_conditions: tuple[str, ...] = field(default=(), metadata={"distinct": True,
                                                                           "choices": tuple(CONDITIONS)})
    mlp_ratio: int = field(default=4, metadata={"min": 1})  # d_mlp = mlp_ratio * d
    n_bootstrap: int = field(default=500, metadata={"min": 0})  # seed-bootstrap replicates
    bootstrap_seed: int = field(default=0, metadata={"min": 0})  # numpy seed of the bootstrap (deterministic)

    def __post_init__(self) -> None:
        validate_config(self)
        if self.recipe.steps < 1:
            raise ValueError(f"recipe.steps (the first budget) must be >= 1, got {self.recipe.steps}")
        if not self.d_min <= self.search_start <= self.search_max:
            raise ValueError(f"need d_min <= search_start <= search_max, got {self.d_min}, {self.search_start}, "
                             f"{self.search_max}")
        cells = {(n, k) for n in self.n_subjects for k in self.n_relations}
        bad = [c for c in self.sensitivity_cells if tuple(c) not in cells]
        if bad:
            raise ValueError(f"sensitivity_cells must be (N, K) cells of the grid, got {bad}")
        if self.sensitivity_cells and not self.sensitivity_lrs:
            raise ValueError("sensitivity_cells need sensitivity_lrs")
        if self.recipe.lr in self.sensitivity_lrs:
            raise ValueError(f"sensitivity_lrs must differ from recipe.lr ({self.recipe.lr})")

    @property
    def budgets(self) -> tuple[int, ...]:
        """The step budgets: ``recipe.steps`` doubled ``budget_doublings`` times (each twice the last)."""
        return tuple(self.recipe.steps * 2 ** i for i in range(self.budget_doublings + 1))

    def describe_recipe(self) -> dict[str, Any]:
        """The training recipe d* depends on, as plain JSON (reported beside every threshold)."""
        return {
            "architecture": f"1 layer, 1 head, ReLU MLP of width {self.mlp_ratio}·d, learned token and position "
                            "embeddings, untied unembedding (learned, or frozen N(0, 1/d) drawn from the init seed)",
            "n_layers": 1, "n_heads": 1, "mlp_ratio": self.mlp_ratio, "init_std": "d ** -0.5",
            "unembed_init_std": "d ** -0.5", "embed_init_std": ModelConfig().embed_init_std,
            "optimizer": "AdamW, full batch (all N·K queries every step), loss on the answer position",
            **self.recipe.describe(), "budgets": list(self.budgets), "seeds": list(self.seeds),
        }


def config(scale: str) -> ThresholdConfig:
    """The threshold experiment at ``smoke``, ``quick`` or ``paper`` scale (module docstring)."""
    if scale == "smoke":
        return ThresholdConfig(scale="smoke", n_subjects=(4, 8), n_relations=(2,), seeds=(0, 1), budget_doublings=1,
                               retest_above=(1,), n_bootstrap=50,
                               recipe=Recipe(steps=200, lr=3e-2, warmup_steps=10, eval_every=50, target_accuracy=0.99))
    if scale == "quick":
        return ThresholdConfig(scale="quick", n_subjects=(8, 16, 64, 128), n_relations=(2, 4, 8), seeds=(0, 1, 2),
                               budget_doublings=1, sensitivity_cells=((64, 4),), sensitivity_lrs=(1e-2, 1e-1),
                               sensitivity_conditions=("ln_frozen",),
                               recipe=Recipe(steps=500, lr=3e-2, eval_every=50, target_accuracy=0.99))
    if scale == "paper":
        return ThresholdConfig(scale="paper", n_subjects=(64, 128, 256, 512, 1024, 2048, 4096), n_relations=(2, 4, 8),
                               seeds=(0, 1, 2), budget_doublings=3, conditions=tuple(CONDITIONS),
                               sensitivity_cells=((256, 4), (1024, 4)), sensitivity_lrs=(1e-2, 1e-1),
                               n_bootstrap=1000, recipe=Recipe(steps=1000, lr=3e-2, eval_every=50,
                                                               target_accuracy=0.99))
    raise ValueError(f"scale must be smoke, quick or paper, got {scale!r}")


def k_log2_n(n_subjects: int, n_relations: int) -> float:
    """``K log2 N``: the bits of the K answers of one subject."""
    return n_relations * math.log2(n_subjects)


def model_config(cfg: Any, d: int, condition: str) -> ModelConfig:
    """The one-layer model of ``condition`` at width ``d`` (``cfg`` needs ``mlp_ratio``)."""
    layernorm, readout = CONDITIONS[condition]
    std = d ** -0.5  # every matrix but W_E/W_pos; the readout, learned or frozen, starts as N(0, 1/d)
    return ModelConfig(d_model=d, n_layers=1, n_heads=1, d_mlp=cfg.mlp_ratio * d, layernorm=layernorm,
                       frozen_unembedding=readout == "frozen", init_std=std, unembed_init_std=std)


def condition_of(model: ModelConfig) -> str:
    """The condition of a model config (its LayerNorm and readout flags)."""
    return f"{'ln' if model.layernorm else 'noln'}_{'frozen' if model.frozen_unembedding else 'learned'}"


def search_train(cfg: ThresholdConfig, steps: int, lr: float | None = None) -> TrainConfig:
    """The recipe at a budget (and learning rate): what every search run of that budget trains with."""
    return dataclasses.replace(cfg.train_config(), steps=steps, lr=cfg.recipe.lr if lr is None else lr)


def search_run(cfg: ThresholdConfig, condition: str, n: int, k: int, d: int, seed: int, *, steps: int,
               lr: float | None = None) -> RunConfig:
    """One seed of the (condition, N, K) search at width d, budget ``steps`` and learning rate ``lr``."""
    return RunConfig(task=TaskConfig(n_subjects=n, n_relations=k), model=model_config(cfg, d, condition),
                     train=search_train(cfg, steps, lr), seeds=(seed,))


# ---------------------------------------------------------------------------------------------------
# The search, replayed from the store's rows


@dataclass(frozen=True)
class Stage:
    """One budget of one cell's search: the widths it tried and what the rule reads off them."""

    steps: int
    tried: dict[int, bool]  # d -> works (majority of seeds)
    accuracy: dict[int, tuple[float | None, ...]]  # d -> final accuracy per seed (cfg.seeds order; None: failed)
    d_star: int | None
    status: str  # bracketed | censored_low | censored_high | searching
    first_success: int | None
    failed_above: tuple[int, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"steps": self.steps, "d_star": self.d_star, "status": self.status,
                "first_success": self.first_success, "failed_above": list(self.failed_above),
                "tried": [[d, ok] for d, ok in sorted(self.tried.items())],
                "accuracy": [[d, list(a)] for d, a in sorted(self.accuracy.items())]}


@dataclass(frozen=True)
class CellTrace:
    """One (condition, N, K[, lr]) search over the budget ladder, as far as the rows go."""

    condition: str
    n_subjects: int
    n_relations: int
    lr: float
    stages: tuple[Stage, ...]
    pending: tuple[RunConfig, ...]  # the runs to train next (empty: the search is done)
    converged: bool | None  # None: a single budget tried, or not done
    retested: tuple[int, ...]  # widths above d* trained at the final budget to test monotonicity
    violations: tuple[int, ...]  # of those (and of the search's own), the widths above first success that fail

    @property
    def done(self) -> bool:
        return not self.pending

    @property
    def final(self) -> Stage | None:
        return self.stages[-1] if self.stages else None

    @property
    def d_star(self) -> int | None:
        return None if not self.done or self.final is None else self.final.d_star

    @property
    def status(self) -> str:
        return "searching" if not self.done or self.final is None else self.final.status


def _outcomes(cfg: ThresholdConfig, condition: str, n: int, k: int, d: int, steps: int, lr: float | None,
              by_hash: Mapping[str, Mapping[str, Any]]) -> tuple[float | None, ...] | None:
    """Final accuracy per seed of width d (None for a run that failed); None until every seed has a row."""
    hashes = [search_run(cfg, condition, n, k, d, s, steps=steps, lr=lr).config_hash() for s in cfg.seeds]
    if not all(h in by_hash for h in hashes):
        return None
    cell = outcome_table([by_hash[h] for h in hashes], lambda r: (0,))[(0,)]
    acc = dict(zip(cell.seeds, cell.accuracy, strict=True))
    return tuple(acc.get(s) for s in cfg.seeds)


def _stage(cfg: ThresholdConfig, condition: str, n: int, k: int, steps: int, lr: float | None,
           by_hash: Mapping[str, Mapping[str, Any]], first: Sequence[int],
           extra: Sequence[int] = ()) -> tuple[Stage, list[int]]:
    """Replay one budget's search (:func:`~georecall.experiments.base.replay_search`: ``first`` tried together,
    then :func:`next_size`), then the widths ``d* + extra``.

    Returns the stage as far as it goes and the widths to train next (empty: done).
    """

    def rule(tried: Mapping[int, bool]) -> SmallestSize:
        return smallest_size(sorted(tried), [tried[d] for d in sorted(tried)])

    def retests(tried: Mapping[int, bool]) -> list[int]:
        d_star = rule(tried).size
        return [] if d_star is None else [d for d in (d_star + j for j in extra) if d <= cfg.search_max]

    tried, accs, missing = replay_search(
        lambda d: _outcomes(cfg, condition, n, k, d, steps, lr, by_hash), first, lo=cfg.d_min, hi=cfg.search_max,
        success_accuracy=cfg.success_accuracy, then=retests if extra else None)
    if missing or not tried:
        return Stage(steps, tried, accs, None, "searching", None, ()), missing
    est = rule(tried)
    return Stage(steps, tried, accs, est.size, est.status, est.first_success, tuple(est.failed_above)), []


def converged(cfg: ThresholdConfig, before: int, after: int) -> bool:
    """d* moved by at most ``max(converge_abs, converge_rel · d*)`` when the budget doubled."""
    return base_converged(before, after, abs_tol=cfg.converge_abs, rel_tol=cfg.converge_rel)


def cell_trace(cfg: ThresholdConfig, condition: str, n: int, k: int, by_hash: Mapping[str, Mapping[str, Any]], *,
               lr: float | None = None, budgets: Sequence[int] | None = None,
               start: int | None = None) -> CellTrace:
    """The search of one cell over the budget ladder, replayed from ``by_hash`` (store rows by config hash).

    ``budgets`` defaults to the config's ladder; ``start`` to ``search_start``. Later budgets start at
    the last d* and d* − 1. The final budget's stage is re-tested at ``d* + retest_above``.
    """
    ladder = list(cfg.budgets if budgets is None else budgets)
    lr_used = cfg.recipe.lr if lr is None else lr

    def pending(steps: int, ds: Sequence[int]) -> tuple[RunConfig, ...]:
        return tuple(search_run(cfg, condition, n, k, d, s, steps=steps, lr=lr) for d in ds for s in cfg.seeds)

    stages: list[Stage] = []
    conv: bool | None = None
    first: list[int] = [cfg.search_start if start is None else start]
    for i, steps in enumerate(ladder):
        stage, missing = _stage(cfg, condition, n, k, steps, lr, by_hash, first)
        if missing:
            return CellTrace(condition, n, k, lr_used, (*stages, stage), pending(steps, missing), None, (), ())
        stages.append(stage)
        if stage.status != "bracketed" or stage.d_star is None:
            break  # the range could not bracket it: a larger budget is not searched
        if i > 0 and stages[-2].d_star is not None:
            conv = converged(cfg, stages[-2].d_star, stage.d_star)
            if conv:
                break
        if i < len(ladder) - 1:
            first = [stage.d_star] + ([stage.d_star - 1] if stage.d_star - 1 >= cfg.d_min else [])
    # Re-test monotonicity above d* at the final budget (the same replay, then the extra widths).
    last = stages[-1]
    retest: tuple[int, ...] = ()
    if last.status == "bracketed" and cfg.retest_above:
        stage, missing = _stage(cfg, condition, n, k, last.steps, lr, by_hash, first, cfg.retest_above)
        if missing:
            return CellTrace(condition, n, k, lr_used, tuple(stages), pending(last.steps, missing), conv, (), ())
        retest = tuple(sorted(set(stage.tried) - set(last.tried)))
        stages[-1] = stage
        if len(stages) > 1 and stages[-2].d_star is not None and stage.d_star is not None:
            conv = converged(cfg, stages[-2].d_star, stage.d_star)  # on the d* reported, re-tests included
    return CellTrace(condition, n, k, lr_used, tuple(stages), (), conv, retest, stages[-1].failed_above)


def cells(cfg: ThresholdConfig) -> list[tuple[str, int, int]]:
    """Every (condition, N, K) searched."""
    return [(c, n, k) for c in cfg.conditions for n in cfg.n_subjects for k in cfg.n_relations]


def traces(cfg: ThresholdConfig, by_hash: Mapping[str, Mapping[str, Any]]) -> list[CellTrace]:
    """Every cell's trace at the recipe's learning rate."""
    return [cell_trace(cfg, c, n, k, by_hash) for c, n, k in cells(cfg)]


def sensitivity_traces(cfg: ThresholdConfig, main: Sequence[CellTrace],
                       by_hash: Mapping[str, Mapping[str, Any]]) -> list[CellTrace]:
    """The sensitivity cells at the other learning rates, once their main search is done.

    Each is searched at the cell's final budget only, starting at its d*.
    """
    out = []
    by_cell = {(t.condition, t.n_subjects, t.n_relations): t for t in main}
    for cond in cfg.conditions:
        if cfg.sensitivity_conditions and cond not in cfg.sensitivity_conditions:
            continue
        for n, k in cfg.sensitivity_cells:
            t = by_cell[(cond, n, k)]
            if not t.done or t.d_star is None or t.final is None:
                continue
            for lr in cfg.sensitivity_lrs:
                out.append(cell_trace(cfg, cond, n, k, by_hash, lr=lr, budgets=[t.final.steps], start=t.d_star))
    return out


def _by_hash(rows: Sequence[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    return {r["hash"]: r for r in rows}


def runs(cfg: ThresholdConfig) -> list[RunConfig]:
    """The first stage: every cell's search at ``search_start`` and the first budget."""
    return [r for t in traces(cfg, {}) for r in t.pending]


def next_runs(cfg: ThresholdConfig, rows: Sequence[Mapping[str, Any]], out_dir: Path) -> list[RunConfig]:
    """The next stage of every unfinished search (and, once a cell is done, its sensitivity searches)."""
    by_hash = _by_hash(rows)
    main = traces(cfg, by_hash)
    pending = [r for t in main for r in t.pending]
    pending += [r for t in sensitivity_traces(cfg, main, by_hash) for r in t.pending]
    return pending


# ---------------------------------------------------------------------------------------------------
# Pure analysis: intervals, the rival laws, the collapse


def bootstrap_d_star(stage: Stage, n_seeds: int, success_accuracy: float, n_boot: int,
                     rng: np.random.Generator) -> np.ndarray:
    """d* of ``n_boot`` seed-bootstrap replicates of one stage (NaN where a replicate is not bracketed).

    A replicate redraws the seeds with replacement (one draw shared by every width: a seed is one world,
    one init and one readout) and re-applies the majority rule and the smallest-size rule.
    """
    ds = sorted(stage.accuracy)
    out = np.full(n_boot, np.nan)
    if not ds:
        return out
    acc = np.array([[-1.0 if a is None else a for a in stage.accuracy[d]] for d in ds])  # (widths, seeds)
    for b in range(n_boot):
        idx = rng.integers(0, n_seeds, n_seeds)
        ok = [stats.majority_success(acc[i, idx].tolist(), success_accuracy, tol=ACC_TOL) for i in range(len(ds))]
        est = smallest_size(ds, ok)
        if est.status == "bracketed":
            out[b] = est.size
    return out


def interval(values: np.ndarray) -> list[float] | None:
    """The 95 % percentile interval of the finite values (None with fewer than two)."""
    v = values[np.isfinite(values)]
    return None if len(v) < 2 else [float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5))]


def _fit_pair(ns: Sequence[float], ds: Sequence[float]) -> dict[str, float] | None:
    """The log law ``d* = a + b log2 N`` and the power law ``d* = c N^β`` on one K's cells.

    Both have two parameters; the power law is fitted on log-log axes; both squared errors are in d*
    units. None with fewer than three distinct N (two points fit either law exactly).
    """
    if len(set(ns)) < 3 or any(d <= 0 for d in ds):
        return None
    lin = stats.fit_line([math.log2(n) for n in ns], ds)
    pw = stats.fit_line([math.log(n) for n in ns], [math.log(d) for d in ds])
    y = np.asarray(ds, dtype=float)
    pred_log = lin["intercept"] + lin["slope"] * np.log2(np.asarray(ns, dtype=float))
    pred_pow = np.exp(pw["intercept"]) * np.asarray(ns, dtype=float) ** pw["slope"]
    return {"a": lin["intercept"], "b": lin["slope"], "c": math.exp(pw["intercept"]), "beta": pw["slope"],
            "sse_log": float(((pred_log - y) ** 2).sum()), "sse_power": float(((pred_pow - y) ** 2).sum())}


def law_comparison(cells: Sequence[tuple[int, int | None, np.ndarray]]) -> dict[str, Any]:
    """Log law against power law for one (condition, K), on ``(N, d*, bootstrap d*)`` cells.

    ``d*`` is None for a cell that is not bracketed (left out of the point fit); the replicate arrays
    hold NaN where a replicate is not bracketed (left out of that replicate's fit). Returns the point
    fits, 95 % intervals of ``b`` (d* per doubling of N) and of ``β``, and ``log_wins_fraction``: the
    share of replicates in which the log law's squared error is the smaller.
    """
    used = [(n, d) for n, d, _ in cells if d is not None]
    out: dict[str, Any] = {"n_cells": len(cells), "n_bracketed": len(used),
                           "n_subjects": [n for n, _ in used], "d_star": [d for _, d in used],
                           "a": None, "b": None, "c": None, "beta": None, "sse_log": None, "sse_power": None,
                           "b_ci95": None, "beta_ci95": None, "log_wins_fraction": None, "n_boot": 0}
    fit = _fit_pair([n for n, _ in used], [d for _, d in used])
    if fit is None:
        return out
    out.update(fit)
    n_boot = min((len(r) for _, _, r in cells), default=0)
    bs, betas, wins = [], [], []
    for b in range(n_boot):
        pts = [(n, float(r[b])) for n, _, r in cells if np.isfinite(r[b])]
        f = _fit_pair([n for n, _ in pts], [d for _, d in pts])
        if f is None:
            continue
        bs.append(f["b"])
        betas.append(f["beta"])
        wins.append(f["sse_log"] < f["sse_power"])
    out["n_boot"] = len(bs)
    if len(bs) >= 2:
        out["b_ci95"] = interval(np.array(bs))
        out["beta_ci95"] = interval(np.array(betas))
        out["log_wins_fraction"] = float(np.mean(wins))
    return out


def collapse_pairs(entries: Sequence[Mapping[str, Any]], reps: Mapping[tuple[int, int], np.ndarray]
                   ) -> list[dict[str, Any]]:
    """Pairs of bracketed cells with equal K log2 N (one condition): d* should agree under the log law.

    ``ratio`` is d*(smaller K) / d*(larger K), with a bootstrap interval from the cells' replicates.
    """
    ok = [e for e in entries if e["d_star"] is not None and e["status"] == "bracketed"]
    out = []
    for i, a in enumerate(ok):
        for b in ok[i + 1:]:
            if a["n_relations"] == b["n_relations"] or not math.isclose(a["k_log2_n"], b["k_log2_n"]):
                continue
            lo, hi = sorted((a, b), key=lambda e: e["n_relations"])
            ra, rb = reps[(lo["n_subjects"], lo["n_relations"])], reps[(hi["n_subjects"], hi["n_relations"])]
            out.append({"k_log2_n": lo["k_log2_n"], "cells": [[lo["n_subjects"], lo["n_relations"]],
                                                               [hi["n_subjects"], hi["n_relations"]]],
                        "d_star": [lo["d_star"], hi["d_star"]], "ratio": lo["d_star"] / hi["d_star"],
                        "ratio_ci95": interval(ra / rb)})
    return out


def pooled_collapse(entries: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """d*/K against log2 N over every K (bracketed cells): one line if the K log2 N law holds."""
    ok = [e for e in entries if e["d_star"] is not None and e["status"] == "bracketed"]
    if len({e["n_subjects"] for e in ok}) < 2:
        return None
    f = stats.fit_line([math.log2(e["n_subjects"]) for e in ok], [e["d_star"] / e["n_relations"] for e in ok])
    return {"slope": f["slope"], "intercept": f["intercept"], "r2": f["r2"], "n_points": f["n"]}


# ---------------------------------------------------------------------------------------------------
# Rows -> traces -> the result


def _params(cfg: ThresholdConfig, t: CellTrace, by_hash: Mapping[str, Mapping[str, Any]]) -> dict[str, int | None]:
    """Parameter counts of one member at the trace's d* (total, W_E, trainable: a frozen readout excluded)."""
    none = {"n_params_total": None, "n_params_embedding": None, "n_params_trainable": None}
    if t.d_star is None or t.final is None:
        return none
    for s in cfg.seeds:
        row = by_hash.get(search_run(cfg, t.condition, t.n_subjects, t.n_relations, t.d_star, s,
                                     steps=t.final.steps, lr=t.lr).config_hash())
        if row is not None and row.get("status") == "done" and row.get("result.n_params.total") is not None:
            total = int(row["result.n_params.total"])
            frozen = int(row.get("result.n_params.unembedding") or 0) if CONDITIONS[t.condition][1] == "frozen" else 0
            emb = row.get("result.n_params.embedding")
            return {"n_params_total": total, "n_params_embedding": None if emb is None else int(emb),
                    "n_params_trainable": total - frozen}
    return none


def unbracketed_reason(t: CellTrace, cfg: ThresholdConfig) -> str | None:
    """Why a finished cell has no usable d*: range (the search's limits) or budget (not converged); else None."""
    if t.status == "censored_high":
        return f"range: no width up to {cfg.search_max} works within {t.final.steps if t.final else '?'} steps"
    if t.status == "censored_low":
        return f"range: d_min = {cfg.d_min} already works (d* <= {cfg.d_min})"
    if t.converged is False:
        return f"budget: d* still moved at the last doubling ({t.final.steps if t.final else '?'} steps)"
    return None


def entry(cfg: ThresholdConfig, t: CellTrace, reps: np.ndarray, by_hash: Mapping[str, Mapping[str, Any]]
          ) -> dict[str, Any]:
    """One cell of the result: d* with its interval, the budget ladder, the re-tests and the theory overlays."""
    n, k = t.n_subjects, t.n_relations
    return {
        "condition": t.condition, "n_subjects": n, "n_relations": k, "k_log2_n": k_log2_n(n, k),
        "d_star": t.d_star, "status": t.status, "d_star_ci95": interval(reps),
        "bootstrap_bracketed_fraction": float(np.isfinite(reps).mean()) if len(reps) else None,
        "converged": t.converged, "final_steps": None if t.final is None else t.final.steps,
        "unbracketed_reason": unbracketed_reason(t, cfg),
        "d_star_by_budget": [[s.steps, s.d_star, s.status] for s in t.stages],
        "first_success": None if t.final is None else t.final.first_success,
        "retested": list(t.retested), "violations": list(t.violations),
        "stages": [s.as_dict() for s in t.stages],
        "selector_d": construction_cost("selector", n, k, 1).d_model,
        "gamma_global": gamma_global(n, k, 1), "information_bits": information_bits(n, k),
        **_params(cfg, t, by_hash),
    }


@dataclass(frozen=True)
class ThresholdResult:
    """The contract of ``threshold/<scale>/result.json``."""

    scale: str  # smoke | quick | paper
    primary_conditions: list[str]  # ln_frozen (decides C7: the embeddings must hold the facts), ln_learned
    d_star_by_condition: dict[str, list[dict[str, Any]]]  # per condition, one entry per (N, K): d_star (null
    #   unless bracketed), status, d_star_ci95 (seed bootstrap), converged, final_steps, d_star_by_budget,
    #   unbracketed_reason, retested / violations (monotonicity), stages (every tried width, per seed),
    #   selector_d, gamma_global (bits), information_bits, n_params_* at d*
    laws: dict[str, dict[str, Any]]  # per condition, per K ("2", "4", ...): log law against power law
    collapse: dict[str, dict[str, Any]]  # per condition: pairs with equal K log2 N, and d*/K on log2 N pooled
    sensitivity: list[dict[str, Any]]  # other learning rates at the sensitivity cells: d* and its move
    budget_effect: dict[str, Any]  # per condition: how d* moved with each doubling of the budget
    coverage: dict[str, dict[str, int]]  # per condition: cells, bracketed, converged, bracketed and converged
    recipe: dict[str, Any]  # architecture and optimiser; d* holds within this recipe only
    success_rule: str  # the majority rule and the smallest-size rule in words
    search: dict[str, Any]  # the search's start, range, budgets, convergence rule, re-tests
    conditions: dict[str, str]  # condition name -> description
    n_runs: int  # runs trained or found for the searches
    n_failed_runs: int  # runs that raised (in ``notes``)
    notes: list[str]  # unbracketed cells, violations of monotonicity, unconverged budgets, failures
    schema_version: int = SCHEMA_VERSION  # bumped when a field changes meaning
    sweep: dict[str, Any] = field(default_factory=dict)  # the sweep report (filled by the driver)
    wall_time_s: float = 0.0  # driver wall time: training (what was missing) + analysis


def _sensitivity(cfg: ThresholdConfig, main: Sequence[CellTrace], extra: Sequence[CellTrace]) -> list[dict[str, Any]]:
    by_cell = {(t.condition, t.n_subjects, t.n_relations): t for t in main}
    out = []
    for t in extra:
        base = by_cell[(t.condition, t.n_subjects, t.n_relations)]
        out.append({"condition": t.condition, "n_subjects": t.n_subjects, "n_relations": t.n_relations,
                    "lr": t.lr, "steps": None if t.final is None else t.final.steps, "d_star": t.d_star,
                    "status": t.status, "d_star_at_recipe_lr": base.d_star, "recipe_lr": cfg.recipe.lr,
                    "ratio": None if t.d_star is None or not base.d_star else t.d_star / base.d_star})
    return out


def _budget_effect(entries: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    moves = []
    for e in entries:
        ladder = [(s, d) for s, d, st in e["d_star_by_budget"] if d is not None and st == "bracketed"]
        moves += [{"n_subjects": e["n_subjects"], "n_relations": e["n_relations"], "from_steps": a[0],
                   "to_steps": b[0], "d_star_before": a[1], "d_star_after": b[1], "ratio": b[1] / a[1]}
                  for a, b in zip(ladder, ladder[1:], strict=False)]
    ratios = [m["ratio"] for m in moves]
    return {"moves": moves, "median_ratio": float(np.median(ratios)) if ratios else None,
            "n_unconverged": sum(1 for e in entries if e["converged"] is False)}


def _notes(by_cond: Mapping[str, Sequence[Mapping[str, Any]]], errors: Sequence[str]) -> list[str]:
    notes = []
    for cond, es in by_cond.items():
        for e in es:
            where = f"{cond} N={e['n_subjects']} K={e['n_relations']}"
            if e["unbracketed_reason"]:
                notes.append(f"{where}: {e['unbracketed_reason']}")
            if e["violations"]:
                notes.append(f"{where}: not monotone in d: d = {e['violations']} fail above the first success "
                             f"{e['first_success']} (d* = {e['d_star']} by the rule)")
    return notes + [f"failed run: {e}" for e in errors]


def _errors(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    return [f"{r['hash'][:12]}: {r.get('error')}" for r in rows if r.get("status") == "failed"]


def analyze(cfg: ThresholdConfig, rows: list[dict[str, Any]], out_dir: Path) -> ThresholdResult:
    """Traces, d* with intervals, the laws per K, the collapse and the sensitivity, from the store's rows."""
    by_hash = _by_hash(rows)
    main = traces(cfg, by_hash)
    extra = sensitivity_traces(cfg, main, by_hash)
    rng = np.random.default_rng(cfg.bootstrap_seed)
    by_cond: dict[str, list[dict[str, Any]]] = {c: [] for c in cfg.conditions}
    reps: dict[str, dict[tuple[int, int], np.ndarray]] = {c: {} for c in cfg.conditions}
    for t in main:
        r = (bootstrap_d_star(t.final, len(cfg.seeds), cfg.success_accuracy, cfg.n_bootstrap, rng)
             if t.done and t.final is not None and t.status == "bracketed" else np.full(cfg.n_bootstrap, np.nan))
        reps[t.condition][(t.n_subjects, t.n_relations)] = r
        by_cond[t.condition].append(entry(cfg, t, r, by_hash))
    laws, collapse, coverage, budget = {}, {}, {}, {}
    for cond, es in by_cond.items():
        usable = [e for e in es if e["status"] == "bracketed"]
        laws[cond] = {str(k): law_comparison([(e["n_subjects"], e["d_star"] if e["status"] == "bracketed" else None,
                                               reps[cond][(e["n_subjects"], k)])
                                              for e in es if e["n_relations"] == k])
                      for k in cfg.n_relations}
        collapse[cond] = {"pairs": collapse_pairs(es, reps[cond]), "pooled": pooled_collapse(es)}
        coverage[cond] = {"cells": len(es), "bracketed": len(usable),
                          "converged": sum(1 for e in es if e["converged"] is True),
                          "bracketed_and_converged": sum(1 for e in usable if e["converged"] is True)}
        budget[cond] = _budget_effect(es)
    errors = _errors(rows)
    n_seeds = len(cfg.seeds)
    rule = (f"a width works when more than half of the {n_seeds} seeds reach accuracy >= {cfg.success_accuracy} "
            "within the budget; d* = the smallest tried width from which every larger tried width works")
    search = {"start": cfg.search_start, "range": [cfg.d_min, cfg.search_max], "budgets": list(cfg.budgets),
              "convergence": f"|Δd*| <= max({cfg.converge_abs}, {cfg.converge_rel}·d*) when the budget doubles",
              "retest_above": list(cfg.retest_above),
              "sensitivity": {"cells": [list(c) for c in cfg.sensitivity_cells], "lrs": list(cfg.sensitivity_lrs)},
              "rule": "double/halve from the start to bracket, then bisect to the integer (next_size); later "
                      "budgets start at the last d* and d* − 1"}
    return ThresholdResult(
        scale=cfg.scale, primary_conditions=[c for c in PRIMARY_CONDITIONS if c in cfg.conditions],
        d_star_by_condition=by_cond, laws=laws, collapse=collapse, sensitivity=_sensitivity(cfg, main, extra),
        budget_effect=budget, coverage=coverage, recipe=cfg.describe_recipe(), success_rule=rule, search=search,
        conditions={c: CONDITION_LABELS[c] for c in cfg.conditions}, n_runs=len(rows), n_failed_runs=len(errors),
        notes=_notes(by_cond, errors))


def summarize(result: ThresholdResult) -> str:
    """The d* table per condition (with intervals and budgets) and the laws per K, for the terminal."""
    lines = [f"threshold ({result.scale}): {result.success_rule}",
             f"recipe: lr {result.recipe['lr']}, {result.recipe['schedule']}, budgets {result.recipe['budgets']}, "
             f"MLP {result.recipe['mlp_ratio']}·d"]
    for cond, es in result.d_star_by_condition.items():
        lines.append(f"{cond}: {result.conditions.get(cond, '')}")
        lines.append("     N   K  KlogN  sel_d    d*  95% CI       steps  conv  d* by budget")
        for e in es:
            ci = "-" if e["d_star_ci95"] is None else f"[{e['d_star_ci95'][0]:.0f}, {e['d_star_ci95'][1]:.0f}]"
            ladder = " ".join(f"{s}:{'-' if d is None else d}" for s, d, _ in e["d_star_by_budget"])
            d = "-" if e["d_star"] is None else e["d_star"]
            conv = {True: "yes", False: "no", None: "-"}[e["converged"]]
            lines.append(f"  {e['n_subjects']:>4} {e['n_relations']:>3} {e['k_log2_n']:>6.1f} {e['selector_d']:>6} "
                         f"{d:>5}  {ci:<11} {e['final_steps'] or '-':>6}  {conv:>4}  {ladder}")
        for k, law in result.laws[cond].items():
            if law["b"] is None:
                lines.append(f"  K={k}: too few bracketed cells for the laws ({law['n_bracketed']})")
                continue
            wins = "-" if law["log_wins_fraction"] is None else f"{law['log_wins_fraction']:.0%}"
            def ci(v: list[float] | None) -> str:
                return "-" if v is None else f"[{v[0]:.2f}, {v[1]:.2f}]"

            lines.append(f"  K={k}: log law d* = {law['a']:.2f} + {law['b']:.2f}·log2 N (b CI {ci(law['b_ci95'])}); "
                         f"power law d* = {law['c']:.2f}·N^{law['beta']:.2f} (β CI {ci(law['beta_ci95'])}); "
                         f"log law better in {wins} of replicates")
    lines += [f"note: {n}" for n in result.notes[:20]]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------
# Figures (from result.json only; drawn by georecall.plotting.threshold)

DSTAR_FIGURE, COLLAPSE_FIGURE, BUDGET_FIGURE = (threshold_plots.DSTAR_FIGURE, threshold_plots.COLLAPSE_FIGURE,
                                                threshold_plots.BUDGET_FIGURE)
CONDITION_STYLES = threshold_plots.CONDITION_STYLES


def plot(result_dir: str | Path) -> list[Path]:
    """d* against N per K with the laws, the collapse and d* against the budget, from ``result.json`` alone."""
    folder = Path(result_dir)
    return threshold_plots.plot(load_result_json(folder), folder)
