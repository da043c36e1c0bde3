"""Superposition: trained subject embeddings are linear superpositions of their attributes' vectors (claim C8).

Claim (paper §5, Theorem 4.1's embeddings): with learned embeddings, gradient descent finds the geometric
solution — each attribute ``f_r(s)`` is linearly readable from ``e_s = W_E[s]``, and
``e_s ≈ b + Σ_r M_r a(f_r(s))``.

What is measured, per trained model (the shared models of :mod:`georecall.experiments.mechanism`:
every condition, every multiple of the measured threshold, every seed):

* **probes** (:func:`georecall.analysis.probes.probe_with_controls`): per relation, a ridge map from
  ``e_s`` to the attribute's vector, penalty by inner CV, cross-validated over **held-out subjects**,
  decoded by nearest neighbour over all N attribute vectors (chance 1/N); controls: shuffled labels and
  unrelated random bijections, same folds and penalties grid;
* **the additive fit** (:mod:`georecall.analysis.additive`): held-out R² of
  ``e_s ≈ b + Σ_r M_r a(f_r(s))`` against the same fit on unrelated random bijections; and, at the
  primary cell (first seed), the fit with fitted codes of ``ceil(log2 N)`` numbers (``codes_r2``).

``a(·)`` is the model's own readout column (``unembedding``, the headline) or the attribute token's
input embedding (``embedding``). A learned readout is trained on every fact, the held-out subject's
own included, so held-out scores with it are **optimistic**; the frozen-readout condition's random
readout is fact-free, and :mod:`georecall.experiments.transfer` (new bijections) is the leakage-free test.

Headline numbers (``--json``): the primary condition (pre-LN, learned untied readout, no weight decay,
full schedule) at ``primary_multiple`` × d*, averaged over seeds and relations; the whole condition
map sits beside them (``cells``). Scales: those of the mechanism module (smoke N = 16, K = 2; quick
N = 128, K = 4, 3 seeds; paper N = 512, K = 4, 5 seeds).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from georecall.experiments import mechanism as mech
from georecall.experiments.base import Provenance, load_result_json

ID = "superposition"
SCHEMA_VERSION = 1

PROVENANCE = Provenance(
    claim="Trained subject embeddings are superpositions of their attributes' vectors: each attribute is linearly "
          "readable from the subject embedding, and e_s ≈ b + Σ_r M_r a(f_r(s)).",
    paper_section="§5 Empirical verification (mechanism); §4.1 Theorem 4.1's superposition embeddings",
    theorems=("Theorem 4.1", "docs/theory.md §2.2"),
    paper_reported={
        "superposition": "our copy of the paper says gradient descent finds the geometric solution, with subject "
                         "embeddings that superpose their attributes (§5); its figures and numbers were lost",
    },
)

config = mech.config
runs = mech.search_runs
#: Numbers kept per model, per kind of attribute vector.
METRICS = ("probe_accuracy", "probe_shuffled", "probe_random_bijection", "additive_r2", "additive_r2_in_sample",
           "additive_r2_control")


def next_runs(cfg: mech.MechanismConfig, rows: Sequence[Mapping[str, Any]], out_dir: Path) -> list:
    """The threshold searches, then the models at multiples of d* (shared with intervention and transfer)."""
    return mech.next_runs(cfg, rows, out_dir)


# ---------------------------------------------------------------------------------------------------
# One model


def measure(model: Any, world: Any, *, seed: int, n_folds: int, codes: bool = False) -> dict[str, Any]:
    """Probes and additive fits of one model (E = 1), for both kinds of attribute vectors."""
    from georecall.analysis.additive import additive_with_control, codes_r2
    from georecall.analysis.probes import control_labels, probe_with_controls
    from georecall.analysis.vectors import ATTRIBUTE_VECTORS, attribute_vectors, subject_embeddings

    e = subject_embeddings(model, world)
    out: dict[str, Any] = {}
    for kind in ATTRIBUTE_VECTORS:
        attr = attribute_vectors(model, world, kind)
        pc = probe_with_controls(e, world.maps, attr, seed=seed, n_folds=n_folds)
        ac = additive_with_control(e, world.maps, attr, seed=seed, n_folds=n_folds)
        out[kind] = {"probe_accuracy": pc.true.mean_accuracy, "probe_per_relation": pc.true.accuracy,
                     "probe_shuffled": pc.shuffled.mean_accuracy,
                     "probe_random_bijection": pc.random_bijection.mean_accuracy,
                     "additive_r2": ac.true.r2, "additive_r2_in_sample": ac.true.in_sample_r2,
                     "additive_r2_control": ac.random_bijection.r2, "chance": pc.true.chance}
    if codes:
        dim = max(1, math.ceil(math.log2(world.n_subjects)))
        n_attr = world.vocab.attributes_per_relation
        control = control_labels(world.maps, n_attr, seed)["random_bijection"]
        true = codes_r2(e, world.maps, code_dim=dim, n_folds=n_folds, seed=seed, n_iter=20, n_restarts=1)
        ctrl = codes_r2(e, control, code_dim=dim, n_folds=n_folds, seed=seed, n_iter=20, n_restarts=1)
        out["codes"] = {"code_dim": dim, "r2": true.r2, "r2_control": ctrl.r2, "n_unfitted": true.n_unfitted}
    return out


def projection(model: Any, world: Any, *, seed: int) -> dict[str, Any]:
    """2-D views of the subject embeddings, one per relation, coloured by that relation's attribute.

    Panel r projects the centred ``e_s`` onto the top two principal directions of relation r's fitted
    component ``c_s = M_r a(f_r(s))`` (unembedding vectors); a subject's colour is where its *attribute*
    puts it, ``c_s`` on the first of those directions. If e_s superposes the attributes, colour follows the
    horizontal position (a left-to-right gradient); the control panel colours relation 0's view by the
    same map applied to an unrelated random bijection's attributes, which must show no gradient.
    """
    from georecall.analysis.additive import fit_additive
    from georecall.analysis.probes import control_labels
    from georecall.analysis.vectors import attribute_vectors, subject_embeddings

    e = subject_embeddings(model, world)
    attr = attribute_vectors(model, world, "unembedding")
    fit = fit_additive(e, world.maps, attr, seed=seed)
    centred = e - e.mean(0)

    def view(r: int, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        comp = fit.component(r, attr[r, world.maps[r]])  # [N, d]
        _, _, vt = np.linalg.svd(comp - comp.mean(0), full_matrices=False)
        basis = vt[:2]  # [2, d]
        colour_comp = fit.component(r, attr[r, labels])
        return centred @ basis.T, (colour_comp - colour_comp.mean(0)) @ basis[0]

    panels = []
    for r in range(world.n_relations):
        xy, colour = view(r, world.maps[r])
        panels.append({"relation": r, "x": xy[:, 0].round(5).tolist(), "y": xy[:, 1].round(5).tolist(),
                       "colour": colour.round(5).tolist()})
    ctrl = control_labels(world.maps, world.vocab.attributes_per_relation, seed)["random_bijection"][0]
    _, colour = view(0, ctrl)
    return {"panels": panels, "control": {**panels[0], "relation": 0, "colour": colour.round(5).tolist()}}


# ---------------------------------------------------------------------------------------------------
# Result


@dataclass(frozen=True)
class SuperpositionResult:
    """The contract of ``superposition/<scale>/result.json``."""

    scale: str
    # Headline, primary condition at primary_multiple × d*, means over seeds and relations (unembedding vectors):
    probe_accuracy: float | None  # held-out nearest-neighbour decoding accuracy (chance 1/N)
    probe_accuracy_control: float | None  # the same on unrelated random bijections
    probe_accuracy_shuffled: float | None  # the same on shuffled labels
    additive_r2: float | None  # held-out R² of the additive fit
    additive_r2_control: float | None  # its random-bijection control
    chance: float  # 1/N
    primary: dict[str, Any]  # the headline numbers with their seed spreads, for both kinds of vectors, codes
    cells: list[dict[str, Any]]  # every (condition, multiple): d, d*, per-seed numbers and spreads
    design: dict[str, Any]  # conditions, thresholds (the searches), recipe
    projection: dict[str, Any] | None  # the 2-D views of the primary model of the first seed
    notes: list[str]
    n_runs: int
    schema_version: int = SCHEMA_VERSION
    sweep: dict[str, Any] = field(default_factory=dict)
    wall_time_s: float = 0.0


def _summarise(per_seed: Sequence[Mapping[str, Any] | None]) -> dict[str, Any]:
    """Per kind and metric: the per-seed values and their spread."""
    out: dict[str, Any] = {}
    kinds = sorted({k for m in per_seed if m for k in m})
    for kind in kinds:
        vals = [None if m is None or kind not in m else m[kind] for m in per_seed]
        metrics = sorted({k for v in vals if v for k, x in v.items() if isinstance(x, (int, float))})
        out[kind] = {name: {"per_seed": [None if v is None else v.get(name) for v in vals],
                            **mech.spread([None if v is None else v.get(name) for v in vals])} for name in metrics}
    return out


def analyze(cfg: mech.MechanismConfig, rows: list[dict[str, Any]], out_dir: Path) -> SuperpositionResult:
    found = mech.thresholds(cfg, rows)
    cells, notes, projection_data = [], mech.threshold_notes(found), None
    notes += [f"{a}: non-monotone, d = {list(th.failed_above)} above d* = {th.d_star} failed"
              for a, th in found.items() if th.d_star is not None and th.failed_above]
    for cell in mech.model_cells(cfg, found):
        primary = cell.condition == mech.PRIMARY and cell.multiple == cfg.primary_multiple
        per_seed = []
        for seed, _run, loaded in mech.cell_models(cfg, cell, rows, out_dir, notes):
            if loaded is None:
                per_seed.append(None)
                continue
            row, model, world = loaded
            # Fitted codes (alternating least squares, ~10 s a model at quick): the primary cell's first seed.
            codes = primary and seed == cfg.seeds[0]
            per_seed.append({**measure(model, world, seed=seed, n_folds=cfg.probe_folds, codes=codes),
                             "accuracy": {"train_accuracy": float(row["result.accuracy"][0])}})
            if primary and projection_data is None:
                projection_data = projection(model, world, seed=seed)
        cells.append({"condition": cell.condition, "multiple": cell.multiple, "d_star": cell.d_star,
                      "d_model": cell.d_model, "seeds": list(cfg.seeds), **_summarise(per_seed)})
    head = mech.primary_cell(cfg, cells)

    def mean(kind: str, name: str) -> float | None:
        return None if head is None or kind not in head else head[kind][name]["mean"]

    primary = {} if head is None else {k: head[k] for k in ("unembedding", "embedding", "codes", "accuracy")
                                       if k in head}
    return SuperpositionResult(
        scale=cfg.scale, probe_accuracy=mean("unembedding", "probe_accuracy"),
        probe_accuracy_control=mean("unembedding", "probe_random_bijection"),
        probe_accuracy_shuffled=mean("unembedding", "probe_shuffled"),
        additive_r2=mean("unembedding", "additive_r2"), additive_r2_control=mean("unembedding", "additive_r2_control"),
        chance=1.0 / cfg.n_subjects, primary={"condition": mech.PRIMARY, "multiple": cfg.primary_multiple,
                                              "d_model": None if head is None else head["d_model"], **primary},
        cells=cells, design=mech.design(cfg, found), projection=projection_data, notes=notes,
        n_runs=len(mech.search_runs(cfg)))


def summarize(result: SuperpositionResult) -> str:
    def f(x: float | None) -> str:
        return "n/a" if x is None else f"{x:.3f}"

    lines = [f"superposition ({result.scale}): primary condition at ×{result.primary.get('multiple')} d* "
             f"(d = {result.primary.get('d_model')}), unembedding vectors, held-out subjects",
             f"probe accuracy {f(result.probe_accuracy)} (random bijections {f(result.probe_accuracy_control)}, "
             f"shuffled {f(result.probe_accuracy_shuffled)}, chance {f(result.chance)})",
             f"additive R² {f(result.additive_r2)} (control {f(result.additive_r2_control)})",
             "condition        ×d*   d   probe  ctrl   R²    ctrl"]
    for c in result.cells:
        u = c.get("unembedding", {})

        def g(name: str, _u: Mapping[str, Any] = u) -> str:
            return f(_u[name]["mean"]) if name in _u else "n/a"

        lines.append(f"{c['condition']:<16} {c['multiple']:>4} {c['d_model']:>3} {g('probe_accuracy')} "
                     f"{g('probe_random_bijection')} {g('additive_r2')} {g('additive_r2_control')}")
    lines += [f"note: {n}" for n in result.notes[:10]]
    return "\n".join(lines)


def plot(result_dir: str | Path) -> list[Path]:
    """Probe accuracy and additive R² against d / d* per condition, and the 2-D projection."""
    from georecall.plotting import superposition as plots

    folder = Path(result_dir)
    return plots.plot(load_result_json(folder), folder)
