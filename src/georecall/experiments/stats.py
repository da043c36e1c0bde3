"""Small statistics shared by the experiments: the majority rule over seeds and a least-squares line."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np


def is_majority(successes: int, total: int) -> bool:
    """A strict majority: ``2 * successes > total`` (2 of 3, 2 of 2, 3 of 5)."""
    if total < 1 or not 0 <= successes <= total:
        raise ValueError(f"need 0 <= successes <= total and total >= 1, got {successes}/{total}")
    return 2 * successes > total


def majority_success(accuracies: Sequence[float | None], target: float, *, tol: float = 0.0) -> bool:
    """True when a strict majority of the seeds reached ``target - tol``; a failed run (None) is a miss."""
    if not accuracies:
        return False
    hits = sum(1 for a in accuracies if a is not None and a >= target - tol)
    return is_majority(hits, len(accuracies))


def fit_line(x: Sequence[float], y: Sequence[float]) -> dict[str, Any]:
    """Least squares ``y = intercept + slope x``: slope, intercept, OLS standard error of the slope, r2, n.

    Needs >= 2 points with distinct x; ``stderr`` is None with fewer than 3 points (no residual dof);
    ``r2`` is 1.0 when y is constant (the line explains all of nothing).
    """
    xa, ya = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    n = len(xa)
    if n != len(ya) or n < 2:
        raise ValueError(f"fit_line needs >= 2 (x, y) pairs of equal length, got {n} and {len(ya)}")
    if not (np.all(np.isfinite(xa)) and np.all(np.isfinite(ya))):
        raise ValueError("fit_line needs finite values")
    sxx = float(((xa - xa.mean()) ** 2).sum())
    if sxx <= 0:
        raise ValueError(f"fit_line needs at least two distinct x values, got {xa.tolist()}")
    slope = float(((xa - xa.mean()) * (ya - ya.mean())).sum() / sxx)
    intercept = float(ya.mean() - slope * xa.mean())
    resid = ya - (intercept + slope * xa)
    sst = float(((ya - ya.mean()) ** 2).sum())
    r2 = 1.0 - float((resid ** 2).sum()) / sst if sst > 0 else 1.0
    stderr = math.sqrt(float((resid ** 2).sum()) / (n - 2) / sxx) if n > 2 else None
    return {"slope": slope, "intercept": intercept, "stderr": stderr, "r2": r2, "n": n}
