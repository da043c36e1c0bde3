"""real_lm (C13) on a tiny GPT-2 and on planted structure: shapes, the payload C13 decides, controls, CLI errors."""

import dataclasses
import json

import numpy as np
import pytest

from georecall.cli import main
from georecall.experiments import real_lm as rl
from georecall.experiments.base import save_result
from georecall.experiments.claims import VERDICTS
from georecall.experiments.claims.real_lm import decide_c13
from georecall.lm.extract import matches, normalise, recall, subject_representations
from georecall.lm.facts import load_facts
from georecall.lm.load import PACKAGED, tiny_lm

pytest.importorskip("sklearn")

PAYLOAD_FIELDS = {"model", "n_facts", "n_subjects", "recall_rate", "recall_by_relation", "relations", "layers",
                  "probe_accuracy", "probe_accuracy_control", "probe_by_relation", "probe_control_by_relation",
                  "chance_by_relation", "additive_r2", "additive_r2_control", "pooled", "splits", "recall_rule",
                  "source", "best_layer", "notes", "schema_version", "sweep", "wall_time_s", "scale"}


@pytest.fixture(scope="module")
def facts():
    return load_facts().subset(30, seed=0)


@pytest.fixture(scope="module")
def lm(facts):
    texts = [*facts.subjects, *(v for r in facts.relations for v in facts.values[r]), *facts.templates.values(),
             facts.neutral]
    return tiny_lm(seed=0, texts=texts)


def test_the_recall_rule():
    assert normalise("  The United Kingdom. ") == "united kingdom"
    assert matches(" Paris.\nThe capital of", "Paris")
    assert matches(" the euro, which", "Euro")
    assert not matches(" European Union", "euro")  # a whole word, not a prefix of one
    assert matches(" United States.", "United States dollar")  # first word, >= 4 letters
    assert not matches(" New York", "New Delhi")  # a first word of < 4 letters is not enough
    assert not matches(" London", "Paris") and not matches("", "Paris")


def test_recall_and_representations_have_their_shapes(lm, facts):
    rec = recall(lm, facts, max_new_tokens=3, batch_size=16)
    k, n = len(facts.relations), len(facts.subjects)
    assert rec.recalled.shape == (k, n) and rec.recalled.dtype == bool
    assert len(rec.completions) == k and all(len(c) == n and all(isinstance(x, str) for x in c)
                                             for c in rec.completions)
    assert rec.rule and 0.0 <= rec.rate <= 1.0
    reps = subject_representations(lm, facts, batch_size=7)  # several batches, ragged lengths
    assert reps.last.shape == reps.mean.shape == (lm.n_layers + 1, n, lm.d_model)
    assert reps.last.dtype == np.float32 and np.isfinite(reps.last).all()
    assert reps.n_subject_tokens.shape == (n,) and (reps.n_subject_tokens >= 1).all()
    one = reps.n_subject_tokens == 1
    np.testing.assert_allclose(reps.last[:, one], reps.mean[:, one], rtol=1e-5, atol=1e-6)
    # Batching changes nothing: one subject alone gives the same states.
    alone = subject_representations(lm, facts.subset(2, seed=1), batch_size=1)
    i = facts.subjects.index(facts.subset(2, seed=1).subjects[0])
    np.testing.assert_allclose(alone.last[:, 0], reps.last[:, i], rtol=1e-4, atol=1e-5)


def _planted(n=120, d=48, noise=0.3, seed=0):
    """Two relations (A = 4 and A = 40); layer 0 is noise, layer 1 the sum of the attributes' mapped vectors."""
    rng = np.random.default_rng(seed)
    n_attr = (4, 40)
    labels = np.stack([rng.integers(0, a, n) for a in n_attr])
    labels[0, :4] = np.arange(4)
    labels[1, :40] = np.arange(40)
    targets = [rng.standard_normal((a, 16)) for a in n_attr]
    maps = [rng.standard_normal((d, 16)) / 4 for _ in n_attr]
    signal = sum(targets[r][labels[r]] @ maps[r].T for r in range(2))
    reps = np.stack([rng.standard_normal((n, d)), signal + noise * rng.standard_normal((n, d))])
    return reps, labels, targets


def test_planted_linear_structure_is_found_and_the_controls_are_not():
    reps, labels, targets = _planted()
    out = rl.analyze_layers(reps, labels, targets, ["small", "large"], n_folds=5, seed=0, dims=16)
    for r, chance in (("small", 0.25), ("large", 1 / 40)):
        assert out["chance_by_relation"][r] == pytest.approx(chance)
        assert out["probe_by_relation"][r][1] > 0.9  # planted: read at layer 1
        assert out["probe_by_relation"][r][0] < chance + 0.25  # noise at layer 0
        assert out["probe_control_by_relation"][r][1] < chance + 0.25  # shuffled labels: nothing to read
    assert out["additive_r2"][1] > 0.6 and out["additive_r2_control"][1] < 0.1 and out["additive_r2"][0] < 0.1
    payload = {"layers": [0, 1], "relations": ["small", "large"], **out}
    d = decide_c13({"real_lm": payload})
    assert d.verdict == "reproduced" and d.numbers["layers_fully_holding"] == [1]


def test_probe_targets_in_their_own_span_change_no_prediction():
    from georecall.analysis.probes import probe_attributes

    reps, labels, targets = _planted(n=60)
    full = probe_attributes(reps[1], labels[1:], targets[1][None], n_folds=3, seed=0)
    reduced = probe_attributes(reps[1], labels[1:], rl.target_coordinates(targets[1])[None], n_folds=3, seed=0)
    assert rl.target_coordinates(targets[1]).shape == (40, 16)
    assert full.correct == reduced.correct and full.alphas == reduced.alphas
    assert len(full.correct[0]) == 60 and full.accuracy[0] == pytest.approx(np.mean(full.correct[0]))


def test_smoke_analysis_gives_a_payload_c13_decides_and_figures(tmp_path):
    cfg = dataclasses.replace(rl.config("smoke"), n_subjects=24, probe_folds=3)
    assert rl.config("smoke").model == rl.TINY and rl.config("quick").model == PACKAGED
    assert rl.runs(cfg) == []
    result = rl.analyze(cfg, [], tmp_path)
    payload = json.loads(json.dumps(dataclasses.asdict(result)))
    assert PAYLOAD_FIELDS <= set(payload)
    n_layers = len(payload["layers"])
    assert payload["layers"] == list(range(n_layers)) and payload["n_subjects"] == 24
    assert payload["n_facts"] == 24 * len(payload["relations"])
    for key in ("probe_accuracy", "probe_accuracy_control", "additive_r2", "additive_r2_control"):
        assert len(payload[key]) == n_layers and len(payload["pooled"]["mean"][key]) == n_layers
    assert set(payload["probe_by_relation"]) == set(payload["relations"])
    assert set(payload["splits"]["last"]) == {"one_token", "multi_token", "recalled", "not_recalled"}
    tok = payload["tokens"]
    assert tok["n_one_token"] + tok["n_multi_token"] == 24
    assert decide_c13({"real_lm": payload}).verdict in VERDICTS[:3]  # decided, not "not tested"
    assert "real_lm" in rl.summarize(result)
    folder = save_result(result, tmp_path / "res", experiment="real_lm", scale="smoke")
    figures = rl.plot(folder.parent if folder.is_file() else folder)
    names = {f.name for f in figures}
    assert {"probe_by_layer.png", "additive_by_layer.png", "split_by_tokens.png", "probe_by_layer.csv",
            "additive_by_layer.csv", "split_by_tokens.csv"} <= names
    assert all(f.stat().st_size > 0 for f in figures)


def test_figures_render_empty_panels_for_a_payload_without_data(tmp_path):
    from georecall.plotting import real_lm as plots

    figures = plots.plot({"notes": ["nothing measured"]}, tmp_path)
    assert len(figures) == 6 and all(f.stat().st_size > 0 for f in figures)


def test_config_is_checked():
    with pytest.raises(ValueError, match="probe folds"):
        dataclasses.replace(rl.config("smoke"), n_subjects=10, probe_folds=6)
    with pytest.raises(ValueError, match="probe_folds"):
        dataclasses.replace(rl.config("smoke"), probe_folds=1)


def test_an_unloadable_model_is_one_line_and_exit_2(tmp_path, capsys):
    args = ["run", "real_lm", "--scale", "smoke", "--model", "no/such/dir", "--quiet", "--out", str(tmp_path)]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("georecall: error:") and "Traceback" not in err
    assert "no/such/dir" in err


def test_model_option_needs_an_experiment_with_a_model(tmp_path, capsys):
    assert main(["run", "threshold", "--scale", "smoke", "--model", "gpt2", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--model applies only" in err and "threshold" in err
    assert not any(tmp_path.iterdir())


def test_additive_layers_and_groups_of_the_layer_analysis(tmp_path):
    reps, labels, targets = _planted(n=40)
    out = rl.analyze_layers(reps, labels, targets, ["small", "large"], n_folds=4, seed=0, dims=8,
                            additive_layers=[1], groups={"one_token": np.arange(40) % 2 == 0})
    assert out["additive_r2"][0] is None and out["additive_r2"][1] is not None
    g = out["groups"]["one_token"]
    assert g["n_by_relation"] == {"small": 20, "large": 20} and len(g["probe_accuracy"]) == 2
    from georecall.plotting import real_lm as plots

    payload = {"layers": [0, 1], "relations": ["small", "large"], "model": "planted", **out,
               "splits": {"last": out["groups"]}}
    figs = plots.plot(payload, tmp_path)
    assert all(f.exists() for f in figs)
