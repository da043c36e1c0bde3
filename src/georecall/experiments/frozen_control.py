"""``frozen_control``: with everything fact-free frozen at random, the MLP must hold the facts.

The associative-memory setting (THEORY §6.5, "Consequences for experiments"): token embeddings,
position embeddings **and** the unembedding are frozen at a random, fact-independent init, so the only
place a single-hop world of N subjects and K relations can live is the trainable attention, MLP and
LayerNorm weights. At a fixed residual width d we sweep the MLP width ``d_mlp`` over a geometric grid
and find, for each (N, K), the width a one-layer model needs to reach 99 % of the N·K facts. The
associative-memory view predicts that width (and the parameter count) to grow linearly in N·K. The
contrast is the learned condition: embeddings and readout are trained, and we sweep d (with
``d_mlp = learned_mlp_ratio * d``) for the smallest successful model. The learned model can store the
facts in its embeddings (THEORY §2, the selector), so its attention + MLP parameters grow only with
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

**Scales.** ``smoke``: seconds, same code path. ``quick`` (2 CPU cores; measured 15.5 min wall while sharing
the cores with other jobs, 470 s of CPU time): d = 16, K = 2 with N ∈ {16, 32, 64, 128, 256} and K = 4 with
N ∈ {32, 64, 128} (N·K from 32 to 512), 3 seeds, budget 1000 steps; frozen widths on the √2 grid within
[N·K/10, N·K/1.4] (measured needs were N·K/5 to N·K/2, so the window brackets them, and a need that did
not grow would show as ``censored_low``), learned d ∈ {4, 6, 8, 11, 16}: 47 frozen and 40 learned
ensembles of 3 members.
``paper`` (one GPU): d = 32, N ∈ {64, 128, 256, 512, 1024} × K ∈ {2, 4, 8} (N·K from 128 to 8192),
5 seeds, budget 3000 steps, frozen widths on the √2 grid within [N·K/24, N·K/3], learned
d ∈ {4, 6, 8, 11, 16, 23, 32, 45}: 90 frozen and 120 learned ensembles of 5 members. Measured on an
H200 (probe, not the full sweep): at d = 32 the need is about N·K/8 (N = 256, K = 4: width 64 fails,
128 passes; N = 1024, K = 8: 512 fails, 1024 passes), hence the window; a failing ensemble spends
16-23 s on its 3000 steps, a passing one 1-13 s, so the sweep should take roughly 40-50 min on one GPU.

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

from georecall.config import ModelConfig, RunConfig, TaskConfig, TrainConfig
from georecall.experiments.base import SCALES, Provenance, load_result_json, write_csv
from georecall.experiments.stats import fit_line, is_majority
from georecall.theory import information_bits

ID = "frozen_control"
SCHEMA_VERSION = 1

PROVENANCE = Provenance(
    claim=("With token/position embeddings and the unembedding frozen at random (the associative-memory "
           "setting), the MLP width a one-layer transformer needs to store N·K single-hop facts grows linearly "
           "in N·K, while learned embeddings need far fewer attention + MLP parameters (growing like "
           "(K log N)^2)."),
    paper_section="§1 Introduction and §2 Related work (the associative-memory baseline); §3 (learnable embeddings)",
    theorems=("Theorem 4.1", "Theorem 4.2 (fixed-readout class)", "THEORY §6.4 regime 1", "THEORY §6.5"),
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
class Config:
    """One scale of the frozen-embedding control."""

    scale: str  # smoke | quick | paper
    points: tuple[tuple[int, int], ...]  # the (N, K) worlds: N subjects, K relations (single hop)
    d_model: int  # fixed residual width d of the frozen condition
    width_grid: tuple[int, ...]  # candidate d_mlp values of the frozen condition (increasing)
    width_window: tuple[float, float]  # per point, the grid widths w with lo*N*K <= w <= hi*N*K are trained
    learned_d_grid: tuple[int, ...]  # d_model values of the learned condition (increasing)
    learned_mlp_ratio: int  # learned condition: d_mlp = ratio * d_model
    seeds: tuple[int, ...]  # one world and one init per seed (>= 2; "needed" = a strict majority succeeds)
    steps: int  # step budget per run (members stop early at target_accuracy)
    lr: float  # peak learning rate (AdamW)
    warmup_steps: int  # linear warm-up, then cosine to 0.1*lr over the budget
    weight_decay: float  # AdamW decoupled weight decay
    batch_size: int | None  # None = full batch (all N*K queries every step)
    eval_every: int  # steps between logged evaluations (full batch checks the target every step)
    target_accuracy: float  # a run succeeds at this accuracy (members stop there)
    unembed_init_std: float | None  # std of the frozen random readout W_U; None = 1/sqrt(d_model)
    n_bootstrap: int  # seed-bootstrap replicates for the slope intervals
    bootstrap_seed: int  # numpy seed of the bootstrap (the analysis is deterministic)

    def __post_init__(self) -> None:
        if self.scale not in SCALES:
            raise ValueError(f"scale must be one of {SCALES}, got {self.scale!r}")
        if not self.points:
            raise ValueError("points must name at least one (N, K)")
        for p in self.points:
            if len(p) != 2 or p[0] < 2 or p[1] < 1:
                raise ValueError(f"each point must be (N >= 2, K >= 1), got {p!r}")
        if len(set(self.points)) != len(self.points):
            raise ValueError(f"points must be distinct, got {list(self.points)}")
        if self.d_model < 1:
            raise ValueError(f"d_model must be >= 1, got {self.d_model}")
        for name in ("width_grid", "learned_d_grid"):
            grid = getattr(self, name)
            if not grid or any(v < 1 for v in grid) or list(grid) != sorted(set(grid)):
                raise ValueError(f"{name} must be distinct positive integers in increasing order, got {list(grid)}")
        lo, hi = self.width_window
        if not 0 < lo < hi:
            raise ValueError(f"width_window must be (lo, hi) with 0 < lo < hi, got {self.width_window}")
        for p in self.points:
            if not self.widths_for(*p):
                raise ValueError(f"no width of width_grid lies in the window {self.width_window} x N*K for "
                                 f"(N, K) = {p}")
        if self.learned_mlp_ratio < 1:
            raise ValueError(f"learned_mlp_ratio must be >= 1, got {self.learned_mlp_ratio}")
        if len(self.seeds) < 2 or len(set(self.seeds)) != len(self.seeds) or min(self.seeds) < 0:
            raise ValueError(f"seeds must be >= 2 distinct non-negative integers, got {list(self.seeds)}")
        if self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")
        if self.unembed_init_std is not None and not self.unembed_init_std > 0:
            raise ValueError(f"unembed_init_std must be > 0 or None, got {self.unembed_init_std}")
        if self.n_bootstrap < 0:
            raise ValueError(f"n_bootstrap must be >= 0, got {self.n_bootstrap}")
        # lr, target, warm-up, weight decay, batch size, eval_every: TrainConfig checks them.
        self.train_config()

    def widths_for(self, n: int, k: int) -> tuple[int, ...]:
        """The grid widths trained at (N, K): those within ``width_window`` times N*K."""
        lo, hi = self.width_window
        return tuple(w for w in self.width_grid if lo * n * k - _EPS <= w <= hi * n * k + _EPS)

    @property
    def readout_std(self) -> float:
        """The std of the frozen random unembedding actually used."""
        return self.unembed_init_std if self.unembed_init_std is not None else self.d_model ** -0.5

    def train_config(self) -> TrainConfig:
        """The training recipe shared by every run."""
        return TrainConfig(steps=self.steps, lr=self.lr, weight_decay=self.weight_decay,
                           warmup_steps=self.warmup_steps, schedule="cosine", batch_size=self.batch_size,
                           eval_every=self.eval_every, target_accuracy=self.target_accuracy)

    def recipe(self) -> str:
        """The training recipe and budget in one line (for the result and the report)."""
        batch = "full batch" if self.batch_size is None else f"minibatch {self.batch_size}"
        return (f"1 layer, 1 head, pre-LN; AdamW lr {self.lr:g} (betas 0.9/0.98, wd {self.weight_decay:g}), "
                f"{self.warmup_steps} warm-up steps then cosine to 0.1*lr; {batch}; budget {self.steps} steps; "
                f"success = accuracy >= {self.target_accuracy:g} within the budget for a strict majority of "
                f"{len(self.seeds)} seeds; frozen: W_E, W_pos (std 1) and W_U (std {self.readout_std:.4g}), "
                f"b_U (0) frozen, d = {self.d_model}; learned: everything trained, d_mlp = "
                f"{self.learned_mlp_ratio} d")


_QUICK_POINTS = ((16, 2), (32, 2), (64, 2), (128, 2), (256, 2), (32, 4), (64, 4), (128, 4))
_PAPER_POINTS = tuple((n, k) for k in (2, 4, 8) for n in (64, 128, 256, 512, 1024))


def config(scale: str) -> Config:
    """The config of ``scale`` (smoke, quick or paper)."""
    common: dict[str, Any] = dict(lr=1e-2, warmup_steps=50, weight_decay=0.0, batch_size=None,
                                  target_accuracy=0.99, unembed_init_std=None, learned_mlp_ratio=4,
                                  bootstrap_seed=0)
    if scale == "smoke":
        return Config(scale="smoke", points=((8, 2), (16, 2)), d_model=8, width_grid=(4, 16, 64),
                      width_window=(0.2, 4.0), learned_d_grid=(4, 8), seeds=(0, 1), steps=50, eval_every=25,
                      n_bootstrap=20, **{**common, "warmup_steps": 5})
    if scale == "quick":
        return Config(scale="quick", points=_QUICK_POINTS, d_model=16, width_grid=sqrt2_grid(2, 4096),
                      width_window=(0.1, 1 / 1.4), learned_d_grid=(4, 6, 8, 11, 16), seeds=(0, 1, 2),
                      steps=1000, eval_every=100, n_bootstrap=1000, **common)
    if scale == "paper":
        return Config(scale="paper", points=_PAPER_POINTS, d_model=32, width_grid=sqrt2_grid(2, 8192),
                      width_window=(1 / 24, 1 / 3), learned_d_grid=(4, 6, 8, 11, 16, 23, 32, 45),
                      seeds=(0, 1, 2, 3, 4), steps=3000, eval_every=250, n_bootstrap=2000, **common)
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
    """The smallest size from which every larger tried size has a majority of successes, and its status.

    Returns ``(size, status)``: ``bracketed`` (a smaller tried size fails), ``censored_low`` (the
    smallest tried size already passes: the need is at most ``size``) or ``censored_high`` (the largest
    tried size fails: ``size`` is None).
    """
    if not (len(sizes) == len(successes) == len(totals)) or not sizes:
        raise ValueError(f"sizes, successes and totals must be non-empty and of one length, got "
                         f"{len(sizes)}, {len(successes)}, {len(totals)}")
    if len(set(sizes)) != len(sizes):
        raise ValueError(f"sizes must be distinct, got {list(sizes)}")
    order = sorted(range(len(sizes)), key=lambda i: sizes[i])
    ok = [is_majority(successes[i], totals[i]) for i in order]
    if not ok[-1]:
        return None, "censored_high"
    j = len(ok) - 1
    while j > 0 and ok[j - 1]:
        j -= 1
    return sizes[order[j]], ("censored_low" if j == 0 else "bracketed")


def first_success(sizes: Sequence[int], successes: Sequence[int], totals: Sequence[int]) -> int | None:
    """The smallest tried size with a majority of successes (ignores failures above it); None if none."""
    passing = [s for s, k, t in zip(sizes, successes, totals, strict=True) if is_majority(k, t)]
    return min(passing) if passing else None


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
    by_cell: dict[tuple[str, int, int, int], dict[int, dict[str, Any]]] = {}
    n_failed = 0
    for row in rows:
        seed = int(row["config.seeds"][0])
        by_cell.setdefault(_row_cell(row), {})[seed] = row
        n_failed += row["status"] != "done"

    curves: list[dict[str, Any]] = []
    outcomes: dict[tuple[str, int, int], PointOutcomes] = {}
    params_at: dict[tuple[str, int, int, int], dict[str, int] | None] = {}
    for condition in CONDITIONS:
        for n, k in cfg.points:
            sizes = cfg.widths_for(n, k) if condition == FROZEN else cfg.learned_d_grid
            table = []
            for size in sizes:
                cell = by_cell.get((condition, n, k, size), {})
                accs, steps, succ = [], [], []
                for s in cfg.seeds:
                    row = cell.get(s)
                    done = row is not None and row["status"] == "done"
                    acc = float(row["result.accuracy"][0]) if done else None
                    accs.append(acc)
                    steps.append(int(row["result.steps"][0]) if done else None)
                    succ.append(acc is not None and acc >= cfg.target_accuracy - _EPS)
                done_rows = [r for r in cell.values() if r["status"] == "done"]
                groups = None
                if done_rows:
                    counts = {g: done_rows[0][f"result.n_params.{g}"]
                              for g in ("attention", "mlp", "layernorm", "total")}
                    groups = param_groups(counts, condition == FROZEN)
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
                  recipe=cfg.recipe(), curves=curves, points=points, width_slope=width_slope,
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
# Figures (from result.json only)

_CURVE_COLS = ("condition", "N", "K", "NK", "size", "d_model", "d_mlp", "n_seeds", "n_success", "majority",
               "mean_accuracy", "median_accuracy", "min_accuracy", "max_accuracy", "median_steps",
               "params_non_embedding", "params_trainable", "params_total")
_POINT_COLS = ("condition", "N", "K", "NK", "size_name", "needed_size", "status", "first_success", "d_model",
               "d_mlp", "params_non_embedding", "params_trainable", "params_total", "information_bits")


_K_MARKERS = ("o", "s", "^", "D", "v", "P", "X")
_COLORS = {FROZEN: "tab:blue", LEARNED: "tab:orange"}


def _k_marker(k: int, ks: Sequence[int]) -> str:
    return _K_MARKERS[sorted(set(ks)).index(k) % len(_K_MARKERS)]


def _int_ticks(ax: Any, axis: str, values: Sequence[float]) -> None:
    """Plain integer tick labels at ``values`` on a log axis."""
    from matplotlib.ticker import FixedLocator, NullLocator

    vals = sorted({int(v) for v in values})
    target = ax.xaxis if axis == "x" else ax.yaxis
    target.set_major_locator(FixedLocator(vals))
    target.set_minor_locator(NullLocator())
    (ax.set_xticklabels if axis == "x" else ax.set_yticklabels)([str(v) for v in vals])


def _accuracy_figure(folder: Path, name: str, curves: list[dict[str, Any]], points: list[dict[str, Any]],
                     xlabel: str, title: str, target: float) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    csv_path = write_csv(folder / f"{name}.csv", _CURVE_COLS, ([r.get(c) for c in _CURVE_COLS] for r in curves))
    keys = sorted({(c["N"], c["K"]) for c in curves}, key=lambda t: (t[0] * t[1], t[1]))
    ks = [k for _, k in keys]
    cmap = plt.get_cmap("viridis")
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    for i, (n, k) in enumerate(keys):
        cs = sorted((c for c in curves if (c["N"], c["K"]) == (n, k) and c["median_accuracy"] is not None),
                    key=lambda c: c["size"])
        if not cs:
            continue
        color = cmap(i / max(1, len(keys) - 1))
        x = [c["size"] for c in cs]
        y = [c["median_accuracy"] for c in cs]
        err = [[c["median_accuracy"] - c["min_accuracy"] for c in cs],
               [c["max_accuracy"] - c["median_accuracy"] for c in cs]]
        ax.errorbar(x, y, yerr=err, marker=_k_marker(k, ks), ms=4, capsize=2, color=color, lw=1.2,
                    label=f"N={n}, K={k} (N·K={n * k})")
        need = next((p for p in points if (p["N"], p["K"]) == (n, k)), None)
        if need is not None and need["needed_size"] is not None:
            yy = next(c["median_accuracy"] for c in cs if c["size"] == need["needed_size"])
            ax.plot([need["needed_size"]], [yy], marker="*", ms=14, color=color, mec="black", ls="none")
    ax.axhline(target, color="gray", ls="--", lw=1, label=f"target {target:g}")
    ax.plot([], [], marker="*", ms=10, color="white", mec="black", ls="none", label="needed size (majority rule)")
    ax.set_xscale("log")
    sizes = [c["size"] for c in curves]
    if sizes:
        _int_ticks(ax, "x", sizes)
        ax.tick_params(axis="x", labelsize=7, labelrotation=45)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("final accuracy (median over seeds; bars: min–max)")
    ax.set_title(title)
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    png = folder / f"{name}.png"
    fig.savefig(png, dpi=120)
    plt.close(fig)
    return [png, csv_path]


def _params_figure(folder: Path, data: dict[str, Any]) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    points = data["points"]
    csv_path = write_csv(folder / "params_needed_vs_nk.csv", _POINT_COLS,
                         ([r.get(c) for c in _POINT_COLS] for r in points))
    ks = sorted({p["K"] for p in points})
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(13, 5))
    # (a) needed frozen width vs N*K, linear axes, with the width_slope fit.
    fz = [p for p in points if p["condition"] == FROZEN]
    for p in fz:
        m = _k_marker(p["K"], ks)
        if p["status"] == "censored_high":
            ax0.plot([p["NK"]], [max(p["tried"])], marker=m, ls="none", color="tab:red", mfc="none")
        else:
            ax0.plot([p["NK"]], [p["needed_size"]], marker=m, ls="none", color=_COLORS[FROZEN],
                     mfc=_COLORS[FROZEN] if p["status"] == "bracketed" else "none")
    handles = [Line2D([], [], marker=_k_marker(k, ks), ls="none", color="gray", label=f"K={k}") for k in ks]
    handles += [Line2D([], [], marker="o", ls="none", color=_COLORS[FROZEN], mfc="none",
                       label="hollow: ≤ (smallest tried passes)"),
                Line2D([], [], marker="o", ls="none", color="tab:red", mfc="none", label="red: > largest tried")]
    ws = data["width_slope"]
    if ws["slope"] is not None:
        xs = np.linspace(0, max(p["NK"] for p in fz), 50)
        ci = ws["ci95"]
        ci_txt = "" if ci is None else f"\n(seed-bootstrap 95% CI [{ci[0]:.3g}, {ci[1]:.3g}])"
        (line,) = ax0.plot(xs, ws["intercept"] + ws["slope"] * xs, color=_COLORS[FROZEN], lw=1,
                           label=f"fit: {ws['slope']:.3g} ± {ws['stderr'] or 0:.2g} units/fact{ci_txt}")
        handles.append(line)
    ax0.set_xlabel("N·K (facts)")
    ax0.set_ylabel(f"d_mlp needed (frozen embeddings + readout, d={data['config']['d_model']})")
    ax0.set_title("MLP width needed for the target (frozen)")
    ax0.legend(handles=handles, fontsize=7, loc="upper left")
    ax0.grid(alpha=0.3)
    # (b) parameters needed vs N*K, log-log, frozen vs learned; one marker per K.
    handles = []
    for cond in CONDITIONS:
        color = _COLORS[cond]
        sel = [p for p in points if p["condition"] == cond and p["params_non_embedding"] is not None]
        for p in sel:
            ax1.plot([p["NK"]], [p["params_non_embedding"]], marker=_k_marker(p["K"], ks), ls="none", color=color,
                     mfc=color if p["status"] == "bracketed" else "none", ms=7)
        handles.append(Line2D([], [], marker="o", ls="none", color=color,
                              label=f"{cond}: attention+MLP+LN ({'trainable' if cond == FROZEN else 'non-embedding'})"))
        fit = data["param_exponent"][cond]
        if fit["slope"] is not None:
            xs = np.array(sorted(fit["x"]))
            (line,) = ax1.plot(xs, np.exp(fit["intercept"]) * xs ** fit["slope"], color=color, lw=1,
                               label=f"{cond} fit: ∝ (N·K)^{fit['slope']:.2f}")
            handles.append(line)
        if cond == LEARNED:
            for k in ks:
                tot = sorted((p for p in sel if p["K"] == k and p["params_total"] is not None), key=lambda p: p["NK"])
                if tot:
                    ax1.plot([p["NK"] for p in tot], [p["params_total"] for p in tot], marker=_k_marker(k, ks),
                             ls=":", color=color, mfc="none", alpha=0.5, ms=5)
            handles.append(Line2D([], [], marker="o", ls=":", color=color, mfc="none", alpha=0.5,
                                  label="learned: total (incl. N·d embeddings, readout)"))
    handles += [Line2D([], [], marker=_k_marker(k, ks), ls="none", color="gray", label=f"K={k}") for k in ks]
    handles.append(Line2D([], [], marker="o", ls="none", color="gray", mfc="none", label="hollow: upper bound"))
    ax1.set_xscale("log")
    ax1.set_yscale("log")
    if points:
        _int_ticks(ax1, "x", [p["NK"] for p in points])
    ax1.set_xlabel("N·K (facts)")
    ax1.set_ylabel("parameters of the smallest model reaching the target")
    ax1.set_title("Parameters needed: frozen random vs learned embeddings")
    ax1.legend(handles=handles, fontsize=7, loc="upper left")
    ax1.grid(alpha=0.3, which="both")
    fig.tight_layout()
    png = folder / "params_needed_vs_nk.png"
    fig.savefig(png, dpi=120)
    plt.close(fig)
    return [png, csv_path]


def plot(result_dir: str | Path) -> list[Path]:
    """Accuracy vs width (frozen), accuracy vs d (learned), parameters needed vs N*K; each with its CSV."""
    folder = Path(result_dir)
    data = load_result_json(folder)
    target = data["config"]["target_accuracy"]
    out: list[Path] = []
    for cond, name, xlabel, title in (
        (FROZEN, "frozen_accuracy_vs_width", "d_mlp (MLP width)",
         f"Frozen embeddings + readout (d={data['config']['d_model']}): accuracy vs MLP width"),
        (LEARNED, "learned_accuracy_vs_d", f"d_model (d_mlp = {data['config']['learned_mlp_ratio']}·d)",
         "Learned embeddings + readout: accuracy vs d"),
    ):
        curves = [c for c in data["curves"] if c["condition"] == cond]
        points = [p for p in data["points"] if p["condition"] == cond]
        out += _accuracy_figure(folder, name, curves, points, xlabel, title, target)
    out += _params_figure(folder, data)
    return out
