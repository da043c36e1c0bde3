"""Real facts for probing a pretrained language model: the packaged country set and CSVs of the same shape.

A fact set is a table: one row per subject (a country), one column per relation (capital, continent, language,
currency). Each relation has a prompt template after which the attribute follows ("The capital of {subject} is"),
and the set has one neutral prompt that names no relation and ends with the subject, so that hidden states at the
subject's last token can be read without a relation cue.

The CSV format: optional comment lines starting with ``#`` (the source and notes), then a header whose first column
is ``subject`` and whose other columns are the relations, then one row per subject. Values are taken verbatim
(stripped of surrounding whitespace).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

__all__ = ["DEFAULT_TEMPLATES", "NEUTRAL_TEMPLATE", "FactSet", "load_facts", "packaged_facts_path"]

PACKAGED_CSV = "countries.csv"

# Relation -> a prompt after which the attribute follows (the model's continuation starts with a space).
DEFAULT_TEMPLATES: dict[str, str] = {
    "capital": "The capital of {subject} is",
    "continent": "{subject} is a country in the continent of",
    "language": "The official language of {subject} is",
    "currency": "The currency of {subject} is the",
}
# Names no relation and ends with the subject.
NEUTRAL_TEMPLATE = "Here is the name of a country: {subject}"
GENERIC_TEMPLATE = "The {relation} of {subject} is"


@dataclass(frozen=True)
class FactSet:
    """Subjects and their attributes, one tuple of values per relation aligned with ``subjects``."""

    subjects: tuple[str, ...]
    relations: tuple[str, ...]
    values: dict[str, tuple[str, ...]]
    templates: dict[str, str]
    neutral: str
    source: str

    def __post_init__(self):
        n = len(self.subjects)
        for r in self.relations:
            if r not in self.values or len(self.values[r]) != n:
                raise ValueError(f"relation {r!r} needs {n} values, one per subject")
            if r not in self.templates or "{subject}" not in self.templates[r]:
                raise ValueError(f"relation {r!r} needs a template containing '{{subject}}'")
        if not self.neutral.endswith("{subject}"):
            raise ValueError(f"the neutral prompt must end with '{{subject}}', got {self.neutral!r}")

    @property
    def n_subjects(self) -> int:
        return len(self.subjects)

    @property
    def n_facts(self) -> int:
        """N subjects x K relations."""
        return len(self.subjects) * len(self.relations)

    def labels(self) -> tuple[np.ndarray, dict[str, tuple[str, ...]]]:
        """``(y [K, N] int64, names)``: ``y[k, i]`` indexes ``names[relations[k]]``, the sorted unique attributes."""
        names = {r: tuple(sorted(set(self.values[r]))) for r in self.relations}
        y = np.empty((len(self.relations), len(self.subjects)), dtype=np.int64)
        for k, r in enumerate(self.relations):
            index = {v: j for j, v in enumerate(names[r])}
            y[k] = [index[v] for v in self.values[r]]
        return y, names

    def subset(self, n: int, *, seed: int) -> FactSet:
        """A seeded sample of ``n`` subjects (without replacement), kept in their original order."""
        if not 2 <= n <= len(self.subjects):
            raise ValueError(f"subset size must be in [2, {len(self.subjects)}], got {n}")
        keep = np.sort(np.random.default_rng(seed).choice(len(self.subjects), size=n, replace=False))
        return FactSet(
            subjects=tuple(self.subjects[i] for i in keep),
            relations=self.relations,
            values={r: tuple(self.values[r][i] for i in keep) for r in self.relations},
            templates=dict(self.templates),
            neutral=self.neutral,
            source=f"{self.source} (subset of {n}, seed {seed})",
        )

    def prompt(self, relation: str, i: int) -> str:
        """The prompt for subject ``i`` and ``relation``; the attribute is its continuation."""
        if relation not in self.templates:
            raise KeyError(f"unknown relation {relation!r}; this fact set has {list(self.relations)}")
        return self.templates[relation].format(subject=self.subjects[i])

    def neutral_prompt(self, i: int) -> str:
        """A prompt naming subject ``i`` last and no relation."""
        return self.neutral.format(subject=self.subjects[i])

    def value(self, relation: str, i: int) -> str:
        return self.values[relation][i]


def packaged_facts_path() -> str:
    """Where the packaged country CSV is (for messages; it is read through importlib.resources)."""
    return str(resources.files("georecall").joinpath("data", PACKAGED_CSV))


def load_facts(path: str | Path | None = None) -> FactSet:
    """The packaged country fact set, or a CSV of the same shape (``subject`` first, then any relation columns).

    Raises ValueError naming the file and row for a missing column, an empty value, a duplicate subject or fewer
    than two subjects; FileNotFoundError for a missing file.
    """
    if path is None:
        text = resources.files("georecall").joinpath("data", PACKAGED_CSV).read_text(encoding="utf-8")
        where = f"georecall/data/{PACKAGED_CSV}"
    else:
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"fact CSV {str(p)!r} does not exist")
        text = p.read_text(encoding="utf-8-sig")
        where = str(p)
    return _parse(text, where)


def _parse(text: str, where: str) -> FactSet:
    lines = text.splitlines()
    comments = [ln.lstrip("#").strip() for ln in lines if ln.lstrip().startswith("#")]
    # Keep line numbers: blank out comment lines rather than drop them.
    body = "\n".join("" if ln.lstrip().startswith("#") else ln for ln in lines)
    reader = csv.reader(io.StringIO(body))
    header: list[str] | None = None
    rows: list[tuple[int, list[str]]] = []
    for row in reader:
        if not row or all(not c.strip() for c in row):
            continue
        if header is None:
            header = [c.strip() for c in row]
            header_line = reader.line_num
            continue
        rows.append((reader.line_num, [c.strip() for c in row]))
    if header is None:
        raise ValueError(f"{where}: no header line (expected 'subject,<relation>,...')")
    if not header or header[0] != "subject":
        raise ValueError(f"{where}: line {header_line}: the first column must be 'subject', got {header[:1]}")
    relations = header[1:]
    if not relations:
        raise ValueError(f"{where}: line {header_line}: missing columns: no relation column after 'subject'")
    empty = [c for c in relations if not c]
    dupes = sorted({c for c in relations if relations.count(c) > 1 or c == "subject"})
    if empty or dupes:
        raise ValueError(f"{where}: line {header_line}: bad header: empty or repeated column names {dupes or ['']}")
    seen: dict[str, int] = {}
    subjects: list[str] = []
    values: dict[str, list[str]] = {r: [] for r in relations}
    for line, cells in rows:
        if len(cells) != len(header):
            raise ValueError(f"{where}: line {line}: expected {len(header)} columns ({','.join(header)}), "
                             f"got {len(cells)}")
        for name, cell in zip(header, cells, strict=True):
            if not cell:
                raise ValueError(f"{where}: line {line}: empty value in column {name!r}")
        subject = cells[0]
        if subject in seen:
            raise ValueError(f"{where}: line {line}: duplicate subject {subject!r} (first on line {seen[subject]})")
        seen[subject] = line
        subjects.append(subject)
        for r, cell in zip(relations, cells[1:], strict=True):
            values[r].append(cell)
    if len(subjects) < 2:
        raise ValueError(f"{where}: needs at least 2 subjects, got {len(subjects)}")
    templates = {r: DEFAULT_TEMPLATES.get(r, GENERIC_TEMPLATE.replace("{relation}", r.replace("_", " ")))
                 for r in relations}
    source = next((c for c in comments if c.lower().startswith("source")), "")
    return FactSet(
        subjects=tuple(subjects),
        relations=tuple(relations),
        values={r: tuple(v) for r, v in values.items()},
        templates=templates,
        neutral=NEUTRAL_TEMPLATE,
        source=f"{where}: {source}" if source else where,
    )
