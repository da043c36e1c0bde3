"""The additive fit: is each subject embedding a superposition of its attributes' vectors?

The claim is ``e_s ≈ b + Σ_r M_r a_r(f_r(s))``: one linear map ``M_r`` [d, d_a] per relation applied to the
vector ``a_r(·)`` of the subject's attribute under r. Three choices of ``a``:

* the model's unembedding rows, ``kind="unembedding"``, or
* its input embeddings, ``kind="embedding"`` (both :func:`georecall.analysis.vectors.attribute_vectors`,
  passed as ``attr`` [K, A, d_a]): :func:`fit_additive`, :func:`additive_r2`, :func:`additive_with_control`;
* fitted codes ``Z`` [A, c], shared by every relation (or one table per relation), learnt jointly with
  the maps by alternating ridge least squares: :func:`fit_codes`, :func:`codes_r2`.

Scores are R² over subjects: ``1 - SSE/SST`` pooled over every held-out subject and coordinate, SST around
the training fold's mean. Controls replace every ``f_r`` by an unrelated random bijection (uniform random
labels for non-bijective worlds). numpy only: the ridge penalty is chosen by efficient leave-one-out CV.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from georecall.analysis.probes import (
    _check_alphas,
    _check_embeddings,
    _check_labels,
    _check_vectors,
    control_labels,
    subject_folds,
)

DEFAULT_ALPHAS = np.logspace(-6, 3, 10)
CODES_STREAM = 0xC0_DE
ANNEAL_START = 1.0  # the codes fit starts at penalty ANNEAL_START * N (on unit-RMS embeddings)


# ---------------------------------------------------------------------------------------------------
# Ridge with intercept (numpy)


def _ridge(x: np.ndarray, y: np.ndarray, alphas: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Ridge of ``y`` [n, q] on ``x`` [n, p] with an unpenalised intercept: ``(coef [p, q], intercept [q], alpha)``.

    With several ``alphas`` the one of least mean squared leave-one-out error (exact, through the hat
    matrix of the centred problem plus ``1/n`` for the intercept) is used (the first on ties).
    """
    n = x.shape[0]
    xm, ym = x.mean(0), y.mean(0)
    xc, yc = x - xm, y - ym
    u, s, vt = np.linalg.svd(xc, full_matrices=False)
    keep = s > (s[0] if s.size else 0.0) * max(xc.shape) * np.finfo(np.float64).eps  # drop the null space
    u, s, vt = u[:, keep], s[keep], vt[keep]
    uty = u.T @ yc  # [k, q]
    if len(alphas) == 1:
        alpha = float(alphas[0])
    else:
        errors = []
        for a in alphas:
            shrink = s ** 2 / (s ** 2 + a)  # [k]
            fit = u @ (shrink[:, None] * uty)  # [n, q]
            hat = (u ** 2) @ shrink + 1.0 / n  # [n]
            with np.errstate(divide="ignore", invalid="ignore"):
                err = ((yc - fit) / np.maximum(1.0 - hat, 1e-12)[:, None]) ** 2
            errors.append(np.nanmean(err) if np.isfinite(err).any() else np.inf)
        alpha = float(alphas[int(np.argmin(errors))])
    coef = vt.T @ ((s / (s ** 2 + alpha))[:, None] * uty)  # [p, q]
    return coef, ym - xm @ coef, alpha


def _r2(y: np.ndarray, pred: np.ndarray, center: np.ndarray) -> float:
    """``1 - SSE/SST`` pooled over rows and coordinates, SST around ``center`` [q]; nan when SST is 0."""
    sst = float(((y - center) ** 2).sum())
    return 1.0 - float(((y - pred) ** 2).sum()) / sst if sst > 0 else float("nan")


# ---------------------------------------------------------------------------------------------------
# Given attribute vectors


@dataclass(frozen=True, eq=False)
class AdditiveFit:
    """``e_s ≈ intercept + Σ_r maps[r] @ a_r(label_r(s))``: ``intercept`` [d], ``maps`` [K, d, d_a].

    ``alpha`` is the ridge penalty used, ``kind`` names the attribute vectors (``"unembedding"``,
    ``"embedding"``, ``"codes"`` or ``"given"``).
    """

    intercept: np.ndarray
    maps: np.ndarray
    alpha: float
    kind: str

    def predict(self, labels: np.ndarray, attr: np.ndarray) -> np.ndarray:
        """Embeddings of subjects with attributes ``labels`` [K, N'] (vectors ``attr`` [K, A, d_a]): ``[N', d]``."""
        k_rel, _, d_a = self.maps.shape
        lab = np.asarray(labels)
        if lab.ndim != 2 or lab.shape[0] != k_rel:
            raise ValueError(f"labels must be [K = {k_rel}, N'], got shape {lab.shape}")
        vec = _check_vectors(attr, k_rel, what="attr")
        if vec.shape[2] != d_a:
            raise ValueError(f"attr vectors have width {vec.shape[2]}, the fit's maps take d_a = {d_a}")
        if lab.shape[1] == 0:
            return np.broadcast_to(self.intercept, (0, self.intercept.shape[0])).copy()
        lab = _check_labels(lab, lab.shape[1], vec.shape[1])
        return self.intercept + sum(self.component(r, vec[r, lab[r]]) for r in range(k_rel))

    def component(self, r: int, vectors: np.ndarray) -> np.ndarray:
        """Relation r's term ``vectors @ M_r^T``: ``[n, d_a] -> [n, d]``."""
        v = np.asarray(vectors, dtype=np.float64)
        if v.ndim != 2 or v.shape[1] != self.maps.shape[2]:
            raise ValueError(f"vectors must be [n, d_a = {self.maps.shape[2]}], got shape {v.shape}")
        return v @ self.maps[r].T


@dataclass(frozen=True)
class AdditiveScore:
    """Held-out R² (``r2``) over ``n_folds`` subject folds, in-sample R² and penalty of the fit on all subjects."""

    r2: float
    in_sample_r2: float
    alpha: float
    fold_alphas: list[float]
    n_folds: int
    n_subjects: int


@dataclass(frozen=True)
class AdditiveControls:
    """The additive score on the true maps and with every ``f_r`` replaced by an unrelated random bijection."""

    true: AdditiveScore
    random_bijection: AdditiveScore


def _features(labels: np.ndarray, attr: np.ndarray) -> np.ndarray:
    """``[a_0(label_0(s)), ..., a_{K-1}(label_{K-1}(s))]``: ``[N, K d_a]``."""
    return np.concatenate([attr[r, labels[r]] for r in range(labels.shape[0])], axis=1)


def _check_additive(embeddings, labels, attr) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    y = _check_embeddings(embeddings)
    vec = np.asarray(attr)
    if vec.ndim != 3:
        raise ValueError(f"attr must be a 3-d array [K, A, d_a], got shape {vec.shape}")
    lab = _check_labels(labels, y.shape[0], vec.shape[1])
    return y, lab, _check_vectors(vec, lab.shape[0], what="attr")


def _fit(y: np.ndarray, lab: np.ndarray, vec: np.ndarray, alphas: np.ndarray, kind: str) -> AdditiveFit:
    coef, intercept, alpha = _ridge(_features(lab, vec), y, alphas)  # coef [K d_a, d]
    k_rel, _, d_a = vec.shape
    maps = coef.T.reshape(y.shape[1], k_rel, d_a).transpose(1, 0, 2)  # [K, d, d_a]
    return AdditiveFit(intercept=intercept, maps=np.ascontiguousarray(maps), alpha=alpha, kind=kind)


def fit_additive(embeddings: np.ndarray, labels: np.ndarray, attr: np.ndarray, *, alpha: float | None = None,
                 alphas: np.ndarray | list[float] = DEFAULT_ALPHAS, kind: str = "given", seed: int = 0) -> AdditiveFit:
    """Ridge regression of ``e_s`` on ``[a_0(label_0(s)), ..., a_{K-1}(label_{K-1}(s))]`` with an intercept.

    ``embeddings`` [N, d]; ``labels`` [K, N] ints in ``[0, A)``; ``attr`` [K, A, d_a]. ``alpha=None``
    picks the penalty from ``alphas`` by leave-one-out CV over subjects (exact, deterministic: ``seed`` is
    accepted for a uniform signature and unused). Features are not standardised, so the returned maps act on
    raw attribute vectors.
    """
    del seed
    y, lab, vec = _check_additive(embeddings, labels, attr)
    grid = _check_alphas(alphas if alpha is None else [alpha])
    return _fit(y, lab, vec, grid, kind)


def additive_r2(embeddings: np.ndarray, labels: np.ndarray, attr: np.ndarray, *, n_folds: int = 5, seed: int = 0,
                alpha: float | None = None, alphas: np.ndarray | list[float] = DEFAULT_ALPHAS) -> AdditiveScore:
    """Held-out R² of :func:`fit_additive` over ``n_folds`` seeded folds of subjects, and its in-sample R²."""
    y, lab, vec = _check_additive(embeddings, labels, attr)
    grid = _check_alphas(alphas if alpha is None else [alpha])
    sse = sst = 0.0
    fold_alphas = []
    for test in subject_folds(y.shape[0], n_folds, seed):
        train = np.setdiff1d(np.arange(y.shape[0]), test)
        fit = _fit(y[train], lab[:, train], vec, grid, "given")
        pred = fit.predict(lab[:, test], vec)
        sse += float(((y[test] - pred) ** 2).sum())
        sst += float(((y[test] - y[train].mean(0)) ** 2).sum())
        fold_alphas.append(fit.alpha)
    full = _fit(y, lab, vec, grid, "given")
    return AdditiveScore(r2=1.0 - sse / sst if sst > 0 else float("nan"),
                         in_sample_r2=_r2(y, full.predict(lab, vec), y.mean(0)), alpha=full.alpha,
                         fold_alphas=fold_alphas, n_folds=n_folds, n_subjects=y.shape[0])


def additive_with_control(embeddings: np.ndarray, maps: np.ndarray, attr: np.ndarray, *, seed: int = 0,
                          n_folds: int = 5) -> AdditiveControls:
    """:func:`additive_r2` on the true ``maps`` [K, N] and on unrelated random bijections drawn from ``seed``."""
    y, lab, vec = _check_additive(embeddings, maps, attr)
    control = control_labels(lab, vec.shape[1], seed)["random_bijection"]
    return AdditiveControls(true=additive_r2(y, lab, vec, n_folds=n_folds, seed=seed),
                            random_bijection=additive_r2(y, control, vec, n_folds=n_folds, seed=seed))


# ---------------------------------------------------------------------------------------------------
# Fitted codes


@dataclass(frozen=True, eq=False)
class CodesFit:
    """Fitted codes and maps: ``e_s ≈ fit.intercept + Σ_r fit.maps[r] @ codes[r, f_r(s)]``.

    ``codes`` [K, A, c] (every relation's table the same when ``shared``); ``fitted`` [K, A] is True where
    the code was learnt from some training subject (the others are the zero vector); ``loss`` the training
    mean squared error after each iteration.
    """

    fit: AdditiveFit
    codes: np.ndarray
    fitted: np.ndarray
    shared: bool
    loss: list[float]

    def predict(self, labels: np.ndarray) -> np.ndarray:
        """Embeddings ``[N', d]`` of subjects with attributes ``labels`` [K, N']."""
        return self.fit.predict(labels, self.codes)


@dataclass(frozen=True)
class CodesScore:
    """Held-out R² of codes learnt on the training subjects, in-sample R², and how many held-out lookups
    ``(s, r)`` met a code never fitted (predicted with the zero vector) out of ``n_lookups``; ``fold_losses``:
    each fold's final training mean squared error (a fold far above the others stalled)."""

    r2: float
    in_sample_r2: float
    fold_losses: list[float]
    n_unfitted: int
    n_lookups: int
    code_dim: int
    n_folds: int
    n_subjects: int


def fit_codes(embeddings: np.ndarray, maps: np.ndarray, *, code_dim: int, n_attributes: int | None = None,
              shared: bool = True, alpha: float = 1e-3, n_iter: int = 50, n_restarts: int = 2,
              init: str = "spectral", seed: int = 0) -> CodesFit:
    """Codes ``Z`` and maps ``M_r`` [d, c] with ``e_s ≈ b + Σ_r M_r Z[f_r(s)]``, by alternating ridge least squares.

    ``embeddings`` [N, d]; ``maps`` [K, N] ints in ``[0, A)`` (``A = n_attributes``, default ``maps.max() + 1``).
    ``shared``: one table ``Z`` [A, c] for every relation (shared-attribute worlds), else one per relation.
    Each of ``n_iter`` iterations solves the maps and intercept given the codes, then the codes given the
    maps (both ridge); a last map step follows. The code step solves the normal equations of all ``A c``
    unknowns at once (``O((A c)^3)``). The fit runs on the embeddings divided by their RMS deviation (the
    returned maps and intercept are scaled back; ``alpha`` is in those units), and the penalty anneals
    geometrically from ``N`` to ``alpha`` over the first half of the iterations: plain ALS on this bilinear
    problem often stalls in a poor local minimum, the annealed one rarely. ``n_restarts`` runs are
    made and the lowest final training loss is kept: the first from ``init`` (``"spectral"``: the top-c
    left singular vectors of the back-projection ``Σ_s [f_r(s) = a] (e_s - ē)`` arranged ``[A, K d]``;
    ``"random"``: a seeded standard normal), the others from seeded standard normals (restart i from
    ``(seed, i)``).
    """
    y = _check_embeddings(embeddings)
    lab = _check_labels(maps, y.shape[0], n_attributes, what="maps")
    if code_dim < 1 or n_iter < 1 or n_restarts < 1 or not alpha > 0:
        raise ValueError("need code_dim >= 1, n_iter >= 1, n_restarts >= 1 and alpha > 0, "
                         f"got {code_dim}, {n_iter}, {n_restarts}, {alpha}")
    if init not in ("spectral", "random"):
        raise ValueError(f"init must be 'spectral' or 'random', got {init!r}")
    n_attr = int(lab.max()) + 1 if n_attributes is None else int(n_attributes)
    k_rel, n, c = lab.shape[0], y.shape[0], code_dim
    scale = float(np.sqrt(((y - y.mean(0)) ** 2).mean())) or 1.0
    y = y / scale
    idx = lab if shared else lab + n_attr * np.arange(k_rel)[:, None]  # [K, N] row of the code table
    n_codes = n_attr if shared else k_rel * n_attr
    onehot = np.zeros((k_rel, n, n_codes))
    onehot[np.arange(k_rel)[:, None], np.arange(n)[None, :], idx] = 1.0
    counts = np.einsum("rsa,tsb->rtab", onehot, onehot)  # [K, K, n_codes, n_codes]
    fitted = onehot.sum((0, 1)) > 0
    blocks = [np.arange(n_codes)] if shared else [r * n_attr + np.arange(n_attr) for r in range(k_rel)]
    lam0, half = max(float(alpha), ANNEAL_START * n), max(1, n_iter // 2)
    penalties = [max(float(alpha), lam0 * (alpha / lam0) ** (it / half)) for it in range(n_iter)]

    def table(z: np.ndarray) -> np.ndarray:
        return np.broadcast_to(z, (k_rel, n_codes, c))

    def start(i: int) -> np.ndarray:
        z = np.random.default_rng(np.random.SeedSequence([int(seed), CODES_STREAM, i])).standard_normal((n_codes, c))
        if i == 0 and init == "spectral":
            back = np.einsum("rsa,sd->ard", onehot, y - y.mean(0))  # [n_codes, K, d]
            for rows in blocks:
                u = np.linalg.svd(back[rows].reshape(len(rows), -1), full_matrices=False)[0]
                z[rows, :min(c, u.shape[1])] = u[:, :c] * np.sqrt(len(rows))
        return z

    def run(z: np.ndarray) -> tuple[AdditiveFit, np.ndarray, list[float]]:
        loss = []
        for lam in penalties:
            fit = _fit(y, idx, table(z), np.array([lam]), "codes")
            resid = y - fit.intercept  # [N, d]
            mtm = np.einsum("rdi,tdj->rtij", fit.maps, fit.maps)  # [K, K, c, c]
            normal = np.einsum("rtab,rtij->aibj", counts, mtm).reshape(n_codes * c, n_codes * c)
            rhs = np.einsum("rsa,rsi->ai", onehot, np.einsum("sd,rdi->rsi", resid, fit.maps)).reshape(-1)
            z = np.linalg.solve(normal + lam * np.eye(n_codes * c), rhs).reshape(n_codes, c)
            z[~fitted] = 0.0
            loss.append(float(((y - fit.predict(idx, table(z))) ** 2).mean()) * scale ** 2)
        return _fit(y, idx, table(z), np.array([float(alpha)]), "codes"), z, loss

    fit, z, loss = min((run(start(i)) for i in range(n_restarts)), key=lambda out: out[2][-1])
    fit = AdditiveFit(intercept=fit.intercept * scale, maps=fit.maps * scale, alpha=float(alpha), kind="codes")
    codes = np.broadcast_to(z, (k_rel, n_attr, c)).copy() if shared else z.reshape(k_rel, n_attr, c)
    mask = np.broadcast_to(fitted, (k_rel, n_attr)).copy() if shared else fitted.reshape(k_rel, n_attr)
    return CodesFit(fit=fit, codes=codes, fitted=mask, shared=shared, loss=loss)


def codes_r2(embeddings: np.ndarray, maps: np.ndarray, *, code_dim: int, n_folds: int = 5, seed: int = 0,
             n_attributes: int | None = None, shared: bool = True, alpha: float = 1e-3, n_iter: int = 50,
             n_restarts: int = 2, init: str = "spectral") -> CodesScore:
    """Held-out R² of :func:`fit_codes`: held-out subjects are predicted from codes and maps learnt on the
    training subjects of each of ``n_folds`` seeded folds (unfitted codes are zero; counted in ``n_unfitted``)."""
    y = _check_embeddings(embeddings)
    lab = _check_labels(maps, y.shape[0], n_attributes, what="maps")
    n_attr = int(lab.max()) + 1 if n_attributes is None else int(n_attributes)
    kw = {"code_dim": code_dim, "n_attributes": n_attr, "shared": shared, "alpha": alpha, "n_iter": n_iter,
          "n_restarts": n_restarts, "init": init, "seed": seed}
    sse = sst = 0.0
    unfitted, losses = 0, []
    for test in subject_folds(y.shape[0], n_folds, seed):
        train = np.setdiff1d(np.arange(y.shape[0]), test)
        fit = fit_codes(y[train], lab[:, train], **kw)
        losses.append(fit.loss[-1])
        pred = fit.predict(lab[:, test])
        unfitted += int((~fit.fitted[np.arange(lab.shape[0])[:, None], lab[:, test]]).sum())
        sse += float(((y[test] - pred) ** 2).sum())
        sst += float(((y[test] - y[train].mean(0)) ** 2).sum())
    full = fit_codes(y, lab, **kw)
    return CodesScore(r2=1.0 - sse / sst if sst > 0 else float("nan"),
                      in_sample_r2=_r2(y, full.predict(lab), y.mean(0)), fold_losses=losses, n_unfitted=unfitted,
                      n_lookups=lab.size, code_dim=code_dim, n_folds=n_folds, n_subjects=y.shape[0])
