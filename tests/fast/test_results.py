"""Run directories reload to identical weights, worlds and results."""

import json

import numpy as np
import pytest
import torch

from georecall.config import ModelConfig, RunConfig, TaskConfig, TrainConfig
from georecall.results import is_complete, load_run, save_run
from georecall.tasks import make_queries, stack_queries

CFG = RunConfig(task=TaskConfig(n_subjects=16, n_relations=2), model=ModelConfig(d_model=8, d_mlp=32),
                train=TrainConfig(steps=30, eval_every=10), seeds=(4, 5))


@pytest.fixture(scope="module")
def live():
    from georecall.training import train

    return train(CFG)


def test_run_directory_reloads_to_identical_objects(live, tmp_path):
    out = save_run(live, tmp_path / "run")
    assert is_complete(out)
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["config.json", "result.json", "metrics.jsonl", "meta.json", "model.safetensors", "worlds.safetensors"])
    back = load_run(out)
    assert back.config == live.config and back.result == live.result and back.metrics == live.metrics
    assert back.meta == json.loads(json.dumps(live.meta))
    for (k, a), b in zip(live.model.state_dict().items(), back.model.state_dict().values(), strict=True):
        assert torch.equal(a, b), k
    for a, b in zip(live.worlds, back.worlds, strict=True):
        assert np.array_equal(a.maps, b.maps)
    tokens = stack_queries([make_queries(w, CFG.task) for w in back.worlds]).tokens
    assert torch.equal(back.model(tokens), live.model(tokens))


def test_artifacts_hold_relative_paths_and_provenance(live, tmp_path):
    out = save_run(live, tmp_path / "run")
    text = "".join(p.read_text(errors="ignore") for p in out.glob("*.json*"))
    assert str(tmp_path) not in text
    meta = json.loads((out / "meta.json").read_text())
    for key in ["georecall_version", "git_sha", "torch_version", "device", "seeds", "wall_time_s"]:
        assert key in meta
    assert meta["seeds"] == [4, 5]


def test_incomplete_or_foreign_directories_are_refused(live, tmp_path):
    out = save_run(live, tmp_path / "run")
    (out / "result.json").unlink()
    assert not is_complete(out)
    with pytest.raises(FileNotFoundError, match="missing result.json"):
        load_run(out)
    save_run(live, out)
    data = json.loads((out / "result.json").read_text())
    data["schema_version"] = 999
    (out / "result.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match="schema_version"):
        load_run(out)
