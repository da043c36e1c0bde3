"""frozen_control with real training (about a minute): frozen random embeddings need a wide MLP, learned ones do not."""

import dataclasses
import types

import pytest

from georecall.experiments import frozen_control as fc
from georecall.experiments.base import run_experiment


@pytest.mark.slow
def test_frozen_needs_a_wide_mlp_where_learned_embeddings_need_few_parameters(tmp_path):
    # 512 facts (N = 128, K = 4) at d = 16: widths 8 and 32 fail within 1000 steps, 362 succeeds (quick scale:
    # 3/3 seeds at 362, 0/3 at 64); learned embeddings succeed at d = 11 (3/3) with d_mlp = 44.
    cfg = dataclasses.replace(fc.config("quick"), points=((16, 2), (128, 4)), width_grid=(8, 32, 362),
                              width_window=(1 / 64, 1.0), learned_d_grid=(6, 11, 16), n_bootstrap=20)
    module = types.SimpleNamespace(ID="frozen_control_slow_test", config=lambda scale: cfg, runs=fc.runs,
                                   analyze=fc.analyze, plot=fc.plot)
    done = run_experiment(module, "quick", tmp_path)
    result, figures = done.result, done.figures
    frozen = {(p["N"], p["K"]): p for p in result.points if p["condition"] == "frozen"}
    learned = {(p["N"], p["K"]): p for p in result.points if p["condition"] == "learned"}
    big = frozen[(128, 4)]
    assert big["status"] == "bracketed" and big["needed_size"] == 362
    assert frozen[(16, 2)]["needed_size"] is not None and frozen[(16, 2)]["needed_size"] <= 32
    assert learned[(128, 4)]["needed_size"] is not None and learned[(128, 4)]["needed_size"] <= 16
    assert big["params_non_embedding"] > 3 * learned[(128, 4)]["params_non_embedding"]
    assert any(f.suffix == ".png" for f in figures)
