"""Hand-built models of THEORY's theorems, as exact weights in georecall's own model class."""

from georecall.constructions.base import (
    Construction,
    ConstructionScore,
    Layout,
    bits,
    check_precision,
    make_counts,
    n_bits,
    score_construction,
    signs,
    zero_model,
)

__all__ = [
    "Construction",
    "ConstructionScore",
    "Layout",
    "bits",
    "check_precision",
    "make_counts",
    "n_bits",
    "score_construction",
    "signs",
    "zero_model",
]
