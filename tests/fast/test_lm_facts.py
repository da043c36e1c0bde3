"""The packaged country fact set and CSVs of the same shape: contents, labels, subsets and clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from georecall.lm import FactSet, load_facts
from georecall.lm.facts import DEFAULT_TEMPLATES, NEUTRAL_TEMPLATE

CONTINENTS = {"Africa", "Asia", "Europe", "North America", "South America", "Oceania"}


@pytest.fixture(scope="module")
def facts() -> FactSet:
    return load_facts()


def test_packaged_set_is_complete(facts):
    assert facts.n_subjects >= 190
    assert facts.relations == ("capital", "continent", "language", "currency")
    assert facts.n_facts == facts.n_subjects * 4
    assert len(set(facts.subjects)) == facts.n_subjects
    for r in facts.relations:
        assert len(facts.values[r]) == facts.n_subjects
        assert all(v and v == v.strip() for v in facts.values[r]), r
    assert set(facts.values["continent"]) == CONTINENTS
    assert "CIA World Factbook" in facts.source and "spot-checked" in facts.source
    # Capitals are distinct (no copy-paste slips), and multi-word subjects are there alongside one-word ones.
    assert len(set(facts.values["capital"])) == facts.n_subjects
    assert "France" in facts.subjects and "Burkina Faso" in facts.subjects


KNOWN = [
    ("France", "capital", "Paris"), ("Japan", "capital", "Tokyo"), ("Brazil", "capital", "Brasília"),
    ("Australia", "capital", "Canberra"), ("Turkey", "capital", "Ankara"), ("Kenya", "continent", "Africa"),
    ("Germany", "currency", "euro"), ("Japan", "currency", "yen"), ("Brazil", "language", "Portuguese"),
    ("United States", "currency", "United States dollar"), ("United States", "capital", "Washington, D.C."),
    ("Canada", "continent", "North America"), ("Peru", "continent", "South America"),
    ("New Zealand", "continent", "Oceania"), ("Russia", "continent", "Europe"), ("Egypt", "language", "Arabic"),
]


@pytest.mark.parametrize(("subject", "relation", "value"), KNOWN)
def test_known_facts(facts, subject, relation, value):
    assert facts.value(relation, facts.subjects.index(subject)) == value


def test_currency_unions_match_their_members(facts):
    """Cross-checks of the data against memberships known independently of the per-country rows."""
    def having(relation, value):
        return {s for s, v in zip(facts.subjects, facts.values[relation], strict=True) if v == value}

    assert having("currency", "West African CFA franc") == {  # the eight WAEMU members
        "Benin", "Burkina Faso", "Guinea-Bissau", "Ivory Coast", "Mali", "Niger", "Senegal", "Togo"}
    assert having("currency", "Central African CFA franc") == {  # the six CEMAC members
        "Cameroon", "Central African Republic", "Chad", "Republic of the Congo", "Equatorial Guinea", "Gabon"}
    assert having("currency", "East Caribbean dollar") == {
        "Antigua and Barbuda", "Dominica", "Grenada", "Saint Kitts and Nevis", "Saint Lucia",
        "Saint Vincent and the Grenadines"}
    assert len(having("currency", "euro")) == 21 + 4  # the euro area in 2026 (with Bulgaria) and four others
    counts = {c: len(having("continent", c)) for c in CONTINENTS}
    assert counts == {"Africa": 54, "Asia": 46, "Europe": 44, "North America": 23, "South America": 12,
                      "Oceania": 14}


def test_prompts(facts):
    i = facts.subjects.index("France")
    assert facts.prompt("capital", i) == "The capital of France is"
    assert facts.templates == DEFAULT_TEMPLATES
    assert facts.neutral_prompt(i) == NEUTRAL_TEMPLATE.format(subject="France")
    assert facts.neutral_prompt(i).endswith("France")
    for r in facts.relations:
        assert "France" in facts.prompt(r, i) and not facts.prompt(r, i).endswith(" ")
    with pytest.raises(KeyError, match="unknown relation"):
        facts.prompt("anthem", i)


def test_labels_round_trip(facts):
    y, names = facts.labels()
    assert y.shape == (4, facts.n_subjects) and y.dtype == np.int64
    for k, r in enumerate(facts.relations):
        assert list(names[r]) == sorted(set(facts.values[r]))
        assert [names[r][j] for j in y[k]] == list(facts.values[r])
    assert len(names["continent"]) == 6 and len(names["capital"]) == facts.n_subjects


def test_subset_is_seeded_and_keeps_order(facts):
    a, b, c = facts.subset(20, seed=1), facts.subset(20, seed=1), facts.subset(20, seed=2)
    assert a == b and a.subjects != c.subjects and a.n_subjects == 20
    order = [facts.subjects.index(s) for s in a.subjects]
    assert order == sorted(order)
    for r in facts.relations:
        assert all(a.value(r, j) == facts.value(r, facts.subjects.index(s)) for j, s in enumerate(a.subjects))
    with pytest.raises(ValueError, match="subset size"):
        facts.subset(1, seed=0)


def test_other_csv_with_any_relations(tmp_path):
    p = tmp_path / "f.csv"
    p.write_text("# source: made up\nsubject,colour,national_animal\nA,red,cat\nB,\"blue, dark\",dog\n\nC,red,cow\n")
    f = load_facts(p)
    assert f.subjects == ("A", "B", "C") and f.relations == ("colour", "national_animal")
    assert f.values["colour"] == ("red", "blue, dark", "red")
    assert f.prompt("colour", 0) == "The colour of A is"
    assert f.prompt("national_animal", 1) == "The national animal of B is"
    y, names = f.labels()
    assert names["colour"] == ("blue, dark", "red") and y[0].tolist() == [1, 0, 1]


@pytest.mark.parametrize(("text", "match"), [
    ("subject,capital\nA,x\nB,\n", r"line 3: empty value in column 'capital'"),
    ("subject,capital\nA,x\nB,y\nA,z\n", r"line 4: duplicate subject 'A' \(first on line 2\)"),
    ("subject,capital\nA,x\n", r"at least 2 subjects"),
    ("country,capital\nA,x\nB,y\n", r"line 1: the first column must be 'subject'"),
    ("subject\nA\nB\n", r"missing columns"),
    ("subject,capital,continent\nA,x,y\nB,z\n", r"line 3: expected 3 columns"),
    ("# only a comment\n", r"no header"),
])
def test_bad_csv_errors_name_file_and_row(tmp_path, text, match):
    p = tmp_path / "bad.csv"
    p.write_text(text)
    with pytest.raises(ValueError, match=match) as info:
        load_facts(p)
    assert str(p) in str(info.value) and "\n" not in str(info.value)


def test_missing_csv(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_facts(tmp_path / "nope.csv")
