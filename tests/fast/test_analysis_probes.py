"""Linear probes over subjects (georecall.analysis.probes): exact on the constructions, at chance on the controls,
right on planted superpositions and at chance on noise; clear errors on bad input."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest
from analysis_cases import CASES, K, N, construction, planted

from georecall.analysis.probes import ProbeResult, control_labels, probe_attributes, probe_with_controls
from georecall.analysis.vectors import attribute_vectors, subject_embeddings
from georecall.tasks import make_world

if importlib.util.find_spec("sklearn") is not None:
    import sklearn.linear_model  # noqa: F401  (its ~1 s import is paid at collection, not inside the first test)

needs_sklearn = pytest.mark.skipif(importlib.util.find_spec("sklearn") is None,
                                   reason="needs the probes extra: pip install 'georecall[probes]'")

@needs_sklearn
@pytest.mark.parametrize("name", list(CASES))
def test_constructions_decode_every_relation_and_controls_sit_at_chance(name):
    c = construction(name)
    # The premise of kind="unembedding": the readout is fact-free and the facts sit in the subject rows.
    assert c.anatomy.readout == "fixed" and c.anatomy.fact_dependent == ("embed.W_E[:N]",)
    assert len(c.anatomy.subject_blocks) == K
    e = subject_embeddings(c.model, c.world)
    targets = attribute_vectors(c.model, c.world, "unembedding")
    res = probe_with_controls(e, c.world.maps, targets, seed=0)
    n_attr = c.world.vocab.attributes_per_relation
    assert res.true.accuracy == [1.0] * K
    assert res.true.chance == pytest.approx(1 / n_attr) and res.true.n_subjects == N and res.true.n_folds == 5
    assert len(res.true.alphas) == K and all(len(a) == 5 for a in res.true.alphas)
    # Controls: near chance. With N = 32 a score of 3/A averaged over K relations cannot be reached by luck
    # when A = 32 (expected 1 hit per relation); for A = 8 the bound is looser than chance but far from 1.
    assert res.shuffled.mean_accuracy <= 3 / n_attr
    assert res.random_bijection.mean_accuracy <= 3 / n_attr


@needs_sklearn
def test_probe_reads_the_subject_block_of_the_anatomy():
    """Ground truth: probing only block S_r of the selector decodes relation r; S_r alone says nothing of r' != r."""
    c = construction("selector")
    e = subject_embeddings(c.model, c.world)
    targets = attribute_vectors(c.model, c.world)
    blocks = c.anatomy.subject_blocks
    for r, block in enumerate(blocks):
        own = probe_attributes(e[:, block], c.world.maps[r:r + 1], targets[r:r + 1])
        other = probe_attributes(e[:, block], c.world.maps[(r + 1) % K][None], targets[(r + 1) % K][None])
        assert own.accuracy == [1.0] and other.accuracy[0] <= 3 / N


@needs_sklearn
def test_planted_superposition_is_recovered_and_noise_is_not():
    e, world, targets = planted()
    maps = world.maps
    res = probe_with_controls(e, maps, targets, seed=1)
    assert isinstance(res.true, ProbeResult)
    assert min(res.true.accuracy) >= 0.9
    assert res.shuffled.mean_accuracy <= 3 / N and res.random_bijection.mean_accuracy <= 3 / N
    noise = np.random.default_rng(5).standard_normal(e.shape)
    assert probe_attributes(noise, maps, targets).mean_accuracy <= 3 / N


@needs_sklearn
def test_probe_is_seeded_and_non_bijective_labels_work():
    e, world, targets = planted()
    maps = world.maps
    a = probe_attributes(e, maps, targets, seed=3)
    assert a == probe_attributes(e, maps, targets, seed=3)
    # Per-relation attribute vectors and labels that are functions (A = 6 < N): still decodable.
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 6, size=(2, N))
    vecs = rng.standard_normal((2, 6, 3))
    m = rng.standard_normal((2, 12, 3))
    emb = sum(vecs[r, labels[r]] @ m[r].T for r in range(2)) + 0.01 * rng.standard_normal((N, 12))
    res = probe_attributes(emb, labels, vecs, n_folds=4)
    assert res.accuracy == [1.0, 1.0] and res.chance == pytest.approx(1 / 6)


def test_control_labels_are_seeded_and_of_the_right_kind():
    maps = make_world(N, K, seed=0).maps
    a, b = control_labels(maps, N, seed=4), control_labels(maps, N, seed=4)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert all(np.array_equal(np.sort(a["shuffled"][r]), np.sort(maps[r])) for r in range(K))
    assert all(np.array_equal(np.sort(a["random_bijection"][r]), np.arange(N)) for r in range(K))
    assert not np.array_equal(a["shuffled"], maps)
    funcs = make_world(N, K, seed=0, attributes="disjoint", n_attributes=5, bijective=False).maps
    ctrl = control_labels(funcs, 5, seed=0)["random_bijection"]
    assert ctrl.shape == (K, N) and ctrl.min() >= 0 and ctrl.max() < 5


@needs_sklearn
def test_bad_input_raises_clear_errors():
    e, world, targets = planted()
    maps = world.maps
    with pytest.raises(ValueError, match=r"\[N, d\]"):
        probe_attributes(e[0], maps, targets)
    with pytest.raises(ValueError, match="subjects"):
        probe_attributes(e[:-1], maps, targets)
    with pytest.raises(ValueError, match="relations"):
        probe_attributes(e, maps, targets[:2])
    with pytest.raises(ValueError, match=r"\[K, A, d"):
        probe_attributes(e, maps, targets[0])
    with pytest.raises(ValueError, match="lie in"):
        probe_attributes(e, maps, targets[:, :10])
    with pytest.raises(ValueError, match="n_folds"):
        probe_attributes(e, maps, targets, n_folds=1)
    with pytest.raises(ValueError, match="alphas"):
        probe_attributes(e, maps, targets, alphas=[0.0])
    with pytest.raises(ValueError, match="integer"):
        probe_with_controls(e, maps.astype(float), targets)


def test_missing_sklearn_says_which_extra(monkeypatch):
    for mod in [m for m in sys.modules if m == "sklearn" or m.startswith("sklearn.")]:
        monkeypatch.delitem(sys.modules, mod)
    monkeypatch.setitem(sys.modules, "sklearn", None)  # import sklearn -> ImportError
    e, world, targets = planted(n=8, k_rel=1, d=4, d_a=2)
    maps = world.maps
    with pytest.raises(ImportError, match=r"georecall\[probes\]"):
        probe_attributes(e, maps, targets)
