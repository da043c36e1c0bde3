"""Capacity: bits of facts stored per parameter by the smallest model that recalls them (at the threshold).

Claim (paper §4.1, §5; docs/theory.md §6.6): with learned embeddings the facts live in the embedding geometry,
so the smallest successful one-layer model holds the world's information content ``K log2 N!`` (the
``(N!)^K`` equally likely K-tuples of bijections) in few parameters. We report, for every (N, K) and
condition of the threshold experiment, ``K log2 N! / params`` of the smallest successful model (the
d* of :mod:`georecall.experiments.threshold`): over all parameters, over the trainable ones (the frozen
random readout excluded) and over the token embedding ``W_E`` alone — beside the selector
construction's count. This is a derived view of the threshold, not a claim of the paper: the paper
reports no bits-per-parameter figure. The ~2 bits per parameter reported for language models by
another paper (Allen-Zhu & Li, "Physics of Language Models: Part 3.3") is drawn as an external
reference (:data:`EXTERNAL_REFERENCE`), never under ``paper_reported``.

Beside each trained model stands the bound's minimum (Theorem 4.2 at k = 1, docs/theory.md §6.4): every
model that stores the world holds at least ``K log2 N!`` fact-dependent bits, so at b bits per parameter
it needs at least ``K log2 N! / b`` parameters: a ceiling of b bits per parameter whatever the model.
We report the trained model's parameters over that minimum at b = 1 (the constructions' content
convention) and b = 32 (float32): how far above the bound gradient descent lands.

Runs: exactly the threshold experiment's search (:func:`runs` and :func:`next_runs` are threshold's: the
same configs, the same hashes), so after ``threshold`` ran every run is found done and costs nothing.
Scales are threshold's scales (see that module).
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from georecall.config import RunConfig
from georecall.experiments import threshold
from georecall.experiments.base import Provenance, load_result_json
from georecall.experiments.threshold import ThresholdConfig
from georecall.plotting import capacity as capacity_plots
from georecall.theory import construction_cost

ID = "capacity"
SCHEMA_VERSION = 1

PROVENANCE = Provenance(
    claim="A derived view of the threshold: the world's K log2 N! bits per parameter of the smallest model "
          "that stores them, beside the selector construction's count.",
    paper_section="§5 Empirical verification (capacity threshold); §4.1",
    theorems=("Theorem 4.1", "Theorem 4.2", "docs/theory.md §6.6"),
    paper_reported={
        "bits_per_parameter": "none: the paper reports no bits-per-parameter figure; it states that 'the capacity "
                              "threshold predicted by theory is borne out empirically' (§1, §5)",
    },
)

#: A value from another paper, drawn for context only and never reported as this paper's.
EXTERNAL_REFERENCE = {
    "lm_bits_per_param": 2.0,
    "source": "Allen-Zhu & Li, 'Physics of Language Models: Part 3.3, Knowledge Capacity Scaling Laws' (2024): "
              "language models store about 2 bits of knowledge per parameter (not this paper's, not measured here)",
}


def config(scale: str) -> ThresholdConfig:
    """The threshold experiment's config of ``scale`` (the same runs, the same hashes)."""
    return threshold.config(scale)


def runs(cfg: ThresholdConfig) -> list[RunConfig]:
    """Exactly the threshold's first stage."""
    return threshold.runs(cfg)


def next_runs(cfg: ThresholdConfig, rows: Sequence[Mapping[str, Any]], out_dir: Path) -> list[RunConfig]:
    """Exactly the threshold's next stage."""
    return threshold.next_runs(cfg, rows, out_dir)


#: Bits per parameter at which the bound's minimum parameter count is stated (1: content bits; 32: float32).
BOUND_PRECISIONS: tuple[int, ...] = (1, 32)


def bits_per_param(information: float, params: int | None) -> float | None:
    """``information / params``; None when there is no successful model (params None) or no parameters."""
    if params is None:
        return None
    if params < 0:
        raise ValueError(f"params must be >= 0, got {params}")
    return None if params == 0 else information / params


def capacity_entries(threshold_entries: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Bits per parameter at d* for each threshold entry (condition, N, K), with the selector's for scale."""
    out = []
    for e in threshold_entries:
        n, k, info = e["n_subjects"], e["n_relations"], e["information_bits"]
        sel = construction_cost("selector", n, k, 1)
        out.append({
            "condition": e["condition"], "n_subjects": n, "n_relations": k, "n_facts": n * k,
            "information_bits": info, "d_star": e["d_star"],
            "params_total": e["n_params_total"], "params_trainable": e["n_params_trainable"],
            "params_embedding": e["n_params_embedding"],
            "bits_per_param_total": bits_per_param(info, e["n_params_total"]),
            "bits_per_param_trainable": bits_per_param(info, e["n_params_trainable"]),
            "bits_per_param_embedding": bits_per_param(info, e["n_params_embedding"]),
            "selector_d": sel.d_model, "selector_params_total": sel.total,
            "selector_bits_per_param": bits_per_param(info, sel.total),
            **{f"params_over_bound_{b}bit": (None if e["n_params_trainable"] is None
                                             else e["n_params_trainable"] / (info / b)) for b in BOUND_PRECISIONS},
            "d_star_ci95": e.get("d_star_ci95"), "converged": e.get("converged"), "status": e.get("status"),
        })
    return out


def summary_stats(entries: Sequence[Mapping[str, Any]], key: str) -> dict[str, float | int | None]:
    """min / median / max of ``key`` over entries where it is known, and how many."""
    vals = [e[key] for e in entries if e[key] is not None]
    if not vals:
        return {"min": None, "median": None, "max": None, "n": 0}
    return {"min": min(vals), "median": statistics.median(vals), "max": max(vals), "n": len(vals)}


@dataclass(frozen=True)
class CapacityResult:
    """The contract of ``capacity/<scale>/result.json``."""

    scale: str  # smoke | quick | paper
    primary_conditions: list[str]  # threshold's: fixed readout, learned readout
    entries: list[dict[str, Any]]  # per (condition, N, K): d* (null unless bracketed) with its interval,
    #   information_bits = K log2 N!, params (total, trainable, embedding W_E) of the smallest successful model,
    #   bits_per_param_*, params_over_bound_{1,32}bit (trainable params over the bound's minimum at b bits per
    #   parameter), and the selector construction's d, params and bits/param
    summary: dict[str, dict[str, Any]]  # per condition: min/median/max of bits_per_param_total/_embedding
    recipe: dict[str, Any]  # the threshold recipe (bits/param hold for this recipe and its budgets)
    bound_precisions: list[int]  # the b of params_over_bound_{b}bit
    success_rule: str  # how "successful" is decided (threshold's majority rule)
    conditions: dict[str, str]  # condition name -> description
    notes: list[str]  # threshold's notes (edges of the grid, non-monotone curves, failures)
    schema_version: int = SCHEMA_VERSION  # bumped when a field changes meaning
    sweep: dict[str, Any] = field(default_factory=dict)  # the sweep report (filled by the driver)
    wall_time_s: float = 0.0  # driver wall time


def analyze(cfg: ThresholdConfig, rows: list[dict[str, Any]], out_dir: Path) -> CapacityResult:
    """Bits per parameter at the threshold, from threshold's analysis of the same rows."""
    t = threshold.analyze(cfg, rows, out_dir)
    entries = capacity_entries([e if e["status"] == "bracketed" else {**e, "d_star": None, "n_params_total": None,
                                                                       "n_params_embedding": None,
                                                                       "n_params_trainable": None}
                                for c in t.d_star_by_condition.values() for e in c])
    summary = {c: {key: summary_stats([e for e in entries if e["condition"] == c], key)
                   for key in ("bits_per_param_total", "bits_per_param_trainable", "bits_per_param_embedding")}
               for c in t.d_star_by_condition}
    return CapacityResult(scale=cfg.scale, primary_conditions=t.primary_conditions, entries=entries, summary=summary,
                          recipe=t.recipe, bound_precisions=list(BOUND_PRECISIONS), success_rule=t.success_rule,
                          conditions=t.conditions, notes=t.notes)


def summarize(result: CapacityResult) -> str:
    """Bits per parameter at d*, per condition and (N, K)."""
    lines = [f"capacity ({result.scale}): K log2 N! bits / parameters of the smallest successful model "
             f"({result.success_rule})",
             f"external reference (another paper, not ours): {EXTERNAL_REFERENCE['lm_bits_per_param']} bits/param "
             "for LMs (Allen-Zhu & Li 2024)",
             f"{'condition':>13} {'N':>5} {'K':>3} {'bits':>9} {'d*':>4} {'params':>8} {'b/p all':>8} "
             f"{'b/p train':>9} {'b/p W_E':>8} {'b/p sel':>8} {'P/bound@1b':>10}"]

    def fmt(v: float | None) -> str:
        return "-" if v is None else f"{v:.3f}"

    for e in result.entries:
        lines.append(f"{e['condition']:>13} {e['n_subjects']:>5} {e['n_relations']:>3} {e['information_bits']:>9.0f} "
                     f"{'-' if e['d_star'] is None else e['d_star']:>4} "
                     f"{'-' if e['params_total'] is None else e['params_total']:>8} "
                     f"{fmt(e['bits_per_param_total']):>8} {fmt(e['bits_per_param_trainable']):>9} "
                     f"{fmt(e['bits_per_param_embedding']):>8} {fmt(e['selector_bits_per_param']):>8} "
                     f"{fmt(e['params_over_bound_1bit']):>10}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------
# Figure (from result.json only; drawn by georecall.plotting.capacity, the reference line labelled external)

FIGURE = capacity_plots.FIGURE


def plot(result_dir: str | Path) -> list[Path]:
    """Bits per parameter against N·K (all parameters; embedding only) and information against parameters."""
    folder = Path(result_dir)
    return capacity_plots.plot(load_result_json(folder), folder)
