"""The shared design of the mechanism experiments (``superposition``, ``intervention``, ``transfer``).

Not an experiment itself: the three experiments read one set of trained models, placed by a measured
threshold, so that each model is trained once whichever of them runs first (equal configs, equal hashes).

1. **The threshold, measured without a prior.** For each architecture (LayerNorm on/off; readout learned,
   frozen random, or tied to W_E) the smallest d_model at which a strict majority of the seeds reach
   ``recipe.success_accuracy`` within the budget is searched by :func:`~georecall.experiments.base.next_size`:
   from a fixed start (``search_start``, the same for every N, K and architecture), doubling while all
   tried d fail, halving while all work, then bisecting to the integer. d* is read by the shared rule
   (:func:`~georecall.experiments.base.smallest_size`); a cell the range could not bracket is reported so.
2. **Models at multiples of it.** Under each condition (one factor at a time away from the primary), the
   models are trained at ``d = round(multiple × d*)`` of the condition's architecture, every seed:

   * ``primary``: pre-LayerNorm, a learned untied readout, no weight decay, the full cosine schedule
     (members train the whole budget; the step they first reach the target is recorded);
   * ``no_layernorm``, ``frozen_readout`` (a fact-free random ``W_U``), ``tied_readout`` (``W_U = W_E^T``),
     ``weight_decay`` (``weight_decay`` of the config), ``strong_weight_decay`` (five times it: added after a
     quick exploration with weight decay 0.5 at 4-8x d* showed far more linear structure than 0.1),
     ``stop_at_target`` (members stop at the target: the threshold search's own recipe). The weight-decay
     conditions and ``stop_at_target`` use the primary
     architecture's d*.
3. **Transfer runs** (only for ``transfer``): per model, an embeddings-only run on new bijections of its
   seed (``task.world_variant = 1``) that starts from the model's body (``init_from``) and trains ``W_E``
   alone, and the same training on a frozen *untrained* body (the control). The tied readout is left
   out: its readout is the embedding table, so nothing of it is kept when the embeddings are swapped.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from georecall.config import ModelConfig, RunConfig, TaskConfig
from georecall.experiments.base import Recipe, RecipeFields, next_size, outcome_table, smallest_size, validate_config

#: The architectures whose thresholds are searched: (layernorm, readout).
ARCHITECTURES: dict[str, tuple[bool, str]] = {
    "ln_learned": (True, "learned"),
    "noln_learned": (False, "learned"),
    "ln_frozen": (True, "frozen"),
    "ln_tied": (True, "tied"),
}


@dataclass(frozen=True)
class Condition:
    """One training condition: an architecture and the recipe's weight decay and schedule."""

    architecture: str  # a key of ARCHITECTURES
    weight_decay: float  # AdamW weight decay as a multiple of the config's weight_decay (0: none)
    full_schedule: bool  # train the whole budget (False: stop at the target)
    label: str


CONDITIONS: dict[str, Condition] = {
    "primary": Condition("ln_learned", 0.0, True, "pre-LN, learned untied readout, no weight decay, full schedule"),
    "no_layernorm": Condition("noln_learned", 0.0, True, "as primary, without LayerNorm"),
    "frozen_readout": Condition("ln_frozen", 0.0, True, "as primary, frozen random readout (fact-free W_U)"),
    "tied_readout": Condition("ln_tied", 0.0, True, "as primary, readout tied to the embeddings (W_U = W_E^T)"),
    "weight_decay": Condition("ln_learned", 1.0, True, "as primary, with AdamW weight decay"),
    "strong_weight_decay": Condition("ln_learned", 5.0, True, "as primary, with 5x the weight decay"),
    "stop_at_target": Condition("ln_learned", 0.0, False, "as primary, members stop once they reach the target"),
}
PRIMARY = "primary"
#: The attribute vectors a(·) the headline numbers use (the model's own readout rows).
PRIMARY_VECTORS = "unembedding"


@dataclass(frozen=True)
class MechanismConfig(RecipeFields):
    """One scale of the mechanism experiments (shared by all three, so their models are trained once)."""

    scale: str
    n_subjects: int = field(metadata={"min": 4})  # N
    n_relations: int = field(metadata={"min": 1})  # K
    seeds: tuple[int, ...] = field(metadata={"min": 0, "nonempty": True, "distinct": True})
    # d / d* of the primary condition's models (the primary multiple must be one of them)
    multiples: tuple[float, ...] = field(metadata={"min": 0.1, "nonempty": True, "distinct": True, "increasing": True})
    # d / d* of every other condition's models
    side_multiples: tuple[float, ...] = field(metadata={"min": 0.1, "distinct": True, "increasing": True})
    recipe: Recipe = field(default_factory=lambda: Recipe(steps=1000, lr=3e-2, target_accuracy=0.99, eval_every=50))
    conditions: tuple[str, ...] = field(default=tuple(CONDITIONS),
                                        metadata={"nonempty": True, "distinct": True, "choices": tuple(CONDITIONS)})
    primary_multiple: float = field(default=2.0, metadata={"min": 0.1})  # where the headline numbers are read
    mlp_ratio: int = field(default=4, metadata={"min": 1})  # d_mlp = mlp_ratio * d
    weight_decay: float = field(default=0.1, metadata={"min": 0.0})  # of the weight_decay condition
    search_start: int = field(default=8, metadata={"min": 1})  # first d of every threshold search
    search_max: int = field(default=512, metadata={"min": 1})  # the search stops (unbracketed) above this
    probe_folds: int = field(default=5, metadata={"min": 2})  # outer folds over subjects
    edit_scales: tuple[float, ...] = field(default=(0.25, 0.5, 1.0, 2.0, 4.0),
                                           metadata={"min": 1e-9, "nonempty": True, "increasing": True})
    primary_edit_scale: float = 1.0  # the edit scale of the headline numbers (the fitted map's own scale)
    n_edits: int = field(default=64, metadata={"min": 1})
    attribution_threshold: float = field(default=0.5, metadata={"min": 0.0})  # share of a unit's activation
    n_random_draws: int = field(default=5, metadata={"min": 1})  # random-unit control draws

    def __post_init__(self) -> None:
        validate_config(self)
        if PRIMARY not in self.conditions:
            raise ValueError(f"conditions must include {PRIMARY!r}, got {self.conditions!r}")
        if self.primary_multiple not in self.multiples:
            raise ValueError(f"primary_multiple {self.primary_multiple} must be one of multiples {self.multiples}")
        if self.primary_edit_scale not in self.edit_scales:
            raise ValueError(f"primary_edit_scale {self.primary_edit_scale} must be one of edit_scales "
                             f"{self.edit_scales}")
        if not 0 < self.attribution_threshold <= 1:
            raise ValueError(f"attribution_threshold must be in (0, 1], got {self.attribution_threshold}")
        if self.search_start > self.search_max:
            raise ValueError(f"search_start ({self.search_start}) must be <= search_max ({self.search_max})")

    def multiples_of(self, condition: str) -> tuple[float, ...]:
        """The d / d* multiples trained under ``condition``."""
        return self.multiples if condition == PRIMARY else self.side_multiples


def config(scale: str) -> MechanismConfig:
    """The shared mechanism config at ``smoke``, ``quick`` or ``paper`` scale."""
    if scale == "smoke":
        return MechanismConfig(scale="smoke", n_subjects=16, n_relations=2, seeds=(0, 1), multiples=(2.0,),
                               side_multiples=(2.0,), conditions=("primary", "frozen_readout"),
                               recipe=Recipe(steps=300, lr=3e-2, warmup_steps=10, eval_every=50,
                                             target_accuracy=0.99),
                               search_start=4, n_edits=16, n_random_draws=2, probe_folds=4)
    if scale == "quick":
        # The other conditions at the primary multiple only (C8's scope reads frozen_readout there): with 2x and
        # 4x the three experiments took 6.6 min of the quick budget on a quiet machine (8.4 + 0.7 + 2.0 min on a
        # busy one). The paper scale maps every condition at every multiple.
        return MechanismConfig(scale="quick", n_subjects=128, n_relations=4, seeds=(0, 1, 2),
                               multiples=(1.3, 2.0, 4.0, 8.0), side_multiples=(2.0,),
                               recipe=Recipe(steps=1000, lr=3e-2, target_accuracy=0.99, eval_every=50))
    if scale == "paper":
        return MechanismConfig(scale="paper", n_subjects=512, n_relations=4, seeds=(0, 1, 2, 3, 4),
                               multiples=(1.3, 2.0, 4.0, 8.0), side_multiples=(1.3, 2.0, 4.0, 8.0),
                               recipe=Recipe(steps=3000, lr=3e-2, target_accuracy=0.99, eval_every=50),
                               n_edits=256, n_random_draws=10)
    raise ValueError(f"scale must be smoke, quick or paper, got {scale!r}")


# ---------------------------------------------------------------------------------------------------
# Run configs


def task_of(cfg: MechanismConfig, *, variant: int = 0) -> TaskConfig:
    return TaskConfig(n_subjects=cfg.n_subjects, n_relations=cfg.n_relations, world_variant=variant)


def model_config(cfg: MechanismConfig, architecture: str, d: int) -> ModelConfig:
    """The one-layer model of ``architecture`` at width d (threshold's init: every matrix but W_E N(0, 1/d))."""
    layernorm, readout = ARCHITECTURES[architecture]
    std = d ** -0.5
    return ModelConfig(d_model=d, n_layers=1, n_heads=1, d_mlp=cfg.mlp_ratio * d, layernorm=layernorm,
                       frozen_unembedding=readout == "frozen", tie_unembed=readout == "tied", init_std=std,
                       unembed_init_std=std)


def search_run(cfg: MechanismConfig, architecture: str, d: int, seed: int) -> RunConfig:
    """A threshold-search run: the recipe as configured, members stopping at the target, no weight decay."""
    train = dataclasses.replace(cfg.train_config(), weight_decay=0.0, stop_at_target=True)
    return RunConfig(task=task_of(cfg), model=model_config(cfg, architecture, d), train=train, seeds=(seed,))


def model_run(cfg: MechanismConfig, condition: str, d: int, seed: int) -> RunConfig:
    """The analysed model of ``condition`` at width d."""
    c = CONDITIONS[condition]
    train = dataclasses.replace(cfg.train_config(), weight_decay=cfg.weight_decay * c.weight_decay,
                                stop_at_target=not c.full_schedule)
    return RunConfig(task=task_of(cfg), model=model_config(cfg, c.architecture, d), train=train, seeds=(seed,))


def body_patterns(model: ModelConfig) -> tuple[str, ...]:
    """Every parameter but the token embedding W_E: what freeze-and-swap keeps."""
    return ("pos_embed.*", "blocks.*", "unembed.*") + (("ln_final.*",) if model.layernorm else ())


def swap_run(cfg: MechanismConfig, source: RunConfig) -> RunConfig:
    """Embeddings-only training on new bijections of the source's seed, from the source's frozen body."""
    train = dataclasses.replace(cfg.train_config(), weight_decay=0.0, stop_at_target=True,
                                freeze=body_patterns(source.model))
    return RunConfig(task=task_of(cfg, variant=1), model=source.model, train=train, seeds=source.seeds,
                     init_from=(source.config_hash(),), init_params=body_patterns(source.model))


def untrained_run(cfg: MechanismConfig, source: RunConfig) -> RunConfig:
    """The control: the same embeddings-only training on a frozen *untrained* body of the same shape and seed."""
    train = dataclasses.replace(cfg.train_config(), weight_decay=0.0, stop_at_target=True,
                                freeze=body_patterns(source.model))
    return RunConfig(task=task_of(cfg, variant=1), model=source.model, train=train, seeds=source.seeds)


def transfers(condition: str) -> bool:
    """Whether a condition has transfer runs (a tied readout is the embedding table: nothing of it is kept)."""
    return CONDITIONS[condition].architecture != "ln_tied"


# ---------------------------------------------------------------------------------------------------
# The search, stage by stage


def architectures(cfg: MechanismConfig) -> list[str]:
    """The architectures whose thresholds the configured conditions need, in ARCHITECTURES order."""
    needed = {CONDITIONS[c].architecture for c in cfg.conditions}
    return [a for a in ARCHITECTURES if a in needed]


def _rows_by_hash(rows: Sequence[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    return {r["hash"]: r for r in rows}


def _works(cfg: MechanismConfig, architecture: str, d: int, by_hash: Mapping[str, Mapping[str, Any]]) -> bool | None:
    """Whether width d works (a strict majority of the seeds succeed); None until every seed has a row."""
    hashes = [search_run(cfg, architecture, d, s).config_hash() for s in cfg.seeds]
    if not all(h in by_hash for h in hashes):
        return None
    cell = outcome_table([by_hash[h] for h in hashes], lambda r: (0,))[(0,)]
    return cell.works(cfg.success_accuracy, len(cfg.seeds))


def search_path(cfg: MechanismConfig, architecture: str,
                rows: Sequence[Mapping[str, Any]]) -> tuple[dict[int, bool], int | None]:
    """Replay the search on the rows: the tried d with their outcomes, and the next d to train (None: done).

    Only the widths the search itself asked for count, in its own order, so a model trained for another
    reason (e.g. the stop-at-target condition's models, which are search runs by config) never moves d*.
    """
    by_hash = _rows_by_hash(rows)
    tried: dict[int, bool] = {}
    while True:
        nxt = next_size(tried, start=cfg.search_start, hi=cfg.search_max)
        if nxt is None:
            return tried, None
        ok = _works(cfg, architecture, nxt, by_hash)
        if ok is None:
            return tried, nxt
        tried[nxt] = ok


def search_runs(cfg: MechanismConfig) -> list[RunConfig]:
    """The first stage: every architecture's search starts at ``search_start``."""
    return [search_run(cfg, a, cfg.search_start, s) for a in architectures(cfg) for s in cfg.seeds]


@dataclass(frozen=True)
class Threshold:
    """One architecture's measured threshold."""

    architecture: str
    d_star: int | None  # None: not bracketed (the search ran out of range) or not finished
    status: str  # bracketed | censored_low | censored_high | searching
    first_success: int | None
    failed_above: tuple[int, ...]
    tried: dict[int, bool]  # d -> works (majority of seeds)

    def as_dict(self) -> dict[str, Any]:
        return {"architecture": self.architecture, "d_star": self.d_star, "status": self.status,
                "first_success": self.first_success, "failed_above": list(self.failed_above),
                "tried": [[d, ok] for d, ok in sorted(self.tried.items())]}


def threshold_of(cfg: MechanismConfig, architecture: str, rows: Sequence[Mapping[str, Any]]) -> Threshold:
    tried, nxt = search_path(cfg, architecture, rows)
    if nxt is not None:
        return Threshold(architecture, None, "searching", None, (), tried)
    est = smallest_size(sorted(tried), [tried[d] for d in sorted(tried)])
    return Threshold(architecture, est.size, est.status, est.first_success, tuple(est.failed_above), tried)


def thresholds(cfg: MechanismConfig, rows: Sequence[Mapping[str, Any]]) -> dict[str, Threshold]:
    return {a: threshold_of(cfg, a, rows) for a in architectures(cfg)}


def width(multiple: float, d_star: int) -> int:
    """``round(multiple × d*)``, at least 1 (halves round up)."""
    return max(1, math.floor(multiple * d_star + 0.5))


@dataclass(frozen=True)
class ModelCell:
    """The models of one (condition, multiple): one run per seed at ``d_model``."""

    condition: str
    multiple: float
    d_star: int
    d_model: int
    runs: tuple[RunConfig, ...]  # one per seed, in cfg.seeds order


def model_cells(cfg: MechanismConfig, found: Mapping[str, Threshold]) -> list[ModelCell]:
    """Every (condition, multiple) whose architecture's threshold is known."""
    out = []
    for cond in cfg.conditions:
        th = found[CONDITIONS[cond].architecture]
        if th.d_star is None:
            continue
        for m in cfg.multiples_of(cond):
            d = width(m, th.d_star)
            out.append(ModelCell(cond, m, th.d_star, d, tuple(model_run(cfg, cond, d, s) for s in cfg.seeds)))
    return out


def next_runs(cfg: MechanismConfig, rows: Sequence[Mapping[str, Any]], out_dir: Path, *,
              with_transfer: bool = False) -> list[RunConfig]:
    """The next stage: the searches' next d while any search goes on, then the models (and transfer runs)."""
    found = thresholds(cfg, rows)
    pending = []
    for a in found:
        _, d = search_path(cfg, a, rows)
        if d is not None:
            pending += [search_run(cfg, a, d, s) for s in cfg.seeds]
    if pending:
        return pending
    out: list[RunConfig] = []
    for cell in model_cells(cfg, found):
        out += cell.runs
        if with_transfer and transfers(cell.condition):
            out += [swap_run(cfg, r) for r in cell.runs] + [untrained_run(cfg, r) for r in cell.runs]
    return out


# ---------------------------------------------------------------------------------------------------
# Loading the models and summarising over seeds


def load_model(out_dir: Path, row: Mapping[str, Any]):
    """The trained model (E = 1) and its world from a store row."""
    from georecall.results import load_run

    run = load_run(Path(out_dir) / row["run_dir"])
    return run.model.eval(), run.worlds[0]


def spread(values: Sequence[float | None]) -> dict[str, Any]:
    """Mean, min and max over seeds (Nones, e.g. failed runs, left out and counted)."""
    vals = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not vals:
        return {"mean": None, "min": None, "max": None, "n": 0, "missing": len(values)}
    return {"mean": float(np.mean(vals)), "min": float(min(vals)), "max": float(max(vals)), "n": len(vals),
            "missing": len(values) - len(vals)}


def cell_rows(cell: ModelCell, rows: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any] | None]:
    """The store row of each seed's model (None where it has none or failed)."""
    by_hash = _rows_by_hash(rows)
    out = []
    for r in cell.runs:
        row = by_hash.get(r.config_hash())
        out.append(row if row is not None and row.get("status") == "done" else None)
    return out


def threshold_notes(found: Mapping[str, Threshold]) -> list[str]:
    """One note per architecture whose threshold was not bracketed (its conditions have no models)."""
    return [f"{a}: threshold not bracketed ({th.status}); its conditions have no models"
            for a, th in found.items() if th.d_star is None]


def cell_models(cfg: MechanismConfig, cell: ModelCell, rows: Sequence[Mapping[str, Any]], out_dir: Path,
                notes: list[str]):
    """Per seed of a cell: ``(seed, run, loaded)``, ``loaded`` = (row, model, world), or None (noted) when the
    seed's model has no finished row."""
    for seed, run, row in zip(cfg.seeds, cell.runs, cell_rows(cell, rows), strict=True):
        if row is None:
            notes.append(f"{cell.condition} ×{cell.multiple} seed {seed}: no trained model")
            yield seed, run, None
        else:
            yield seed, run, (row, *load_model(out_dir, row))


def numbers_over_seeds(per_seed: Sequence[Mapping[str, Any] | None]) -> dict[str, Any]:
    """Every number of the per-seed dicts (None: a missing seed): its per-seed values and their spread."""
    names = sorted({k for m in per_seed if m for k in m})
    return {n: {"per_seed": [None if m is None else m.get(n) for m in per_seed],
                **spread([None if m is None else m.get(n) for m in per_seed])} for n in names}


def primary_cell(cfg: MechanismConfig, cells: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The cell of the headline numbers: the primary condition at ``primary_multiple``."""
    return next((c for c in cells if c["condition"] == PRIMARY and c["multiple"] == cfg.primary_multiple), None)


def design(cfg: MechanismConfig, found: Mapping[str, Threshold]) -> dict[str, Any]:
    """What was trained and how, for the payload."""
    return {
        "n_subjects": cfg.n_subjects, "n_relations": cfg.n_relations, "seeds": list(cfg.seeds),
        "multiples": list(cfg.multiples), "side_multiples": list(cfg.side_multiples),
        "primary_condition": PRIMARY, "primary_multiple": cfg.primary_multiple,
        "conditions": {c: {"label": CONDITIONS[c].label, "architecture": CONDITIONS[c].architecture,
                           "weight_decay": cfg.weight_decay * CONDITIONS[c].weight_decay,
                           "full_schedule": CONDITIONS[c].full_schedule} for c in cfg.conditions},
        "thresholds": {a: th.as_dict() for a, th in found.items()},
        "search": f"from d = {cfg.search_start} (the same for every architecture): double while every tried d fails, "
                  f"halve while every tried d works, then bisect to the integer (at most d = {cfg.search_max}); "
                  f"a d works when a strict majority of the {len(cfg.seeds)} seeds reach accuracy >= "
                  f"{cfg.success_accuracy} within {cfg.steps} steps (members stop there, no weight decay)",
        "recipe": {**cfg.recipe.describe(), "mlp_ratio": cfg.mlp_ratio, "init_std": "d ** -0.5",
                   "weight_decay_condition": cfg.weight_decay},
    }
