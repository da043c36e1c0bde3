"""What in georecall is our own derivation rather than the paper's (the report's "Known deviations").

Written from "What comes from the paper and what is ours" in the theory note; each entry points to the
section of ``docs/theory.md`` (same numbering as the note) that gives the details. Plain strings, so the
report shows them verbatim in Markdown and HTML.
"""

from __future__ import annotations

#: One sentence per deviation, each ending with where ``docs/theory.md`` explains it.
DEVIATIONS: tuple[str, ...] = (
    "Our copy of the paper lost its formulas and stops in the middle of the chain-of-thought section: only the "
    "kind of each result survives, so every precise statement tested here is our restatement of a result of the "
    "same kind (docs/theory.md §2.1, §4, §5, §6.2).",
    "The constants, residual-stream layouts, widths and parameter counts of the constructions are our own "
    "derivation, not the paper's (docs/theory.md §1.4, §2, §4).",
    "The one-layer chain-of-thought construction (both the interleaved and the question-first format) is our own "
    "construction: the paper's is not recoverable (docs/theory.md §5).",
    "The disjoint-attribute setting (the paper's Appendix F) is lost; its two constructions here are ours "
    "(docs/theory.md §3).",
    "The proofs, and the lower-bound formulas with their global and local constraints and three regimes, are our "
    "own derivation (docs/theory.md §6.2, §6.3, §6.4).",
    "The single-hop selector needs only a one-hidden-layer MLP, where the paper speaks of a \"3-layer MLP\"; the "
    "3-layer variant is given too (docs/theory.md §2.2).",
    "The lower bound is stated for models whose readout (unembedding) is fixed before the facts are drawn, or whose "
    "readout bits are counted: an untied learned readout can hold every fact, and a tied readout escapes the local "
    "constraint; the paper does not name the readout (docs/theory.md §6.5).",
    "Our global count is stronger than factoring out a common right translation: it vanishes only at about "
    "K log2(N/e) bits per subject for every k, not (K-1) log2(N/e) (docs/theory.md §6.3).",
)
