"""``constructions``: the paper's constructions built by formula, scored on every query, and set beside the bound.

Claim (paper Theorems 4.1, 4.3, 4.4, Appendix F; docs/theory.md §2-§5): there are transformers whose weights are
written down by formula, not trained, that answer every fact exactly: one hop at ``d = O(K log N)``
(the selector, its 3-layer-MLP and attention-only variants), the disjoint-attribute setting (F0, F1),
k hops without CoT by a key-value memory or a pre-computed embedding (depth k; sizes growing with k,
the latter as ``K^k``), and k hops with CoT by one layer whose size does not depend on k. Theorem 4.2
(docs/theory.md §6) bounds from below the fact-dependent bits ``P`` a no-CoT model needs at a given number of
bits ``B_e`` per subject embedding; each construction's content bits are checked against it in its
readout class (docs/theory.md §6.6).

Nothing is trained (:func:`runs` is empty). :func:`analyze` builds every construction at every size of
the config (:func:`georecall.constructions.build_construction`, world seed ``seed``), scores it on every
query (greedy generation for CoT; a seeded sample only where a query space exceeds ``max_queries``,
recorded as ``all_queries = False``), and records accuracy, the smallest logit margin, ``d_model``, the
MLP widths and the dense parameter counts measured on the build beside the theory's closed forms
(:func:`georecall.theory.construction_cost`, an implementation independent of the builders), the build
and score wall times, and the construction against Theorem 4.2
(:func:`georecall.theory.check_against_bound`, content convention: 1 bit per fact-dependent code
coordinate). It also tabulates the bound itself for every (N, K, k) at ``B_e = 0, gamma_G,
sqrt(gamma_G gamma_L), gamma_L`` (docs/theory.md §6.4's table) and as a curve in ``B_e``.

Claims C1-C6 are decided from this payload by :mod:`georecall.experiments.claims.constructions`.

Scales: ``smoke`` (seconds), ``quick`` (≲ 60 s on 2 CPU cores: single-hop N from 64 to 4096 at
K = 2, 4; k = 1-3 for the depth-k constructions; CoT k up to 8 at N = 16) and ``paper`` (the largest
sizes of the README's construction table: N = 65 536, K = 8 for the selector family; CoT k = 24 on a
sample of 20 000 chains). Everything runs in float32 on the CPU (scoring refuses TF32/autocast).
Measured ``analyze`` wall times on 2 shared CPU cores: smoke 0.15-3 s (26 builds), quick 9-29 s (90
builds), depending on the load of the machine; quick 0.3 min inside a reproduction (2026-12-01). The
paper scale (100 builds) on 2 CPU cores: a full run was stopped unfinished after 30 min; 76 builds timed
cheapest first took 424 s and a log-log fit predicted 14 min for the other 24, an underestimate
(benchmarks/RESULTS.md); its slowest builds measured there took 102 s (precompute, N = 1000, K = 4,
k = 3, d = 861) and 126 s (cot-question-first, N = 257, K = 5, k = 24, 20 000 chains).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from georecall.experiments.base import Provenance, load_result_json

ID = "constructions"
SCHEMA_VERSION = 1

PROVENANCE = Provenance(
    claim="Hand-built transformers answer every fact exactly: one hop at d = O(K log N), k hops without CoT "
          "by a key-value or a pre-computation construction of depth k, k hops with CoT by one layer whose size "
          "does not depend on k; and a counting lower bound says what any no-CoT model must store.",
    paper_section="§4 Theory (Theorems 4.1-4.4); Appendix F (disjoint attributes)",
    theorems=("Theorem 4.1", "Theorem 4.2", "Theorem 4.3", "Theorem 4.4", "Appendix F",
              "docs/theory.md §2-§6"),
    paper_reported={
        "formulas": "Our copy of the paper lost its formulas and stops in the middle of the chain-of-thought "
                    "section: no constant, dimension or parameter count of the paper is recoverable, so none is "
                    "quoted here. Every number in this experiment is ours.",
        "theorem_4_1": "Single hop with shared attributes: superposition embeddings and a ReLU selector answer "
                       "every (subject, relation) query; the paper speaks of a 3-layer MLP.",
        "theorem_4_2": "A counting lower bound for models without chain-of-thought, with a 'global' and a 'local' "
                       "constraint and three regimes; the paper notes a gap in the intermediate regime and "
                       "calls its constructions near-optimal. It defines P as attention + MLP bits and does not "
                       "name the readout.",
        "theorem_4_3": "k hops without chain-of-thought: a key-value construction and a pre-computation "
                       "construction.",
        "theorem_4_4": "k hops with chain-of-thought: a one-layer construction whose size does not depend on k.",
        "appendix_f": "A disjoint-attribute setting (each relation has its own attribute tokens).",
    },
)

#: Construction families of the config and the registry names built at each of their sizes.
FAMILIES: dict[str, tuple[str, ...]] = {
    "single_hop": ("selector", "selector-mlp3", "attention-only", "readout-only"),
    "disjoint": ("disjoint", "disjoint-mlp"),
    "multihop": ("kv-memory", "precompute"),
    "cot": ("cot", "cot-question-first"),
    "meet_in_middle": ("meet-in-middle", "meet-in-middle-tied"),
}
COT_NAMES = ("cot", "cot-question-first")
#: Labels of the bound-table points (docs/theory.md §6.4's table): B_e = 0, gamma_G, sqrt(gamma_G gamma_L), gamma_L.
BOUND_POINTS = ("zero", "gamma_G", "mid", "gamma_L")
N_CURVE = 48  # points of each bound curve required_bits(B_e)


@dataclass(frozen=True)
class Config:
    """The sizes built and scored at one scale (symbols: N subjects, K relations, k hops)."""

    scale: str  # smoke | quick | paper
    single_hop: tuple[tuple[int, int], ...]  # (N, K) for selector, selector-mlp3, attention-only, readout-only
    disjoint: tuple[tuple[int, int], ...]  # (N, K) for disjoint (F0) and disjoint-mlp (F1); n_A = N attributes
    multihop: tuple[tuple[int, int, int], ...]  # (N, K, k) for kv-memory and precompute (depth k, no CoT)
    cot: tuple[tuple[int, int, int], ...]  # (N, K, k) for cot (format A) and cot-question-first (format B)
    meet_in_middle: tuple[tuple[int, int], ...]  # (N, K) for meet-in-middle and its tied variant (k = 2)
    max_queries: int = 1 << 20  # query spaces N*K^k up to this are scored in full ...
    n_sampled: int = 20_000  # ... larger ones on this many seeded random queries (all_queries = False)
    dtype: str = "float32"  # construction weights and activations
    device: str = "cpu"  # where scoring runs
    seed: int = 0  # world seed of every construction (and of the query sample)

    def __post_init__(self) -> None:
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be float32 or float64, got {self.dtype!r}")
        if self.max_queries < 1 or self.n_sampled < 1:
            raise ValueError(f"max_queries and n_sampled must be >= 1, got {self.max_queries}, {self.n_sampled}")
        for fam in FAMILIES:
            for size in getattr(self, fam):
                if size[0] < 2 or size[1] < 1 or (len(size) == 3 and size[2] < 1):
                    raise ValueError(f"{fam}: bad size {size} (need N >= 2, K >= 1, k >= 1)")
        if any(k_rel < 2 for _, k_rel, _ in self.multihop):
            raise ValueError("multihop sizes need K >= 2 (pre-computation divides by K - 1)")

    def plan(self) -> list[tuple[str, int, int, int]]:
        """Every (construction, N, K, k) to build, in family order."""
        out = []
        for fam, names in FAMILIES.items():
            for name in names:
                for size in getattr(self, fam):
                    k = size[2] if len(size) == 3 else (2 if fam == "meet_in_middle" else 1)
                    out.append((name, size[0], size[1], k))
        return out


def config(scale: str) -> Config:
    """The config of ``scale``: smoke (seconds), quick (≲ 60 s on 2 CPU cores), paper (README's largest sizes)."""
    if scale == "smoke":
        return Config(scale="smoke", single_hop=((16, 2), (256, 2)), disjoint=((16, 2), (64, 2)),
                      multihop=((16, 2, 1), (16, 2, 2), (16, 2, 3)),
                      cot=((16, 2, 1), (16, 2, 2), (16, 2, 4)), meet_in_middle=((16, 2),))
    if scale == "quick":
        single = tuple((n, k) for k in (2, 4) for n in (64, 256, 1024, 4096))
        return Config(scale="quick", single_hop=single, disjoint=single,
                      multihop=tuple((n, k_rel, k) for n, k_rel in ((64, 2), (64, 4), (256, 2)) for k in (1, 2, 3)),
                      cot=tuple((16, 2, k) for k in (1, 2, 3, 4, 6, 8)) + tuple((64, 4, k) for k in (1, 2, 3, 4)),
                      meet_in_middle=((64, 3), (256, 4)))
    if scale == "paper":
        return Config(scale="paper",
                      single_hop=tuple((n, k) for k in (2, 4, 8) for n in (1024, 4096, 16384, 65536)),
                      disjoint=tuple((n, k) for k in (2, 4, 8) for n in (1024, 4096, 16384)),
                      multihop=tuple((n, k_rel, k) for n, k_rel in ((256, 2), (1000, 4)) for k in (1, 2, 3)),
                      cot=tuple((1000, 4, k) for k in (1, 2, 3, 12)) + tuple((257, 5, k) for k in (1, 3, 6, 12, 24)),
                      meet_in_middle=((1000, 4), (4096, 4)))
    raise ValueError(f"scale must be smoke, quick or paper, got {scale!r}")


def runs(cfg: Config) -> list:
    """Nothing to train: every construction is built by formula."""
    return []


# ---------------------------------------------------------------------------------------------------
# Analysis


def k_log2_n(n_subjects: int, n_relations: int) -> float:
    """``K log2 N``: the scale of Theorem 4.1's dimension."""
    return n_relations * math.log2(n_subjects)


def _finite(x: float | None) -> float | None:
    """JSON-safe float: None for None/inf/nan."""
    if x is None or not math.isfinite(x):
        return None
    return float(x)


def score_row(cfg: Config, name: str, n: int, k_rel: int, k: int) -> dict[str, Any]:
    """Build ``name`` at (N, K, k), score it, and set it beside the theory's formulas and Theorem 4.2."""
    import torch

    from georecall.constructions import CONSTRUCTIONS, build_construction, score_construction
    from georecall.theory import check_against_bound, construction_cost

    dtype = {"float32": torch.float32, "float64": torch.float64}[cfg.dtype]
    t0 = time.perf_counter()
    c = build_construction(name, n, k_rel, k, seed=cfg.seed, dtype=dtype)
    t1 = time.perf_counter()
    space = n * k_rel ** k
    n_q = None if space <= cfg.max_queries else min(space, cfg.n_sampled)
    s = score_construction(c, n_queries=n_q, device=cfg.device, seed=cfg.seed)
    t2 = time.perf_counter()

    cost = construction_cost(name, n, k_rel, k)
    theory_params = {g: getattr(cost, g) for g in ("embedding", "positional", "attention", "mlp", "unembedding",
                                                    "total")}
    params = {g: int(v) for g, v in c.params.items()}
    check = check_against_bound(name, n, k_rel, k, convention="content")
    b = check.bound
    widths = [int(w) for w in c.dims["mlp_widths"]]
    d = int(c.dims["d_model"])
    beta = c.dims.get("beta")
    return {
        "name": name, "theorem": CONSTRUCTIONS[name].theorem, "attributes": CONSTRUCTIONS[name].attributes,
        "n_subjects": n, "n_relations": k_rel, "n_hops": k, "cot": name in COT_NAMES, "m": int(cost.m),
        # scoring
        "accuracy": float(s.accuracy), "n_queries": int(s.n_queries), "n_query_space": int(s.n_query_space),
        "all_queries": s.n_queries == s.n_query_space, "n_wrong": int(s.n_wrong),
        "min_margin": _finite(s.min_margin), "beta": None if beta is None else float(beta),
        # sizes, measured beside the theory's closed forms
        "d_model": d, "d_model_formula": int(cost.d_model), "d_match": d == cost.d_model,
        "mlp_widths": widths, "mlp_widths_formula": list(cost.mlp_widths),
        "widths_match": widths == list(cost.mlp_widths),
        "n_layers": int(c.dims["n_layers"]), "n_heads": int(c.dims["n_heads"]), "n_ctx": int(cost.n_ctx),
        "params": params, "params_formula": theory_params, "params_builder_formula": {g: int(v) for g, v in
                                                                                       c.formula.items()},
        "params_match": params == theory_params and params == {g: int(v) for g, v in c.formula.items()},
        "params_total": params["total"], "params_non_positional": params["total"] - params["positional"],
        "k_log2_n": k_log2_n(n, k_rel), "d_over_k_log2_n": d / k_log2_n(n, k_rel),
        "build_s": t1 - t0, "score_s": t2 - t1,
        # against Theorem 4.2 (content convention, the construction's own readout class)
        "readout": check.readout, "in_class": bool(check.in_class),
        "content_P_bits": float(check.P_have), "content_embedding_bits": float(check.embedding_bits),
        "bound_required_bits": float(check.P_needed), "bound_holds": bool(check.holds),
        "bound_verdict": check.verdict, "P_needed_fixed_readout": float(check.P_needed_fixed_readout),
        "P_have_readout_uncounted": _finite(check.P_have_readout_uncounted),
        "regime": int(b.regime), "gamma_global": float(b.gamma_global), "gamma_local": _finite(b.gamma_local),
        "global_bits": float(b.global_bits), "local_bits": _finite(b.local_bits),
    }


def bound_table(triples: list[tuple[int, int, int]]) -> list[dict[str, Any]]:
    """Theorem 4.2 (fixed readout) at ``B_e = 0, gamma_G, sqrt(gamma_G gamma_L), gamma_L`` for each (N, K, k)."""
    from georecall.theory import gamma_global, gamma_local, information_bits, required_bits

    out = []
    for n, k_rel, k in triples:
        g_g, g_l = gamma_global(n, k_rel, k), gamma_local(n, k_rel, k)
        points = {"zero": 0.0, "gamma_G": g_g}
        if g_l is not None:
            points["mid"] = math.sqrt(max(g_g, 0.0) * g_l)
            points["gamma_L"] = g_l
        for label, b_e in points.items():
            r = required_bits(n, k_rel, k, b_e, readout="fixed")
            out.append({"n_subjects": n, "n_relations": k_rel, "n_hops": k, "point": label, "embedding_bits": b_e,
                        "required_bits": r.required_bits, "global_bits": r.global_bits,
                        "local_bits": _finite(r.local_bits), "best_M": r.best_M, "regime": r.regime,
                        "gamma_global": g_g, "gamma_local": _finite(g_l), "log2_maps": r.log2_maps,
                        "information_bits": information_bits(n, k_rel)})
    return out


def bound_curves(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``required_bits(B_e)`` (fixed readout) for each no-CoT (N, K, k), over a range covering its constructions."""
    from georecall.theory import gamma_global, gamma_local, required_bits

    out = []
    triples = sorted({(r["n_subjects"], r["n_relations"], r["n_hops"]) for r in rows if not r["cot"]})
    for n, k_rel, k in triples:
        g_l = gamma_local(n, k_rel, k)
        top = max([1.1 * (g_l if g_l is not None else gamma_global(n, k_rel, k))]
                  + [1.05 * r["content_embedding_bits"] for r in rows
                     if (r["n_subjects"], r["n_relations"], r["n_hops"]) == (n, k_rel, k)])
        b_es = [top * i / (N_CURVE - 1) for i in range(N_CURVE)]
        out.append({"n_subjects": n, "n_relations": k_rel, "n_hops": k, "embedding_bits": b_es,
                    "required_bits": [required_bits(n, k_rel, k, b, readout="fixed").required_bits for b in b_es]})
    return out


def formula_curves(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """the theory's d for each single-hop construction and K, at every power of 2 (and measured N) in the range."""
    from georecall.theory import construction_cost

    out = []
    keys = sorted({(r["name"], r["n_relations"]) for r in rows if r["n_hops"] == 1 and not r["cot"]
                   and r["name"] not in FAMILIES["multihop"]})
    for name, k_rel in keys:
        ns = [r["n_subjects"] for r in rows if r["name"] == name and r["n_relations"] == k_rel and r["n_hops"] == 1]
        lo, hi = min(ns), max(ns)
        grid = sorted({2 ** j for j in range(1, 40) if lo <= 2 ** j <= hi} | {lo, hi} | set(ns))
        d = [construction_cost(name, n, k_rel, 1).d_model for n in grid]
        out.append({"name": name, "n_relations": k_rel, "n_subjects": grid,
                    "k_log2_n": [k_log2_n(n, k_rel) for n in grid], "d_model_formula": d})
    return out


@dataclass(frozen=True)
class Result:
    """The contract of ``constructions/<scale>/result.json`` (the envelope's ``payload``)."""

    scale: str  # smoke | quick | paper
    dtype: str  # float32 | float64
    device: str  # where scoring ran
    seed: int  # world seed of every construction
    sizes: dict[str, list[list[int]]]  # family -> configured sizes ([N, K] or [N, K, k])
    constructions: list[dict[str, Any]]  # one row per (construction, N, K, k): see score_row for the fields
    bound_table: list[dict[str, Any]]  # Theorem 4.2 (fixed readout) at 4 points of B_e per (N, K, k)
    bound_curves: list[dict[str, Any]]  # required_bits over a grid of B_e per no-CoT (N, K, k)
    formula_curves: list[dict[str, Any]]  # the theory's d against K log2 N per single-hop construction and K
    analyze_time_s: float  # wall time of analyze (all builds, scores and bounds)
    notes: list[str]  # conventions a reader of the numbers needs
    schema_version: int = SCHEMA_VERSION  # bumped when a field changes meaning
    sweep: dict[str, Any] = field(default_factory=dict)  # the (empty) sweep report, filled by the driver
    wall_time_s: float = 0.0  # driver wall time


NOTES = [
    "accuracy: argmax over the whole vocabulary; CoT: the whole greedy chain must be right. all_queries is False "
    "where the query space exceeded max_queries and a seeded sample of n_sampled queries was scored.",
    "params: dense minimal counts of the unpadded build; params_formula: the theory's closed forms "
    "(georecall.theory.construction_cost); params_match requires both the builder's and the theory's to equal the "
    "build.",
    "content bits (docs/theory.md §6.6): only fact-dependent parameters count, 1 bit per code coordinate; the bound is "
    "evaluated in each construction's own readout class (fixed, learned with the readout counted, or tied).",
    "CoT constructions are outside the no-CoT bound's class (each step reads a new subject embedding): their "
    "bound_required_bits is the no-CoT requirement they escape, not one they must meet.",
    "the trained-model side of Theorem 4.2 is decided by the trained experiments, not here.",
]


def analyze(cfg: Config, rows: list[dict[str, Any]], out_dir: Path) -> Result:
    """Build and score every construction at every size; evaluate Theorem 4.2 at each (``rows`` is unused)."""
    t0 = time.perf_counter()
    table = [score_row(cfg, name, n, k_rel, k) for name, n, k_rel, k in cfg.plan()]
    triples = sorted({(r["n_subjects"], r["n_relations"], r["n_hops"]) for r in table})
    return Result(scale=cfg.scale, dtype=cfg.dtype, device=cfg.device, seed=cfg.seed,
                  sizes={fam: [list(s) for s in getattr(cfg, fam)] for fam in FAMILIES}, constructions=table,
                  bound_table=bound_table(triples), bound_curves=bound_curves(table),
                  formula_curves=formula_curves(table), analyze_time_s=time.perf_counter() - t0, notes=list(NOTES))


def summarize(result: Result) -> str:
    """One line per construction and size: accuracy, d, widths, params (= formula?), margin, bits against the bound."""
    lines = [f"constructions ({result.scale}, {result.dtype}, {result.device}): {len(result.constructions)} builds "
             f"in {result.analyze_time_s:.1f} s",
             f"{'construction':>20} {'N':>6} {'K':>2} {'k':>2} {'acc':>6} {'queries':>8} {'d':>5} {'widths':>16} "
             f"{'params':>9} {'=form':>5} {'margin':>6} {'P have':>9} {'P need':>9} {'bound':>17} {'s':>5}"]
    for r in result.constructions:
        widths = ",".join(str(w) for w in r["mlp_widths"]) or "-"
        if len(widths) > 16:
            widths = widths[:13] + "..."
        margin = "-" if r["min_margin"] is None else f"{r['min_margin']:.3f}"
        lines.append(f"{r['name']:>20} {r['n_subjects']:>6} {r['n_relations']:>2} {r['n_hops']:>2} "
                     f"{r['accuracy']:>6.4f} {r['n_queries']:>8} {r['d_model']:>5} {widths:>16} "
                     f"{r['params_total']:>9} {'yes' if r['params_match'] and r['d_match'] else 'NO':>5} "
                     f"{margin:>6} {r['content_P_bits']:>9.3g} {r['bound_required_bits']:>9.3g} "
                     f"{r['bound_verdict']:>17} {r['build_s'] + r['score_s']:>5.2f}")
    return "\n".join(lines)


def plot(result_dir: str | Path) -> list[Path]:
    """The three figures (d against K log2 N; size against k; content bits against the bound) and their CSVs."""
    from georecall.plotting.constructions import plot as plot_payload

    folder = Path(result_dir)
    payload = load_result_json(folder)
    if "payload" in payload and "schema" in payload:  # an envelope: its payload is the Result
        payload = payload["payload"]
    return plot_payload(payload, folder)
