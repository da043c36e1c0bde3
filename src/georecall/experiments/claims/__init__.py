"""The paper's claims as criteria written before the run: pure functions of saved result payloads.

Torch-free (the report imports it). A :class:`Claim` names the experiments whose payloads it reads;
its ``decide`` function gets ``{experiment_id: payload}`` (the ``payload`` part of each
``result.json`` envelope) and returns a :class:`Decision`: one of :data:`VERDICTS` and the numbers
that decided it. A claim with ``decide=None`` has no experiment yet and is reported ``not tested``
with ``tested_by`` saying what will test it.

Verdicts, in the paper's own terms:

* ``reproduced``: the criterion holds in full (direction, size and scope);
* ``partly``: the direction holds but the size or the scope does not (stated in ``reason``);
* ``not reproduced``: the direction does not hold, or the evidence contradicts the claim;
* ``not tested``: no experiment for it yet, or its experiment was not run (``--only``).

Criteria are code, reviewed like code, and never tuned to an outcome: change one only with a reason
in the commit message, and never after looking at the run it will judge.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Verdict = Literal["reproduced", "partly", "not reproduced", "not tested"]
VERDICTS: tuple[str, ...] = ("reproduced", "partly", "not reproduced", "not tested")

Payloads = Mapping[str, Mapping[str, Any]]


@dataclass(frozen=True)
class Decision:
    """A criterion's answer: the verdict, the numbers that decided it, and one sentence why."""

    verdict: str  # one of VERDICTS
    numbers: dict[str, Any]  # plain JSON: every number the criterion compared
    reason: str  # one sentence a reader can check against ``numbers``

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")


@dataclass(frozen=True)
class Claim:
    """One claim of the paper and the criterion that decides it."""

    id: str  # "C1" ... "C13"
    statement: str  # the claim in one sentence, the paper's words where it has them
    paper_ref: str  # where the paper makes it, e.g. "Theorem 4.1, §4.1"
    criterion: str  # the criterion in words (what ``decide`` computes), written before the run
    experiments: tuple[str, ...] = ()  # experiment ids whose payloads ``decide`` reads
    decide: Callable[[Payloads], Decision] | None = None  # None: not tested yet
    tested_by: str = ""  # for an untested claim: what will test it (an issue, an experiment id)
    figures: tuple[str, ...] = ()  # "<experiment>/<file>.png" shown beside the claim in the report


@dataclass(frozen=True)
class ClaimResult:
    """A claim with its decision, as the report shows it."""

    claim: Claim
    decision: Decision
    missing: tuple[str, ...] = field(default=())  # experiments the claim needs that have no result


def evaluate(claim: Claim, payloads: Payloads) -> ClaimResult:
    """Apply ``claim``'s criterion to the payloads it needs; ``not tested`` when any is missing."""
    if claim.decide is None:
        return ClaimResult(claim, Decision("not tested", {}, f"no experiment yet: {claim.tested_by}"))
    missing = tuple(e for e in claim.experiments if e not in payloads)
    if missing:
        return ClaimResult(claim, Decision("not tested", {}, f"not run here: {', '.join(missing)}"), missing)
    return ClaimResult(claim, claim.decide({e: payloads[e] for e in claim.experiments}))


#: Modules that declare claims (each has ``CLAIMS: tuple[Claim, ...]``), torch-free.
_CLAIM_MODULES: tuple[str, ...] = (
    "georecall.experiments.claims.constructions",
    "georecall.experiments.claims.threshold",
    "georecall.experiments.claims.frozen_control",
    "georecall.experiments.claims.multihop",
    "georecall.experiments.claims.mechanism",
    "georecall.experiments.claims.real_lm",
)


def all_claims() -> tuple[Claim, ...]:
    """Every claim, sorted by number (C1 ... C13); ids are unique."""
    claims: list[Claim] = []
    for name in _CLAIM_MODULES:
        claims.extend(importlib.import_module(name).CLAIMS)
    ids = [c.id for c in claims]
    if len(set(ids)) != len(ids):
        raise RuntimeError(f"duplicate claim ids: {sorted(ids)}")
    return tuple(sorted(claims, key=lambda c: (len(c.id), c.id)))


def evaluate_all(payloads: Payloads) -> list[ClaimResult]:
    """Every claim decided on ``payloads`` (experiment id -> payload)."""
    return [evaluate(c, payloads) for c in all_claims()]
