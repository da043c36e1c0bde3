"""``frozen_control``: frozen random embeddings make the MLP hold the facts, as an associative memory.

Like with like (docs/theory.md §6.5, "Consequences for experiments"): both conditions are one-layer,
one-head, pre-LayerNorm transformers with a **frozen, fact-free random readout** ``W_U ~ N(0, 1/d)``,
``b_U = 0``, trained with the threshold experiment's recipe and searched with its rule.

* ``learned`` = threshold's condition ``ln_frozen``: learned token and position embeddings (init N(0, 1)),
  d_mlp = ``mlp_ratio``·d, the smallest working d searched by
  :func:`georecall.experiments.threshold.cell_trace`. These are *the same runs* (same config hashes):
  under ``georecall reproduce`` threshold has trained them and they cost nothing here; run alone,
  this experiment trains them itself. Theory: the selector stores the facts in the embeddings, so
  d* ~ K log N and the attention + MLP parameters grow only like (K log N)².
* ``frozen``: the same model with the token and position embeddings frozen too (``frozen_embeddings``,
  N(0, 1) as drawn from the seed before the facts), at several residual widths d. Every weight that
  could be fact-specific is in attention, MLP and LayerNorm, so the facts must be stored there: an
  associative memory, for which the parameters needed grow linearly in the number of facts, i.e.
  **d·d_mlp ∝ N·K** (the MLP width needed at fixed d grows like N·K, and like 1/d at fixed N·K).

**The search** (per (N, K, d), no prior on the answer, no window): from ``search_start`` (the same
d_mlp for every cell), :func:`~georecall.experiments.base.next_size` doubles while every tried width
fails and halves while every one works, then bisects, until the bracket [largest failing width,
smallest working width] is within ``resolution`` (relative; 0 bisects to the integer) or the range
[``d_mlp_min``, ``d_mlp_max``] is exhausted. A width *works* when a strict majority of the seeds reach
``success_accuracy`` within the budget; the needed d_mlp* is read by the shared rule
(:func:`~georecall.experiments.base.smallest_size`). A cell the range cannot bracket is reported with
its status (``censored_low``/``censored_high``) and reason ``range``, never fitted.

**The budget ladder** (as threshold's): the search runs at the first budget of ``budgets`` (threshold's
first budget, so the recipe is identical); at each next budget (twice the last) it restarts from the
last bracket (d_mlp* and the largest failing width below it) and goes on from there. d_mlp* is
*converged* when it moves by at most ``max(converge_abs, converge_rel · d_mlp*)``; otherwise the next
budget is tried, and at the end of the ladder the cell is reported ``converged = false`` with reason
``budget``. Fits use the bracketed cells; the claim's scope counts the unconverged ones short.

**Fits, with seed-bootstrap intervals.** A replicate redraws, per (N, K) world, its seeds with
replacement — a seed is one world, one init and one readout, shared by both conditions and every d,
so the one draw is applied to all of them — and re-applies the majority rule to the widths tried
(each at the largest budget it was tried at; a smaller budget's outcome is kept only outside the range
tried at larger budgets). Reported with 95 % percentile intervals:

* ``joint``: least squares ``log d_mlp* = c + α log(N·K) + β log d`` over the bracketed frozen cells.
  Associative memory predicts α = 1, β = −1.
* ``product``: ``log(d · d_mlp*)`` on ``log(N·K)`` pooled over d (predicted exponent 1).
* ``by_d``: the exponent of d_mlp* on N·K at each d; ``by_nk``: the exponent of d_mlp* on d at each N·K.
* ``param_exponent``: log-log slope of the non-embedding parameters needed (attention + MLP + LayerNorm)
  on N·K: frozen (the cheapest d at each N·K) and learned (at d*).
* ``learned_slope``: d* on K log2 N (the learned embeddings' scaling).
* ``ratio``: at each N·K, the cheapest frozen model's non-embedding parameters over the learned one's.

:func:`associative_memory_verdict` says whether d·d_mlp ∝ N·K holds: ``holds`` when α's interval
contains 1 and lies above 0.5 and β's contains −1 and lies below −0.5; ``fails`` when α's excludes 1
or β's excludes −1; else ``inconclusive``.

**Scales** (a step of these tiny models costs a few ms on one CPU core; members that reach the target
stop, so the cost is in the failing widths):

* ``smoke``: (N, K) = (8, 2), d in {8, 16}, 2 seeds, threshold's smoke budgets: the code path in seconds.
* ``quick``: K = 4, N in {16, 64, 128} (N·K from 64 to 512; threshold's quick cells), d in {16, 32}, 3 seeds,
  threshold's budgets (500, 1000), lr 3e-2, search from d_mlp = 16 in [1, 2048] to 20 % resolution.
  (A first quick run with d in {16, 32, 64} at budgets (500, 1000) cost about 11 min for the frozen side
  on loaded cores; d = 64 was the costliest and least consistent (d_mlp* 80 at N·K = 64 against 8 at
  d = 16, and 48 -> 6 when the budget doubled at N·K = 128), so it was dropped for the budget, not for
  its outcome; the paper scale keeps it. Measured in a
  probe, 2026-12-01: at d = 8 the frozen model does not reach 99 % even at d_mlp = 512-1024 for N ≥ 32
  within 500 steps — a readout/embedding bottleneck of 8 random dimensions, not the MLP — so d starts
  at 16.) The time of the whole quick reproduction, this experiment included, is in the README.
* ``paper``: K = 4 with N in {64, 256, 1024, 4096} and K in {2, 8} at N = 256, d in {16, 32, 64, 128},
  threshold's 3 seeds and budgets (1000, ..., 8000), d_mlp in [1, 16384] to 5 %, for one GPU.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from georecall.config import ModelConfig, RunConfig, TaskConfig
from georecall.experiments import stats, threshold
from georecall.experiments.base import (
    SCALES,
    Provenance,
    Recipe,
    RecipeFields,
    converged,
    load_result_json,
    next_size,
    outcome_table,
    replay_search,
    smallest_size,
    validate_config,
)
from georecall.experiments.threshold import ThresholdConfig
from georecall.plotting import frozen_control as frozen_control_plots
from georecall.theory import construction_cost, information_bits

ID = "frozen_control"
SCHEMA_VERSION = 2

#: What the quick scale cost, measured (filled in after the one measured run; see the module docstring).
QUICK_MEASURED = (
    "first quick run, with d = 64, before it was dropped for the time budget: 2026-12-01, "
    "`georecall run frozen_control --scale quick`, one process, one torch thread, threshold budgets "
    "(500, 1000) at the time, learned runs trained here too (none pre-existing): 1106 s wall for the whole command "
    "with the 2 cores shared (load average 1.5 at the start, 5.1 at the end); the store rows' ensemble seconds were "
    "1213 s frozen vs 752 s learned, so the frozen share was about 1106 * 1213 / 1965 = 680 s (11 min): OVER the "
    "5-minute share. 6 of 12 frozen cells converged when the budget doubled.")

PROVENANCE = Provenance(
    claim=("With token/position embeddings and the readout frozen at random (the associative-memory setting), "
           "the MLP of a one-layer transformer must hold the N·K single-hop facts: the width it needs grows like "
           "N·K/d (d·d_mlp ∝ N·K), while learned embeddings with the same frozen readout need far fewer "
           "attention + MLP parameters (d* ~ K log N)."),
    paper_section="§1 Introduction and §2 Related work (the associative-memory baseline); §3 (learnable embeddings)",
    theorems=("Theorem 4.1", "Theorem 4.2 (fixed-readout class)", "docs/theory.md §6.4 regime 1",
              "docs/theory.md §6.5"),
    paper_reported={
        "baseline_claim": ("Nichani et al. (2025) prove that a one-layer transformer with fixed random spherical "
                           "embeddings stores all subject-relation-attribute associations using [formula lost in "
                           "our copy] attention or MLP parameters"),
        "abstract": ("A common view casts internal weight matrices as associative memories over pairs of "
                     "embeddings, requiring parameter counts that scale linearly with the number of facts"),
        "numbers": "none: the paper reports no frozen-embedding measurement",
    },
)

FROZEN, LEARNED = "frozen", "learned"
CONDITIONS = (FROZEN, LEARNED)
#: The threshold condition that is this experiment's learned side (learned embeddings, frozen readout).
LEARNED_CONDITION = "ln_frozen"
FIGURES = frozen_control_plots.FIGURES
ACC_TOL = threshold.ACC_TOL


# ---------------------------------------------------------------------------------------------------
# Config


@dataclass(frozen=True)
class Config(RecipeFields):
    """One scale of the frozen-embedding control; the recipe and the learned side are threshold's."""

    scale: str  # smoke | quick | paper
    threshold: ThresholdConfig  # the threshold experiment's config: recipe, seeds, learned-side search
    # The (N, K) worlds (N subjects, K relations, single hop): cells of threshold's grid, so runs are shared.
    points: tuple[tuple[int, int], ...] = field(metadata={"nonempty": True, "distinct": True})
    d_models: tuple[int, ...] = field(metadata={"min": 1, "nonempty": True, "distinct": True, "increasing": True})
    # Step budgets of the frozen search, each twice the last; the first is threshold's search budget.
    budgets: tuple[int, ...] = field(metadata={"min": 1, "nonempty": True, "distinct": True, "increasing": True})
    search_start: int = field(metadata={"min": 1})  # first d_mlp of every frozen search (no prior)
    d_mlp_min: int = field(metadata={"min": 1})  # the frozen search's range [d_mlp_min, d_mlp_max]
    d_mlp_max: int = field(metadata={"min": 1})
    resolution: float = field(metadata={"min": 0.0})  # stop bisecting at best - fail <= max(1, resolution * best)
    converge_abs: int = field(metadata={"min": 0})  # d_mlp* converged: |Δ| <= max(abs, rel · d_mlp*)
    converge_rel: float = field(metadata={"min": 0.0})
    n_bootstrap: int = field(metadata={"min": 0})  # seed-bootstrap replicates
    bootstrap_seed: int = field(metadata={"min": 0})  # numpy seed of the bootstrap (the analysis is deterministic)

    def __post_init__(self) -> None:
        validate_config(self)
        t = self.threshold
        if t.scale != self.scale:
            raise ValueError(f"threshold config is {t.scale!r}, this one {self.scale!r}")
        if LEARNED_CONDITION not in t.conditions:
            raise ValueError(f"threshold.conditions must include {LEARNED_CONDITION!r}, got {t.conditions}")
        cells = {(n, k) for n in t.n_subjects for k in t.n_relations}
        bad = [p for p in self.points if tuple(p) not in cells]
        if bad:
            raise ValueError(f"points must be (N, K) cells of threshold's grid, got {bad}")
        if len(t.seeds) < 2:
            raise ValueError(f"need >= 2 seeds (threshold.seeds), got {list(t.seeds)}")
        if self.budgets[0] != t.budgets[0]:
            raise ValueError(f"budgets must start at threshold's search budget {t.budgets[0]}, got {self.budgets}")
        if any(b != 2 * a for a, b in zip(self.budgets, self.budgets[1:], strict=False)):
            raise ValueError(f"each budget must be twice the last, got {self.budgets}")
        if not self.d_mlp_min <= self.search_start <= self.d_mlp_max:
            raise ValueError(f"need d_mlp_min <= search_start <= d_mlp_max, got {self.d_mlp_min}, "
                             f"{self.search_start}, {self.d_mlp_max}")
        if not self.resolution < 1:
            raise ValueError(f"resolution must be in [0, 1), got {self.resolution}")

    @property
    def recipe(self) -> Recipe:
        """The training recipe: threshold's (its ``steps`` is the first budget)."""
        return self.threshold.recipe

    @property
    def seeds(self) -> tuple[int, ...]:
        """Threshold's seeds (one world, init and readout each)."""
        return self.threshold.seeds

    def describe_recipe(self) -> dict[str, Any]:
        """The recipe both sides share, plus the frozen search (plain JSON)."""
        return {**self.threshold.describe_recipe(),
                "frozen": (f"W_E, W_pos (N(0, 1)) and W_U (N(0, 1/d)), b_U frozen; d in {list(self.d_models)}; "
                           f"d_mlp searched from {self.search_start} in [{self.d_mlp_min}, {self.d_mlp_max}] to "
                           f"resolution {self.resolution:g}; budgets {list(self.budgets)}"),
                "learned": f"threshold's condition {LEARNED_CONDITION!r} (learned W_E, W_pos; frozen W_U), "
                           f"d_mlp = {self.threshold.mlp_ratio}·d"}


_QUICK_POINTS = ((16, 4), (64, 4), (128, 4))
_PAPER_POINTS = ((64, 4), (256, 4), (1024, 4), (4096, 4), (256, 2), (256, 8))


def config(scale: str) -> Config:
    """The config of ``scale`` (smoke, quick or paper); module docstring."""
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
    t = threshold.config(scale)
    common: dict[str, Any] = dict(threshold=t, scale=scale, d_mlp_min=1, converge_abs=1, bootstrap_seed=0)
    if scale == "smoke":
        return Config(points=((8, 2),), d_models=(8, 16), budgets=t.budgets[:2], search_start=16,
                      d_mlp_max=64, resolution=0.5, converge_rel=0.5, n_bootstrap=20, **common)
    if scale == "quick":
        return Config(points=_QUICK_POINTS, d_models=(16, 32), budgets=t.budgets[:2], search_start=16,
                      d_mlp_max=2048, resolution=0.2, converge_rel=0.2, n_bootstrap=1000, **common)
    return Config(points=_PAPER_POINTS, d_models=(16, 32, 64, 128), budgets=t.budgets, search_start=64,
                  d_mlp_max=16384, resolution=0.05, converge_rel=0.1, n_bootstrap=1000, **common)


def frozen_model(cfg: Config, d: int, d_mlp: int) -> ModelConfig:
    """Threshold's ``ln_frozen`` model at width d with MLP width ``d_mlp`` and the embeddings frozen too."""
    return dataclasses.replace(threshold.model_config(cfg.threshold, d, LEARNED_CONDITION), d_mlp=d_mlp,
                               frozen_embeddings=True)


def frozen_run(cfg: Config, n: int, k: int, d: int, d_mlp: int, seed: int, steps: int) -> RunConfig:
    """One seed of the frozen search at (N, K, d), width ``d_mlp`` and budget ``steps`` (threshold's recipe)."""
    return RunConfig(task=TaskConfig(n_subjects=n, n_relations=k), model=frozen_model(cfg, d, d_mlp),
                     train=threshold.search_train(cfg.threshold, steps), seeds=(seed,))


# ---------------------------------------------------------------------------------------------------
# The search (pure) and its replay from the store's rows


#: The width search: :func:`~georecall.experiments.base.next_size`, stopped once the bracket is within
#: ``resolution`` (``resolution = 0``: adjacent integers).
search_next = next_size


@dataclass(frozen=True)
class Stage:
    """One budget of one frozen cell's search: widths tried, per-seed accuracies, what the rule reads."""

    steps: int
    tried: dict[int, bool]  # d_mlp -> works (majority of seeds)
    accuracy: dict[int, tuple[float | None, ...]]  # d_mlp -> final accuracy per seed (None: the run failed)
    d_mlp: int | None  # the rule's answer at this budget
    status: str  # bracketed | censored_low | censored_high | searching
    failed_above: tuple[int, ...]  # tried widths above the first success that fail (non-monotone)

    def as_dict(self) -> dict[str, Any]:
        return {"steps": self.steps, "d_mlp": self.d_mlp, "status": self.status,
                "failed_above": list(self.failed_above), "tried": [[w, ok] for w, ok in sorted(self.tried.items())],
                "accuracy": [[w, list(a)] for w, a in sorted(self.accuracy.items())]}


def _largest_fail_below(tried: Mapping[int, bool], size: int) -> int | None:
    below = [s for s, ok in tried.items() if not ok and s < size]
    return max(below) if below else None


def search_stage(lookup: Callable[[int], tuple[float | None, ...] | None], steps: int, first: Sequence[int], *,
                 lo: int, hi: int, resolution: float, success: float) -> tuple[Stage, list[int]]:
    """Replay one budget's search (:func:`~georecall.experiments.base.replay_search`): ``first`` tried together,
    then :func:`search_next`.

    ``lookup(width)`` gives the per-seed accuracies at this budget, or None when not trained yet.
    Returns the stage as far as it goes and the widths to train next (empty: this budget is done).
    """
    tried, accs, missing = replay_search(lookup, first, lo=lo, hi=hi, success_accuracy=success,
                                         resolution=resolution)
    if missing or not tried:
        return Stage(steps, tried, accs, None, "searching", ()), missing
    est = smallest_size(sorted(tried), [tried[w] for w in sorted(tried)])
    return Stage(steps, tried, accs, est.size, est.status, tuple(est.failed_above)), []


#: d_mlp* moved by at most ``max(abs_tol, rel_tol · before)`` when the budget doubled.
is_converged = converged


@dataclass(frozen=True)
class SearchTrace:
    """One frozen (N, K, d) search over the budget ladder, as far as the outcomes go."""

    stages: tuple[Stage, ...]
    pending: tuple[int, int] | None  # (width, budget) of the widths still to train: see ``missing``
    missing: tuple[int, ...]  # widths to train next at budget ``pending[1]`` (empty: done)
    converged: bool | None  # None: a single budget tried or not done
    reason: str  # why the cell is not a converged, bracketed point ("" when it is)

    @property
    def done(self) -> bool:
        return not self.missing

    @property
    def final(self) -> Stage | None:
        return self.stages[-1] if self.stages else None


def search_ladder(lookup: Callable[[int, int], tuple[float | None, ...] | None], budgets: Sequence[int], *,
                  start: int, lo: int, hi: int, resolution: float, success: float, converge_abs: int,
                  converge_rel: float) -> SearchTrace:
    """The search over the budget ladder (pure): ``lookup(width, steps)`` as in :func:`search_stage`."""
    stages: list[Stage] = []
    conv: bool | None = None
    first = [start]
    for i, steps in enumerate(budgets):
        st, missing = search_stage(lambda w, s=steps: lookup(w, s), steps, first, lo=lo, hi=hi,
                                   resolution=resolution, success=success)
        if missing:
            return SearchTrace((*stages, st), (missing[0], steps), tuple(missing), None, "searching")
        stages.append(st)
        if st.status != "bracketed" or st.d_mlp is None:
            break
        if i > 0 and stages[-2].d_mlp is not None:
            conv = is_converged(stages[-2].d_mlp, st.d_mlp, abs_tol=converge_abs, rel_tol=converge_rel)
            if conv:
                break
        g = _largest_fail_below(st.tried, st.d_mlp)
        first = [st.d_mlp] + ([g] if g is not None else [])
    last = stages[-1]
    if last.status == "censored_high":
        reason = f"range: every d_mlp tried up to {max(last.tried)} fails at {last.steps} steps"
    elif last.status == "censored_low":
        reason = f"range: the smallest d_mlp tried ({min(last.tried)}) already works at {last.steps} steps"
    elif conv is False:
        reason = (f"budget: d_mlp* moved from {stages[-2].d_mlp} to {last.d_mlp} when the budget doubled to "
                  f"{last.steps}, the end of the ladder")
    elif conv is None:
        reason = "budget: a single budget, convergence not tested"
    else:
        reason = ""
    return SearchTrace(tuple(stages), None, (), conv, reason)


def _accuracies(rows: Sequence[Mapping[str, Any]], seeds: Sequence[int]) -> tuple[float | None, ...]:
    cell = outcome_table(rows, lambda r: (0,))[(0,)]
    acc = dict(zip(cell.seeds, cell.accuracy, strict=True))
    return tuple(acc.get(s) for s in seeds)


@functools.lru_cache(maxsize=1 << 16)
def _frozen_hash(cfg: Config, n: int, k: int, d: int, w: int, seed: int, steps: int) -> str:
    return frozen_run(cfg, n, k, d, w, seed, steps).config_hash()  # cached: every stage replays every search


def frozen_trace(cfg: Config, n: int, k: int, d: int, by_hash: Mapping[str, Mapping[str, Any]]) -> SearchTrace:
    """The frozen search of (N, K, d), replayed from ``by_hash`` (store rows by config hash)."""

    def lookup(w: int, steps: int) -> tuple[float | None, ...] | None:
        hashes = [_frozen_hash(cfg, n, k, d, w, s, steps) for s in cfg.seeds]
        if not all(h in by_hash for h in hashes):
            return None
        return _accuracies([by_hash[h] for h in hashes], cfg.seeds)

    return search_ladder(lookup, cfg.budgets, start=cfg.search_start, lo=cfg.d_mlp_min, hi=cfg.d_mlp_max,
                         resolution=cfg.resolution, success=cfg.success_accuracy, converge_abs=cfg.converge_abs,
                         converge_rel=cfg.converge_rel)


def _frozen_cells(cfg: Config) -> list[tuple[int, int, int]]:
    return [(n, k, d) for n, k in cfg.points for d in cfg.d_models]


def runs(cfg: Config) -> list[RunConfig]:
    """The first stage: every frozen search at ``search_start`` and every learned trace's first runs."""
    return next_runs(cfg, [], Path("."))


def next_runs(cfg: Config, rows: Sequence[Mapping[str, Any]], out_dir: Path) -> list[RunConfig]:
    """The next runs of every unfinished search: threshold's ``ln_frozen`` traces and the frozen searches."""
    del out_dir
    by_hash = {r["hash"]: r for r in rows}
    out: list[RunConfig] = []
    for n, k in cfg.points:
        out.extend(threshold.cell_trace(cfg.threshold, LEARNED_CONDITION, n, k, by_hash).pending)
    for n, k, d in _frozen_cells(cfg):
        t = frozen_trace(cfg, n, k, d, by_hash)
        if t.pending is not None:
            out.extend(frozen_run(cfg, n, k, d, w, s, t.pending[1]) for w in t.missing for s in cfg.seeds)
    return out


# ---------------------------------------------------------------------------------------------------
# Pure analysis: tables, the rule on resampled seeds, fits


@dataclass(frozen=True)
class Table:
    """One cell's tried sizes and per-seed successes (the input of the rule and of the bootstrap)."""

    sizes: tuple[int, ...]
    success: tuple[tuple[bool, ...], ...]  # [size][seed]

    def need(self, cols: Sequence[int] | None = None) -> tuple[int | None, str]:
        """The rule's (size, status) on the seeds ``cols`` (default: all)."""
        if not self.sizes:
            return None, "censored_high"
        idx = range(len(self.success[0])) if cols is None else cols
        ok = [stats.is_majority(sum(bool(row[c]) for c in idx), len(idx)) for row in self.success]
        est = smallest_size(list(self.sizes), ok)
        return est.size, est.status


def merged_table(stages: Sequence[Any], success: float) -> Table:
    """The widths of every stage, each at the largest budget it was tried at (stages: budget order).

    A smaller budget's outcome is kept only outside the range of widths tried at larger budgets (below
    it a width fails, above it one works, consistently with the later searches).
    """
    out: dict[int, tuple[bool, ...]] = {}
    lo_b, hi_b = math.inf, -math.inf
    for st in reversed(list(stages)):
        if not st.accuracy:
            continue
        for w, accs in st.accuracy.items():
            if w in out or lo_b <= w <= hi_b:
                continue
            out[w] = tuple(a is not None and a >= success - ACC_TOL for a in accs)
        lo_b, hi_b = min(lo_b, min(st.accuracy)), max(hi_b, max(st.accuracy))
    sizes = tuple(sorted(out))
    return Table(sizes, tuple(out[s] for s in sizes))


def fit_power(x: Sequence[float], y: Sequence[float]) -> dict[str, Any] | None:
    """Least squares of ``log y`` on ``log x``: slope = exponent; None without two distinct x."""
    if len(set(x)) < 2:
        return None
    return stats.fit_line(np.log(np.asarray(x, float)), np.log(np.asarray(y, float)))


def fit_joint(nk: Sequence[float], d: Sequence[float], w: Sequence[float]) -> dict[str, Any] | None:
    """Least squares ``log w = c + α log nk + β log d``: alpha, beta, c, their OLS standard errors, n.

    None without two distinct values of each regressor and at least four points.
    """
    if len(set(nk)) < 2 or len(set(d)) < 2 or len(w) < 4:
        return None
    X = np.column_stack([np.ones(len(w)), np.log(np.asarray(nk, float)), np.log(np.asarray(d, float))])
    y = np.log(np.asarray(w, float))
    coef, _, rank, _ = np.linalg.lstsq(X, y, rcond=None)
    if rank < 3:
        return None
    resid = y - X @ coef
    dof = len(w) - 3
    se: list[float | None] = [None, None, None]
    if dof > 0:
        cov = float(resid @ resid) / dof * np.linalg.inv(X.T @ X)
        se = [float(math.sqrt(max(v, 0.0))) for v in np.diag(cov)]
    return {"c": float(coef[0]), "alpha": float(coef[1]), "beta": float(coef[2]), "c_stderr": se[0],
            "alpha_stderr": se[1], "beta_stderr": se[2], "n": len(w)}


def scaling_statistics(frozen: Mapping[tuple[int, int, int], int | None],
                       learned: Mapping[tuple[int, int], int | None],
                       frozen_params: Callable[[int, int, int, int], int | None],
                       learned_params: Callable[[int, int, int], int | None]) -> dict[str, float | None]:
    """Every scalar the intervals are drawn for, from needs (None: not bracketed) — one call per replicate.

    ``frozen[(N, K, d)]`` = d_mlp*, ``learned[(N, K)]`` = d*; the params callables give the non-embedding
    count of a tried size. Keys: alpha, beta, product, by_d.<d>, by_nk.<NK>, frozen_param_exponent,
    learned_param_exponent, learned_slope, ratio.<NK>.
    """
    out: dict[str, float | None] = {}
    pts = [(n * k, d, w) for (n, k, d), w in frozen.items() if w is not None]
    j = fit_joint([p[0] for p in pts], [p[1] for p in pts], [p[2] for p in pts])
    out["alpha"], out["beta"] = (None, None) if j is None else (j["alpha"], j["beta"])
    f = fit_power([p[0] for p in pts], [p[1] * p[2] for p in pts])
    out["product"] = None if f is None else f["slope"]
    for d in sorted({d for (_, _, d) in frozen}):
        sel = [p for p in pts if p[1] == d]
        f = fit_power([p[0] for p in sel], [p[2] for p in sel])
        out[f"by_d.{d}"] = None if f is None else f["slope"]
    for nk in sorted({n * k for (n, k, _) in frozen}):
        sel = [p for p in pts if p[0] == nk]
        f = fit_power([p[1] for p in sel], [p[2] for p in sel])
        out[f"by_nk.{nk}"] = None if f is None else f["slope"]
    cheapest: dict[tuple[int, int], int] = {}
    for (n, k, d), w in frozen.items():
        p = None if w is None else frozen_params(n, k, d, w)
        if p is not None and ((n, k) not in cheapest or p < cheapest[(n, k)]):
            cheapest[(n, k)] = p
    f = fit_power([n * k for n, k in cheapest], [cheapest[c] for c in cheapest])
    out["frozen_param_exponent"] = None if f is None else f["slope"]
    lp = {(n, k): learned_params(n, k, d) for (n, k), d in learned.items() if d is not None}
    lp = {c: v for c, v in lp.items() if v is not None}
    f = fit_power([n * k for n, k in lp], [lp[c] for c in lp])
    out["learned_param_exponent"] = None if f is None else f["slope"]
    ls = [(threshold.k_log2_n(n, k), d) for (n, k), d in learned.items() if d is not None]
    out["learned_slope"] = (stats.fit_line([a for a, _ in ls], [b for _, b in ls])["slope"]
                            if len({a for a, _ in ls}) >= 2 else None)
    for (n, k) in sorted({(n, k) for (n, k, _) in frozen}, key=lambda c: (c[0] * c[1], c[1])):
        a, b = cheapest.get((n, k)), lp.get((n, k))
        out[f"ratio.{n}.{k}"] = a / b if a and b else None
    return out


def percentile_interval(values: Sequence[float | None]) -> list[float] | None:
    """[2.5 %, 97.5 %] percentiles of the non-None values; None with fewer than two."""
    vals = [v for v in values if v is not None]
    if len(vals) < 2:
        return None
    return [float(np.percentile(vals, 2.5)), float(np.percentile(vals, 97.5))]


def associative_memory_verdict(alpha_ci: Sequence[float] | None, beta_ci: Sequence[float] | None) -> dict[str, Any]:
    """Does d·d_mlp ∝ N·K hold? ``holds``, ``fails`` or ``inconclusive`` (``untested`` without intervals).

    holds: α's interval contains 1 and lies above 0.5, β's contains −1 and lies below −0.5; fails: α's
    interval excludes 1 or β's excludes −1; inconclusive: neither (an interval too wide to decide).
    """
    if alpha_ci is None or beta_ci is None:
        return {"verdict": "untested", "reason": "too few bracketed frozen cells to fit α and β"}
    a_in, b_in = alpha_ci[0] <= 1 <= alpha_ci[1], beta_ci[0] <= -1 <= beta_ci[1]
    if not (a_in and b_in):
        why = []
        if not a_in:
            why.append(f"the N·K exponent's interval [{alpha_ci[0]:.2f}, {alpha_ci[1]:.2f}] excludes 1")
        if not b_in:
            why.append(f"the d exponent's interval [{beta_ci[0]:.2f}, {beta_ci[1]:.2f}] excludes −1")
        return {"verdict": "fails", "reason": " and ".join(why)}
    if alpha_ci[0] > 0.5 and beta_ci[1] < -0.5:
        return {"verdict": "holds", "reason": f"α in [{alpha_ci[0]:.2f}, {alpha_ci[1]:.2f}] ∋ 1 and β in "
                                              f"[{beta_ci[0]:.2f}, {beta_ci[1]:.2f}] ∋ −1"}
    return {"verdict": "inconclusive", "reason": "the intervals contain α = 1, β = −1 but are too wide to exclude "
                                                 "α ≤ 0.5 or β ≥ −0.5"}


# ---------------------------------------------------------------------------------------------------
# Result and analysis


@dataclass(frozen=True)
class Result:
    """The contract of ``result.json`` for ``frozen_control`` (schema 2)."""

    schema_version: int  # this layout's version
    scale: str  # smoke | quick | paper
    config: dict[str, Any]  # the Config of the scale, as a dict
    recipe: dict[str, Any]  # the shared training recipe and the frozen search, plain JSON
    # One per (N, K, d): d_mlp*, status, converged, reason, bracket, its interval, parameters, the stages.
    frozen: list[dict[str, Any]]
    # One per (N, K): threshold's ln_frozen trace: d*, status, converged, interval, parameters, the stages.
    learned: list[dict[str, Any]]
    # The fits (point estimates and seed-bootstrap 95 % intervals): joint, product, by_d, by_nk,
    # param_exponent, learned_slope; see the module docstring.
    fits: dict[str, Any]
    associative_memory: dict[str, Any]  # verdict (holds | fails | inconclusive | untested) and reason
    comparison: list[dict[str, Any]]  # per (N, K): cheapest frozen vs learned non-embedding parameters, ratio
    scope: dict[str, Any]  # counts of bracketed / converged cells, unbracketed cells with their reasons
    own_wall_time_s: float  # seconds of the frozen-embedding ensembles (each ensemble counted once)
    learned_wall_time_s: float  # seconds of the learned (threshold) ensembles, as recorded in their rows
    n_runs: int  # runs analysed
    n_failed_runs: int  # runs whose training raised (counted as not reaching the target)
    sweep: dict[str, Any] = field(default_factory=dict)  # filled by the driver: what the sweep trained
    wall_time_s: float = 0.0  # filled by the driver: wall time of the run command


def _non_embedding(row: Mapping[str, Any]) -> tuple[int, int] | None:
    try:
        non = int(row["result.n_params.attention"] + row["result.n_params.mlp"] + row["result.n_params.layernorm"])
        return non, int(row["result.n_params.total"])
    except (KeyError, TypeError):
        return None


def _ensemble_seconds(rows: Sequence[Mapping[str, Any]], key: Callable[[Mapping[str, Any]], tuple]) -> float:
    """Wall seconds of the ensembles behind ``rows``: the rows of one ensemble share its time (counted once)."""
    best: dict[tuple, float] = {}
    for r in rows:
        t = r.get("wall_time_s")
        if t is not None:
            best[key(r)] = max(best.get(key(r), 0.0), float(t))
    return float(sum(best.values()))


def _interval(boot: Sequence[Mapping[str, float | None]], key: str) -> list[float] | None:
    return percentile_interval([b.get(key) for b in boot])


def analyze(cfg: Config, rows: list[dict[str, Any]], out_dir: Path) -> Result:
    """Replay both searches, read the needs, fit the scalings with their seed-bootstrap intervals."""
    del out_dir
    by_hash = {r["hash"]: r for r in rows}
    seeds = cfg.seeds
    succ = cfg.success_accuracy
    tcfg = cfg.threshold

    # Parameter counts of every tried size, from the rows.
    fparams: dict[tuple[int, int, int, int], tuple[int, int]] = {}
    lparams: dict[tuple[int, int, int], tuple[int, int]] = {}
    frozen_rows, learned_rows = [], []
    for r in rows:
        n, k = int(r["config.task.n_subjects"]), int(r["config.task.n_relations"])
        d, w = int(r["config.model.d_model"]), int(r["config.model.d_mlp"])
        p = _non_embedding(r) if r.get("status") == "done" else None
        if r.get("config.model.frozen_embeddings"):
            frozen_rows.append(r)
            if p is not None:
                fparams[(n, k, d, w)] = p
        else:
            learned_rows.append(r)
            if p is not None:
                lparams[(n, k, d)] = p

    ftraces = {c: frozen_trace(cfg, *c, by_hash) for c in _frozen_cells(cfg)}
    ltraces = {(n, k): threshold.cell_trace(tcfg, LEARNED_CONDITION, n, k, by_hash) for n, k in cfg.points}
    ftables = {c: merged_table(t.stages, succ) for c, t in ftraces.items()}
    ltables = {c: merged_table([s for s in t.stages if s.accuracy], succ) for c, t in ltraces.items()}

    def fneed(c: tuple[int, int, int]) -> int | None:
        t = ftraces[c]
        return t.final.d_mlp if t.done and t.final is not None and t.final.status == "bracketed" else None

    def lneed(c: tuple[int, int]) -> int | None:
        t = ltraces[c]
        return t.d_star if t.status == "bracketed" else None

    def fp(n: int, k: int, d: int, w: int) -> int | None:
        v = fparams.get((n, k, d, w))
        return None if v is None else v[0]

    def lp(n: int, k: int, d: int) -> int | None:
        v = lparams.get((n, k, d))
        return None if v is None else v[0]

    point = scaling_statistics({c: fneed(c) for c in ftraces}, {c: lneed(c) for c in ltraces}, fp, lp)

    # Seed bootstrap: one draw of seed indices per (N, K) world, applied to every d and to both conditions.
    rng = np.random.default_rng(cfg.bootstrap_seed)
    boot: list[dict[str, float | None]] = []
    fboot: dict[tuple[int, int, int], list[int]] = {c: [] for c in ftraces}
    lboot: dict[tuple[int, int], list[int]] = {c: [] for c in ltraces}
    n_seeds = len(seeds)
    for _ in range(cfg.n_bootstrap):
        draw = {c: rng.integers(0, n_seeds, n_seeds).tolist() for c in cfg.points}
        fr: dict[tuple[int, int, int], int | None] = {}
        for c, tab in ftables.items():
            w, status = tab.need(draw[(c[0], c[1])])
            fr[c] = w if status == "bracketed" else None
            if fr[c] is not None:
                fboot[c].append(fr[c])
        lr: dict[tuple[int, int], int | None] = {}
        for c, tab in ltables.items():
            d, status = tab.need(draw[c])
            lr[c] = d if status == "bracketed" else None
            if lr[c] is not None:
                lboot[c].append(lr[c])
        boot.append(scaling_statistics(fr, lr, fp, lp))

    def stat(key: str, **extra: Any) -> dict[str, Any]:
        vals = [b.get(key) for b in boot]
        return {"value": point.get(key), "ci95": _interval(boot, key),
                "n_boot": sum(v is not None for v in vals), **extra}

    frozen_out = []
    for (n, k, d), t in ftraces.items():
        w = fneed((n, k, d))
        fin = t.final
        g = None if fin is None or fin.d_mlp is None else _largest_fail_below(fin.tried, fin.d_mlp)
        prm = None if w is None else fparams.get((n, k, d, w))
        frozen_out.append({
            "N": n, "K": k, "NK": n * k, "d_model": d, "d_mlp": w, "status": t.final.status if t.final else "searching",
            "converged": t.converged, "reason": t.reason, "budget": None if fin is None else fin.steps,
            "bracket": None if w is None else [g, w], "d_mlp_ci95": percentile_interval(fboot[(n, k, d)]),
            "d_times_d_mlp": None if w is None else d * w,
            "params_non_embedding": None if prm is None else prm[0], "params_total": None if prm is None else prm[1],
            "non_monotone": list(fin.failed_above) if fin else [],
            "stages": [s.as_dict() for s in t.stages]})

    learned_out = []
    for (n, k), t in ltraces.items():
        dstar = lneed((n, k))
        prm = None if dstar is None else lparams.get((n, k, dstar))
        sel = construction_cost("selector", n, k, 1)
        learned_out.append({
            "N": n, "K": k, "NK": n * k, "k_log2_n": threshold.k_log2_n(n, k), "d_star": dstar,
            "d_mlp": None if dstar is None else tcfg.mlp_ratio * dstar, "status": t.status,
            "converged": t.converged, "budget": None if t.final is None else t.final.steps,
            "d_star_ci95": percentile_interval(lboot[(n, k)]),
            "params_non_embedding": None if prm is None else prm[0], "params_total": None if prm is None else prm[1],
            "violations": list(t.violations), "selector_d": sel.d_model,
            "selector_non_embedding": sel.attention + sel.mlp, "information_bits": information_bits(n, k),
            "stages": [s.as_dict() for s in t.stages]})

    alpha, beta = stat("alpha"), stat("beta")
    fits = {
        "joint": {"alpha": alpha, "beta": beta,
                  "kind": "least squares log d_mlp* = c + α log(N·K) + β log d over bracketed frozen cells; "
                          "associative memory: α = 1, β = −1"},
        "product": stat("product", kind="log(d·d_mlp*) on log(N·K), pooled over d; associative memory: 1"),
        "by_d": {str(d): stat(f"by_d.{d}", kind=f"log d_mlp* on log(N·K) at d = {d}") for d in cfg.d_models},
        "by_nk": {str(nk): stat(f"by_nk.{nk}", kind=f"log d_mlp* on log d at N·K = {nk}")
                  for nk in sorted({n * k for n, k in cfg.points})},
        "param_exponent": {
            FROZEN: stat("frozen_param_exponent", kind="log non-embedding params of the cheapest frozen d on log N·K"),
            LEARNED: stat("learned_param_exponent", kind="log non-embedding params at d* on log N·K")},
        "learned_slope": stat("learned_slope", kind="d* (learned embeddings) on K log2 N, least squares"),
    }
    # The joint fit's own numbers (intercept, OLS errors) at the point estimate, for the figure's lines.
    pts = [(c[0] * c[1], c[2], fneed(c)) for c in ftraces if fneed(c) is not None]
    j = fit_joint([p[0] for p in pts], [p[1] for p in pts], [p[2] for p in pts])
    fits["joint"]["ols"] = j
    prod = fit_power([p[0] for p in pts], [p[1] * p[2] for p in pts])
    fits["product"]["ols"] = prod

    comparison = []
    for n, k in cfg.points:
        fz = [f for f in frozen_out if (f["N"], f["K"]) == (n, k) and f["params_non_embedding"] is not None]
        best = min(fz, key=lambda f: f["params_non_embedding"], default=None)
        le = next(e for e in learned_out if (e["N"], e["K"]) == (n, k))
        comparison.append({
            "N": n, "K": k, "NK": n * k, "frozen_d_model": None if best is None else best["d_model"],
            "frozen_d_mlp": None if best is None else best["d_mlp"],
            "frozen_params_non_embedding": None if best is None else best["params_non_embedding"],
            "learned_d_star": le["d_star"], "learned_params_non_embedding": le["params_non_embedding"],
            "learned_params_total": le["params_total"],
            "ratio_non_embedding": point.get(f"ratio.{n}.{k}"), "ratio_ci95": _interval(boot, f"ratio.{n}.{k}")})

    n_br = sum(f["status"] == "bracketed" for f in frozen_out)
    n_conv = sum(f["status"] == "bracketed" and f["converged"] is True for f in frozen_out)
    scope = {"n_frozen_cells": len(frozen_out), "n_frozen_bracketed": n_br, "n_frozen_converged": n_conv,
             "n_learned_cells": len(learned_out),
             "n_learned_bracketed": sum(e["status"] == "bracketed" for e in learned_out),
             "n_learned_converged": sum(e["status"] == "bracketed" and e["converged"] is True for e in learned_out),
             "unbracketed": [{"condition": FROZEN, "N": f["N"], "K": f["K"], "d_model": f["d_model"],
                              "status": f["status"], "reason": f["reason"]} for f in frozen_out if f["reason"]]
                            + [{"condition": LEARNED, "N": e["N"], "K": e["K"], "status": e["status"],
                                "reason": "range" if e["status"].startswith("censored") else
                                ("budget: not converged" if e["converged"] is False else "")}
                               for e in learned_out if e["status"] != "bracketed" or e["converged"] is False]}

    fkey = lambda r: ("f", r["config.task.n_subjects"], r["config.task.n_relations"], r["config.model.d_model"],  # noqa: E731
                      r["config.model.d_mlp"], r.get("config.train.steps"))
    lkey = lambda r: ("l", r["config.task.n_subjects"], r["config.task.n_relations"], r["config.model.d_model"],  # noqa: E731
                      r.get("config.train.steps"), r.get("config.train.lr"))
    return Result(schema_version=SCHEMA_VERSION, scale=cfg.scale, config=dataclasses.asdict(cfg),
                  recipe=cfg.describe_recipe(), frozen=frozen_out, learned=learned_out, fits=fits,
                  associative_memory=associative_memory_verdict(alpha["ci95"], beta["ci95"]),
                  comparison=comparison, scope=scope,
                  own_wall_time_s=_ensemble_seconds(frozen_rows, fkey),
                  learned_wall_time_s=_ensemble_seconds(learned_rows, lkey),
                  n_runs=len(rows), n_failed_runs=sum(r.get("status") != "done" for r in rows))


def _fmt(v: Any, spec: str = ".3g") -> str:
    return "-" if v is None else format(v, spec) if isinstance(v, float) else str(v)


def _ci(ci: Sequence[float] | None) -> str:
    return "-" if ci is None else f"[{ci[0]:.3g}, {ci[1]:.3g}]"


def summarize(result: Result) -> str:
    """A plain-text summary: needs per cell, the fits with intervals, the comparison."""
    lines = [f"frozen_control ({result.scale})", "", "frozen:  N    K   N*K    d | d_mlp*  95% CI        status      "
             "conv  P_nonemb  reason"]
    for f in result.frozen:
        lines.append(f"      {f['N']:>4} {f['K']:>4} {f['NK']:>5} {f['d_model']:>4} | {_fmt(f['d_mlp']):>6}  "
                     f"{_ci(f['d_mlp_ci95']):<13} {f['status']:<11} {_fmt(f['converged']):<5} "
                     f"{_fmt(f['params_non_embedding']):>8}  {f['reason']}")
    lines.append("learned (threshold ln_frozen):")
    for e in result.learned:
        lines.append(f"      {e['N']:>4} {e['K']:>4} {e['NK']:>5} | d* {_fmt(e['d_star']):>4} {_ci(e['d_star_ci95'])} "
                     f"{e['status']} conv {_fmt(e['converged'])} P_nonemb {_fmt(e['params_non_embedding'])}")
    ft = result.fits
    lines += ["", f"joint: alpha {_fmt(ft['joint']['alpha']['value'])} {_ci(ft['joint']['alpha']['ci95'])}, "
                  f"beta {_fmt(ft['joint']['beta']['value'])} {_ci(ft['joint']['beta']['ci95'])}; "
                  f"product exponent {_fmt(ft['product']['value'])} {_ci(ft['product']['ci95'])}",
              f"associative memory d*d_mlp ~ N*K: {result.associative_memory['verdict']} "
              f"({result.associative_memory['reason']})"]
    for c in result.comparison:
        lines.append(f"N*K {c['NK']}: frozen {_fmt(c['frozen_params_non_embedding'])} (d {c['frozen_d_model']}) vs "
                     f"learned {_fmt(c['learned_params_non_embedding'])}: ratio {_fmt(c['ratio_non_embedding'])} "
                     f"{_ci(c['ratio_ci95'])}")
    lines.append(f"own (frozen) wall {result.own_wall_time_s:.1f} s, learned {result.learned_wall_time_s:.1f} s")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------
# Figures (from result.json only; drawn by georecall.plotting.frozen_control)


def plot(result_dir: str | Path) -> list[Path]:
    """The figures of :data:`FIGURES`, each with its CSV, from the saved payload."""
    folder = Path(result_dir)
    return frozen_control_plots.plot(load_result_json(folder), folder)
