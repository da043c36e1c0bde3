"""Linear probes for the attributes stored in subject embeddings, cross-validated over *subjects*.

For relation r a probe maps ``e_s`` [d] to the attribute vector ``targets[r, f_r(s)]`` [d_t] (ridge, the
penalty chosen by leave-one-out CV on the training subjects, features standardised on them) and decodes a
held-out subject by the nearest of relation r's A attribute vectors. Subjects, not queries, are held out: a
probe must read the fact from an embedding it has never seen.

Why vectors and not classes: when f_r is a bijection, a held-out subject's attribute under r is the label of
no training subject of r, so a classifier over A classes cannot be right on it; a regression onto attribute
vectors (the model's unembedding rows or input embeddings, :func:`georecall.analysis.vectors.attribute_vectors`)
can, when the embedding stores the attribute's code linearly.

Controls (:func:`probe_with_controls`): the same probe against labels with the subject-label association
destroyed (``shuffled``) or against an unrelated random world (``random_bijection``) scores near chance ``1/A``.

scikit-learn is an optional extra (``pip install georecall[probes]``); it is imported when a probe runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

DEFAULT_ALPHAS = np.logspace(-6, 3, 10)
SHUFFLE_STREAM = 0x5B_F1
CONTROL_STREAM = 0xC0_17


def _require_sklearn() -> Any:
    try:
        import sklearn  # noqa: F401
        from sklearn import linear_model, model_selection, preprocessing
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("linear probes need scikit-learn: install georecall[probes] (scikit-learn)") from err
    return linear_model, model_selection, preprocessing


def _rng(seed: int, stream: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed), stream]))


# ---------------------------------------------------------------------------------------------------
# Validation shared with georecall.analysis.additive


def _check_embeddings(embeddings: Any) -> np.ndarray:
    x = np.asarray(embeddings, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"embeddings must be a 2-d array [N, d], got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("embeddings contain NaN or inf")
    return x


def _check_labels(labels: Any, n_subjects: int, n_attributes: int | None, what: str = "labels") -> np.ndarray:
    lab = np.asarray(labels)
    if lab.ndim != 2 or not np.issubdtype(lab.dtype, np.integer):
        raise ValueError(f"{what} must be a 2-d integer array [K, N], got shape {lab.shape} {lab.dtype}")
    if lab.shape[1] != n_subjects:
        raise ValueError(f"{what} has {lab.shape[1]} subjects (shape {lab.shape}), the embeddings {n_subjects}")
    if lab.shape[0] < 1:
        raise ValueError(f"{what} needs at least one relation, got shape {lab.shape}")
    lab = lab.astype(np.int64)
    if lab.min() < 0 or (n_attributes is not None and lab.max() >= n_attributes):
        raise ValueError(f"{what} must lie in [0, {n_attributes}), got values in [{lab.min()}, {lab.max()}]")
    return lab


def _check_vectors(vectors: Any, n_relations: int, what: str = "targets") -> np.ndarray:
    v = np.asarray(vectors, dtype=np.float64)
    if v.ndim != 3:
        raise ValueError(f"{what} must be a 3-d array [K, A, d] (each relation's attribute vectors), got {v.shape}")
    if v.shape[0] != n_relations:
        raise ValueError(f"{what} has {v.shape[0]} relations (shape {v.shape}), the labels {n_relations}")
    if not np.isfinite(v).all():
        raise ValueError(f"{what} contain NaN or inf")
    return v


def _check_folds(n_folds: int, n_subjects: int) -> None:
    if not 2 <= n_folds <= n_subjects:
        raise ValueError(f"n_folds must be in [2, N = {n_subjects}], got {n_folds}")


def _check_alphas(alphas: Any) -> np.ndarray:
    a = np.asarray(alphas, dtype=np.float64).ravel()
    if a.size == 0 or not (np.isfinite(a).all() and (a > 0).all()):
        raise ValueError(f"alphas must be a non-empty list of finite penalties > 0, got {alphas!r}")
    return a


def is_bijective(labels: np.ndarray, n_attributes: int) -> bool:
    """True when every row of ``labels`` [K, N] is a permutation of ``range(n_attributes)`` (so N = A)."""
    n = labels.shape[1]
    return n == n_attributes and all(np.array_equal(np.sort(row), np.arange(n)) for row in labels)


def control_labels(maps: np.ndarray, n_attributes: int, seed: int) -> dict[str, np.ndarray]:
    """The two controls for ``maps`` [K, N]: ``shuffled`` (each row permuted over subjects by a seeded
    permutation) and ``random_bijection`` (fresh random permutations, or uniform labels in ``[0, A)`` when
    ``maps`` are not bijections), both [K, N] and drawn from ``seed`` alone."""
    k_rel, n = maps.shape
    shuf = _rng(seed, SHUFFLE_STREAM)
    shuffled = np.stack([row[shuf.permutation(n)] for row in maps])
    ctrl = _rng(seed, CONTROL_STREAM)
    if is_bijective(maps, n_attributes):
        random = np.stack([ctrl.permutation(n) for _ in range(k_rel)])
    else:
        random = ctrl.integers(0, n_attributes, size=(k_rel, n))
    return {"shuffled": shuffled, "random_bijection": random}


def subject_folds(n_subjects: int, n_folds: int, seed: int) -> list[np.ndarray]:
    """Held-out subject indices of each outer fold (a seeded shuffle cut in ``n_folds`` near-equal parts)."""
    _check_folds(n_folds, n_subjects)
    perm = _rng(seed, 0xF0_1D).permutation(n_subjects)
    return [np.sort(f) for f in np.array_split(perm, n_folds)]


# ---------------------------------------------------------------------------------------------------
# Probes


@dataclass(frozen=True)
class ProbeResult:
    """Held-out nearest-neighbour accuracy of the per-relation probes.

    ``accuracy[r]``: fraction of subjects whose held-out prediction is nearest to ``targets[r, label]``;
    ``chance`` = 1/A; ``alphas[r][f]``: the penalty chosen in outer fold f of relation r; ``correct[r][s]``:
    whether subject s, held out, was decoded right under relation r (so accuracy over any group of subjects,
    e.g. one-token against multi-token names, is a mean of these).
    """

    accuracy: list[float]
    mean_accuracy: float
    chance: float
    alphas: list[list[float]]
    n_folds: int
    n_subjects: int
    correct: list[list[bool]] = field(default_factory=list)


@dataclass(frozen=True)
class ProbeControls:
    """The probe against the true labels and against two label sets unrelated to the embeddings."""

    true: ProbeResult
    shuffled: ProbeResult
    random_bijection: ProbeResult


def _nearest(pred: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """Index of the nearest (Euclidean) row of ``vectors`` [A, d_t] for each row of ``pred`` [n, d_t]."""
    d2 = (pred ** 2).sum(1)[:, None] - 2 * pred @ vectors.T + (vectors ** 2).sum(1)[None, :]
    return d2.argmin(1)


def probe_attributes(embeddings: np.ndarray, labels: np.ndarray, targets: np.ndarray, *, n_folds: int = 5,
                     alphas: np.ndarray | list[float] = DEFAULT_ALPHAS, seed: int = 0) -> ProbeResult:
    """Cross-validated linear probes from subject embeddings to attribute vectors, one per relation.

    ``embeddings`` [N, d]; ``labels`` [K, N] ints in ``[0, A)`` (``labels[r, s]``: the attribute of s under
    r, ``world.maps`` for the true facts); ``targets`` [K, A, d_t] (each attribute's vector). For each
    relation the subjects are split in ``n_folds`` (``sklearn.model_selection.KFold``, shuffled with
    ``seed``); on the training subjects the features are standardised and a ridge regression (with
    intercept) onto ``targets[r, labels[r, s]]`` is fitted, its penalty chosen from ``alphas`` by efficient
    leave-one-out CV (``RidgeCV``); held-out subjects are decoded as the nearest of the A vectors of r.
    """
    linear_model, model_selection, preprocessing = _require_sklearn()
    x = _check_embeddings(embeddings)
    n = x.shape[0]
    _check_folds(n_folds, n)
    lab = _check_labels(labels, n, None)
    tgt = _check_vectors(targets, lab.shape[0])
    n_attr = tgt.shape[1]
    if lab.max() >= n_attr:
        raise ValueError(f"labels must lie in [0, A = {n_attr}) (targets [K, A, d_t]), got max {lab.max()}")
    grid = _check_alphas(alphas)
    if n - -(-n // n_folds) < 2:
        raise ValueError(f"{n} subjects in {n_folds} folds leave fewer than 2 training subjects per fold")
    outer = model_selection.KFold(n_splits=n_folds, shuffle=True, random_state=seed)
    accuracy, chosen, correct = [], [], []
    for r in range(lab.shape[0]):
        y = tgt[r, lab[r]]  # [N, d_t]
        right, fold_alphas = 0, []
        hits = np.zeros(n, dtype=bool)
        for train, test in outer.split(x):
            scaler = preprocessing.StandardScaler().fit(x[train])
            ridge = linear_model.RidgeCV(alphas=grid, fit_intercept=True).fit(scaler.transform(x[train]), y[train])
            pred = np.asarray(ridge.predict(scaler.transform(x[test]))).reshape(len(test), -1)
            hit = _nearest(pred, tgt[r]) == lab[r, test]
            hits[test] = hit
            right += int(hit.sum())
            fold_alphas.append(float(ridge.alpha_))
        accuracy.append(right / n)
        chosen.append(fold_alphas)
        correct.append(hits.tolist())
    return ProbeResult(accuracy=accuracy, mean_accuracy=float(np.mean(accuracy)), chance=1.0 / n_attr,
                       alphas=chosen, n_folds=n_folds, n_subjects=n, correct=correct)


def probe_with_controls(embeddings: np.ndarray, maps: np.ndarray, targets: np.ndarray, *, seed: int = 0,
                        n_folds: int = 5, alphas: np.ndarray | list[float] = DEFAULT_ALPHAS) -> ProbeControls:
    """:func:`probe_attributes` on the true labels ``maps`` [K, N] and on the two :func:`control_labels`."""
    x = _check_embeddings(embeddings)
    tgt = np.asarray(targets)
    if tgt.ndim != 3:
        raise ValueError(f"targets must be a 3-d array [K, A, d_t], got shape {tgt.shape}")
    lab = _check_labels(maps, x.shape[0], tgt.shape[1], what="maps")
    controls = control_labels(lab, tgt.shape[1], seed)

    def run(labels: np.ndarray) -> ProbeResult:
        return probe_attributes(x, labels, tgt, n_folds=n_folds, alphas=alphas, seed=seed)

    return ProbeControls(true=run(lab), shuffled=run(controls["shuffled"]),
                         random_bijection=run(controls["random_bijection"]))
