"""frozen_control with real training (minutes): frozen random embeddings need more attention + MLP parameters than
learned embeddings with the same frozen readout and recipe."""

import pytest

from georecall.experiments import frozen_control as fc
from georecall.experiments.base import run_experiment


@pytest.mark.slow
def test_frozen_embeddings_need_more_non_embedding_parameters_than_learned_ones(tmp_path):
    done = run_experiment(fc, "quick", tmp_path, overrides=["points=[[128, 4]]", "d_models=[16]", "n_bootstrap=20"])
    res = done.result
    (frozen,), (learned,) = res.frozen, res.learned
    assert frozen["status"] == "bracketed" and learned["status"] == "bracketed"
    (cmp,) = res.comparison
    assert cmp["ratio_non_embedding"] is not None and cmp["ratio_non_embedding"] > 1, cmp
    assert any(f.suffix == ".png" for f in done.figures)
