"""Intervention: the MLP selects the queried relation's component by ReLU gating, and facts can be edited in
embedding space (claim C9).

Claim (paper §5, Theorem 4.1's selector MLP): the trained MLP is a relation-conditioned selector — its
units are gated by the relation, so removing one relation's units breaks that relation only — and a fact
lives in its subject's embedding, so moving the subject's relation-r component moves that fact alone.

What is measured, per trained model (the shared models of :mod:`georecall.experiments.mechanism`):

* **fact edits** (:func:`georecall.analysis.edits.edit_facts`): ``e_s += α M_r (a(a') − a(f_r(s)))`` with
  ``M_r`` the additive fit's map (unembedding vectors, fitted on every subject), for ``n_edits`` random
  (s, r, a'); success (the model now answers a'), collateral (s's other relations changed) and a random
  direction of the same norm as the control, at every edit scale α; the headline is at
  ``primary_edit_scale`` (1: the fitted map's own scale);
* **unit attribution and ablation** (:mod:`georecall.analysis.ablation`): a hidden unit of the MLP belongs
  to relation r when at least ``attribution_threshold`` of its mean activation at the answer position
  comes from r's queries (and it is not dead); zero and mean ablation of each relation's units give the
  K×K matrix of accuracy drops (row: ablated relation, column: queried relation), against as many
  random units (``n_random_draws``); ``ablation_diagonal_fraction`` is the share of the positive drops on
  the diagonal (1 for a perfect selector, about 1/K for units that serve every relation);
* **activation patching** (:func:`georecall.analysis.patching.relation_patching`): from ``(s, r')`` into
  ``(s, r)`` at the answer position, per hook site: the share of answers that switch to ``f_{r'}(s)``.

Headline numbers (``--json``): the primary condition at ``primary_multiple`` × d*, means over seeds
(and relations); the whole condition map sits beside them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from georecall.experiments import mechanism as mech
from georecall.experiments.base import Provenance, load_result_json

ID = "intervention"
SCHEMA_VERSION = 1
GATE_HOOK = "blocks.0.mlp.hook_post"

PROVENANCE = Provenance(
    claim="The trained MLP is a relation-conditioned selector: it extracts the queried relation's component by ReLU "
          "gating, so ablating one relation's units breaks that relation only, and editing a subject's relation "
          "component in embedding space changes that fact alone.",
    paper_section="§5 Empirical verification (mechanism); §4.1 Theorem 4.1's selector MLP",
    theorems=("Theorem 4.1", "docs/theory.md §2.2"),
    paper_reported={
        "selector": "our copy of the paper describes the trained MLP as selecting the block the relation asks for "
                    "(§1, §5); its figures and numbers were lost",
    },
)

config = mech.config
runs = mech.search_runs


def next_runs(cfg: mech.MechanismConfig, rows: Sequence[Mapping[str, Any]], out_dir: Path) -> list:
    """The threshold searches, then the models at multiples of d* (shared with superposition and transfer)."""
    return mech.next_runs(cfg, rows, out_dir)


def measure(cfg: mech.MechanismConfig, model: Any, world: Any, *, seed: int) -> dict[str, Any]:
    """Edits, attribution, ablations (with random-unit controls) and patching of one model (E = 1)."""
    from georecall.analysis.ablation import ablation_matrix, random_unit_control, unit_attribution
    from georecall.analysis.additive import fit_additive
    from georecall.analysis.edits import edit_facts
    from georecall.analysis.patching import relation_patching
    from georecall.analysis.vectors import attribute_vectors, subject_embeddings

    e = subject_embeddings(model, world)
    attr = attribute_vectors(model, world, mech.PRIMARY_VECTORS)
    fit = fit_additive(e, world.maps, attr, seed=seed)
    ed = edit_facts(model, world, fit.maps, attr, scales=cfg.edit_scales, n_edits=cfg.n_edits, seed=seed)
    out: dict[str, Any] = {"edits": {"scales": list(ed.scales), "success": ed.success, "collateral": ed.collateral,
                                     "control_success": ed.control_success,
                                     "control_collateral": ed.control_collateral,
                                     "control_changed": ed.control_changed, "edit_norm": ed.edit_norm,
                                     "baseline_accuracy": ed.baseline_accuracy}}
    if model.cfg.attn_only:
        return out
    att = unit_attribution(model, world, hook=GATE_HOOK, threshold=cfg.attribution_threshold)
    out["attribution"] = {"counts": att.counts, "n_units": att.n_units, "n_dead": att.n_dead,
                          "threshold": att.threshold}
    for mode in ("zero", "mean"):
        real = ablation_matrix(model, world, att.units, hook=GATE_HOOK, mode=mode)
        rnd = random_unit_control(model, world, att.counts, hook=GATE_HOOK, mode=mode, n_draws=cfg.n_random_draws,
                                  seed=seed)
        drops, rdrops = np.asarray(real.drops), np.asarray(rnd.drops)
        out[f"ablation_{mode}"] = {
            "clean": real.clean, "drops": real.drops, "diagonal_fraction": real.diagonal_fraction,
            "random_drops": rnd.drops, "random_diagonal_fraction": rnd.diagonal_fraction,
            "diagonal_drop": float(np.diag(drops).mean()), "off_diagonal_drop": _off_diagonal(drops),
            "random_diagonal_drop": float(np.diag(rdrops).mean()), "random_off_diagonal_drop": _off_diagonal(rdrops)}
    out["patching"] = {site: {"switch": p.switch, "keep": p.keep, "n": p.n}
                       for site, p in relation_patching(model, world, seed=seed).items()}
    return out


def _off_diagonal(m: np.ndarray) -> float | None:
    k = m.shape[0]
    return None if k < 2 else float((m.sum() - np.trace(m)) / (k * k - k))


# ---------------------------------------------------------------------------------------------------
# Result


@dataclass(frozen=True)
class InterventionResult:
    """The contract of ``intervention/<scale>/result.json``."""

    scale: str
    # Headline, primary condition at primary_multiple × d*, means over seeds:
    edit_success: float | None  # at primary_edit_scale
    edit_collateral: float | None  # share of the edited subject's other relations whose answer changed
    control_edit_success: float | None  # the same-norm random direction's success
    ablation_diagonal_fraction: float | None  # zero ablation: share of the positive drops on the diagonal
    random_units_diagonal_fraction: float | None  # the same for as many random units
    edit_scale: float  # the scale the headline edit numbers are read at
    primary: dict[str, Any]  # the headline numbers with seed spreads, the mean matrices, unit counts, patching
    cells: list[dict[str, Any]]  # every (condition, multiple): per-seed numbers and spreads
    design: dict[str, Any]
    attribution_rule: str
    notes: list[str]
    n_runs: int
    schema_version: int = SCHEMA_VERSION
    sweep: dict[str, Any] = field(default_factory=dict)
    wall_time_s: float = 0.0


def _scalars(cfg: mech.MechanismConfig, m: Mapping[str, Any]) -> dict[str, float | None]:
    """The per-model numbers that get seed spreads."""
    i = list(m["edits"]["scales"]).index(cfg.primary_edit_scale)
    ed = m["edits"]
    out = {"edit_success": ed["success"][i],
           "edit_collateral": None if ed["collateral"] is None else ed["collateral"][i],
           "control_edit_success": ed["control_success"][i],
           "control_edit_changed": ed["control_changed"][i]}
    for mode in ("zero", "mean"):
        ab = m.get(f"ablation_{mode}")
        if ab is None:
            continue
        for name in ("diagonal_fraction", "random_diagonal_fraction", "diagonal_drop", "off_diagonal_drop",
                     "random_diagonal_drop", "random_off_diagonal_drop"):
            out[f"{mode}_{name}"] = ab[name]
    for site, p in m.get("patching", {}).items():
        out[f"patch_switch:{site}"] = p["switch"]
    if "attribution" in m:
        out["units_attributed"] = float(sum(m["attribution"]["counts"]))
    return out


def _mean_matrix(models: Sequence[Mapping[str, Any] | None], key: str, name: str) -> list[list[float]] | None:
    mats = [np.asarray(m[key][name]) for m in models if m is not None and key in m]
    return None if not mats else np.mean(mats, axis=0).round(6).tolist()


def _mean_curve(models: Sequence[Mapping[str, Any] | None], name: str) -> list[float | None] | None:
    curves = [m["edits"][name] for m in models if m is not None and m["edits"][name] is not None]
    return None if not curves else np.mean(np.asarray(curves, dtype=float), axis=0).round(6).tolist()


def analyze(cfg: mech.MechanismConfig, rows: list[dict[str, Any]], out_dir: Path) -> InterventionResult:
    found = mech.thresholds(cfg, rows)
    cells, notes = [], mech.threshold_notes(found)
    for cell in mech.model_cells(cfg, found):
        models = [None if loaded is None else measure(cfg, loaded[1], loaded[2], seed=seed)
                  for seed, _run, loaded in mech.cell_models(cfg, cell, rows, out_dir, notes)]
        scal = [None if m is None else _scalars(cfg, m) for m in models]
        cells.append({
            "condition": cell.condition, "multiple": cell.multiple, "d_star": cell.d_star, "d_model": cell.d_model,
            "seeds": list(cfg.seeds),
            "numbers": mech.numbers_over_seeds(scal),
            "edit_curves": {name: _mean_curve(models, name) for name in
                            ("success", "collateral", "control_success", "control_collateral", "control_changed")},
            "edit_scales": list(cfg.edit_scales),
            "ablation_zero": {"drops": _mean_matrix(models, "ablation_zero", "drops"),
                              "random_drops": _mean_matrix(models, "ablation_zero", "random_drops"),
                              "clean": _mean_curve_clean(models, "ablation_zero")},
            "ablation_mean": {"drops": _mean_matrix(models, "ablation_mean", "drops"),
                              "random_drops": _mean_matrix(models, "ablation_mean", "random_drops")},
            "unit_counts": [None if m is None or "attribution" not in m else m["attribution"]["counts"]
                            for m in models],
            "n_units": next((m["attribution"]["n_units"] for m in models if m and "attribution" in m), None)})
    head = mech.primary_cell(cfg, cells)

    def mean(name: str) -> float | None:
        return None if head is None or name not in head["numbers"] else head["numbers"][name]["mean"]

    rule = (f"a hidden unit (at {GATE_HOOK}) belongs to relation r when at least {cfg.attribution_threshold:.0%} of "
            "its mean activation at the answer position over all N·K queries comes from relation r's queries, "
            "and its mean activation exceeds 1e-6 of the most active unit's (dead units belong to none)")
    return InterventionResult(
        scale=cfg.scale, edit_success=mean("edit_success"), edit_collateral=mean("edit_collateral"),
        control_edit_success=mean("control_edit_success"),
        ablation_diagonal_fraction=mean("zero_diagonal_fraction"),
        random_units_diagonal_fraction=mean("zero_random_diagonal_fraction"), edit_scale=cfg.primary_edit_scale,
        primary={} if head is None else {"condition": mech.PRIMARY, "multiple": cfg.primary_multiple, **head},
        cells=cells, design=mech.design(cfg, found), attribution_rule=rule, notes=notes,
        n_runs=len(mech.search_runs(cfg)))


def _mean_curve_clean(models: Sequence[Mapping[str, Any] | None], key: str) -> list[float] | None:
    vals = [m[key]["clean"] for m in models if m is not None and key in m]
    return None if not vals else np.mean(np.asarray(vals), axis=0).round(6).tolist()


def summarize(result: InterventionResult) -> str:
    def f(x: float | None) -> str:
        return "n/a" if x is None else f"{x:.3f}"

    lines = [f"intervention ({result.scale}): primary condition at ×{result.primary.get('multiple')} d* "
             f"(d = {result.primary.get('d_model')})",
             f"edits at scale {result.edit_scale}: success {f(result.edit_success)}, collateral "
             f"{f(result.edit_collateral)}, same-norm random {f(result.control_edit_success)}",
             f"zero ablation: diagonal fraction {f(result.ablation_diagonal_fraction)} (random units "
             f"{f(result.random_units_diagonal_fraction)})",
             "condition        ×d*   d   edit   coll   rand   diag  rdiag"]
    for c in result.cells:
        n = c["numbers"]

        def g(name: str, _n: Mapping[str, Any] = n) -> str:
            return f(_n[name]["mean"]) if name in _n else "  n/a"

        lines.append(f"{c['condition']:<16} {c['multiple']:>4} {c['d_model']:>3} {g('edit_success')} "
                     f"{g('edit_collateral')} {g('control_edit_success')} {g('zero_diagonal_fraction')} "
                     f"{g('zero_random_diagonal_fraction')}")
    lines += [f"note: {n}" for n in result.notes[:10]]
    return "\n".join(lines)


def plot(result_dir: str | Path) -> list[Path]:
    """The K×K ablation heat map, edit success and collateral against the edit scale, numbers against d / d*."""
    from georecall.plotting import intervention as plots

    folder = Path(result_dir)
    return plots.plot(load_result_json(folder), folder)
