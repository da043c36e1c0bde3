"""Real LM: does a pretrained language model hold a subject's attributes linearly and additively (claim C13)?

The paper's mechanism (Theorem 4.1, §5) stores each fact as a superposition in the subject's embedding:
``e_s ≈ b + Σ_r M_r a(f_r(s))``. Its §6 asks the same of pretrained LMs, where the structure may appear only
at intermediate layers, after the model has gathered a name of several tokens into one place. Pipeline
(nothing is trained; ``runs`` is empty):

1. **Facts**: the packaged countries table (:func:`georecall.lm.facts.load_facts`: ~195 countries; capital,
   continent, language, currency), a seeded subset at smoke scale.
2. **Recall** (:func:`georecall.lm.extract.recall`): the greedy completion of each relation's prompt
   ("The capital of France is") for each subject, matched by :data:`georecall.lm.extract.RECALL_RULE`.
   What the LM recalls is a split, not a filter: every subject is analysed.
3. **Representations** (:func:`georecall.lm.extract.subject_representations`): every hidden state
   (layer 0 = the input embeddings, then each block's output) of a prompt that names no relation and ends
   with the subject, at the subject's **last token** (the headline, what C13 reads) and **averaged** over
   its tokens (``pooled["mean"]``).
4. **Probes**, per layer, pooling and relation (:func:`probe_layer`, over
   :func:`georecall.analysis.probes.probe_attributes`): a ridge map from the hidden state (standardised,
   penalty by leave-one-out CV) to the attribute's vector ``a(·)`` = the LM's mean input embedding of
   ``" " + attribute`` (:meth:`LanguageModel.embed_text`), cross-validated over **held-out subjects** and
   decoded by the nearest of the relation's A attribute vectors (chance 1/A). The targets are first written
   in an orthonormal basis of their own centred span (at most A - 1 numbers): an exact change of coordinates
   for ridge with an intercept, nearest-neighbour decoding and the LOO penalty, and 3-10x cheaper. Control:
   the same probe on labels shuffled over subjects (:func:`control_labels` ``["shuffled"]``).
5. **Additive fit**, per layer and pooling (:func:`additive_layer`, over
   :func:`georecall.analysis.additive.fit_additive`): held-out R² of ``h_s ≈ b + Σ_r M_r a_r(f_r(s))``
   over the same kind of subject folds. For conditioning and speed both sides are reduced: in every fold
   the hidden states are standardised per coordinate on the training subjects (a few "massive activation"
   coordinates would otherwise be the whole R²) and projected on the training subjects' top
   ``pca_dims`` (64) principal directions, where R² is measured; each relation's attribute vectors are
   reduced to their top ``pca_dims`` principal directions (label-free: vocabulary vectors, no subject's
   label) and zero-padded to a common width, and the relations' tables are padded to the largest A.
   Control: the same fit with each relation's labels replaced by uniform random attributes of that
   relation (seeded).
6. **Splits**: the held-out correctness of each subject, grouped by recalled / not recalled (per relation)
   and by one-token / multi-token subject names.

C13 (:mod:`georecall.experiments.claims.real_lm`) reads, per layer, each relation's probe against its
shuffled control and chance, and the additive R² against its control, at the last token.

Models. ``smoke`` runs a tiny randomly initialised GPT-2 (:func:`georecall.lm.load.tiny_lm`, seconds, the same
code path); ``quick`` and ``paper`` the packaged SmolLM2-135M (offline, :data:`georecall.lm.load.PACKAGED`).
With internet, point it at any Hugging Face causal LM or a local folder or GGUF file::

    georecall run real_lm --model gpt2
    georecall run real_lm --model EleutherAI/pythia-410m --set device=cuda
    georecall run real_lm --scale paper --model meta-llama/Llama-3.2-1B --set device=cuda

Measured times (one torch thread, numpy's BLAS held to the same count, 2 CPU cores shared with another job):
smoke ~2 s; quick on SmolLM2-135M (193 countries, 772 facts, 31 hidden states) 98 s: loading 2-3 s from the
float32 cache (the first load ever dequantises the GGUF: ~20 s more), recall 48 s (772 greedy completions of
8 tokens, batches of 32), hidden states 7 s, probes and additive fits of both poolings 42 s. The payload's
``timings_s`` records each run's own.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from georecall.experiments.base import Provenance, load_result_json, validate_config

ID = "real_lm"
SCHEMA_VERSION = 1
TINY = "tiny"  # the smoke scale's model: a randomly initialised GPT-2 (georecall.lm.load.tiny_lm)
POOLINGS = ("last", "mean")  # the subject's last token (headline) and the mean over its tokens
ADDITIVE_STREAM = 0xADD

PROVENANCE = Provenance(
    claim="Pretrained language models hold a subject's attributes linearly and additively at some layer: each "
          "attribute is linearly readable from the subject's hidden state, which is close to a sum of its "
          "attributes' vectors.",
    paper_section="§6 Preliminary experiments on pretrained language models",
    theorems=("Theorem 4.1 (the superposition it looks for)",),
    paper_reported={
        "pretrained_lms": "the paper reports preliminary experiments on pretrained language models and notes that "
                          "the geometric structure may emerge at intermediate layers, especially for subjects that "
                          "span several tokens",
    },
)


@dataclass(frozen=True)
class RealLMConfig:
    """One scale of the experiment (every field reachable with ``--set``; ``--model`` sets ``model``)."""

    scale: str
    model: str  # "tiny", georecall.lm.load.PACKAGED, a Hugging Face name, a folder or a GGUF file
    n_subjects: int | None = field(default=None, metadata={"min": 10})  # a seeded subset; None = all
    probe_folds: int = field(default=5, metadata={"min": 2})
    seed: int = field(default=0, metadata={"min": 0})
    batch_size: int = field(default=32, metadata={"min": 1})
    max_new_tokens: int = field(default=8, metadata={"min": 1})
    pca_dims: int = field(default=64, metadata={"min": 1})  # the additive fit's width (see the module docstring)
    additive_every: int = field(default=1, metadata={"min": 1})  # the additive fit at every k-th layer (and the last)
    facts: str | None = None  # a facts CSV; None = the packaged countries table
    device: str = "cpu"

    def __post_init__(self) -> None:
        validate_config(self)
        if not self.model.strip():
            raise ValueError("model must name a model: tiny, smollm2-packaged, a Hugging Face name or a path")
        if self.n_subjects is not None and self.n_subjects < 2 * self.probe_folds:
            raise ValueError(f"n_subjects = {self.n_subjects} is too few for {self.probe_folds} probe folds "
                             f"(need >= {2 * self.probe_folds})")


def config(scale: str) -> RealLMConfig:
    from georecall.lm.load import PACKAGED

    if scale == "smoke":
        return RealLMConfig(scale="smoke", model=TINY, n_subjects=40, max_new_tokens=4)
    if scale == "quick":
        return RealLMConfig(scale="quick", model=PACKAGED)
    if scale == "paper":
        return RealLMConfig(scale="paper", model=PACKAGED)
    raise ValueError(f"scale must be one of smoke, quick, paper, got {scale!r}")


def runs(cfg: RealLMConfig) -> list:
    """No training: the experiment measures a pretrained model."""
    return []


# ---------------------------------------------------------------------------------------------------
# The per-layer analysis (arrays in, numbers out; tested on planted structure)


def target_coordinates(targets: np.ndarray) -> np.ndarray:
    """Attribute vectors [A, d_t] in an orthonormal basis of their centred span: [A, k], k <= min(A - 1, d_t).

    For a ridge probe with an intercept this changes nothing but the cost: the fitted values, their distances
    to the A vectors and the leave-one-out errors are the same in these coordinates (the discarded directions
    are constant over the attribute vectors). One attribute gives one zero coordinate.
    """
    t = np.asarray(targets, dtype=np.float64)
    c = t - t.mean(0)
    _, s, vt = np.linalg.svd(c, full_matrices=False)
    keep = s > (s[0] if s.size else 0.0) * max(c.shape) * np.finfo(np.float64).eps * 10
    if not keep.any():
        return np.zeros((t.shape[0], 1))
    return c @ vt[keep].T


def probe_layer(x: np.ndarray, labels: np.ndarray, targets: Sequence[np.ndarray], *, n_folds: int, seed: int,
                control: np.ndarray | None = None) -> dict[str, Any]:
    """Per-relation probes of one layer's representations ``x`` [N, d], and the shuffled-label control.

    ``labels`` [K, N] (relation r's attribute index of each subject, in ``[0, A_r)``), ``targets[r]``
    [A_r, d_t] (relation r's attribute vectors), ``control`` [K, N] the control labels (default: the
    seeded shuffle of :func:`georecall.analysis.probes.control_labels`). Returns per relation the held-out
    accuracy and per-subject correctness, for the true and the control labels, and chance 1/A_r.
    """
    from georecall.analysis.probes import control_labels, probe_attributes

    lab = np.asarray(labels, dtype=np.int64)
    if control is None:
        control = control_labels(lab, max(int(t.shape[0]) for t in targets), seed)["shuffled"]
    out: dict[str, Any] = {"accuracy": [], "control": [], "correct": [], "control_correct": [], "chance": []}
    for r, t in enumerate(targets):
        tr = target_coordinates(t)[None]
        true = probe_attributes(x, lab[r:r + 1], tr, n_folds=n_folds, seed=seed)
        ctrl = probe_attributes(x, np.asarray(control[r:r + 1], dtype=np.int64), tr, n_folds=n_folds, seed=seed)
        out["accuracy"].append(true.accuracy[0])
        out["control"].append(ctrl.accuracy[0])
        out["correct"].append(np.asarray(true.correct[0], dtype=bool))
        out["control_correct"].append(np.asarray(ctrl.correct[0], dtype=bool))
        out["chance"].append(1.0 / t.shape[0])
    return out


def reduce_attributes(targets: Sequence[np.ndarray], dims: int) -> np.ndarray:
    """Each relation's attribute vectors on their own top ``dims`` principal directions (centred), zero-padded
    to one width and to the largest A: ``[K, A_max, w]`` with ``w <= dims``."""
    reduced = []
    for t in targets:
        t = np.asarray(t, dtype=np.float64)
        c = t - t.mean(0)
        _, s, vt = np.linalg.svd(c, full_matrices=False)
        k = int(min(dims, (s > (s[0] if s.size else 0) * 1e-9).sum())) or 1
        reduced.append(c @ vt[:k].T)
    width = max(r.shape[1] for r in reduced)
    a_max = max(r.shape[0] for r in reduced)
    out = np.zeros((len(reduced), a_max, width))
    for i, r in enumerate(reduced):
        out[i, :r.shape[0], :r.shape[1]] = r
    return out


def random_labels(n_attributes: Sequence[int], n_subjects: int, seed: int) -> np.ndarray:
    """The additive fit's control: relation r's label of each subject uniform in ``[0, A_r)``, seeded: [K, N]."""
    return np.stack([np.random.default_rng(np.random.SeedSequence([int(seed), ADDITIVE_STREAM, r]))
                     .integers(0, a, size=n_subjects) for r, a in enumerate(n_attributes)])


def additive_fold_r2(x: np.ndarray, labels: np.ndarray, attr: np.ndarray, *, n_folds: int, seed: int,
                     dims: int) -> float:
    """Held-out R² of ``h_s ≈ b + Σ_r M_r attr[r, labels[r, s]]`` over seeded subject folds (see the module
    docstring: per fold, hidden states standardised and reduced to the training subjects' top ``dims`` PCs)."""
    from georecall.analysis.additive import fit_additive
    from georecall.analysis.probes import subject_folds

    x = np.asarray(x, dtype=np.float64)
    lab = np.asarray(labels, dtype=np.int64)
    n = x.shape[0]
    sse = sst = 0.0
    for test in subject_folds(n, n_folds, seed):
        train = np.setdiff1d(np.arange(n), test)
        mu, sd = x[train].mean(0), x[train].std(0)
        sd = np.where(sd > 1e-8 * max(float(sd.max()), 1e-30), sd, 1.0)
        z = (x - mu) / sd
        _, s, vt = np.linalg.svd(z[train], full_matrices=False)
        k = int(min(dims, (s > (s[0] if s.size else 0) * 1e-9).sum())) or 1
        y = z @ vt[:k].T
        fit = fit_additive(y[train], lab[:, train], attr)
        pred = fit.predict(lab[:, test], attr)
        sse += float(((y[test] - pred) ** 2).sum())
        sst += float(((y[test] - y[train].mean(0)) ** 2).sum())
    return 1.0 - sse / sst if sst > 0 else float("nan")


def additive_layer(x: np.ndarray, labels: np.ndarray, targets: Sequence[np.ndarray], *, n_folds: int, seed: int,
                   dims: int = 64) -> tuple[float, float]:
    """The additive fit's held-out R² at one layer and that of its random-label control."""
    attr = reduce_attributes(targets, dims)
    n = np.asarray(x).shape[0]
    control = random_labels([int(np.asarray(t).shape[0]) for t in targets], n, seed)
    return (additive_fold_r2(x, labels, attr, n_folds=n_folds, seed=seed, dims=dims),
            additive_fold_r2(x, control, attr, n_folds=n_folds, seed=seed, dims=dims))


def _mean(values: Sequence[float | None]) -> float | None:
    vals = [float(v) for v in values if v is not None and np.isfinite(v)]
    return float(np.mean(vals)) if vals else None


def _group_accuracy(correct: np.ndarray, mask: np.ndarray) -> float | None:
    return float(correct[mask].mean()) if mask.any() else None


def analyze_layers(reps: np.ndarray, labels: np.ndarray, targets: Sequence[np.ndarray], relations: Sequence[str], *,
                   n_folds: int, seed: int, dims: int = 64, additive_layers: Sequence[int] | None = None,
                   groups: Mapping[str, np.ndarray] | None = None) -> dict[str, Any]:
    """Probes, controls, additive fits and group splits of every layer of ``reps`` [L+1, N, d].

    ``groups`` maps a split's name to a subject mask [N] (the same for every relation) or [K, N] (one per
    relation, e.g. recalled); each group's held-out probe accuracy is the mean of its subjects' correctness.
    ``additive_layers``: the layers that get the additive fit (default: all; the others hold None).
    """
    reps = np.asarray(reps)
    n_layers = reps.shape[0]
    lab = np.asarray(labels, dtype=np.int64)
    k = len(relations)
    want = set(range(n_layers) if additive_layers is None else additive_layers)
    out: dict[str, Any] = {"probe_by_relation": {r: [] for r in relations},
                           "probe_control_by_relation": {r: [] for r in relations},
                           "probe_accuracy": [], "probe_accuracy_control": [], "additive_r2": [],
                           "additive_r2_control": [], "groups": {}}
    masks = {}
    for name, m in (groups or {}).items():
        m = np.asarray(m, dtype=bool)
        masks[name] = np.broadcast_to(m, (k, lab.shape[1])) if m.ndim == 1 else m
        out["groups"][name] = {"n_by_relation": {r: int(masks[name][i].sum()) for i, r in enumerate(relations)},
                               "probe_accuracy": [], "probe_accuracy_control": [],
                               "by_relation": {r: [] for r in relations},
                               "control_by_relation": {r: [] for r in relations}}
    for layer in range(n_layers):
        x = reps[layer]
        p = probe_layer(x, lab, targets, n_folds=n_folds, seed=seed)
        for i, r in enumerate(relations):
            out["probe_by_relation"][r].append(p["accuracy"][i])
            out["probe_control_by_relation"][r].append(p["control"][i])
        out["probe_accuracy"].append(float(np.mean(p["accuracy"])))
        out["probe_accuracy_control"].append(float(np.mean(p["control"])))
        if layer in want:
            r2, r2c = (v if np.isfinite(v) else None
                       for v in additive_layer(x, lab, targets, n_folds=n_folds, seed=seed, dims=dims))
        else:
            r2 = r2c = None
        out["additive_r2"].append(r2)
        out["additive_r2_control"].append(r2c)
        for name, m in masks.items():
            g = out["groups"][name]
            acc = [_group_accuracy(p["correct"][i], m[i]) for i in range(k)]
            ctrl = [_group_accuracy(p["control_correct"][i], m[i]) for i in range(k)]
            for i, r in enumerate(relations):
                g["by_relation"][r].append(acc[i])
                g["control_by_relation"][r].append(ctrl[i])
            g["probe_accuracy"].append(_mean(acc))
            g["probe_accuracy_control"].append(_mean(ctrl))
        out["chance_by_relation"] = dict(zip(relations, p["chance"], strict=True))
    return out


# ---------------------------------------------------------------------------------------------------
# Result


@dataclass(frozen=True)
class RealLMResult:
    """The contract of ``real_lm/<scale>/result.json`` (per-layer lists run over ``layers``, 0 = embeddings)."""

    scale: str
    model: str  # what was asked for (--model)
    model_info: dict[str, Any]  # name, source, n_layers, d_model of what was loaded
    n_subjects: int
    n_facts: int  # subjects × relations
    relations: list[str]
    layers: list[int]  # 0..L
    recall_rate: float  # fraction of the facts whose greedy completion states the attribute
    recall_by_relation: dict[str, float]
    recall_rule: str
    recall_examples: dict[str, list[dict[str, Any]]]  # a few prompts, completions and verdicts per relation
    chance_by_relation: dict[str, float]  # 1/A_r
    n_attributes: dict[str, int]  # A_r among these subjects
    # Headline pooling: the subject's last token of the neutral prompt.
    probe_accuracy: list[float]  # mean over relations, per layer
    probe_accuracy_control: list[float]  # shuffled labels
    probe_by_relation: dict[str, list[float]]
    probe_control_by_relation: dict[str, list[float]]
    additive_r2: list[float | None]  # held-out R²; None at layers without the fit (additive_every)
    additive_r2_control: list[float | None]  # random labels
    pooled: dict[str, dict[str, Any]]  # "mean": the same per-layer fields, averaged over the subject's tokens
    splits: dict[str, dict[str, Any]]  # pooling -> one_token / multi_token / recalled / not_recalled
    tokens: dict[str, Any]  # how many subjects take one token, several, the mean
    best_layer: dict[str, Any]  # where the probes beat their controls most; first readable layer per relation
    source: str  # the facts
    design: dict[str, Any]  # prompts, folds, seed, dims, additive layers
    timings_s: dict[str, float]
    notes: list[str]
    schema_version: int = SCHEMA_VERSION
    sweep: dict[str, Any] = field(default_factory=dict)
    wall_time_s: float = 0.0


def _load_model(cfg: RealLMConfig, facts: Any) -> Any:
    from georecall.lm.load import load_lm, tiny_lm

    if cfg.model == TINY:
        texts = [facts.neutral_prompt(i) for i in range(facts.n_subjects)]
        texts += [f"{facts.prompt(r, i)} {facts.value(r, i)}." for r in facts.relations
                  for i in range(facts.n_subjects)]
        return tiny_lm(seed=cfg.seed, texts=texts)
    return load_lm(cfg.model, device=cfg.device)


def _blas_threads() -> Any:
    """numpy's BLAS limited to torch's CPU threads (``--threads``, default 1) while the probes and fits run.

    OpenBLAS starts a thread per core; beside a busy process on our 2-core machines its small SVDs and solves
    then ran up to ~200x slower (a 154 x 576 SVD: 2.7 s instead of 12 ms), which made the quick run take over
    15 minutes instead of 2.
    """
    import contextlib

    import torch

    try:
        from threadpoolctl import threadpool_limits  # a dependency of scikit-learn
    except ImportError:  # pragma: no cover - depends on the environment
        return contextlib.nullcontext()
    return threadpool_limits(limits=torch.get_num_threads(), user_api="blas")


def _best_layer(payload: Mapping[str, Any]) -> dict[str, Any]:
    from georecall.experiments.claims.real_lm import layer_tests

    layers, relations = payload["layers"], payload["relations"]
    tests = [layer_tests(payload, i) for i in range(len(layers))]
    margin = [a - c for a, c in zip(payload["probe_accuracy"], payload["probe_accuracy_control"], strict=True)]
    best = int(np.argmax(margin))
    first = {r: next((layers[t["layer"]] for t in tests if r in t["readable"]), None) for r in relations}
    most = max(tests, key=lambda t: (len(t["readable"]), -np.inf if t["additive_r2"] is None else t["additive_r2"]))
    return {"layer": layers[best], "probe_accuracy": payload["probe_accuracy"][best],
            "probe_accuracy_control": payload["probe_accuracy_control"][best],
            "additive_r2": payload["additive_r2"][best], "additive_r2_control": payload["additive_r2_control"][best],
            "readable": tests[best]["readable"], "first_readable_layer": first,
            "most_readable_layer": layers[most["layer"]], "most_readable": most["readable"],
            "rule": "layer: the largest mean margin of the probes over their shuffled controls (last token); "
                    "readable as C13 decides it"}


def analyze(cfg: RealLMConfig, rows: list[dict[str, Any]], out_dir: Path) -> RealLMResult:
    """Load the LM, measure recall and the subjects' hidden states, then probe and fit every layer."""
    from georecall.lm.extract import recall, subject_representations
    from georecall.lm.facts import load_facts

    del rows, out_dir
    t0 = time.perf_counter()
    facts = load_facts(cfg.facts)
    notes: list[str] = []
    if cfg.n_subjects is not None and cfg.n_subjects < len(facts.subjects):
        facts = facts.subset(cfg.n_subjects, seed=cfg.seed)
    elif cfg.n_subjects is not None:
        notes.append(f"asked for {cfg.n_subjects} subjects, the table has {len(facts.subjects)}: all are used")
    lm = _load_model(cfg, facts)
    timings = {"load_s": time.perf_counter() - t0}
    if cfg.model == TINY:
        notes.append("smoke scale: a tiny randomly initialised GPT-2, so recall and probes are at chance by design")

    t = time.perf_counter()
    rec = recall(lm, facts, max_new_tokens=cfg.max_new_tokens, batch_size=cfg.batch_size)
    timings["recall_s"] = time.perf_counter() - t
    t = time.perf_counter()
    reps = subject_representations(lm, facts, batch_size=cfg.batch_size)
    timings["representations_s"] = time.perf_counter() - t

    relations = list(facts.relations)
    labels, names = facts.labels()
    targets = [np.asarray(lm.embed_text([" " + a for a in names[r]]), dtype=np.float64) for r in relations]
    n = len(facts.subjects)
    n_layers = reps.last.shape[0]
    additive_layers = sorted({*range(0, n_layers, cfg.additive_every), n_layers - 1})
    one = reps.n_subject_tokens == 1
    groups = {"one_token": one, "multi_token": ~one, "recalled": rec.recalled, "not_recalled": ~rec.recalled}
    t = time.perf_counter()
    with _blas_threads():
        per_pool = {pool: analyze_layers(getattr(reps, pool), labels, targets, relations, n_folds=cfg.probe_folds,
                                         seed=cfg.seed, dims=cfg.pca_dims, additive_layers=additive_layers,
                                         groups=groups) for pool in POOLINGS}
    timings["probes_and_fits_s"] = time.perf_counter() - t
    head = per_pool["last"]
    fields = ("probe_accuracy", "probe_accuracy_control", "probe_by_relation", "probe_control_by_relation",
              "additive_r2", "additive_r2_control")
    for name, g in groups.items():
        if not np.asarray(g).any():
            notes.append(f"no subject is in the split {name!r}: its accuracies are None")
    examples = {r: [{"subject": facts.subjects[s], "attribute": facts.values[r][s], "prompt": rec.prompts[i][s],
                     "completion": rec.completions[i][s], "recalled": bool(rec.recalled[i, s])}
                    for s in range(min(n, 8))] for i, r in enumerate(relations)}
    payload: dict[str, Any] = {
        "scale": cfg.scale, "model": cfg.model,
        "model_info": {"name": lm.name, "source": lm.source, "n_layers": int(lm.n_layers), "d_model": int(lm.d_model)},
        "n_subjects": n, "n_facts": n * len(relations), "relations": relations, "layers": list(range(n_layers)),
        "recall_rate": rec.rate, "recall_by_relation": rec.by_relation(), "recall_rule": rec.rule,
        "recall_examples": examples, "chance_by_relation": head["chance_by_relation"],
        "n_attributes": {r: len(names[r]) for r in relations},
        **{k: head[k] for k in fields},
        "pooled": {"mean": {k: per_pool["mean"][k] for k in fields}},
        "splits": {pool: per_pool[pool]["groups"] for pool in POOLINGS},
        "tokens": {"n_one_token": int(one.sum()), "n_multi_token": int((~one).sum()),
                   "mean_tokens": float(reps.n_subject_tokens.mean()),
                   "max_tokens": int(reps.n_subject_tokens.max())},
        "source": str(facts.source),
        "design": {"templates": dict(facts.templates), "neutral": facts.neutral, "probe_folds": cfg.probe_folds,
                   "seed": cfg.seed, "pca_dims": cfg.pca_dims, "additive_layers": additive_layers,
                   "max_new_tokens": cfg.max_new_tokens, "batch_size": cfg.batch_size, "poolings": list(POOLINGS),
                   "targets": "mean input embedding of ' ' + attribute (LanguageModel.embed_text)",
                   "probe_control": "labels shuffled over subjects", "additive_control": "uniform random labels"},
    }
    payload["best_layer"] = _best_layer(payload)
    timings["total_s"] = time.perf_counter() - t0
    return RealLMResult(**payload, timings_s=timings, notes=notes)


def summarize(result: RealLMResult) -> str:
    def f(x: float | None) -> str:
        return "  n/a" if x is None else f"{x:5.2f}"

    b = result.best_layer
    lines = [f"real_lm ({result.scale}): {result.model_info.get('name', result.model)}, {result.n_subjects} subjects, "
             f"{result.n_facts} facts, {len(result.layers)} layers (0 = embeddings); subject's last token",
             f"recall {result.recall_rate:.3f} (" + ", ".join(f"{r} {v:.2f}" for r, v in
                                                         result.recall_by_relation.items()) + ")",
             f"best layer {b['layer']}: probe {f(b['probe_accuracy'])} vs control {f(b['probe_accuracy_control'])}, "
             f"additive R² {f(b['additive_r2'])} vs {f(b['additive_r2_control'])}; first readable layer: "
             + ", ".join(f"{r} {v}" for r, v in b["first_readable_layer"].items()),
             "layer  probe  ctrl    R²   ctrl  " + "  ".join(f"{r[:9]:>9}" for r in result.relations)]
    for i, layer in enumerate(result.layers):
        per = "  ".join(f"{result.probe_by_relation[r][i]:9.2f}" for r in result.relations)
        lines.append(f"{layer:>5} {f(result.probe_accuracy[i])} {f(result.probe_accuracy_control[i])} "
                     f"{f(result.additive_r2[i])} {f(result.additive_r2_control[i])}  {per}")
    lines.append("time: " + ", ".join(f"{k} {v:.1f}" for k, v in result.timings_s.items()))
    lines += [f"note: {n}" for n in result.notes[:10]]
    return "\n".join(lines)


def plot(result_dir: str | Path) -> list[Path]:
    """Probe accuracy and additive R² by layer, and the one-token / multi-token and recalled splits."""
    from georecall.plotting import real_lm as plots

    folder = Path(result_dir)
    return plots.plot(load_result_json(folder), folder)
