"""Closed-form bounds and thresholds: Theorem 4.2's lower bound and the constructions' costs (docs/theory.md §6, §8).

Pure Python; imports nothing from georecall but this package. Figures live in
:mod:`georecall.theory.figures` (matplotlib only) and are not imported here.
"""

from georecall.theory.bound import (
    CONSTRUCTIONS,
    CONVENTIONS,
    READOUTS,
    BoundCheck,
    BoundResult,
    CostResult,
    check_against_bound,
    code_length,
    construction_cost,
    gamma_global,
    gamma_local,
    information_bits,
    local_term,
    log2_factorial,
    log2_n_maps,
    nodes,
    required_bits,
)

__all__ = [
    "CONSTRUCTIONS",
    "CONVENTIONS",
    "READOUTS",
    "BoundCheck",
    "BoundResult",
    "CostResult",
    "check_against_bound",
    "code_length",
    "construction_cost",
    "gamma_global",
    "gamma_local",
    "information_bits",
    "local_term",
    "log2_factorial",
    "log2_n_maps",
    "nodes",
    "required_bits",
]
