"""Transfer: the trained MLP works for entirely new bijections once the subject embeddings are rebuilt (claim C10).

Claim (paper §5, freeze-and-swap): the selector the MLP learnt is fact-free, so with attention, MLP,
LayerNorms and readout kept, new facts need only new subject embeddings — built from the fitted
per-relation maps with no training at all (zero-shot), or trained alone, faster than on an untrained body.

What is measured, per trained model of :mod:`georecall.experiments.mechanism` (every condition but the
tied readout, every multiple of d*, every seed), on new bijections of the model's seed
(``task.world_variant = 1``: a world the model never saw, so nothing leaks from its readout):

* **zero-shot** (:func:`georecall.analysis.transfer.zero_shot_transfer`): the additive map
  ``e_s ≈ b + Σ_r M_r u(f_r(s))`` is fitted on the model's own subjects (its readout columns u), the new
  world's embeddings are ``b + Σ_r M_r u(g_r(s))``, swapped in, and every new query scored (chance 1/N);
* **embeddings only**: a training run (its own identity in the store: ``init_from`` the model, its body
  frozen) learns the new world's ``W_E`` alone, with the recipe's budget, stopping at the target: its
  final accuracy and the first step at ``target_accuracy`` (None: not within the budget);
* **the control**: the same embeddings-only training on a frozen *untrained* body of the same shape and seed;
* **from scratch**: the model's own run, all parameters trained on its world: the first step at the target.

Headline numbers (``--json``): the primary condition at ``primary_multiple`` × d*, means over seeds;
the whole condition map sits beside them, and ``best_zero_shot`` names the condition and multiple with
the highest mean zero-shot accuracy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from georecall.experiments import mechanism as mech
from georecall.experiments.base import Provenance, load_result_json

ID = "transfer"
SCHEMA_VERSION = 1

PROVENANCE = Provenance(
    claim="The trained MLP transfers zero-shot to entirely new bijections once the subject embeddings are "
          "re-initialised from the per-relation maps; embeddings trained alone on a frozen trained body learn new "
          "facts faster than on a frozen untrained one.",
    paper_section="§5 Empirical verification (freeze-and-swap transfer)",
    theorems=("Theorem 4.1", "docs/theory.md §2.2"),
    paper_reported={
        "transfer": "our copy of the paper reports that the trained MLP transfers zero-shot to new bijections "
                    "(§1, §5); its numbers and figure were lost",
    },
)

config = mech.config
runs = mech.search_runs


def next_runs(cfg: mech.MechanismConfig, rows: Sequence[Mapping[str, Any]], out_dir: Path) -> list:
    """The threshold searches, the models at multiples of d*, and each model's two embeddings-only runs."""
    return mech.next_runs(cfg, rows, out_dir, with_transfer=True)


def _row_numbers(row: Mapping[str, Any] | None) -> dict[str, Any]:
    if row is None or row.get("status") != "done":
        return {"accuracy": None, "first_target_step": None, "steps": None}
    first = row.get("result.first_target_step")
    return {"accuracy": float(row["result.accuracy"][0]), "steps": int(row["result.steps"][0]),
            "first_target_step": None if not first or first[0] is None else int(first[0])}


@dataclass(frozen=True)
class TransferResult:
    """The contract of ``transfer/<scale>/result.json``."""

    scale: str
    # Headline, primary condition at primary_multiple × d*, means over seeds (new bijections):
    zero_shot_accuracy: float | None  # swapped-in embeddings from the fitted maps, no training
    chance: float  # 1/N
    embeddings_only_accuracy: float | None  # W_E trained alone on the frozen trained body (final)
    embeddings_only_steps: float | None  # its mean first step at the target (seeds that reached it)
    embeddings_only_reached: int  # seeds that reached the target within the budget
    from_scratch_steps: float | None  # the model's own run: first step at the target
    untrained_frozen_accuracy: float | None  # the same embeddings-only training on a frozen untrained body
    untrained_frozen_steps: float | None
    untrained_frozen_reached: int
    step_budget: int  # the cap of every run
    target_accuracy: float
    best_zero_shot: dict[str, Any] | None  # the (condition, multiple) with the highest mean zero-shot accuracy
    primary: dict[str, Any]  # the headline numbers with seed spreads
    cells: list[dict[str, Any]]
    design: dict[str, Any]
    notes: list[str]
    n_runs: int
    schema_version: int = SCHEMA_VERSION
    sweep: dict[str, Any] = field(default_factory=dict)
    wall_time_s: float = 0.0


def analyze(cfg: mech.MechanismConfig, rows: list[dict[str, Any]], out_dir: Path) -> TransferResult:
    from georecall.analysis.transfer import zero_shot_transfer
    from georecall.tasks import world_for

    found = mech.thresholds(cfg, rows)
    by_hash = {r["hash"]: r for r in rows}
    cells, notes = [], mech.threshold_notes(found)
    if "tied_readout" in cfg.conditions:
        notes.append("tied_readout: left out (its readout is the embedding table; nothing of it is kept in a swap)")
    for cell in mech.model_cells(cfg, found):
        if not mech.transfers(cell.condition):
            continue
        per_seed = []
        for seed, run, loaded in mech.cell_models(cfg, cell, rows, out_dir, notes):
            if loaded is None:
                per_seed.append(None)
                continue
            row, model, world = loaded
            new_world = world_for(mech.task_of(cfg, variant=1), seed)
            zs = zero_shot_transfer(model, world, new_world)
            swap = _row_numbers(by_hash.get(mech.swap_run(cfg, run).config_hash()))
            ctrl = _row_numbers(by_hash.get(mech.untrained_run(cfg, run).config_hash()))
            scratch = _row_numbers(row)
            per_seed.append({"zero_shot_accuracy": zs.accuracy, "zero_shot_fit_r2": zs.r2, "chance": zs.chance,
                             "embeddings_only_accuracy": swap["accuracy"],
                             "embeddings_only_steps": swap["first_target_step"],
                             "untrained_frozen_accuracy": ctrl["accuracy"],
                             "untrained_frozen_steps": ctrl["first_target_step"],
                             "from_scratch_steps": scratch["first_target_step"],
                             "from_scratch_accuracy": scratch["accuracy"]})
        numbers = mech.numbers_over_seeds(per_seed)
        for n in ("embeddings_only_steps", "untrained_frozen_steps", "from_scratch_steps"):
            if n in numbers:
                numbers[n]["reached"] = sum(v is not None for v in numbers[n]["per_seed"])
        cells.append({"condition": cell.condition, "multiple": cell.multiple, "d_star": cell.d_star,
                      "d_model": cell.d_model, "seeds": list(cfg.seeds), "numbers": numbers})
    head = mech.primary_cell(cfg, cells)

    def mean(name: str) -> float | None:
        return None if head is None or name not in head["numbers"] else head["numbers"][name]["mean"]

    def reached(name: str) -> int:
        return 0 if head is None or name not in head["numbers"] else head["numbers"][name]["reached"]

    scored = [c for c in cells if c["numbers"].get("zero_shot_accuracy", {}).get("mean") is not None]
    best = max(scored, key=lambda c: c["numbers"]["zero_shot_accuracy"]["mean"], default=None)
    return TransferResult(
        scale=cfg.scale, zero_shot_accuracy=mean("zero_shot_accuracy"), chance=1.0 / cfg.n_subjects,
        embeddings_only_accuracy=mean("embeddings_only_accuracy"), embeddings_only_steps=mean("embeddings_only_steps"),
        embeddings_only_reached=reached("embeddings_only_steps"), from_scratch_steps=mean("from_scratch_steps"),
        untrained_frozen_accuracy=mean("untrained_frozen_accuracy"),
        untrained_frozen_steps=mean("untrained_frozen_steps"),
        untrained_frozen_reached=reached("untrained_frozen_steps"),
        step_budget=cfg.steps, target_accuracy=cfg.recipe.target_accuracy,
        best_zero_shot=None if best is None else {
            "condition": best["condition"], "multiple": best["multiple"], "d_model": best["d_model"],
            **{k: best["numbers"]["zero_shot_accuracy"][k] for k in ("mean", "min", "max")}},
        primary={} if head is None else {"condition": mech.PRIMARY, "multiple": cfg.primary_multiple, **head},
        cells=cells, design=mech.design(cfg, found), notes=notes, n_runs=len(mech.search_runs(cfg)))


def summarize(result: TransferResult) -> str:
    def f(x: float | None) -> str:
        return "n/a" if x is None else f"{x:.3f}"

    def s(x: float | None) -> str:
        return "n/a" if x is None else f"{x:.0f}"

    lines = [f"transfer ({result.scale}): primary condition at ×{result.primary.get('multiple')} d* "
             f"(d = {result.primary.get('d_model')}), new bijections, budget {result.step_budget} steps",
             f"zero-shot {f(result.zero_shot_accuracy)} (chance {f(result.chance)}); embeddings only "
             f"{f(result.embeddings_only_accuracy)} in {s(result.embeddings_only_steps)} steps "
             f"({result.embeddings_only_reached} seeds reached {result.target_accuracy}); untrained body "
             f"{f(result.untrained_frozen_accuracy)} ({result.untrained_frozen_reached} reached); from scratch "
             f"{s(result.from_scratch_steps)} steps",
             f"best zero-shot: {result.best_zero_shot}",
             "condition        ×d*   d   zero  emb   steps untr  steps scratch"]
    for c in result.cells:
        n = c["numbers"]

        def g(name: str, _n: Mapping[str, Any] = n, fmt=f) -> str:
            return fmt(_n[name]["mean"]) if name in _n else "n/a"

        lines.append(f"{c['condition']:<16} {c['multiple']:>4} {c['d_model']:>3} {g('zero_shot_accuracy')} "
                     f"{g('embeddings_only_accuracy')} {g('embeddings_only_steps', fmt=s):>5} "
                     f"{g('untrained_frozen_accuracy')} {g('untrained_frozen_steps', fmt=s):>5} "
                     f"{g('from_scratch_steps', fmt=s):>5}")
    lines += [f"note: {n}" for n in result.notes[:10]]
    return "\n".join(lines)


def plot(result_dir: str | Path) -> list[Path]:
    """Zero-shot and embeddings-only accuracy against d / d*, with chance and the untrained-body control."""
    from georecall.plotting import transfer as plots

    folder = Path(result_dir)
    return plots.plot(load_result_json(folder), folder)
