"""Threshold: the smallest d_model at which a one-layer transformer with learned embeddings recalls every fact.

Claim (paper §5, "the capacity threshold predicted by theory is borne out empirically"; Theorem 4.1,
docs/theory.md §4.1, §6.4-§6.6): trained with learned embeddings, a one-layer transformer memorises all N·K
single-hop facts ``(s, r) -> f_r(s)`` once d_model passes a threshold d*(N, K) that grows like
``K log2 N`` (the selector construction needs ``d = (K+1) ceil(log2 N) + K``; the lower bound speaks of
``gamma = K log2 N`` *bits* per subject embedding — bits, not float dimensions).

What is trained. One layer, one head, a ReLU MLP of width ``mlp_ratio * d``, learned token and position
embeddings (init N(0, 1)), every other matrix initialised N(0, 1/d) (the readout too, learned or frozen),
full-batch AdamW on all ``N K`` queries; each member stops at ``target_accuracy`` (0.99). (With the
library's default init std 0.02, LayerNorm-free models with a frozen readout stalled at chance: the
subject reaches the answer position only through ``W_V W_O``, a product of two small matrices, and
the loss settles at the uniform output ln V; N(0, 1/d) removes that saddle. Measured at N = 128, K = 8.)
For every (N, K) a grid of d (around ``a + b K log2 N``, see :func:`d_grid`) is trained with every seed
and under four conditions (LayerNorm on/off × readout):

* ``ln_learned`` (**primary**, the usual model): pre-LayerNorm, a learned untied unembedding ``W_U``.
* ``ln_frozen``: pre-LayerNorm, a frozen, fact-independent random unembedding drawn from the init seed
  before the facts (``W_U ~ N(0, 1/d)``, ``b_U = 0``): the fixed-readout class the lower bound speaks of
  (docs/theory.md §6.5). A learned readout can hold the facts itself (the readout-only model of §6.5).
* ``noln_learned``, ``noln_frozen``: the same without any LayerNorm (LayerNorm moves the threshold).

The threshold. ``d*`` follows the project's one rule (:func:`~georecall.experiments.base.smallest_size`):
the smallest tested d from which every larger tested d works, a d working when a strict majority of the
seeds reach accuracy >= ``recipe.success_accuracy`` (0.99) within the step budget
(:func:`extract_threshold`); the first success is reported beside it (``first_success``), and they
differ exactly when the curve is non-monotone (``non_monotone``, ``failed_above``). ``null`` when the
largest tested d fails. d* depends on the recipe and budget, which the result reports beside it. A d*
at the bottom of its grid is only an upper bound (``status`` ``censored_low``, ``at_grid_min``).

The law (claim C7, :func:`law_comparison`): per condition, the log law ``d* = a_K + b K log2 N``
against the rival power law ``d* = c_K N^β`` over the bracketed cells, with a seed bootstrap (a
replicate redraws each cell's seeds and re-applies the rule).

Scales (N·K·(N+K) is the cost of one full-batch step; members above threshold stop early, so the
budget is spent by the d below threshold):

* ``smoke``: N in {8, 16}, K = 2, two d, 2 seeds, 80 steps — seconds on one CPU core.
* ``quick``: N in {16, 32, 64, 128} (8×), K in {2, 4, 8}, 3 seeds, 4 conditions, 5-6 d per (N, K,
  condition) at 0.6-1.7 × d_hat, 400 steps at lr 3e-2 (cosine, 50 warm-up): 858 runs (286 ensembles
  of 3). Measured 7.8 min wall on 2 CPU cores with one torch thread (2026-12-01; 9.2 min with two threads
  on 2026-11-26). With 2 seeds (both had to succeed)
  3 of the 12 LayerNorm/learned-readout cells were non-monotone in d; with 3 (2 of 3 must) 1 is.
* ``paper``: N in {64, ..., 4096} (64×), K in {2, 4, 8}, 3 seeds, 4 conditions, 8-9 d per (N, K,
  condition) at 0.4-2.1 × d_hat, 2000 steps at lr 3e-2: 2241 runs (747 ensembles of 3) for one GPU.
  The largest full-batch step (N = 4096, K = 8) scores 32768 queries over 4104 tokens; its logits
  take about 1.6 GB per ensemble of 3. Not yet timed on a GPU (a rough estimate: one to two hours);
  extrapolated from a measured fraction on 2 CPU cores (benchmarks/paper_scale.py, 2026-12-01): at most
  100 h at full step budgets.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from georecall.config import ModelConfig, RunConfig, TaskConfig
from georecall.experiments import stats
from georecall.experiments.base import (
    Provenance,
    Recipe,
    RecipeFields,
    SmallestSize,
    load_result_json,
    outcome_table,
    smallest_size,
    validate_config,
)
from georecall.plotting import threshold as threshold_plots
from georecall.results.store import STORE_NAME, ResultStore
from georecall.theory import construction_cost, gamma_global, gamma_local, information_bits

ID = "threshold"
SCHEMA_VERSION = 1

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

Readout = Literal["learned", "frozen"]
#: The four conditions, primary first: (layernorm, readout).
CONDITIONS: dict[str, tuple[bool, str]] = {
    "ln_learned": (True, "learned"),
    "ln_frozen": (True, "frozen"),
    "noln_learned": (False, "learned"),
    "noln_frozen": (False, "frozen"),
}
PRIMARY = "ln_learned"
CONDITION_LABELS: dict[str, str] = threshold_plots.CONDITION_LABELS  # one wording, in figures and results
#: Centres of the d grids, ``d_hat = a + b K log2 N`` per condition: least-squares fits (rounded) of the
#: thresholds of a pilot run of the quick grid with factor grids ``f K log2 N`` (f in 0.2..0.8 for a
#: learned readout, 0.4..1.6 for a frozen one; 500 steps). They place the grid, they are not results.
PILOT_CENTERS: tuple[tuple[str, float, float], ...] = (
    ("ln_learned", 3.0, 0.25), ("ln_frozen", 8.0, 0.3), ("noln_learned", 1.0, 0.4), ("noln_frozen", 2.0, 0.75))
#: Accuracies within this of the success level count as reaching it (float rounding of counts).
ACC_TOL = 1e-9


# ---------------------------------------------------------------------------------------------------
# Config


@dataclass(frozen=True)
class ThresholdConfig(RecipeFields):
    """One scale of the threshold experiment: the (N, K, d, condition, seed) grid and the training recipe."""

    scale: str  # smoke | quick | paper
    n_subjects: tuple[int, ...] = field(metadata={"min": 2, "nonempty": True, "distinct": True})  # N values
    n_relations: tuple[int, ...] = field(metadata={"min": 1, "nonempty": True, "distinct": True})  # K values
    # Seeds per point (world, init and frozen readout all drawn from the seed).
    seeds: tuple[int, ...] = field(metadata={"min": 0, "nonempty": True, "distinct": True})
    # d grid at (N, K, condition) = round(w * d_hat) for these w (see d_grid).
    d_window: tuple[float, ...] = field(metadata={"min": 1e-9, "nonempty": True})
    recipe: Recipe = field(default_factory=lambda: Recipe(steps=500, lr=3e-2, target_accuracy=0.99, eval_every=100))
    d_centers: tuple[tuple[str, float, float], ...] = PILOT_CENTERS  # (condition, a, b): d_hat = a + b K log2 N
    # Which of CONDITIONS to train (the primary must be one).
    conditions: tuple[str, ...] = field(default=tuple(CONDITIONS),
                                        metadata={"nonempty": True, "distinct": True, "choices": tuple(CONDITIONS)})
    d_min: int = field(default=2, metadata={"min": 1})  # smallest d tried (small grids collapse onto consecutive ints)
    mlp_ratio: int = field(default=4, metadata={"min": 1})  # d_mlp = mlp_ratio * d
    n_bootstrap: int = field(default=500, metadata={"min": 0})  # seed-bootstrap replicates of the law comparison
    bootstrap_seed: int = field(default=0, metadata={"min": 0})  # numpy seed of the bootstrap (deterministic)

    def __post_init__(self) -> None:
        validate_config(self)
        if any(len(c) != 3 or c[1] < 0 or c[2] < 0 or not all(map(math.isfinite, c[1:])) for c in self.d_centers):
            raise ValueError(f"d_centers must hold (condition, a >= 0, b >= 0) triples, got {self.d_centers!r}")
        centers = {c[0]: c[1:] for c in self.d_centers}
        if PRIMARY not in self.conditions:
            raise ValueError(f"conditions must include the primary condition {PRIMARY!r}, got {self.conditions!r}")
        missing = [c for c in self.conditions if c not in centers]
        if missing:
            raise ValueError(f"d_centers has no centre for condition(s) {missing}")

    def describe_recipe(self) -> dict[str, Any]:
        """The training recipe d* depends on, as plain JSON (reported beside every threshold)."""
        return {
            "architecture": f"1 layer, 1 head, ReLU MLP of width {self.mlp_ratio}·d, learned token and position "
                            "embeddings, untied unembedding (learned, or frozen N(0, 1/d) drawn from the init seed)",
            "n_layers": 1, "n_heads": 1, "mlp_ratio": self.mlp_ratio, "init_std": "d ** -0.5",
            "unembed_init_std": "d ** -0.5", "embed_init_std": ModelConfig().embed_init_std,
            "optimizer": "AdamW, full batch (all N·K queries every step), loss on the answer position",
            **self.recipe.describe(), "seeds": list(self.seeds),
        }


def config(scale: str) -> ThresholdConfig:
    """The threshold experiment at ``smoke``, ``quick`` or ``paper`` scale (module docstring)."""
    if scale == "smoke":
        return ThresholdConfig(scale="smoke", n_subjects=(8, 16), n_relations=(2,), seeds=(0, 1),
                               d_window=(0.5, 1.5), n_bootstrap=50,
                               recipe=Recipe(steps=80, lr=3e-2, warmup_steps=10, eval_every=40, target_accuracy=0.99))
    if scale == "quick":
        return ThresholdConfig(scale="quick", n_subjects=(16, 32, 64, 128), n_relations=(2, 4, 8), seeds=(0, 1, 2),
                               d_window=(0.6, 0.75, 0.9, 1.1, 1.35, 1.7),
                               recipe=Recipe(steps=400, lr=3e-2, eval_every=100, target_accuracy=0.99))
    if scale == "paper":
        return ThresholdConfig(scale="paper", n_subjects=(64, 128, 256, 512, 1024, 2048, 4096), n_relations=(2, 4, 8),
                               seeds=(0, 1, 2), d_window=(0.4, 0.5, 0.6, 0.75, 0.9, 1.1, 1.35, 1.7, 2.1),
                               n_bootstrap=1000,
                               recipe=Recipe(steps=2000, lr=3e-2, eval_every=100, target_accuracy=0.99))
    raise ValueError(f"scale must be smoke, quick or paper, got {scale!r}")


def k_log2_n(n_subjects: int, n_relations: int) -> float:
    """``K log2 N``: the bits of the K answers of one subject, the scale the d grid is laid on."""
    return n_relations * math.log2(n_subjects)


def d_center(cfg: ThresholdConfig, n_subjects: int, n_relations: int, condition: str) -> float:
    """The grid's centre ``d_hat = a + b K log2 N`` for a condition (``cfg.d_centers``)."""
    centers = {c[0]: c[1:] for c in cfg.d_centers}
    if condition not in centers:
        raise ValueError(f"no d centre for condition {condition!r}; known: {sorted(centers)}")
    a, b = centers[condition]
    return a + b * k_log2_n(n_subjects, n_relations)


def d_grid(cfg: ThresholdConfig, n_subjects: int, n_relations: int, condition: str) -> list[int]:
    """The d tried at (N, K) under a condition: ``max(d_min, round(w d_hat))`` for w in the window, distinct, sorted.

    The window is relative to ``d_hat = a + b K log2 N``, so the grid scales with K log2 N and
    stays dense near the threshold; where d* falls inside it is the measurement, and a d* at its
    lower edge (``at_grid_min``) or beyond its upper edge (null) is reported as such.
    """
    center = d_center(cfg, n_subjects, n_relations, condition)
    return sorted({max(cfg.d_min, math.floor(w * center + 0.5)) for w in cfg.d_window})


def model_config(cfg: ThresholdConfig, d: int, condition: str) -> ModelConfig:
    """The one-layer model of ``condition`` at width ``d``."""
    layernorm, readout = CONDITIONS[condition]
    std = d ** -0.5  # every matrix but W_E/W_pos; the readout, learned or frozen, starts as N(0, 1/d)
    return ModelConfig(d_model=d, n_layers=1, n_heads=1, d_mlp=cfg.mlp_ratio * d, layernorm=layernorm,
                       frozen_unembedding=readout == "frozen", init_std=std, unembed_init_std=std)


def runs(cfg: ThresholdConfig) -> list[RunConfig]:
    """Every (N, K, condition, d, seed) run, one seed each; seeds of one shape train as one ensemble."""
    train = cfg.train_config()
    out = []
    for n in cfg.n_subjects:
        for k in cfg.n_relations:
            task = TaskConfig(n_subjects=n, n_relations=k)
            for cond in cfg.conditions:
                for d in d_grid(cfg, n, k, cond):
                    model = model_config(cfg, d, cond)
                    out.extend(RunConfig(task=task, model=model, train=train, seeds=(s,)) for s in cfg.seeds)
    return out


# ---------------------------------------------------------------------------------------------------
# Pure analysis: threshold extraction and fits


def majority_success(accuracies: Sequence[float], success_accuracy: float) -> bool:
    """True when a strict majority of the seeds reach ``success_accuracy`` (2 seeds: both; 3: two)."""
    return stats.majority_success(accuracies, success_accuracy, tol=ACC_TOL)


@dataclass(frozen=True)
class ThresholdEstimate:
    """The threshold read off one (N, K, condition) curve by the shared rule (:func:`smallest_size`)."""

    d_star: int | None  # smallest tested d from which every larger tested d works; None if the largest fails
    first_success: int | None  # smallest tested d that works, failures above ignored
    status: str  # bracketed | censored_low (an upper bound) | censored_high (above the tested range)
    tested: tuple[int, ...]  # the d values with at least one seed, ascending
    successes: tuple[bool, ...]  # majority success at each tested d
    non_monotone: bool  # some tested d above first_success failed the majority rule
    failed_above: tuple[int, ...]  # those d
    at_grid_min: bool  # status == censored_low: the threshold may lie lower (an upper bound)


def extract_threshold(table: Iterable[tuple[int, int, float]], success_accuracy: float = 0.99) -> ThresholdEstimate:
    """d* from a table of ``(d, seed, accuracy)`` rows by the shared smallest-size rule (majority of seeds).

    A repeated ``(d, seed)`` raises ValueError.
    """
    by_d: dict[int, dict[int, float]] = {}
    for d, seed, acc in table:
        seeds = by_d.setdefault(int(d), {})
        if seed in seeds:
            raise ValueError(f"repeated (d, seed) = ({d}, {seed}) in the threshold table")
        seeds[seed] = float(acc)
    tested = tuple(sorted(by_d))
    ok = tuple(majority_success(list(by_d[d].values()), success_accuracy) for d in tested)
    if not tested:
        return ThresholdEstimate(None, None, "censored_high", (), (), False, (), False)
    est: SmallestSize = smallest_size(tested, ok)
    return ThresholdEstimate(d_star=est.size, first_success=est.first_success, status=est.status, tested=tested,
                             successes=ok, non_monotone=est.non_monotone, failed_above=est.failed_above,
                             at_grid_min=est.status == "censored_low")


def seed_table_threshold(rows: Sequence[tuple[int, Sequence[float | None]]], seed_idx: Sequence[int],
                         success_accuracy: float) -> ThresholdEstimate:
    """:func:`extract_threshold` of a cell whose seeds are resampled: ``rows`` are (d, per-seed accuracies)."""
    table = [(d, j, -1.0 if accs[i] is None else accs[i]) for d, accs in rows for j, i in enumerate(seed_idx)]
    return extract_threshold(table, success_accuracy)


def _fit_laws(cells: Sequence[tuple[int, int, int]]) -> dict[str, float] | None:
    """Fit the log law and the power law to bracketed (N, K, d*) cells, per-K intercepts/prefactors.

    Log law: ``d* = a_K + b K log2 N`` (a per K, one slope b in K log2 N). Power law (the rival):
    ``log d* = c_K + β log N`` (c per K, one exponent β). Both have K-count + 1 parameters; their
    squared errors are compared in d* units.
    """
    ks = sorted({k for _, k, _ in cells})
    if len(cells) < len(ks) + 2 or any(len({n for n, kk, _ in cells if kk == k}) < 2 for k in ks):
        return None
    y = np.array([d for _, _, d in cells], dtype=float)
    dummies = np.array([[1.0 if k == kk else 0.0 for kk in ks] for _, k, _ in cells])
    x_log = np.column_stack([dummies, [k * math.log2(n) for n, k, _ in cells]])
    coef_log, *_ = np.linalg.lstsq(x_log, y, rcond=None)
    x_pow = np.column_stack([dummies, [math.log(n) for n, _, _ in cells]])
    coef_pow, *_ = np.linalg.lstsq(x_pow, np.log(y), rcond=None)
    sse_log = float(((x_log @ coef_log - y) ** 2).sum())
    sse_pow = float(((np.exp(x_pow @ coef_pow) - y) ** 2).sum())
    return {"log_slope": float(coef_log[-1]), "beta": float(coef_pow[-1]), "sse_log": sse_log, "sse_power": sse_pow}


def law_comparison(curves: Mapping[tuple[int, int], Sequence[tuple[int, Sequence[float | None]]]], n_seeds: int,
                   success_accuracy: float, n_boot: int, seed: int) -> dict[str, Any]:
    """The log law against the power law for one condition, with a seed bootstrap.

    ``curves[(N, K)]`` lists ``(d, per-seed accuracies)`` with the seeds in one order. Each bootstrap
    replicate redraws every cell's seeds with replacement (one draw per cell, shared by its d: a seed
    is one world and one init), re-applies the smallest-size rule, keeps the bracketed cells and refits.
    Returns the fit on the data, 95 % percentile intervals of the slope and of β, and the share of
    replicates in which the log law's squared error is the smaller.
    """
    ident = list(range(n_seeds))
    base = {key: seed_table_threshold(rows, ident, success_accuracy) for key, rows in curves.items()}
    bracketed = [(n, k, e.d_star) for (n, k), e in sorted(base.items()) if e.status == "bracketed"]
    out: dict[str, Any] = {"n_cells": len(curves), "n_bracketed": len(bracketed), "cells": [list(c) for c in bracketed],
                           "log_slope": None, "beta": None, "sse_log": None, "sse_power": None,
                           "log_slope_ci95": None, "beta_ci95": None, "log_wins_fraction": None, "n_boot": 0,
                           "kind": "log law d* = a_K + b·K log2 N against power law d* = c_K·N^β, bracketed cells, "
                                   "seed bootstrap (majority rule re-applied per replicate)"}
    fit = _fit_laws(bracketed)
    if fit is None:
        return out
    out.update(fit)
    rng = np.random.default_rng(seed)
    slopes, betas, wins = [], [], []
    for _ in range(n_boot):
        cells = []
        for (n, k), rows in sorted(curves.items()):
            e = seed_table_threshold(rows, rng.integers(0, n_seeds, n_seeds).tolist(), success_accuracy)
            if e.status == "bracketed":
                cells.append((n, k, e.d_star))
        f = _fit_laws(cells)
        if f is None:
            continue
        slopes.append(f["log_slope"])
        betas.append(f["beta"])
        wins.append(f["sse_log"] <= f["sse_power"])
    out["n_boot"] = len(slopes)
    if len(slopes) >= 2:
        out["log_slope_ci95"] = [float(np.percentile(slopes, 2.5)), float(np.percentile(slopes, 97.5))]
        out["beta_ci95"] = [float(np.percentile(betas, 2.5)), float(np.percentile(betas, 97.5))]
        out["log_wins_fraction"] = float(np.mean(wins))
    return out


def laws_for(points: Sequence[Mapping[str, Any]], cfg: ThresholdConfig) -> dict[str, dict[str, Any]]:
    """:func:`law_comparison` per trained condition, from the accuracy-vs-d points (seeds aligned to cfg.seeds)."""
    out = {}
    for cond in cfg.conditions:
        curves: dict[tuple[int, int], list[tuple[int, list[float | None]]]] = {}
        for p in points:
            if p["condition"] != cond:
                continue
            acc = dict(zip(p["seeds"], p["accuracy"], strict=True))
            curves.setdefault((p["n_subjects"], p["n_relations"]), []).append(
                (p["d_model"], [acc.get(s) for s in cfg.seeds]))
        out[cond] = law_comparison(curves, len(cfg.seeds), cfg.success_accuracy, cfg.n_bootstrap, cfg.bootstrap_seed)
    return out


def fit_line(x: Sequence[float], y: Sequence[float]) -> dict[str, float | int | None] | None:
    """Least squares ``y = slope x + intercept`` with R²; None with fewer than 2 distinct x.

    R² is None when y is constant (nothing to explain).
    """
    if len(x) != len(y):
        raise ValueError(f"x and y must have the same length, got {len(x)} and {len(y)}")
    if len(x) < 2 or len(set(x)) < 2:
        return None
    fit = stats.fit_line(x, y)
    r2 = None if len(set(y)) == 1 else fit["r2"]
    return {"slope": fit["slope"], "intercept": fit["intercept"], "r2": r2, "n_points": fit["n"]}


# ---------------------------------------------------------------------------------------------------
# Rows -> curves -> thresholds (shared with the capacity experiment)


def condition_of(layernorm: bool, frozen_unembedding: bool) -> str:
    """The condition name of a model's (layernorm, frozen readout) flags."""
    return f"{'ln' if layernorm else 'noln'}_{'frozen' if frozen_unembedding else 'learned'}"


def cell_key(row: Mapping[str, Any]) -> tuple[str, int, int, int]:
    """(condition, N, K, d) of a store row: the cell of the outcome table it belongs to."""
    cond = condition_of(bool(row["config.model.layernorm"]), bool(row["config.model.frozen_unembedding"]))
    return (cond, int(row["config.task.n_subjects"]), int(row["config.task.n_relations"]),
            int(row["config.model.d_model"]))


def collect_points(rows: Sequence[Mapping[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """One point per (condition, N, K, d) from the store's rows (the shared :func:`outcome_table`), plus one
    line per failed run.

    A point holds ``seeds``, ``accuracy``, ``steps``, ``stop_reason`` (one entry per done seed, by
    seed), the parameter counts of one member and ``n_failed`` (runs of the point that raised).
    """
    cells = outcome_table(rows, cell_key)
    frozen_readout = {cell_key(r): bool(r["config.model.frozen_unembedding"]) for r in rows}
    out, errors = [], []
    for key in sorted(cells, key=lambda k: (list(CONDITIONS).index(k[0]), *k[1:])):
        c = cells[key]
        cond, n, k, d = key
        done = [i for i, a in enumerate(c.accuracy) if a is not None]
        errors += [f"{cond} N={n} K={k} d={d} seed={s}: {e}"
                   for s, e in zip([s for i, s in enumerate(c.seeds) if i not in done], c.errors, strict=True)]
        params = c.n_params or {}
        total = params.get("total")
        frozen = params.get("unembedding", 0) if frozen_readout[key] else 0
        out.append({"condition": cond, "n_subjects": n, "n_relations": k, "d_model": d,
                    "seeds": [c.seeds[i] for i in done], "accuracy": [c.accuracy[i] for i in done],
                    "steps": [c.steps[i] for i in done], "stop_reason": [c.stop_reason[i] for i in done],
                    "n_failed": len(c.seeds) - len(done), "n_params_total": total,
                    "n_params_embedding": params.get("embedding"),
                    "n_params_trainable": None if total is None else total - frozen})
    return out, errors


def thresholds(points: Sequence[Mapping[str, Any]], success_accuracy: float) -> list[dict[str, Any]]:
    """One d* entry per (condition, N, K) of ``points`` with the overlays (K log2 N, selector d, gammas)."""
    cells: dict[tuple[str, int, int], list[tuple[int, int, float]]] = {}
    params: dict[tuple[str, int, int, int], Mapping[str, Any]] = {}
    for p in points:
        key = (p["condition"], p["n_subjects"], p["n_relations"])
        cells.setdefault(key, []).extend((p["d_model"], s, a) for s, a in zip(p["seeds"], p["accuracy"], strict=True))
        params[(*key, p["d_model"])] = p
    out = []
    for key in sorted(cells, key=lambda k: (list(CONDITIONS).index(k[0]), k[1], k[2])):
        cond, n, k = key
        est = extract_threshold(cells[key], success_accuracy)
        at = params.get((*key, est.d_star)) if est.d_star is not None else None
        out.append({
            "n_subjects": n, "n_relations": k, "d_star": est.d_star, "condition": cond,
            "k_log2_n": k_log2_n(n, k),
            "selector_d": construction_cost("selector", n, k, 1).d_model,
            "gamma_global": gamma_global(n, k, 1),
            "gamma_local": gamma_local(n, k, 1),
            "information_bits": information_bits(n, k),
            "first_success": est.first_success, "status": est.status,
            "d_tested": list(est.tested), "d_majority_success": list(est.successes),
            "non_monotone": est.non_monotone, "failed_above": list(est.failed_above),
            "at_grid_min": est.at_grid_min,
            "n_params_total": None if at is None else at["n_params_total"],
            "n_params_embedding": None if at is None else at["n_params_embedding"],
            "n_params_trainable": None if at is None else at["n_params_trainable"],
        })
    return out


def fits_for(entries: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Least-squares fits of d* (non-null entries) against K log2 N and against N, pooled and per K."""
    ok = [e for e in entries if e["d_star"] is not None]
    by_k: dict[str, Any] = {}
    for k in sorted({e["n_relations"] for e in ok}):
        sub = [e for e in ok if e["n_relations"] == k]
        by_k[str(k)] = fit_line([e["n_subjects"] for e in sub], [e["d_star"] for e in sub])
    return {
        "vs_k_log2_n": fit_line([e["k_log2_n"] for e in ok], [e["d_star"] for e in ok]),
        "vs_n": fit_line([e["n_subjects"] for e in ok], [e["d_star"] for e in ok]),
        "vs_n_by_k": by_k,
        "n_cells": len(entries), "n_with_d_star": len(ok),
    }


# ---------------------------------------------------------------------------------------------------
# Result


@dataclass(frozen=True)
class ThresholdResult:
    """The contract of ``threshold/<scale>/result.json``."""

    scale: str  # smoke | quick | paper
    primary_condition: str  # the condition ``d_star`` reports: LayerNorm on, learned untied readout
    d_star: list[dict[str, Any]]  # primary condition, one per (N, K): n_subjects, n_relations, d_star (null if
    #   no d worked), k_log2_n, selector_d, gamma_global/local (bits!), d_tested, non_monotone, at_grid_min, ...
    d_star_by_condition: dict[str, list[dict[str, Any]]]  # the same for every trained condition
    fits: dict[str, dict[str, Any]]  # per condition: d* ~ K log2 N and d* ~ N (slope, intercept, r2, n_points)
    laws: dict[str, dict[str, Any]]  # per condition: log law vs power law N^β with seed-bootstrap intervals (C7)
    recipe: dict[str, Any]  # architecture and optimiser; d* holds within this recipe only
    step_budget: int  # steps per run; d* is "smallest d reaching success_accuracy within this many steps"
    success_rule: str  # the majority rule in words
    conditions: dict[str, str]  # condition name -> description
    grid: dict[str, Any]  # n_subjects, n_relations, seeds, d factors, d grid per (N, K, readout)
    points: list[dict[str, Any]]  # accuracy-vs-d data: one per (condition, N, K, d), per-seed lists
    n_runs: int  # runs in the grid
    n_failed_runs: int  # runs that raised (errors in ``notes``)
    notes: list[str]  # non-monotone curves, thresholds at the grid's edge, failures
    schema_version: int = SCHEMA_VERSION  # bumped when a field changes meaning
    sweep: dict[str, Any] = field(default_factory=dict)  # the sweep report (filled by the driver)
    wall_time_s: float = 0.0  # driver wall time: training (what was missing) + analysis


def _grid_summary(cfg: ThresholdConfig) -> dict[str, Any]:
    grids = [{"n_subjects": n, "n_relations": k, "condition": c, "d_center": d_center(cfg, n, k, c),
              "d": d_grid(cfg, n, k, c)}
             for n in cfg.n_subjects for k in cfg.n_relations for c in cfg.conditions]
    return {"n_subjects": list(cfg.n_subjects), "n_relations": list(cfg.n_relations), "seeds": list(cfg.seeds),
            "d_window": list(cfg.d_window), "d_centers": [list(c) for c in cfg.d_centers if c[0] in cfg.conditions],
            "d_min": cfg.d_min, "d_grids": grids}


def _notes(by_cond: Mapping[str, Sequence[Mapping[str, Any]]], errors: Sequence[str]) -> list[str]:
    notes = []
    for cond, entries in by_cond.items():
        for e in entries:
            where = f"{cond} N={e['n_subjects']} K={e['n_relations']}"
            if e["d_star"] is None:
                notes.append(f"{where}: no tested d reached the majority rule (d* > {max(e['d_tested'], default=0)})")
            elif e["at_grid_min"]:
                notes.append(f"{where}: d* = {e['d_star']} is the smallest tested d (an upper bound)")
            if e["non_monotone"]:
                notes.append(f"{where}: non-monotone, d = {e['failed_above']} above d* = {e['d_star']} failed")
    return notes + [f"failed run: {e}" for e in errors]


def complete_rows(cfg: ThresholdConfig, rows: Sequence[Mapping[str, Any]], out_dir: Path) -> list[dict[str, Any]]:
    """``rows`` plus the store rows of any run of :func:`runs` they lack, found by config hash.

    The driver selects rows by sweep name; threshold and capacity train the same runs (same hashes)
    under two names, and a row carries the name of the sweep that wrote it last. Looking missing runs
    up by hash makes either experiment see every run, whichever trained it.
    """
    wanted = {r.config_hash() for r in runs(cfg)}
    out = [dict(r) for r in rows if r["hash"] in wanted]
    missing = wanted - {r["hash"] for r in out}
    store_path = Path(out_dir) / STORE_NAME
    if missing and store_path.is_file():
        with ResultStore(store_path) as store:
            out += [r for r in store.table(None, status=None) if r["hash"] in missing]
    return out


def analyze(cfg: ThresholdConfig, rows: list[dict[str, Any]], out_dir: Path) -> ThresholdResult:
    """Curves, thresholds per condition and the fits, from the store's rows of :func:`runs`."""
    points, errors = collect_points(complete_rows(cfg, rows, out_dir))
    entries = thresholds(points, cfg.success_accuracy)
    by_cond = {c: [e for e in entries if e["condition"] == c] for c in cfg.conditions}
    n_seeds = len(cfg.seeds)
    rule = (f"d* = smallest tested d from which every larger tested d works (more than half of the {n_seeds} "
            f"seeds reach accuracy >= {cfg.success_accuracy} within {cfg.steps} steps); first success beside it; "
            "null if the largest tested d fails")
    return ThresholdResult(
        scale=cfg.scale, primary_condition=PRIMARY, d_star=by_cond[PRIMARY], d_star_by_condition=by_cond,
        fits={c: fits_for(es) for c, es in by_cond.items()}, laws=laws_for(points, cfg),
        recipe=cfg.describe_recipe(), step_budget=cfg.steps,
        success_rule=rule, conditions={c: CONDITION_LABELS[c] for c in cfg.conditions}, grid=_grid_summary(cfg),
        points=points, n_runs=len(runs(cfg)), n_failed_runs=len(errors), notes=_notes(by_cond, errors))


def summarize(result: ThresholdResult) -> str:
    """The d* table (every condition) and the fits, for the terminal."""
    conds = list(result.d_star_by_condition)
    lines = [f"threshold ({result.scale}): {result.success_rule}",
             f"recipe: lr {result.recipe['lr']}, {result.recipe['schedule']}, {result.step_budget} steps, "
             f"MLP {result.recipe['mlp_ratio']}·d",
             "   N   K  KlogN  sel_d " + " ".join(f"{c:>13}" for c in conds)]
    cells = {(e["n_subjects"], e["n_relations"]): e for e in result.d_star_by_condition[result.primary_condition]}
    lookup = {(c, e["n_subjects"], e["n_relations"]): e["d_star"]
              for c in conds for e in result.d_star_by_condition[c]}
    for (n, k), e in sorted(cells.items()):
        vals = " ".join(f"{'-' if lookup.get((c, n, k)) is None else lookup[(c, n, k)]:>13}" for c in conds)
        lines.append(f"{n:>4} {k:>3} {e['k_log2_n']:>6.1f} {e['selector_d']:>6} {vals}")
    for c in conds:
        f = result.fits[c]
        parts = []
        for name in ("vs_k_log2_n", "vs_n"):
            fit = f[name]
            if fit is None:
                parts.append(f"{name}: n/a")
            else:
                r2 = "n/a" if fit["r2"] is None else f"{fit['r2']:.3f}"
                parts.append(f"{name}: d* = {fit['slope']:.3g}·x + {fit['intercept']:.3g} (R² {r2})")
        lines.append(f"fit {c}: " + "; ".join(parts))
    lines += [f"note: {n}" for n in result.notes[:20]]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------
# Figures (from result.json only; drawn by georecall.plotting.threshold)

ACC_FIGURE, DSTAR_FIGURE = threshold_plots.ACC_FIGURE, threshold_plots.DSTAR_FIGURE
FITS_TABLE, CONDITION_STYLES = threshold_plots.FITS_TABLE, threshold_plots.CONDITION_STYLES


def plot(result_dir: str | Path) -> list[Path]:
    """Accuracy-vs-d and d*-vs-K log2 N figures with their CSVs, from ``result.json`` alone."""
    folder = Path(result_dir)
    return threshold_plots.plot(load_result_json(folder), folder)
