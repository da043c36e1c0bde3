"""``frozen_control``: with everything fact-free frozen at random, the MLP must hold the facts.

The associative-memory setting (docs/theory.md §6.5, "Consequences for experiments"): token embeddings,
position embeddings **and** the unembedding are frozen at a random, fact-independent init, so the only
place a single-hop world of N subjects and K relations can live is the trainable attention, MLP and
LayerNorm weights. At a fixed residual width d we sweep the MLP width ``d_mlp`` over a geometric grid
and find, for each (N, K), the width a one-layer model needs to reach 99 % of the N·K facts. The
associative-memory view predicts that width (and the parameter count) to grow linearly in N·K. The
contrast is the learned condition: embeddings and readout are trained, and we sweep d (with
``d_mlp = learned_mlp_ratio * d``) for the smallest successful model. The learned model can store the
facts in its embeddings (docs/theory.md §2, the selector), so its attention + MLP parameters grow only with
``d ~ K log N``.

**What counts.** ``params_non_embedding`` = attention + MLP + LayerNorm (the theory's P: every weight
that is not indexed by a token). For the frozen condition that is exactly the trainable count; for the
learned one the trainable count is the total (embeddings, positions and readout are trained too).
All three (non-embedding, trainable, total) are reported; the figure compares non-embedding counts and
shows the learned total as context (it holds N·d embedding parameters, linear in N).

**Width needed (majority, monotone rule).** A (N, K, size) cell succeeds when a strict majority of its
seeds reach ``target_accuracy`` within the step budget. The needed size is the smallest grid size from
which on *every larger tried size* also succeeds (so a lucky small width followed by a failure does not
count); ``status`` says whether a failing smaller size brackets it (``bracketed``), the smallest tried
size already passes (``censored_low``: need ≤ that size) or the largest fails (``censored_high``).
Only bracketed points enter the fits.

**Recipe** (every scale): one layer, one head, pre-LayerNorm, AdamW (betas 0.9/0.98, no weight decay),
lr 1e-2 with 50 warm-up steps then cosine to 0.1·lr over the budget, **full batch** (all N·K queries
every step: at these sizes a full batch is cheap and the stop check is exact at every step), members
stop at 99 % accuracy. Frozen readout scale: ``unembed_init_std = 1/sqrt(d)`` (measured at d = 16:
N = 64, K = 2, width 128 reaches 99 % in 150-270 steps for 3/3 seeds, against 2/3 within 600 steps with
std 1.0); frozen token and position embeddings keep ``embed_init_std = 1``.

**Scales.** ``smoke``: seconds, same code path. ``quick`` (2 CPU cores; measured 3.7 min wall with one torch
thread, 2026-12-01; 15.5 min with two threads while sharing the cores with other jobs): d = 16, K = 2 with
N ∈ {16, 32, 64, 128, 256} and K = 4 with N ∈ {32, 64, 128} (N·K from 32 to 512), 3 seeds, budget 1000
steps; frozen widths on the √2 grid within
[N·K/10, N·K/1.4] (measured needs were N·K/5 to N·K/2, so the window brackets them, and a need that did
not grow would show as ``censored_low``), learned d ∈ {4, 6, 8, 11, 16}: 47 frozen and 40 learned
ensembles of 3 members.
``paper`` (one GPU): d = 32, N ∈ {64, 128, 256, 512, 1024} × K ∈ {2, 4, 8} (N·K from 128 to 8192),
5 seeds, budget 3000 steps, frozen widths on the √2 grid within [N·K/24, N·K/3], learned
d ∈ {4, 6, 8, 11, 16, 23, 32, 45}: 90 frozen and 120 learned ensembles of 5 members. Measured on an
H200 (probe, not the full sweep): at d = 32 the need is about N·K/8 (N = 256, K = 4: width 64 fails,
128 passes; N = 1024, K = 8: 512 fails, 1024 passes), hence the window; a failing ensemble spends
16-23 s on its 3000 steps, a passing one 1-13 s, so the sweep should take roughly 40-50 min on one GPU.
On 2 CPU cores, extrapolated from a measured fraction (benchmarks/paper_scale.py, 2026-12-01): at most
9.3 h at full step budgets.

**``width_slope``** (the headline): ordinary least squares of the needed ``d_mlp`` on N·K over the
bracketed frozen points (units: MLP units per fact), with the OLS standard error and a 95 % interval
from resampling seeds (each bootstrap replicate redraws, per (N, K), the seeds with replacement — a seed
is one world and one init, shared across the widths — and re-applies the majority rule and the fit).
``width_exponent`` is the same on log-log axes (≈ 1 for linear growth). ``param_exponent`` (log-log) and
``param_per_fact`` (linear) fit the non-embedding parameters needed per condition; at small N·K the frozen
count is flattened by the fixed attention block (4d² + 4d trainable weights, which store some facts
themselves), so the linear ``param_per_fact`` is the cleaner contrast there.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
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
from georecall.experiments.stats import fit_line, is_majority
from georecall.plotting import frozen_control as frozen_control_plots
from georecall.theory import information_bits

ID = "frozen_control"
SCHEMA_VERSION = 1

PROVENANCE = Provenance(
    claim=("With token/position embeddings and the unembedding frozen at random (the associative-memory "
           "setting), the MLP width a one-layer transformer needs to store N·K single-hop facts grows linearly "
           "in N·K, while learned embeddings need far fewer attention + MLP parameters (growing like "
           "(K log N)^2)."),
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
FIGURES = ("frozen_accuracy_vs_width", "learned_accuracy_vs_d", "params_needed_vs_nk")
_EPS = 1e-9


# ---------------------------------------------------------------------------------------------------
# Configs


def sqrt2_grid(lo: int, hi: int) -> tuple[int, ...]:
    """Integers ``round(2^(j/2))`` between ``lo`` and ``hi`` (inclusive), distinct and increasing."""
    if not 1 <= lo <= hi:
        raise ValueError(f"need 1 <= lo <= hi, got lo={lo}, hi={hi}")
    out: list[int] = []
    j = 0
    while (v := round(2 ** (j / 2))) <= hi:
        if v >= lo and (not out or v > out[-1]):
            out.append(v)
        j += 1
    return tuple(out)


@dataclass(frozen=True)
class Config(RecipeFields):
    """One scale of the frozen-embedding control."""

    scale: str  # smoke | quick | paper
    # The (N, K) worlds: N subjects, K relations (single hop).
    points: tuple[tuple[int, int], ...] = field(metadata={"nonempty": True, "distinct": True})
    d_model: int = field(metadata={"min": 1})  # fixed residual width d of the frozen condition
    # Candidate MLP widths m of the frozen condition.
    width_grid: tuple[int, ...] = field(metadata={"min": 1, "nonempty": True, "distinct": True, "increasing": True})
    width_window: tuple[float, float]  # per point, the grid widths w with lo*N*K <= w <= hi*N*K are trained
    # d values of the learned condition.
    learned_d_grid: tuple[int, ...] = field(metadata={"min": 1, "nonempty": True, "distinct": True,
                                                      "increasing": True})
    learned_mlp_ratio: int = field(metadata={"min": 1})  # learned condition: d_mlp = ratio * d
    # One world and one init per seed (>= 2; "needed" = a strict majority succeeds).
    seeds: tuple[int, ...] = field(metadata={"min": 0, "distinct": True})
    recipe: Recipe  # the training recipe (full batch when recipe.batch_size is None)
    unembed_init_std: float | None  # std of the frozen random readout W_U; None = 1/sqrt(d_model)
    n_bootstrap: int = field(metadata={"min": 0})  # seed-bootstrap replicates for the slope intervals
    bootstrap_seed: int = field(metadata={"min": 0})  # numpy seed of the bootstrap (the analysis is deterministic)

    def __post_init__(self) -> None:
        validate_config(self)
        for p in self.points:
            if len(p) != 2 or p[0] < 2 or p[1] < 1:
                raise ValueError(f"each point must be (N >= 2, K >= 1), got {p!r}")
        lo, hi = self.width_window
        if not 0 < lo < hi:
            raise ValueError(f"width_window must be (lo, hi) with 0 < lo < hi, got {self.width_window}")
        for p in self.points:
            if not self.widths_for(*p):
                raise ValueError(f"no width of width_grid lies in the window {self.width_window} x N*K for "
                                 f"(N, K) = {p}")
        if len(self.seeds) < 2:
            raise ValueError(f"seeds must be >= 2 distinct non-negative integers, got {list(self.seeds)}")
        if self.unembed_init_std is not None and not self.unembed_init_std > 0:
            raise ValueError(f"unembed_init_std must be > 0 or None, got {self.unembed_init_std}")

    def widths_for(self, n: int, k: int) -> tuple[int, ...]:
        """The grid widths trained at (N, K): those within ``width_window`` times N*K."""
        lo, hi = self.width_window
        return tuple(w for w in self.width_grid if lo * n * k - _EPS <= w <= hi * n * k + _EPS)

    @property
    def readout_std(self) -> float:
        """The std of the frozen random unembedding actually used."""
        return self.unembed_init_std if self.unembed_init_std is not None else self.d_model ** -0.5

    def describe_recipe(self) -> str:
        """The training recipe and budget in one line (for the result and the report)."""
        r = self.recipe
        batch = "full batch" if r.batch_size is None else f"minibatch {r.batch_size}"
        return (f"1 layer, 1 head, pre-LN; AdamW lr {r.lr:g} (betas {r.betas[0]:g}/{r.betas[1]:g}, wd "
                f"{r.weight_decay:g}), {r.warmup_steps} warm-up steps then {r.schedule} to {r.min_lr_ratio:g}*lr; "
                f"{batch}; budget {r.steps} steps; "
                f"success = accuracy >= {self.success_accuracy:g} within the budget for a strict majority of "
                f"{len(self.seeds)} seeds; frozen: W_E, W_pos (std 1) and W_U (std {self.readout_std:.4g}), "
                f"b_U (0) frozen, d = {self.d_model}; learned: everything trained, d_mlp = "
                f"{self.learned_mlp_ratio} d")


_QUICK_POINTS = ((16, 2), (32, 2), (64, 2), (128, 2), (256, 2), (32, 4), (64, 4), (128, 4))
_PAPER_POINTS = tuple((n, k) for k in (2, 4, 8) for n in (64, 128, 256, 512, 1024))


def config(scale: str) -> Config:
    """The config of ``scale`` (smoke, quick or paper)."""
    common: dict[str, Any] = dict(unembed_init_std=None, learned_mlp_ratio=4, bootstrap_seed=0)

    def recipe(steps: int, eval_every: int, warmup_steps: int = 50) -> Recipe:
        return Recipe(steps=steps, lr=1e-2, warmup_steps=warmup_steps, weight_decay=0.0, batch_size=None,
                      eval_every=eval_every, target_accuracy=0.99, success_accuracy=0.99)

    if scale == "smoke":
        return Config(scale="smoke", points=((8, 2), (16, 2)), d_model=8, width_grid=(4, 16, 64),
                      width_window=(0.2, 4.0), learned_d_grid=(4, 8), seeds=(0, 1), recipe=recipe(50, 25, 5),
                      n_bootstrap=20, **common)
    if scale == "quick":
        return Config(scale="quick", points=_QUICK_POINTS, d_model=16, width_grid=sqrt2_grid(2, 4096),
                      width_window=(0.1, 1 / 1.4), learned_d_grid=(4, 6, 8, 11, 16), seeds=(0, 1, 2),
                      recipe=recipe(1000, 100), n_bootstrap=1000, **common)
    if scale == "paper":
        return Config(scale="paper", points=_PAPER_POINTS, d_model=32, width_grid=sqrt2_grid(2, 8192),
                      width_window=(1 / 24, 1 / 3), learned_d_grid=(4, 6, 8, 11, 16, 23, 32, 45),
                      seeds=(0, 1, 2, 3, 4), recipe=recipe(3000, 250), n_bootstrap=2000, **common)
    raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")


def _model(cfg: Config, condition: str, size: int) -> ModelConfig:
    if condition == FROZEN:
        return ModelConfig(d_model=cfg.d_model, d_mlp=size, n_layers=1, n_heads=1, frozen_embeddings=True,
                           frozen_unembedding=True, unembed_init_std=cfg.readout_std)
    return ModelConfig(d_model=size, d_mlp=cfg.learned_mlp_ratio * size, n_layers=1, n_heads=1)


def runs(cfg: Config) -> list[RunConfig]:
    """One run per (condition, N, K, size, seed): frozen sweeps d_mlp, learned sweeps d_model."""
    train = cfg.train_config()
    out = []
    for n, k in cfg.points:
        task = TaskConfig(n_subjects=n, n_relations=k)
        cells = [(FROZEN, w) for w in cfg.widths_for(n, k)] + [(LEARNED, d) for d in cfg.learned_d_grid]
        for condition, size in cells:
            model = _model(cfg, condition, size)
            out.extend(RunConfig(task=task, model=model, train=train, seeds=(s,)) for s in cfg.seeds)
    return out


# ---------------------------------------------------------------------------------------------------
# Pure analysis


def needed_size(sizes: Sequence[int], successes: Sequence[int], totals: Sequence[int]) -> tuple[int | None, str]:
    """The shared smallest-size rule (:func:`~georecall.experiments.base.smallest_size`) on success counts.

    Returns ``(size, status)``: ``bracketed`` (a smaller tried size fails), ``censored_low`` (the
    smallest tried size already passes: the need is at most ``size``) or ``censored_high`` (the largest
    tried size fails: ``size`` is None).
    """
    if not (len(sizes) == len(successes) == len(totals)) or not sizes:
        raise ValueError(f"sizes, successes and totals must be non-empty and of one length, got "
                         f"{len(sizes)}, {len(successes)}, {len(totals)}")
    est = smallest_size(sizes, [is_majority(k, t) for k, t in zip(successes, totals, strict=True)])
    return est.size, est.status


def first_success(sizes: Sequence[int], successes: Sequence[int], totals: Sequence[int]) -> int | None:
    """The smallest tried size with a majority of successes (ignores failures above it); None if none."""
    return smallest_size(sizes, [is_majority(k, t) for k, t in zip(successes, totals, strict=True)]).first_success


def fit_loglog(x: Sequence[float], y: Sequence[float]) -> dict[str, Any]:
    """:func:`fit_line` of ``log y`` on ``log x`` (natural logs): ``slope`` is the power-law exponent."""
    if any(v <= 0 for v in list(x) + list(y)):
        raise ValueError("fit_loglog needs positive values")
    return fit_line(np.log(np.asarray(x, dtype=float)), np.log(np.asarray(y, dtype=float)))


@dataclass(frozen=True)
class PointOutcomes:
    """The seed-by-size success table of one (N, K) in one condition (input of the bootstrap)."""

    x: float  # N*K
    sizes: tuple[int, ...]  # the tried sizes (increasing)
    success: tuple[tuple[bool, ...], ...]  # [size][seed]: the run reached the target


def needed_from_outcomes(p: PointOutcomes, seed_idx: Sequence[int] | None = None) -> tuple[int | None, str]:
    """:func:`needed_size` of a point, optionally on a resample ``seed_idx`` of its seeds (columns)."""
    cols = range(len(p.success[0])) if seed_idx is None else seed_idx
    succ = [sum(bool(row[c]) for c in cols) for row in p.success]
    return needed_size(p.sizes, succ, [len(cols)] * len(p.sizes))


def seed_bootstrap(points: Sequence[PointOutcomes], n_boot: int, seed: int, *,
                   log: bool = False) -> list[float]:
    """Slopes of the needed size against x over ``n_boot`` replicates that resample each point's seeds.

    A replicate keeps the bracketed points of its resample; one with fewer than two distinct x is
    skipped. ``log`` fits log-log (the exponent) instead of the linear slope.
    """
    rng = np.random.default_rng(seed)
    slopes = []
    for _ in range(n_boot):
        xs, ys = [], []
        for p in points:
            n_seeds = len(p.success[0])
            size, status = needed_from_outcomes(p, rng.integers(0, n_seeds, n_seeds).tolist())
            if status == "bracketed":
                xs.append(p.x)
                ys.append(size)
        if len(set(xs)) >= 2:
            slopes.append((fit_loglog if log else fit_line)(xs, ys)["slope"])
    return slopes


def slope_with_spread(points: Sequence[PointOutcomes], n_boot: int, seed: int, *, log: bool = False,
                      kind: str = "") -> dict[str, Any]:
    """The fit over the bracketed points plus the seed-bootstrap spread of its slope.

    Keys: slope, intercept, stderr (OLS), boot_stderr, ci95 ([2.5 %, 97.5 %] bootstrap percentiles),
    r2, n_points, n_boot (replicates that could be fitted), x and y (the fitted points), kind. The
    numbers are None when fewer than two distinct x are bracketed.
    """
    xs, ys = [], []
    for p in points:
        size, status = needed_from_outcomes(p)
        if status == "bracketed":
            xs.append(p.x)
            ys.append(size)
    out: dict[str, Any] = {"slope": None, "intercept": None, "stderr": None, "boot_stderr": None, "ci95": None,
                           "r2": None, "n_points": len(xs), "n_boot": 0, "x": xs, "y": ys, "kind": kind}
    if len(set(xs)) < 2:
        return out
    fit = (fit_loglog if log else fit_line)(xs, ys)
    out.update(slope=fit["slope"], intercept=fit["intercept"], stderr=fit["stderr"], r2=fit["r2"])
    boot = seed_bootstrap(points, n_boot, seed, log=log)
    out["n_boot"] = len(boot)
    if len(boot) >= 2:
        out["boot_stderr"] = float(np.std(boot, ddof=1))
        out["ci95"] = [float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))]
    return out


def param_groups(n_params: dict[str, int], frozen: bool) -> dict[str, int]:
    """Non-embedding (attention + MLP + LayerNorm), trainable and total parameter counts of one model."""
    non_emb = int(n_params["attention"] + n_params["mlp"] + n_params["layernorm"])
    return {"non_embedding": non_emb, "trainable": non_emb if frozen else int(n_params["total"]),
            "total": int(n_params["total"])}


# ---------------------------------------------------------------------------------------------------
# Result and analysis


@dataclass(frozen=True)
class Result:
    """The contract of ``result.json`` for ``frozen_control``."""

    schema_version: int  # this layout's version
    scale: str  # smoke | quick | paper
    config: dict[str, Any]  # the Config of the scale, as a dict
    recipe: str  # the training recipe and budget in words
    curves: list[dict[str, Any]]  # one per (condition, N, K, size): seeds' accuracies, successes, params
    points: list[dict[str, Any]]  # one per (condition, N, K): needed size, status, parameters needed
    # Headline. Linear least squares of the needed frozen d_mlp on N*K over the bracketed points:
    # slope = MLP units per fact, stderr = OLS standard error, ci95 / boot_stderr = seed bootstrap.
    width_slope: dict[str, Any]
    width_exponent: dict[str, Any]  # the same fit on log-log axes: slope = exponent of width in N*K
    # Per condition, log-log fit of the non-embedding parameters needed against N*K (the exponent).
    param_exponent: dict[str, dict[str, Any]]
    # Per condition, linear fit of the non-embedding parameters needed against N*K (parameters per fact).
    param_per_fact: dict[str, dict[str, Any]]
    comparison: list[dict[str, Any]]  # per (N, K): frozen and learned parameters needed and their ratio
    n_runs: int  # runs analysed
    n_failed_runs: int  # runs whose training raised (counted as not reaching the target)
    sweep: dict[str, Any] = field(default_factory=dict)  # filled by the driver: what the sweep trained
    wall_time_s: float = 0.0  # filled by the driver: wall time of the run command


def _row_cell(row: dict[str, Any]) -> tuple[str, int, int, int]:
    frozen = bool(row["config.model.frozen_embeddings"])
    size = row["config.model.d_mlp"] if frozen else row["config.model.d_model"]
    return (FROZEN if frozen else LEARNED, int(row["config.task.n_subjects"]), int(row["config.task.n_relations"]),
            int(size))


def analyze(cfg: Config, rows: list[dict[str, Any]], out_dir: Path) -> Result:
    """Success tables, needed sizes, the width slope with its seed-bootstrap spread, parameter contrasts."""
    del out_dir  # everything needed is in the rows
    cells = outcome_table(rows, _row_cell)
    n_failed = sum(row["status"] != "done" for row in rows)

    curves: list[dict[str, Any]] = []
    outcomes: dict[tuple[str, int, int], PointOutcomes] = {}
    params_at: dict[tuple[str, int, int, int], dict[str, int] | None] = {}
    for condition in CONDITIONS:
        for n, k in cfg.points:
            sizes = cfg.widths_for(n, k) if condition == FROZEN else cfg.learned_d_grid
            table = []
            for size in sizes:
                cell = cells.get((condition, n, k, size))
                by_seed = {} if cell is None else dict(zip(cell.seeds, zip(cell.accuracy, cell.steps, strict=True),
                                                           strict=True))
                accs = [by_seed.get(s, (None, None))[0] for s in cfg.seeds]
                steps = [by_seed.get(s, (None, None))[1] for s in cfg.seeds]
                succ = [acc is not None and acc >= cfg.success_accuracy - _EPS for acc in accs]
                groups = None
                if cell is not None and cell.n_params is not None:
                    groups = param_groups(cell.n_params, condition == FROZEN)
                params_at[(condition, n, k, size)] = groups
                table.append(tuple(succ))
                finite = [a for a in accs if a is not None]
                done_steps = [t for t in steps if t is not None]
                curves.append({
                    "condition": condition, "N": n, "K": k, "NK": n * k, "size": size,
                    "d_model": cfg.d_model if condition == FROZEN else size,
                    "d_mlp": size if condition == FROZEN else cfg.learned_mlp_ratio * size,
                    "n_seeds": len(cfg.seeds), "n_success": sum(succ), "majority": is_majority(sum(succ), len(succ)),
                    "accuracy": accs, "steps": steps,
                    "mean_accuracy": float(np.mean(finite)) if finite else None,
                    "median_accuracy": float(np.median(finite)) if finite else None,
                    "min_accuracy": min(finite) if finite else None, "max_accuracy": max(finite) if finite else None,
                    "median_steps": float(np.median(done_steps)) if done_steps else None,
                    "params_non_embedding": None if groups is None else groups["non_embedding"],
                    "params_trainable": None if groups is None else groups["trainable"],
                    "params_total": None if groups is None else groups["total"],
                })
            outcomes[(condition, n, k)] = PointOutcomes(x=float(n * k), sizes=tuple(sizes), success=tuple(table))

    points = []
    for condition in CONDITIONS:
        for n, k in cfg.points:
            p = outcomes[(condition, n, k)]
            size, status = needed_from_outcomes(p)
            succ = [sum(r) for r in p.success]
            groups = params_at.get((condition, n, k, size)) if size is not None else None
            points.append({
                "condition": condition, "N": n, "K": k, "NK": n * k, "needed_size": size, "status": status,
                "size_name": "d_mlp" if condition == FROZEN else "d_model",
                "first_success": first_success(p.sizes, succ, [len(cfg.seeds)] * len(p.sizes)),
                "tried": list(p.sizes),
                "d_model": (cfg.d_model if condition == FROZEN else size),
                "d_mlp": (size if condition == FROZEN else None if size is None else cfg.learned_mlp_ratio * size),
                "params_non_embedding": None if groups is None else groups["non_embedding"],
                "params_trainable": None if groups is None else groups["trainable"],
                "params_total": None if groups is None else groups["total"],
                "information_bits": information_bits(n, k),
            })

    frozen_pts = [outcomes[(FROZEN, n, k)] for n, k in cfg.points]
    width_slope = slope_with_spread(frozen_pts, cfg.n_bootstrap, cfg.bootstrap_seed, kind=(
        "linear least squares of needed d_mlp (frozen, d fixed) on N*K over bracketed points; slope in MLP units "
        "per fact; stderr = OLS, boot_stderr and ci95 = seed bootstrap (majority rule re-applied)"))
    width_exponent = slope_with_spread(frozen_pts, cfg.n_bootstrap, cfg.bootstrap_seed, log=True, kind=(
        "least squares of log needed d_mlp on log N*K (frozen) over bracketed points; slope = exponent; "
        "stderr = OLS, ci95 = seed bootstrap"))

    param_exponent, param_per_fact = {}, {}
    for condition in CONDITIONS:
        use = [p for p in points if p["condition"] == condition and p["status"] == "bracketed"
               and p["params_non_embedding"] is not None]
        xs = [float(p["NK"]) for p in use]
        ys = [float(p["params_non_embedding"]) for p in use]
        base = {"n_points": len(use), "x": xs, "y": ys}
        if len(set(xs)) >= 2:
            param_exponent[condition] = {**fit_loglog(xs, ys), **base, "kind": "log-log least squares of "
                                         "non-embedding params needed on N*K; slope = exponent; stderr = OLS"}
            param_per_fact[condition] = {**fit_line(xs, ys), **base, "kind": "linear least squares of "
                                         "non-embedding params needed on N*K; slope = parameters per fact"}
        else:
            empty = {"slope": None, "intercept": None, "stderr": None, "r2": None, "n": len(use)}
            param_exponent[condition] = {**empty, **base, "kind": "too few bracketed points to fit"}
            param_per_fact[condition] = {**empty, **base, "kind": "too few bracketed points to fit"}

    comparison = []
    for n, k in cfg.points:
        f = next(p for p in points if p["condition"] == FROZEN and (p["N"], p["K"]) == (n, k))
        g = next(p for p in points if p["condition"] == LEARNED and (p["N"], p["K"]) == (n, k))
        pf, pl = f["params_non_embedding"], g["params_non_embedding"]
        comparison.append({
            "N": n, "K": k, "NK": n * k, "frozen_status": f["status"], "learned_status": g["status"],
            "frozen_d_mlp": f["needed_size"], "learned_d_model": g["needed_size"],
            "frozen_params_non_embedding": pf, "learned_params_non_embedding": pl,
            "frozen_params_total": f["params_total"], "learned_params_total": g["params_total"],
            "ratio_non_embedding": (pf / pl) if pf and pl else None,
        })

    return Result(schema_version=SCHEMA_VERSION, scale=cfg.scale, config=dataclasses.asdict(cfg),
                  recipe=cfg.describe_recipe(), curves=curves, points=points, width_slope=width_slope,
                  width_exponent=width_exponent, param_exponent=param_exponent, param_per_fact=param_per_fact,
                  comparison=comparison, n_runs=len(rows), n_failed_runs=int(n_failed))


def _fmt(v: Any, spec: str = ".3g") -> str:
    return "-" if v is None else format(v, spec) if isinstance(v, float) else str(v)


def summarize(result: Result) -> str:
    """A plain-text table: needed width per N*K, the slope with its spread, frozen vs learned parameters."""
    ws, we = result.width_slope, result.width_exponent
    lines = [f"frozen_control ({result.scale}): {result.recipe}", "",
             "  N    K   N*K | frozen d_mlp  status        P_nonemb | learned d  status        P_nonemb  P_total"
             " | ratio"]
    for c in result.comparison:
        lines.append(f"{c['N']:>4} {c['K']:>3} {c['NK']:>5} | {_fmt(c['frozen_d_mlp']):>12}  {c['frozen_status']:<13}"
                     f" {_fmt(c['frozen_params_non_embedding']):>8} | {_fmt(c['learned_d_model']):>9}  "
                     f"{c['learned_status']:<13} {_fmt(c['learned_params_non_embedding']):>8} "
                     f"{_fmt(c['learned_params_total']):>8} | {_fmt(c['ratio_non_embedding'], '.2f')}")
    ci = ws["ci95"]
    lines += ["", f"width_slope: {_fmt(ws['slope'])} d_mlp per fact (OLS stderr {_fmt(ws['stderr'])}, "
                  f"bootstrap 95% CI {'-' if ci is None else f'[{ci[0]:.3g}, {ci[1]:.3g}]'}, "
                  f"{ws['n_points']} points)",
              f"width_exponent: {_fmt(we['slope'])} (OLS stderr {_fmt(we['stderr'])})"]
    for cond in CONDITIONS:
        pe, pp = result.param_exponent[cond], result.param_per_fact[cond]
        lines.append(f"{cond}: P_nonemb ~ (N*K)^{_fmt(pe['slope'])} (stderr {_fmt(pe['stderr'])}); "
                     f"{_fmt(pp['slope'])} params per fact")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------
# Figures (from result.json only; drawn by georecall.plotting.frozen_control)


def plot(result_dir: str | Path) -> list[Path]:
    """Accuracy vs width (frozen), accuracy vs d (learned), parameters needed vs N*K; each with its CSV."""
    folder = Path(result_dir)
    return frozen_control_plots.plot(load_result_json(folder), folder)
