"""Hand-built models of the theory's theorems, as exact weights in georecall's own model class."""

from georecall.constructions.base import (
    Anatomy,
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
from georecall.constructions.registry import CONSTRUCTIONS, Recipe, build_construction

__all__ = [
    "CONSTRUCTIONS",
    "Recipe",
    "build_construction",
    "Anatomy",
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
