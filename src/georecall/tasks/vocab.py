"""The token layout: which id is which subject, relation or attribute (docs/theory.md §1.1)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Vocab:
    """Token ids of a world, in one place.

    Layout (no BOS or separator token; no construction needs one)::

        [0, N)                 subject s                      -> id s
        [N, N + K)             relation r                     -> id N + r
        [N + K, N + K + K*A)   attribute a of relation r      -> id N + K + r*A + a   (disjoint only)

    In the shared setting attributes *are* subjects (attribute a of any relation is token a), which
    is what lets chains compose. In the disjoint setting (docs/theory.md §3) each relation owns A attribute
    tokens.
    """

    n_subjects: int
    n_relations: int
    attributes: Literal["shared", "disjoint"] = "shared"
    n_attributes: int | None = None  # per relation; None = n_subjects

    @property
    def attributes_per_relation(self) -> int:
        return self.n_subjects if self.n_attributes is None else self.n_attributes

    @property
    def d_vocab(self) -> int:
        extra = self.n_relations * self.attributes_per_relation if self.attributes == "disjoint" else 0
        return self.n_subjects + self.n_relations + extra

    def subject(self, s: int) -> int:
        if not 0 <= s < self.n_subjects:
            raise ValueError(f"subject {s} out of range [0, {self.n_subjects})")
        return s

    def relation(self, r: int) -> int:
        if not 0 <= r < self.n_relations:
            raise ValueError(f"relation {r} out of range [0, {self.n_relations})")
        return self.n_subjects + r

    def attribute(self, r: int, a: int) -> int:
        """Token of attribute ``a`` of relation ``r`` (the subject token ``a`` when attributes are shared)."""
        self.relation(r)
        if not 0 <= a < self.attributes_per_relation:
            raise ValueError(f"attribute {a} out of range [0, {self.attributes_per_relation})")
        if self.attributes == "shared":
            return a
        return self.n_subjects + self.n_relations + r * self.attributes_per_relation + a

    @property
    def attribute_offset(self) -> int:
        """Id of attribute 0 of relation 0 (0 when attributes are shared)."""
        return 0 if self.attributes == "shared" else self.n_subjects + self.n_relations

    def decode(self, token: int) -> tuple[str, int] | tuple[str, int, int]:
        """``("subject", s)``, ``("relation", r)`` or ``("attribute", r, a)`` for a token id."""
        if not 0 <= token < self.d_vocab:
            raise ValueError(f"token {token} out of range [0, {self.d_vocab})")
        if token < self.n_subjects:
            return ("subject", token)
        if token < self.n_subjects + self.n_relations:
            return ("relation", token - self.n_subjects)
        r, a = divmod(token - self.n_subjects - self.n_relations, self.attributes_per_relation)
        return ("attribute", r, a)

    def describe(self) -> str:
        """One line per token range, for logs and docs."""
        n, k = self.n_subjects, self.n_relations
        lines = [f"subjects   0..{n - 1}", f"relations  {n}..{n + k - 1}"]
        if self.attributes == "disjoint":
            a = self.attributes_per_relation
            lines.append(f"attributes {n + k}..{n + k + k * a - 1} (relation r, attribute a -> {n + k} + r*{a} + a)")
        else:
            lines.append("attributes = subjects (shared)")
        return "\n".join(lines)
